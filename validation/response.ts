import type postgres from 'postgres';
import type { Sql } from '../db/client.js';
import { ACTION_TIERS } from '../prioritization/policy.js';
import { scopeCondition, type ScopeSelector } from '../scoping/scopes.js';

// Was the response fast and adequate? Golden tickets already record their lifecycle; this reads it
// back against the SLA, in SQL over the tables (like mobilization/audit.ts): exact when asked, and
// one query for the whole estate.
//
// The instants, per ticket (what the read model records, and where it falls short):
// - detected: when the platform knew the exposure was urgent: the earliest time one of the ticket's
//   findings entered act/attend in score_history. A finding with no such row (scored before history
//   was kept) counts from its first_seen_at; a ticket with no finding left, from its creation.
// - acknowledged: the earliest of the first acknowledgement (first_acknowledged_at, kept across
//   re-openings; acknowledged_at for tickets older than that column) and resolved_at (a resolution
//   without an explicit acknowledgement is one).
// - fixed: resolved_at, the owner's claim (the latest one after a re-opening).
// - verified: verified_at, when the next scan confirmed the fix; for tickets verified before that
//   column, the row's updated_at when it turned `verified` (seconds after the scan, unless a later
//   re-plan touched the row).
// - deadlines: ack_due_at as the workflow last wrote it; due_at (the policy's) moved by the time risk
//   acceptances paused the SLA, as the workflow moves its own.
// - re-opened after a failed verification: reopen_count counts a resolved ticket going back to work.
//   For tickets older than that column: every re-opening (failed verification or expired risk
//   acceptance) starts a new escalation cycle, so a ticket escalated in a cycle beyond its expired
//   risk acceptances was re-opened by a failed verification (a lower bound).

export const RESPONSE_GROUPS = ['tier', 'owner', 'business_service'] as const;
export type ResponseGroupBy = (typeof RESPONSE_GROUPS)[number];

export interface Durations {
  /** Tickets that reached this point. */
  count: number;
  medianHours: number | null;
  p90Hours: number | null;
}

export interface Attainment {
  /** Tickets whose deadline has passed or that met it already. */
  due: number;
  met: number;
  /** met / due; null when nothing was due. */
  share: number | null;
}

export interface ResponseMetrics {
  tickets: number;
  /** Detection to acknowledgement. */
  toAcknowledge: Durations;
  /** Detection to the resolution that verification confirmed (verified tickets). */
  toFix: Durations;
  /** Detection to verification (verified tickets). */
  toVerify: Durations;
  sla: { acknowledged: Attainment; fixed: Attainment };
  /** Not resolved yet (resolved or closed tickets wait for verification; verified ones are done). */
  open: number;
  /** Open and past the (pause-adjusted) due date. */
  overdue: number;
  /** Open, nobody acknowledged, past the acknowledgement deadline. */
  unacknowledgedOverdue: number;
  /** Resolved or closed, waiting for the next scan to verify. */
  awaitingVerification: number;
  adequacy: {
    /** Tickets ever resolved: waiting for verification, verified, or re-opened by a failed one. */
    resolved: number;
    verified: number;
    /** Re-opened after a failed verification (a lower bound, see above). */
    reopened: number;
    /** reopened / resolved; null when nothing was resolved. */
    failedShare: number | null;
  };
}

export interface ResponseReport {
  /** The instant the numbers hold for. */
  asOf: string;
  groupBy: ResponseGroupBy | null;
  /** Tickets detected within [since, until). */
  since: string | null;
  until: string | null;
  total: ResponseMetrics;
  /** One row per group (key null: no owner, no business service), largest first. */
  groups: Array<ResponseMetrics & { key: string | null }>;
}

export type DetectionSource = 'became-urgent' | 'first-seen' | 'ticket-created';

/** One ticket's response, with the same definitions as the metrics. */
export interface TicketResponse {
  detectedAt: string;
  /** What the detection time is: a score change into act/attend, a finding's first sighting, the ticket's creation. */
  detectedFrom: DetectionSource;
  acknowledgedAt: string | null;
  fixedAt: string | null;
  verifiedAt: string | null;
  hoursToAcknowledge: number | null;
  hoursToFix: number | null;
  hoursToVerify: number | null;
  ackDueAt: string;
  /** The due date moved by the time risk acceptances paused the SLA. */
  dueAt: string;
  slaPausedHours: number;
  /** null while undecided (not acknowledged, deadline still ahead). */
  acknowledgedWithinSla: boolean | null;
  /** null while undecided (not verified, deadline ahead or resolved in time and waiting for verification). */
  fixedWithinSla: boolean | null;
  reopened: boolean;
  overdue: boolean;
}

