import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { TIER_BY_RANK, TIER_RANK, type Policy, type Tier } from '../policy.js';

// The policy compiled to one set-based statement. Work that does not depend on the finding is done
// once per distinct vulnerability (feeds, CVSS vector) and once per asset (exposure, EDR coverage,
// environment, controls) in CTEs; each finding then only joins, looks up its decision-table cell
// and names the three parts of its explanation (vulnerability, asset, decision), which are stored
// once each in explanation_parts: a finding carries three ids, not a kilobyte of text. Every policy
// value is a query parameter: nothing from a document or a user is spliced into the SQL text.

/** Which findings to score: a scan's assets (and what runs on them), given assets, or everything open. */
export type ScoringScope = { scanId: string } | { assetIds: number[] } | { all: true };
/**
 * `blocks`: the findings stored in heap blocks from <= block < to (null: to the end), one share of a
 * parallel rescoring of everything. Each share then reads only its blocks (a TID range scan).
 */
type InternalScope = ScoringScope | { findingIds: number[] } | { blocks: { from: number; to: number | null } };

export interface FeedVersions {
  epss: string | null;
  kev: string | null;
}

export interface RescoreResult {
  /** Open findings in scope. */
  scored: number;
  /** Findings whose tier, score, due date or explanation was written. */
  changed: number;
  /** Findings whose tier or due date changed (each gets a score_history entry, which is its exposure event). */
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
  // Everything the decision's part of an explanation says that comes from the policy.
  const digest = createHash('sha256')
    .update(JSON.stringify([source, decisionObjs, tierObjs, scoreText, vendorObjs, m.notLoadedAtRuntime ?? null, m.notExploitableControl ?? null, 'critical-names-business']))
    .digest('hex');
  return {
    digest,
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
    revenueAt: m.criticalAsset?.revenueAtLeast ?? null,
    criticalDueFactor: factorDue,
  };
}

/**
 * What each cell of the policy gives: a cell is (decision-table row or severity tier, publicly
 * exposed, likely exploited by EPSS, EDR coverage, component not seen by EDR, non-production,
 * not-exploitable control, vendor status, critical asset), numbered as the scoring statement
 * numbers a finding's (b * 256 + ... + critical). A few thousand cells, computed once per run, so a
 * finding's tier, due date and score factors are array lookups.
 */
function decisionCells(c: ReturnType<typeof compile>) {
  const n = 20 * 256;
  const cells = {
    ft: new Array<number>(n), shape: new Array<number>(n), dueDays: new Array<number>(n),
    // The product of the runtime, environment, control and vendor-status score factors.
    factor: new Array<number>(n),
  };
  for (let k = 0; k < n; k++) {
    const bit = (i: number) => ((k >> i) & 1) === 1;
    const b = k >> 8;
    const [vLikely, covered, unseen, nonprod, nxBit, vs, critical] = [bit(6), bit(5), bit(4), bit(3), bit(2), bit(1), bit(0)];
    const t0 = c.baseTier[b]!;
    const likely = vLikely && c.likelyRaise.includes(t0);
    const notLoaded = c.runtimeOn && covered && unseen;
    const nonProd = c.envOn && nonprod;
    const nx = c.controlOn && nxBit;
    const ft = Math.min(
      Math.max((likely ? Math.max(t0, c.likelyTo) : t0) - (notLoaded ? c.runtimeLower : 0) - (nonProd ? c.envLower : 0), 0),
      nx ? c.controlTo : 3,
      vs ? c.vendorTo : 3,
    );
    cells.ft[k] = ft;
    cells.shape[k] = Number(likely) + Number(c.runtimeOn && covered) * 2 + Number(nonProd) * 4 + Number(nx) * 8 + Number(vs) * 16;
    cells.dueDays[k] = c.dueDays[(b * 4 + ft) * 2 + Number(critical)]!;
    cells.factor[k] = (notLoaded ? c.runtimeFactor : 1) * (nonProd ? c.envFactor : 1) * (nx ? c.controlFactor : 1) * (vs ? c.vendorFactor : 1);
  }
  return cells;
}

