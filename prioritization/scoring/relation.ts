import type { Policy } from '../policy.js';
import { assetContextCtes } from './asset-context.js';
import { decisionParams, decisionPartId, decisionPartSql } from './decision-part.js';
import type { FeedVersions } from './explanation.js';
import { modifierParams, type Fragment, type InternalScope, type Tx } from './sql.js';
import { vulnerabilityCtes } from './vulnerabilities.js';
import { MODIFIER_SPAN } from './decision.js';

/**
 * The scoring relation for a scope, the first step of rescoring and all of shadow scoring: CTEs
 * (asset-context.ts, vulnerabilities.ts), then one row per open finding in scope with what it
 * carries now (old_*), whether it moved, and the new tier, score, due date and explanation part ids.
 * With `bodies`, also both explanations assembled (shadow samples).
 *
 * Each finding's decision is a lookup: its cell (decision.ts cellKey, computed here in SQL from the
 * decision points) indexes arrays that decision.ts fills per cell.
 */
export function scoringRelation(tx: Tx, policy: Policy, scope: InternalScope, feeds: FeedVersions, { bodies = false }: { bodies?: boolean } = {}) {
  const params = decisionParams(policy);
  const { cells } = params;
  const c = modifierParams(policy);
  const dp = policy.document.decisionPoints;
  const w = policy.document.score.weights;

  const scopeAssets: Fragment | null =
    'scanId' in scope
      ? tx`select asset_id from scan_assets where scan_id = ${scope.scanId}
           union
           select r.asset_id from asset_relations r join scan_assets s on s.asset_id = r.target_id
           where s.scan_id = ${scope.scanId} and r.relation = 'runs_on'`
      : 'assetIds' in scope
        ? tx`select unnest(${scope.assetIds}::bigint[]) as asset_id`
        : 'findingIds' in scope
          ? tx`select distinct asset_id from findings where id = any(${scope.findingIds}::bigint[])`
          : 'issueIds' in scope
            ? tx`select distinct asset_id from findings where issue_id = any(${scope.issueIds}::text[]) and status = 'open'`
            : null;
  const findingFilter: Fragment =
    'issueIds' in scope
      ? tx`f.issue_id = any(${scope.issueIds}::text[])`
      : 'findingIds' in scope
      ? tx`f.id = any(${scope.findingIds}::bigint[])`
      : 'assetIds' in scope
        ? tx`f.asset_id = any(${scope.assetIds}::bigint[])`
        : 'blocks' in scope
          ? tx`f.ctid >= ${`(${scope.blocks.from},0)`}::tid
               ${scope.blocks.to === null ? tx`` : tx`and f.ctid < ${`(${scope.blocks.to},0)`}::tid`}
               and (f.scored_at is null or f.scored_at < ${scope.runStartedAt})`
          : scopeAssets
            ? tx`f.asset_id in (select asset_id from scope_assets)`
            : tx`true`;

  const ctes = tx`
    ${scopeAssets ? tx`scope_assets as materialized (${scopeAssets}),` : tx``}
    ${assetContextCtes(tx, policy, scopeAssets !== null)},
    ${vulnerabilityCtes(tx, policy, feeds, findingFilter)}`;

  // The cell's base, final tier rank and shape: read only for a part that is not the cell's own.
  const key = tx`y0.k`;
  const base = tx`y0.k / ${MODIFIER_SPAN}::int`;
  const tierRank = tx`(${cells.tierRank}::int[])[y0.k + 1]`;
  const shape = tx`(${cells.shape}::int[])[y0.k + 1]`;
  const partId = decisionPartId(tx, params, key, tx`y.unexposed_by`, tx`y.control`, tx`y.validation`, tx`y.vendor`);

  // Per finding: the three lookups that need the finding itself run only on assets that have EDR
  // coverage, controls or validation evidence (a guard on asset-level values), so most findings pay for none.
  const rows = tx`
    select f.ctid as row_ctid, f.id, f.asset_id, f.tier as old_tier, f.score as old_score, f.due_at as old_due,
      f.explanation_vuln as old_vuln, f.explanation_asset as old_asset, f.explanation_context as old_context,
      f.change_id is not null as old_change,
      -- The tier or the due date changes (the due date stays while the tier does, once set).
      f.tier is distinct from y.tier or f.due_at is null as moved,
      y.tier, y.score, v.v_id, a.a_id, ${partId} as c_id, y0.k,
      y.unexposed_by, y.control, y.validation, y.vendor,
      case when f.tier is not distinct from y.tier and f.due_at is not null then f.due_at
           else now() + y.due_days * interval '1 day' end as due_at
      ${bodies ? tx`, f.issue_id, a.name as asset_name, f.explanation as old_explanation,
                    explanation_assemble(v.v_body, a.a_body, ${decisionPartSql(tx, params, key, base, tierRank, tx`a.critical`, shape, tx`y.unexposed_by`, tx`y.control`, tx`y.validation`, tx`y.vendor`)},
                                         f.component, y.score) as explanation` : tx``}
    from findings f
    -- "+ 0" and "|| ''": hash joins on the few assets and vulnerabilities over findings scanned in
    -- order, never index scans per id (measured without both: a share ran over 90 s, against about 9 s for all).
    join asset_ctx a on a.id = f.asset_id + 0
    join vulns v on v.issue_id = f.issue_id || '' and v.vec = coalesce(f.cvss_vector, '') and v.cv = coalesce(f.cvss_score, -1)
    -- The finding's own evidence: what EDR saw of its component, and the controls that cover it.
    cross join lateral (
      select
        -- EDR names Maven packages either group:artifact or artifact alone.
        case when a.edr_covered then coalesce(a.rt_seen ->> lower(f.component),
                                              case when strpos(f.component, ':') > 0 then a.rt_seen ->> lower(split_part(f.component, ':', 2)) end) end as seen,
        case when a.ctl_names is not null
                  and (a.ctl_ports or f.issue_id = any(a.ctl_issue_ids) or f.component = any(a.ctl_components) or f.cwes && a.ctl_cwes) then (
          select array[(array_agg(c.obj order by c.name) filter (where c.effect = 'not_exposed'))[1],
                       (array_agg(c.obj order by c.name) filter (where c.effect = 'not_exploitable'))[1]]
          from ctl c
          where c.name = any(a.ctl_names)
            and (f.issue_id = any(c.issue_ids) or f.component = any(c.components) or f.cwes && c.cwes
                 or (cardinality(c.ports) > 0 and a.exposed_ports <@ c.ports))) end as ctls,
        -- The latest unexpired validation test of this vulnerability here: {r: result, o: its factor}.
        case when a.ev is not null then a.ev -> f.issue_id end as ev
      -- "offset 0" here, on y0, y and the relation: each computed once per finding, not again wherever a
      -- column is used (measured without them: a first scoring of a million took 17.0-26.6 s, against 8.1-9.2 s).
      offset 0
    ) x
    -- The finding's cell, decision.ts cellKey: base * 2048 + not exploitable (validation) 1024 + proven (validation) 512 +
    -- public exploit 256 + exposed 128 + likely 64 + EDR 32 + unseen 16 + non-production 8 + control 4 + vendor 2 + critical 1.
    cross join lateral (
      select
        case when ${feeds.kev !== null}::boolean
             then v.exploited::int * 8 + e.pe::int * 4 + v.auto::int * 2 + v.total::int
             else 16 + v.sev_tier end * ${MODIFIER_SPAN}::int
        + v.poc::int * 256 + e.pe::int * 128 + v.likely::int * 64 + a.edr_covered::int * 32 + (x.seen is null)::int * 16 + a.nonprod::int * 8
        + (x.ctls[2] is not null)::int * 4 + coalesce(f.vendor_status = any(${c.vendorStatuses}::text[]), false)::int * 2
        + a.critical::int
        + case when x.ev is null then 0
               else (x.ev ->> 'r' = any(${c.provenResults}::text[]))::int * 512 + (x.ev ->> 'r' = 'not_exploitable')::int * 1024 end as k,
        e.pe
      from (select case when a.exposed = 'yes' then x.ctls[1] is null
                        when a.exposed = 'unknown' then ${dp.publiclyExposed.unknownMeans === 'yes'}::boolean
                        else false end as pe) e
      offset 0
    ) y0
    -- The cell's outcome (decision.ts decide, per cell) and the score (decision.ts score).
    cross join lateral (
      -- Fixed-width arrays only: subscripting a text array walks it from the start (2.1 s against 0.7 s in EXPLAIN ANALYZE).
      select (array['track', 'track*', 'attend', 'act'])[${tierRank} + 1] as tier, (${cells.dueDays}::float8[])[y0.k + 1] as due_days,
        round((v.score_base + case when y0.pe then ${w.publiclyExposed}::float8 else 0 end) * (${cells.scoreFactor}::float8[])[y0.k + 1] * 10) / 10 as score,
        case when a.exposed = 'yes' then x.ctls[1] end as unexposed_by,
        -- Shown where they applied (shape: control 8, validation 64): proven exploitation overrides the control.
        case when x.ctls[2] is not null and (${cells.shape}::int[])[y0.k + 1] & 8 = 8 then x.ctls[2] end as control,
        case when x.ev is not null and (${cells.shape}::int[])[y0.k + 1] & 64 = 64 then x.ev -> 'o' end as validation,
        case when y0.k & 2 = 2 then f.vendor_status end as vendor
      offset 0
    ) y
    where f.status = 'open' and ${findingFilter}
    offset 0`;
  return { ctes, rows, params };
}
