import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Traces and log lines of a real platform (API, Temporal, worker, PostgreSQL) against a real
// OTLP/HTTP receiver on loopback: an upload's request, the workflow it starts, the workflow's run and
// its ingest activity are one trace with the right parents; log lines are JSON with the request id,
// identity and trace id; a configured secret appears in neither; with tracing off nothing is sent.

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: number | string } }>;
  service: string;
}

interface Receiver {
  url: string;
  requests: number;
  bodies: string[];
  spans: OtlpSpan[];
  close(): Promise<void>;
}

/** A minimal OTLP/HTTP collector: accepts POST /v1/traces (JSON, as the exporter sends it). */
async function otlpReceiver(): Promise<Receiver> {
  const receiver: Omit<Receiver, 'url' | 'close'> = { requests: 0, bodies: [], spans: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests++;
      const body = Buffer.concat(chunks).toString('utf8');
      receiver.bodies.push(body);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(400).end();
        return;
      }
      const payload = JSON.parse(body) as {
        resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: Omit<OtlpSpan, 'service'>[] }> }>;
      };
      for (const rs of payload.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans) for (const span of ss.spans) receiver.spans.push({ ...span, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }) as Receiver;
}

/** Every line this process writes to stdout and stderr while the tests run. */
function captureOutput(): { lines(): string[]; restore(): void } {
  let text = '';
  const originals = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  const tap = (original: typeof originals.out) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
  process.stdout.write = tap(originals.out);
  process.stderr.write = tap(originals.err);
  return {
    lines: () => text.split('\n').filter(Boolean),
    restore() {
      process.stdout.write = originals.out;
      process.stderr.write = originals.err;
    },
  };
}

const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
};

const report = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));

async function untilScanDone(platform: TestPlatform, scanId: string): Promise<string> {
  return eventually(
    async () => {
      const scan = await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return scan.status === 'running' ? undefined : scan.status;
    },
    { timeoutMs: 90_000, what: `scan ${scanId} to finish` },
  );
}

