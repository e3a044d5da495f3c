import type { Sql } from '../db/client.js';

// Requests for a risk acceptance on a golden ticket. A ticket has at most one pending request, and a
// request is decided once: the transition out of `pending` is one conditional UPDATE, so two
// approvers clicking at once cannot both decide it.

export interface ExceptionRequest {
  id: number;
  ticketKey: string;
  requester: string;
  reason: string;
  expiresAt: string;
  status: 'pending' | 'approved' | 'rejected';
  decidedBy: string | null;
  decidedAt: string | null;
  channel: string | null;
  messageTs: string | null;
}

function requestRow(r: Record<string, unknown>): ExceptionRequest {
  return {
    id: Number(r.id),
    ticketKey: r.ticket_key as string,
    requester: r.requester as string,
    reason: r.reason as string,
    expiresAt: (r.expires_at as Date).toISOString(),
    status: r.status as ExceptionRequest['status'],
    decidedBy: r.decided_by as string | null,
    decidedAt: (r.decided_at as Date | null)?.toISOString() ?? null,
    channel: r.channel as string | null,
    messageTs: r.message_ts as string | null,
  };
}

/** A new pending request, or the one already pending for that ticket (a second submission does nothing). */
export async function createExceptionRequest(
  sql: Sql,
  r: { ticketKey: string; requester: string; reason: string; expiresAt: string },
): Promise<{ created: boolean; request: ExceptionRequest }> {
  return sql.begin(async (tx) => {
    // Serialises requests for one ticket, so two submissions at once cannot both find none pending.
    await tx`select pg_advisory_xact_lock(hashtext(${`exception-request:${r.ticketKey}`}))`;
    const [pending] = await tx`select * from exception_requests where ticket_key = ${r.ticketKey} and status = 'pending' order by id limit 1`;
    if (pending) return { created: false, request: requestRow(pending) };
    const [row] = await tx`
      insert into exception_requests (ticket_key, requester, reason, expires_at)
      values (${r.ticketKey}, ${r.requester}, ${r.reason}, ${r.expiresAt}) returning *`;
    return { created: true, request: requestRow(row!) };
  }) as Promise<{ created: boolean; request: ExceptionRequest }>;
}

export async function getExceptionRequest(sql: Sql, id: number): Promise<ExceptionRequest | undefined> {
  const [row] = await sql`select * from exception_requests where id = ${id}`;
  return row ? requestRow(row) : undefined;
}

export async function setExceptionRequestMessage(sql: Sql, id: number, channel: string, messageTs: string): Promise<void> {
  await sql`update exception_requests set channel = ${channel}, message_ts = ${messageTs} where id = ${id}`;
}

/** Decides a pending request; undefined when it was already decided (by someone else, or by a second click). */
export async function decideExceptionRequest(sql: Sql, id: number, status: 'approved' | 'rejected', decidedBy: string): Promise<ExceptionRequest | undefined> {
  const [row] = await sql`
    update exception_requests set status = ${status}, decided_by = ${decidedBy}, decided_at = now()
    where id = ${id} and status = 'pending' returning *`;
  return row ? requestRow(row) : undefined;
}
