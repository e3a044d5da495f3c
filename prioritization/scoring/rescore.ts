import type { Sql } from '../../db/client.js';
import type { Policy } from '../policy.js';
import { DEFAULT_PARALLEL, shareBlocks } from './shares.js';
import type { FeedVersions } from './explanation.js';
import { assetContextHashes, currentInputs, recordedInputs, recordInputs } from './inputs.js';
import { feedVersions, type ScoringScope } from './sql.js';
import { rescoreIn, type RescoreResult } from './write.js';

// Rescoring: the policy (decision.ts) and its wording (explanation.ts) applied set-based to the open
// findings in scope, in steps of their own: relation.ts (what is in scope, each finding's facts
// and cell, what changed), write.ts (the update and the explanation parts), history.ts (score
// history, which is also the exposure events), shares.ts (a full rescoring on every core).
// Shadow scoring (shadow.ts) reads the same relation without writing.

export { DEFAULT_PARALLEL, shareBlocks } from './shares.js';
export { pruneExplanationParts } from './prune.js';
export { shadowScore, shadowScoreIn, type ShadowDiff, type ShadowOptions, type ShadowSample, type TierTransition } from './shadow.js';
export { differingFactors, type FeedVersions } from './explanation.js';
export type { ScoringScope } from './sql.js';
export type { RescoreResult } from './write.js';

/**
 * Rescores the open findings in scope with the policy and the active feeds, in one statement (one
 * per share of the findings table's blocks, on as many connections, when the scope is everything).
 * Writes only findings whose tier, score, due date or explanation changed; a due date is set when
 * the tier first appears or changes and otherwise stays. Each finding whose tier or due date changed
 * gets a new score_history entry, which is also its exposure event (what mobilization consumes); a
 * score that only drifts with the daily EPSS is not history, or every feed update would copy every
 * finding.
 */
export async function rescoreFindings(
  sql: Sql,
  policy: Policy,
  scope: ScoringScope,
  { reason, parallel = DEFAULT_PARALLEL }: { reason: string; parallel?: number },
): Promise<RescoreResult> {
  const feeds = await feedVersions(sql);
  if (!('all' in scope)) return rescoreIn(sql, policy, scope, feeds, reason);
  // Everything is scored with these inputs: recorded once it is done, so the next incremental
  // rescoring (incremental.ts) starts from a known state. Read before scoring: a change made while it
  // runs then shows as a change next time.
  const [inputs, recorded] = await Promise.all([currentInputs(sql, policy), recordedInputs(sql)]);
  // The per-asset hashes follow from the policy and the context alone: still right when neither
  // changed (a new EPSS day), so not computed again.
  const same = recorded.estate?.policy === inputs.policy && recorded.estate.context === inputs.context && recorded.assets !== null;
  const assets = same ? undefined : await assetContextHashes(sql, policy);
  const result = await rescoreAllIn(sql, policy, feeds, reason, parallel);
  await recordInputs(sql, { ...inputs, feeds: { ...inputs.feeds, ...feeds } }, assets);
  return result;
}

async function rescoreAllIn(sql: Sql, policy: Policy, feeds: FeedVersions, reason: string, parallel: number): Promise<RescoreResult> {
  if (parallel <= 1) return rescoreIn(sql, policy, { all: true }, feeds, reason);
  // Everything: one share of the findings table's blocks per connection, so the statement's work (a
  // single PostgreSQL backend each) runs on every core. Each share is its own transaction, complete
  // for its blocks; the run resolves the feed versions once so all shares score against the same
  // ones. A share that fails leaves the others committed: rescoring is idempotent, a retry finishes it.
  const blocks = await shareBlocks(sql, parallel);
  // Each share has its own snapshot: one that starts after a sibling committed sees that sibling's
  // rewritten rows in its own blocks, and must not score them twice.
  const [{ runStartedAt }] = (await sql`select clock_timestamp() as "runStartedAt"`) as unknown as [{ runStartedAt: Date }];
  const shares = await Promise.allSettled(blocks.map((share) => rescoreIn(sql, policy, { blocks: share, runStartedAt }, feeds, reason, blocks.length)));
  const failed = shares.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return shares.reduce<RescoreResult>(
    (sum, s) => {
      const r = (s as PromiseFulfilledResult<RescoreResult>).value;
      return { scored: sum.scored + r.scored, changed: sum.changed + r.changed, events: sum.events + r.events };
    },
    { scored: 0, changed: 0, events: 0 },
  );
}

/** The open findings of one scan's assets (and of the images that run on them). */
export async function scoreScanFindings(sql: Sql, policy: Policy, scanId: string): Promise<RescoreResult> {
  return rescoreFindings(sql, policy, { scanId }, { reason: `scan ${scanId}` });
}
