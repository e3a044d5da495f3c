import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

// A real browser for console tests: Debian's chromium (installed by .ci/run), driven by
// playwright-core, never a browser download. CTEM_CHROMIUM names another executable.

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string | undefined {
  const configured = process.env.CTEM_CHROMIUM;
  if (configured) return configured;
  return CANDIDATES.find((p) => existsSync(p));
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('no chromium found: install it (apt-get install -y chromium) or set CTEM_CHROMIUM to a Chromium executable');
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** Where screenshots go: test-artifacts/screenshots (kept by CI, ignored by git). */
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the sign-in form, as a person would; lands on `next` (the overview by default). */
export async function signIn(page: Page, baseUrl: string, token: string, next = '/console'): Promise<void> {
  await page.goto(`${baseUrl}/console/sign-in?next=${encodeURIComponent(next)}`);
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForURL((url) => url.pathname === next.split('?')[0]), page.click('button[type=submit]')]);
}
