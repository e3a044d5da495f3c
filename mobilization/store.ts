import { and, eq, isNull, ne, sql as drizzleSql } from 'drizzle-orm';
import type { Db, Sql } from '../db/client.js';
import { escalations, riskAcceptances, tickets } from '../db/schema.js';

type TicketState = (typeof tickets.$inferSelect)['state'];

export async function setTicketOpened(db: Db, key: string, sysId: string, number: string, where?: { itsm: string; url: string }): Promise<void> {
  await db
    .update(tickets)
    .set({ externalSysId: sysId, externalNumber: number, ...(where ? { itsm: where.itsm, externalUrl: where.url } : {}), state: 'new', updatedAt: new Date() })
    .where(and(eq(tickets.key, key)));
}

/** The ITSM reassigned the ticket: the new assignee owns it (and escalations climb their chain). */
export async function setTicketOwner(db: Db, key: string, owner: string): Promise<void> {
  // Someone took it: the ticket leaves the orphan queue.
  await db.update(tickets).set({ owner, orphanReason: null, updatedAt: new Date() }).where(eq(tickets.key, key));
}

export async function setTicketState(
  db: Db,
  key: string,
  state: string,
  at: Date,
  escalationLevel: number,
  deadlines: { ackDueAt?: Date; dueAt?: Date } = {},
): Promise<void> {
  await db
    .update(tickets)
    .set({
      state: state as TicketState,
      escalationLevel,
      // The workflow owns the deadlines once the ticket is open (a risk acceptance moves them).
      ...deadlines,
      updatedAt: new Date(),
      ...(state === 'in_progress' || state === 'on_hold' ? { acknowledgedAt: at, firstAcknowledgedAt: drizzleSql`coalesce(${tickets.firstAcknowledgedAt}, ${at.toISOString()}::timestamptz)` } : {}),
      ...(state === 'resolved' || state === 'closed' ? { resolvedAt: at } : {}),
      ...(state === 'verified' ? { verifiedAt: at } : {}),
      // Back to work after a resolution: the fix did not hold (the SET reads the row as it was).
      ...(state === 'new' || state === 'in_progress'
        ? { reopenCount: drizzleSql`${tickets.reopenCount} + case when ${tickets.state} in ('resolved', 'closed') then 1 else 0 end` }
        : {}),
      // A re-opened ticket (failed verification, expired risk acceptance) is no longer resolved.
      ...(state === 'new' || state === 'in_progress' ? { resolvedAt: null } : {}),
      ...(state === 'new' ? { acknowledgedAt: null } : {}),
    })
    .where(eq(tickets.key, key));
}

export type Escalation = typeof escalations.$inferSelect;

/**
 * Records an escalation once; a retry gets the existing row back. The ticket keeps its history
 * (peak level, count, latest) beside the current level, which acknowledgement resets.
 */
export async function recordEscalation(
  db: Db,
  e: Pick<Escalation, 'ticketKey' | 'phase' | 'level' | 'cycle' | 'notifiedUser' | 'notifiedName' | 'reason'>,
): Promise<Escalation> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx.insert(escalations).values(e).onConflictDoNothing().returning({ createdAt: escalations.createdAt });
    await tx
      .update(tickets)
      .set({
        escalationLevel: e.level,
        // Only a new row counts: a retried activity must not count the same escalation twice.
        ...(inserted
          ? { escalationPeak: drizzleSql`greatest(${tickets.escalationPeak}, ${e.level})`, escalationCount: drizzleSql`${tickets.escalationCount} + 1`, lastEscalatedAt: inserted.createdAt }
          : {}),
        updatedAt: new Date(),
      })
      .where(eq(tickets.key, e.ticketKey));
    const [row] = await tx
      .select()
      .from(escalations)
      .where(
        and(eq(escalations.ticketKey, e.ticketKey), eq(escalations.phase, e.phase), eq(escalations.level, e.level), eq(escalations.cycle, e.cycle)),
      );
    return row!;
  });
}

export async function markEscalationNoted(db: Db, id: number): Promise<void> {
  await db.update(escalations).set({ ticketNotedAt: new Date() }).where(eq(escalations.id, id));
}

