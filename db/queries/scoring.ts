import type postgres from 'postgres';
import type { Sql } from '../client.js';
import type { ExplanationFactor } from '../schema.js';
import { TIER_BY_RANK, TIER_RANK, type Policy, type Tier } from '../../prioritization/policy.js';

// The policy compiled to one set-based statement. Work that does not depend on the finding is done
// once per distinct vulnerability (feeds, CVSS vector) and once per asset (exposure, EDR coverage,
// environment, controls) in CTEs; each finding then only joins, looks up its decision-table cell
// and assembles explanation objects that are mostly prebuilt. Every policy value is a query
// parameter: nothing from a document or a user is spliced into the SQL text.

/** Which findings to score: a scan's assets (and what runs on them), given assets, or everything open. */
export type ScoringScope = { scanId: string } | { assetIds: number[] } | { all: true };
type InternalScope = ScoringScope | { findingIds: number[] };

export interface FeedVersions {
  epss: string | null;
  kev: string | null;
}

export interface RescoreResult {
  /** Open findings in scope. */
  scored: number;
  /** Findings whose tier, score, due date or explanation was written. */
  changed: number;
  /** Findings whose tier or due date changed (one score_history and one exposure_events row each). */
  events: number;
}

export type TierTransition = `${Tier | 'unscored'}→${Tier}`;

export interface ShadowSample {
  findingId: number;
  issueId: string;
  asset: string;
  from: Tier | null;
  to: Tier;
  /** The factors whose values differ, in words. */
  reason: string;
}

export interface ShadowDiff {
  policyVersion: string;
  feeds: FeedVersions;
  scored: number;
  unchanged: number;
  movedUp: number;
  movedDown: number;
  /** Not scored yet: they would get their first tier. */
  unscored: number;
  dueChanged: number;
  transitions: Partial<Record<TierTransition, number>>;
  samples: ShadowSample[];
}

type Tx = postgres.TransactionSql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

// The server types these parameters from their ::jsonb[] cast, and postgres.js then serializes each
// element as JSON: one parse per statement, and array subscripts per finding instead of jsonb lookups.
const jsonbArray = (values: unknown[]) => values as unknown as string[];
const daysText = (d: number) => `${Number(d.toFixed(2))} day${d === 1 ? '' : 's'}`;

const STATUS_WORDS: Record<string, string> = {
  not_affected: 'the vendor or a VEX statement says this component is not affected',
  fixed: 'declared fixed in this very component',
  false_positive: 'marked a false positive',
  suppressed: 'suppressed (accepted) in the scanner',
};

