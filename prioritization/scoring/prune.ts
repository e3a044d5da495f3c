import type { Sql } from '../../db/client.js';
import { PARTS_LOCK } from './sql.js';

/**
 * Deletes the explanation parts that no finding and no history entry names any more: a new EPSS
 * version rewords most vulnerability parts, so without this every daily feed would leave tens of
 * thousands behind. Waits for running scorings (they hold the lock shared) and holds new ones off
 * while it runs; idempotent. Returns how many parts it deleted.
 */
export async function pruneExplanationParts(sql: Sql): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`select set_config('work_mem', '256MB', true)`;
    await tx`select pg_advisory_xact_lock(hashtext(${PARTS_LOCK}))`;
    const [result] = await tx<{ pruned: number }[]>`
      -- The distinct ids of each column in one scan of each table (grouping sets hash all three at
      -- once; outside its own set a column reads null, so coalesce gives the set's id): a third of
      -- the time of one scan per column.
      with named as (
        select coalesce(explanation_vuln, explanation_asset, explanation_context) as id from findings
        group by grouping sets ((explanation_vuln), (explanation_asset), (explanation_context))
        union all
        select coalesce(explanation_vuln, explanation_asset, explanation_context) from score_changes
        group by grouping sets ((explanation_vuln), (explanation_asset), (explanation_context))
      ),
      pruned as (
        delete from explanation_parts p where not exists (select 1 from named n where n.id = p.id) returning 1
      )
      select count(*)::int as pruned from pruned`;
    return result?.pruned ?? 0;
  });
}
