import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { ticketEvents, tickets } from '../db/schema.js';

export async function ticketEventSeen(db: Db, eventId: string): Promise<boolean> {
  const rows = await db.select({ id: ticketEvents.eventId }).from(ticketEvents).where(eq(ticketEvents.eventId, eventId));
  return rows.length > 0;
}

export async function recordTicketEvent(db: Db, e: typeof ticketEvents.$inferInsert): Promise<void> {
  await db.insert(ticketEvents).values(e).onConflictDoNothing();
}

/** The golden ticket an ITSM record belongs to, for webhooks that do not carry our key (Jira's). */
export async function ticketKeyOfExternal(db: Db, itsm: string, externalId: string): Promise<string | undefined> {
  const [row] = await db.select({ key: tickets.key }).from(tickets).where(and(eq(tickets.itsm, itsm), eq(tickets.externalSysId, externalId)));
  return row?.key;
}
