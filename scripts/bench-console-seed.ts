// The estate the console benchmark runs on (bench-console.ts): what a large program looks like after
// a year, seeded with set-based SQL so a million findings take minutes. Findings come from the
// scoring benchmarks' generator (bench-estate.ts) and are scored by the real rescoring, so tiers,
// scores, due dates and explanation parts are the platform's own; owners, business services with
// revenue, sources, older score history, golden tickets with escalations, a year of metric
// snapshots, saved scopes and hunting hypotheses are added around them.
import type postgres from 'postgres';
import type { Database, Sql } from '../db/client.js';
import { dayOf, takeSnapshot } from '../metrics/snapshot.js';
import { saveHypothesis } from '../scoping/hypotheses.js';
import { defaultPolicy } from '../prioritization/policy.js';
import { rescoreFindings } from '../prioritization/scoring/rescore.js';
import { cvePool, generate, importFeeds, round, timed } from './bench-estate.js';

export interface SeedOptions {
  findings: number;
  tickets: number;
  /** Days of metric snapshots and hypothesis results, ending today. */
  days: number;
  /** Assets (hosts and images); business services come on top. */
  assets: number;
}

export interface SeedReport {
  seconds: number;
  steps: Record<string, number>;
  intel: string;
  cves: string;
  counts: SeedCounts;
}

export interface SeedCounts {
  findings: number;
  openFindings: number;
  tiers: Record<string, number>;
  assets: number;
  owners: number;
  businessServices: number;
  internetFacingAssets: number;
  findingSources: number;
  scoreChanges: number;
  tickets: number;
  ticketStates: Record<string, number>;
  escalations: number;
  metricSnapshots: number;
  snapshotDays: number;
  scopes: number;
  hypotheses: number;
  hypothesisResults: number;
}

/** Named saved scopes; metric snapshots are taken for the estate (`*`) and each of these. */
export const SEED_SCOPES: Array<{ name: string; selector: Record<string, unknown>; description: string }> = [
  { name: 'production', selector: { environments: ['production'] }, description: 'Everything running in production' },
  { name: 'internet-facing', selector: { internetFacing: true }, description: 'Assets reachable from the internet' },
  { name: 'payments', selector: { businessServices: ['svc-1', 'svc-2'] }, description: 'The two highest-revenue business services' },
  { name: 'crown-jewels', selector: { criticalities: ['critical'], environments: ['production'] }, description: 'Critical production assets' },
  { name: 'hosts', selector: { assetKinds: ['host'] }, description: 'Virtual machines and servers' },
];

export const SEED_HYPOTHESES: Array<{ name: string; statement: string; query: Record<string, unknown> }> = [
  { name: 'log4shell-internet', statement: 'Log4Shell is still reachable from the internet', query: { issueIds: ['CVE-2021-44228', 'CVE-2021-45046'], publiclyExposed: true } },
  { name: 'kev-in-production', statement: 'Known exploited vulnerabilities remain in production', query: { kev: true, scope: { environments: ['production'] } } },
  { name: 'kev-internet-facing', statement: 'Known exploited vulnerabilities on internet-facing assets', query: { kev: true, publiclyExposed: true } },
  { name: 'spring4shell', statement: 'Spring4Shell on any asset', query: { issueIds: ['CVE-2022-22965'] } },
  { name: 'runtime-component-7', statement: 'component-7 is loaded at runtime somewhere', query: { components: ['component-7'], runtime: 'loaded' } },
  { name: 'urgent-payments', statement: 'Urgent exposures of the payment services', query: { scope: { businessServices: ['svc-1', 'svc-2'] }, tiers: ['act', 'attend'] } },
  { name: 'critical-hosts', statement: 'Critical findings on hosts', query: { scope: { assetKinds: ['host'] }, severities: ['critical'] } },
  { name: 'staging-act', statement: 'Act-tier exposures left in staging', query: { scope: { environments: ['staging'] }, tiers: ['act'] } },
];

