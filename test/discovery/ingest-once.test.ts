import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestScan } from '../../discovery/ingest-scan.js';
import { completeScan, createScan, getScan } from '../../discovery/store/scans.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// A worker can commit an ingest and die (or lose Temporal) before its completion is recorded; the
// activity then runs again. The retry must answer what the first attempt stored, not merge again
// and report every finding as already known ("0 new findings" after a crash).
const report = join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json');
const noServiceNow = { baseUrl: 'http://127.0.0.1:9', user: 'none', password: 'none' };

afterAll(closeTestDatabases);

describe('a retried ingest', () => {
  it('answers the first attempt counts and merges nothing again', async () => {
    const database = await migratedTestDatabase();
    const id = randomUUID();
    await createScan(database.db, {
      id,
      source: 'trivy-json',
      format: 'auto',
      reportName: 'trivy-payments-api.json',
      status: 'running',
      workflowId: `discovery:trivy-json:${id}`,
      reportPath: report,
      reportSha256: 'x',
      reportBytes: statSync(report).size,
    });
    const first = await ingestScan(database, noServiceNow, id);
    expect(first.kind).toBe('report');
    expect(first.counts.newFindings).toBeGreaterThan(0);
    expect(first.counts.newFindings).toBe(first.counts.findings);
    // Recorded in the ingest's own transaction, while the scan still runs.
    expect((await getScan(database.db, id))?.counts).toMatchObject({ findings: first.counts.findings, newFindings: first.counts.newFindings });
    const seen = await database.sql<{ id: number; last_seen_at: Date }[]>`select id, last_seen_at from findings order by id`;

    const retry = await ingestScan(database, noServiceNow, id);
    expect(retry).toEqual(first);
    const after = await database.sql<{ id: number; last_seen_at: Date }[]>`select id, last_seen_at from findings order by id`;
    expect(after).toEqual(seen);

    // Once the scan completed, the same report in a new scan is merged as a rescan: nothing new.
    await completeScan(database.db, id, first.counts);
    const rescanId = randomUUID();
    await createScan(database.db, { ...(await getScan(database.db, id))!, id: rescanId, status: 'running', counts: {}, workflowId: `discovery:trivy-json:${rescanId}` });
    const rescan = await ingestScan(database, noServiceNow, rescanId);
    expect(rescan.counts).toMatchObject({ findings: first.counts.findings, newFindings: 0 });
  });
});
