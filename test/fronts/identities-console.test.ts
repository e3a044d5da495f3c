import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// People sign in to the console with their own accounts and see what their roles allow: a read-only
// user sees no action forms and cannot post one; security operations acknowledge as themselves; a
// disabled account is signed out at once. Through the API, the approver of a risk is the caller.

const TARGET = 'identities-console/payments:1.0';
let platform: TestPlatform;
let browser: Browser;
let tickets: TicketRow[];
const live = (workflowId: string) => platform.temporalClient.workflow.getHandle(workflowId).query(statusQuery) as Promise<RemediationState>;
const send = (path: string, body: unknown, method = 'POST') => platform.api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function signInAs(name: string, password: string, next = '/console/tickets'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${platform.apiUrl}/console/sign-in?next=${encodeURIComponent(next)}`);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((url) => url.pathname === next), page.click('button[type=submit]')]);
  return { context, page };
}

beforeAll(async () => {
  platform = await startTestPlatform({ CTEM_SLA_ACK: '4h', CTEM_ESCALATION_INTERVAL: '4h', CTEM_TICKET_RECONCILE_INTERVAL: '0s', ...SAMPLE_FEEDS_ENV });
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(TARGET)}&filename=trivy.json`, { method: 'POST', body: imageReport(TARGET) });
  expect(res.status).toBe(202);
  for (const [name, roles] of [['rosa.diaz', ['read-only']], ['sam.lee', ['secops']], ['alex.romero', ['owner']]] as const) {
    await json(send('/api/v1/identities', { name, roles, password: `${name} has a long password` }));
  }
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
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