const TICKET_STATES = ['new', 'in_progress', 'on_hold', 'risk_accepted', 'resolved', 'closed', 'verified', 'orphaned'] as const;

/**
 * Seeds every table the console reads. `say` reports progress; each step's seconds are returned.
 * The database must be migrated and empty.
 */
export async function seedConsoleEstate(database: Database, options: SeedOptions, say: (line: string) => void): Promise<SeedReport> {
  const sql = database.sql;
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    say(`  ${name}...`);
    const { seconds, value } = await timed(run);
    steps[name] = round(seconds);
    return value;
  };
  const started = process.hrtime.bigint();
  const owners = Math.max(5, Math.min(200, Math.round(options.assets / 100)));
  const services = Math.max(3, Math.min(40, Math.round(options.assets / 500)));

  const intel = await step('feeds', () => importFeeds(database));
  const pool = cvePool();
  await step('assets and findings', () => generate(sql, options.findings, options.assets, pool));
  await step('feed rows for the CVEs used', () => seedFeedRows(sql, pool.kev));
  await step('owners, business services, history of findings', () => seedContext(sql, { owners, services }));
  await step('scoring', () => rescoreFindings(sql, defaultPolicy(), { all: true }, { reason: 'bench seed' }));
  await step('finding sources', () => seedFindingSources(sql));
  await step('score history sample', () => seedScoreChanges(sql, defaultPolicy().version));
  await step('tickets and escalations', () => seedTickets(sql, options.tickets));
  await step('scopes and hypotheses', () => seedScopesAndHypotheses(sql, options.days));
  // Statistics first: the snapshot's queries are planned like the running platform's (autovacuum keeps them there).
  await step('vacuum analyze', () => sql`vacuum analyze`);
  await step('metric snapshots', () => seedMetricSnapshots(sql, { days: options.days }));
  await step('analyze snapshots', () => sql`analyze metric_snapshots`);
  const counts = await seedCounts(sql);
  return { seconds: round(Number(process.hrtime.bigint() - started) / 1e9), steps, intel, cves: pool.source, counts };
}

/** EPSS scores and KEV entries in the active versions for every CVE the findings use (the corpus feeds have them already). */
async function seedFeedRows(sql: postgres.Sql, kev: string[]) {
  const [versions] = await sql<{ epss: string; kev: string }[]>`
    select max(version) filter (where kind = 'epss') as epss, max(version) filter (where kind = 'kev') as kev from intel_feeds where status = 'active'`;
  if (!versions?.epss || !versions.kev) throw new Error('the seed needs an active EPSS and KEV feed version');
  // Most CVEs are rarely exploited: EPSS skewed low, percentile from its rank.
  await sql`
    insert into epss_scores (feed_version, cve, epss, percentile)
    select ${versions.epss}, c.cve, c.epss, percent_rank() over (order by c.epss)
    from (select issue_id as cve, round(power((abs(hashtext(issue_id || 'epss')) % 10000) / 10000.0, 6)::numeric, 5)::float8 as epss
          from findings group by issue_id) c
    on conflict do nothing`;
  await sql`
    insert into kev_entries (feed_version, cve, vendor, product, date_added, due_date, known_ransomware)
    select ${versions.kev}, k.cve, 'vendor', 'product', to_char(date '2026-01-29' - (abs(hashtext(k.cve)) % 1500), 'YYYY-MM-DD'),
           to_char(date '2026-01-29' - (abs(hashtext(k.cve)) % 1500) + 21, 'YYYY-MM-DD'), abs(hashtext(k.cve)) % 5 = 0
    from unnest(${kev}::text[]) k(cve)
    where exists (select 1 from findings f where f.issue_id = k.cve)
    on conflict do nothing`;
}

