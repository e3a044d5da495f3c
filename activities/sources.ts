import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { connectorFor, ReportError } from '../discovery/connectors/index.js';
import type { Database } from '../db/client.js';
import { createScan } from '../discovery/store/scans.js';
import { buildOrphanReport, getSource } from '../discovery/store/sources.js';
import type { Notifier } from '../mobilization/notifier.js';

export interface SourceDeps {
  database: Database;
  reportsDir: string;
  /** Told about each orphan report (the Slack bot posts it to security operations); optional. */
  notifier?: Notifier;
}

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

export function createSourceActivities({ database, reportsDir, notifier }: SourceDeps) {
  return {
    /**
     * Turns one run of a pulled source into a scan: downloads a `report-url` report to disk, or
     * records a CMDB pull (read during ingest). Returns the scan id the discovery workflow takes.
     */
    async prepareSourceScan(input: { source: string; target?: string; runId: string }): Promise<{ scanId: string; workflowId: string }> {
      const source = await getSource(database.db, input.source);
      if (!source) throw ApplicationFailure.nonRetryable(`discovery source ${input.source} does not exist`, 'NotFound');
      // The scan id derives from the run, so a retried activity records the same scan.
      const scanId = uuidFrom(`${input.runId}:${input.source}:${input.target ?? ''}`);
      const workflowId = `discovery:${source.name}:${scanId}`;
      if (source.kind === 'servicenow-cmdb') {
        const config = source.config as ServiceNowCmdbConfig;
        await createScan(database.db, {
          id: scanId, source: source.name, target: config.table ?? 'cmdb_ci_server', format: 'servicenow-cmdb', reportName: `ServiceNow ${config.table ?? 'cmdb_ci_server'}`,
          status: 'running', workflowId, reportPath: '', reportSha256: '', reportBytes: 0, owner: null, complete: null,
        });
        return { scanId, workflowId };
      }
      const config = source.config as unknown as ReportUrlConfig;
      const url = config.url.replace('{target}', encodeURIComponent(input.target ?? ''));
      await mkdir(reportsDir, { recursive: true });
      const file = join(reportsDir, `${scanId}.upload`);
      const res = await fetch(url, { headers: config.headers ?? {} });
      if (res.status === 404 || res.status === 401 || res.status === 403) {
        throw ApplicationFailure.nonRetryable(`${source.name}: GET ${redact(url)} answered ${res.status}`, 'SourceUnavailable');
      }
      if (!res.ok || !res.body) throw new Error(`${source.name}: GET ${redact(url)} answered ${res.status}`);
      const hash = createHash('sha256');
      let bytes = 0;
      await pipeline(
        Readable.fromWeb(res.body as never),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            bytes += chunk.length;
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(file),
      );
      let format: string;
      const reportName = `${source.name} report`;
      try {
        format = (await connectorFor(file, reportName, config.format)).format;
      } catch (err) {
        await rm(file, { force: true });
        if (err instanceof ReportError) throw ApplicationFailure.nonRetryable(err.message, 'ReportError');
        throw err;
      }
      await createScan(database.db, {
        id: scanId, source: source.name, target: input.target ?? null, format, reportName, status: 'running', workflowId,
        reportPath: file, reportSha256: hash.digest('hex'), reportBytes: bytes, owner: config.owner ?? null, complete: config.complete ?? null, vantage: config.vantage ?? null,
      });
      return { scanId, workflowId };
    },

    /** Stores this week's orphan-asset report and returns its size. */
    async buildOrphanReport(): Promise<{ reportId: number; orphanAssets: number; actionFindings: number }> {
      const report = await buildOrphanReport(database.sql);
      return { reportId: report.id, orphanAssets: report.orphanAssets, actionFindings: report.actionFindings };
    },

    /** Tells the notifier about a stored orphan report; once per report (the notifier deduplicates by id). */
    async notifyOrphanReport({ reportId }: { reportId: number }): Promise<{ notified: boolean }> {
      if (!notifier) return { notified: false };
      const [row] = await database.sql`select body from reports where id = ${reportId} and kind = 'orphan-assets'`;
      if (!row) throw ApplicationFailure.nonRetryable(`orphan report ${reportId} does not exist`, 'NotFound');
      const body = row.body as { generatedAt: string; orphanAssets: number; actionFindings: number; assets: Array<{ key: string; name: string; openFindings: number }> };
      await notifier.orphanReport({
        id: `orphan-report:${reportId}`,
        generatedAt: body.generatedAt,
        orphanedAssets: body.orphanAssets,
        openFindings: body.assets.reduce((n, a) => n + a.openFindings, 0),
        sample: body.assets.slice(0, 10).map((a) => ({ assetKey: a.key, name: a.name, openFindings: a.openFindings })),
      });
      return { notified: true };
    },
  };
}

function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const redact = (url: string) => url.replace(/\/\/[^@/]+@/, '//***@');

export type SourceActivities = ReturnType<typeof createSourceActivities>;
