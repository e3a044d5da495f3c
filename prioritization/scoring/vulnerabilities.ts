import type { Policy } from '../policy.js';
import { epssSource, kevSource, policySource, WORDS as W, wordsOf, type FeedVersions } from './explanation.js';
import { modifierParams, type Fragment, type Tx } from './sql.js';

/**
 * The scoring statement's per-vulnerability step, computed once per distinct (id, CVSS vector, CVSS
 * score) of the findings in scope: the feeds' and the CVE record's facts, the decision points that
 * depend on the vulnerability alone with one rule of precedence each (decision.ts
 * decideVulnerability states them: exploited from KEV or SSVC active; automatable and technical
 * impact from SSVC, else the best CVSS v3 vector, the CVE record's over the scanner's, else EPSS and
 * the score), the severity tier without a catalog, likely exploited and a public exploit, the score's
 * vulnerability part and terms (decision.ts vulnerabilityScore, same order of terms) and the
 * vulnerability's explanation part (v_body, keyed by content as v_id). CTEs: vkeys, vrec, vectors,
 * vparsed, vsources (which source decides each point), vdecided, vulns0, vulns. `keys` replaces
 * the findings as the source of (issue_id, vec, cv, n) rows: a backtest decides every CVE of an
 * EPSS file this way.
 */
