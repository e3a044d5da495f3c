import type { Policy } from '../policy.js';
import { epssSource, kevSource, policySource, WORDS as W, type FeedVersions } from './explanation.js';
import { modifierParams, type Fragment, type Tx } from './sql.js';

/**
 * The scoring statement's per-vulnerability step, computed once per distinct (id, CVSS vector, CVSS
 * score) of the findings in scope: the feeds' facts, the decision points that depend on the
 * vulnerability alone (in KEV, automatable, technical impact, the severity tier without a catalog,
 * likely exploited), the score's vulnerability part (decision.ts vulnerabilityScore, same order of
 * terms) and the vulnerability's explanation part (v_body, keyed by content as v_id). CTEs: vkeys,
 * vectors, vparsed, vdecided, vulns0, vulns.
 */
export function vulnerabilityCtes(tx: Tx, policy: Policy, feeds: FeedVersions, findingFilter: Fragment) {
  const c = modifierParams(policy);
  const dp = policy.document.decisionPoints;
  const w = policy.document.score.weights;
  const autoVec = tx`strpos(x.vv, '/AV:N/') > 0 and strpos(x.vv, '/AC:L/') > 0 and strpos(x.vv, '/PR:N/') > 0 and strpos(x.vv, '/UI:N/') > 0`;
  const totalVec = tx`strpos(x.vv, '/C:H/') > 0 and (strpos(x.vv, '/I:H/') > 0 or strpos(x.vv, '/S:C/') > 0)`;
  const metric = (name: string) => tx`coalesce(substring(x.vec from ${`/${name}:([A-Z])`}::text), '?')`;
  return tx`
    vkeys as (
      select f.issue_id, coalesce(f.cvss_vector, '') as vec, coalesce(f.cvss_score, -1) as cv, count(*)::int as n
      from findings f where f.status = 'open' and ${findingFilter}
      group by 1, 2, 3
    ),
    vectors as materialized (
      select x.vec, ${autoVec} as auto, ${totalVec} as total,
        jsonb_build_object('factor', 'automatable', 'source', ${W.vectorSource}::text, 'value', case when ${autoVec} then 'yes' else 'no' end,
          'effect', format(${W.automatableVector}::text, ${metric('AV')}, ${metric('AC')}, ${metric('PR')}, ${metric('UI')},
                           case when ${autoVec} then ${W.automatableVectorYes}::text else ${W.automatableVectorNo}::text end)) as auto_obj,
        jsonb_build_object('factor', 'technical_impact', 'source', ${W.vectorSource}::text,
          'value', case when ${totalVec} then 'total' else 'partial' end,
          'effect', format(${W.impactVector}::text, ${metric('C')}, ${metric('I')}, ${metric('S')})) as ti_obj
      from (select distinct vec, '/' || vec || '/' as vv from vkeys where vec like 'CVSS:3._/%') x
    ),
    vparsed as (
      select d.*, e.epss, e.percentile, k.cve is not null as in_kev, k.date_added, k.known_ransomware,
        x.vec is not null as v3, x.auto as vauto, x.total as vtotal, x.auto_obj as vauto_obj, x.ti_obj as vti_obj
      from vkeys d
      left join vectors x on x.vec = d.vec
      left join epss_scores e on e.feed_version = ${feeds.epss}::text and e.cve = d.issue_id
      left join kev_entries k on k.feed_version = ${feeds.kev}::text and k.cve = d.issue_id
    ),
    vdecided as (
      select p.*,
        case when ${dp.automatable.fromCvssVector}::boolean and p.v3 then p.vauto
             else coalesce(p.epss >= ${dp.automatable.epssAtLeast}::float8, false) end as auto,
        case when ${dp.technicalImpact.fromCvssVector}::boolean and p.v3 then p.vtotal
             else p.cv >= ${dp.technicalImpact.totalAtCvss}::real end as total,
        case when p.cv >= ${dp.inKev.withoutCatalog.attendAtCvss}::real then 2 when p.cv >= ${dp.inKev.withoutCatalog.trackStarAtCvss}::real then 1 else 0 end as sev_tier
      from vparsed p
    ),
    vulns0 as (
      select v.issue_id, v.vec, v.cv, v.n, v.epss, v.in_kev, v.auto, v.total, v.sev_tier,
        coalesce(v.epss >= ${c.likelyAt}::float8, false) and ${c.likelyOn}::boolean as likely,
        ${w.inKev}::float8 * v.in_kev::int + ${w.automatable}::float8 * v.auto::int + ${w.technicalImpact}::float8 * v.total::int
          + ${w.epss}::float8 * coalesce(v.epss, 0) + ${w.cvss}::float8 * greatest(v.cv, 0)::numeric::float8 / 10 as score_base,
        jsonb_build_object('factor', 'in_kev', 'value', case when ${feeds.kev !== null}::boolean then v.in_kev end, 'source', ${kevSource(feeds)}::text,
          'effect', case when not ${feeds.kev !== null}::boolean then ${W.kevNoCatalog}::text
                         when v.in_kev then format(${W.kevIn}::text, ${feeds.kev}::text, coalesce(v.date_added, ${W.kevAddedUnknown}::text),
                                                   case when v.known_ransomware then ${W.kevRansomware}::text else '' end)
                         else format(${W.kevNotIn}::text, ${feeds.kev}::text) end) as kev_obj,
        case when ${dp.automatable.fromCvssVector}::boolean and v.v3 then v.vauto_obj
             else jsonb_build_object('factor', 'automatable', 'value', case when v.auto then 'yes' else 'no' end, 'source', ${epssSource(feeds)}::text,
               'effect', case when v.auto then format(${W.automatableEpssYes}::text, v.epss, ${dp.automatable.epssAtLeast}::float8)
                              when v.epss is not null then format(${W.automatableEpssNo}::text, v.epss, ${dp.automatable.epssAtLeast}::float8)
                              else ${W.automatableNone}::text end) end as auto_obj,
        case when ${dp.technicalImpact.fromCvssVector}::boolean and v.v3 then v.vti_obj
             else jsonb_build_object('factor', 'technical_impact', 'value', case when v.total then 'total' else 'partial' end, 'source', ${W.impactScoreSource}::text,
               'effect', case when v.cv < 0 then ${W.impactNoCvss}::text
                              when v.total then format(${W.impactScoreTotal}::text, v.cv, ${dp.technicalImpact.totalAtCvss}::real)
                              else format(${W.impactScorePartial}::text, v.cv, ${dp.technicalImpact.totalAtCvss}::real) end) end as ti_obj,
        jsonb_build_object('factor', 'epss', 'value', v.epss, 'source', ${epssSource(feeds)}::text,
          'effect', case when not ${feeds.epss !== null}::boolean then ${W.epssNoFeed}::text
                         when v.epss is null then ${W.epssNoScore}::text
                         else format(${W.epss}::text, round((v.epss * 100)::numeric, 2), round((v.percentile * 100)::numeric, 2)) end) as epss_obj,
        case when v.epss >= ${c.likelyAt}::float8 then jsonb_build_object('factor', 'likely_exploited', 'value', v.epss, 'source', ${epssSource(feeds)}::text,
          'effect', format(${W.likely}::text, v.epss, ${c.likelyAt}::float8, ${c.likelyTo}::text)) end as likely_obj,
        case when ${feeds.kev === null}::boolean then jsonb_build_object('factor', 'decision', 'value', (array['track', 'track*', 'attend'])[v.sev_tier + 1], 'source', ${policySource(policy)}::text,
          'effect', format(${W.severity}::text, case when v.cv < 0 then 'unknown' else v.cv::text end, (array['track', 'track*', 'attend'])[v.sev_tier + 1])) end as sev_obj
      from vdecided v
    ),
    -- The vulnerability's part (feeds, CVSS), by content: ids that share a wording share a part.
    vulns as materialized (
      select v.issue_id, v.vec, v.cv, v.n, v.in_kev, v.auto, v.total, v.sev_tier, v.likely, v.score_base, p.v_body, md5(p.v_body::text)::uuid as v_id
      from vulns0 v
      cross join lateral (
        select jsonb_build_object('kev', v.kev_obj, 'auto', v.auto_obj, 'ti', v.ti_obj, 'epss', v.epss_obj)
               || case when v.likely_obj is not null then jsonb_build_object('likely', v.likely_obj) else '{}' end
               || case when v.sev_obj is not null then jsonb_build_object('sev', v.sev_obj) else '{}' end as v_body
        -- Not pulled up: the body would then be built twice, once more inside md5() (measured: 0.79-1.10 s against 1.17-1.33 s per share).
        offset 0
      ) p
    )`;
}
