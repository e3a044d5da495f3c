import { and, eq } from 'drizzle-orm';
import type { Db } from '../client.js';
import { escalations, tickets } from '../schema.js';

type TicketState = (typeof tickets.$inferSelect)['state'];

export async function setTicketOpened(db: Db, key: string, sysId: string, number: string): Promise<void> {
  await db
    .update(tickets)
    .set({ externalSysId: sysId, externalNumber: number, state: 'new', updatedAt: new Date() })
    .where(and(eq(tickets.key, key)));
}

export async function setTicketState(db: Db, key: string, state: string, at: Date, escalationLevel: number): Promise<void> {
  await db
    .update(tickets)
    .set({
      state: state as TicketState,
      escalationLevel,
      updatedAt: new Date(),
      ...(state === 'in_progress' || state === 'on_hold' ? { acknowledgedAt: at } : {}),
      ...(state === 'resolved' || state === 'closed' ? { resolvedAt: at } : {}),
    })
    .where(eq(tickets.key, key));
}

export type Escalation = typeof escalations.$inferSelect;

/** Records an escalation once; a retry gets the existing row back. */
export async function recordEscalation(
  db: Db,
  e: Pick<Escalation, 'ticketKey' | 'phase' | 'level' | 'notifiedUser' | 'notifiedName' | 'reason'>,
): Promise<Escalation> {
  return db.transaction(async (tx) => {
    await tx.insert(escalations).values(e).onConflictDoNothing();
    await tx.update(tickets).set({ escalationLevel: e.level, updatedAt: new Date() }).where(eq(tickets.key, e.ticketKey));
    const [row] = await tx
      .select()
      .from(escalations)
      .where(and(eq(escalations.ticketKey, e.ticketKey), eq(escalations.phase, e.phase), eq(escalations.level, e.level)));
    return row!;
  });
}

export async function markEscalationNoted(db: Db, id: number): Promise<void> {
  await db.update(escalations).set({ ticketNotedAt: new Date() }).where(eq(escalations.id, id));
}
