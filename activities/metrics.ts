import type { Database } from '../db/client.js';
import { takeSnapshot, type SnapshotResult } from '../metrics/snapshot.js';

/** The daily metric snapshot (metrics/snapshot.ts): an upsert per (day, scope), so a retry is safe. */
export function createMetricsActivities({ database }: { database: Database }) {
  return {
    async takeMetricsSnapshot({ day }: { day: string }): Promise<SnapshotResult> {
      return takeSnapshot(database.sql, day);
    },
  };
}

export type MetricsActivities = ReturnType<typeof createMetricsActivities>;
