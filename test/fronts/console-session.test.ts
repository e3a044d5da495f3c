import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

// Signing in to the console: the API token opens a signed, HttpOnly session cookie; without it
// every console page sends the browser to the sign-in form; forms from another origin are refused.

let platform: TestPlatform;
let browser: Browser;

beforeAll(async () => {
  platform = await startTestPlatform({}, { api: true, worker: false });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

const signInForm = (token: string, next = '/console/tickets') =>
  fetch(`${platform.apiUrl}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: platform.apiUrl! },
    body: new URLSearchParams({ token, next }),
  });

describe('console sign-in', () => {
  it('sends a visitor without a session to the sign-in form, keeping where they were going', async () => {
    const res = await fetch(`${platform.apiUrl}/console/exposures?tier=act`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/sign-in?next=%2Fconsole%2Fexposures%3Ftier%3Dact');
    const root = await fetch(`${platform.apiUrl}/`, { redirect: 'manual' });
    expect(root.headers.get('location')).toBe('/console');
  });

  it('refuses a wrong token with 401 and the form again', async () => {
    const res = await signInForm('not-the-token');
    expect(res.status).toBe(401);
    expect(await res.text()).toMatch(/That token is not the platform(&#39;|')s API token\./);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('opens a signed HttpOnly session with the API token, and follows only console paths', async () => {
    const res = await signInForm(platform.env.CTEM_API_TOKEN!);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/tickets');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^ctem_session=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const away = await signInForm(platform.env.CTEM_API_TOKEN!, 'https://elsewhere.example/');
    expect(away.headers.get('location')).toBe('/console');
    const sneaky = await signInForm(platform.env.CTEM_API_TOKEN!, '//elsewhere.example/console');
    expect(sneaky.headers.get('location')).toBe('/console');
  });

  it('refuses a tampered cookie and a form posted from another site', async () => {
    const res = await signInForm(platform.env.CTEM_API_TOKEN!);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const tampered = cookie.replace('api-token', 'api-tokeN');
    const denied = await fetch(`${platform.apiUrl}/console/tickets`, { redirect: 'manual', headers: { cookie: tampered } });
    expect(denied.status).toBe(303);
    const crossSite = await fetch(`${platform.apiUrl}/console/sign-out`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: 'https://elsewhere.example' },
    });
    expect(crossSite.status).toBe(403);
    const fetchedCrossSite = await fetch(`${platform.apiUrl}/console/sign-out`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'sec-fetch-site': 'cross-site', origin: 'null' },
    });
    expect(fetchedCrossSite.status).toBe(403);
  });

  it('shows the sign-in form in a real browser and signs in from it', async () => {
    const page = await browser.newPage();
    await page.goto(`${platform.apiUrl}/console/program`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await page.fill('input[name=token]', 'wrong');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('[role=alert]')).toContain('not the platform');
    await page.fill('input[name=token]', platform.env.CTEM_API_TOKEN!);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.pathname === '/console/program');
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'ctem_session')?.httpOnly).toBe(true);
    await page.close();
  });
});
