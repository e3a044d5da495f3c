import type { Sql } from '../db/client.js';
import { checkDay, dayOf, ESTATE, MetricsQueryError, type ProgramMetrics } from './snapshot.js';

// Reading the daily snapshots back: a trend is one indexed read of at most 366 rows of one scope,
// taking from each row only its `trend` digest (the per-owner tables stay in the row).

/** The longest range one read returns: a year of days. */
export const MAX_DAYS = 366;

export interface TrendPoint {
  day: string;
  act: number | null;
  attend: number | null;
  actAttend: number | null;
  kev: number | null;
  internetFacing: number | null;
  /** Share of the severity-driven backlog the policy set aside (0..1). */
  noiseReduction: number | null;
  slaFixedShare: number | null;
  slaAcknowledgedShare: number | null;
  overdue: number | null;
  escalated: number | null;
  mttrMedianHours: number | null;
  mttdMedianDays: number | null;
}

export interface SnapshotRange {
  scope?: string;
  /** First and last day, inclusive (YYYY-MM-DD); by default the 90 days up to today. */
  from?: string;
  to?: string;
}

const DAY_MS = 86_400_000;

/** Checks a range and fills its defaults: at most MAX_DAYS days, from not after to. */
export function resolveRange(range: SnapshotRange, today: Date = new Date()): { scope: string; from: string; to: string } {
  const to = range.to ? checkDay('to', range.to) : dayOf(today);
  const from = range.from ? checkDay('from', range.from) : dayOf(new Date(Date.parse(`${to}T00:00:00Z`) - 89 * DAY_MS));
  if (from > to) throw new MetricsQueryError('from', `must not be after to (${to})`);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days > MAX_DAYS) throw new MetricsQueryError('from', `a range holds at most ${MAX_DAYS} days (got ${days})`);
  return { scope: range.scope ?? ESTATE, from, to };
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** The scope's trend over the range, one point per day a snapshot was taken, oldest first. */
export async function snapshotSeries(sql: Sql, range: SnapshotRange = {}): Promise<TrendPoint[]> {
  const { scope, from, to } = resolveRange(range);
  // One key per row: each operator on a jsonb value decompresses the whole row's value again.
  const rows = await sql`
    select day, metrics -> 'trend' as trend from metric_snapshots
    where scope = ${scope} and day between ${from} and ${to}
    order by day`;
  return rows.map((r) => {
    const t = (r.trend ?? {}) as Partial<Record<keyof TrendPoint, unknown>>;
    return {
      day: r.day as string,
      act: num(t.act),
      attend: num(t.attend),
      actAttend: num(t.actAttend),
      kev: num(t.kev),
      internetFacing: num(t.internetFacing),
      noiseReduction: num(t.noiseReduction),
      slaFixedShare: num(t.slaFixedShare),
      slaAcknowledgedShare: num(t.slaAcknowledgedShare),
      overdue: num(t.overdue),
      escalated: num(t.escalated),
      mttrMedianHours: num(t.mttrMedianHours),
      mttdMedianDays: num(t.mttdMedianDays),
    };
  });
}

export interface Snapshot {
  day: string;
  scope: string;
  takenAt: string;
  metrics: ProgramMetrics;
}

/** The scope's most recent snapshot; undefined before the first. */
export async function latestSnapshot(sql: Sql, scope: string = ESTATE): Promise<Snapshot | undefined> {
  const [row] = await sql`select day, scope, metrics, taken_at from metric_snapshots where scope = ${scope} order by day desc limit 1`;
  if (!row) return undefined;
  return { day: row.day as string, scope: row.scope as string, takenAt: (row.taken_at as Date).toISOString(), metrics: row.metrics as ProgramMetrics };
}
