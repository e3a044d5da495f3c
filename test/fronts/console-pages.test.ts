import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { join } from 'node:path';
import { launchBrowser, screenshot, SCREENSHOT_DIR, signIn } from '../support/browser.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// The console's pages in a real browser against the real platform: sign in, filter exposures, open
// one and read its explanation, open a ticket and acknowledge it (the remediation workflow records
// it), request an exception, and read the program and the API reference.

const TARGET = 'console-pages/payments:1.0';
let platform: TestPlatform;
let browser: Browser;
let page: Page;
let tickets: TicketRow[];

const live = (workflowId: string) => platform.temporalClient.workflow.getHandle(workflowId).query(statusQuery) as Promise<RemediationState>;

beforeAll(async () => {
  platform = await startTestPlatform({ CTEM_SLA_ACK: '4h', CTEM_ESCALATION_INTERVAL: '4h', CTEM_TICKET_RECONCILE_INTERVAL: '0s', ...SAMPLE_FEEDS_ENV });
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(TARGET)}&filename=trivy.json`, { method: 'POST', body: imageReport(TARGET) });
  expect(res.status).toBe(202);
  expect((await platform.api('/api/v1/scopes/payments', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ selector: { owners: ['alex.romero'] } }) })).status).toBe(200);
  tickets = await eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=100'))).items.filter((t) => t.asset.name === TARGET);
      if (items.length < 2 || !items.every((t) => t.externalNumber)) return undefined;
      const phases = await Promise.all(items.map((t) => live(t.workflowId)));
      return phases.every((s) => s.phase === 'awaiting-acknowledgement') ? items : undefined;
    },
    { what: 'opened golden tickets', timeoutMs: 90_000 },
  );
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
  await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/exposures');
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

describe('console pages', () => {
  it('lists exposures and filters them by KEV and scope', async () => {
    await page.goto(`${platform.apiUrl}/console/exposures`);
    const all = await page.locator('#exposures tbody tr').count();
    expect(all).toBeGreaterThan(2);
    await expect(page.locator('section h2').first().textContent()).resolves.toMatch(new RegExp(`^${all} open exposures$`));
    await page.selectOption('select[name=kev]', 'true');
    await page.selectOption('select[name=scope]', 'payments');
    await Promise.all([page.waitForURL(/kev=true/), page.click('form.filters button[type=submit]')]);
    expect(new URL(page.url()).searchParams.get('scope')).toBe('payments');
    const kev = await page.locator('#exposures tbody tr').allTextContents();
    expect(kev.length).toBeGreaterThan(0);
    expect(kev.length).toBeLessThan(all);
    for (const row of kev) expect(row).toContain('KEV');
    expect(kev.join('\n')).toContain('CVE-2021-44228');
    await screenshot(page, 'exposures');
  });

  it('opens an exposure with its explanation, sources and history', async () => {
    await Promise.all([page.waitForURL(/\/console\/exposures\/\d+$/), page.click('#exposures a:text("CVE-2021-44228")')]);
    await expect(page.locator('h1').textContent()).resolves.toBe(`CVE-2021-44228 on ${TARGET}`);
    const factors = await page.locator('#explanation tbody tr td:first-child').allTextContents();
    expect(factors).toContain('In CISA KEV');
    expect(factors.length).toBeGreaterThan(3);
    const kevRow = await page.locator('#explanation tbody tr', { hasText: 'In CISA KEV' }).textContent();
    expect(kevRow).toMatch(/CISA KEV/);
    await expect(page.locator('#sources tbody tr').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('#history tbody tr').count()).resolves.toBeGreaterThan(0);
    await screenshot(page, 'exposure');
  });

  it('lists tickets, opens one and acknowledges it through the workflow', async () => {
    await page.goto(`${platform.apiUrl}/console/tickets?owner=alex.romero`);
    await expect(page.locator('#tickets tbody tr').count()).resolves.toBe(tickets.length);
    await screenshot(page, 'tickets');
    const ticket = tickets[0]!;
    await Promise.all([page.waitForURL(/\/console\/tickets\/.+/), page.click(`#tickets a:text("${ticket.externalNumber}")`)]);
    await expect(page.locator('#itsm-link').getAttribute('href')).resolves.toBe((await json<{ externalUrl: string }>(platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}`))).externalUrl);
    await page.fill('#acknowledge input[name=note]', 'on it from the console');
    await Promise.all([page.waitForLoadState('load'), page.click('#acknowledge button[type=submit]')]);
    await expect(page.locator('p.notice').textContent()).resolves.toMatch(/^Acknowledged by alex\.romero: the ticket is awaiting its fix\.$/);
    const detail = await json<{ workflow: RemediationState; acknowledgedAt: string | null }>(platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}`));
    expect(detail.workflow).toMatchObject({ phase: 'awaiting-resolution', acknowledgedBy: 'alex.romero' });
    await screenshot(page, 'ticket');
  });

  it('requests an exception, refusing a reason that is too short', async () => {
    const ticket = tickets[1]!;
    await page.goto(`${platform.apiUrl}/console/tickets/${encodeURIComponent(ticket.key)}`);
    await page.fill('#exception textarea[name=reason]', 'short');
    // Past the browser's own check, to the server's rule.
    await page.locator('#exception textarea').evaluate((el) => (el as unknown as { removeAttribute(name: string): void }).removeAttribute('minlength'));
    await Promise.all([page.waitForLoadState('load'), page.click('#exception button[type=submit]')]);
    await expect(page.locator('p.error').textContent()).resolves.toMatch(/^reason: /);
    await page.fill('#exception textarea[name=reason]', 'Vendor patch ships next sprint; WAF rule in place.');
    await Promise.all([page.waitForLoadState('load'), page.click('#exception button[type=submit]')]);
    await expect(page.locator('p.notice').textContent()).resolves.toMatch(/^Exception request #\d+ recorded, pending approval until \d{4}-\d{2}-\d{2}\.$/);
    const [row] = await platform.database.sql`select requester, reason, status from exception_requests where ticket_key = ${ticket.key}`;
    expect(row).toEqual({ requester: 'alex.romero', reason: 'Vendor patch ships next sprint; WAF rule in place.', status: 'pending' });
  });

  it('shows the program: scopes, schedules, feeds and their checks, policies', async () => {
    await page.goto(`${platform.apiUrl}/console/program`);
    await expect(page.locator('#scopes').textContent()).resolves.toContain('owners: alex.romero');
    const feeds = await page.locator('#feeds tbody tr').allTextContents();
    expect(feeds.some((f) => f.startsWith('CISA KEV') && f.includes('active'))).toBe(true);
    expect(feeds.some((f) => f.startsWith('FIRST EPSS') && f.includes('schema'))).toBe(true);
    await expect(page.locator('#policies tbody tr', { hasText: 'active' }).count()).resolves.toBe(1);
    await screenshot(page, 'program');
    await Promise.all([page.waitForURL(/\/shadow$/), page.click('#policies a:text("shadow diff and backtest")')]);
    await expect(page.locator('#shadow dl').textContent()).resolves.toMatch(/Scored\d/);
  });

  it('renders the API reference from the OpenAPI document', async () => {
    await page.goto(`${platform.apiUrl}/console/api`);
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(platform.api('/api/v1/openapi.json'));
    const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    await expect(page.locator('article.operation').count()).resolves.toBe(operations);
    const list = page.locator('article.operation', { has: page.locator('code', { hasText: /^\/api\/v1\/exposures$/ }) });
    await expect(list.textContent()).resolves.toMatch(/afteroptional|after/);
    await expect(list.locator('a', { hasText: 'ExposurePage' }).count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('#schema-ExposurePage').textContent()).resolves.toContain('estimate');
    // The reference is tens of thousands of pixels long: the picture is its first screen and the exposure list.
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'api.png') });
    await list.screenshot({ path: join(SCREENSHOT_DIR, 'api-exposures.png') });
  });

  it('says which filter is wrong instead of listing nothing', async () => {
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const bad = await fetch(`${platform.apiUrl}/console/exposures?tier=urgent`, { headers: { cookie } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('tier: expected one of act, attend, track*, track');
    const cursor = await fetch(`${platform.apiUrl}/console/tickets?after=nope!`, { headers: { cookie } });
    expect(cursor.status).toBe(400);
    expect(await cursor.text()).toContain('after: not a cursor from this list');
  });
});
