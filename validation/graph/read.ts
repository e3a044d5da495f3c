import type { Sql } from '../../db/client.js';
import { techniqueById, type Technique } from './techniques.js';

// Readers of the stored attack graph: a finding's path (read back along parent and next), choke
// points, and golden tickets ranked by the jewel paths their fix cuts.

export interface PathStep {
  assetId: number;
  assetKey: string;
  name: string;
  /** How the step enters this asset. */
  edgeKind: string;
  ports: string[] | null;
  via: string;
  /** The exposure used (null over part_of). */
  findingId: number | null;
  issueId: string | null;
  techniques: Technique[];
  confidence: string;
}

export interface AttackPath {
  findingId: number;
  assetId: number;
  /** The asset is compromisable from the internet and a crown jewel lies at or beyond it. */
  onPath: boolean;
  /** Compromisable from the internet at all. */
  reachable: boolean;
  hopsFromInternet: number | null;
  hopsToJewel: number | null;
  /** Jewel paths through the asset (sigma * tau). */
  pathsThrough: number;
  /** Weakest step of the path read back. */
  confidence: string | null;
  /** Internet -> ... -> asset -> ... -> nearest jewel. */
  steps: PathStep[];
}

interface NodeRow {
  asset_id: number;
  asset_key: string;
  name: string;
  parent_id: number;
  next_id: number | null;
  finding_id: number | null;
  issue_id: string | null;
  edge_kind: string;
  edge_ports: string[] | null;
  edge_via: string;
  techniques: string[];
  step_confidence: string;
  next_step: { findingId: number | null; issueId: string | null; kind: string; ports: string[] | null; via: string; techniques: string[]; confidence: string } | null;
}

const RANK = ['theoretical', 'plausible', 'confirmed'];

/** The path through one asset, read back: up along parents to the internet, down along next to the nearest jewel. */
async function pathThrough(sql: Sql, assetId: number): Promise<PathStep[]> {
  const up = await sql<NodeRow[]>`
    with recursive chain as (
      select n.*, 0 as i from attack_graph_nodes n where n.asset_id = ${assetId}
      union all
      select n.*, c.i + 1 from attack_graph_nodes n join chain c on n.asset_id = c.parent_id where c.i < 256
    )
    select c.asset_id::float8 as asset_id, a.asset_key, a.name, c.parent_id::float8 as parent_id, c.next_id::float8 as next_id,
      c.finding_id::float8 as finding_id, c.issue_id, c.edge_kind, c.edge_ports, c.edge_via, c.techniques, c.step_confidence, c.next_step
    from chain c join assets a on a.id = c.asset_id order by c.i desc`;
  const down = await sql<NodeRow[]>`
    with recursive chain as (
      select n.*, 0 as i from attack_graph_nodes n where n.asset_id = ${assetId}
      union all
      select n.*, c.i + 1 from attack_graph_nodes n join chain c on n.asset_id = c.next_id where c.i < 256
    )
    select c.asset_id::float8 as asset_id, a.asset_key, a.name, c.next_id::float8 as next_id, c.next_step
    from chain c join assets a on a.id = c.asset_id order by c.i`;
  const steps: PathStep[] = up.map((r) => ({
    assetId: r.asset_id,
    assetKey: r.asset_key,
    name: r.name,
    edgeKind: r.edge_kind,
    ports: r.edge_ports,
    via: r.edge_via,
    findingId: r.finding_id,
    issueId: r.issue_id,
    techniques: r.techniques.map(techniqueById),
    confidence: r.step_confidence,
  }));
  for (let i = 1; i < down.length; i++) {
    const s = down[i - 1]!.next_step!;
    const r = down[i]!;
    steps.push({
      assetId: r.asset_id,
      assetKey: r.asset_key,
      name: r.name,
      edgeKind: s.kind,
      ports: s.ports,
      via: s.via,
      findingId: s.findingId,
      issueId: s.issueId,
      techniques: s.techniques.map(techniqueById),
      confidence: s.confidence,
    });
  }
  return steps;
}

const weakestOf = (steps: PathStep[]) => (steps.length === 0 ? null : steps.reduce((w, s) => (RANK.indexOf(s.confidence) < RANK.indexOf(w) ? s.confidence : w), 'confirmed'));

/** Whether a finding's asset lies on an attack path, in how many hops, and the path read back. */
export async function attackPathOf(sql: Sql, findingId: number): Promise<AttackPath> {
  const [finding] = await sql<{ asset_id: number }[]>`select asset_id::float8 as asset_id from findings where id = ${findingId}`;
  if (!finding) throw new Error(`attack graph: finding ${findingId} does not exist`);
  const [node] = await sql<{ depth: number; jewel_hops: number | null; tau: number; paths_through: number }[]>`
    select depth, jewel_hops, tau, paths_through from attack_graph_nodes where asset_id = ${finding.asset_id}`;
  if (!node) {
    return { findingId, assetId: finding.asset_id, onPath: false, reachable: false, hopsFromInternet: null, hopsToJewel: null, pathsThrough: 0, confidence: null, steps: [] };
  }
  const steps = await pathThrough(sql, finding.asset_id);
  return {
    findingId,
    assetId: finding.asset_id,
    onPath: node.tau > 0,
    reachable: true,
    hopsFromInternet: node.depth,
    hopsToJewel: node.jewel_hops,
    pathsThrough: node.paths_through,
    confidence: weakestOf(steps),
    steps,
  };
}

