import type { Policy } from '../policy.js';
import { WORDS as W } from './explanation.js';
import { modifierParams, type Tx } from './sql.js';

/**
 * The scoring statement's per-asset step, computed once per asset (never per finding): the active
 * controls, each asset's exposure in words, its EDR coverage and what EDR saw on its hosts, its
 * environment and business impact, the controls that apply there, its validation evidence by
 * vulnerability, and the asset's explanation part (a_body, keyed by content as a_id). CTEs: ctl,
 * evidence, services, asset_hosts, host_seen, asset_runtime, asset_base, asset_ctx0, asset_ctx.
 * `scoped`: restrict to the assets of the scope_assets CTE.
 */
export function assetContextCtes(tx: Tx, policy: Policy, scoped: boolean) {
  const c = modifierParams(policy);
  const dp = policy.document.decisionPoints;
  return tx`
    ctl as materialized (
      select c.name, c.effect,
        array(select jsonb_array_elements_text(coalesce(c.mitigates->'issueIds', '[]'))) as issue_ids,
        array(select jsonb_array_elements_text(coalesce(c.mitigates->'cwes', '[]'))) as cwes,
        array(select jsonb_array_elements_text(coalesce(c.mitigates->'components', '[]'))) as components,
        array(select jsonb_array_elements_text(coalesce(c.mitigates->'ports', '[]'))) as ports,
        coalesce((c.applies_to->>'all')::boolean, false) as to_all,
        array(select jsonb_array_elements_text(coalesce(c.applies_to->'assetKeys', '[]'))) as asset_keys,
        array(select jsonb_array_elements_text(coalesce(c.applies_to->'businessServices', '[]'))) as services,
        array(select jsonb_array_elements_text(coalesce(c.applies_to->'environments', '[]'))) as environments,
        jsonb_build_object('factor', 'control', 'value', c.name,
          'source', format(${W.controlSource}::text, c.name, c.kind, case when c.expires_at is not null then format(${W.controlExpires}::text, to_char(c.expires_at at time zone 'UTC', 'YYYY-MM-DD')) else '' end),
          'effect', case c.effect
            when 'not_exposed' then format(${W.controlNotExposed}::text, c.name)
            else format(${W.controlNotExploitable}::text, c.name, ${c.controlTo}::text, ${c.controlFactor}::float8) end) as obj
      from compensating_controls c
      -- A control a validation probe got through protects nothing.
      where (c.expires_at is null or c.expires_at > now()) and c.verification <> 'failed'
    ),
    -- Validation evidence: per asset, each vulnerability's latest unexpired test that moves a tier
    -- (reachable / unreachable do not), worded once per test; null on an asset without any, so the
    -- per-finding lookup (relation.ts) runs only on assets that have some.
    evidence as materialized (
      select e.asset_id, jsonb_object_agg(e.vulnerability, jsonb_build_object('r', e.result,
        'o', jsonb_build_object('factor', 'validation', 'value', e.result, 'source', format(${W.validationSource}::text, e.tool),
          'effect', format(${W.validationTest}::text, (${W.validationResults}::text)::jsonb ->> e.result, e.tool,
                           case when e.target is not null then format(${W.validationTarget}::text, e.target) else '' end,
                           case when e.port is not null then format(${W.validationPort}::text, e.port) else '' end,
                           to_char(e.tested_at at time zone 'UTC', 'YYYY-MM-DD'), to_char(e.expires_at at time zone 'UTC', 'YYYY-MM-DD'), e.source)
            || case when e.result = 'not_exploitable'
                    then format(${W.validationLowered}::text, ${c.notExploitableTo}::text, to_char(e.expires_at at time zone 'UTC', 'YYYY-MM-DD'), ${c.notExploitableFactor}::float8)
                    else format(${W.validationRaised}::text, ${c.provenTo}::text) end))) as ev
      from (
        select distinct on (e.asset_id, e.vulnerability) e.asset_id, e.vulnerability, e.result, e.tool, e.source,
               nullif(e.target, '') as target, nullif(e.port, '') as port, e.tested_at, e.expires_at
        from validation_evidence e
        where ${c.validationOn}::boolean and e.expires_at > now() and e.result in ('exploited', 'confirmed', 'not_exploitable')
          ${scoped ? tx`and e.asset_id in (select asset_id from scope_assets)` : tx``}
        -- On one test time, success wins: a Nuclei run with -ms reports the requests that failed beside the one that matched.
        order by e.asset_id, e.vulnerability, e.tested_at desc, (e.result <> 'not_exploitable') desc, e.id desc
      ) e
      group by e.asset_id
    ),
    services as materialized (
      select id, name, annual_revenue, attribute_sources->>'annual_revenue' as source from assets
      where annual_revenue is not null and kind = 'business_service' and ${c.revenueAt !== null}::boolean
    ),
    -- What EDR saw loaded on each host, per package (lower-cased), worded once per host rather than
    -- once per asset on it (one share's asset context: 0.43-0.69 s, against 0.69-0.93 s per asset).
    -- A host with evidence but no package rows is covered and saw nothing.
    asset_hosts as (
      select a.id as asset_id, a.id as host_id from assets a where a.kind = 'host' ${scoped ? tx`and a.id in (select asset_id from scope_assets)` : tx``}
      union
      select r.asset_id, r.target_id from asset_relations r
      where r.relation = 'runs_on' ${scoped ? tx`and r.asset_id in (select asset_id from scope_assets)` : tx``}
    ),
    host_seen as materialized (
      select p.asset_id, jsonb_object_agg(p.package, p.seen) filter (where p.package <> '') as seen
      from (
        select distinct on (e.asset_id, lower(e.package)) e.asset_id, lower(e.package) as package,
               format(${W.runtimeSeen}::text, h.name, e.package, nullif(e.version, ''), coalesce(nullif(e.process, ''), ${W.runtimeSomeProcess}::text)) as seen
        from runtime_evidence e join assets h on h.id = e.asset_id
        where ${c.runtimeOn}::boolean and e.asset_id in (select host_id from asset_hosts)
        order by e.asset_id, lower(e.package), e.observed_at desc
      ) p
      group by p.asset_id
    ),
    -- Per asset: its hosts, whether EDR covers them all, and what it saw (the first host by name wins
    -- a package two of them report).
    asset_runtime as materialized (
      select ah.asset_id, string_agg(t.name, ', ' order by t.name) as names, bool_and(hs.asset_id is not null) as covered,
        case when count(hs.seen) <= 1 then (array_agg(hs.seen) filter (where hs.seen is not null))[1]
             else (select jsonb_object_agg(s.key, s.value) from (
                     select distinct on (j.key) j.key, j.value
                     from unnest(array_agg(hs.seen order by t.name)) with ordinality m(seen, i) cross join jsonb_each(m.seen) j
                     order by j.key, m.i) s) end as seen
      from asset_hosts ah join assets t on t.id = ah.host_id left join host_seen hs on hs.asset_id = t.id
      where ${c.runtimeOn}::boolean
      group by ah.asset_id
    ),
    asset_base as (
      select a.id, a.name, a.kind, a.asset_key, a.business_service, a.environment, a.criticality, a.internet_facing,
        coalesce(a.annual_revenue, sv.annual_revenue) as revenue,
        case when a.annual_revenue is not null then a.name else sv.name end as revenue_of,
        coalesce(case when a.annual_revenue is not null then a.attribute_sources->>'annual_revenue' else sv.source end, 'inventory') as revenue_source,
        a.attribute_sources->>'internet_facing' as facing_source,
        a.attribute_sources->>'environment' as environment_source, a.attribute_sources->>'criticality' as criticality_source,
        h.n as host_n, h.any_facing, h.all_closed, h.names as host_names,
        coalesce(case when a.internet_facing then a.id end, fh.id) as facing_id,
        rh.seen as rt_seen, rh.covered as rt_covered, rh.names as rt_names, ev.ev
      from assets a
      left join lateral (
        select count(*) as n, bool_or(t.internet_facing) as any_facing, bool_and(t.internet_facing is false) as all_closed,
               string_agg(t.name, ', ' order by t.name) as names
        from asset_relations r join assets t on t.id = r.target_id
        where r.asset_id = a.id and r.relation = any(${dp.publiclyExposed.throughRelations}::text[])
      ) h on true
      left join lateral (
        select t.id from asset_relations r join assets t on t.id = r.target_id
        where r.asset_id = a.id and r.relation = any(${dp.publiclyExposed.throughRelations}::text[]) and t.internet_facing
        order by t.name limit 1
      ) fh on a.internet_facing is not true
      left join asset_runtime rh on rh.asset_id = a.id
      left join evidence ev on ev.asset_id = a.id
      -- The revenue of the business service the asset belongs to (by name or part_of), when it has none itself.
      left join lateral (
        select s.name, s.annual_revenue, s.source from services s
        where a.annual_revenue is null and s.id <> a.id
          and (s.name = a.business_service
               or s.id in (select r.target_id from asset_relations r where r.asset_id = a.id and r.relation = 'part_of'))
        order by s.annual_revenue desc, s.name limit 1
      ) sv on ${c.revenueAt !== null}::boolean
      ${scoped ? tx`where a.id in (select asset_id from scope_assets)` : tx``}
    ),
    asset_ctx0 as (
      select b.id, b.name, b.asset_key,
        case when b.internet_facing or b.any_facing then 'yes'
             when b.internet_facing is false or (b.host_n > 0 and b.all_closed) then 'no'
             else 'unknown' end as exposed,
        x.ports as exposed_ports,
        case
          when b.internet_facing or b.any_facing then jsonb_build_object('factor', 'publicly_exposed', 'value', 'yes',
            'source', format(${W.contextSource}::text, coalesce(x.facing_source, 'inventory')),
            'effect', format(${W.exposedPrefix}::text, case when b.facing_id <> b.id then format(${W.exposedRunsOn}::text, x.name) else '' end ||
              case when cardinality(x.public_ips) > 0 and x.groups is not null
                   then format(${W.exposedFirewall}::text, x.name, array_to_string(x.public_ips, ', '),
                               x.groups, x.cidrs, coalesce(array_to_string(x.ports, ', '), ${W.exposedSomePorts}::text))
                   when x.facing_source like '%external scan%' and x.ports is not null
                   then format(${W.exposedExternalScan}::text, array_to_string(x.ports, ', '), x.name)
                   else format(${W.exposedMarked}::text, x.name) end))
          when b.internet_facing is false then jsonb_build_object('factor', 'publicly_exposed', 'value', 'no',
            'source', format(${W.contextSource}::text, coalesce(b.facing_source, 'inventory')),
            'effect', format(${W.notExposed}::text, b.name))
          when b.host_n > 0 and b.all_closed then jsonb_build_object('factor', 'publicly_exposed', 'value', 'no',
            'source', ${W.contextSourcePlain}::text, 'effect', format(${W.notExposedHosts}::text, b.host_names))
          else jsonb_build_object('factor', 'publicly_exposed', 'value', ${dp.publiclyExposed.unknownMeans}::text,
            'source', ${W.exposureAssumedSource}::text,
            'effect', format(${dp.publiclyExposed.unknownMeans === 'yes' ? W.exposureAssumedYes : W.exposureAssumedNo}::text, b.name))
        end as exposure_obj,
        ${c.envOn}::boolean and case when b.environment is null or b.environment = '' then ${c.envUnknownIsNonProd}::boolean
                                    else lower(b.environment) <> all(${c.envProduction}::text[]) end as nonprod,
        jsonb_build_object('factor', 'environment', 'value', b.environment,
          'source', format(${W.contextSource}::text, coalesce(b.environment_source, 'inventory')),
          'effect', case when b.environment is null or b.environment = '' then format(${W.environmentUnknown}::text, b.name, ${c.envLower}::int, ${c.envFactor}::float8)
                         else format(${W.environmentNonProduction}::text, b.name, b.environment, ${c.envLower}::int, ${c.envFactor}::float8) end) as env_obj,
        coalesce(b.criticality = any(${c.criticalities}::text[]), false) or coalesce(b.revenue >= ${c.revenueAt}::float8, false) as critical,
        case when coalesce(b.criticality = any(${c.criticalities}::text[]), false) or coalesce(b.revenue >= ${c.revenueAt}::float8, false) then
          jsonb_build_object('factor', 'business_impact',
            'value', case when b.revenue >= ${c.revenueAt}::float8 then to_jsonb(b.revenue) else to_jsonb(b.criticality) end,
            'source', case when b.revenue >= ${c.revenueAt}::float8 then format(${W.contextSource}::text, b.revenue_source)
                           else format(${W.contextSource}::text, coalesce(b.criticality_source, 'inventory')) end,
            'effect', array_to_string(array_remove(array[
                case when b.criticality = any(${c.criticalities}::text[]) then format(${W.businessRated}::text, b.name, b.criticality) end,
                case when b.revenue >= ${c.revenueAt}::float8
                     then format(${W.businessRevenue}::text, case when b.revenue_of = b.name then b.name else format(${W.businessService}::text, b.revenue_of) end,
                                 to_char(b.revenue, 'FM999,999,999,999,990'), to_char(${c.revenueAt}::float8, 'FM999,999,999,999,990')) end], null), '; ')
              || format(${W.businessCritical}::text, ${c.criticalDueFactor}::float8))
        end as business_obj,
        coalesce(b.rt_covered, false) as edr_covered, coalesce(b.rt_seen, '{}') as rt_seen, b.rt_names, b.ev,
        nullif(array(select c.name from ctl c
                     where c.to_all or b.asset_key = any(c.asset_keys) or b.business_service = any(c.services) or b.environment = any(c.environments)), '{}') as ctl_names
      from asset_base b
      left join lateral (
        select t.name, t.public_ips, t.exposed_ports as ports, t.attribute_sources->>'internet_facing' as facing_source, g.groups, g.cidrs
        from assets t
        left join lateral (
          select string_agg(distinct r.security_group, ', ') as groups, string_agg(distinct r.cidr, ', ') as cidrs
          from exposure_rules r where r.security_group = any(t.security_groups) and r.cidr in ('0.0.0.0/0', '::/0')
        ) g on true
        where t.id = b.facing_id
      ) x on true
    ),
    -- The asset's part of every explanation on it (exposure, environment, what EDR saw), by content.
    -- With what its controls mitigate, merged: a finding that matches none skips the per-control look.
    asset_ctx as materialized (
      select x.*, p.a_body, md5(p.a_body::text)::uuid as a_id,
        case when x.ctl_names is not null then array(select unnest(c.issue_ids) from ctl c where c.name = any(x.ctl_names)) end as ctl_issue_ids,
        case when x.ctl_names is not null then array(select unnest(c.components) from ctl c where c.name = any(x.ctl_names)) end as ctl_components,
        case when x.ctl_names is not null then array(select unnest(c.cwes) from ctl c where c.name = any(x.ctl_names)) end as ctl_cwes,
        coalesce((select bool_or(cardinality(c.ports) > 0 and x.exposed_ports <@ c.ports) from ctl c where c.name = any(x.ctl_names)), false) as ctl_ports
      from asset_ctx0 x
      cross join lateral (
        select jsonb_build_object('exposure', x.exposure_obj, 'environment', x.env_obj, 'runtimeHosts', x.rt_names,
                                  'runtimeSeen', case when x.edr_covered then x.rt_seen end)
               || case when x.business_obj is not null then jsonb_build_object('business', x.business_obj) else '{}' end as a_body
        -- Not pulled up: the body would then be built twice, once more inside md5() (measured: 0.79-1.10 s against 1.17-1.33 s per share).
        offset 0
      ) p
    )`;
}