async function seedContext(sql: postgres.Sql, { owners, services }: { owners: number; services: number }) {
  // Business services as the CMDB has them: revenue from half a million to half a billion a year,
  // svc-1 the largest.
  await sql`
    insert into assets (asset_key, kind, name, owner, criticality, annual_revenue, attribute_sources)
    select 'business_service:svc-' || g, 'business_service', 'svc-' || g, 'owner.' || lpad((1 + g % ${owners})::text, 3, '0'),
           (array['critical', 'high', 'medium', 'low'])[1 + least(3, (g - 1) / 10)],
           round(500000000 / power(1.2, g - 1)), '{"annual_revenue": "cmdb"}'::jsonb
    from generate_series(1, ${services}) g`;
  // Owners skewed (a few platform teams own much of the estate); 3% of assets have none (orphans).
  await sql`
    update assets set
      owner = case when abs(hashtext(asset_key)) % 33 = 0 then null
                   else 'owner.' || lpad((1 + floor(power((abs(hashtext(asset_key || 'o')) % 10000) / 10000.0, 2) * ${owners}))::int::text, 3, '0') end,
      business_service = 'svc-' || (1 + floor(power((abs(hashtext(asset_key || 's')) % 10000) / 10000.0, 1.5) * ${services}))::int,
      last_scanned_at = now() - (abs(hashtext(asset_key || 'l')) % 72) * interval '1 hour',
      first_seen_at = now() - (abs(hashtext(asset_key || 'f')) % 400) * interval '1 day'
    where kind <> 'business_service'`;
  // A year of detection: first seen spread back over 400 days (more of it recent); one in twelve closed.
  await sql`
    update findings set
      first_seen_at = now() - floor(power(random(), 2) * 400) * interval '1 day' - random() * interval '1 day',
      last_seen_at = now() - random() * interval '2 days',
      status = case when id % 12 = 0 then 'closed' else 'open' end,
      closed_at = case when id % 12 = 0 then now() - floor(random() * 300) * interval '1 day' end,
      closed_reason = case when id % 12 = 0 then 'not reported by the last complete scan' end`;
  await sql`update findings set closed_at = greatest(closed_at, first_seen_at + interval '1 hour') where status = 'closed'`;
}

async function seedFindingSources(sql: postgres.Sql) {
  // Images are scanned by Trivy (a third also by Grype), hosts by Tenable (a third also by Qualys).
  await sql`
    insert into finding_sources (finding_id, source, present, vendor_status, severity, cvss_score, cvss_vector, first_seen_at, last_seen_at, last_scan_id)
    select f.id, s.source, f.status = 'open', f.vendor_status, f.severity, f.cvss_score, f.cvss_vector, f.first_seen_at, f.last_seen_at, f.last_scan_id
    from findings f
    join assets a on a.id = f.asset_id
    cross join lateral (values (case when a.kind = 'host' then 'tenable' else 'trivy' end, true),
                               (case when a.kind = 'host' then 'qualys' else 'grype' end, f.id % 3 = 0)) s(source, reports)
    where s.reports`;
}

/** Earlier tier changes for one finding in twenty (two for one in sixty), before their current one. */
async function seedScoreChanges(sql: postgres.Sql, policyVersion: string) {
  await sql`
    insert into score_changes (finding_id, asset_id, old_tier, tier, score, old_due_at, due_at, policy_version,
                               explanation_vuln, explanation_asset, explanation_context, reason, at)
    select f.id, f.asset_id, case when n.k = 2 then 'track' end,
           case when n.k = 2 then 'track*' when f.tier = 'track' then 'track*' else 'track' end,
           greatest(0, f.score - 5 * n.k), null, case when n.k = 1 then f.due_at + interval '30 days' end, ${policyVersion},
           f.explanation_vuln, f.explanation_asset, f.explanation_context,
           (array['EPSS 2025-12-01', 'context import', 'KEV 2025.11.30'])[n.k], f.first_seen_at + (3 - n.k) * interval '1 day'
    from findings f
    cross join lateral (values (1), (2)) n(k)
    where f.tier is not null and f.id % 20 = 0 and (n.k = 1 or f.id % 60 = 0)`;
}

