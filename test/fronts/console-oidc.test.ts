import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider, { type Configuration } from 'oidc-provider';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_PUBLIC_ROUTES, CONSOLE_ROUTE_PERMISSIONS } from '../../access/route-permissions.js';
import { ConfigError, loadConfig } from '../../config/index.js';
import { consoleRoutes } from '../../console/app.js';
import { CONSOLE_PAGES } from '../../console/pages/index.js';
import { freePort } from '../../platform/ports.js';
import { launchBrowser, screenshot } from '../support/browser.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Console sign-in with OpenID Connect against a real, certified provider (oidc-provider) on a
// loopback port, driven in a real browser: the provider's development login page takes any login,
// and its account says which e-mail that login has and whether it is verified. The provider runs
// on `localhost` and the console on `127.0.0.1`, so they are different sites, as in production
// (SameSite cookies behave as they would there).

const CLIENT_ID = 'ctem-console';
const CLIENT_SECRET = `oidc-secret-${randomBytes(12).toString('hex')}`;

/** The provider's people: login -> claims. */
const ACCOUNTS: Record<string, { email: string; email_verified: boolean; name: string }> = {
  rosa: { email: 'Rosa.Diaz@Example.COM', email_verified: true, name: 'Rosa Diaz' },
  stranger: { email: 'stranger@example.com', email_verified: true, name: 'A Stranger' },
  dana: { email: 'dana.kim@example.com', email_verified: true, name: 'Dana Kim' },
  unverified: { email: 'rosa.diaz@example.com', email_verified: false, name: 'Not Rosa' },
};

let platform: TestPlatform;
let second: TestPlatform;
let browser: Browser;
let idpPort: number;
let issuer: string;
let idp: Server | undefined;
const oidcEnv = () => ({ CTEM_OIDC_ISSUER: issuer, CTEM_OIDC_CLIENT_ID: CLIENT_ID, CTEM_OIDC_CLIENT_SECRET: CLIENT_SECRET, CTEM_OIDC_NAME: 'Example SSO' });

async function startProvider(redirectUris: string[]): Promise<void> {
  const configuration: Configuration = {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: redirectUris, grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: (_ctx, id) => {
      const account = ACCOUNTS[id];
      return account ? { accountId: id, claims: () => ({ sub: id, ...account }) } : undefined;
    },
    pkce: { required: () => true },
  };
  const provider = new Provider(issuer, configuration);
  idp = createServer(provider.callback());
  await new Promise<void>((res) => idp!.listen(idpPort, '127.0.0.1', res));
}