/** Records a risk acceptance once (a retried activity finds the existing row). */
export async function recordRiskAcceptance(
  db: Db,
  r: { ticketKey: string; requester: string; approver: string; reason: string; acceptedAt: Date; expiresAt: Date },
): Promise<void> {
  await db.insert(riskAcceptances).values(r).onConflictDoNothing();
}

/** Ends the ticket's current risk acceptance (expired, or the ticket was resolved meanwhile). */
export async function endRiskAcceptance(db: Db, ticketKey: string, at: Date, keepExpiringAt?: Date): Promise<void> {
  await db
    .update(riskAcceptances)
    .set({ endedAt: at })
    .where(
      and(
        eq(riskAcceptances.ticketKey, ticketKey),
        isNull(riskAcceptances.endedAt),
        ...(keepExpiringAt ? [ne(riskAcceptances.expiresAt, keepExpiringAt)] : []),
      ),
    );
}

/** Ticket keys of resolved tickets on the given assets, with their findings still open (for verification). */
export async function ticketsAwaitingVerification(
  sql: Sql,
  assetIds: number[],
): Promise<Array<{ key: string; workflowId: string; openFindings: number }>> {
  if (assetIds.length === 0) return [];
  // A ticket across several hosts is verified when none of its findings is open any more; a scan
  // that still finds one on the hosts it covered re-opens it at once.
  const rows = await sql<{ key: string; workflow_id: string; open_scanned: number; open_all: number }[]>`
    select t.key, t.workflow_id,
           (select count(*)::int from findings f where f.ticket_key = t.key and f.status = 'open'
              and f.asset_id = any(${sql.array(assetIds)}::bigint[])) as open_scanned,
           (select count(*)::int from findings f where f.ticket_key = t.key and f.status = 'open') as open_all
    from tickets t
    where t.state in ('resolved', 'closed')
      and (t.asset_id = any(${sql.array(assetIds)}::bigint[])
           or exists (select 1 from findings f where f.ticket_key = t.key and f.asset_id = any(${sql.array(assetIds)}::bigint[])))`;
  return rows
    .filter((r) => r.open_scanned > 0 || r.open_all === 0)
    .map((r) => ({ key: r.key, workflowId: r.workflow_id, openFindings: r.open_scanned }));
}

/** When a scan was received and which assets it covered: what a verification scan tells resolved tickets. */
export async function scanCoverage(sql: Sql, scanId: string): Promise<{ receivedAt: Date | null; assetIds: number[] }> {
  const [scan] = await sql<{ created_at: Date }[]>`select created_at from scans where id = ${scanId}`;
  const assets = await sql<{ asset_id: number }[]>`select asset_id from scan_assets where scan_id = ${scanId}`;
  return { receivedAt: scan?.created_at ?? null, assetIds: assets.map((a) => Number(a.asset_id)) };
}

/** A ticket of the orphan queue, as the API and the weekly report list it. */
export type OrphanQueueEntry = {
  key: string;
  externalNumber: string | null;
  /** The fallback owner holding it, or null when none is configured. */
  owner: string | null;
  reason: string;
  tier: string;
  findingCount: number;
  assetKey: string;
  assetName: string;
};

/** Tickets in the orphan queue (no owner, or one the ITSM does not know), the most urgent first. */
export async function orphanQueue(sql: Sql): Promise<OrphanQueueEntry[]> {
  const rows = await sql<{ key: string; external_number: string | null; owner: string | null; orphan_reason: string; tier: string; finding_count: number; asset_key: string; name: string }[]>`
    select t.key, t.external_number, t.owner, t.orphan_reason, t.tier, t.finding_count, a.asset_key, a.name
    from tickets t join assets a on a.id = t.asset_id
    where t.orphan_reason is not null and t.state not in ('verified', 'closed')
    order by case t.tier when 'act' then 0 else 1 end, t.due_at, t.key`;
  return rows.map((r) => ({
    key: r.key,
    externalNumber: r.external_number,
    owner: r.owner,
    reason: r.orphan_reason,
    tier: r.tier,
    findingCount: r.finding_count,
    assetKey: r.asset_key,
    assetName: r.name,
  }));
}