describe('tracing on', () => {
  let receiver: Receiver;
  let platform: TestPlatform;
  let output: ReturnType<typeof captureOutput>;
  const secret = `webhook-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    output = captureOutput();
    platform = await startTestPlatform({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      SERVICENOW_WEBHOOK_SECRET: secret,
      CTEM_LOG_FORMAT: 'json',
      CTEM_LOG_LEVEL: 'INFO',
      // The worker's INFO would print the webpack build of the bundle made at start.
      CTEM_WORKER_LOG_LEVEL: 'WARN',
    });
  }, 240_000);

  afterAll(async () => {
    await platform?.stop();
    output?.restore();
    await receiver?.close();
  });

  it('follows an upload from the API request to the ingest activity as one trace', { timeout: 180_000 }, async () => {
    expect(platform.tracing).toBeDefined();
    // The caller's own trace: the API continues it (W3C traceparent).
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const res = await platform.api('/api/v1/scans?filename=trivy-payments-api.json&owner=alex.romero', {
      method: 'POST',
      body: report,
      headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` },
    });
    expect(res.status).toBe(202);
    const requestId = res.headers.get('x-request-id');
    const { scanId, workflowId } = (await res.json()) as { scanId: string; workflowId: string };
    expect(await untilScanDone(platform, scanId)).toBe('completed');

    const find = (name: string) => receiver.spans.find((s) => s.traceId === callerTrace && s.name === name);
    const spans = await eventually(
      async () => {
        await platform.tracing!.spanProcessor.forceFlush();
        const found = {
          request: find('POST /api/v1/scans'),
          start: find('StartWorkflow:discoveryWorkflow'),
          run: find('RunWorkflow:discoveryWorkflow'),
          schedule: find('StartActivity:ingestReport'),
          ingest: find('RunActivity:ingestReport'),
        };
        return Object.values(found).every(Boolean) ? (found as Record<keyof typeof found, OtlpSpan>) : undefined;
      },
      { timeoutMs: 30_000, what: 'the upload trace' },
    );
    // One trace, each span the child of the one before it; the request's parent is the caller's span.
    expect(spans.request.parentSpanId).toBe(callerSpan);
    expect(spans.start.parentSpanId).toBe(spans.request.spanId);
    expect(spans.run.parentSpanId).toBe(spans.start.spanId);
    expect(spans.schedule.parentSpanId).toBe(spans.run.spanId);
    expect(spans.ingest.parentSpanId).toBe(spans.schedule.spanId);
    expect(spans.request.kind).toBe(2); // SERVER
    expect(attr(spans.request, 'http.route')).toBe('/api/v1/scans');
    expect(attr(spans.request, 'http.request.method')).toBe('POST');
    expect(attr(spans.request, 'http.response.status_code')).toBe(202);
    expect(attr(spans.request, 'ctem.request_id')).toBe(requestId);
    expect(attr(spans.request, 'enduser.id')).toBe('bootstrap');
    expect(attr(spans.ingest, 'temporalWorkflowId')).toBe(workflowId);
    // Probes and scrapes make no spans.
    await platform.api('/healthz');
    await platform.tracing!.spanProcessor.forceFlush();
    expect(receiver.spans.some((s) => attr(s, 'url.path') === '/healthz')).toBe(false);
    // One process runs both roles here: its default service name.
    expect(new Set(Object.values(spans).map((s) => s.service))).toEqual(new Set(['ctem']));

    // The request's log line: JSON, with its request id, the caller's identity and the trace id.
    const lines = output.lines().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ level: 'INFO', message: 'request', method: 'POST', route: '/api/v1/scans', status: 202, identity: 'bootstrap', traceId: callerTrace });
  });

  it('names the trace in error answers and in the worker line of a failed scan', { timeout: 180_000 }, async () => {
    const missing = await platform.api('/api/v1/scans/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    const { error } = (await missing.json()) as { error: { traceId?: string } };
    expect(error.traceId).toMatch(/^[0-9a-f]{32}$/);

    const bad = await platform.api('/api/v1/scans?filename=broken.json&format=trivy-json', { method: 'POST', body: '{"SchemaVersion": 2, "Results": [' });
    expect(bad.status).toBe(202);
    const { scanId, workflowId } = (await bad.json()) as { scanId: string; workflowId: string };
    expect(await untilScanDone(platform, scanId)).toBe('failed');
    await platform.tracing!.spanProcessor.forceFlush();
    const upload = await eventually(async () => receiver.spans.find((s) => s.name === 'RunActivity:ingestReport' && attr(s, 'temporalWorkflowId') === workflowId), {
      what: 'the failed ingest span',
    });
    const failed = output
      .lines()
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.workflowId === workflowId && l.level === 'WARN');
    // A failed scan is one line at WARN, the workflow's own: it names the scan, its workflow and
    // run, the reason and the trace (the SDK's lines about the same failure are at DEBUG).
    expect(failed, JSON.stringify(failed)).toHaveLength(1);
    expect(failed[0]).toMatchObject({ message: 'scan failed', scanId, traceId: upload.traceId });
    expect(failed[0]!.runId ?? failed[0]!.workflowRunId).toEqual(expect.any(String));
    expect(String(failed[0]!.reason)).toContain('not valid JSON');
  });

  it('keeps a configured secret out of log lines and exported spans', { timeout: 60_000 }, async () => {
    // A secret where a careless caller might put one: in a path the API logs and traces.
    const res = await platform.api(`/api/v1/scans/${secret}`);
    expect(res.status).toBe(400);
    const requestId = res.headers.get('x-request-id');
    await platform.tracing!.spanProcessor.forceFlush();
    const span = await eventually(async () => receiver.spans.find((s) => attr(s, 'ctem.request_id') === requestId), { what: 'the span of the request' });
    expect(attr(span, 'url.path')).toBe('/api/v1/scans/[redacted]');
    const line = output.lines().find((l) => l.includes(`"requestId":"${requestId}"`));
    expect(JSON.parse(line!)).toMatchObject({ path: '/api/v1/scans/[redacted]', status: 400 });
    expect(receiver.bodies.length).toBeGreaterThan(0);
    for (const text of [output.lines().join('\n'), ...receiver.bodies]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(platform.env.CTEM_API_TOKEN);
    }
  });
});

describe('tracing configuration', () => {
  it('is off without an OTLP endpoint, and takes the OTel variables as the spec reads them', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing).toEqual({ url: 'http://collector:4318/v1/traces', headers: {} });
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/otlp/traces', OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=k%3D1,tenant=t', OTEL_SERVICE_NAME: 'ctem-eu' }).tracing,
    ).toEqual({ url: 'https://b/otlp/traces', headers: { 'x-api-key': 'k=1', tenant: 't' }, serviceName: 'ctem-eu' });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  it('refuses an endpoint that is not a URL or headers that are not key=value, naming the variable', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT: not an http\(s\) URL of an OTLP\/HTTP receiver: collector:4318/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_HEADERS: 'no-equals-sign' })).toThrow(/OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs/);
    expect(() => loadConfig({ CTEM_LOG_LEVEL: 'loud' })).toThrow(/CTEM_LOG_LEVEL/);
  });
});

describe('tracing off', () => {
  it('creates no exporter and sends nothing when the SDK is disabled', { timeout: 180_000 }, async () => {
    const receiver = await otlpReceiver();
    const platform = await startTestPlatform({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: 'true' });
    try {
      expect(platform.tracing).toBeUndefined();
      const res = await platform.api('/api/v1/scans?filename=trivy-payments-api.json&owner=alex.romero', { method: 'POST', body: report });
      const { scanId } = (await res.json()) as { scanId: string };
      expect(await untilScanDone(platform, scanId)).toBe('completed');
      const missing = await platform.api('/api/v1/scans/00000000-0000-4000-8000-000000000000');
      expect(((await missing.json()) as { error: Record<string, unknown> }).error).not.toHaveProperty('traceId');
    } finally {
      await platform.stop();
    }
    // Stopping flushes whatever a provider would have buffered: still nothing arrived.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.requests).toBe(0);
    await receiver.close();
  });
});