/** PostgreSQL's md5(text)::uuid. */
function md5Uuid(text: string): string {
  const h = createHash('md5').update(text, 'utf8').digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Resolves the feed versions a run reads: the active ones unless given. */
async function feedVersions(sql: Sql | Tx, given: Partial<FeedVersions> = {}): Promise<FeedVersions> {
  const rows = await sql<{ kind: 'epss' | 'kev'; version: string }[]>`
    select distinct on (kind) kind, version from intel_feeds where status = 'active' order by kind, activated_at desc nulls last, imported_at desc`;
  const active = Object.fromEntries(rows.map((r) => [r.kind, r.version]));
  return { epss: given.epss ?? active.epss ?? null, kev: given.kev ?? active.kev ?? null };
}

/**
 * The decision's part of an explanation, from the values its key is made of: the decision-table row
 * (absent without a KEV catalog: the vulnerability's part says why), whether the likely-exploited,
 * runtime and environment factors apply (their wording is in the other parts), the controls and
 * vendor status that applied, the tier with its due date, and how the score is made.
 */
function contextBody(
  tx: Tx,
  c: ReturnType<typeof compile>,
  b: Fragment, ft: Fragment, critical: Fragment, shape: Fragment, unexposedBy: Fragment, control: Fragment, vendor: Fragment,
): Fragment {
  return tx`(
    jsonb_build_object('tier', (${c.tierObjs}::jsonb[])[(${b} * 4 + ${ft}) * 2 + ${critical}::int + 1],
      'likely', ${shape} & 1 = 1, 'runtime', ${shape} & 2 = 2, 'nonprod', ${shape} & 4 = 4, 'critical', ${critical},
      'runtimeEffect', format('%s tier lower (score × %s)', ${c.runtimeLower}::int, ${c.runtimeFactor}::float8),
      'scoreSource', ${c.source}::text, 'scoreText', ${c.scoreText}::text)
    || case when ${b} < 16 then jsonb_build_object('decision', (${c.decisionObjs}::jsonb[])[${b} + 1]) else '{}' end
    || case when ${unexposedBy} is not null then jsonb_build_object('unexposedBy', ${unexposedBy}) else '{}' end
    || case when ${control} is not null then jsonb_build_object('control', ${control}) else '{}' end
    || case when ${vendor} is not null then jsonb_build_object('vendor', ${tx.json(c.vendorObjs)}::jsonb -> ${vendor}) else '{}' end)`;
}

/**
 * The scoring relation for a scope: CTEs, then a SELECT of one row per open finding in scope with
 * its old values (old_*), the new tier, score, due date and explanation part ids (c_id with what
 * its body is built from); with `bodies`, also both explanations assembled. Used as is by shadow
 * scoring and as the source of the UPDATE by rescoring.
 */
function scoringQuery(tx: Tx, policy: Policy, scope: InternalScope, feeds: FeedVersions, { bodies = false }: { bodies?: boolean } = {}) {
  const c = compile(policy, feeds);
  const cells = decisionCells(c);
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
        : 'blocks' in scope
          ? scope.blocks.to === null
            ? tx`f.ctid >= ${`(${scope.blocks.from},0)`}::tid`
            : tx`f.ctid >= ${`(${scope.blocks.from},0)`}::tid and f.ctid < ${`(${scope.blocks.to},0)`}::tid`
          : scopeAssets
            ? tx`f.asset_id in (select asset_id from scope_assets)`
            : tx`true`;
  const assetFilter: Fragment =
    scopeAssets ? tx`where a.id in (select asset_id from scope_assets)` : tx``;

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
    services as materialized (
      select id, name, annual_revenue, attribute_sources->>'annual_revenue' as source from assets
      where annual_revenue is not null and kind = 'business_service' and ${c.revenueAt !== null}::boolean
    ),
    -- What EDR saw loaded on each host, per package (lower-cased), worded once per host rather than
    -- once per asset on it. A host with evidence but no package rows is covered and saw nothing.
    asset_hosts as (
      select a.id as asset_id, a.id as host_id from assets a where a.kind = 'host' ${scopeAssets ? tx`and a.id in (select asset_id from scope_assets)` : tx``}
      union
      select r.asset_id, r.target_id from asset_relations r
      where r.relation = 'runs_on' ${scopeAssets ? tx`and r.asset_id in (select asset_id from scope_assets)` : tx``}
    ),
    host_seen as materialized (
      select p.asset_id, jsonb_object_agg(p.package, p.seen) filter (where p.package <> '') as seen
      from (
        select distinct on (e.asset_id, lower(e.package)) e.asset_id, lower(e.package) as package,
               format('EDR on %s saw %s %s loaded by %s', h.name, e.package, nullif(e.version, ''), coalesce(nullif(e.process, ''), 'a process')) as seen
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
      left join asset_runtime rh on rh.asset_id = a.id
      -- The revenue of the business service the asset belongs to (by name or part_of), when it has none itself.
      left join lateral (
        select s.name, s.annual_revenue, s.source from services s
        where a.annual_revenue is null and s.id <> a.id
          and (s.name = a.business_service
               or s.id in (select r.target_id from asset_relations r where r.asset_id = a.id and r.relation = 'part_of'))
        order by s.annual_revenue desc, s.name limit 1
      ) sv on ${c.revenueAt !== null}::boolean
      ${assetFilter}
    ),
    asset_ctx0 as (
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
                   when x.facing_source like '%external scan%' and x.ports is not null
                   then format('an internet-side scan saw %s open on %s', array_to_string(x.ports, ', '), x.name)
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
        coalesce(b.criticality = any(${c.criticalities}::text[]), false) or coalesce(b.revenue >= ${c.revenueAt}::float8, false) as critical,
        case when coalesce(b.criticality = any(${c.criticalities}::text[]), false) or coalesce(b.revenue >= ${c.revenueAt}::float8, false) then
          jsonb_build_object('factor', 'business_impact',
            'value', case when b.revenue >= ${c.revenueAt}::float8 then to_jsonb(b.revenue) else to_jsonb(b.criticality) end,
            'source', case when b.revenue >= ${c.revenueAt}::float8 then 'asset context (' || b.revenue_source || ')'
                           else 'asset context (' || coalesce(b.criticality_source, 'inventory') || ')' end,
            'effect', array_to_string(array_remove(array[
                case when b.criticality = any(${c.criticalities}::text[]) then format('%s is rated %s', b.name, b.criticality) end,
                case when b.revenue >= ${c.revenueAt}::float8
                     then format('%s carries %s a year in revenue (at least %s)', case when b.revenue_of = b.name then b.name else 'its business service ' || b.revenue_of end,
                                 to_char(b.revenue, 'FM999,999,999,999,990'), to_char(${c.revenueAt}::float8, 'FM999,999,999,999,990')) end], null), '; ')
              || format(': a critical asset, due dates × %s', ${c.criticalDueFactor}::float8))
        end as business_obj,
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
        -- Not pulled up: the body would then be built twice, once more inside md5().
        offset 0
      ) p
    ),
    vkeys as (
      select f.issue_id, coalesce(f.cvss_vector, '') as vec, coalesce(f.cvss_score, -1) as cv, count(*)::int as n
      from findings f where f.status = 'open' and ${findingFilter}
      group by 1, 2, 3
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
    vulns0 as (
      select v.issue_id, v.vec, v.cv, v.n, v.epss, v.in_kev, v.auto, v.total, v.sev_tier,
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
    ),
    -- The vulnerability's part (feeds, CVSS), by content: ids that share a wording share a part.
    vulns as materialized (
      select v.issue_id, v.vec, v.cv, v.n, v.in_kev, v.auto, v.total, v.sev_tier, v.likely, v.score_base, p.v_body, md5(p.v_body::text)::uuid as v_id
      from vulns0 v
      cross join lateral (
        select jsonb_build_object('kev', v.kev_obj, 'auto', v.auto_obj, 'ti', v.ti_obj, 'epss', v.epss_obj)
               || case when v.likely_obj is not null then jsonb_build_object('likely', v.likely_obj) else '{}' end
               || case when v.sev_obj is not null then jsonb_build_object('sev', v.sev_obj) else '{}' end as v_body
        -- Not pulled up: the body would then be built twice, once more inside md5().
        offset 0
      ) p
    )`;

  // The decision's part of the explanation (table row, modifiers that applied, tier, score wording)
  // is keyed by what decides it: a few hundred distinct parts for a million findings. Built per key
  // (see contextBody), never per finding; the key's digest of the policy's wording keeps a reworded
  // policy from reusing an old part.
  // Most findings have no control or vendor status in their key: their part id is the cell's,
  // hashed here once per cell (the same text the statement would hash) instead of once per finding.
  const cellContextIds = cells.shape.map((shape, k) => md5Uuid(`${c.digest}|${k >> 8}|${cells.ft[k]}|${k & 1}|${shape}|||`));
  // The cell's decision-table row, final tier rank and explanation shape: read only for a part that
  // is not the cell's own, so not computed for every finding.
  const cellB = tx`y0.k / 256`;
  const cellFt = tx`(${cells.ft}::int[])[y0.k + 1]`;
  const cellShape = tx`(${cells.shape}::int[])[y0.k + 1]`;
  const contextKey = tx`case when y.unexposed_by is null and y.control is null and y.vendor is null
                             then (${cellContextIds}::uuid[])[y0.k + 1]
                             else md5(concat_ws('|', ${c.digest}::text, ${cellB}, ${cellFt}, y0.k & 1, ${cellShape},
                                                coalesce(y.unexposed_by::text, ''), coalesce(y.control::text, ''), coalesce(y.vendor, '')))::uuid end`;

  // Per finding: the two lookups that need the finding itself run only on assets that have EDR
  // coverage or controls (a guard on asset-level flags), so most findings pay for neither.
  const rows = tx`
    select f.ctid as row_ctid, f.id, f.asset_id, f.tier as old_tier, f.score as old_score, f.due_at as old_due,
      f.explanation_vuln as old_vuln, f.explanation_asset as old_asset, f.explanation_context as old_context,
      f.change_id is not null as old_change,
      -- The tier or the due date changes (the due date stays while the tier does, once set).
      f.tier is distinct from y.tier or f.due_at is null as moved,
      y.tier, y.score, v.v_id, a.a_id, ${contextKey} as c_id, y0.k,
      y.unexposed_by, y.control, y.vendor,
      case when f.tier is not distinct from y.tier and f.due_at is not null then f.due_at
           else now() + y.due_days * interval '1 day' end as due_at
      ${bodies ? tx`, f.issue_id, a.name as asset_name, f.explanation as old_explanation,
                    explanation_assemble(v.v_body, a.a_body, ${contextBody(tx, c, cellB, cellFt, tx`a.critical`, cellShape, tx`y.unexposed_by`, tx`y.control`, tx`y.vendor`)},
                                         f.component, y.score) as explanation` : tx``}
    from findings f
    -- "+ 0": hash the few assets and scan findings in order, not one index scan per asset (the
    -- UPDATE then visits its target rows in physical order).
    join asset_ctx a on a.id = f.asset_id + 0
    -- "|| ''": a hash join on the few vulnerabilities, never an index scan of findings per id.
    join vulns v on v.issue_id = f.issue_id || '' and v.vec = coalesce(f.cvss_vector, '') and v.cv = coalesce(f.cvss_score, -1)
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
                 or (cardinality(c.ports) > 0 and a.exposed_ports <@ c.ports))) end as ctls
      offset 0
    ) x
    -- The finding's cell: everything its tier, due date, score factors and explanation shape depend
    -- on, as one integer; what each cell gives is computed once per run (decisionCells).
    cross join lateral (
      select
        case when ${feeds.kev !== null}::boolean
             then v.in_kev::int * 8 + e.pe::int * 4 + v.auto::int * 2 + v.total::int
             else 16 + v.sev_tier end * 256
        + e.pe::int * 128 + v.likely::int * 64 + a.edr_covered::int * 32 + (x.seen is null)::int * 16 + a.nonprod::int * 8
        + (x.ctls[2] is not null)::int * 4 + coalesce(f.vendor_status = any(${c.vendorStatuses}::text[]), false)::int * 2
        + a.critical::int as k,
        e.pe
      from (select case when a.exposed = 'yes' then x.ctls[1] is null
                        when a.exposed = 'unknown' then ${dp.publiclyExposed.unknownMeans === 'yes'}::boolean
                        else false end as pe) e
      offset 0
    ) y0
    cross join lateral (
      -- Fixed-width arrays only: subscripting a text array walks it from the start.
      select (array['track', 'track*', 'attend', 'act'])[${cellFt} + 1] as tier, (${cells.dueDays}::float8[])[y0.k + 1] as due_days,
        round((v.score_base + case when y0.pe then ${w.publiclyExposed}::float8 else 0 end) * (${cells.factor}::float8[])[y0.k + 1] * 10) / 10 as score,
        case when a.exposed = 'yes' then x.ctls[1] end as unexposed_by,
        case when ${c.controlOn}::boolean then x.ctls[2] end as control,
        case when y0.k & 2 = 2 then f.vendor_status end as vendor
      offset 0
    ) y
    where f.status = 'open' and ${findingFilter}
    offset 0`;
  return { ctes, rows, cells, cellContextIds };
}

async function tuned(tx: Tx, shares = 1): Promise<void> {
  // Hash joins, the distinct-vulnerability aggregate and the per-finding results (read twice: for
  // the update and for the explanation parts) stay in memory at a million findings; the join of
  // findings to their vulnerability row is one the planner cannot estimate, and a merge join would
  // sort every finding for it.
  // Custom plans fold the policy's constants (a modifier that is off costs nothing); scores are
  // recomputed from the database, so the commit need not wait for the WAL flush.
  await tx`
    select set_config('work_mem', ${`${Math.max(64, Math.floor(512 / shares))}MB`}, true), set_config('enable_mergejoin', 'off', true),
           set_config('plan_cache_mode', 'force_custom_plan', true), set_config('synchronous_commit', 'off', true)`;
}

/**
 * Rescores the open findings in scope with the policy and the active feeds, in one statement (one
 * per share of the findings table's blocks, on as many connections, when the scope is everything). Writes only findings whose tier, score, due date or explanation changed; a due date is set when
 * the tier first appears or changes and otherwise stays. Each finding whose tier or due date changed
 * gets a new entry in score_history, which is also its exposure event (what mobilization consumes);
 * a score that only drifts with the daily EPSS is not history, or every feed update would copy every
 * finding. The entry is kept on the finding itself, so a first scoring of a million findings writes
 * each row once; a later change moves the entry it supersedes to score_changes. The explanation
 * parts the findings name are inserted alongside (once each: they are keyed by content).
 */
export async function rescoreFindings(
  sql: Sql,
  policy: Policy,
  scope: ScoringScope,
  { reason, parallel = DEFAULT_PARALLEL }: { reason: string; parallel?: number },
): Promise<RescoreResult> {
  const feeds = await feedVersions(sql);
  if (!('all' in scope) || parallel <= 1) return rescoreIn(sql, policy, scope, feeds, reason);
  // Everything: one share of the findings table's blocks per connection, so the statement's work (a single
  // PostgreSQL backend each) runs on every core. Each share is its own transaction, complete for
  // its blocks; the run resolves the feed versions once so all shares score against the same ones.
  // A share that fails leaves the others committed: rescoring is idempotent, a retry finishes it.
  const blocks = await shareBlocks(sql, parallel);
  const shares = await Promise.allSettled(blocks.map((share) => rescoreIn(sql, policy, { blocks: share }, feeds, reason, blocks.length)));
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

/**
 * The block ranges that split the open findings into `n` shares of about equal size, from the blocks of
 * a sample of the table: about a thousand blocks, all of a small table, at least 1% of a large one
 * (updates that move rows leave the open findings unevenly spread, so equal block counts would not
 * do). The first share starts at block 0 and the last one is open, so every row is in exactly one
 * share: each finding's row version as of a share's snapshot lies in one block, so each is scored
 * once even when an update moves it to another. Each share reads only its blocks (a TID range
 * scan), where a split by asset read the whole table in every share, twice.
 */
export async function shareBlocks(sql: Sql, n: number): Promise<{ from: number; to: number | null }[]> {
  const [size] = await sql<{ blocks: number }[]>`select (pg_relation_size('findings') / current_setting('block_size')::int)::float8 as blocks`;
  const percent = Math.min(100, Math.max(1, 100_000 / Math.max(1, size?.blocks ?? 0)));
  const [sample] = await sql<{ cuts: number[] | null }[]>`
    select percentile_disc(${Array.from({ length: n - 1 }, (_, i) => (i + 1) / n)}::float8[]) within group (order by block) as cuts
    from (select (ctid::text::point)[0] as block from findings tablesample system (${percent}::float4) where status = 'open') s`;
  const cuts = [...new Set((sample?.cuts ?? []).map(Number).filter((b) => b > 0))].sort((a, b) => a - b);
  return [0, ...cuts].map((from, i) => ({ from, to: cuts[i] ?? null }));
}

/** Concurrent shares of a full rescoring: one per core, up to four (the writes then contend). */
export const DEFAULT_PARALLEL = Math.max(1, Math.min(4, availableParallelism()));

async function rescoreIn(sql: Sql, policy: Policy, scope: InternalScope, feeds: FeedVersions, reason: string, shares = 1): Promise<RescoreResult> {
  return sql.begin(async (tx) => {
    // Shares run at once, each with its part of the memory a single statement would get.
    await tuned(tx, shares);
    // Parts this statement finds already stored are named without being inserted again, so pruning
    // must not delete them in between: scorings share this lock, pruning takes it alone.
    await tx`select pg_advisory_xact_lock_shared(hashtext(${PARTS_LOCK}))`;
    const c = compile(policy, feeds);
    const { ctes, rows, cells, cellContextIds } = scoringQuery(tx, policy, scope, feeds);
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
      -- A change of tier or due date is kept on the finding (same in-place update); the change it
      -- supersedes, if any, becomes a score_changes row, read from the finding as it was.
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
          case when s.unexposed_by is not null or s.control is not null or s.vendor is not null then s.c_id end as c_special,
          s.unexposed_by, s.control, s.vendor
      ),
      context_parts as (
        insert into explanation_parts (id, body)
        select k.c_id, ${contextBody(tx, c, tx`k.b`, tx`k.ft`, tx`k.critical`, tx`k.shape`, tx`k.unexposed_by`, tx`k.control`, tx`k.vendor`)}
        from (
          select distinct k, null::uuid as c_special, null::jsonb as unexposed_by, null::jsonb as control, null::text as vendor
          from upd where c_special is null
          union all
          select any_value(k), c_special, any_value(unexposed_by), any_value(control), any_value(vendor)
          from upd where c_special is not null group by c_special
        ) p
        -- What the cell gives, as the scoring relation decodes it (y0 and y in scoringQuery).
        cross join lateral (
          select coalesce(p.c_special, (${cellContextIds}::uuid[])[p.k + 1]) as c_id, p.k / 256 as b, (${cells.ft}::int[])[p.k + 1] as ft,
                 p.k & 1 = 1 as critical, (${cells.shape}::int[])[p.k + 1] as shape, p.unexposed_by, p.control, p.vendor
        ) k
        -- In id order, as the other parts: concurrent shares then never wait on each other in a cycle.
        order by k.c_id
        on conflict (id) do nothing
      ),
      superseded as (
        insert into score_changes (id, finding_id, asset_id, old_tier, tier, score, old_due_at, due_at, policy_version,
                                   explanation_vuln, explanation_asset, explanation_context, reason, at)
        select f.change_id, f.id, f.asset_id, f.previous_tier, f.tier, f.score, f.previous_due_at, f.due_at, f.change_policy,
               f.explanation_vuln, f.explanation_asset, f.explanation_context, f.change_reason, f.changed_at
        from findings f
        where f.id = any(array(select id from upd where moved and old_change))
      )
      select (select coalesce(sum(n), 0) from vkeys)::int as scored, w.changed, w.events
      from (select count(*)::int as changed, (count(*) filter (where moved))::int as events from upd) w`;
    return { scored: result?.scored ?? 0, changed: result?.changed ?? 0, events: result?.events ?? 0 };
  });
}

const PARTS_LOCK = 'ctem:explanation-parts';

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
  options: ShadowOptions = {},
): Promise<ShadowDiff> {
  return sql.begin('isolation level repeatable read read only', (tx) => shadowScoreIn(tx, policy, scope, options));
}

export interface ShadowOptions {
  /** Feed versions to score with instead of the active ones. */
  feeds?: { epss?: string; kev?: string };
  /** How many moved findings to explain. */
  samples?: number;
}

/**
 * shadowScore inside the caller's transaction: against what that transaction sees (a context
 * document merged in it and never committed, for one). Sets transaction-local planner settings.
 */
export async function shadowScoreIn(
  tx: Tx,
  policy: Policy,
  scope: ScoringScope,
  { feeds: given = {}, samples: sampleCount = 20 }: ShadowOptions = {},
): Promise<ShadowDiff> {
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
    const detail = scoringQuery(tx, policy, { findingIds: sampleIds }, feeds, { bodies: true });
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