/** Everything the statement needs from the policy, as parameters (arrays indexed in SQL). */
function compile(policy: Policy, feeds: FeedVersions) {
  const doc = policy.document;
  const m = doc.modifiers;
  const source = `policy ${policy.version}`;
  // Base index b: 0..15 the decision-table cells, 16..19 severity-only tiers when no KEV catalog is loaded.
  const baseTier = [...policy.decisions.map((d) => TIER_RANK[d.tier]), 0, 1, 2, 3];
  const baseDays = [...policy.decisions.map((d) => d.dueDays), ...TIER_BY_RANK.map((t) => doc.tiers[t].dueDays)];
  const describe = (d: Policy['decisions'][number]) =>
    [d.inKev ? 'in KEV' : 'not in KEV', d.publiclyExposed ? 'publicly exposed' : 'not exposed', d.automatable ? 'automatable' : 'not automatable', d.totalImpact ? 'total impact' : 'partial impact'].join(', ');
  const decisionObjs = policy.decisions.map((d) => ({
    factor: 'decision',
    value: d.timeline,
    source,
    effect: `BOD 26-04 row ${d.row}: ${describe(d)} → ${d.timelineName} → ${d.tier}`,
  }));
  // The final tier and due date by (b, final tier, critical asset): 20 x 4 x 2 prebuilt objects.
  const tierObjs: postgres.JSONValue[] = [];
  const dueDays: number[] = [];
  const factorDue = m.criticalAsset?.dueFactor ?? 1;
  for (let b = 0; b < 20; b++) {
    const base = TIER_BY_RANK[baseTier[b]!]!;
    const why = b < 16 ? policy.decisions[b]!.timelineName : 'by severity, no KEV catalog';
    for (let t = 0; t < 4; t++) {
      const final = TIER_BY_RANK[t]!;
      for (const critical of [false, true]) {
        const plain = final === base ? baseDays[b]! : doc.tiers[final].dueDays;
        const days = critical ? plain * factorDue : plain;
        const from = final === base ? why : `${final}; the table gave ${base}`;
        const crit = critical && factorDue !== 1 ? `, × ${factorDue} for a critical asset` : '';
        tierObjs.push({ factor: 'tier', value: final, source, effect: `due in ${daysText(days)} (${from}${crit})` });
        dueDays.push(days);
      }
    }
  }
  const w = doc.score.weights;
  const scoreText = `KEV ${w.inKev} + exposed ${w.publiclyExposed} + automatable ${w.automatable} + total ${w.technicalImpact} + EPSS × ${w.epss} + CVSS × ${w.cvss / 10}, × the factors above`;
  const vendorObjs: Record<string, postgres.JSONValue> = {};
  for (const status of m.vendorStatus?.statuses ?? []) {
    vendorObjs[status] = {
      factor: 'vendor_status',
      value: status,
      source: 'scanner or VEX statement',
      effect: `${STATUS_WORDS[status] ?? `declared ${status}`}: ${m.vendorStatus!.to} (score × ${m.vendorStatus!.scoreFactor})`,
    };
  }
  const epssSource = feeds.epss ? `FIRST EPSS ${feeds.epss}` : 'FIRST EPSS (no feed loaded)';
  const kevSource = feeds.kev ? `CISA KEV ${feeds.kev}` : 'CISA KEV (no catalog loaded)';
  return {
    source,
    epssSource,
    kevSource,
    baseTier,
    decisionObjs: jsonbArray(decisionObjs),
    tierObjs: jsonbArray(tierObjs),
    dueDays,
    scoreText,
    vendorObjs: vendorObjs as postgres.JSONValue,
    vendorStatuses: m.vendorStatus?.statuses ?? [],
    vendorTo: m.vendorStatus ? TIER_RANK[m.vendorStatus.to] : 3,
    vendorFactor: m.vendorStatus?.scoreFactor ?? 1,
    likelyOn: m.likelyExploited !== undefined,
    likelyAt: m.likelyExploited?.epssAtLeast ?? 2,
    likelyRaise: (m.likelyExploited?.raise ?? []).map((t) => TIER_RANK[t]),
    likelyTo: m.likelyExploited ? TIER_RANK[m.likelyExploited.to] : 0,
    likelyToName: m.likelyExploited?.to ?? 'attend',
    runtimeOn: m.notLoadedAtRuntime !== undefined,
    runtimeLower: m.notLoadedAtRuntime?.lowerBy ?? 0,
    runtimeFactor: m.notLoadedAtRuntime?.scoreFactor ?? 1,
    envOn: m.nonProduction !== undefined,
    envProduction: (m.nonProduction?.productionEnvironments ?? []).map((e) => e.toLowerCase()),
    envUnknownIsNonProd: m.nonProduction?.unknownMeans === 'non-production',
    envLower: m.nonProduction?.lowerBy ?? 0,
    envFactor: m.nonProduction?.scoreFactor ?? 1,
    controlOn: m.notExploitableControl !== undefined,
    controlTo: m.notExploitableControl ? TIER_RANK[m.notExploitableControl.to] : 3,
    controlToName: m.notExploitableControl?.to ?? 'track',
    controlFactor: m.notExploitableControl?.scoreFactor ?? 1,
    criticalities: m.criticalAsset?.criticalities ?? [],
  };
}

/** Resolves the feed versions a run reads: the active ones unless given. */
async function feedVersions(sql: Sql | Tx, given: Partial<FeedVersions> = {}): Promise<FeedVersions> {
  const rows = await sql<{ kind: 'epss' | 'kev'; version: string }[]>`
    select distinct on (kind) kind, version from intel_feeds where status = 'active' order by kind, activated_at desc nulls last, imported_at desc`;
  const active = Object.fromEntries(rows.map((r) => [r.kind, r.version]));
  return { epss: given.epss ?? active.epss ?? null, kev: given.kev ?? active.kev ?? null };
}

/**
 * The scoring relation for a scope: CTEs, then a SELECT of one row per open finding in scope with
 * its old values (old_*), the new tier, score, due date and explanation. Used as is by shadow
 * scoring and as the source of the UPDATE by rescoring.
 */
