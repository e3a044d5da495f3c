import { ApplicationFailure } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { HypothesisNotFoundError, recordCampaignResult, runScheduledHypotheses } from '../scoping/hypotheses.js';

// Hunting's activities over scoping/hypotheses.ts: the scheduled run, and a campaign's result before
// and after it ran. Workflows receive counts only.

export function createHuntingActivities({ database }: { database: Database }) {
  return {
    /** Records the result of every hypothesis that has none since the run started. */
    async runScheduledHypotheses(input: { since: string }): Promise<{ hypotheses: number; recorded: number }> {
      return runScheduledHypotheses(database.sql, new Date(input.since));
    },

    /** A campaign's hypothesis result before it ran or after (with what it removed); idempotent per campaign and phase. */
    async recordHypothesisResult(input: { hypothesis: string; campaignId: string; phase: 'before' | 'after' }): Promise<{ matched: number; urgent: number; removed?: number }> {
      try {
        const r = await recordCampaignResult(database.sql, input.hypothesis, input.campaignId, input.phase);
        return { matched: r.matched, urgent: r.urgent, ...(r.counts.removed !== undefined ? { removed: r.counts.removed } : {}) };
      } catch (err) {
        // A deleted hypothesis will not come back on a retry.
        if (err instanceof HypothesisNotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        throw err;
      }
    },
  };
}

export type HuntingActivities = ReturnType<typeof createHuntingActivities>;
