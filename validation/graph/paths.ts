import { techniquesOf, type EdgeKind } from './techniques.js';

// Attack paths over the exposure graph, counted without enumerating them (pure: no database).
// One BFS from the internet (node 0) over compromisable nodes gives each node's depth and sigma
// (shortest paths in); a reverse pass over the shortest-path DAG gives tau (shortest continuations
// to crown jewels). Paths through a node = sigma * tau; all paths = sum of sigma over the jewels
// (= tau of the internet). Counts are doubles: exact up to 2^53, then approximate (never wrapped).

export type Confidence = 'confirmed' | 'plausible' | 'theoretical';
export type Tier = 'act' | 'attend' | 'track*';

const CONFIDENCE: Confidence[] = ['theoretical', 'plausible', 'confirmed'];
const TIER_RANK: Record<Tier, number> = { act: 3, attend: 2, 'track*': 1 };

/** An exploitable exposure of an asset: an open act / attend / track* finding no evidence rules out. */
export interface Exposure {
  findingId: number;
  issueId: string;
  kind: string;
  /** `443/tcp` when the finding names a port; null for a package vulnerability. */
  port: string | null;
  tier: Tier;
  /** Unexpired `exploited` or `confirmed` evidence on (asset, issue id). */
  confirmed: boolean;
  /** EDR saw the component running on the asset or its host. */
  running: boolean;
  cwes: string[] | null;
  cvssVector: string | null;
}

export interface GraphEdge {
  kind: EdgeKind;
  /** 0 = the internet. */
  from: number;
  to: number;
  /** `443/tcp`, `8000-8080/tcp`, `all`; null = unknown or any. */
  ports: string[] | null;
  via: string;
}

export interface GraphInput {
  edges: GraphEdge[];
  /** Per asset, its exploitable exposures (the best one per port is enough). */
  exposures: Map<number, Exposure[]>;
  jewels: Set<number>;
  /** Per asset, the open golden ticket that holds all of its exploitable exposures (if one does). */
  soleTicket: Map<number, string>;
}

export interface GraphOptions {
  /** A node whose removal cuts at least this share of all paths is a choke point. Default 0.1. */
  chokeShare?: number;
  /** How many tickets are ranked by an exact recount (the others carry their upper bound). Default 20. */
  exactTickets?: number;
}

export interface Step {
  kind: EdgeKind;
  ports: string[] | null;
  via: string;
  /** The exposure used (null over part_of: entering a business service is the impact, no exploit). */
  exposure: Exposure | null;
  techniques: string[];
  confidence: Confidence;
}

export interface NodeResult {
  assetId: number;
  depth: number;
  sigma: number;
  tau: number;
  pathsThrough: number;
  isJewel: boolean;
  /** Hops to the nearest jewel along shortest paths (0 for a jewel); null when none lies beyond. */
  jewelHops: number | null;
  parentId: number;
  nextId: number | null;
  /** The step from the parent into this node. */
  entry: Step;
  /** The step from this node into `nextId`. */
  nextStep: Step | null;
  /** The weakest step of the best shortest path from the internet to here. */
  confidence: Confidence;
  chokePoint: boolean;
}

export interface TicketResult {
  ticketKey: string;
  pathsCut: number;
  /** False: pathsCut is the upper bound (the sum of paths through its assets), not recounted. */
  exact: boolean;
  assetIds: number[];
}

export interface GraphResult {
  nodes: NodeResult[];
  tickets: TicketResult[];
  paths: number;
  jewels: number;
  jewelsReached: number;
  /** Asset ids, most paths through first. */
  chokePoints: number[];
}

interface PortRange {
  protocol: string;
  from: number;
  to: number;
}

const PORT = /^(\d+)(?:-(\d+))?\/([a-z0-9]+)$/;

