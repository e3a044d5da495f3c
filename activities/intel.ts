import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { RefusedUrlError } from '../discovery/streams/outbound.js';
import { HttpStatusError, TooLargeError } from '../discovery/streams/to-file.js';
import { FeedError, type FeedKind, type FeedMaxAge } from '../prioritization/feeds/parse.js';
import { fetchFeed, startRescoreAfterFeedChange, type IntelFetchResult, type RescoreStart } from '../prioritization/feeds/import.js';

// The intelFeedWorkflow's activities: the feed service (prioritization/feeds/import.ts) with its
// errors sorted into those a retry may cure and those it will not.

// The workflow and older imports name these types and functions here.
export type { IntelFetchResult, RescoreStart } from '../prioritization/feeds/import.js';

export interface IntelSettings {
  /** Where to fetch each feed; unset: that feed is not fetched. */
  urls: Partial<Record<FeedKind, string>>;
  maxAgeMs: FeedMaxAge;
}

/** A feed that is gone, refused or malformed stays so on a retry; a 5xx or a network error may not. */
const GONE = [401, 403, 404, 410];

export function createIntelActivities({
  database,
  temporal,
  reportsDir,
  intel,
}: {
  database: Database;
  temporal: { client: Client; taskQueue: string };
  reportsDir: string;
  intel: IntelSettings;
}) {
  return {
    /** Downloads the feed from its configured URL and imports it (stage, check, activate or reject). */
    async fetchIntelFeed({ kind }: { kind: FeedKind }): Promise<IntelFetchResult> {
      const url = intel.urls[kind];
      if (!url) return { kind, outcome: 'disabled' };
      try {
        return await fetchFeed(database, kind, url, { dir: reportsDir, maxAgeMs: intel.maxAgeMs, activatedSince: Context.current().info.scheduledTimestampMs });
      } catch (err) {
        if (err instanceof FeedError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidFeed');
        if (err instanceof HttpStatusError && GONE.includes(err.status)) throw ApplicationFailure.nonRetryable(err.message, 'FeedUnavailable');
        if (err instanceof TooLargeError) throw ApplicationFailure.nonRetryable(err.message, 'FeedTooLarge');
        // A URL the platform will never fetch does not become fetchable on a retry.
        if (err instanceof RefusedUrlError) throw ApplicationFailure.nonRetryable(err.message, 'FeedRefused');
        throw err;
      }
    },

    /** Starts the re-score of open findings for a newly active feed version. */
    async startFeedRescore({ kind, version }: { kind: FeedKind; version: string }): Promise<RescoreStart> {
      return startRescoreAfterFeedChange(temporal.client, temporal.taskQueue, kind, version);
    },
  };
}

export type IntelActivities = ReturnType<typeof createIntelActivities>;
