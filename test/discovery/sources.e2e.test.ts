import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceScheduleId } from '../../platform/schedules.js';
import { imageReport } from '../support/reports.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Pulled discovery on the real Temporal server: sources with Temporal Schedules, deploy events that
// rescan one image, the ServiceNow CMDB as a source, context uploads, the orphan report and the
// scan-coverage KPI.

let platform: TestPlatform;
let scanner: Server;
let scannerUrl: string;
const requested: string[] = [];
const authorizations: Array<string | undefined> = [];

const put = (path: string, body: unknown) =>
  platform.api(path, { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const post = (path: string, body?: unknown) =>
  platform.api(path, { method: 'POST', ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });

async function openFindings(asset: string): Promise<number> {
  return (await json<{ estimate: { count: number } }>(platform.api(`/api/v1/exposures?status=open&asset=${encodeURIComponent(asset)}`))).estimate.count;
}

beforeAll(async () => {
  scanner = createServer((req, res) => {
    requested.push(req.url ?? '');
    authorizations.push(req.headers.authorization);
    const match = /^\/reports\/(.+)\.json$/.exec(req.url ?? '');
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(imageReport(decodeURIComponent(match[1]!), { artifactName: true }));
  });
  await new Promise<void>((r) => scanner.listen(0, '127.0.0.1', () => r()));
  scannerUrl = `http://127.0.0.1:${(scanner.address() as AddressInfo).port}`;
  platform = await startTestPlatform({ CTEM_SCAN_SLA_CRITICAL: '1h' });
});

afterAll(async () => {
  await platform?.stop();
  scanner?.close();
});

describe('discovery sources', () => {
  it('creates a daily Temporal Schedule per source by default, and removes it with the source', async () => {
    const source = await json<{ schedule: string; nextRuns: string[] }>(put('/api/v1/sources/nightly-registry', { kind: 'report-url', config: { url: `${scannerUrl}/reports/shop%2Fnightly:1.json` } }));
    expect(source.schedule).toBe('1d');
    expect(source.nextRuns.length).toBeGreaterThan(0);
    const described = await platform.temporalClient.schedule.getHandle(sourceScheduleId('nightly-registry')).describe();
    expect(described.spec.intervals?.[0]?.every).toBe(86_400_000);
    const listed = await json<{ items: Array<{ name: string }> }>(platform.api('/api/v1/sources'));
    expect(listed.items.map((s) => s.name)).toContain('nightly-registry');
    expect((await platform.api('/api/v1/sources/nightly-registry', { method: 'DELETE' })).status).toBe(204);
    await expect(platform.temporalClient.schedule.getHandle(sourceScheduleId('nightly-registry')).describe()).rejects.toThrow();
  });

  it('runs a source on its schedule', async () => {
    await json(put('/api/v1/sources/fast-registry', { kind: 'report-url', schedule: '2s', config: { url: `${scannerUrl}/reports/shop%2Fscheduled:1.json`, owner: 'alex.romero' } }));
    await eventually(async () => ((await openFindings('shop/scheduled:1')) === 6 ? true : undefined), { what: 'a scheduled scan', timeoutMs: 60_000 });
    await json(put('/api/v1/sources/fast-registry', { kind: 'report-url', schedule: null, config: { url: `${scannerUrl}/reports/shop%2Fscheduled:1.json` } }));
    await expect(platform.temporalClient.schedule.getHandle(sourceScheduleId('fast-registry')).describe()).rejects.toThrow();
  });

  it('fails a run whose report is gone at once, naming the source and the URL without its query', async () => {
    await json(put('/api/v1/sources/gone-registry', { kind: 'report-url', schedule: null, config: { url: `${scannerUrl}/gone.json?token=secret` } }));
    const run = await json<{ workflowId: string }>(post('/api/v1/sources/gone-registry/runs'));
    const failure = await platform.temporalClient.workflow.getHandle(run.workflowId).result().catch((err: unknown) => err);
    const messages: string[] = [];
    for (let e = failure as Error | undefined; e; e = e.cause as Error | undefined) messages.push(e.message);
    expect(messages).toContain(`gone-registry: GET ${scannerUrl}/gone.json answered 404`);
    expect(messages.join(' ')).not.toContain('secret');
  });

  it('rejects a source without a valid kind or URL', async () => {
    expect((await put('/api/v1/sources/bad', { kind: 'ftp', config: {} })).status).toBe(400);
    expect((await put('/api/v1/sources/bad', { kind: 'report-url', config: { url: 'not a url' } })).status).toBe(400);
    for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'http://169.254.169.254/latest/meta-data/', 'https://user:pw@scanner.example/r.json']) {
      const res = await put('/api/v1/sources/bad', { kind: 'report-url', config: { url } });
      expect(res.status, url).toBe(400);
      expect(JSON.stringify(await res.json()), url).toMatch(/"url"/);
    }
  });

  it('never shows header credentials back, and keeps them when the placeholder is sent back', async () => {
    const config = { url: `${scannerUrl}/reports/{target}.json`, headers: { authorization: 'Bearer registry-secret' } };
    const created = await json<{ config: { headers: Record<string, string> } }>(put('/api/v1/sources/with-secret', { kind: 'report-url', config, schedule: null }));
    expect(created.config.headers).toEqual({ authorization: '(hidden)' });
    const listed = await json<{ items: Array<{ name: string; config: unknown }> }>(platform.api('/api/v1/sources'));
    expect(JSON.stringify(listed)).not.toContain('registry-secret');
    // A client that reads the source and writes it back keeps the stored secret.
    await json(put('/api/v1/sources/with-secret', { kind: 'report-url', config: { ...config, headers: { authorization: '(hidden)' } }, schedule: null }));
    requested.length = 0;
    const run = await json<{ workflowId: string }>(post('/api/v1/sources/with-secret/runs', { target: 'shop/secret:1' }));
    await eventually(async () => (requested.includes('/reports/shop%2Fsecret%3A1.json') ? true : undefined), { what: `the pull of ${run.workflowId}` });
    expect(authorizations.at(-1)).toBe('Bearer registry-secret');
    const unknown = await put('/api/v1/sources/no-secret-yet', { kind: 'report-url', config: { ...config, headers: { 'x-key': '(hidden)' } }, schedule: null });
    expect(unknown.status).toBe(400);
    await platform.api('/api/v1/sources/with-secret', { method: 'DELETE' });
  });
});