export interface ResponseFilter {
  since?: Date;
  until?: Date;
  scope?: ScopeSelector;
  /** Defaults to the current time; fixed in tests and reports. */
  now?: Date;
}

/** A request the metrics cannot answer, naming the field at fault. */
export class ResponseQueryError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ResponseQueryError';
  }
}

const DONE = `('verified', 'resolved', 'closed')`;

/**
 * One row per ticket with its instants and decisions (the columns named in TicketResponse), for the
 * tickets `where` selects (a condition on tickets `t` and their assets `a`). Set-based: each input
 * (findings with their score history, risk acceptances, escalations) is aggregated once per ticket
 * and joined, so the estate costs a few hash joins and one ticket a few index reads (`oneTicket`).
 */
function ticketFacts(sql: Sql, now: Date, where: postgres.PendingQuery<postgres.Row[]>, oneTicket = false) {
  return sql`
    with selected as (
      select t.*, a.business_service from tickets t join assets a on a.id = t.asset_id where true ${where}
    ),
    ticket_findings as (
      select f.id, f.ticket_key, f.first_seen_at from findings f join selected s on s.key = f.ticket_key
    ),
    became_urgent as (${
      // The same minimum two ways: the planner reads the history view's branches by index only per
      // finding, and hashes them whole for a join. One ticket: per finding; the estate: one hash join.
      oneTicket
        ? sql`select f.id as finding_id, (select min(h.at) from score_history h where h.finding_id = f.id and h.tier = any(${ACTION_TIERS as string[]})) as at
              from ticket_findings f`
        : sql`select h.finding_id, min(h.at) as at from score_history h join ticket_findings f on f.id = h.finding_id
              where h.tier = any(${ACTION_TIERS as string[]}) group by h.finding_id`
    }),
    detection as (
      select f.ticket_key, min(coalesce(u.at, f.first_seen_at)) as detected_at,
             (array_agg(case when u.at is null then 'first-seen' else 'became-urgent' end order by coalesce(u.at, f.first_seen_at)))[1] as source
      from ticket_findings f left join became_urgent u on u.finding_id = f.id
      group by f.ticket_key
    ),
    acceptances as (
      -- A renewal keeps the acceptance's start: one pause per start, until its last row ended.
      select ra.ticket_key, ra.accepted_at, max(coalesce(ra.ended_at, 'infinity')) as ended,
             bool_or(ra.ended_at >= ra.expires_at) as ran_out
      from risk_acceptances ra join selected s on s.key = ra.ticket_key
      where ra.accepted_at <= ${now}::timestamptz
      group by ra.ticket_key, ra.accepted_at
    ),
    pauses as (
      select ticket_key, sum(least(ended, ${now}::timestamptz) - accepted_at) as paused, count(*) filter (where ran_out) as ran_out
      from acceptances group by ticket_key
    ),
    cycles as (
      select e.ticket_key, max(e.cycle) as cycle from escalations e join selected s on s.key = e.ticket_key group by e.ticket_key
    ),
    base as (
      select t.key, t.tier, t.owner, t.business_service, t.state, t.ack_due_at, t.created_at,
             coalesce(d.detected_at, t.created_at) as detected_at,
             case when d.detected_at is null then 'ticket-created' else d.source end as detected_from,
             least(coalesce(t.first_acknowledged_at, t.acknowledged_at), t.resolved_at) as acknowledged_at,
             case when t.state = 'verified' then coalesce(t.resolved_at, t.verified_at, t.updated_at) else t.resolved_at end as fixed_at,
             case when t.state = 'verified' then coalesce(t.verified_at, t.updated_at) end as verified_at,
             coalesce(p.paused, interval '0') as paused,
             t.due_at + coalesce(p.paused, interval '0') as due_at,
             -- Each re-opening starts a cycle; those not explained by an expired acceptance were failed verifications.
             t.reopen_count > 0 or coalesce(c.cycle, 0) > coalesce(p.ran_out, 0) as reopened
      from selected t
      left join detection d on d.ticket_key = t.key
      left join pauses p on p.ticket_key = t.key
      left join cycles c on c.ticket_key = t.key
    )
    select b.*,
           extract(epoch from b.acknowledged_at - b.detected_at) / 3600 as hours_to_acknowledge,
           extract(epoch from b.fixed_at - b.detected_at) / 3600 as hours_to_fix,
           extract(epoch from b.verified_at - b.detected_at) / 3600 as hours_to_verify,
           extract(epoch from b.paused) / 3600 as paused_hours,
           case when b.acknowledged_at is not null then b.acknowledged_at <= b.ack_due_at
                when b.ack_due_at < ${now}::timestamptz then false end as ack_in_sla,
           case when b.state = 'verified' then b.fixed_at <= b.due_at
                when b.fixed_at > b.due_at then false
                when b.fixed_at is null and b.due_at < ${now}::timestamptz then false end as fix_in_sla,
           b.state not in ${sql.unsafe(DONE)} as open,
           b.state not in ${sql.unsafe(DONE)} and b.due_at < ${now}::timestamptz as overdue,
           b.state not in ${sql.unsafe(DONE)} and b.acknowledged_at is null and b.ack_due_at < ${now}::timestamptz as unack_overdue,
           b.state in ('resolved', 'closed') as awaiting_verification,
           (b.fixed_at is not null or b.state = 'verified' or b.reopened) as ever_resolved
    from base b`;
}

