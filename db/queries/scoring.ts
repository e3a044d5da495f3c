import type { Sql } from '../client.js';
import type { Policy } from '../../prioritization/policy.js';

/** Vendor statuses that say the finding needs no fix here (VEX not_affected, fixed, false positive, suppressed). */
const SUPPRESSING_STATUSES = ['not_affected', 'fixed', 'false_positive', 'suppressed'];

/**
 * Scores the open findings of one scan's assets, set-based: one UPDATE joins findings with the active
 * EPSS and KEV feeds, applies the policy's thresholds and writes tier, score, due date and the
 * explanation (each factor with its value, source and effect). Findings whose result is unchanged
 * are not written, and a due date only moves when the tier does. Returns how many findings changed.
 */
export async function scoreScanFindings(sql: Sql, policy: Policy, scanId: string): Promise<{ scored: number; changed: number }> {
  const sla = (tier: keyof Policy['slaMs']) => `${policy.slaMs[tier]} milliseconds`;
  const [result] = await sql`
    with inputs as (
      select f.id, f.cvss_score as cvss, f.vendor_status, f.tier as old_tier, f.score as old_score, f.due_at as old_due,
             e.epss, e.percentile, e.feed_version as epss_version,
             k.cve is not null as in_kev, coalesce(k.known_ransomware, false) as ransomware,
             k.date_added as kev_added, k.feed_version as kev_version
      from findings f
      left join epss_scores e on e.cve = f.issue_id and e.feed_version = (select version from intel_feeds where kind = 'epss' and status = 'active')
      left join kev_entries k on k.cve = f.issue_id and k.feed_version = (select version from intel_feeds where kind = 'kev' and status = 'active')
      where f.status = 'open' and f.asset_id in (select asset_id from scan_assets where scan_id = ${scanId})
    ),
    decided as (
      select i.*,
        case
          when vendor_status in ${sql(SUPPRESSING_STATUSES)} then 'track'
          when in_kev then 'act'
          when coalesce(epss, 0) >= ${policy.epssAttend} then 'attend'
          when coalesce(cvss, 0) >= ${policy.cvssAttend} then 'attend'
          when coalesce(cvss, 0) >= ${policy.cvssTrackStar} then 'track*'
          else 'track'
        end as tier,
        -- 0..100: half from severity, 30 from exploit likelihood, 20 from known exploitation.
        round((coalesce(cvss, 0) * 5 + coalesce(epss, 0) * 30 + case when in_kev then 20 else 0 end)::numeric, 1)::float8 as score
      from inputs i
    ),
    explained as (
      select d.*,
        jsonb_build_array(
          jsonb_build_object('factor', 'cvss', 'value', cvss, 'source', 'scanner report',
            'effect', case when cvss is null then 'no CVSS score in the report'
                           when cvss >= ${policy.cvssAttend} then format('critical severity (%s >= %s): attend even without exploit evidence', cvss, ${policy.cvssAttend}::float8)
                           when cvss >= ${policy.cvssTrackStar} then format('high severity (%s >= %s): tracked closely', cvss, ${policy.cvssTrackStar}::float8)
                           else format('severity %s below %s', cvss, ${policy.cvssTrackStar}::float8) end),
          jsonb_build_object('factor', 'epss', 'value', epss,
            'source', coalesce('FIRST EPSS ' || epss_version, 'FIRST EPSS (no score for this id)'),
            'effect', case when epss is null then 'no exploit-likelihood data'
                           when epss >= ${policy.epssAttend} then format('%s%% chance of exploitation in 30 days (percentile %s): at or above the %s threshold', round((epss * 100)::numeric, 2), round(percentile::numeric, 3), ${policy.epssAttend}::float8)
                           else format('%s%% chance of exploitation in 30 days: below the %s threshold', round((epss * 100)::numeric, 2), ${policy.epssAttend}::float8) end),
          jsonb_build_object('factor', 'kev', 'value', in_kev,
            'source', coalesce('CISA KEV ' || kev_version, 'CISA KEV'),
            'effect', case when in_kev then format('known exploited (listed %s)%s: act', kev_added, case when ransomware then ', used in ransomware campaigns' else '' end)
                           else 'not in the known-exploited catalog' end),
          jsonb_build_object('factor', 'vendor_status', 'value', vendor_status, 'source', 'scanner or VEX statement',
            'effect', case when vendor_status in ${sql(SUPPRESSING_STATUSES)} then format('declared %s: nothing to fix, tracked only', vendor_status)
                           when vendor_status is null then 'no vendor status'
                           else format('%s: no effect on the tier', vendor_status) end),
          jsonb_build_object('factor', 'policy', 'value', ${policy.version}::text, 'source', 'prioritization policy',
            'effect', format('tier %s', tier))
        ) as explanation
      from decided d
    )
    , changed as (
      update findings f set
        tier = x.tier,
        score = x.score,
        explanation = x.explanation,
        scored_at = now(),
        due_at = case when x.old_tier is not distinct from x.tier and x.old_due is not null then x.old_due
                      else now() + (case x.tier when 'act' then ${sla('act')} when 'attend' then ${sla('attend')}
                                                when 'track*' then ${sla('track*')} else ${sla('track')} end)::interval end
      from explained x
      where f.id = x.id
        and (x.old_tier is distinct from x.tier or x.old_score is distinct from x.score or f.explanation is distinct from x.explanation)
      returning 1
    )
    select (select count(*) from inputs)::int as scored, (select count(*) from changed)::int as changed`;
  return { scored: result?.scored ?? 0, changed: result?.changed ?? 0 };
}
