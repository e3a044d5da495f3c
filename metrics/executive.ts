import type { Sql } from '../db/client.js';
import { ACTION_TIERS } from '../prioritization/policy.js';
import { scopeCondition, type ScopeSelector } from '../scoping/scopes.js';
import type { Durations, ResponseMetrics, ResponseReport } from '../validation/response.js';

// What an executive reads: how fast the program learns of a new exposure (MTTD), how fast it is
// fixed and verified (MTTR, from validation/response.ts), where the exposure sits in the business
// (services and their revenue), who is late, and the backlog against the stated risk appetite.
// The heavy parts run once a day into the snapshot (snapshot.ts); pages read the snapshot.

/** Open act + attend exposures accepted when CTEM_RISK_APPETITE is not set (config/index.ts has the same default). */
export const DEFAULT_RISK_APPETITE = 50;

/** The active version of a feed, as a SQL fragment. */
export const activeFeed = (sql: Sql, kind: 'kev' | 'cve') => sql`(select version from intel_feeds where kind = ${kind} and status = 'active')`;

export interface DaysDistribution {
  /** CVEs measured. */
  count: number;
  medianDays: number | null;
  p90Days: number | null;
}

export interface Mttd {
  /** From the CVE record's publication to the first finding of it in the estate. */
  fromPublished: DaysDistribution;
  /** From the CVE's addition to CISA KEV to its first finding in the estate (0 when it was found before). */
  fromKevAdded: DaysDistribution;
}

const round1 = (v: number | string | null) => (v === null ? null : Math.round(Number(v) * 10) / 10);

/**
 * Mean time to detect, as median and p90 days per CVE: from when the world could know (published,
 * or added to KEV) to the first finding of that CVE in the estate (open or closed since). Only CVEs
 * whose clock started after the program's first finding count: older CVEs found on a newly scanned
 * asset measure when the platform was installed, not how fast it detects. A finding seen before the
 * clock started (a scanner's advisory ahead of the CVE record) counts as detected at once.
 */
export async function computeMttd(sql: Sql, scope?: ScopeSelector): Promise<Mttd> {
  const [r] = await sql<Record<string, number | string | null>[]>`
    with program as materialized (select min(first_seen_at) as since from findings),
    first_found as (
      select f.issue_id, min(f.first_seen_at) as at
      from findings f join assets a on a.id = f.asset_id
      where f.issue_id like 'CVE-%' ${scope ? scopeCondition(sql, scope) : sql``}
      group by f.issue_id
    ),
    clocks as (
      select d.at, r.date_published as published, k.date_added::date::timestamptz as kev_added
      from first_found d
      left join cve_records r on r.cve = d.issue_id and r.feed_version = ${activeFeed(sql, 'cve')} and r.state = 'PUBLISHED'
      left join kev_entries k on k.cve = d.issue_id and k.feed_version = ${activeFeed(sql, 'kev')}
    ),
    lags as (
      select case when published >= (select since from program) then greatest(extract(epoch from at - published), 0) / 86400 end as pub_days,
             case when kev_added >= (select since from program) then greatest(extract(epoch from at - kev_added), 0) / 86400 end as kev_days
      from clocks
    )
    select count(pub_days)::int as pub_n,
           percentile_cont(0.5) within group (order by pub_days) as pub_median,
           percentile_cont(0.9) within group (order by pub_days) as pub_p90,
           count(kev_days)::int as kev_n,
           percentile_cont(0.5) within group (order by kev_days) as kev_median,
           percentile_cont(0.9) within group (order by kev_days) as kev_p90
    from lags`;
  return {
    fromPublished: { count: Number(r?.pub_n ?? 0), medianDays: round1(r?.pub_median ?? null), p90Days: round1(r?.pub_p90 ?? null) },
    fromKevAdded: { count: Number(r?.kev_n ?? 0), medianDays: round1(r?.kev_median ?? null), p90Days: round1(r?.kev_p90 ?? null) },
  };
}

export interface MttrRow {
  /** The tier, owner or business service; null: none recorded. */
  key: string | null;
  tickets: number;
  /** Detection to verified fix (median, p90 hours) over the verified tickets. */
  toVerify: Durations;
  /** Fixed (and verified) by the due date, of those decided. */
  fixedWithinSla: number | null;
  open: number;
  overdue: number;
}

