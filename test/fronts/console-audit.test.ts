import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { AuditEntry } from '../../access/audit-trail.js';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// The audit trail in a real browser: the list with its filters, an entry's field-by-field change,
// and a console form post recorded with channel console.

let platform: TestPlatform;
let browser: Browser;

const putControl = (body: unknown) =>
  platform.api('/api/v1/controls/edge-waf', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  platform = await startTestPlatform();
  browser = await launchBrowser();
  const control = { kind: 'waf', mitigates: { issueIds: ['CVE-2021-44228'] }, appliesTo: { all: true }, effect: 'not_exposed', description: 'blocks JNDI lookups at the edge' };
  expect((await putControl(control)).status).toBe(200);
  expect((await putControl({ ...control, effect: 'not_exploitable', description: 'JNDI lookups disabled in the image' })).status).toBe(200);
  expect((await platform.api('/api/v1/scopes/payments', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ selector: {} }) })).status).toBe(200);
  expect((await fetch(`${platform.apiUrl}/api/v1/scopes/payments`, { method: 'DELETE', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

describe('console: audit trail', () => {
  it('lists entries, filters them, and shows what an update changed', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/audit');
    const rows = page.locator('#audit tbody tr');
    expect(await rows.count()).toBe(4);
    expect(await rows.nth(0).textContent()).toContain('scopes.delete');
    expect(await rows.nth(0).textContent()).toContain('denied');
    expect(await rows.nth(3).textContent()).toContain('controls.put');
    expect(await page.textContent('nav')).toContain('Audit');
    await screenshot(page, 'console-audit-list');

    await page.fill('input[name=action]', 'controls');
    await Promise.all([page.waitForURL((u) => u.searchParams.get('action') === 'controls'), page.click('button:has-text("Filter")')]);
    expect(await rows.count()).toBe(2);
    await Promise.all([page.waitForURL((u) => /^\/console\/audit\/\d+$/.test(u.pathname)), rows.nth(0).locator('a').click()]);
    const diff = await page.textContent('#diff');
    expect(diff).toContain('description');
    expect(diff).toContain('"blocks JNDI lookups at the edge"');
    expect(diff).toContain('"JNDI lookups disabled in the image"');
    expect(diff).toContain('effect');
    expect(diff).not.toContain('kind'); // unchanged fields are not listed
    await screenshot(page, 'console-audit-entry');

    await page.goto(`${platform.apiUrl}/console/audit?since=yesterday`);
    expect(await page.textContent('[role=alert]')).toContain('since: expected a date');
    await page.close();
  });

  it('records a console form post with channel console and the signed-in viewer', async () => {
    const page = await browser.newPage();
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/audit');
    const res = await page.request.post(`${platform.apiUrl}/console/tickets/NO-SUCH-TICKET/acknowledge`, { form: { by: 'alex' }, headers: { origin: platform.apiUrl! } });
    expect(res.status()).toBe(404);
    const [entry] = (await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?limit=1'))).items;
    expect(entry).toMatchObject({ channel: 'console', actorId: 'bootstrap', action: 'tickets.acknowledge', target: 'NO-SUCH-TICKET', outcome: 'failed' });
    await page.close();
  });
});