/** `443/tcp`, `8000-8080/tcp`, `all`; null (any) when one entry reads `all`. */
function parsePorts(ports: string[]): PortRange[] | null {
  const ranges: PortRange[] = [];
  for (const p of ports) {
    const text = p.trim().toLowerCase();
    if (text === 'all') return null;
    const m = PORT.exec(text);
    if (!m) throw new Error(`attack graph: edge port ${JSON.stringify(p)} is not 443/tcp, 8000-8080/tcp or all`);
    if (m[3] === 'all') return null;
    ranges.push({ protocol: m[3]!, from: Number(m[1]), to: Number(m[2] ?? m[1]) });
  }
  return ranges;
}

const portCache = new Map<string, { number: number; protocol: string } | null>();
function portOf(port: string): { number: number; protocol: string } | null {
  const cached = portCache.get(port);
  if (cached !== undefined || portCache.has(port)) return cached ?? null;
  const parsed = parsePort(port);
  if (portCache.size < 100_000) portCache.set(port, parsed);
  return parsed;
}

function parsePort(port: string): { number: number; protocol: string } | null {
  const m = PORT.exec(port.trim().toLowerCase());
  return m && m[2] === undefined ? { number: Number(m[1]), protocol: m[3]! } : null;
}

const admits = (ranges: PortRange[], port: { number: number; protocol: string }) =>
  ranges.some((r) => r.protocol === port.protocol && r.from <= port.number && port.number <= r.to);

const better = (a: Step, b: Step): boolean => {
  const ca = CONFIDENCE.indexOf(a.confidence);
  const cb = CONFIDENCE.indexOf(b.confidence);
  if (ca !== cb) return ca > cb;
  const ta = a.exposure ? TIER_RANK[a.exposure.tier] : 4;
  const tb = b.exposure ? TIER_RANK[b.exposure.tier] : 4;
  if (ta !== tb) return ta > tb;
  return (a.exposure?.findingId ?? 0) < (b.exposure?.findingId ?? 0);
};

const weakest = (a: Confidence, b: Confidence): Confidence => (CONFIDENCE.indexOf(a) <= CONFIDENCE.indexOf(b) ? a : b);

/** Edges that come from rules or observations (not from an inventory flag or a relation). */
function fromRules(kind: EdgeKind, via: string): boolean {
  if (kind === 'network') return true;
  if (kind === 'internet') return /firewall|external scan/.test(via);
  return false;
}

