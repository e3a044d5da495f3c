import { eq } from 'drizzle-orm';
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

/** The parse warnings of a scan's report (replaced, so a retried ingest repeats nothing). */
export async function recordScanWarnings(db: Db, id: string, warnings: readonly ParseWarning[]): Promise<void> {
  await db.update(scans).set({ warnings: [...warnings] }).where(eq(scans.id, id));
}
