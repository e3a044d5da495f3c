import { Context, log } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { snapshotNoise } from '../db/read-models/exposures.js';
import { activePolicy } from '../prioritization/policy-store.js';
import { assetsWithHistory, historyRangeSince } from '../prioritization/scoring/history.js';
import { rescoreChanged } from '../prioritization/scoring/incremental.js';
import { pruneExplanationParts, rescoreFindings } from '../prioritization/scoring/rescore.js';

/** More assets than this travel as an event range (read back a page at a time), not as ids. */
const MAX_EVENT_ASSET_IDS = 5_000;

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
     * Re-scores what changed since the estate was last scored (incremental.ts): nothing when nothing
     * changed, the findings of the CVEs or assets that changed, or everything (then as rescoreAll).
     * The assets whose findings changed tier or due date come back as ids when few; otherwise, and
     * on a retry (an attempt that failed after committing leaves nothing to compare, and its events
     * must still reach mobilization), as the id range of the history entries made since the first
     * attempt, as rescoreAll returns it.
     */
    async rescoreChanged({ reason }: { reason: string }): Promise<{
      mode: 'unchanged' | 'partial' | 'full';
      scored: number;
      changed: number;
      events: number;
      fromEventId: number;
      toEventId: number;
      assetIds?: number[];
      /** With assetIds: when the scoring started (mobilization re-plans only the tickets of findings that moved since). */
      changedSince?: string;
    }> {
      const info = Context.current().info;
      const result = await rescoreChanged(database.sql, await activePolicy(database.sql), { reason });
      // What changed decides what was read: the run's reason for an admin reading the worker log.
      log.info('incremental rescoring', { mode: result.mode, changes: result.changes, scored: result.scored, events: result.events });
      const counts = { mode: result.mode, scored: result.scored, changed: result.changed, events: result.events };
      if (result.mode === 'full') await pruneExplanationParts(database.sql);
      if (info.attempt === 1 && result.mode !== 'full' && (result.eventAssetIds?.length ?? 0) <= MAX_EVENT_ASSET_IDS) {
        return {
          ...counts,
          fromEventId: 1,
          toEventId: 0,
          assetIds: result.eventAssetIds ?? [],
          ...(result.eventsSince ? { changedSince: result.eventsSince.toISOString() } : {}),
        };
      }
      const range = await historyRangeSince(database.sql, new Date(info.scheduledTimestampMs - 60_000));
      return { ...counts, fromEventId: range.fromId, toEventId: range.toId };
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
