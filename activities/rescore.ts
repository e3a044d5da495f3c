import type { Database } from '../db/client.js';
import { snapshotNoise } from '../db/queries/exposures.js';
import { activePolicy } from '../db/queries/policies.js';
import { rescoreFindings } from '../db/queries/scoring.js';

export function createRescoreActivities({ database }: { database: Database }) {
  return {
    /**
     * Re-scores every open finding with the active policy, feeds and context, set-based. Findings
     * whose tier or due date changed get an exposure event; the returned id range lets mobilization
     * read exactly those.
     */
    async rescoreAll({ reason }: { reason: string }): Promise<{ scored: number; changed: number; events: number; fromEventId: number; toEventId: number }> {
      const [before] = await database.sql`select coalesce(max(id), 0)::bigint as id from exposure_events`;
      const result = await rescoreFindings(database.sql, await activePolicy(database.sql), { all: true }, { reason });
      const [after] = await database.sql`select coalesce(max(id), 0)::bigint as id from exposure_events`;
      return { ...result, fromEventId: Number(before!.id) + 1, toEventId: Number(after!.id) };
    },

    /**
     * Assets whose exposures changed in an event range (mobilization re-plans their golden tickets),
     * one page after `afterAssetId` at a time, ascending.
     */
    async assetsWithExposureEvents(input: { fromEventId: number; toEventId: number; afterAssetId: number; limit: number }): Promise<number[]> {
      const rows = await database.sql`
        select distinct asset_id from exposure_events
        where id between ${input.fromEventId} and ${input.toEventId} and asset_id > ${input.afterAssetId}
        order by asset_id limit ${input.limit}`;
      return rows.map((r) => Number(r.asset_id));
    },

    /** Records the noise report of every scope, for the trend. */
    async snapshotNoise(): Promise<{ scopes: number }> {
      return { scopes: await snapshotNoise(database.sql) };
    },
  };
}

export type RescoreActivities = ReturnType<typeof createRescoreActivities>;
