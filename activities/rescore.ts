import { Context } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { snapshotNoise } from '../db/read-models/exposures.js';
import { activePolicy } from '../prioritization/policy-store.js';
import { assetsWithHistory, historyRangeSince } from '../prioritization/scoring/history.js';
import { pruneExplanationParts, rescoreFindings } from '../prioritization/scoring/rescore.js';

export function createRescoreActivities({ database }: { database: Database }) {
  return {
    /**
     * Re-scores every open finding with the active policy, feeds and context, set-based. Findings
     * whose tier or due date changed get a score_history entry (their exposure event); the returned
     * id range lets mobilization read exactly those.
     */
    async rescoreAll({ reason }: { reason: string }): Promise<{ scored: number; changed: number; events: number; fromEventId: number; toEventId: number }> {
      const result = await rescoreFindings(database.sql, await activePolicy(database.sql), { all: true }, { reason });
      // What the findings said before this rescoring, and no history entry keeps, goes.
      await pruneExplanationParts(database.sql);
      // The range starts at the first attempt, not this one: a full rescoring commits per share, so
      // an attempt that failed may have left shares committed whose findings now score unchanged;
      // their events must still reach mobilization. Events of other runs since then come along too,
      // which only re-plans their assets once more (a minute of margin covers clock skew).
      const since = new Date(Context.current().info.scheduledTimestampMs - 60_000);
      const range = await historyRangeSince(database.sql, since);
      return { ...result, fromEventId: range.fromId, toEventId: range.toId };
    },

    /**
     * Assets whose exposures changed in an event range (mobilization re-plans their golden tickets),
     * one page after `afterAssetId` at a time, ascending.
     */
    async assetsWithExposureEvents(input: { fromEventId: number; toEventId: number; afterAssetId: number; limit: number }): Promise<number[]> {
      return assetsWithHistory(database.sql, { fromId: input.fromEventId, toId: input.toEventId, afterAssetId: input.afterAssetId, limit: input.limit });
    },

    /** Records the noise report of every scope, for the trend. */
    async snapshotNoise(): Promise<{ scopes: number }> {
      return { scopes: await snapshotNoise(database.sql) };
    },
  };
}

export type RescoreActivities = ReturnType<typeof createRescoreActivities>;
