import type { Sql } from '../../db/client.js';
import type { Policy } from '../policy.js';
import { MODIFIER_SPAN } from './decision.js';
import { decisionPartSql } from './decision-part.js';
import type { FeedVersions } from './explanation.js';
import { archiveSuperseded } from './history.js';
import { scoringRelation } from './relation.js';
import { PARTS_LOCK, tuned, type InternalScope } from './sql.js';

export interface RescoreResult {
  /** Open findings in scope. */
  scored: number;
  /** Findings whose tier, score, due date or explanation was written. */
  changed: number;
  /** Findings whose tier or due date changed (each gets a score_history entry, which is its exposure event). */
  events: number;
}

/**
 * One scoring statement in one transaction: the scoring relation (relation.ts), then the writes.
 * The vulnerability and asset parts go in as the relation names them; the update writes only the
 * findings where something changed, keeping a change of tier or due date on the finding itself (its
 * latest score_history entry); the decision parts go in from the distinct cells the update
 * returned; and the changes it superseded move to score_changes (history.ts).
 */
export async function rescoreIn(sql: Sql, policy: Policy, scope: InternalScope, feeds: FeedVersions, reason: string, shares = 1): Promise<RescoreResult> {
  return sql.begin(async (tx) => {
    // Shares run at once, each with its part of the memory a single statement would get.
    await tuned(tx, shares);
    // Parts this statement finds already stored are named without being inserted again, so pruning
    // must not delete them in between: scorings share this lock, pruning takes it alone.
    await tx`select pg_advisory_xact_lock_shared(hashtext(${PARTS_LOCK}))`;
    const { ctes, rows, params } = scoringRelation(tx, policy, scope, feeds);
    const { cells, cellPartIds } = params;
    const [result] = await tx<{ scored: number; changed: number; events: number }[]>`
      with ${ctes},
      vuln_parts as (
        insert into explanation_parts (id, body)
        select distinct on (v_id) v_id, v_body from vulns order by v_id
        on conflict (id) do nothing
      ),
      asset_parts as (
        insert into explanation_parts (id, body)
        select distinct on (a_id) a_id, a_body from asset_ctx order by a_id
        on conflict (id) do nothing
      ),
      -- Straight from the relation, joined back by ctid (a prototype that updated from its own scan
      -- was slower: 10.45-12.26 s against 9.68-11.46 s for both shares).
      upd as (
        update findings t set
          tier = s.tier, score = s.score, due_at = s.due_at, scored_at = now(),
          explanation_vuln = s.v_id, explanation_asset = s.a_id, explanation_context = s.c_id,
          change_id = case when s.moved then nextval('score_changes_id_seq') else t.change_id end,
          changed_at = case when s.moved then now() else t.changed_at end,
          change_reason = case when s.moved then ${reason}::text else t.change_reason end,
          change_policy = case when s.moved then ${policy.version}::text else t.change_policy end,
          previous_tier = case when s.moved then s.old_tier else t.previous_tier end,
          previous_due_at = case when s.moved then s.old_due else t.previous_due_at end
        from (${rows}) s
        where t.ctid = s.row_ctid
          and (s.moved or s.old_score is distinct from s.score
               or s.old_vuln is distinct from s.v_id or s.old_asset is distinct from s.a_id or s.old_context is distinct from s.c_id)
        -- Narrow rows, a million of them at a first scoring: the cell, and the part id only when a
        -- control or vendor status is in it (a cell's part follows from the cell).
        returning t.id, s.moved, s.old_change, s.k,
          case when s.unexposed_by is not null or s.control is not null or s.validation is not null or s.vendor is not null then s.c_id end as c_special,
          s.unexposed_by, s.control, s.validation, s.vendor
      ),
      context_parts as (
        insert into explanation_parts (id, body)
        select k.c_id, ${decisionPartSql(tx, params, tx`k.k`, tx`k.b`, tx`k.ft`, tx`k.critical`, tx`k.shape`, tx`k.unexposed_by`, tx`k.control`, tx`k.validation`, tx`k.vendor`)}
        from (
          select distinct k, null::uuid as c_special, null::jsonb as unexposed_by, null::jsonb as control, null::jsonb as validation, null::text as vendor
          from upd where c_special is null
          union all
          select any_value(k), c_special, any_value(unexposed_by), any_value(control), any_value(validation), any_value(vendor)
          from upd where c_special is not null group by c_special
        ) p
        -- What the cell gives, as the scoring relation decodes it.
        cross join lateral (
          select coalesce(p.c_special, (${cellPartIds}::uuid[])[p.k + 1]) as c_id, p.k, p.k / ${MODIFIER_SPAN}::int as b, (${cells.tierRank}::int[])[p.k + 1] as ft,
                 p.k & 1 = 1 as critical, (${cells.shape}::int[])[p.k + 1] as shape, p.unexposed_by, p.control, p.validation, p.vendor
        ) k
        -- In id order, as the other parts: concurrent shares then never wait on each other in a cycle.
        order by k.c_id
        on conflict (id) do nothing
      ),
      superseded as (${archiveSuperseded(tx, 'upd')})
      select (select coalesce(sum(n), 0) from vkeys)::int as scored, w.changed, w.events
      from (select count(*)::int as changed, (count(*) filter (where moved))::int as events from upd) w`;
    return { scored: result?.scored ?? 0, changed: result?.changed ?? 0, events: result?.events ?? 0 };
  });
}