describe('deploy events', () => {
  it('record where the image runs and rescan exactly that image, once per event', async () => {
    await json(put('/api/v1/sources/registry', { kind: 'report-url', schedule: null, config: { url: `${scannerUrl}/reports/{target}.json`, owner: 'alex.romero' } }));
    const event = { id: 'deploy-4711', image: 'shop/web:2.0.1', service: 'Web shop', environment: 'production', hosts: ['web-01.example.com'] };
    const first = await json<{ rescans: Array<{ source: string; status: string; workflowId: string }> }>(post('/api/v1/events/deploy', event));
    expect(first.rescans).toEqual([{ source: 'registry', status: 'started', workflowId: 'discovery-source:registry:deploy:deploy-4711' }]);
    await eventually(async () => ((await openFindings('shop/web:2.0.1')) === 6 ? true : undefined), { what: 'the targeted rescan' });
    expect(requested).toContain(`/reports/${encodeURIComponent('shop/web:2.0.1')}.json`);

    const again = await json<{ rescans: Array<{ status: string }> }>(post('/api/v1/events/deploy', event));
    expect(again.rescans.map((r) => r.status)).toEqual(['duplicate']);

    const relations = await platform.database.sql`
      select r.relation, t.kind, t.name from asset_relations r join assets a on a.id = r.asset_id join assets t on t.id = r.target_id
      where a.name = 'shop/web:2.0.1' order by r.relation`;
    expect(relations.map((r) => `${r.relation} ${r.kind} ${r.name}`)).toEqual(['part_of business_service Web shop', 'runs_on host web-01.example.com']);
  });

  it('rejects an event without an image', async () => {
    expect((await post('/api/v1/events/deploy', { id: 'x' })).status).toBe(400);
  });
});

describe('context and reports', () => {
  it('builds the orphan report through its workflow and serves the latest one', async () => {
    await json(put('/api/v1/sources/unowned', { kind: 'report-url', schedule: null, config: { url: `${scannerUrl}/reports/shop%2Forphan:1.json` } }));
    const run = await json<{ workflowId: string }>(post('/api/v1/sources/unowned/runs'));
    await platform.temporalClient.workflow.getHandle(run.workflowId).result();
    const built = await json<{ id: number; orphanAssets: number; assets: Array<{ name: string; actionFindings: number }> }>(post('/api/v1/reports/orphan-assets'));
    const orphan = built.assets.find((a) => a.name === 'shop/orphan:1');
    expect(orphan?.actionFindings).toBe(3);
    const latest = await json<{ id: number }>(platform.api('/api/v1/reports/orphan-assets'));
    expect(latest.id).toBe(built.id);
  });

  it('lists closed exposures on request, with why they closed', async () => {
    const image = 'shop/closing:1';
    const upload = async (report: string) => {
      const { scanId } = await json<{ scanId: string }>(post(`/api/v1/scans?source=closing-ci&complete=true&filename=closing.json`, JSON.parse(report)));
      await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), { what: `scan ${scanId}` });
    };
    await upload(imageReport(image, { artifactName: true }));
    await upload(imageReport(image, { artifactName: true, withoutPackages: ['org.apache.logging.log4j:log4j-core'] }));
    const query = (q: string) => json<{ estimate: { count: number }; items: Array<{ issueId: string; status: string; closedReason: string | null; closedAt: string | null }> }>(
      platform.api(`/api/v1/exposures?asset=${encodeURIComponent(image)}&${q}`),
    );
    expect((await query('status=open')).estimate.count).toBe(5);
    const closed = await query('status=closed');
    expect(closed.items).toEqual([expect.objectContaining({ issueId: 'CVE-2021-44228', status: 'closed', closedReason: 'no longer reported by a complete scan of closing-ci' })]);
    expect(closed.items[0]!.closedAt).not.toBeNull();
    expect((await query('status=all')).estimate.count).toBe(6);
    expect((await query('status=all&issueId=CVE-2021-44228')).items.map((f) => f.status)).toEqual(['closed']);
    expect((await platform.api(`/api/v1/exposures?status=gone`)).status).toBe(400);
  });

  it('reports scan coverage per criticality', async () => {
    const coverage = await json<{ byCriticality: Array<{ criticality: string; assets: number; scannedWithinSla: number }> }>(platform.api('/api/v1/metrics/scan-coverage'));
    const unknown = coverage.byCriticality.find((r) => r.criticality === 'unknown');
    expect(unknown!.assets).toBeGreaterThan(0);
    expect(unknown!.scannedWithinSla).toBeGreaterThan(0);
  });
});