const GROUP_COLUMN: Record<ResponseGroupBy, string> = { tier: 'tier', owner: 'owner', business_service: 'business_service' };

type MetricsRow = {
  grouped: boolean;
  key: string | null;
  tickets: number;
  ack_n: number; ack_median: number | null; ack_p90: number | null;
  fix_n: number; fix_median: number | null; fix_p90: number | null;
  verify_n: number; verify_median: number | null; verify_p90: number | null;
  ack_due: number; ack_met: number; fix_due: number; fix_met: number;
  open: number; overdue: number; unack_overdue: number; awaiting: number;
  resolved: number; verified: number; reopened: number;
};

const share = (part: number, whole: number) => (whole === 0 ? null : part / whole);
const num = (v: number | string | null) => (v === null ? null : Number(v));

function metricsOf(r: MetricsRow | undefined): ResponseMetrics {
  const n = (k: keyof MetricsRow) => (r ? Number(r[k] ?? 0) : 0);
  const durations = (count: keyof MetricsRow, median: keyof MetricsRow, p90: keyof MetricsRow): Durations => ({
    count: n(count),
    medianHours: r ? num(r[median] as number | null) : null,
    p90Hours: r ? num(r[p90] as number | null) : null,
  });
  return {
    tickets: n('tickets'),
    toAcknowledge: durations('ack_n', 'ack_median', 'ack_p90'),
    toFix: durations('fix_n', 'fix_median', 'fix_p90'),
    toVerify: durations('verify_n', 'verify_median', 'verify_p90'),
    sla: {
      acknowledged: { due: n('ack_due'), met: n('ack_met'), share: share(n('ack_met'), n('ack_due')) },
      fixed: { due: n('fix_due'), met: n('fix_met'), share: share(n('fix_met'), n('fix_due')) },
    },
    open: n('open'),
    overdue: n('overdue'),
    unacknowledgedOverdue: n('unack_overdue'),
    awaitingVerification: n('awaiting'),
    adequacy: { resolved: n('resolved'), verified: n('verified'), reopened: n('reopened'), failedShare: share(n('reopened'), n('resolved')) },
  };
}

function checkFilter(f: ResponseFilter & { groupBy?: string }): void {
  if (f.groupBy !== undefined && !(RESPONSE_GROUPS as readonly string[]).includes(f.groupBy)) {
    throw new ResponseQueryError('groupBy', `must be one of ${RESPONSE_GROUPS.join(', ')} (got ${JSON.stringify(f.groupBy)})`);
  }
  for (const [field, d] of [['since', f.since], ['until', f.until], ['now', f.now]] as const) {
    if (d !== undefined && Number.isNaN(d.getTime())) throw new ResponseQueryError(field, 'is not a valid date-time');
  }
  if (f.since && f.until && f.since >= f.until) throw new ResponseQueryError('until', `must be after since (${f.since.toISOString()})`);
}

/**
 * Response speed, SLA attainment and verification adequacy of the golden tickets detected in the
 * window (all when none), for the whole selection and per group.
 */
