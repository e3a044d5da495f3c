import type postgres from 'postgres';
import { likeLiteral, type Sql } from '../client.js';
import type { Action } from '../../mobilization/actions.js';
import type { ItsmName } from '../../mobilization/itsm/index.js';
import { countRows, decodeCursor, encodeCursor, type KeysetPage } from './keyset.js';

// List views read PostgreSQL (the live state of one workflow is read with a query instead).

/**
 * When a finding was last seen: its own last_seen_at (written when a scan changed it or confirmed it
 * in a partial report), or the last complete scan of its asset by a source that still reports it,
 * whichever is later (a complete rescan does not write the findings it confirms; see source_coverage).
 */
export const findingLastSeen = (sql: Sql) => sql`
  greatest(f.last_seen_at, (select max(sc.last_complete_at) from finding_sources fs
                            join source_coverage sc on sc.asset_id = f.asset_id and sc.source = fs.source
                            where fs.finding_id = f.id and fs.present))`;

export interface TicketFilter {
  state?: string;
  owner?: string;
  action?: string;
  /** true: only tickets in the orphan queue; false: only owned ones. */
  orphaned?: boolean;
  /** true: tickets ever escalated (whatever their current level); false: never escalated. */
  escalated?: boolean;
  /** Tickets whose highest escalation level reached at least this. */
  minPeak?: number;
  /** true: past the due date and not resolved, closed or verified. */
  overdue?: boolean;
  limit: number;
  /** The cursor of the previous page (its `next`). */
  after?: string;
  /** @deprecated rows skipped after the cursor; kept for clients written before cursors. */
  offset?: number;
  /** Row-level access: only tickets these people may see (access/roles.ts ticketReach). */
  reach?: OwnerReach;
}

/** Tickets owned by one of `names` (ITSM user name or e-mail, any case); with `reports`, also those of owners whose tickets escalated to one of `names`. */
export interface OwnerReach {
  names: string[];
  reports: boolean;
}

// No manager chain is stored locally (it lives in the ITSM): a manager's reports are the owners
// whose tickets the escalation ladder has notified that manager of.
const ownerWithin = (sql: Sql, r: OwnerReach) => {
  const names = r.names.map((n) => n.toLowerCase());
  return sql`(lower(t.owner) = any(${names})
    ${r.reports ? sql`or t.owner in (select t2.owner from escalations e join tickets t2 on t2.key = e.ticket_key where lower(e.notified_user) = any(${names}))` : sql``})`;
};

/** Whether the ticket is within reach (false also when it does not exist). */
export async function ticketWithin(sql: Sql, key: string, reach: OwnerReach): Promise<boolean> {
  const [row] = await sql`select 1 from tickets t where t.key = ${key} and ${ownerWithin(sql, reach)}`;
  return !!row;
}

const TICKET_CURSOR = ['timestamp', 'text'] as const;
const DONE_STATES = ['resolved', 'closed', 'verified'];

/** `from ... where ...` of the ticket list: the filters only, shared by the page and its count. */
function ticketFrom(sql: Sql, f: TicketFilter) {
  return sql`
    from tickets t
    where true
      ${f.state ? sql`and t.state = ${f.state}` : sql``}
      ${f.owner ? sql`and t.owner = ${f.owner}` : sql``}
      ${f.action ? sql`and t.action = ${f.action}` : sql``}
      ${f.reach ? sql`and ${ownerWithin(sql, f.reach)}` : sql``}
      ${f.orphaned === undefined ? sql`` : f.orphaned ? sql`and t.orphan_reason is not null` : sql`and t.orphan_reason is null`}
      ${f.escalated === undefined ? sql`` : f.escalated ? sql`and t.escalation_count > 0` : sql`and t.escalation_count = 0`}
      ${f.minPeak === undefined ? sql`` : sql`and t.escalation_peak >= ${f.minPeak}`}
      ${f.overdue === undefined ? sql`` : f.overdue ? sql`and t.due_at < now() and t.state <> all(${DONE_STATES})` : sql`and not (t.due_at < now() and t.state <> all(${DONE_STATES}))`}`;
}

