import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
