import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { connectorFor, ReportError } from '../discovery/connectors/index.js';
import type { Database } from '../db/client.js';
import { ContextError, contextSourceFor, contextSources, pullServiceNowCmdb, type ServiceNowConnection } from '../discovery/context/index.js';
import { ingestContext } from '../discovery/store/context.js';
import { ingestFindings } from '../discovery/store/ingest.js';
import { notePorts, recordObservedPorts, type PortsSeen } from '../discovery/store/exposure.js';
import { completeScan, failScan, getScan } from '../discovery/store/scans.js';

export interface DiscoveryDeps {
  database: Database;
  /** The ServiceNow instance CMDB pulls read from. */
  serviceNow: ServiceNowConnection;
}

export function createDiscoveryActivities({ database, serviceNow }: DiscoveryDeps) {
  return {
    /** Parses the stored report or context document and merges it, in one transaction. */
    async ingestReport({ scanId }: { scanId: string }): Promise<{ kind: 'report' | 'context'; counts: Record<string, number> }> {
      const scan = await getScan(database.db, scanId);
      if (!scan) throw ApplicationFailure.nonRetryable(`scan ${scanId} does not exist`, 'NotFound');
      if (contextSources.some((s) => s.source === scan.format)) {
        try {
          // A scan without a file is a pull: read the CMDB table straight from ServiceNow.
          const records = scan.reportPath
            ? (await contextSourceFor(scan.reportPath, scan.reportName, scan.format)).parse(scan.reportPath)
            : pullServiceNowCmdb(serviceNow, scan.target ?? 'cmdb_ci_server');
          return { kind: 'context', counts: { ...(await ingestContext(database.sql, scan, records)) } };
        } catch (err) {
          if (err instanceof ContextError) {
            throw ApplicationFailure.nonRetryable(new ContextError(scan.reportName, err.source, err.where, err.reason).message, 'ContextError');
          }
          throw err;
        }
      }
      try {
        const connector = await connectorFor(scan.reportPath, scan.reportName, scan.format === 'auto' ? undefined : scan.format);
        const findings = withHeartbeat(connector.parse(scan.reportPath, { target: scan.target ?? undefined }));
        // Only a scan from the internet's side says which ports the internet reaches.
        const seen: PortsSeen = { assets: new Map() };
        const counts = await ingestFindings(database.sql, scan, scan.vantage === 'internet' ? notePorts(findings, seen) : findings);
        const ports = scan.vantage === 'internet' ? await recordObservedPorts(database.sql, scan, seen) : {};
        return { kind: 'report', counts: { ...counts, ...ports } };
      } catch (err) {
        // Bad input will not get better with retries: fail the scan at once, naming file and field.
        // Connectors name the stored file; the user knows the report by the name it was uploaded under.
        if (err instanceof ReportError) {
          const named = new ReportError(scan.reportName, err.format, err.field, err.reason);
          throw ApplicationFailure.nonRetryable(named.message, 'ReportError');
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

/** Large reports take a while: heartbeat every few thousand findings so a dead worker is noticed. */
async function* withHeartbeat<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
  let n = 0;
  for await (const item of items) {
    if (++n % 5000 === 0) heartbeat(n);
    yield item;
  }
}

export type DiscoveryActivities = ReturnType<typeof createDiscoveryActivities>;
