import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../platform/ports.js';
import { eventually, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Prometheus scrapes /metrics on the API's port: this process's request and activity timings, what
// its worker ingested, counts read from the store, and the Temporal SDK's own metrics.
const fixture = join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json');

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('operator metrics', () => {
  let platform: TestPlatform;
  const metricsToken = `metrics-${Date.now()}`;
  beforeAll(async () => {
    platform = await startTestPlatform({ CTEM_METRICS_TOKEN: metricsToken });
  });
  afterAll(async () => platform?.stop());

  const scrape = (token?: string) => fetch(`${platform.apiUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('refuses a scrape without a token or with a wrong one, and the metrics token reads nothing else', async () => {
    expect((await scrape()).status).toBe(401);
    const wrong = await scrape('nope');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
    const api = await fetch(`${platform.apiUrl}/api/v1/exposures`, { headers: { authorization: `Bearer ${metricsToken}` } });
    expect(api.status).toBe(401);
  });

  it('counts an ingested report, its findings, the request and the activity, and reads the store', async () => {
    const before = await (await scrape(metricsToken)).text();
    const findingsBefore = sample(before, 'ctem_findings_ingested_total') ?? 0;

    const upload = await platform.api('/api/v1/scans?filename=trivy-payments-api.json&owner=payments', { method: 'POST', body: readFileSync(fixture) });
    expect(upload.status).toBe(202);
    const { scanId } = (await upload.json()) as { scanId: string };
    const scan = await eventually(async () => {
      const s = (await (await platform.api(`/api/v1/scans/${scanId}`)).json()) as { status: string; counts: { findings: number } };
      return s.status === 'running' ? undefined : s;
    }, { what: 'the scan' });
    expect(scan.status).toBe('completed');

    const response = await scrape(platform.env.CTEM_API_TOKEN);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(sample(text, 'ctem_findings_ingested_total')! - findingsBefore).toBe(scan.counts.findings);
    expect(sample(text, 'ctem_reports_ingested_total', { kind: 'report' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'ctem_activity_duration_seconds_count', { activity: 'ingestReport', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    // Request durations carry the route pattern, never the scan id of the path.
    expect(sample(text, 'ctem_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/scans', status: '202' })).toBe(1);
    expect(sample(text, 'ctem_http_request_duration_seconds_count', { method: 'GET', route: '/api/v1/scans/:id', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(scanId);
    expect(sample(text, 'ctem_scans', { status: 'completed' })).toBe(1);
    expect(sample(text, 'ctem_store_up')).toBe(1);
    expect(sample(text, 'ctem_process_resident_memory_bytes')).toBeGreaterThan(0);
    // The SDK's own figures, from its exporter in this process: the workflow task that ran the scan,
    // on the bulk queue's worker.
    const queue = `${platform.env.CTEM_TASK_QUEUE!}-bulk`;
    expect(sample(text, 'temporal_workflow_task_execution_latency_count', { task_queue: queue })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'temporal_activity_execution_latency_count', { task_queue: queue, activity_type: 'ingestReport' })).toBeGreaterThanOrEqual(1);
  });

  it('counts a path no route answers as unmatched, one series whatever the path', async () => {
    await platform.api('/api/v1/no-such-thing/1');
    await platform.api('/api/v1/no-such-thing/2');
    const text = await (await scrape(metricsToken)).text();
    expect(sample(text, 'ctem_http_request_duration_seconds_count', { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(2);
    expect(text).not.toContain('no-such-thing');
  });
});

describe('operator metrics of a worker alone', () => {
  it('serves /metrics on CTEM_WORKER_METRICS_PORT with the same token rule', async () => {
    const port = await freePort();
    const worker = await startTestPlatform({ CTEM_WORKER_METRICS_PORT: String(port), CTEM_METRICS_TOKEN: 'worker-metrics' }, { api: false, worker: true });
    try {
      expect(worker.apiUrl).toBeUndefined();
      const url = `http://127.0.0.1:${port}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      const response = await fetch(url, { headers: { authorization: 'Bearer worker-metrics' } });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(sample(text, 'ctem_store_up')).toBe(1);
      expect(text).toContain('# TYPE ctem_activity_duration_seconds histogram');
      expect((await fetch(`http://127.0.0.1:${port}/api/v1/exposures`, { headers: { authorization: 'Bearer worker-metrics' } })).status).toBe(404);
    } finally {
      await worker.stop();
    }
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