/**
 * Golden tickets: the open act/attend findings (then track*) grouped by asset and component, the
 * highest scores first; every finding of a group goes on its ticket. States spread over a year of
 * work: most closed or verified, a backlog in progress, some overdue and escalated.
 */
async function seedTickets(sql: postgres.Sql, tickets: number) {
  await sql.begin(async (tx) => {
    await tx`
      create temp table bench_ticket_groups on commit drop as
      select row_number() over (order by g.rank desc, g.score desc, g.asset_id, g.component) as n, g.*
      from (
        select f.asset_id, f.component, max(f.fixed_version) as fixed_version, max(f.score) as score,
               max(case f.tier when 'act' then 3 when 'attend' then 2 else 1 end) as rank, count(*)::int as findings
        from findings f
        where f.status = 'open' and f.tier in ('act', 'attend', 'track*')
        group by f.asset_id, f.component
      ) g
      order by 1
      limit ${tickets}`;
    await tx`analyze bench_ticket_groups`;
    const [row] = await tx<{ n: number }[]>`select count(*)::int as n from bench_ticket_groups`;
    const n = row?.n ?? 0;
    if (n < tickets) throw new Error(`--tickets ${tickets}: the findings make only ${n} distinct fixes (asset and component); ask for fewer tickets or more findings`);
    await tx`
      insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, external_sys_id, external_number,
                           ack_due_at, due_at, escalation_level, escalation_peak, escalation_count, last_escalated_at, finding_count,
                           acknowledged_at, first_acknowledged_at, resolved_at, verified_at, reopen_count, action, orphan_reason, itsm, external_url,
                           created_at, updated_at)
      select t.key, 'remediation:' || t.key, t.asset_id, t.component, coalesce(t.fixed_version, 'latest'),
             case when t.state = 'orphaned' then null else coalesce(a.owner, 'owner.001') end, t.state, t.tier,
             md5(t.key), 'INC' || lpad(t.n::text, 7, '0'),
             t.created + interval '1 day' * (case t.tier when 'act' then 1 else 3 end),
             t.created + interval '1 day' * (case t.tier when 'act' then 7 when 'attend' then 30 else 90 end),
             case when t.open and t.overdue then t.level else 0 end, t.level, t.level,
             case when t.level > 0 then t.created + interval '1 day' * (case t.tier when 'act' then 7 else 30 end) + t.level * interval '5 days' end,
             t.findings,
             case when t.acked and t.state not in ('new', 'orphaned') then t.created + t.ack_after end,
             case when t.acked and t.state not in ('new', 'orphaned') then t.created + t.ack_after end,
             case when t.state in ('resolved', 'closed', 'verified') then t.created + t.fix_after end,
             case when t.state = 'verified' then t.created + t.fix_after + interval '1 day' end,
             case when t.n % 17 = 0 then 1 else 0 end, 'package',
             case when t.state = 'orphaned' then 'no owner in the CMDB' end, 'servicenow',
             'https://itsm.example.com/nav_to.do?uri=incident.do?sys_id=' || md5(t.key),
             t.created, t.created + t.fix_after
      from (
        select g.*, s.state, s.state not in ('resolved', 'closed', 'verified') as open,
               (array['track*', 'attend', 'act'])[g.rank] as tier,
               'package~' || regexp_replace(g.component, '[^A-Za-z0-9]+', '-', 'g') || '~' || regexp_replace(a.name, '[^A-Za-z0-9]+', '-', 'g') || '~' || left(md5(g.asset_id || g.component), 8) as key,
               now() - floor(power((abs(hashtext(g.n::text)) % 10000) / 10000.0, 1.5) * 365) * interval '1 day' - interval '2 hours' as created,
               (abs(hashtext(g.n::text || 'a')) % 96) * interval '1 hour' as ack_after,
               (1 + abs(hashtext(g.n::text || 'f')) % 45) * interval '1 day' as fix_after,
               abs(hashtext(g.n::text || 'ack')) % 4 <> 0 as acked,
               abs(hashtext(g.n::text || 'o')) % 3 = 0 as overdue,
               case when abs(hashtext(g.n::text || 'e')) % 5 < 2 then 1 + abs(hashtext(g.n::text || 'l')) % 3 else 0 end as level
        from bench_ticket_groups g
        join assets a on a.id = g.asset_id
        cross join lateral (select (${TICKET_STATES as unknown as string[]}::text[])[
          case when abs(hashtext(g.n::text || 's')) % 100 < 14 then 1 when abs(hashtext(g.n::text || 's')) % 100 < 34 then 2
               when abs(hashtext(g.n::text || 's')) % 100 < 38 then 3 when abs(hashtext(g.n::text || 's')) % 100 < 42 then 4
               when abs(hashtext(g.n::text || 's')) % 100 < 52 then 5 when abs(hashtext(g.n::text || 's')) % 100 < 62 then 6
               when abs(hashtext(g.n::text || 's')) % 100 < 96 then 7 else 8 end] as state) s
      ) t
      join assets a on a.id = t.asset_id`;
    // Fresh statistics first: planned as an empty table, the join below scanned the findings once per ticket.
    await tx`analyze tickets`;
    await tx`
      update findings f set ticket_key = t.key
      from tickets t
      where f.asset_id = t.asset_id and f.component = t.component and f.status = 'open' and f.tier in ('act', 'attend', 'track*')`;
    // Each escalation climbs one level of the manager chain.
    await tx`
      insert into escalations (ticket_key, phase, level, cycle, notified_user, notified_name, reason, ticket_noted_at, created_at)
      select t.key, case when t.acknowledged_at is null then 'acknowledgement' else 'resolution' end, l, 0,
             'manager.' || lpad((1 + abs(hashtext(coalesce(t.owner, 'orphan'))) % 40)::text, 2, '0'), 'Manager ' || (1 + abs(hashtext(coalesce(t.owner, 'orphan'))) % 40),
             'SLA breached: due ' || to_char(t.due_at, 'YYYY-MM-DD'), t.due_at + l * interval '5 days', t.due_at + l * interval '5 days'
      from tickets t cross join lateral generate_series(1, t.escalation_peak) l
      where t.escalation_peak > 0`;
    await tx`
      insert into risk_acceptances (ticket_key, requester, approver, reason, accepted_at, expires_at)
      select t.key, coalesce(t.owner, 'owner.001'), 'ciso', 'compensated by a WAF rule until the vendor ships a fix', t.created_at + interval '2 days', t.created_at + interval '92 days'
      from tickets t where t.state = 'risk_accepted'`;
  });
}