function scoringQuery(tx: Tx, policy: Policy, scope: InternalScope, feeds: FeedVersions) {
  const c = compile(policy, feeds);
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
          : null;
  const findingFilter: Fragment =
    'findingIds' in scope
      ? tx`f.id = any(${scope.findingIds}::bigint[])`
      : 'assetIds' in scope
        ? tx`f.asset_id = any(${scope.assetIds}::bigint[])`
        : scopeAssets
          ? tx`f.asset_id in (select asset_id from scope_assets)`
          : tx`true`;
  const assetFilter: Fragment = scopeAssets ? tx`where a.id in (select asset_id from scope_assets)` : tx``;

  // Per control, per asset (exposure in words, EDR coverage and what it saw, environment, the controls
  // that apply there) and per distinct vulnerability (feeds, CVSS vector or score): all computed once.
  const ctes = tx`
    ${scopeAssets ? tx`scope_assets as materialized (${scopeAssets}),` : tx``}
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
          'source', format('compensating control %s (%s%s)', c.name, c.kind, coalesce(', expires ' || to_char(c.expires_at at time zone 'UTC', 'YYYY-MM-DD'), '')),
          'effect', case c.effect
            when 'not_exposed' then format('control %L blocks the path from the internet: not publicly exposed', c.name)
            else format('control %L blocks exploitation: %s (score × %s)', c.name, ${c.controlToName}::text, ${c.controlFactor}::float8) end) as obj
      from compensating_controls c
      where c.expires_at is null or c.expires_at > now()
    ),
    asset_base as (
      select a.id, a.name, a.kind, a.asset_key, a.business_service, a.environment, a.criticality, a.internet_facing,
        a.attribute_sources->>'internet_facing' as facing_source,
        a.attribute_sources->>'environment' as environment_source,
        h.n as host_n, h.any_facing, h.all_closed, h.names as host_names,
        coalesce(case when a.internet_facing then a.id end, fh.id) as facing_id,
        rh.seen as rt_seen, rh.covered as rt_covered, rh.names as rt_names
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
      left join lateral (
        select string_agg(t.name, ', ' order by t.name) as names,
               bool_and(exists (select 1 from runtime_evidence e where e.asset_id = t.id)) as covered,
               (select jsonb_object_agg(p.package, p.seen) from (
                  select distinct on (lower(e.package)) lower(e.package) as package,
                         format('EDR on %s saw %s %s loaded by %s', h.name, e.package, nullif(e.version, ''), coalesce(nullif(e.process, ''), 'a process')) as seen
                  from runtime_evidence e join assets h on h.id = e.asset_id
                  where e.asset_id = any(array_agg(t.id)) and e.package <> ''
                  order by lower(e.package), h.name, e.observed_at desc) p) as seen
        from (select a.id as host_id where a.kind = 'host'
              union
              select r.target_id from asset_relations r where r.asset_id = a.id and r.relation = 'runs_on') hh
        join assets t on t.id = hh.host_id
      ) rh on ${c.runtimeOn}::boolean
      ${assetFilter}
    ),
    asset_ctx as materialized (
      select b.id, b.name, b.asset_key,
        case when b.internet_facing or b.any_facing then 'yes'
             when b.internet_facing is false or (b.host_n > 0 and b.all_closed) then 'no'
             else 'unknown' end as exposed,
        x.ports as exposed_ports,
        case
          when b.internet_facing or b.any_facing then jsonb_build_object('factor', 'publicly_exposed', 'value', 'yes',
            'source', 'asset context (' || coalesce(x.facing_source, 'inventory') || ')',
            'effect', 'internet-facing: ' || case when b.facing_id <> b.id then format('runs on %s; ', x.name) else '' end ||
              case when cardinality(x.public_ips) > 0 and x.groups is not null
                   then format('%s has public IP %s and security group %s open to %s on %s', x.name, array_to_string(x.public_ips, ', '),
                               x.groups, x.cidrs, coalesce(array_to_string(x.ports, ', '), 'some ports'))
                   else format('%s is marked internet-facing', x.name) end)
          when b.internet_facing is false then jsonb_build_object('factor', 'publicly_exposed', 'value', 'no',
            'source', 'asset context (' || coalesce(b.facing_source, 'inventory') || ')',
            'effect', format('%s is not internet-facing', b.name))
          when b.host_n > 0 and b.all_closed then jsonb_build_object('factor', 'publicly_exposed', 'value', 'no',
            'source', 'asset context', 'effect', format('runs only on %s, none of them internet-facing', b.host_names))
          else jsonb_build_object('factor', 'publicly_exposed', 'value', ${dp.publiclyExposed.unknownMeans}::text,
            'source', 'policy assumption (decisionPoints.publiclyExposed.unknownMeans)',
            'effect', format(${dp.publiclyExposed.unknownMeans === 'yes' ? 'exposure unknown, assumed exposed (no context on %s)' : 'exposure unknown, assumed not exposed (no context on %s)'}::text, b.name))
        end as exposure_obj,
        ${c.envOn}::boolean and case when b.environment is null or b.environment = '' then ${c.envUnknownIsNonProd}::boolean
                                    else lower(b.environment) <> all(${c.envProduction}::text[]) end as nonprod,
        jsonb_build_object('factor', 'environment', 'value', b.environment,
          'source', 'asset context (' || coalesce(b.environment_source, 'inventory') || ')',
          'effect', case when b.environment is null or b.environment = '' then format('environment of %s unknown, assumed non-production: %s tier lower (score × %s)', b.name, ${c.envLower}::int, ${c.envFactor}::float8)
                         else format('%s runs in %s, not production: %s tier lower (score × %s)', b.name, b.environment, ${c.envLower}::int, ${c.envFactor}::float8) end) as env_obj,
        coalesce(b.criticality = any(${c.criticalities}::text[]), false) as critical,
        coalesce(b.rt_covered, false) as edr_covered, coalesce(b.rt_seen, '{}') as rt_seen, b.rt_names,
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
    vkeys as (
      select f.issue_id || '|' || coalesce(f.cvss_vector, '') || '|' || coalesce(f.cvss_score::text, '') as vk,
             f.issue_id, coalesce(f.cvss_vector, '') as vec, coalesce(f.cvss_score, -1) as cv, count(*)::int as n
      from findings f where f.status = 'open' and ${findingFilter}
      group by 1, 2, 3, 4
    ),
    vectors as materialized (
      select x.vec,
        strpos(x.vv, '/AV:N/') > 0 and strpos(x.vv, '/AC:L/') > 0 and strpos(x.vv, '/PR:N/') > 0 and strpos(x.vv, '/UI:N/') > 0 as auto,
        strpos(x.vv, '/C:H/') > 0 and (strpos(x.vv, '/I:H/') > 0 or strpos(x.vv, '/S:C/') > 0) as total,
        jsonb_build_object('factor', 'automatable', 'source', 'CVSS v3 vector', 'value', case when strpos(x.vv, '/AV:N/') > 0 and strpos(x.vv, '/AC:L/') > 0 and strpos(x.vv, '/PR:N/') > 0 and strpos(x.vv, '/UI:N/') > 0 then 'yes' else 'no' end,
          'effect', format('CVSS v3 AV:%s/AC:%s/PR:%s/UI:%s', coalesce(substring(x.vec from '/AV:([A-Z])'), '?'), coalesce(substring(x.vec from '/AC:([A-Z])'), '?'),
                           coalesce(substring(x.vec from '/PR:([A-Z])'), '?'), coalesce(substring(x.vec from '/UI:([A-Z])'), '?'))
                    || case when strpos(x.vv, '/AV:N/') > 0 and strpos(x.vv, '/AC:L/') > 0 and strpos(x.vv, '/PR:N/') > 0 and strpos(x.vv, '/UI:N/') > 0
                            then ': over the network, no privileges, no user interaction' else ', not AV:N/AC:L/PR:N/UI:N' end) as auto_obj,
        jsonb_build_object('factor', 'technical_impact', 'source', 'CVSS v3 vector',
          'value', case when strpos(x.vv, '/C:H/') > 0 and (strpos(x.vv, '/I:H/') > 0 or strpos(x.vv, '/S:C/') > 0) then 'total' else 'partial' end,
          'effect', format('CVSS v3 C:%s/I:%s/S:%s', coalesce(substring(x.vec from '/C:([A-Z])'), '?'), coalesce(substring(x.vec from '/I:([A-Z])'), '?'),
                           coalesce(substring(x.vec from '/S:([A-Z])'), '?'))) as ti_obj
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
    vulns as materialized (
      select v.vk, v.n, v.epss, v.in_kev, v.auto, v.total, v.sev_tier,
        coalesce(v.epss >= ${c.likelyAt}::float8, false) and ${c.likelyOn}::boolean as likely,
        ${w.inKev}::float8 * v.in_kev::int + ${w.automatable}::float8 * v.auto::int + ${w.technicalImpact}::float8 * v.total::int
          + ${w.epss}::float8 * coalesce(v.epss, 0) + ${w.cvss}::float8 * greatest(v.cv, 0)::numeric::float8 / 10 as score_base,
        jsonb_build_object('factor', 'in_kev', 'value', case when ${feeds.kev !== null}::boolean then v.in_kev end, 'source', ${c.kevSource}::text,
          'effect', case when not ${feeds.kev !== null}::boolean then 'no CISA KEV catalog loaded: whether it is exploited is unknown'
                         when v.in_kev then format('in CISA KEV %s (added %s%s)', ${feeds.kev}::text, coalesce(v.date_added, 'on an unknown date'), case when v.known_ransomware then ', used in ransomware' else '' end)
                         else format('not in CISA KEV %s', ${feeds.kev}::text) end) as kev_obj,
        case when ${dp.automatable.fromCvssVector}::boolean and v.v3 then v.vauto_obj
             else jsonb_build_object('factor', 'automatable', 'value', case when v.auto then 'yes' else 'no' end, 'source', ${c.epssSource}::text,
               'effect', case when v.auto then format('no CVSS v3 vector; EPSS %s ≥ %s: exploitation taken as automated', v.epss, ${dp.automatable.epssAtLeast}::float8)
                              when v.epss is not null then format('no CVSS v3 vector; EPSS %s < %s', v.epss, ${dp.automatable.epssAtLeast}::float8)
                              else 'no CVSS v3 vector, no EPSS score' end) end as auto_obj,
        case when ${dp.technicalImpact.fromCvssVector}::boolean and v.v3 then v.vti_obj
             else jsonb_build_object('factor', 'technical_impact', 'value', case when v.total then 'total' else 'partial' end, 'source', 'CVSS score',
               'effect', case when v.cv < 0 then 'no CVSS data: assumed partial'
                              when v.total then format('no CVSS v3 vector; CVSS %s ≥ %s', v.cv, ${dp.technicalImpact.totalAtCvss}::real)
                              else format('no CVSS v3 vector; CVSS %s < %s', v.cv, ${dp.technicalImpact.totalAtCvss}::real) end) end as ti_obj,
        jsonb_build_object('factor', 'epss', 'value', v.epss, 'source', ${c.epssSource}::text,
          'effect', case when not ${feeds.epss !== null}::boolean then 'no FIRST EPSS feed loaded'
                         when v.epss is null then 'no EPSS score for this id'
                         else format('%s%% chance of exploitation activity in 30 days (percentile %s)', round((v.epss * 100)::numeric, 2), round((v.percentile * 100)::numeric, 2)) end) as epss_obj,
        case when v.epss >= ${c.likelyAt}::float8 then jsonb_build_object('factor', 'likely_exploited', 'value', v.epss, 'source', ${c.epssSource}::text,
          'effect', format('EPSS %s ≥ %s: likely exploited within 30 days, raised to %s', v.epss, ${c.likelyAt}::float8, ${c.likelyToName}::text)) end as likely_obj,
        case when ${feeds.kev === null}::boolean then jsonb_build_object('factor', 'decision', 'value', (array['track', 'track*', 'attend'])[v.sev_tier + 1], 'source', ${c.source}::text,
          'effect', format('no CISA KEV catalog loaded, so the BOD 26-04 table is not applied: CVSS %s → %s until a catalog is imported',
                           case when v.cv < 0 then 'unknown' else v.cv::text end, (array['track', 'track*', 'attend'])[v.sev_tier + 1])) end as sev_obj
      from vdecided v
    )`;

  // The explanation is built with one jsonb_build_array per finding: its optional entries (which
  // modifiers applied) select one of 32 branches, since concatenating jsonb arrays rebuilds them.
  const optional: Array<{ bit: number; expr: Fragment }> = [
    { bit: 1, expr: tx`v.likely_obj` },
    {
      bit: 2,
      expr: tx`case when y.seen is not null
        then jsonb_build_object('factor', 'runtime', 'value', 'loaded', 'source', 'EDR runtime evidence', 'effect', 'runtime: ' || y.seen)
        else jsonb_build_object('factor', 'runtime', 'value', 'not loaded', 'source', 'EDR runtime evidence',
          'effect', format('runtime: EDR covers %s and never saw %s loaded: %s tier lower (score × %s)', a.rt_names, f.component, ${c.runtimeLower}::int, ${c.runtimeFactor}::float8)) end`,
    },
    { bit: 4, expr: tx`a.env_obj` },
    { bit: 8, expr: tx`y.ctls[2]` },
    { bit: 16, expr: tx`${tx.json(c.vendorObjs)} -> f.vendor_status` },
  ];
  const scoreObj = tx`jsonb_build_object('factor', 'score', 'value', y.score, 'source', ${c.source}::text, 'effect', ${c.scoreText}::text)`;
  const branches = Array.from({ length: 32 }, (_, shape) => {
    const parts = [tx`v.kev_obj, y.exposure_obj, v.auto_obj, v.ti_obj, v.epss_obj, y.decision_obj`];
    for (const o of optional) if (shape & o.bit) parts.push(tx`, ${o.expr}`);
    return tx`when ${shape}::int then jsonb_build_array(${parts}, y.tier_obj, ${scoreObj})`;
  });

  // Per finding: the two lookups that need the finding itself run only on assets that have EDR
  // coverage or controls (a guard on asset-level flags), so most findings pay for neither.
  const rows = tx`
    select f.ctid as row_ctid, f.id, f.asset_id, f.issue_id, a.name as asset_name, f.tier as old_tier, f.score as old_score, f.due_at as old_due,
      f.explanation as old_explanation, y.tier, y.score, z.explanation,
      case when f.tier is not distinct from y.tier and f.due_at is not null then f.due_at
           else now() + y.due_days * interval '1 day' end as due_at
    from findings f
    -- "+ 0": hash the few assets and scan findings in order, not one index scan per asset (the
    -- UPDATE then visits its target rows in physical order).
    join asset_ctx a on a.id = f.asset_id + 0
    join vulns v on v.vk = f.issue_id || '|' || coalesce(f.cvss_vector, '') || '|' || coalesce(f.cvss_score::text, '')
    cross join lateral (
      select
        -- EDR names Maven packages either group:artifact or artifact alone.
        case when a.edr_covered then coalesce(a.rt_seen ->> lower(f.component),
                                              case when strpos(f.component, ':') > 0 then a.rt_seen ->> lower(split_part(f.component, ':', 2)) end) end as seen,
        case when a.ctl_names is not null then (
          select array[(array_agg(c.obj order by c.name) filter (where c.effect = 'not_exposed'))[1],
                       (array_agg(c.obj order by c.name) filter (where c.effect = 'not_exploitable'))[1]]
          from ctl c
          where c.name = any(a.ctl_names)
            and (f.issue_id = any(c.issue_ids) or f.component = any(c.components) or f.cwes && c.cwes
                 or (cardinality(c.ports) > 0 and a.exposed_ports <@ c.ports))) end as ctls
      offset 0
    ) x
    cross join lateral (
      select d.*,
        (array['track', 'track*', 'attend', 'act'])[d.ft + 1] as tier,
        (${c.tierObjs}::jsonb[])[(d.b * 4 + d.ft) * 2 + a.critical::int + 1] as tier_obj,
        (${c.dueDays}::float8[])[(d.b * 4 + d.ft) * 2 + a.critical::int + 1] as due_days,
        round((v.score_base + case when d.pe then ${w.publiclyExposed}::float8 else 0 end)
               * case when d.notloaded then ${c.runtimeFactor}::float8 else 1 end
               * case when d.nonprod then ${c.envFactor}::float8 else 1 end
               * case when d.nx then ${c.controlFactor}::float8 else 1 end
               * case when d.vs then ${c.vendorFactor}::float8 else 1 end * 10) / 10 as score,
        d.likely::int + (${c.runtimeOn}::boolean and a.edr_covered)::int * 2 + d.nonprod::int * 4 + d.nx::int * 8 + d.vs::int * 16 as shape,
        case when a.exposed = 'yes' and d.ctls[1] is not null
             then jsonb_build_object('factor', 'publicly_exposed', 'value', 'no', 'source', (a.exposure_obj->>'source') || ' and ' || (d.ctls[1]->>'source'),
                                     'effect', (a.exposure_obj->>'effect') || '; but ' || (d.ctls[1]->>'effect'))
             else a.exposure_obj end as exposure_obj,
        case when d.b < 16 then (${c.decisionObjs}::jsonb[])[d.b + 1] else v.sev_obj end as decision_obj
      from (
        select d1.*,
          least(greatest(case when d1.likely then greatest(d1.t0, ${c.likelyTo}::int) else d1.t0 end
                         - case when d1.notloaded then ${c.runtimeLower}::int else 0 end
                         - case when d1.nonprod then ${c.envLower}::int else 0 end, 0),
                case when d1.nx then ${c.controlTo}::int else 3 end,
                case when d1.vs then ${c.vendorTo}::int else 3 end) as ft
        from (
          select d0.*, (${c.baseTier}::int[])[d0.b + 1] as t0,
                 v.likely and (${c.baseTier}::int[])[d0.b + 1] = any(${c.likelyRaise}::int[]) as likely
          from (
            select
              case when ${feeds.kev !== null}::boolean
                   then v.in_kev::int * 8 + e.pe::int * 4 + v.auto::int * 2 + v.total::int
                   else 16 + v.sev_tier end as b,
              e.pe, x.seen, x.ctls,
              ${c.runtimeOn}::boolean and a.edr_covered and x.seen is null as notloaded,
              a.nonprod,
              ${c.controlOn}::boolean and x.ctls[2] is not null as nx,
              coalesce(f.vendor_status = any(${c.vendorStatuses}::text[]), false) as vs
            from (select case when a.exposed = 'yes' then x.ctls[1] is null
                              when a.exposed = 'unknown' then ${dp.publiclyExposed.unknownMeans === 'yes'}::boolean
                              else false end as pe) e
          ) d0
        ) d1
      ) d
      offset 0
    ) y
    cross join lateral (
      select case y.shape ${branches} end as explanation
      offset 0
    ) z
    where f.status = 'open' and ${findingFilter}
    offset 0`;
  return { ctes, rows };
}

