import type { Sql } from '../../db/client.js';
import type { Policy } from '../policy.js';
import type { FeedVersions } from './explanation.js';
import { assetContextHashes, currentInputs, recordedInputs, recordInputs, type ScoringInputs } from './inputs.js';
import { DEFAULT_PARALLEL } from './shares.js';
import { rescoreFindings } from './rescore.js';
import { rescoreIn, type RescoreResult } from './write.js';

// Incremental rescoring: compare what the estate was last scored with (inputs.ts) with what a
// rescoring would read now, and score only the findings whose inputs changed:
//   nothing changed          no statement over findings at all;
//   a KEV / EPSS / CVE-record version   the findings of the CVEs whose entry differs between the two
//                            versions (findings_issue_idx);
//   the context              the findings of the assets whose asset-step row differs;
//   the policy, a feed appearing or going, a version whose rows retention deleted, or most of the
//   estate affected         everything, in parallel shares (rescore.ts).
// Then the new inputs are recorded. Findings outside the scope keep what they have, which is what a
// full rescoring would give them, except that their explanation keeps naming the feed version that
// last decided them (a full rescoring rewrites every explanation to name the newest).

export interface IncrementalResult extends RescoreResult {
  /** unchanged: nothing read findings; partial: only the scope below; full: every open finding. */
  mode: 'unchanged' | 'partial' | 'full';
  /** What changed, in words. */
  changes: string[];
  /** partial: CVEs and assets rescored. */
  issueIds: number;
  assetIds: number;
  /** partial: the assets whose findings changed tier or due date (mobilization re-plans them). */
  eventAssetIds?: number[];
  /** partial: when the scoring started; those findings' changed_at is at or after it. */
  eventsSince?: Date;
}

/** Beyond this many changed CVEs (a daily EPSS file changes all of them) the full rescoring is cheaper. */
export const MAX_SCOPED_ISSUES = 20_000;
/** Beyond this share of the open findings, a scoped statement (one core, index driven) loses to the full rescoring (every core, sequential). */
export const MAX_SCOPED_SHARE = 0.25;

/** A scope this small is always scoped, whatever its share: any statement over it takes a moment. */
export const MIN_FULL_FINDINGS = 50_000;

const LOCK = 'ctem:incremental-rescore';

type Plan =
  | { mode: 'unchanged' | 'full'; changes: string[] }
  | { mode: 'partial'; changes: string[]; issueIds: string[]; assetIds: number[]; assetHashes?: Record<string, string> };

/**
 * Rescores what changed since the estate was last scored (see above) and records the new inputs.
 * Runs one at a time (an advisory lock): two runs at once would each record what they read. The
 * lock holds one connection of the pool for the run, so the pool needs at least two.
 */
export async function rescoreChanged(
  sql: Sql,
  policy: Policy,
  { reason, parallel = DEFAULT_PARALLEL }: { reason: string; parallel?: number },
): Promise<IncrementalResult> {
  const lock = await sql.reserve();
  try {
    await lock`select pg_advisory_lock(hashtext(${LOCK}))`;
    try {
      return await rescoreChangedLocked(sql, policy, reason, parallel);
    } finally {
      await lock`select pg_advisory_unlock(hashtext(${LOCK}))`;
    }
  } finally {
    lock.release();
  }
}

async function rescoreChangedLocked(sql: Sql, policy: Policy, reason: string, parallel: number): Promise<IncrementalResult> {
  const recorded = await recordedInputs(sql);
  const current = await currentInputs(sql, policy);
  const plan = await planRescore(sql, policy, recorded, current);
  const none = { scored: 0, changed: 0, events: 0, issueIds: 0, assetIds: 0 };
  if (plan.mode === 'unchanged') return { mode: 'unchanged', changes: plan.changes, ...none };
  if (plan.mode !== 'partial') {
    const result = await rescoreFindings(sql, policy, { all: true }, { reason, parallel });
    return { mode: 'full', changes: plan.changes, ...result, issueIds: 0, assetIds: 0 };
  }
  const [{ startedAt }] = (await sql`select now() as "startedAt"`) as unknown as [{ startedAt: Date }];
  const feeds = current.feeds as unknown as FeedVersions;
  let result: RescoreResult = { scored: 0, changed: 0, events: 0 };
  const add = (r: RescoreResult) => {
    result = { scored: result.scored + r.scored, changed: result.changed + r.changed, events: result.events + r.events };
  };
  if (plan.issueIds.length) add(await rescoreIn(sql, policy, { issueIds: plan.issueIds }, feeds, reason));
  if (plan.assetIds.length) add(await rescoreIn(sql, policy, { assetIds: plan.assetIds }, feeds, reason));
  await recordInputs(sql, current, plan.assetHashes);
  const eventAssetIds =
    result.events === 0
      ? []
      : (
          await sql<{ asset_id: string }[]>`
            select distinct asset_id from findings
            where status = 'open' and changed_at >= ${startedAt}
              and (issue_id = any(${plan.issueIds}::text[]) or asset_id = any(${plan.assetIds}::bigint[]))
            order by asset_id`
        ).map((r) => Number(r.asset_id));
  return { mode: 'partial', changes: plan.changes, ...result, issueIds: plan.issueIds.length, assetIds: plan.assetIds.length, eventAssetIds, eventsSince: startedAt };
}

