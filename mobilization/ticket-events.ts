import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { ticketEvents } from '../db/schema.js';

export async function ticketEventSeen(db: Db, eventId: string): Promise<boolean> {
  const rows = await db.select({ id: ticketEvents.eventId }).from(ticketEvents).where(eq(ticketEvents.eventId, eventId));
  return rows.length > 0;
}

export async function recordTicketEvent(db: Db, e: typeof ticketEvents.$inferInsert): Promise<void> {
  await db.insert(ticketEvents).values(e).onConflictDoNothing();
}