export function vulnerabilityCtes(tx: Tx, policy: Policy, feeds: FeedVersions, findingFilter: Fragment, keys?: Fragment) {
  const c = modifierParams(policy);
  const dp = policy.document.decisionPoints;
  const w = policy.document.score.weights;
  const recordFirst = dp.cvss?.cveRecordFirst === true;
  const ssvcActive = dp.exploitation?.ssvcActive === true;
  const readsExploitation = dp.exploitation !== undefined || policy.document.modifiers.publicExploit !== undefined;
  const pocOn = policy.document.modifiers.publicExploit !== undefined;
  const ratingFrom = wordsOf(W.ratingFrom);
  const exploitationWords = wordsOf(W.exploitationWords);
  const autoVec = tx`strpos(x.vv, '/AV:N/') > 0 and strpos(x.vv, '/AC:L/') > 0 and strpos(x.vv, '/PR:N/') > 0 and strpos(x.vv, '/UI:N/') > 0`;
  const totalVec = tx`strpos(x.vv, '/C:H/') > 0 and (strpos(x.vv, '/I:H/') > 0 or strpos(x.vv, '/S:C/') > 0)`;
  const metric = (name: string) => tx`coalesce(substring(x.vec from ${`/${name}:([A-Z])`}::text), '?')`;
  const ssvcSource = tx`format(${W.ssvcSource}::text, ${feeds.cve ?? null}::text, to_char(v.ssvc_assessed_at at time zone 'UTC', 'YYYY-MM-DD'))`;
  return tx`
    vkeys as (
      ${keys ?? tx`
      select f.issue_id, coalesce(f.cvss_vector, '') as vec, coalesce(f.cvss_score, -1) as cv, count(*)::int as n
      from findings f where f.status = 'open' and ${findingFilter}
      group by 1, 2, 3`}
    ),
    -- The CVE record's facts, and the rating the decision reads: the record's CNA vector, else its
    -- ADP's, over the scanner's (when the policy says so).
    vrec as (
      select d.*, r.ssvc_exploitation, r.ssvc_automatable, r.ssvc_technical_impact, r.ssvc_assessed_at,
        case when ${recordFirst}::boolean and r.cna_vector is not null then 'cna'
             when ${recordFirst}::boolean and r.adp_vector is not null then 'adp'
             when d.vec <> '' then 'scanner' end as vsrc,
        case when ${recordFirst}::boolean and r.cna_vector is not null then r.cna_vector
             when ${recordFirst}::boolean and r.adp_vector is not null then r.adp_vector
             else d.vec end as bvec,
        case when ${recordFirst}::boolean and r.cna_vector is not null then coalesce(r.cna_score, -1)
             when ${recordFirst}::boolean and r.adp_vector is not null then coalesce(r.adp_score, -1)
             when ${recordFirst}::boolean then coalesce(r.cna_score, r.adp_score, d.cv)
             else d.cv end as bcv
      from vkeys d
      left join cve_records r on r.feed_version = ${feeds.cve ?? null}::text and r.cve = d.issue_id and r.state = 'PUBLISHED'
    ),
    vectors as materialized (
      select x.vec, x.vsrc, ${autoVec} as auto, ${totalVec} as total,
        jsonb_build_object('factor', 'automatable', 'source', format(${W.vectorSource}::text, ${tx.json(ratingFrom)}::jsonb ->> x.vsrc), 'value', case when ${autoVec} then 'yes' else 'no' end,
          'effect', format(${W.automatableVector}::text, ${metric('AV')}, ${metric('AC')}, ${metric('PR')}, ${metric('UI')},
                           case when ${autoVec} then ${W.automatableVectorYes}::text else ${W.automatableVectorNo}::text end)) as auto_obj,
        jsonb_build_object('factor', 'technical_impact', 'source', format(${W.vectorSource}::text, ${tx.json(ratingFrom)}::jsonb ->> x.vsrc),
          'value', case when ${totalVec} then 'total' else 'partial' end,
          'effect', format(${W.impactVector}::text, ${metric('C')}, ${metric('I')}, ${metric('S')})) as ti_obj
      from (select distinct bvec as vec, vsrc, '/' || bvec || '/' as vv from vrec where bvec like 'CVSS:3._/%') x
    ),
    vparsed as (
      select d.*, e.epss, e.percentile, k.cve is not null as in_kev, k.date_added, k.known_ransomware,
        x.vec is not null as v3, x.auto as vauto, x.total as vtotal, x.auto_obj as vauto_obj, x.ti_obj as vti_obj
      from vrec d
      left join vectors x on x.vec = d.bvec and x.vsrc = d.vsrc
      left join epss_scores e on e.feed_version = ${feeds.epss}::text and e.cve = d.issue_id
      left join kev_entries k on k.feed_version = ${feeds.kev}::text and k.cve = d.issue_id
    ),
    vsources as (
      select p.*,
        p.in_kev or (${ssvcActive}::boolean and p.ssvc_exploitation is not distinct from 'active') as exploited,
        case when ${dp.automatable.fromSsvc === true}::boolean and p.ssvc_automatable is not null then 'ssvc'
             when ${dp.automatable.fromCvssVector}::boolean and p.v3 then 'vector' else 'fallback' end as auto_from,
        case when ${dp.technicalImpact.fromSsvc === true}::boolean and p.ssvc_technical_impact is not null then 'ssvc'
             when ${dp.technicalImpact.fromCvssVector}::boolean and p.v3 then 'vector' else 'fallback' end as ti_from,
        case when p.bcv >= ${dp.inKev.withoutCatalog.attendAtCvss}::real then 2 when p.bcv >= ${dp.inKev.withoutCatalog.trackStarAtCvss}::real then 1 else 0 end as sev_tier
      from vparsed p
    ),
    vdecided as (
      select p.*,
        case p.auto_from when 'ssvc' then p.ssvc_automatable = 'yes' when 'vector' then p.vauto
             else coalesce(p.epss >= ${dp.automatable.epssAtLeast}::float8, false) end as auto,
        case p.ti_from when 'ssvc' then p.ssvc_technical_impact = 'total' when 'vector' then p.vtotal
             else p.bcv >= ${dp.technicalImpact.totalAtCvss}::real end as total,
        ${pocOn}::boolean and not p.exploited and p.ssvc_exploitation is not distinct from 'poc' as poc
      from vsources p
    ),
    vulns0 as (
      select v.issue_id, v.vec, v.cv, v.n, v.epss, v.exploited, v.auto, v.total, v.sev_tier, v.poc,
        coalesce(v.epss >= ${c.likelyAt}::float8, false) and ${c.likelyOn}::boolean as likely,
        ${w.inKev}::float8 * v.exploited::int + ${w.automatable}::float8 * v.auto::int + ${w.technicalImpact}::float8 * v.total::int
          + ${w.epss}::float8 * coalesce(v.epss, 0) + ${w.cvss}::float8 * greatest(v.bcv, 0)::numeric::float8 / 10 as score_base,
        concat_ws(' + ',
          case when v.exploited and ${w.inKev}::float8 > 0 then format(${W.scoreExploited}::text, ${w.inKev}::float8) end,
          case when v.auto and ${w.automatable}::float8 > 0 then format(${W.scoreAutomatable}::text, ${w.automatable}::float8) end,
          case when v.total and ${w.technicalImpact}::float8 > 0 then format(${W.scoreTotal}::text, ${w.technicalImpact}::float8) end,
          case when v.epss > 0 and ${w.epss}::float8 > 0 then format(${W.scoreEpss}::text, v.epss, ${w.epss}::float8) end,
          case when v.bcv > 0 and ${w.cvss}::float8 > 0 then format(${W.scoreCvss}::text, v.bcv, ${w.cvss}::float8) end) as score_terms,
        jsonb_build_object('factor', 'in_kev', 'value', case when ${feeds.kev !== null}::boolean then v.in_kev end, 'source', ${kevSource(feeds)}::text,
          'effect', case when not ${feeds.kev !== null}::boolean then ${W.kevNoCatalog}::text
                         when v.in_kev then format(${W.kevIn}::text, ${feeds.kev}::text, coalesce(v.date_added, ${W.kevAddedUnknown}::text),
                                                   case when v.known_ransomware then ${W.kevRansomware}::text else '' end)
                         else format(${W.kevNotIn}::text, ${feeds.kev}::text) end) as kev_obj,
        case when ${readsExploitation}::boolean and v.ssvc_exploitation is not null then
          jsonb_build_object('factor', 'exploitation', 'value', v.ssvc_exploitation, 'source', ${ssvcSource},
            'effect', format(${W.exploitation}::text, ${tx.json(exploitationWords)}::jsonb ->> v.ssvc_exploitation)) end as expl_obj,
        case v.auto_from
          when 'ssvc' then jsonb_build_object('factor', 'automatable', 'value', v.ssvc_automatable, 'source', ${ssvcSource},
                             'effect', format(${W.automatableSsvc}::text, v.ssvc_automatable))
          when 'vector' then v.vauto_obj
          else jsonb_build_object('factor', 'automatable', 'value', case when v.auto then 'yes' else 'no' end, 'source', ${epssSource(feeds)}::text,
                 'effect', case when v.auto then format(${W.automatableEpssYes}::text, v.epss, ${dp.automatable.epssAtLeast}::float8)
                                when v.epss is not null then format(${W.automatableEpssNo}::text, v.epss, ${dp.automatable.epssAtLeast}::float8)
                                else ${W.automatableNone}::text end) end as auto_obj,
        case v.ti_from
          when 'ssvc' then jsonb_build_object('factor', 'technical_impact', 'value', v.ssvc_technical_impact, 'source', ${ssvcSource},
                             'effect', format(${W.impactSsvc}::text, v.ssvc_technical_impact))
          when 'vector' then v.vti_obj
          else jsonb_build_object('factor', 'technical_impact', 'value', case when v.total then 'total' else 'partial' end, 'source', ${W.impactScoreSource}::text,
                 'effect', case when v.bcv < 0 then ${W.impactNoCvss}::text
                                when v.total then format(${W.impactScoreTotal}::text, v.bcv, ${dp.technicalImpact.totalAtCvss}::real)
                                else format(${W.impactScorePartial}::text, v.bcv, ${dp.technicalImpact.totalAtCvss}::real) end) end as ti_obj,
        jsonb_build_object('factor', 'epss', 'value', v.epss, 'source', ${epssSource(feeds)}::text,
          'effect', case when not ${feeds.epss !== null}::boolean then ${W.epssNoFeed}::text
                         when v.epss is null then ${W.epssNoScore}::text
                         else format(${W.epss}::text, round((v.epss * 100)::numeric, 2), round((v.percentile * 100)::numeric, 2)) end) as epss_obj,
        case when v.epss >= ${c.likelyAt}::float8 then jsonb_build_object('factor', 'likely_exploited', 'value', v.epss, 'source', ${epssSource(feeds)}::text,
          'effect', format(${W.likely}::text, v.epss, ${c.likelyAt}::float8, ${c.likelyTo}::text)) end as likely_obj,
        case when v.poc then jsonb_build_object('factor', 'public_exploit', 'value', 'poc', 'source', ${ssvcSource},
          'effect', format(${W.publicExploit}::text, ${policy.document.modifiers.publicExploit?.to ?? 'attend'}::text)) end as poc_obj,
        case when ${feeds.kev === null}::boolean then jsonb_build_object('factor', 'decision', 'value', (array['track', 'track*', 'attend'])[v.sev_tier + 1], 'source', ${policySource(policy)}::text,
          'effect', format(${W.severity}::text, case when v.bcv < 0 then 'unknown' else v.bcv::text end, (array['track', 'track*', 'attend'])[v.sev_tier + 1])) end as sev_obj
      from vdecided v
    ),
    -- The vulnerability's part (feeds, SSVC, CVSS, score terms), by content: ids that share a wording share a part.
    vulns as materialized (
      select v.issue_id, v.vec, v.cv, v.n, v.exploited, v.auto, v.total, v.sev_tier, v.likely, v.poc, v.score_base, p.v_body, md5(p.v_body::text)::uuid as v_id
      from vulns0 v
      cross join lateral (
        select jsonb_build_object('kev', v.kev_obj, 'auto', v.auto_obj, 'ti', v.ti_obj, 'epss', v.epss_obj, 'scoreTerms', v.score_terms)
               || case when v.expl_obj is not null then jsonb_build_object('expl', v.expl_obj) else '{}' end
               || case when v.likely_obj is not null then jsonb_build_object('likely', v.likely_obj) else '{}' end
               || case when v.poc_obj is not null then jsonb_build_object('poc', v.poc_obj) else '{}' end
               || case when v.sev_obj is not null then jsonb_build_object('sev', v.sev_obj) else '{}' end as v_body
        -- Not pulled up: the body would then be built twice, once more inside md5() (measured: 0.79-1.10 s against 1.17-1.33 s per share).
        offset 0
      ) p
    )`;
}