function ticketRow(r: Record<string, unknown>) {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    key: r.key as string,
    workflowId: r.workflow_id as string,
    externalNumber: r.external_number as string | null,
    externalSysId: r.external_sys_id as string | null,
    itsm: r.itsm as ItsmName,
    externalUrl: r.external_url as string | null,
    state: r.state as string,
    owner: r.owner as string | null,
    tier: r.tier as string,
    asset: { key: r.asset_key as string, name: r.asset_name as string },
    fix: { component: r.component as string, fixedVersion: r.fixed_version as string },
    action: r.action as Action,
    orphanReason: r.orphan_reason as string | null,
    dueAt: iso(r.due_at)!,
    ackDueAt: iso(r.ack_due_at)!,
    escalationLevel: r.escalation_level as number,
    escalationPeak: r.escalation_peak as number,
    escalationCount: r.escalation_count as number,
    lastEscalatedAt: iso(r.last_escalated_at),
    findingCount: r.finding_count as number,
    acknowledgedAt: iso(r.acknowledged_at),
    resolvedAt: iso(r.resolved_at),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

/** A page of golden tickets by due date (then key), after the cursor `f.after`, with a capped count of all that match. */
export async function listTickets(sql: Sql, f: TicketFilter): Promise<KeysetPage<ReturnType<typeof ticketRow>>> {
  const after = f.after ? decodeCursor(f.after, TICKET_CURSOR) : undefined;
  const rows = await sql`
    with page as materialized (
      select t.key, t.due_at
      ${ticketFrom(sql, f)}
      ${after ? sql`and (t.due_at, t.key) > (${after[0]!}::text::timestamptz, ${after[1]!}::text)` : sql``}
      order by t.due_at, t.key
      limit ${f.limit + 1} offset ${f.offset ?? 0}
    )
    select t.*, a.asset_key, a.name as asset_name, p.due_at::text as due_key
    from page p join tickets t on t.key = p.key join assets a on a.id = t.asset_id
    order by p.due_at, p.key`;
  const more = rows.length > f.limit;
  const last = more ? rows[f.limit - 1] : undefined;
  return {
    items: rows.slice(0, f.limit).map(ticketRow),
    next: last ? encodeCursor([last.due_key as string, last.key as string]) : null,
    estimate: await countRows(sql, () => ticketFrom(sql, f)),
  };
}

export async function getTicket(sql: Sql, key: string) {
  const [row] = await sql`
    select t.*, a.asset_key, a.name as asset_name from tickets t join assets a on a.id = t.asset_id where t.key = ${key}`;
  if (!row) return undefined;
  const escalations = await sql`
    select phase, level, notified_user, notified_name, reason, created_at from escalations where ticket_key = ${key} order by created_at, level`;
  const acceptances = await sql`
    select requester, approver, reason, accepted_at, expires_at, ended_at from risk_acceptances where ticket_key = ${key} order by accepted_at`;
  return {
    ...ticketRow(row),
    riskAcceptances: acceptances.map((r) => ({
      requester: r.requester as string,
      approver: r.approver as string,
      reason: r.reason as string,
      acceptedAt: (r.accepted_at as Date).toISOString(),
      expiresAt: (r.expires_at as Date).toISOString(),
      endedAt: (r.ended_at as Date | null)?.toISOString() ?? null,
    })),
    escalations: escalations.map((e) => ({
      phase: e.phase as string,
      level: e.level as number,
      notifiedUser: e.notified_user as string | null,
      notifiedName: e.notified_name as string | null,
      reason: e.reason as string,
      at: (e.created_at as Date).toISOString(),
    })),
  };
}

export interface AssetFilter {
  q?: string;
  owner?: string;
  orphaned?: boolean;
  kind?: string;
  limit: number;
  /** The cursor of the previous page (its `next`). */
  after?: string;
  /** @deprecated rows skipped after the cursor; kept for clients written before cursors. */
  offset?: number;
}

const ASSET_CURSOR = ['text', 'id'] as const;

function assetFrom(sql: Sql, f: AssetFilter) {
  return sql`
    from assets a
    where a.merged_into is null
      ${f.q ? sql`and (a.name ilike ${`%${likeLiteral(f.q)}%`} or a.asset_key ilike ${`%${likeLiteral(f.q)}%`} or a.digest = ${f.q})` : sql``}
      ${f.owner ? sql`and a.owner = ${f.owner}` : sql``}
      ${f.orphaned === true ? sql`and a.owner is null` : f.orphaned === false ? sql`and a.owner is not null` : sql``}
      ${f.kind ? sql`and a.kind = ${f.kind}` : sql``}`;
}

/** An inventory row as answered: the asset, its context and its open findings (all, and act + attend). */
function assetOf(r: postgres.Row) {
  return {
    id: Number(r.id),
    key: r.asset_key as string,
    kind: r.kind as string,
    name: r.name as string,
    digest: r.digest as string | null,
    owner: r.owner as string | null,
    businessService: r.business_service as string | null,
    criticality: r.criticality as string | null,
    annualRevenue: r.annual_revenue as number | null,
    internetFacing: r.internet_facing as boolean | null,
    openFindings: r.open_findings as number,
    actionFindings: r.action_findings as number,
    firstSeenAt: (r.first_seen_at as Date).toISOString(),
    lastSeenAt: (r.last_seen_at as Date).toISOString(),
  };
}

/** One asset by id, merged or not (a merged asset names its survivor), with its identifiers; undefined when unknown. */
export async function getAsset(sql: Sql, id: number) {
  const [r] = await sql`
    select a.*,
      (select count(*) from findings x where x.asset_id = a.id and x.status = 'open')::int as open_findings,
      (select count(*) from findings x where x.asset_id = a.id and x.status = 'open' and x.tier in ('act', 'attend'))::int as action_findings,
      (select coalesce(jsonb_agg(jsonb_build_object('kind', i.kind, 'value', i.value, 'source', i.source) order by i.kind, i.value), '[]')
       from asset_identifiers i where i.asset_id = a.id) as identifiers
    from assets a where a.id = ${id}`;
  if (!r) return undefined;
  return {
    ...assetOf(r),
    identifiers: r.identifiers as Array<{ kind: string; value: string; source: string }>,
    mergedInto: r.merged_into === null ? null : Number(r.merged_into),
  };
}

/** The asset inventory by name, with open-finding counts per tier (counted for the page's assets only). */
export async function listAssets(sql: Sql, f: AssetFilter) {
  const after = f.after ? decodeCursor(f.after, ASSET_CURSOR) : undefined;
  const rows = await sql`
    with page as materialized (
      select a.id, a.name
      ${assetFrom(sql, f)}
      ${after ? sql`and (a.name, a.id) > (${after[0]!}::text, ${after[1]!}::text::bigint)` : sql``}
      order by a.name, a.id
      limit ${f.limit + 1} offset ${f.offset ?? 0}
    )
    select a.*,
      (select count(*) from findings x where x.asset_id = a.id and x.status = 'open')::int as open_findings,
      (select count(*) from findings x where x.asset_id = a.id and x.status = 'open' and x.tier in ('act', 'attend'))::int as action_findings
    from page p join assets a on a.id = p.id
    order by p.name, p.id`;
  const more = rows.length > f.limit;
  const last = more ? rows[f.limit - 1] : undefined;
  return {
    next: last ? encodeCursor([last.name as string, String(last.id)]) : null,
    estimate: await countRows(sql, () => assetFrom(sql, f)),
    items: rows.slice(0, f.limit).map(assetOf),
  };
}

/** Owners and what they own; assets without one are counted under `owner: null`. */
export async function listOwners(sql: Sql) {
  const rows = await sql`
    select a.owner, count(distinct a.id)::int as assets,
           count(f.id) filter (where f.status = 'open')::int as open_findings,
           count(f.id) filter (where f.status = 'open' and f.tier in ('act', 'attend'))::int as action_findings
    from assets a left join findings f on f.asset_id = a.id
    where a.merged_into is null
    group by a.owner order by a.owner nulls first`;
  return rows.map((r) => ({ owner: r.owner as string | null, assets: r.assets as number, openFindings: r.open_findings as number, actionFindings: r.action_findings as number }));
}
