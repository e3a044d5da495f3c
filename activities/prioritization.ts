import type { Database } from '../db/client.js';
import { activePolicy } from '../prioritization/policy-store.js';
import { scoreScanFindings } from '../prioritization/scoring/rescore.js';
import type { Policy } from '../prioritization/policy.js';

/**
 * `policy` fixes the policy (tests); without it every run reads the active policy from the
 * database, so activating a new version takes effect at the next scan without a restart.
 */
export function createPrioritizationActivities({ database, policy }: { database: Database; policy?: Policy }) {
  return {
    /** Scores (set-based) every open finding on the assets a scan touched. */
    async scoreScan({ scanId }: { scanId: string }): Promise<Record<string, number>> {
      const { scored, changed, events } = await scoreScanFindings(database.sql, policy ?? (await activePolicy(database.sql)), scanId);
      return { scored, rescored: changed, exposureEvents: events };
    },
  };
}

export type PrioritizationActivities = ReturnType<typeof createPrioritizationActivities>;