export interface ChokePoint {
  assetId: number;
  assetKey: string;
  name: string;
  pathsThrough: number;
  /** pathsThrough / all paths. */
  share: number;
  /** At or above the stated share (the refresh's chokeShare). */
  chokePoint: boolean;
  depth: number;
}

/** Assets by the jewel paths their removal would cut (those that lie inside a path, not only at its end). */
export async function chokePoints(sql: Sql, { limit = 10 }: { limit?: number } = {}): Promise<ChokePoint[]> {
  const rows = await sql<{ asset_id: number; asset_key: string; name: string; paths_through: number; share: number; choke_point: boolean; depth: number }[]>`
    select n.asset_id::float8 as asset_id, a.asset_key, a.name, n.paths_through, n.choke_point, n.depth,
      n.paths_through / nullif(s.paths, 0) as share
    from attack_graph_nodes n join assets a on a.id = n.asset_id cross join attack_graph_summary s
    where s.name = 'current' and n.sigma * (n.tau - case when n.is_jewel then 1 else 0 end) > 0
    order by n.paths_through desc, n.asset_id limit ${limit}`;
  return rows.map((r) => ({ assetId: r.asset_id, assetKey: r.asset_key, name: r.name, pathsThrough: r.paths_through, share: r.share ?? 0, chokePoint: r.choke_point, depth: r.depth }));
}

export interface Fix {
  ticketKey: string;
  pathsCut: number;
  exact: boolean;
  /** The assets the fix stops being compromisable, each with an example jewel path through it. */
  assets: Array<{ assetId: number; assetKey: string; name: string; pathsThrough: number; examplePath: PathStep[] }>;
}

/** Open golden tickets ranked by the jewel paths their fix cuts. */
export async function fixesByPathsCut(sql: Sql, { limit = 10, examples = 3 }: { limit?: number; examples?: number } = {}): Promise<Fix[]> {
  const tickets = await sql<{ ticket_key: string; paths_cut: number; exact: boolean; asset_ids: string[] }[]>`
    select ticket_key, paths_cut, exact, asset_ids from attack_graph_tickets where paths_cut > 0
    order by exact desc, paths_cut desc, ticket_key limit ${limit}`;
  const fixes: Fix[] = [];
  for (const t of tickets) {
    const assets = await sql<{ asset_id: number; asset_key: string; name: string; paths_through: number }[]>`
      select n.asset_id::float8 as asset_id, a.asset_key, a.name, n.paths_through
      from attack_graph_nodes n join assets a on a.id = n.asset_id
      where n.asset_id = any(${t.asset_ids}::bigint[]) order by n.paths_through desc, n.asset_id`;
    const withPaths = [];
    for (const [i, a] of assets.entries()) {
      withPaths.push({ assetId: a.asset_id, assetKey: a.asset_key, name: a.name, pathsThrough: a.paths_through, examplePath: i < examples && a.paths_through > 0 ? await pathThrough(sql, a.asset_id) : [] });
    }
    fixes.push({ ticketKey: t.ticket_key, pathsCut: t.paths_cut, exact: t.exact, assets: withPaths });
  }
  return fixes;
}

export interface GraphSummary {
  paths: number;
  jewels: number;
  jewelsReached: number;
  /** Assets compromisable from the internet. */
  compromisable: number;
  edges: number;
  computedAt: string | null;
  durationMs: number | null;
  unusableRules: Array<{ securityGroup: string; source: string; reason: string }>;
}

/** Totals of the latest computation; zeros before the first. */
export async function graphSummary(sql: Sql): Promise<GraphSummary> {
  const [s] = await sql<{ paths: number; jewels: number; jewels_reached: number; nodes: number; edges: number; computed_at: Date; duration_ms: number; unusable_rules: GraphSummary['unusableRules'] }[]>`
    select paths, jewels, jewels_reached, nodes, edges, computed_at, duration_ms, unusable_rules from attack_graph_summary where name = 'current'`;
  if (!s) return { paths: 0, jewels: 0, jewelsReached: 0, compromisable: 0, edges: 0, computedAt: null, durationMs: null, unusableRules: [] };
  return {
    paths: s.paths, jewels: s.jewels, jewelsReached: s.jewels_reached, compromisable: s.nodes, edges: s.edges,
    computedAt: s.computed_at.toISOString(), durationMs: s.duration_ms, unusableRules: s.unusable_rules,
  };
}