describe('console sign-in with identities', () => {
  it('refuses a wrong password without saying whether the name exists', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${platform.apiUrl}/console/sign-in`);
    for (const name of ['rosa.diaz', 'nobody.here']) {
      await page.fill('input[name=name]', name);
      await page.fill('input[name=password]', 'not the password at all');
      await page.click('button[type=submit]');
      await expect.poll(() => page.textContent('[role=alert]')).toBe('That name and password do not match an active account.');
    }
    await screenshot(page, 'identities-sign-in-refused');
    await context.close();
  });

  it('shows a read-only user the ticket without action forms, and refuses a posted one', async () => {
    const { context, page } = await signInAs('rosa.diaz', 'rosa.diaz has a long password');
    await expect(page.locator('header .who').textContent()).resolves.toBe('rosa.diaz');
    await expect(page.locator('#tickets tbody tr').count()).resolves.toBeGreaterThanOrEqual(tickets.length);
    const ticket = tickets[0]!;
    await page.goto(`${platform.apiUrl}/console/tickets/${encodeURIComponent(ticket.key)}`);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Ticket ${ticket.externalNumber}`);
    await expect(page.locator('#acknowledge').count()).resolves.toBe(0);
    await expect(page.locator('#exception').count()).resolves.toBe(0);
    await expect(page.locator('form[action$="/acknowledge"]').count()).resolves.toBe(0);
    await screenshot(page, 'identities-read-only-ticket');
    const posted = await page.evaluate(async (url) => {
      const res = await fetch(url, { method: 'POST', body: new URLSearchParams({ by: 'rosa.diaz' }) });
      return { status: res.status, text: await res.text() };
    }, `/console/tickets/${encodeURIComponent(ticket.key)}/acknowledge`);
    expect(posted.status).toBe(403);
    expect(posted.text).toContain('This needs the permission tickets.act, which your roles (read-only) do not grant.');
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');

    // Disabled: the next page is the sign-in form.
    const rosa = (await json<{ items: Array<{ id: string; name: string }> }>(platform.api('/api/v1/identities'))).items.find((i) => i.name === 'rosa.diaz')!;
    await json(send(`/api/v1/identities/${rosa.id}`, { disabled: true }, 'PATCH'));
    await page.goto(`${platform.apiUrl}/console/tickets`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await context.close();
  });

  it('lets security operations acknowledge, recorded under their own name', async () => {
    const { context, page } = await signInAs('sam.lee', 'sam.lee has a long password');
    const ticket = tickets[0]!;
    await page.goto(`${platform.apiUrl}/console/tickets/${encodeURIComponent(ticket.key)}`);
    await expect(page.locator('header nav a').allTextContents()).resolves.not.toContain('Identities');
    await expect(page.locator('#acknowledge p').textContent()).resolves.toBe('Acknowledging as sam.lee.');
    await expect(page.locator('#acknowledge input[name=by]').count()).resolves.toBe(0);
    await page.fill('#acknowledge input[name=note]', 'taking it');
    await Promise.all([page.waitForLoadState('load'), page.click('#acknowledge button[type=submit]')]);
    await expect(page.locator('p.notice').textContent()).resolves.toBe('Acknowledged by sam.lee: the ticket is awaiting its fix.');
    await screenshot(page, 'identities-secops-acknowledged');
    expect(await live(ticket.workflowId)).toMatchObject({ phase: 'awaiting-resolution', acknowledgedBy: 'sam.lee' });
    await context.close();
  });

  it('sends an owner to their tickets, and keeps the rest of the console closed', async () => {
    const { context, page } = await signInAs('alex.romero', 'alex.romero has a long password', '/console/tickets');
    await page.goto(`${platform.apiUrl}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/tickets');
    await expect(page.locator('header nav a').allTextContents()).resolves.toEqual(['Tickets', 'API']);
    const owners = await page.locator('#tickets tbody tr td:nth-child(4)').allTextContents();
    expect(owners.length).toBe(tickets.length);
    expect(new Set(owners)).toEqual(new Set(['alex.romero']));
    const exposures = await page.goto(`${platform.apiUrl}/console/exposures`);
    expect(exposures!.status()).toBe(403);
    await screenshot(page, 'identities-owner-forbidden');
    await context.close();
  });

  it('records the caller as the approver of a risk acceptance made with an issued token', async () => {
    const sam = (await json<{ items: Array<{ id: string; name: string }> }>(platform.api('/api/v1/identities'))).items.find((i) => i.name === 'sam.lee')!;
    const { token } = await json<{ token: string }>(send(`/api/v1/identities/${sam.id}/tokens`, { name: 'risk' }));
    const ticket = tickets[1]!;
    const accept = (body: Record<string, unknown>) =>
      fetch(`${platform.apiUrl}/api/v1/tickets/${encodeURIComponent(ticket.key)}/risk-acceptance`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'WAF rule blocks the exploit until the rebuild', expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), ...body }),
      });
    const someoneElse = await accept({ approver: 'the.ciso' });
    expect(someoneElse.status).toBe(422);
    expect(((await someoneElse.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_risk_acceptance', details: { field: 'approver' } });
    const accepted = await accept({});
    expect(accepted.status).toBe(200);
    expect(((await accepted.json()) as RemediationState).riskAcceptance).toMatchObject({ requester: 'alex.romero', approver: 'sam.lee' });
  });

  it('records who resolved a ticket in ServiceNow: the identity of that user name, else the ITSM user', async () => {
    const ticket = tickets[0]!;
    const event = { event_id: `resolved-${ticket.key}`, state: '6', correlation_id: ticket.key, sys_mod_count: '100', sys_updated_by: 'itsm.only.user' };
    const res = await platform.api('/api/v1/webhooks/servicenow', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    expect(res.status).toBe(202);
    await eventually(async () => ((await live(ticket.workflowId)).resolvedBy === 'itsm.only.user' ? true : undefined), { what: 'the resolution recorded with its ITSM user' });
  });

  it('lets an administrator create an identity and issue its token from the console, shown once', async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/identities');
    await page.fill('#create-identity input[name=name]', 'deploy-pipeline');
    await page.selectOption('#create-identity select[name=kind]', 'service');
    await page.check('#create-identity input[name=roles][value=ci]');
    await Promise.all([page.waitForLoadState('load'), page.click('#create-identity button[type=submit]')]);
    await expect(page.locator('[role=status] p').first().textContent()).resolves.toBe('Created deploy-pipeline (ci).');
    const row = page.locator('#identities tr[data-name="deploy-pipeline"]');
    await row.locator('input[name=name]').fill('gate');
    await Promise.all([page.waitForLoadState('load'), row.locator('form[action$="/tokens"] button').click()]);
    const token = (await page.locator('#issued-token').textContent())!;
    expect(token).toMatch(/^ctem_[0-9a-f]{8}_[\w-]{43}$/);
    await screenshot(page, 'identities-admin');
    const me = await fetch(`${platform.apiUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ name: 'deploy-pipeline', roles: ['ci'] });
    await page.goto(`${platform.apiUrl}/console/identities`);
    await expect(page.locator('#issued-token').count()).resolves.toBe(0);
    await expect(page.content()).resolves.not.toContain(token);
    await context.close();
  });
});