export const mttrRow = (key: string | null, m: ResponseMetrics): MttrRow => ({
  key,
  tickets: m.tickets,
  toVerify: m.toVerify,
  fixedWithinSla: m.sla.fixed.share,
  open: m.open,
  overdue: m.overdue,
});

/** MTTR per group of a response report (validation/response.ts), the largest groups first. */
export const mttrRows = (report: ResponseReport, limit = 25): MttrRow[] => report.groups.slice(0, limit).map((g) => mttrRow(g.key, g));

export interface OverdueOwner {
  /** null: tickets without an owner (the orphan queue without a fallback owner). */
  owner: string | null;
  overdue: number;
  unacknowledgedOverdue: number;
  open: number;
}

/** The owners with the most overdue golden tickets (due date passed, SLA pauses counted), from the per-owner response report. */
export function topOverdueOwners(byOwner: ResponseReport, limit = 10): OverdueOwner[] {
  return byOwner.groups
    .filter((g) => g.overdue > 0)
    .map((g) => ({ owner: g.key, overdue: g.overdue, unacknowledgedOverdue: g.unacknowledgedOverdue, open: g.open }))
    .sort((a, b) => b.overdue - a.overdue || b.unacknowledgedOverdue - a.unacknowledgedOverdue || (a.owner ?? '~').localeCompare(b.owner ?? '~'))
    .slice(0, limit);
}

export interface ServiceExposure {
  name: string;
  /** Yearly revenue: the business service's own record (CMDB), else the highest its assets carry; null: unknown. */
  annualRevenue: number | null;
  /** Open act + attend exposures, of them act, in KEV, on internet-facing assets; the assets they sit on. */
  urgent: number;
  act: number;
  kev: number;
  internetFacing: number;
  assets: number;
  /** All open findings of the service. */
  open: number;
}

export interface BusinessExposure {
  services: ServiceExposure[];
  /** Services with open urgent exposure, and the revenue they carry. */
  servicesAtRisk: number;
  revenueAtRisk: number;
  /** Open urgent exposures on assets no business service claims. */
  unmappedUrgent: number;
}

/** Open exposure per business service with the revenue it carries, most urgent first. */
export async function businessExposure(sql: Sql, scope?: ScopeSelector, limit = 50): Promise<BusinessExposure> {
  const rows = await sql<Array<{ name: string | null; revenue: number | null; urgent: number; act: number; kev: number; facing: number; assets: number; open: number }>>`
    with open_findings as (
      select a.business_service, f.asset_id, f.tier = any(${ACTION_TIERS as string[]}) as urgent, f.tier = 'act' as act,
             k.cve is not null as kev, coalesce(a.internet_facing, false) as facing
      from findings f join assets a on a.id = f.asset_id
      left join kev_entries k on k.cve = f.issue_id and k.feed_version = ${activeFeed(sql, 'kev')}
      where f.status = 'open' ${scope ? scopeCondition(sql, scope) : sql``}
    ),
    by_service as (
      select business_service as name,
             count(*) filter (where urgent)::int as urgent,
             count(*) filter (where act)::int as act,
             count(*) filter (where urgent and kev)::int as kev,
             count(*) filter (where urgent and facing)::int as facing,
             count(distinct asset_id) filter (where urgent)::int as assets,
             count(*)::int as open
      from open_findings group by business_service
    ),
    own as (select name, max(annual_revenue) as revenue from assets where kind = 'business_service' and annual_revenue is not null group by name),
    carried as (select business_service as name, max(annual_revenue) as revenue from assets where annual_revenue is not null and business_service is not null group by business_service)
    select s.*, coalesce(o.revenue, c.revenue) as revenue
    from by_service s left join own o on o.name = s.name left join carried c on c.name = s.name
    order by s.name is null, s.urgent desc, revenue desc nulls last, s.name`;
  const services = rows.filter((r) => r.name !== null);
  const atRisk = services.filter((r) => r.urgent > 0);
  return {
    services: services.slice(0, limit).map((r) => ({
      name: r.name!,
      annualRevenue: r.revenue === null ? null : Number(r.revenue),
      urgent: r.urgent,
      act: r.act,
      kev: r.kev,
      internetFacing: r.facing,
      assets: r.assets,
      open: r.open,
    })),
    servicesAtRisk: atRisk.length,
    revenueAtRisk: atRisk.reduce((n, r) => n + Number(r.revenue ?? 0), 0),
    unmappedUrgent: rows.find((r) => r.name === null)?.urgent ?? 0,
  };
}

