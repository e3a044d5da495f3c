import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Database } from '../db/client.js';
import type { OrphanReportNotice } from '../mobilization/notifier.js';
import { connectorFor } from './connectors/index.js';
import { createScan } from './store/scans.js';
import { getReport, getSource } from './store/sources.js';
import { downloadToFile, fileIn } from './streams/to-file.js';

// Pulled sources: one run of a source becomes a scan the discovery workflow ingests, whether the
// run was scheduled, asked for through the API, started by a deploy event or by a campaign.

/** Config of a `report-url` source: where a scanner (or a registry's scan API) publishes its report. */
export interface ReportUrlConfig {
  /** May contain `{target}`, replaced (URL-encoded) for targeted rescans after a deploy. */
  url: string;
  format?: string;
  headers?: Record<string, string>;
  complete?: boolean;
  owner?: string;
  /** `internet`: an external network scan, whose open ports are evidence of internet exposure. */
  vantage?: 'internet' | 'internal';
}

/** Config of a `servicenow-cmdb` source: which CI table to read from the configured instance. */
export interface ServiceNowCmdbConfig {
  table?: string;
}

/** The source named by a run does not exist (any more). */
export class UnknownSourceError extends Error {
  constructor(readonly source: string) {
    super(`discovery source ${source} does not exist`);
    this.name = 'UnknownSourceError';
  }
}

/** Reports pulled from a source are held to the same size as uploads by default (CTEM_MAX_UPLOAD_MB's default). */
const DEFAULT_MAX_REPORT_BYTES = 512 * 1024 * 1024;

/**
 * Turns one run of a pulled source into a scan: downloads a `report-url` report to disk and names
 * its format, or records a CMDB pull (read during ingest). The scan id derives from the run, so a
 * retry records the same scan and overwrites the same file. Throws UnknownSourceError,
 * HttpStatusError, TooLargeError and ReportError (a report no connector reads; nothing is kept).
 */
export async function prepareSourceScan(
  database: Database,
  input: { source: string; target?: string; runId: string },
  { reportsDir, maxBytes = DEFAULT_MAX_REPORT_BYTES }: { reportsDir: string; maxBytes?: number },
): Promise<{ scanId: string; workflowId: string }> {
  const source = await getSource(database.db, input.source);
  if (!source) throw new UnknownSourceError(input.source);
  const scanId = uuidFrom(`${input.runId}:${input.source}:${input.target ?? ''}`);
  const workflowId = `discovery:${source.name}:${scanId}`;
  if (source.kind === 'servicenow-cmdb') {
    const table = (source.config as ServiceNowCmdbConfig).table ?? 'cmdb_ci_server';
    await createScan(database.db, {
      id: scanId, source: source.name, target: table, format: 'servicenow-cmdb', reportName: `ServiceNow ${table}`,
      status: 'running', workflowId, reportPath: '', reportSha256: '', reportBytes: 0, owner: null, complete: null,
    });
    return { scanId, workflowId };
  }
  const config = source.config as unknown as ReportUrlConfig;
  const url = config.url.replace('{target}', encodeURIComponent(input.target ?? ''));
  const file = await fileIn(reportsDir, `${scanId}.upload`);
  const saved = await withSourceName(source.name, () => downloadToFile(url, file, { maxBytes, headers: config.headers ?? {} }));
  const reportName = `${source.name} report`;
  let format: string;
  try {
    format = (await connectorFor(file, reportName, config.format)).format;
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  await createScan(database.db, {
    id: scanId, source: source.name, target: input.target ?? null, format, reportName, status: 'running', workflowId,
    reportPath: file, reportSha256: saved.sha256, reportBytes: saved.bytes, owner: config.owner ?? null, complete: config.complete ?? null, vantage: config.vantage ?? null,
  });
  return { scanId, workflowId };
}

/** Errors of a pull say which source they come from: `registry: GET https://host/path answered 404`. */
async function withSourceName<T>(source: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof Error) err.message = `${source}: ${err.message}`;
    throw err;
  }
}

/** What the notifier is told about a stored orphan report (the first ten assets as a sample). */
export async function orphanReportNotice(database: Database, reportId: number): Promise<OrphanReportNotice | undefined> {
  const report = await getReport(database.db, reportId, 'orphan-assets');
  if (!report) return undefined;
  const body = report.body as {
    generatedAt: string;
    orphanAssets: number;
    assets: Array<{ key: string; name: string; openFindings: number }>;
    // Reports stored before the orphan queue was listed have none.
    orphanTickets?: Array<{ key: string; externalNumber: string | null; assetName: string; reason: string; owner: string | null }>;
  };
  const tickets = body.orphanTickets ?? [];
  return {
    id: `orphan-report:${reportId}`,
    generatedAt: body.generatedAt,
    orphanedAssets: body.orphanAssets,
    openFindings: body.assets.reduce((n, a) => n + a.openFindings, 0),
    sample: body.assets.slice(0, 10).map((a) => ({ assetKey: a.key, name: a.name, openFindings: a.openFindings })),
    orphanTickets: tickets.length,
    ticketSample: tickets.slice(0, 10).map((t) => ({ ticket: t.externalNumber ?? t.key, assetName: t.assetName, reason: t.reason, owner: t.owner })),
  };
}

function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