export function computeAttackPaths(input: GraphInput, options: GraphOptions = {}): GraphResult {
  const chokeShare = options.chokeShare ?? 0.1;
  const exactTickets = options.exactTickets ?? 20;

  // Dense indices: 0 is the internet.
  const index = new Map<number, number>([[0, 0]]);
  const ids: number[] = [0];
  const at = (id: number) => {
    let i = index.get(id);
    if (i === undefined) {
      i = ids.length;
      index.set(id, i);
      ids.push(id);
    }
    return i;
  };
  const edges = input.edges;
  for (const e of edges) {
    if (e.from === e.to) continue;
    at(e.from);
    at(e.to);
  }
  for (const j of input.jewels) at(j);
  const n = ids.length;

  // Edges by source (CSR), and the hosts / images of `hosted` edges.
  const start = new Int32Array(n + 1);
  for (const e of edges) if (e.from !== e.to) start[index.get(e.from)! + 1]!++;
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, n);
  const out: GraphEdge[] = new Array(start[n]!);
  const imagesOn = new Map<number, number[]>();
  const hostsOf = new Map<number, number[]>();
  for (const e of edges) {
    if (e.from === e.to) continue;
    const u = index.get(e.from)!;
    out[fill[u]!++] = e;
  }
  // Each source's edges in a fixed order (target, kind), whatever order they were loaded in, so
  // ties between equal steps resolve the same way in every run.
  const byTarget = (a: GraphEdge, b: GraphEdge) => a.to - b.to || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);
  for (let u = 0; u < n; u++) {
    if (start[u + 1]! - start[u]! > 1) {
      const slice = out.slice(start[u]!, start[u + 1]!).sort(byTarget);
      for (let k = 0; k < slice.length; k++) out[start[u]! + k] = slice[k]!;
    }
  }
  for (let k = 0; k < out.length; k++) {
    const e = out[k]!;
    if (e.kind === 'hosted') {
      const h = index.get(e.from)!;
      const img = index.get(e.to)!;
      (imagesOn.get(h) ?? imagesOn.set(h, []).get(h)!).push(img);
      (hostsOf.get(img) ?? hostsOf.set(img, []).get(img)!).push(h);
    }
  }
  for (const hosts of hostsOf.values()) hosts.sort((a, b) => ids[a]! - ids[b]!);

  const outTo = new Int32Array(out.length);
  for (let k = 0; k < out.length; k++) outTo[k] = index.get(out[k]!.to)!;

  const rangesCache = new Map<string, PortRange[] | null>();
  const rangesOf = (ports: string[] | null) => {
    if (ports === null) return null;
    const key = ports.join(',');
    let r = rangesCache.get(key);
    if (r === undefined && !rangesCache.has(key)) rangesCache.set(key, (r = parsePorts(ports)));
    return r ?? null;
  };
  const exposuresOf = (i: number) => input.exposures.get(ids[i]!) ?? [];

  /** The best step an edge allows into node v, or null when none of v's exposures is admitted. */
  const stepInto = (v: number, kind: EdgeKind, ports: string[] | null, via: string): Step | null => {
    if (kind === 'part_of') return { kind, ports, via, exposure: null, techniques: techniquesOf(kind, null).map((t) => t.id), confidence: 'confirmed' };
    const ranges = rangesOf(ports);
    const rules = fromRules(kind, via);
    // Pick the best admitted exposure without building a step per candidate (this runs per edge).
    let best: Exposure | null = null;
    let bestConfidence = -1;
    for (const x of exposuresOf(v)) {
      const port = x.port === null ? null : portOf(x.port);
      if (port !== null && ranges !== null && !admits(ranges, port)) continue;
      const c = x.confirmed ? 2 : (rules && port !== null && ranges !== null) || x.running ? 1 : 0;
      if (best === null || c > bestConfidence || (c === bestConfidence && (TIER_RANK[x.tier] > TIER_RANK[best.tier] || (TIER_RANK[x.tier] === TIER_RANK[best.tier] && x.findingId < best.findingId)))) {
        best = x;
        bestConfidence = c;
      }
    }
    if (best === null) return null;
    return { kind, ports, via, exposure: best, techniques: techniquesOf(kind, best).map((t) => t.id), confidence: CONFIDENCE[bestConfidence]! };
  };

  // Edges of one rule share kind, ports and via: a step into a node depends only on that class, so
  // it is evaluated once per (node, class), not once per edge (most of a dense graph's work).
  const classOf = new Map<string, number>();
  const classes: { kind: EdgeKind; ports: string[] | null; via: string }[] = [];
  const classId = (kind: EdgeKind, ports: string[] | null, via: string) => {
    const key = `${kind}\u0000${via}\u0000${ports === null ? '*' : ports.join(',')}`;
    let c = classOf.get(key);
    if (c === undefined) {
      c = classes.length;
      classOf.set(key, c);
      classes.push({ kind, ports, via });
    }
    return c;
  };
  const edgeClass = new Int32Array(out.length);
  for (let k = 0; k < out.length; k++) edgeClass[k] = classId(out[k]!.kind, out[k]!.ports, out[k]!.via);
  // The class of an edge reaching a container through its host (the via names the host).
  const throughHost = new Map<number, number>();
  const hostClass = (c: number, host: number) => {
    const key = c * n + host;
    let h = throughHost.get(key);
    if (h === undefined) {
      const base = classes[c]!;
      throughHost.set(key, (h = classId(base.kind, base.ports, `${base.via} (runs on ${ids[host]})`)));
    }
    return h;
  };
  const stepCache = new Map<number, Step | null>();
  const cachedStep = (v: number, c: number): Step | null => {
    const key = c * n + v;
    let step = stepCache.get(key);
    if (step === undefined) {
      const cls = classes[c]!;
      step = stepInto(v, cls.kind, cls.ports, cls.via);
      stepCache.set(key, step);
    }
    return step;
  };

  // BFS over compromisable nodes; the DAG's edges are appended per source, in BFS order.
  const depth = new Int32Array(n).fill(-1);
  const sigma = new Float64Array(n);
  const conf = new Int8Array(n);
  const parent = new Int32Array(n).fill(-1);
  const entry: (Step | null)[] = new Array(n).fill(null);
  const dagStart = new Int32Array(n);
  const dagEnd = new Int32Array(n);
  const dagTo: number[] = [];
  const dagStep: Step[] = [];
  const order: number[] = [0];
  depth[0] = 0;
  sigma[0] = 1;
  conf[0] = 2;
  const stamp = new Int32Array(n).fill(-1);
  const bestStep: (Step | null)[] = new Array(n).fill(null);
  for (let q = 0; q < order.length; q++) {
    const u = order[q]!;
    const touched: number[] = [];
    const consider = (v: number, step: Step | null) => {
      if (v === u || v === 0 || step === null) return;
      if (stamp[v] !== u) {
        stamp[v] = u;
        bestStep[v] = step;
        touched.push(v);
      } else if (better(step, bestStep[v]!)) bestStep[v] = step;
    };
    const expand = (source: number, onlyNetwork: boolean) => {
      for (let k = start[source]!; k < start[source + 1]!; k++) {
        const e = out[k]!;
        if (onlyNetwork && e.kind !== 'network') continue;
        const to = outTo[k]!;
        consider(to, cachedStep(to, edgeClass[k]!));
        // Reaching a host reaches the services of the containers running on it.
        if (e.kind === 'internet' || e.kind === 'network') {
          const images = imagesOn.get(to);
          if (images) for (const img of images) consider(img, cachedStep(img, hostClass(edgeClass[k]!, to)));
        }
      }
    };
    expand(u, false);
    // A container's network position is its host's: a foothold in it moves laterally like the host.
    for (const h of hostsOf.get(u) ?? []) expand(h, true);

    dagStart[u] = dagTo.length;
    touched.sort((a, b) => ids[a]! - ids[b]!);
    for (const v of touched) {
      const step = bestStep[v]!;
      if (depth[v] === -1) {
        depth[v] = depth[u]! + 1;
        order.push(v);
      }
      if (depth[v] !== depth[u]! + 1) continue;
      dagTo.push(v);
      dagStep.push(step);
      sigma[v]! += sigma[u]!;
      const c = Math.min(conf[u]!, CONFIDENCE.indexOf(step.confidence));
      if (parent[v] === -1 || c > conf[v]!) {
        parent[v] = u;
        conf[v] = c;
        entry[v] = step;
      }
    }
    dagEnd[u] = dagTo.length;
  }

  // Reverse pass: tau and the nearest jewel beyond.
  const jewel = new Uint8Array(n);
  for (const j of input.jewels) jewel[index.get(j)!] = 1;
  const tau = new Float64Array(n);
  const hops = new Int32Array(n).fill(-1);
  const next = new Int32Array(n).fill(-1);
  const nextStep: (Step | null)[] = new Array(n).fill(null);
  for (let q = order.length - 1; q >= 0; q--) {
    const u = order[q]!;
    let t = u !== 0 && jewel[u] ? 1 : 0;
    if (u !== 0 && jewel[u]) hops[u] = 0;
    for (let k = dagStart[u]!; k < dagEnd[u]!; k++) {
      const w = dagTo[k]!;
      t += tau[w]!;
      if (tau[w]! > 0 && hops[w]! >= 0 && (hops[u] === -1 || hops[w]! + 1 < hops[u]!) && !(u !== 0 && jewel[u])) {
        hops[u] = hops[w]! + 1;
        next[u] = w;
        nextStep[u] = dagStep[k]!;
      }
    }
    tau[u] = t;
  }
  const total = tau[0]!;

  let jewelsReached = 0;
  const nodes: NodeResult[] = [];
  for (const v of order) {
    if (v === 0) continue;
    if (jewel[v]) jewelsReached++;
    const through = sigma[v]! * tau[v]!;
    const intermediate = sigma[v]! * (tau[v]! - jewel[v]!);
    nodes.push({
      assetId: ids[v]!,
      depth: depth[v]!,
      sigma: sigma[v]!,
      tau: tau[v]!,
      pathsThrough: through,
      isJewel: jewel[v] === 1,
      jewelHops: hops[v]! >= 0 ? hops[v]! : null,
      parentId: ids[parent[v]!]!,
      nextId: next[v]! >= 0 ? ids[next[v]!]! : null,
      entry: entry[v]!,
      nextStep: nextStep[v] ?? null,
      confidence: CONFIDENCE[conf[v]!]!,
      // A jewel counts only for the paths it lies on toward another jewel, not for its own.
      chokePoint: total > 0 && intermediate > 0 && through >= chokeShare * total,
    });
  }
  const chokePoints = nodes.filter((x) => x.chokePoint).sort((a, b) => b.pathsThrough - a.pathsThrough || a.assetId - b.assetId).map((x) => x.assetId);

  // Tickets: the compromisable nodes each would remove, ranked by the paths that cuts. The sum of
  // paths through its nodes bounds the cut from above (shared paths count twice), so candidates are
  // recounted exactly in bound order until the next bound cannot reach the top `exactTickets`.
  const byTicket = new Map<string, number[]>();
  for (const v of order) {
    if (v === 0) continue;
    const key = input.soleTicket.get(ids[v]!);
    if (key !== undefined) (byTicket.get(key) ?? byTicket.set(key, []).get(key)!).push(v);
  }
  const candidates = [...byTicket].map(([ticketKey, vs]) => ({
    ticketKey,
    vs,
    bound: Math.min(total, vs.reduce((s, v) => s + sigma[v]! * tau[v]!, 0)),
  }));
  candidates.sort((a, b) => b.bound - a.bound || a.ticketKey.localeCompare(b.ticketKey));
  const removed = new Uint8Array(n);
  const s = new Float64Array(n);
  const recount = (vs: number[]) => {
    for (const v of vs) removed[v] = 1;
    s.fill(0);
    s[0] = 1;
    let remaining = 0;
    for (const u of order) {
      if (removed[u] || s[u] === 0) continue;
      if (u !== 0 && jewel[u]) remaining += s[u]!;
      for (let k = dagStart[u]!; k < dagEnd[u]!; k++) s[dagTo[k]!]! += s[u]!;
    }
    for (const v of vs) removed[v] = 0;
    return total - remaining;
  };
  const tickets: TicketResult[] = [];
  const exactCuts: number[] = [];
  for (const c of candidates) {
    const kth = exactCuts.length >= exactTickets ? [...exactCuts].sort((a, b) => b - a)[exactTickets - 1]! : -1;
    const exact = c.bound > 0 && (exactCuts.length < exactTickets || c.bound > kth);
    const pathsCut = exact ? recount(c.vs) : c.bound;
    if (exact) exactCuts.push(pathsCut);
    tickets.push({ ticketKey: c.ticketKey, pathsCut, exact: exact || c.bound === 0, assetIds: c.vs.map((v) => ids[v]!).sort((a, b) => a - b) });
  }
  tickets.sort((a, b) => Number(b.exact) - Number(a.exact) || b.pathsCut - a.pathsCut || a.ticketKey.localeCompare(b.ticketKey));

  return { nodes, tickets, paths: total, jewels: input.jewels.size, jewelsReached, chokePoints };
}
