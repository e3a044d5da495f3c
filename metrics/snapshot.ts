import type { Sql } from '../db/client.js';
import type { TrendPoint } from './read.js';
import { noiseCounts, type NoiseCounts } from '../db/read-models/exposures.js';
import { ACTION_TIERS } from '../prioritization/policy.js';
import { scopeCondition, type ScopeSelector } from '../scoping/scopes.js';
import { responseMetrics, type Attainment, type Durations } from '../validation/response.js';
import {
  activeFeed,
  businessExposure,
  computeMttd,
  mttrRows,
  openEscalationsByLevel,
  topOverdueOwners,
  type BusinessExposure,
  type EscalationLevel,
  type Mttd,
  type MttrRow,
  type OverdueOwner,
} from './executive.js';

// Program metrics, computed over the whole estate (or one saved scope) once a day and kept in
// metric_snapshots, one row per (day, scope). Trends and the console read these rows (a year is
// 366 of them per scope); nothing here runs when a page is viewed.

/** The scope name of the whole estate. */
export const ESTATE = '*';

export interface Backlog {
  /** Open findings, whatever their tier. */
  open: number;
  act: number;
  attend: number;
  /** act + attend: the exploitable backlog the policy asks people to fix. */
  actAttend: number;
  /** Open findings of CVEs in the active CISA KEV, and of those how many are act/attend. */
  kev: number;
  kevActAttend: number;
  /** Open act/attend findings on internet-facing assets. */
  internetFacing: number;
}

export interface ProgramMetrics {
  /** The instant the numbers hold for. */
  asOf: string;
  backlog: Backlog;
  /** What severity alone would flag against what the policy asks (db/read-models/exposures.ts). */
  noise: NoiseCounts;
  /** Golden tickets against their SLA (validation/response.ts). */
  sla: { acknowledged: Attainment; fixed: Attainment; tickets: number; open: number; overdue: number; unacknowledgedOverdue: number };
  escalations: { open: number; byLevel: EscalationLevel[] };
  mttd: Mttd;
  /** Detection to verified fix, overall and per tier, owner and business service. */
  mttr: { total: Durations; byTier: MttrRow[]; byOwner: MttrRow[]; byBusinessService: MttrRow[] };
  business: BusinessExposure;
  topOverdueOwners: OverdueOwner[];
  /** The figures a trend draws, in one small object: a year's trend reads this key alone from each row. */
  trend: Omit<TrendPoint, 'day'>;
}

/** A request the metrics cannot answer, naming the field at fault. */
export class MetricsQueryError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'MetricsQueryError';
  }
}

/** A calendar day, YYYY-MM-DD, that exists; anything else is refused with the field named. */
export function checkDay(field: string, day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
    throw new MetricsQueryError(field, `must be a calendar day as YYYY-MM-DD (got ${JSON.stringify(day)})`);
  }
  return day;
}

/** The UTC day of an instant. */
export const dayOf = (at: Date) => at.toISOString().slice(0, 10);

async function backlog(sql: Sql, scope?: ScopeSelector): Promise<Backlog> {
  const [r] = await sql<Backlog[]>`
    select count(*)::int as open,
           count(*) filter (where f.tier = 'act')::int as act,
           count(*) filter (where f.tier = 'attend')::int as attend,
           count(*) filter (where f.tier = any(${ACTION_TIERS as string[]}))::int as "actAttend",
           count(*) filter (where k.cve is not null)::int as kev,
           count(*) filter (where k.cve is not null and f.tier = any(${ACTION_TIERS as string[]}))::int as "kevActAttend",
           count(*) filter (where f.tier = any(${ACTION_TIERS as string[]}) and a.internet_facing)::int as "internetFacing"
    from findings f join assets a on a.id = f.asset_id
    left join kev_entries k on k.cve = f.issue_id and k.feed_version = ${activeFeed(sql, 'kev')}
    where f.status = 'open' ${scope ? scopeCondition(sql, scope) : sql``}`;
  return r!;
}

/** Every program metric of one scope (the whole estate when none), now. */
export async function computeMetrics(sql: Sql, scope?: ScopeSelector, now: Date = new Date()): Promise<ProgramMetrics> {
  const scoped = scope ? { scope } : {};
  const [counts, noise, byTier, byOwner, byService, escalations, mttd, business] = await Promise.all([
    backlog(sql, scope),
    noiseCounts(sql, scope),
    responseMetrics(sql, { ...scoped, now, groupBy: 'tier' }),
    responseMetrics(sql, { ...scoped, now, groupBy: 'owner' }),
    responseMetrics(sql, { ...scoped, now, groupBy: 'business_service' }),
    openEscalationsByLevel(sql, scope),
    computeMttd(sql, scope),
    businessExposure(sql, scope),
  ]);
  const total = byTier.total;
  const trend: Omit<TrendPoint, 'day'> = {
    act: counts.act,
    attend: counts.attend,
    actAttend: counts.actAttend,
    kev: counts.kev,
    internetFacing: counts.internetFacing,
    noiseReduction: noise.reduction,
    slaFixedShare: total.sla.fixed.share,
    slaAcknowledgedShare: total.sla.acknowledged.share,
    overdue: total.overdue,
    escalated: escalations.reduce((n, l) => n + l.tickets, 0),
    mttrMedianHours: total.toVerify.medianHours,
    mttdMedianDays: mttd.fromPublished.medianDays,
  };
  return {
    asOf: now.toISOString(),
    backlog: counts,
    noise,
    sla: {
      acknowledged: total.sla.acknowledged,
      fixed: total.sla.fixed,
      tickets: total.tickets,
      open: total.open,
      overdue: total.overdue,
      unacknowledgedOverdue: total.unacknowledgedOverdue,
    },
    escalations: { open: escalations.reduce((n, l) => n + l.tickets, 0), byLevel: escalations },
    mttd,
    mttr: { total: total.toVerify, byTier: mttrRows(byTier), byOwner: mttrRows(byOwner), byBusinessService: mttrRows(byService) },
    business,
    topOverdueOwners: topOverdueOwners(byOwner),
    trend,
  };
}

export interface SnapshotResult {
  day: string;
  /** The scopes written: `*` (the estate) and every saved scope. */
  scopes: string[];
}

/**
 * Takes the day's snapshot of the estate and of every saved scope: one row per (day, scope),
 * replaced when taken again the same day, so a retry or a second run leaves one row holding the
 * latest numbers.
 */
export async function takeSnapshot(sql: Sql, day: string, now: Date = new Date()): Promise<SnapshotResult> {
  checkDay('day', day);
  const scopes = (await sql`select name, selector from scopes order by name`) as unknown as Array<{ name: string; selector: ScopeSelector }>;
  const all = [{ name: ESTATE, selector: undefined as ScopeSelector | undefined }, ...scopes];
  for (const s of all) {
    const metrics = await computeMetrics(sql, s.selector, now);
    await sql`
      insert into metric_snapshots (day, scope, metrics, taken_at) values (${day}, ${s.name}, ${sql.json(metrics as never)}, ${now})
      on conflict (day, scope) do update set metrics = excluded.metrics, taken_at = excluded.taken_at`;
  }
  return { day, scopes: all.map((s) => s.name) };
}

/** Whether the day's snapshot of the estate exists (start-up takes one when it does not). */
export async function hasSnapshot(sql: Sql, day: string): Promise<boolean> {
  const [row] = await sql`select 1 from metric_snapshots where day = ${day} and scope = ${ESTATE}`;
  return row !== undefined;
}