async function tuned(tx: Tx): Promise<void> {
  // Hash joins and the distinct-vulnerability aggregate stay in memory at a million findings; the
  // join of findings to their vulnerability row is on an expression the planner cannot estimate,
  // and a merge join would sort every finding for it.
  // Custom plans fold the policy's constants (a modifier that is off costs nothing); scores are
  // recomputed from the database, so the commit need not wait for the WAL flush.
  await tx`
    select set_config('work_mem', '256MB', true), set_config('enable_mergejoin', 'off', true),
           set_config('plan_cache_mode', 'force_custom_plan', true), set_config('synchronous_commit', 'off', true)`;
}

/**
 * Rescores the open findings in scope with the policy and the active feeds, in one statement.
 * Writes only findings whose tier, score, due date or explanation changed; a due date is set when
 * the tier first appears or changes and otherwise stays. Each finding whose tier or due date changed
 * gets a score_history row and an exposure_events row (what mobilization consumes); a score that
 * only drifts with the daily EPSS is not history, or every feed update would copy every finding.
 */
export async function rescoreFindings(sql: Sql, policy: Policy, scope: ScoringScope, { reason }: { reason: string }): Promise<RescoreResult> {
  return sql.begin(async (tx) => {
    await tuned(tx);
    const feeds = await feedVersions(tx);
    const { ctes, rows } = scoringQuery(tx, policy, scope, feeds);
    const [result] = await tx<{ scored: number; changed: number; events: number }[]>`
      with ${ctes},
      computed as (${rows}),
      upd as (
        update findings t set
          tier = s.tier, score = s.score, explanation = s.explanation, due_at = s.due_at, scored_at = now()
        from computed s
        where t.ctid = s.row_ctid
          and (s.old_tier is distinct from s.tier or s.old_score is distinct from s.score
               or s.old_due is distinct from s.due_at or s.old_explanation is distinct from s.explanation)
        -- The explanation is carried on only for history rows: a million of them would spill to disk.
        returning t.id, t.asset_id, s.old_tier, s.tier, s.score, s.old_due, s.due_at,
                  case when s.old_tier is distinct from s.tier or s.old_due is distinct from s.due_at then s.explanation end as explanation
      ),
      history as (
        insert into score_history (finding_id, tier, score, due_at, policy_version, explanation, reason)
        select id, tier, score, due_at, ${policy.version}, explanation, ${reason}
        from upd
        where old_tier is distinct from tier or old_due is distinct from due_at
      ),
      events as (
        insert into exposure_events (finding_id, asset_id, old_tier, new_tier, old_due_at, new_due_at, reason)
        select id, asset_id, old_tier, tier, old_due, due_at, ${reason}
        from upd
        where old_tier is distinct from tier or old_due is distinct from due_at
        returning 1
      )
      select (select coalesce(sum(n), 0) from vkeys)::int as scored,
             (select count(*) from upd)::int as changed,
             (select count(*) from events)::int as events`;
    return { scored: result?.scored ?? 0, changed: result?.changed ?? 0, events: result?.events ?? 0 };
  });
}

