import { pruneAudit } from '../access/audit-trail.js';
import type { Database } from '../db/client.js';

/** CTEM_AUDIT_RETENTION's default: 400 days. */
export const AUDIT_RETENTION_DEFAULT_MS = 400 * 86_400_000;

/** Audit-trail retention (access/audit-trail.ts): prunes beyond CTEM_AUDIT_RETENTION; a retry prunes nothing twice. */
export function createAuditActivities({ database, retentionMs }: { database: Database; retentionMs: number }) {
  return {
    async pruneAuditTrail(): Promise<{ pruned: number }> {
      const { pruned } = await pruneAudit(database.sql, retentionMs);
      return { pruned };
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