export async function responseMetrics(sql: Sql, filter: ResponseFilter & { groupBy?: ResponseGroupBy } = {}): Promise<ResponseReport> {
  checkFilter(filter);
  const now = filter.now ?? new Date();
  const where = sql`${filter.scope ? scopeCondition(sql, filter.scope) : sql``}`;
  const group = filter.groupBy ? sql.unsafe(GROUP_COLUMN[filter.groupBy]) : sql`null::text`;
  const rows = await sql<MetricsRow[]>`
    with facts as (${ticketFacts(sql, now, where)}),
    selected as (
      select *, ${group} as group_key from facts
      where true
        ${filter.since ? sql`and detected_at >= ${filter.since}` : sql``}
        ${filter.until ? sql`and detected_at < ${filter.until}` : sql``}
    )
    select grouping(group_key)::int = 0 as grouped, group_key as key,
           count(*)::int as tickets,
           count(hours_to_acknowledge)::int as ack_n,
           percentile_cont(0.5) within group (order by hours_to_acknowledge) as ack_median,
           percentile_cont(0.9) within group (order by hours_to_acknowledge) as ack_p90,
           count(hours_to_verify)::int as fix_n,
           percentile_cont(0.5) within group (order by case when verified_at is not null then hours_to_fix end) as fix_median,
           percentile_cont(0.9) within group (order by case when verified_at is not null then hours_to_fix end) as fix_p90,
           count(hours_to_verify)::int as verify_n,
           percentile_cont(0.5) within group (order by hours_to_verify) as verify_median,
           percentile_cont(0.9) within group (order by hours_to_verify) as verify_p90,
           count(ack_in_sla)::int as ack_due, count(*) filter (where ack_in_sla)::int as ack_met,
           count(fix_in_sla)::int as fix_due, count(*) filter (where fix_in_sla)::int as fix_met,
           count(*) filter (where open)::int as open,
           count(*) filter (where overdue)::int as overdue,
           count(*) filter (where unack_overdue)::int as unack_overdue,
           count(*) filter (where awaiting_verification)::int as awaiting,
           count(*) filter (where ever_resolved)::int as resolved,
           count(*) filter (where state = 'verified')::int as verified,
           count(*) filter (where reopened)::int as reopened
    from selected
    group by grouping sets ((), (group_key))
    order by grouped, tickets desc, key nulls last`;
  const total = rows.find((r) => !r.grouped);
  return {
    asOf: now.toISOString(),
    groupBy: filter.groupBy ?? null,
    since: filter.since?.toISOString() ?? null,
    until: filter.until?.toISOString() ?? null,
    total: metricsOf(total),
    groups: filter.groupBy ? rows.filter((r) => r.grouped).map((r) => ({ key: r.key, ...metricsOf(r) })) : [],
  };
}

type FactsRow = {
  key: string;
  detected_at: Date; detected_from: DetectionSource;
  acknowledged_at: Date | null; fixed_at: Date | null; verified_at: Date | null;
  hours_to_acknowledge: number | string | null; hours_to_fix: number | string | null; hours_to_verify: number | string | null;
  ack_due_at: Date; due_at: Date; paused_hours: number | string;
  ack_in_sla: boolean | null; fix_in_sla: boolean | null; reopened: boolean; overdue: boolean;
};

const iso = (d: Date | null) => d?.toISOString() ?? null;

function ticketResponseOf(r: FactsRow): TicketResponse {
  return {
    detectedAt: r.detected_at.toISOString(),
    detectedFrom: r.detected_from,
    acknowledgedAt: iso(r.acknowledged_at),
    fixedAt: iso(r.fixed_at),
    verifiedAt: iso(r.verified_at),
    hoursToAcknowledge: num(r.hours_to_acknowledge),
    hoursToFix: num(r.hours_to_fix),
    hoursToVerify: num(r.hours_to_verify),
    ackDueAt: r.ack_due_at.toISOString(),
    dueAt: r.due_at.toISOString(),
    slaPausedHours: Number(r.paused_hours),
    acknowledgedWithinSla: r.ack_in_sla,
    fixedWithinSla: r.fix_in_sla,
    reopened: r.reopened,
    overdue: r.overdue,
  };
}

/** One ticket's response block (undefined: no such ticket). */
export async function ticketResponse(sql: Sql, key: string, now: Date = new Date()): Promise<TicketResponse | undefined> {
  const [row] = (await ticketFacts(sql, now, sql`and t.key = ${key}`, true)) as unknown as FactsRow[];
  return row ? ticketResponseOf(row) : undefined;
}