beforeAll(async () => {
  idpPort = await freePort();
  issuer = `http://localhost:${idpPort}`;
  platform = await startTestPlatform(oidcEnv(), { api: true, worker: false });
  // A second API replica on the same database and token, behind the same public address.
  second = await startTestPlatform(
    { ...oidcEnv(), DATABASE_URL: platform.env.DATABASE_URL!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN!, CTEM_OIDC_REDIRECT_URL: `${platform.apiUrl}/console/sign-in/oidc/callback` },
    { api: true, worker: false },
  );
  browser = await launchBrowser();
  const create = (body: object) => json<{ id: string }>(platform.api('/api/v1/identities', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  await create({ kind: 'user', name: 'rosa.diaz', email: 'rosa.diaz@example.com', roles: ['read-only'] });
  const dana = await create({ kind: 'user', name: 'dana.kim', email: 'dana.kim@example.com', roles: ['secops'] });
  const disabled = await platform.api(`/api/v1/identities/${dana.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) });
  expect(disabled.status).toBe(200);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((res) => (idp ? idp.close(res) : res(undefined)));
  await second?.stop();
  await platform?.stop();
});

/** Through the sign-in page's button and the provider's login and consent pages, in a fresh browser. */
async function signInWithProvider(login: string, { start = platform.apiUrl!, next = '/console/exposures' }: { start?: string; next?: string } = {}) {
  const context: BrowserContext = await browser.newContext();
  const page = await context.newPage();
  let callbackUrl = '';
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/console/sign-in/oidc/callback') callbackUrl = r.url();
  });
  await page.goto(`${start}/console/sign-in?next=${encodeURIComponent(next)}`);
  await Promise.all([page.waitForURL((u) => u.host === `localhost:${idpPort}`), page.click('a.sso')]);
  const flow = (await context.cookies()).find((c) => c.name === 'ctem_oidc');
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'anything');
  await page.click('button[type=submit]');
  const callback = page.waitForResponse((r) => new URL(r.url()).pathname === '/console/sign-in/oidc/callback', { timeout: 15_000 });
  await page.click('button:has-text("Continue")');
  const answer = await callback.catch(async (err: Error) => {
    throw new Error(`${err.message}; the browser is at ${page.url()}:\n${(await page.content()).slice(0, 1500)}`);
  });
  await page.waitForLoadState('load');
  return { context, page, status: answer.status(), callbackUrl, flowCookie: flow ? `${flow.name}=${flow.value}` : '' };
}

const sessionCookie = async (context: BrowserContext) => {
  const cookie = (await context.cookies()).find((c) => c.name === 'ctem_session');
  return cookie ? `${cookie.name}=${cookie.value}` : undefined;
};

const auditEntries = async () =>
  (await json<{ items: Array<{ action: string; outcome: string; actorName: string; target: string | null; after: { reason?: string } | null }> }>(platform.api('/api/v1/audit?action=sign-in&limit=100'))).items;

describe('console sign-in with OpenID Connect', () => {
  it('keeps serving the console while the provider is down, and the button answers why', async () => {
    const page = await (await browser.newContext()).newPage();
    const res = await page.goto(`${platform.apiUrl}/console/sign-in?next=%2Fconsole%2Fexposures`);
    expect(res!.status()).toBe(200);
    await expect(page.locator('a.sso').textContent()).resolves.toBe('Sign in with Example SSO');
    const down = await fetch(`${platform.apiUrl}/console/sign-in/oidc?next=%2Fconsole`, { redirect: 'manual' });
    expect(down.status).toBe(503);
    const body = await down.text();
    expect(body).toContain(`The identity provider (${issuer}) could not be reached`);
    expect(body).not.toContain(CLIENT_SECRET);
    expect(down.headers.get('set-cookie')).toBeNull();
    await page.context().close();
  });

  it('signs a person in as the identity with their verified e-mail, with its roles', async () => {
    await startProvider([`${platform.apiUrl}/console/sign-in/oidc/callback`]);
    // The sign-in page, with the provider's button (discovery now succeeds: the failure was not kept).
    const look = await (await browser.newContext()).newPage();
    await look.goto(`${platform.apiUrl}/console/sign-in`);
    await screenshot(look, 'oidc-sign-in');
    await look.context().close();

    const { context, page, status } = await signInWithProvider('rosa');
    expect(status).toBe(200);
    await page.waitForURL((u) => u.pathname === '/console/exposures');
    expect(await page.locator('header.top').textContent()).toContain('rosa.diaz');
    await screenshot(page, 'oidc-signed-in');
    const cookie = (await sessionCookie(context))!;
    expect(cookie).toBeDefined();
    // read-only reads exposures but not identities.
    expect((await fetch(`${platform.apiUrl}/console/exposures`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    const admin = await fetch(`${platform.apiUrl}/console/identities`, { headers: { cookie }, redirect: 'manual' });
    expect(admin.status).toBe(403);
    expect(await admin.text()).toContain('identities.admin');
    // The flow cookie is spent.
    expect((await context.cookies()).find((c) => c.name === 'ctem_oidc')).toBeUndefined();
    // Stateless: the other replica reads the same session.
    expect((await fetch(`${second.apiUrl}/console/exposures`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    expect((await fetch(`${second.apiUrl}/console/identities`, { headers: { cookie }, redirect: 'manual' })).status).toBe(403);
    await context.close();
    const [entry] = await auditEntries();
    expect(entry).toMatchObject({ action: 'sign-in.oidc', outcome: 'allowed', actorName: 'rosa.diaz', target: 'rosa.diaz@example.com' });
  }, 120_000);

  it('lets one replica finish a sign-in another started', async () => {
    // The browser starts at the second replica; the provider returns it to the first (the public address).
    const { context, page, status } = await signInWithProvider('rosa', { start: second.apiUrl!, next: '/console/hunting' });
    expect(status).toBe(200);
    await page.waitForURL((u) => u.pathname === '/console/hunting');
    expect(new URL(page.url()).port).toBe(new URL(platform.apiUrl!).port);
    await context.close();
  }, 120_000);

  it('refuses an unknown e-mail, a disabled identity and an unverified e-mail, and says why', async () => {
    const cases: Array<[string, RegExp, string]> = [
      ['stranger', /No console account has the e-mail address stranger@example\.com/, 'unknown'],
      ['dana', /The console account for dana\.kim@example\.com is disabled/, 'disabled'],
      ['unverified', /has not verified the e-mail address rosa\.diaz@example\.com/, 'unverified-email'],
    ];
    for (const [login, message, reason] of cases) {
      const { context, page, status } = await signInWithProvider(login);
      expect(status, login).toBe(403);
      expect(new URL(page.url()).pathname).toBe('/console/sign-in/oidc/callback');
      expect(await page.locator('p.error').textContent()).toMatch(message);
      if (login === 'stranger') await screenshot(page, 'oidc-refused-unknown');
      expect(await sessionCookie(context)).toBeUndefined();
      await context.close();
      const [entry] = await auditEntries();
      expect(entry, login).toMatchObject({ action: 'sign-in.oidc', outcome: 'denied', actorName: '(refused credentials)', after: { reason } });
    }
  }, 180_000);

  it('refuses a tampered state, a replayed answer, and a callback no sign-in started', async () => {
    // A sign-in that went through: its flow cookie and the provider's answer, as an attacker would have seen them.
    const { context, status, callbackUrl, flowCookie } = await signInWithProvider('rosa');
    expect(status).toBe(200);
    await context.close();
    expect(flowCookie).toMatch(/^ctem_oidc=/);
    const tampered = new URL(callbackUrl);
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')}x`);
    const refused = await fetch(tampered, { headers: { cookie: flowCookie }, redirect: 'manual' });
    expect(refused.status).toBe(401);
    expect(await refused.text()).toMatch(/The identity provider(&#39;|')s answer did not verify \([^)]*state/);
    expect(refused.headers.get('set-cookie') ?? '').not.toContain('ctem_session=');
    // The same answer again: the provider refuses a code used once.
    const replayed = await fetch(callbackUrl, { headers: { cookie: flowCookie }, redirect: 'manual' });
    expect(replayed.status).toBe(401);
    expect(replayed.headers.get('set-cookie') ?? '').not.toContain('ctem_session=');
    const [entry] = await auditEntries();
    expect(entry).toMatchObject({ action: 'sign-in.oidc', outcome: 'denied', after: { reason: 'not-verified' } });
    const stray = await fetch(`${platform.apiUrl}/console/sign-in/oidc/callback?code=abc&state=def`, { redirect: 'manual' });
    expect(stray.status).toBe(400);
    expect(await stray.text()).toContain('This sign-in was not started here');
  }, 120_000);
});

describe('OpenID Connect configuration and routes', () => {
  const configError = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('the configuration was accepted');
  };
  const base = { CTEM_OIDC_ISSUER: 'https://login.example.com/realms/main', CTEM_OIDC_CLIENT_ID: 'ctem', CTEM_OIDC_CLIENT_SECRET: 'not-shown-anywhere' };

  it('is off without an issuer, and on with defaults from the three variables', () => {
    expect(loadConfig({}).oidc).toBeUndefined();
    expect(loadConfig({ ...base, CTEM_PUBLIC_URL: 'https://ctem.example.com/' }).oidc).toEqual({
      ...{ issuer: base.CTEM_OIDC_ISSUER, clientId: 'ctem', clientSecret: 'not-shown-anywhere' },
      scopes: ['openid', 'email', 'profile'],
      redirectUrl: 'https://ctem.example.com/console/sign-in/oidc/callback',
      name: 'single sign-on',
      requireVerifiedEmail: true,
    });
    expect(loadConfig({ ...base, CTEM_OIDC_SCOPES: 'email groups' }).oidc).toMatchObject({ scopes: ['openid', 'email', 'groups'] });
    expect(loadConfig(base).oidc!.redirectUrl).toBeUndefined();
  });

  it('names the variable at fault, and never the secret', () => {
    expect(configError({ CTEM_OIDC_CLIENT_ID: 'ctem' })).toContain('CTEM_OIDC_ISSUER: required with CTEM_OIDC_CLIENT_ID');
    expect(configError({ CTEM_OIDC_ISSUER: 'https://login.example.com' })).toMatch(/CTEM_OIDC_CLIENT_ID: required[\s\S]*CTEM_OIDC_CLIENT_SECRET: required/);
    expect(configError({ ...base, CTEM_OIDC_ISSUER: 'http://login.example.com' })).toContain('CTEM_OIDC_ISSUER: expected an https URL');
    expect(configError({ ...base, CTEM_OIDC_ISSUER: 'not a url' })).toContain('CTEM_OIDC_ISSUER: expected a URL');
    expect(configError({ ...base, CTEM_OIDC_PROVISION_ROLE: 'admin' })).toContain('CTEM_OIDC_PROVISION_ROLE: "admin" cannot be given by signing in');
    expect(configError({ ...base, CTEM_OIDC_REDIRECT_URL: 'ctem.example.com/cb' })).toContain('CTEM_OIDC_REDIRECT_URL: expected an http(s) URL');
    expect(configError({ ...base, CTEM_OIDC_PROVISION_ROLE: 'admin' })).not.toContain('not-shown-anywhere');
    expect(loadConfig({ ...base, CTEM_OIDC_ISSUER: 'http://localhost:9000' }).oidc!.issuer).toBe('http://localhost:9000');
  });

  it('lists every console route as public or with a permission', () => {
    const routes = consoleRoutes(CONSOLE_PAGES)
      .routes.filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path}`);
    expect(routes).toContain('GET /console/sign-in/oidc/callback');
    expect(routes.filter((r) => !(r in CONSOLE_ROUTE_PERMISSIONS) && !CONSOLE_PUBLIC_ROUTES.includes(r))).toEqual([]);
    expect(CONSOLE_PUBLIC_ROUTES.filter((r) => !routes.includes(r))).toEqual([]);
  });
});
