import { ApplicationFailure } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { ReportError } from '../discovery/connectors/index.js';
import { orphanQueue } from '../mobilization/store.js';
import { orphanReportNotice, prepareSourceScan, UnknownSourceError } from '../discovery/sources.js';
import { buildOrphanReport } from '../discovery/store/sources.js';
import { RefusedUrlError } from '../discovery/streams/outbound.js';
import { HttpStatusError, TooLargeError } from '../discovery/streams/to-file.js';
import type { Notifier } from '../mobilization/notifier.js';

// The sourceDiscoveryWorkflow's and the orphan report's activities over discovery/sources.ts.

export interface SourceDeps {
  database: Database;
  reportsDir: string;
  /** Largest report a pull may download (default: that of uploads). */
  maxReportBytes?: number;
  /** Told about each orphan report (the Slack bot posts it to security operations); optional. */
  notifier?: Notifier;
}

/** A source that is gone or refuses us stays so on a retry; a 5xx or a network error may not. */
const GONE = [401, 403, 404];

export function createSourceActivities({ database, reportsDir, maxReportBytes, notifier }: SourceDeps) {
  return {
    /**
     * Turns one run of a pulled source into a scan: downloads a `report-url` report to disk, or
     * records a CMDB pull (read during ingest). Returns the scan id the discovery workflow takes.
     */
    async prepareSourceScan(input: { source: string; target?: string; runId: string }): Promise<{ scanId: string; workflowId: string }> {
      try {
        return await prepareSourceScan(database, input, { reportsDir, ...(maxReportBytes ? { maxBytes: maxReportBytes } : {}) });
      } catch (err) {
        if (err instanceof UnknownSourceError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        if (err instanceof HttpStatusError && GONE.includes(err.status)) throw ApplicationFailure.nonRetryable(err.message, 'SourceUnavailable');
        if (err instanceof TooLargeError) throw ApplicationFailure.nonRetryable(err.message, 'ReportTooLarge');
        // A URL the platform will never fetch does not become fetchable on a retry.
        if (err instanceof RefusedUrlError) throw ApplicationFailure.nonRetryable(err.message, 'SourceRefused');
        if (err instanceof ReportError) throw ApplicationFailure.nonRetryable(err.message, 'ReportError');
        throw err;
      }
    },

    /** Stores this week's orphan-asset report and returns its size. */
    async buildOrphanReport(): Promise<{ reportId: number; orphanAssets: number; actionFindings: number }> {
      const report = await buildOrphanReport(database.sql, await orphanQueue(database.sql));
      return { reportId: report.id, orphanAssets: report.orphanAssets, actionFindings: report.actionFindings };
    },

    /** Tells the notifier about a stored orphan report; once per report (the notifier deduplicates by id). */
    async notifyOrphanReport({ reportId }: { reportId: number }): Promise<{ notified: boolean }> {
      if (!notifier) return { notified: false };
      const notice = await orphanReportNotice(database, reportId);
      if (!notice) throw ApplicationFailure.nonRetryable(`orphan report ${reportId} does not exist`, 'NotFound');
      await notifier.orphanReport(notice);
      return { notified: true };
    },
  };
}

export type SourceActivities = ReturnType<typeof createSourceActivities>;
