import type { Sql } from '../../db/client.js';
import type { Tx } from './sql.js';

// Score history (the score_history view): one row per change of a finding's tier or due date, which
// is also its exposure event. The latest change lives on the finding; its archive part,
// score_changes, holds the changes a later one superseded.

/**
 * The write's last step: each change the update superseded (the finding had one, and moved again)
 * goes to score_changes, read from the finding as it was before the update. `moved` names a CTE of
 * the updated findings with their id, moved and old_change.
 */
export function archiveSuperseded(tx: Tx, moved: string) {
  return tx`
    insert into score_changes (id, finding_id, asset_id, old_tier, tier, score, old_due_at, due_at, policy_version,
                               explanation_vuln, explanation_asset, explanation_context, reason, at)
    select f.change_id, f.id, f.asset_id, f.previous_tier, f.tier, f.score, f.previous_due_at, f.due_at, f.change_policy,
           f.explanation_vuln, f.explanation_asset, f.explanation_context, f.change_reason, f.changed_at
    from findings f
    where f.id = any(array(select id from ${tx(moved)} where moved and old_change))`;
}

/** The ids of the history entries made at or after `since`, up to the latest (from > to: none). */
export async function historyRangeSince(sql: Sql, since: Date): Promise<{ fromId: number; toId: number }> {
  const [range] = await sql<{ from_id: string; to_id: string }[]>`
    select coalesce(min(id) filter (where at >= ${since}), max(id) + 1, 1)::bigint as from_id, coalesce(max(id), 0)::bigint as to_id
    from score_history`;
  return { fromId: Number(range!.from_id), toId: Number(range!.to_id) };
}

/** The assets with history entries in an id range, a page after `afterAssetId` at a time, ascending. */
export async function assetsWithHistory(sql: Sql, input: { fromId: number; toId: number; afterAssetId: number; limit: number }): Promise<number[]> {
  const rows = await sql`
    select distinct asset_id from score_history
    where id between ${input.fromId} and ${input.toId} and asset_id > ${input.afterAssetId}
    order by asset_id limit ${input.limit}`;
  return rows.map((r) => Number(r.asset_id));
}
