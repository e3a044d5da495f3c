import { eq } from 'drizzle-orm';
import type postgres from 'postgres';
import type { ParseWarning } from '../connectors/common/warnings.js';
import type { Db } from '../../db/client.js';
import { scans } from '../../db/schema.js';

export type Scan = typeof scans.$inferSelect;
export type NewScan = typeof scans.$inferInsert;

export async function createScan(db: Db, scan: NewScan): Promise<void> {
  await db.insert(scans).values(scan).onConflictDoNothing();
}

export async function getScan(db: Db, id: string): Promise<Scan | undefined> {
  const [scan] = await db.select().from(scans).where(eq(scans.id, id));
  return scan;
}

export async function completeScan(db: Db, id: string, counts: Record<string, number>): Promise<void> {
  await db.update(scans).set({ status: 'completed', counts, completedAt: new Date(), error: null }).where(eq(scans.id, id));
}

export async function failScan(db: Db, id: string, error: string): Promise<void> {
  await db.update(scans).set({ status: 'failed', error, completedAt: new Date() }).where(eq(scans.id, id));
}

/**
 * What a scan's ingest stored and the warnings its report gave, written in the ingest's own
 * transaction: a running scan with counts was ingested, so a retried activity does not merge again.
 */
export async function markIngested(tx: postgres.TransactionSql, id: string, counts: Record<string, number>, warnings: readonly ParseWarning[] = []): Promise<void> {
  await tx`update scans set counts = ${tx.json(counts)}, warnings = ${tx.json([...warnings] as never)} where id = ${id}`;
}

/** Whether a running scan's report was already merged (see markIngested). */
export const wasIngested = (scan: Pick<Scan, 'status' | 'counts'>): boolean => scan.status === 'running' && Object.keys(scan.counts).length > 0;
