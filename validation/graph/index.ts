import type { Sql } from '../../db/client.js';
import { computeAttackPaths } from './paths.js';
import { loadEdgesAndJewels, loadExposures, refreshEdges, writeResults, type UnusableRule } from './store.js';

export { attackPathOf, chokePoints, fixesByPathsCut, graphSummary, type GraphSummary, type AttackPath, type PathStep, type ChokePoint, type Fix } from './read.js';
export { computeAttackPaths, type GraphInput, type GraphResult, type Exposure, type GraphEdge } from './paths.js';
export { techniquesOf, TECHNIQUES, type Technique } from './techniques.js';

/** Business services carrying at least this yearly revenue are crown jewels. */
export const DEFAULT_REVENUE_THRESHOLD = 1_000_000;

export interface RefreshOptions {
  /** Rebuild every security group's edges, not only the changed ones. */
  full?: boolean;
  revenueThreshold?: number;
  /** Share of all paths whose removal makes a choke point (default 0.1). */
  chokeShare?: number;
  /** Tickets ranked by an exact recount (default 20; the rest carry their upper bound). */
  exactTickets?: number;
  /**
   * Whether track* findings make an asset compromisable. Off by default: the policy keeps
   * act/attend for the exposures with evidence of exploitation, and an attacker moves through
   * those; with track* every asset with any exposed package counts, and no single fix cuts a path.
   */
  includeTrackStar?: boolean;
}

export interface RefreshResult {
  full: boolean;
  groupsChanged: number;
  edges: number;
  /** Compromisable assets on the graph. */
  nodes: number;
  paths: number;
  jewels: number;
  jewelsReached: number;
  chokePoints: number[];
  nodesWritten: number;
  ticketsWritten: number;
  unusableRules: UnusableRule[];
  durationMs: number;
  /** Milliseconds per phase: edges (refresh), load (edges and exposures), compute (BFS, tickets), write. */
  phases: { edges: number; load: number; compute: number; write: number };
}

// Any constant will do as long as every caller uses it: concurrent refreshes run one after another.
const LOCK = 0x61_74_6b_67;

/**
 * Recomputes the exposure graph's attack paths and stores them (incremental by default: only the
 * security groups whose rules or membership changed get their edges rebuilt; the BFS runs over all
 * edges in memory). Idempotent: a second run with nothing changed writes no node or ticket row.
 */
export async function refreshAttackGraph(sql: Sql, options: RefreshOptions = {}): Promise<RefreshResult> {
  const started = performance.now();
  const revenueThreshold = options.revenueThreshold ?? DEFAULT_REVENUE_THRESHOLD;
  const chokeShare = options.chokeShare ?? 0.1;
  const exactTickets = options.exactTickets ?? 20;
  if (!Number.isFinite(revenueThreshold) || revenueThreshold < 0) throw new Error(`attack graph: revenueThreshold ${revenueThreshold} must be a number >= 0`);
  if (!(chokeShare > 0 && chokeShare <= 1)) throw new Error(`attack graph: chokeShare ${chokeShare} must be in (0, 1]`);
  if (!Number.isInteger(exactTickets) || exactTickets < 1) throw new Error(`attack graph: exactTickets ${exactTickets} must be a positive integer`);
  // Refreshes run one at a time. One that finds another running gives its connection back and
  // tries again: waiting on the lock while holding a connection could starve the running one of the
  // second connection it loads the exposures on.
  for (let wait = 50; ; wait = Math.min(wait * 2, 2_000)) {
    const result = await refreshOnce(sql, { full: options.full === true, revenueThreshold, chokeShare, exactTickets, includeTrackStar: options.includeTrackStar === true }, started);
    if (result) return result;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function refreshOnce(
  sql: Sql,
  options: { full: boolean; revenueThreshold: number; chokeShare: number; exactTickets: number; includeTrackStar: boolean },
  started: number,
): Promise<RefreshResult | null> {
  const { revenueThreshold, chokeShare, exactTickets, includeTrackStar } = options;
  // Read committed: the statements after the lock see what the refresh before this one wrote (a
  // repeatable-read snapshot would date from the lock statement, possibly before that commit).
  return sql.begin(async (tx) => {
    const [locked] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${LOCK}) as ok`;
    if (!locked!.ok) return null;
    // The exposures (a scan of the findings, the slowest read) load on a second connection in the
    // same snapshot while this one brings the edges up to date: the same data, in about half the time.
    const [exported] = await tx<{ snapshot: string }[]>`select pg_export_snapshot() as snapshot`;
    const snapshot = exported!.snapshot;
    if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`attack graph: unexpected snapshot id ${snapshot}`);
    // A pool of one connection has none to spare: the exposures then load on this one, after the edges.
    const exposuresLoaded =
      (sql.options.max ?? 1) < 2
        ? null
        : sql.begin('isolation level repeatable read read only', async (side) => {
            await side.unsafe(`set transaction snapshot '${snapshot}'`);
            await side`set local work_mem = '64MB'`;
            return loadExposures(side, includeTrackStar);
          });
    // Awaited below; a failure here must not go unhandled while the edges are being refreshed.
    exposuresLoaded?.catch(() => {});
    const [previous] = await tx<{ n: number }[]>`select count(*)::int as n from attack_graph_summary`;
    const full = options.full || previous!.n === 0;
    let mark = performance.now();
    const lap = () => {
      const now = performance.now();
      const ms = Math.round(now - mark);
      mark = now;
      return ms;
    };
    const edges = await refreshEdges(tx, full);
    const edgesMs = lap();
    const edgesAndJewels = await loadEdgesAndJewels(tx, revenueThreshold);
    let exposures;
    if (exposuresLoaded) exposures = await exposuresLoaded;
    else {
      await tx`set local work_mem = '64MB'`;
      exposures = await loadExposures(tx, includeTrackStar);
    }
    const input = { ...edgesAndJewels, ...exposures };
    const loadMs = lap();
    const result = computeAttackPaths(input, { chokeShare, exactTickets });
    const computeMs = lap();
    const durationMs = Math.round(performance.now() - started);
    const written = await writeResults(tx, result, {
      full,
      groupsChanged: edges.groupsChanged,
      edges: edges.edges,
      ipHash: edges.ipHash,
      unusableRules: edges.unusableRules,
      parameters: { revenueThreshold, chokeShare, exactTickets, includeTrackStar: includeTrackStar ? 1 : 0 },
      durationMs,
    });
    return {
      full,
      groupsChanged: edges.groupsChanged,
      edges: edges.edges,
      nodes: result.nodes.length,
      paths: result.paths,
      jewels: result.jewels,
      jewelsReached: result.jewelsReached,
      chokePoints: result.chokePoints,
      ...written,
      unusableRules: edges.unusableRules,
      durationMs: Math.round(performance.now() - started),
      phases: { edges: edgesMs, load: loadMs, compute: computeMs, write: lap() },
    };
  });
}
