import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { ReportError } from '../discovery/connectors/index.js';
import { ContextError, type ServiceNowConnection } from '../discovery/context/index.js';
import { ingestScan, UnknownScanError, type ScanIngest } from '../discovery/ingest-scan.js';
import { completeScan, failScan } from '../discovery/store/scans.js';

// The discoveryWorkflow's activities over discovery/ingest-scan.ts.

export interface DiscoveryDeps {
  database: Database;
  /** The ServiceNow instance CMDB pulls read from. */
  serviceNow: ServiceNowConnection;
}

export function createDiscoveryActivities({ database, serviceNow }: DiscoveryDeps) {
  return {
    /** Parses the stored report or context document and merges it, in one transaction. */
    async ingestReport({ scanId }: { scanId: string }): Promise<ScanIngest> {
      try {
        // Large reports take a while: the heartbeat lets a dead worker be noticed.
        return await ingestScan(database, serviceNow, scanId, (n) => heartbeat(n));
      } catch (err) {
        if (err instanceof UnknownScanError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        // Bad input will not get better with retries: fail the scan at once, naming file and field.
        if (err instanceof ReportError) throw ApplicationFailure.nonRetryable(err.message, 'ReportError');
        if (err instanceof ContextError) throw ApplicationFailure.nonRetryable(err.message, 'ContextError');
        // PostgreSQL's class 22 (data exception: an invalid byte sequence, a number out of range) is the
        // report's content, the same on every retry; an outage (connection errors) is retried.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('22')) {
          throw ApplicationFailure.nonRetryable(`the report holds a value PostgreSQL refuses (SQLSTATE ${code}): ${(err as Error).message}`, 'InvalidData');
        }
        throw err;
      }
    },
    async completeScan({ scanId, counts }: { scanId: string; counts: Record<string, number> }): Promise<void> {
      await completeScan(database.db, scanId, counts);
    },
    async failScan({ scanId, error }: { scanId: string; error: string }): Promise<void> {
      await failScan(database.db, scanId, error);
    },
  };
}

export type DiscoveryActivities = ReturnType<typeof createDiscoveryActivities>;