export interface RiskAppetite {
  /** Open act + attend exposures the program accepts (CTEM_RISK_APPETITE). */
  appetite: number;
  current: number | null;
  /** appetite - current: negative when above the appetite. */
  headroom: number | null;
  status: 'within' | 'above' | 'unknown';
  /** Snapshot days in the range above the appetite, of the days recorded. */
  daysAbove: number;
  daysRecorded: number;
}

export function compareAppetite(appetite: number, current: number | null, trend: Array<{ actAttend: number | null }>): RiskAppetite {
  const recorded = trend.filter((p) => p.actAttend !== null);
  return {
    appetite,
    current,
    headroom: current === null ? null : appetite - current,
    status: current === null ? 'unknown' : current > appetite ? 'above' : 'within',
    daysAbove: recorded.filter((p) => p.actAttend! > appetite).length,
    daysRecorded: recorded.length,
  };
}

export interface KevHit {
  findingId: number;
  cve: string;
  /** When CISA added it to KEV (YYYY-MM-DD). */
  kevDateAdded: string | null;
  knownRansomware: boolean;
  vendor: string | null;
  product: string | null;
  tier: string | null;
  assetName: string;
  owner: string | null;
  businessService: string | null;
  internetFacing: boolean;
  firstSeenAt: string;
}

/**
 * Open findings of the CVEs most recently added to KEV, newest first (at most `perCve` findings of
 * one CVE, so one widespread CVE does not fill the list). Walks the active KEV (a thousand or so
 * rows) newest first and probes findings by CVE (findings_issue_idx), stopping at `limit` rows:
 * no scan of findings however large the estate.
 */
export async function newestKevHits(sql: Sql, { limit = 10, perCve = 3, scope }: { limit?: number; perCve?: number; scope?: ScopeSelector } = {}): Promise<KevHit[]> {
  const rows = await sql`
    select k.cve, k.date_added, k.known_ransomware, k.vendor, k.product, x.*
    from (select cve, date_added, known_ransomware, vendor, product from kev_entries
          where feed_version = ${activeFeed(sql, 'kev')} order by date_added desc nulls last, cve) k
    cross join lateral (
      select f.id, f.tier, f.score, f.first_seen_at, a.name as asset_name, a.owner, a.business_service, coalesce(a.internet_facing, false) as internet_facing
      from findings f join assets a on a.id = f.asset_id
      where f.issue_id = k.cve and f.status = 'open' ${scope ? scopeCondition(sql, scope) : sql``}
      limit ${perCve}
    ) x
    limit ${limit}`;
  return rows
    .map((r) => ({
      findingId: Number(r.id),
      cve: r.cve as string,
      kevDateAdded: (r.date_added as string | null) ?? null,
      knownRansomware: r.known_ransomware as boolean,
      vendor: r.vendor as string | null,
      product: r.product as string | null,
      tier: r.tier as string | null,
      assetName: r.asset_name as string,
      owner: r.owner as string | null,
      businessService: r.business_service as string | null,
      internetFacing: r.internet_facing as boolean,
      firstSeenAt: (r.first_seen_at as Date).toISOString(),
      score: r.score as number | null,
    }))
    // The lateral probe takes findings in index order; the page reads them by date, then urgency.
    .sort((a, b) => (b.kevDateAdded ?? '').localeCompare(a.kevDateAdded ?? '') || a.cve.localeCompare(b.cve) || (b.score ?? -1) - (a.score ?? -1) || a.findingId - b.findingId)
    .map(({ score: _score, ...hit }) => hit);
}

export interface EscalationLevel {
  level: number;
  tickets: number;
}

/** Open golden tickets escalated now, per level of the management chain (tickets are few: a small read). */
export async function openEscalationsByLevel(sql: Sql, scope?: ScopeSelector): Promise<EscalationLevel[]> {
  const rows = await sql<EscalationLevel[]>`
    select t.escalation_level as level, count(*)::int as tickets
    from tickets t join assets a on a.id = t.asset_id
    where t.escalation_level > 0 and t.state not in ('resolved', 'closed', 'verified') ${scope ? scopeCondition(sql, scope) : sql``}
    group by t.escalation_level order by t.escalation_level`;
  return rows.map((r) => ({ level: Number(r.level), tickets: r.tickets }));
}