async function seedScopesAndHypotheses(sql: postgres.Sql, days: number) {
  for (const s of SEED_SCOPES) {
    await sql`insert into scopes (name, selector, description) values (${s.name}, ${sql.json(s.selector as postgres.JSONValue)}, ${s.description})
              on conflict (name) do update set selector = excluded.selector, description = excluded.description`;
  }
  // Saved the way the platform saves them, so a query the workbench would refuse cannot be seeded.
  for (const h of SEED_HYPOTHESES) {
    await saveHypothesis(sql as unknown as Sql, { ...h, createdBy: 'owner.001' });
    await sql`update hypotheses set created_at = now() - ${days} * interval '1 day', updated_at = now() - ${days} * interval '1 day' where name = ${h.name}`;
  }
  // One scheduled run a day per hypothesis, the residual exposure shrinking over the year; a campaign now and then.
  await sql`
    insert into hypothesis_results (hypothesis, matched, urgent, counts, trigger, campaign_id, at)
    select h.name, m.matched, m.urgent,
           jsonb_build_object('act', m.urgent / 4, 'attend', m.urgent - m.urgent / 4, 'track*', m.matched / 5, 'track', m.matched - m.urgent - m.matched / 5, 'assets', greatest(1, m.matched / 7)),
           case when d % 30 = 0 then 'campaign' else 'schedule' end,
           case when d % 30 = 0 then 'campaign:hunt-' || h.name || ':' || d end,
           now() - d * interval '1 day'
    from hypotheses h
    cross join generate_series(0, ${days - 1}) d
    cross join lateral (select (200 + abs(hashtext(h.name)) % 800 + d * 3)::int as matched, (20 + abs(hashtext(h.name)) % 60 + d / 4)::int as urgent) m`;
}