/** The open findings of one scan's assets (and of the images that run on them). */
export async function scoreScanFindings(sql: Sql, policy: Policy, scanId: string): Promise<RescoreResult> {
  return rescoreFindings(sql, policy, { scanId }, { reason: `scan ${scanId}` });
}

/**
 * What rescoring with this policy and these feed versions (the active ones unless given) would do
 * to the findings in scope, compared with what they carry now. Read-only: a SELECT in a read-only
 * transaction; no finding changes.
 */
export async function shadowScore(
  sql: Sql,
  policy: Policy,
  scope: ScoringScope,
  { feeds: given = {}, samples: sampleCount = 20 }: { feeds?: { epss?: string; kev?: string }; samples?: number } = {},
): Promise<ShadowDiff> {
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    await tuned(tx);
    const feeds = await feedVersions(tx, given);
    for (const kind of ['epss', 'kev'] as const) {
      const version = given[kind];
      if (version === undefined) continue;
      const [known] = await tx`select 1 from intel_feeds where kind = ${kind} and version = ${version}`;
      if (!known) throw new Error(`shadow scoring: no ${kind.toUpperCase()} feed version ${version}`);
    }
    const { ctes, rows } = scoringQuery(tx, policy, scope, feeds);
    const [summary] = await tx<{ scored: number; unchanged: number; moved_up: number; moved_down: number; unscored: number; due_changed: number; transitions: Record<string, number> | null; sample_ids: number[] | null }[]>`
      with ${ctes},
      diff as (
        select s.id, s.old_tier, s.tier,
               coalesce(array_position(array['track', 'track*', 'attend', 'act'], s.old_tier::text), 0) - 1 as r_old,
               array_position(array['track', 'track*', 'attend', 'act'], s.tier) - 1 as r_new,
               s.old_due is distinct from s.due_at as due_changed
        from (${rows}) s
      ),
      moved as (
        select id, old_tier, tier, row_number() over (partition by old_tier, tier order by id) as nth
        from diff where old_tier is distinct from tier
      )
      select count(*)::int as scored,
             (count(*) filter (where old_tier is not distinct from tier))::int as unchanged,
             (count(*) filter (where r_old >= 0 and r_new > r_old))::int as moved_up,
             (count(*) filter (where r_old >= 0 and r_new < r_old))::int as moved_down,
             (count(*) filter (where r_old < 0))::int as unscored,
             (count(*) filter (where due_changed))::int as due_changed,
             (select jsonb_object_agg(k, n) from (select coalesce(old_tier, 'unscored') || '→' || tier as k, count(*)::int as n from moved group by 1) t) as transitions,
             (select array_agg(id order by nth, id) from (select id, nth from moved order by nth, id limit ${sampleCount}) l) as sample_ids
      from diff`;
    const sampleIds = (summary?.sample_ids ?? []).map(Number);
    const samples: ShadowSample[] = [];
    if (sampleIds.length > 0) {
      const detail = scoringQuery(tx, policy, { findingIds: sampleIds }, feeds);
      const found = await tx<{ id: number; issue_id: string; asset_name: string; old_tier: Tier | null; tier: Tier; old_explanation: ExplanationFactor[] | null; explanation: ExplanationFactor[] }[]>`
        with ${detail.ctes} select * from (${detail.rows}) s order by s.id`;
      const byId = new Map(found.map((r) => [Number(r.id), r]));
      for (const id of sampleIds) {
        const r = byId.get(id);
        if (!r) continue;
        samples.push({ findingId: Number(r.id), issueId: r.issue_id, asset: r.asset_name, from: r.old_tier, to: r.tier, reason: differingFactors(r.old_explanation, r.explanation) });
      }
    }
    return {
      policyVersion: policy.version,
      feeds,
      scored: summary?.scored ?? 0,
      unchanged: summary?.unchanged ?? 0,
      movedUp: summary?.moved_up ?? 0,
      movedDown: summary?.moved_down ?? 0,
      unscored: summary?.unscored ?? 0,
      dueChanged: summary?.due_changed ?? 0,
      transitions: (summary?.transitions ?? {}) as ShadowDiff['transitions'],
      samples,
    };
  });
}

/** The factors whose value (or, for feeds, source) differs between two explanations, in words. */
export function differingFactors(before: ExplanationFactor[] | null, after: ExplanationFactor[]): string {
  if (!before) return 'not scored yet';
  const old = new Map(before.map((f) => [f.factor, f]));
  const now = new Map(after.map((f) => [f.factor, f]));
  const parts: string[] = [];
  const shown = (v: unknown) => (v === null || v === undefined ? 'none' : String(v));
  for (const [name, f] of now) {
    if (name === 'score' || name === 'tier') continue;
    const was = old.get(name);
    if (!was) parts.push(`${name} now applies: ${f.effect}`);
    else if (shown(was.value) !== shown(f.value)) parts.push(`${name} ${shown(was.value)} → ${shown(f.value)}: ${f.effect}`);
    else if (name === 'decision' && was.effect !== f.effect) parts.push(`decision: ${f.effect}`);
  }
  for (const [name, f] of old) {
    if (!now.has(name) && name !== 'score' && name !== 'tier') parts.push(`${name} no longer applies (was: ${f.effect})`);
  }
  return parts.length ? parts.join('; ') : 'the policy maps the same factors differently';
}
