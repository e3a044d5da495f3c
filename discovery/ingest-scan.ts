import type { Database } from '../db/client.js';
import { connectorFor, parseReport, ReportError, type NormalizedFinding, type ParseWarning } from './connectors/index.js';
import { ContextError, contextSourceFor, contextSources, pullServiceNowCmdb, type ServiceNowConnection } from './context/index.js';
import { ingestContext } from './store/context.js';
import { notePorts, recordObservedPorts, type PortsSeen } from './store/exposure.js';
import { ingestFindings } from './store/ingest.js';
import { getScan, markIngested, wasIngested } from './store/scans.js';

// One recorded scan into the inventory: its stored report (or its CMDB pull) parsed and merged in one
// transaction. Bad input throws ReportError or ContextError naming the report as the user knows it.

export class UnknownScanError extends Error {
  constructor(readonly scanId: string) {
    super(`scan ${scanId} does not exist`);
    this.name = 'UnknownScanError';
  }
}

export interface ScanIngest {
  kind: 'report' | 'context';
  counts: Record<string, number>;
}

/** `progress` is called with the count of findings read so far, every few thousand (a heartbeat). */
export async function ingestScan(
  database: Database,
  serviceNow: ServiceNowConnection,
  scanId: string,
  progress: (findings: number) => void = () => {},
): Promise<ScanIngest> {
  const scan = await getScan(database.db, scanId);
  if (!scan) throw new UnknownScanError(scanId);
  const isContext = contextSources.some((s) => s.source === scan.format);
  // An earlier attempt committed, then its completion was lost (a worker or Temporal died just
  // after): what it ingested was recorded in that transaction, so the retry answers the same counts
  // instead of merging again and reporting every finding as already known.
  if (wasIngested(scan)) {
    const counts = { ...scan.counts };
    if (!isContext && scan.vantage === 'internet') Object.assign(counts, await recordPortsAgain(database, scan));
    return { kind: isContext ? 'context' : 'report', counts };
  }
  if (isContext) {
    try {
      // A scan without a file is a pull: read the CMDB table straight from ServiceNow.
      const records = scan.reportPath
        ? (await contextSourceFor(scan.reportPath, scan.reportName, scan.format)).parse(scan.reportPath)
        : pullServiceNowCmdb(serviceNow, scan.target ?? 'cmdb_ci_server');
      return { kind: 'context', counts: { ...(await ingestContext(database.sql, scan, records, (tx, counts) => markIngested(tx, scan.id, { ...counts }))) } };
    } catch (err) {
      if (err instanceof ContextError) throw new ContextError(scan.reportName, err.source, err.where, err.reason);
      throw err;
    }
  }
  try {
    const connector = await connectorFor(scan.reportPath, scan.reportName, scan.format === 'auto' ? undefined : scan.format);
    // An upload with strict=true fails on the first warning; otherwise warnings are kept with the scan.
    const strict = scan.strict;
    const warnings: ParseWarning[] = [];
    const warn = (w: ParseWarning) => {
      if (strict) throw new ReportError(scan.reportName, w.format, w.field, w.reason);
      warnings.push({ ...w, file: scan.reportName });
    };
    const parsed = parseReport(connector, scan.reportPath, scan.reportName, { target: scan.target ?? undefined, warn });
    const findings = counted(parsed, progress);
    // Only a scan from the internet's side says which ports the internet reaches.
    const seen: PortsSeen = { assets: new Map() };
    const counts = await ingestFindings(database.sql, scan, scan.vantage === 'internet' ? notePorts(findings, seen) : findings, (tx, counts) =>
      markIngested(tx, scan.id, { ...counts }, warnings),
    );
    const ports = scan.vantage === 'internet' ? await recordObservedPorts(database.sql, scan, seen) : {};
    return { kind: 'report', counts: { ...counts, ...ports } };
  } catch (err) {
    // Connectors name the stored file; the user knows the report by the name it was uploaded under.
    if (err instanceof ReportError) throw new ReportError(scan.reportName, err.format, err.field, err.reason);
    throw err;
  }
}

/** The ports an internet-side scan saw, read again from its report (recording them is idempotent). */
async function recordPortsAgain(database: Database, scan: NonNullable<Awaited<ReturnType<typeof getScan>>>): Promise<Record<string, number>> {
  const connector = await connectorFor(scan.reportPath, scan.reportName, scan.format === 'auto' ? undefined : scan.format);
  const seen: PortsSeen = { assets: new Map() };
  for await (const _ of notePorts(parseReport(connector, scan.reportPath, scan.reportName, { target: scan.target ?? undefined }), seen));
  return recordObservedPorts(database.sql, scan, seen);
}

async function* counted(items: AsyncIterable<NormalizedFinding>, progress: (n: number) => void): AsyncGenerator<NormalizedFinding> {
  let n = 0;
  for await (const item of items) {
    if (++n % 5000 === 0) progress(n);
    yield item;
  }
}