/**
 * A year of daily snapshots in the shape the platform writes: today's is taken for real
 * (metrics/snapshot.ts, every saved scope and the estate), and each earlier day copies it with the
 * trend's counts scaled (the backlog falls over the year, with a little daily noise). The console
 * reads the latest row whole and only the `trend` key of the others.
 */
export async function seedMetricSnapshots(sql: postgres.Sql, { days }: { days: number }): Promise<number> {
  const today = dayOf(new Date());
  const taken = await takeSnapshot(sql as unknown as Sql, today);
  const shares = ['noiseReduction', 'slaFixedShare', 'slaAcknowledgedShare'];
  const rows = await sql`
    insert into metric_snapshots (day, scope, metrics, taken_at)
    select to_char(${today}::date - d, 'YYYY-MM-DD'), m.scope,
           jsonb_set(m.metrics, '{trend}', (
             select jsonb_object_agg(t.key, case when jsonb_typeof(t.value) = 'number' and not (t.key = any(${shares}::text[]))
                                                 then to_jsonb(round((t.value::text)::numeric * (1 + 0.002 * d) * (1 + 0.03 * sin(d * 0.7))))
                                                 else t.value end)
             from jsonb_each(m.metrics -> 'trend') t)),
           (${today}::date - d) + time '02:00'
    from metric_snapshots m
    cross join generate_series(1, ${days - 1}) d
    where m.day = ${today}
    on conflict (day, scope) do update set metrics = excluded.metrics, taken_at = excluded.taken_at`;
  return taken.scopes.length + rows.count;
}

/** What the seeded database holds (also for a database seeded by an earlier run). */
export async function seedCounts(sql: postgres.Sql): Promise<SeedCounts> {
  const [c] = await sql`
    select (select count(*)::int from findings) as findings,
           (select count(*)::int from findings where status = 'open') as open_findings,
           (select jsonb_object_agg(coalesce(tier, 'unscored'), n) from (select tier, count(*)::int as n from findings where status = 'open' group by tier) t) as tiers,
           (select count(*)::int from assets where kind <> 'business_service') as assets,
           (select count(distinct owner)::int from assets where kind <> 'business_service') as owners,
           (select count(*)::int from assets where kind = 'business_service') as business_services,
           (select count(*)::int from assets where internet_facing) as internet_facing_assets,
           (select count(*)::int from finding_sources) as finding_sources,
           (select count(*)::int from score_changes) as score_changes,
           (select count(*)::int from tickets) as tickets,
           (select jsonb_object_agg(state, n) from (select state, count(*)::int as n from tickets group by state) t) as ticket_states,
           (select count(*)::int from escalations) as escalations,
           (select count(*)::int from metric_snapshots) as metric_snapshots,
           (select count(distinct day)::int from metric_snapshots) as snapshot_days,
           (select count(*)::int from scopes) as scopes,
           (select count(*)::int from hypotheses) as hypotheses,
           (select count(*)::int from hypothesis_results) as hypothesis_results`;
  return {
    findings: c!.findings,
    openFindings: c!.open_findings,
    tiers: c!.tiers ?? {},
    assets: c!.assets,
    owners: c!.owners,
    businessServices: c!.business_services,
    internetFacingAssets: c!.internet_facing_assets,
    findingSources: c!.finding_sources,
    scoreChanges: c!.score_changes,
    tickets: c!.tickets,
    ticketStates: c!.ticket_states ?? {},
    escalations: c!.escalations,
    metricSnapshots: c!.metric_snapshots,
    snapshotDays: c!.snapshot_days,
    scopes: c!.scopes,
    hypotheses: c!.hypotheses,
    hypothesisResults: c!.hypothesis_results,
  };
}