/** What to rescore, from the recorded and the current inputs. Reads feeds and context, never findings but to count a scope. */
export async function planRescore(
  sql: Sql,
  policy: Policy,
  recorded: { estate: ScoringInputs | null; assets: Record<string, string> | null },
  current: ScoringInputs,
): Promise<Plan> {
  const full = (why: string): Plan => ({ mode: 'full', changes: [why] });
  const was = recorded.estate;
  if (!was) return full('no record of what the estate was last scored with');
  if (was.policy !== current.policy) return full(`policy ${was.policy} → ${current.policy}`);
  const changes: string[] = [];
  const issueIds = new Set<string>();
  for (const kind of [...new Set([...Object.keys(was.feeds), ...Object.keys(current.feeds)])].sort()) {
    const from = was.feeds[kind] ?? null;
    const to = current.feeds[kind] ?? null;
    if (from === to) continue;
    if (from === null || to === null) return full(`${kind} ${from ?? 'none'} → ${to ?? 'none'}`);
    const ids = await changedVulnerabilities(sql, kind, from, to);
    if (ids === null) return full(`${kind} ${from} → ${to}: more than ${MAX_SCOPED_ISSUES} CVEs changed, or a version's rows are gone`);
    changes.push(`${kind} ${from} → ${to}: ${ids.length} CVEs changed`);
    for (const id of ids) issueIds.add(id);
    if (issueIds.size > MAX_SCOPED_ISSUES) return full(`${changes.join('; ')}: more than ${MAX_SCOPED_ISSUES} CVEs changed`);
  }
  let assetIds: number[] = [];
  let assetHashes: Record<string, string> | undefined;
  if (was.context !== current.context) {
    if (!recorded.assets) return full('context changed, and no per-asset record to compare with');
    assetHashes = await assetContextHashes(sql, policy);
    const before = recorded.assets;
    assetIds = Object.keys(assetHashes)
      .filter((id) => before[id] !== assetHashes![id])
      .map(Number)
      .sort((a, b) => a - b);
    changes.push(`context: ${assetIds.length} assets changed`);
  }
  if (changes.length === 0) return { mode: 'unchanged', changes: [] };
  const ids = [...issueIds].sort();
  if (ids.length || assetIds.length) {
    const [count] = await sql<{ scoped: number; open: number }[]>`
      select (select count(*) from findings where status = 'open' and (issue_id = any(${ids}::text[]) or asset_id = any(${assetIds}::bigint[])))::float8 as scoped,
             greatest((select reltuples from pg_class where oid = 'findings'::regclass), 0)::float8 as open`;
    if (count && count.scoped > MIN_FULL_FINDINGS && count.scoped > MAX_SCOPED_SHARE * count.open) {
      return full(`${changes.join('; ')}: ${count.scoped} findings, more than ${MAX_SCOPED_SHARE * 100}% of the estate`);
    }
  }
  return { mode: 'partial', changes, issueIds: ids, assetIds, ...(assetHashes ? { assetHashes } : {}) };
}

/**
 * The CVEs whose entry differs between two versions of a feed (added, removed or changed), or null
 * when that cannot be told (a kind this does not know, a version whose rows retention deleted) or
 * more than MAX_SCOPED_ISSUES differ. KEV: every column; EPSS: the score and the percentile (both
 * are in the explanation); CVE records: the record's hash.
 */
export async function changedVulnerabilities(sql: Sql, kind: string, from: string, to: string): Promise<string[] | null> {
  const table = { kev: 'kev_entries', epss: 'epss_scores', cve: 'cve_records' }[kind];
  if (!table) return null;
  // A version that had rows and has none stored any more cannot be compared with.
  const gone = await sql.unsafe<{ version: string }[]>(
    `select f.version from intel_feeds f
     where f.kind = $1 and f.version = any($2::text[]) and f.rows > 0
       and not exists (select 1 from ${table} t where t.feed_version = f.version)`,
    [kind, [from, to]],
  );
  if (gone.length > 0) return null;
  const differs = {
    kev: `(to_jsonb(n) - 'feed_version') is distinct from (to_jsonb(o) - 'feed_version')`,
    epss: `(n.epss, n.percentile) is distinct from (o.epss, o.percentile)`,
    cve: `n.sha256 is distinct from o.sha256`,
  }[kind as 'kev' | 'epss' | 'cve'];
  const [row] = await sql.unsafe<{ n: number; ids: string[] | null }[]>(
    `with diff as (
       select coalesce(n.cve, o.cve) as cve
       from (select * from ${table} where feed_version = $1) n
       full join (select * from ${table} where feed_version = $2) o on o.cve = n.cve
       where n.cve is null or o.cve is null or ${differs}
       -- A daily EPSS file changes every CVE: stop at the first one over the limit.
       limit $3 + 1
     )
     select count(*)::int as n, array_agg(cve order by cve) as ids from diff`,
    [to, from, MAX_SCOPED_ISSUES],
  );
  if (!row || row.n > MAX_SCOPED_ISSUES) return null;
  return row.ids ?? [];
}
