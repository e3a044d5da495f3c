import type { Sql } from '../db/client.js';
import { getScope, type ScopeSelector } from '../scoping/scopes.js';
import { compareAppetite, newestKevHits, openEscalationsByLevel, type EscalationLevel, type KevHit, type RiskAppetite } from './executive.js';
import { latestSnapshot, snapshotSeries, type TrendPoint } from './read.js';
import { dayOf, ESTATE, type ProgramMetrics } from './snapshot.js';

// The two views the console and the API share: the overview (the backlog and its trend, today) and
// the executive summary (speed, business exposure, appetite). Each is the latest snapshot, a trend
// from the snapshots and, for the overview, two small live reads (escalations, newest KEV hits).

export interface ViewScope {
  /** `*` for the whole estate, else a saved scope's name and selector. */
  name: string;
  selector?: ScopeSelector;
}

export interface SnapshotInfo {
  day: string;
  takenAt: string;
}

export interface OverviewView {
  scope: string;
  /** The snapshot the figures come from; null before the first. */
  snapshot: SnapshotInfo | null;
  backlog: ProgramMetrics['backlog'] | null;
  noise: ProgramMetrics['noise'] | null;
  sla: ProgramMetrics['sla'] | null;
  appetite: RiskAppetite;
  /** Live: open tickets escalated now, per level. */
  escalations: EscalationLevel[];
  /** Live: open findings of the CVEs added to KEV most recently. */
  newestKevHits: KevHit[];
  trend: TrendPoint[];
}

export interface ExecutiveView {
  scope: string;
  snapshot: SnapshotInfo | null;
  appetite: RiskAppetite;
  backlog: ProgramMetrics['backlog'] | null;
  mttd: ProgramMetrics['mttd'] | null;
  mttr: ProgramMetrics['mttr'] | null;
  sla: ProgramMetrics['sla'] | null;
  business: ProgramMetrics['business'] | null;
  topOverdueOwners: ProgramMetrics['topOverdueOwners'];
  /** A year of daily points. */
  trend: TrendPoint[];
}

/** `*` (or nothing) for the estate, else a saved scope; undefined when no scope has that name. */
export async function resolveViewScope(sql: Sql, name: string | undefined): Promise<ViewScope | undefined> {
  if (!name || name === ESTATE) return { name: ESTATE };
  const scope = await getScope(sql, name);
  return scope ? { name, selector: scope.selector as ScopeSelector } : undefined;
}

const DAY_MS = 86_400_000;
const since = (days: number, now: Date) => dayOf(new Date(now.getTime() - (days - 1) * DAY_MS));

export async function overviewView(sql: Sql, { scope = { name: ESTATE }, riskAppetite, days = 90, now = new Date() }: { scope?: ViewScope; riskAppetite: number; days?: number; now?: Date }): Promise<OverviewView> {
  const [latest, trend, escalations, kevHits] = await Promise.all([
    latestSnapshot(sql, scope.name),
    snapshotSeries(sql, { scope: scope.name, from: since(days, now), to: dayOf(now) }),
    openEscalationsByLevel(sql, scope.selector),
    newestKevHits(sql, { limit: 10, ...(scope.selector ? { scope: scope.selector } : {}) }),
  ]);
  const m = latest?.metrics;
  return {
    scope: scope.name,
    snapshot: latest ? { day: latest.day, takenAt: latest.takenAt } : null,
    backlog: m?.backlog ?? null,
    noise: m?.noise ?? null,
    sla: m?.sla ?? null,
    appetite: compareAppetite(riskAppetite, m?.backlog.actAttend ?? null, trend),
    escalations,
    newestKevHits: kevHits,
    trend,
  };
}

export async function executiveView(sql: Sql, { scope = { name: ESTATE }, riskAppetite, days = 365, now = new Date() }: { scope?: ViewScope; riskAppetite: number; days?: number; now?: Date }): Promise<ExecutiveView> {
  const [latest, trend] = await Promise.all([latestSnapshot(sql, scope.name), snapshotSeries(sql, { scope: scope.name, from: since(days, now), to: dayOf(now) })]);
  const m = latest?.metrics;
  return {
    scope: scope.name,
    snapshot: latest ? { day: latest.day, takenAt: latest.takenAt } : null,
    appetite: compareAppetite(riskAppetite, m?.backlog.actAttend ?? null, trend),
    backlog: m?.backlog ?? null,
    mttd: m?.mttd ?? null,
    mttr: m?.mttr ?? null,
    sla: m?.sla ?? null,
    business: m?.business ?? null,
    topOverdueOwners: m?.topOverdueOwners ?? [],
    trend,
  };
}
