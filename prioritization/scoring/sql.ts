import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import { TIER_RANK, type Policy } from '../policy.js';
import type { FeedVersions } from './explanation.js';

// What the scoring statements share: their types, the policy's values as parameters, the planner
// settings, and the feed versions a run reads.

export type Tx = postgres.TransactionSql;
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** Which findings to score: a scan's assets (and what runs on them), given assets, or everything open. */
export type ScoringScope = { scanId: string } | { assetIds: number[] } | { all: true };
/**
 * `blocks`: the findings stored in heap blocks from <= block < to (null: to the end), one share of a
 * parallel rescoring of everything. Each share then reads only its blocks (a TID range scan), and
 * skips rows scored since `runStartedAt`: a sibling share that committed first may have moved its
 * rewritten rows into this share's blocks.
 */
export type InternalScope =
  | ScoringScope
  | { findingIds: number[] }
  /** The open findings of these vulnerabilities (a feed change that moved only them; findings_issue_idx). */
  | { issueIds: string[] }
  | { blocks: { from: number; to: number | null }; runStartedAt: Date };

// The server types these parameters from their ::jsonb[] cast, and postgres.js then serializes each
// element as JSON: one parse per statement, and array subscripts per finding instead of jsonb lookups.
export const jsonbArray = (values: unknown[]) => values as unknown as string[];

/** The modifiers' values the statement reads, as parameters (nothing from a document is spliced into SQL text). */
export function modifierParams(policy: Policy) {
  const m = policy.document.modifiers;
  return {
    vendorStatuses: m.vendorStatus?.statuses ?? [],
    likelyOn: m.likelyExploited !== undefined,
    likelyAt: m.likelyExploited?.epssAtLeast ?? 2,
    likelyTo: m.likelyExploited?.to ?? 'attend',
    runtimeOn: m.notLoadedAtRuntime !== undefined,
    envOn: m.nonProduction !== undefined,
    envProduction: (m.nonProduction?.productionEnvironments ?? []).map((e) => e.toLowerCase()),
    envUnknownIsNonProd: m.nonProduction?.unknownMeans === 'non-production',
    envLower: m.nonProduction?.lowerBy ?? 0,
    envFactor: m.nonProduction?.scoreFactor ?? 1,
    controlOn: m.notExploitableControl !== undefined,
    controlTo: m.notExploitableControl?.to ?? 'track',
    controlToRank: m.notExploitableControl ? TIER_RANK[m.notExploitableControl.to] : 3,
    controlFactor: m.notExploitableControl?.scoreFactor ?? 1,
    validationOn: m.validation !== undefined,
    provenResults: m.validation?.proven?.results ?? [],
    provenTo: m.validation?.proven?.to ?? 'act',
    notExploitableOn: m.validation?.notExploitable !== undefined,
    notExploitableTo: m.validation?.notExploitable?.to ?? 'track',
    notExploitableFactor: m.validation?.notExploitable?.scoreFactor ?? 1,
    criticalities: m.criticalAsset?.criticalities ?? [],
    revenueAt: m.criticalAsset?.revenueAtLeast ?? null,
    criticalDueFactor: m.criticalAsset?.dueFactor ?? 1,
  };
}

/** Resolves the feed versions a run reads: the active ones unless given. */
export async function feedVersions(sql: Sql | Tx, given: Partial<FeedVersions> = {}): Promise<FeedVersions> {
  const rows = await sql<{ kind: 'epss' | 'kev' | 'cve'; version: string }[]>`
    select distinct on (kind) kind, version from intel_feeds where status = 'active' order by kind, activated_at desc nulls last, imported_at desc`;
  const active = Object.fromEntries(rows.map((r) => [r.kind, r.version]));
  return { epss: given.epss ?? active.epss ?? null, kev: given.kev ?? active.kev ?? null, cve: given.cve ?? active.cve ?? null };
}

export async function tuned(tx: Tx, shares = 1): Promise<void> {
  // Hash joins, the distinct-vulnerability aggregate and the per-finding results (read twice: for
  // the update and for the explanation parts) stay in memory at a million findings. Merge joins off:
  // the planner cannot estimate the findings' join to their vulnerability row and would sort every
  // finding for one (measured with them allowed: 12.29 and 12.45 s against 9.57-11.03 s for a first scoring).
  // Custom plans fold the policy's constants (a modifier that is off costs nothing); scores are
  // recomputed from the database, so the commit need not wait for the WAL flush.
  await tx`
    select set_config('work_mem', ${`${Math.max(64, Math.floor(512 / shares))}MB`}, true), set_config('enable_mergejoin', 'off', true),
           set_config('plan_cache_mode', 'force_custom_plan', true), set_config('synchronous_commit', 'off', true)`;
}

/** Parts a running scoring found stored are named without being inserted again: scorings share this lock, pruning takes it alone. */
export const PARTS_LOCK = 'ctem:explanation-parts';
