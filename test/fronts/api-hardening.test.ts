import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { createApp } from '../../api/app.js';
import { connectDatabase } from '../../db/client.js';
import { signWebhookBody } from '../../mobilization/itsm/servicenow/webhook-signature.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Small hardening of the running API: a NUL byte in a filter is the caller's mistake (400), not a
// PostgreSQL error (500); a search is text, not a LIKE pattern; responses carry security headers;
// and with SERVICENOW_WEBHOOK_SECRET set, the embedded simulator signs with that secret, so its
// webhooks are accepted (they were refused, and acknowledgements waited for the reconciliation).

let platform: TestPlatform;
const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));

beforeAll(async () => {
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV, SERVICENOW_WEBHOOK_SECRET: 'a-configured-webhook-secret', CTEM_TICKET_RECONCILE_INTERVAL: '0s' });
  const res = await platform.api('/api/v1/scans?owner=alex.romero&target=shop/hardening:1&filename=trivy.json', { method: 'POST', body: fixture });
  expect(res.status).toBe(202);
});

afterAll(async () => {
  await platform?.stop();
});

describe('the API under careless or hostile input', () => {
  it('answers a NUL byte in a filter with 400 naming the parameter', async () => {
    for (const path of ['/api/v1/exposures?issueId=CVE%00', '/api/v1/assets?q=a%00b', '/api/v1/tickets?owner=%00']) {
      const res = await platform.api(path);
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.message).toMatch(/^query parameter (issueId|q|owner) contains a NUL byte$/);
    }
  });

  it('searches for the text as written: % and _ match themselves', async () => {
    const found = await eventually(async () => {
      const r = await json<{ items: Array<{ name: string }> }>(platform.api('/api/v1/assets?q=hardening'));
      return r.items.length ? r.items : undefined;
    }, { what: 'the scanned asset' });
    expect(found.map((a) => a.name)).toEqual(['shop/hardening:1']);
    for (const q of ['%', '_', 'shop_hardening']) {
      const r = await json<{ items: unknown[] }>(platform.api(`/api/v1/assets?q=${encodeURIComponent(q)}`));
      expect(r.items, q).toEqual([]);
    }
  });

  it('sends security headers', async () => {
    const res = await platform.api('/api/v1/tickets');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
  });
});

describe('ServiceNow webhooks with a configured secret', () => {
  it('the embedded simulator signs with it, so an acknowledgement in ServiceNow reaches the ticket at once', async () => {
    const ticket = await eventually(async () => {
      const r = await json<{ items: Array<{ key: string; externalSysId: string | null; state: string }> }>(platform.api('/api/v1/tickets?limit=100'));
      return r.items.find((t) => t.externalSysId && t.state === 'new');
    }, { what: 'an opened ticket', timeoutMs: 90_000 });
    const patch = await platform.serviceNow(`/api/now/table/incident/${ticket.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '2' }) });
    expect(patch.status).toBe(200);
    // No reconciliation runs (interval 0): only the webhook can move the ticket.
    const moved = await eventually(async () => {
      const t = await json<{ state: string }>(platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}`));
      return t.state === 'in_progress' ? t : undefined;
    }, { what: 'the acknowledgement through the webhook', timeoutMs: 30_000 });
    expect(moved.state).toBe('in_progress');
  });
});

/** A body of `bytes` sent in chunks with no Content-Length (chunked transfer encoding). */
function chunked(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x7b);
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

describe('request bodies', () => {
  const big = 'x'.repeat(2 * 1024 * 1024);

  it('refuses a JSON body over 1 MiB with 413, declared or chunked, and keeps nothing', async () => {
    const declared = await platform.api('/api/v1/scopes/huge', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ description: big, selector: {} }) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe('too_large');
    const streamed = await platform.api('/api/v1/scopes/huge', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: chunked(3 * 1024 * 1024), duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await platform.api('/api/v1/scopes/huge')).status).toBe(404);
  });

  it('refuses an unauthenticated oversized webhook before reading it whole', async () => {
    for (const body of [big, chunked(8 * 1024 * 1024)]) {
      const res = await fetch(`${platform.apiUrl}/api/v1/webhooks/servicenow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
      expect(res.status).toBe(413);
    }
  });

  it('still takes scanner reports larger than 1 MiB as uploads', async () => {
    const report = JSON.parse(fixture.toString('utf8'));
    report.Padding = big;
    const res = await platform.api('/api/v1/scans?owner=alex.romero&target=shop/hardening-big:1&filename=trivy.json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) });
    expect(res.status).toBe(202);
  });

  it('refuses a signed event whose sys_mod_count could blind the ticket to later events', async () => {
    for (const count of [1e300, '99999999999', -1]) {
      const body = JSON.stringify({ event_id: `evt-${String(count)}`, state: '2', correlation_id: 'any-ticket', sys_mod_count: count });
      const res = await fetch(`${platform.apiUrl}/api/v1/webhooks/servicenow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-servicenow-signature': signWebhookBody(body, 'a-configured-webhook-secret') },
        body,
      });
      expect(res.status, String(count)).toBe(400);
      expect(JSON.stringify(await res.json())).toContain('sys_mod_count');
    }
  });
});

describe('a dependency that is down', () => {
  it('answers 503 with Retry-After, and /healthz says which without internal detail', async () => {
    // A port nothing listens on: the database is "down" for this API.
    const port = await new Promise<number>((res) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => res(p));
      });
    });
    const database = connectDatabase(`postgres://ctem:secret-password@127.0.0.1:${port}/nowhere`, { max: 1 });
    const app = createApp({
      database,
      temporal: { client: platform.temporalClient, taskQueue: 'unused', namespace: platform.env.TEMPORAL_NAMESPACE ?? 'default' },
      apiToken: 'down-token',
      reportsDir: platform.env.CTEM_DATA_DIR!,
      maxUploadBytes: 1024,
      scanSlaMs: { critical: 1, high: 1, medium: 1, low: 1 },
    });
    try {
      const res = await app.request('/api/v1/tickets', { headers: { authorization: 'Bearer down-token' } });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
      const health = await app.request('/healthz');
      expect(health.status).toBe(503);
      const text = await health.text();
      expect(JSON.parse(text)).toMatchObject({ status: 'degraded', database: { ok: false, error: 'unavailable' }, temporal: { ok: true } });
      expect(text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|nowhere|ctem/);
    } finally {
      await database.close();
    }
  });
});
