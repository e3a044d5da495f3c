import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';
import { imageReport } from '../support/reports.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';

// The hunting workbench in a real browser: sign in, save a hypothesis from the form's fields, ask
// it twice around a rescan that fixes Log4Shell, and see its trend drawn and its numbers; a
// malformed hypothesis comes back with each field at fault and what was typed.

const IMAGE = 'browser/payments-api:2';
const LOG4J = 'org.apache.logging.log4j:log4j-core';

let platform: TestPlatform;
let browser: Browser;

async function scan(body: string): Promise<void> {
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/scans?filename=trivy.json&source=registry&complete=true&target=${encodeURIComponent(IMAGE)}`, { method: 'POST', body }),
  );
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), { what: 'the scan' });
  await eventually(async () => ((await platform.database.sql`select count(*)::int as n from findings where tier is null`)[0]!.n === 0 ? true : undefined), {
    what: 'scoring',
    timeoutMs: 60_000,
  });
}

const urgentKev = async () =>
  (await platform.database.sql`
    select count(*)::int as n from findings f join assets a on a.id = f.asset_id
    where a.name = ${IMAGE} and f.status = 'open' and f.issue_id in ('CVE-2021-44228', 'CVE-2022-22965') and f.tier in ('act', 'attend')`)[0]!.n as number;

beforeAll(async () => {
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV });
  browser = await launchBrowser();
  await scan(imageReport(IMAGE));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

describe('console: hunting', () => {
  it('saves a hypothesis from the form, runs it twice and shows its trend and numbers', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/hunting');
    expect(await page.textContent('#hypotheses')).toContain('No hypothesis saved yet');

    await page.fill('input[name=name]', 'kev-on-browser-images');
    await page.fill('input[name=statement]', 'Known-exploited Log4Shell and Spring4Shell on the browser images');
    await page.fill('input[name=issueIds]', 'CVE-2021-44228, CVE-2022-22965');
    await page.selectOption('select[name=kev]', 'yes');
    await page.check('input[name=assetKinds][value=container_image]');
    await page.fill('input[name=assetNamePrefix]', 'browser/');
    await Promise.all([page.waitForURL((u) => u.pathname === '/console/hunting/kev-on-browser-images'), page.click('button:has-text("Save hypothesis")')]);
    expect(await page.textContent('[role=status]')).toContain('Saved');
    expect(await page.textContent('#statement')).toContain('issue CVE-2021-44228, CVE-2022-22965; in CISA KEV; on container_image assets; asset name starting browser/');

    const before = await urgentKev();
    expect(before).toBe(2);
    await Promise.all([page.waitForURL((u) => u.searchParams.has('ran')), page.click('button:has-text("Run now")')]);
    expect(await page.textContent('#matched .value')).toBe('2');

    // The image is rebuilt without log4j-core: its complete rescan closes Log4Shell.
    await scan(imageReport(IMAGE, { withoutPackages: [LOG4J] }));
    await Promise.all([page.waitForURL((u) => u.searchParams.has('ran')), page.click('button:has-text("Run now")')]);
    expect(await page.textContent('#matched .value')).toBe('1');
    expect(await page.textContent('#urgent .value')).toBe(String(await urgentKev()));
    await page.waitForSelector('#trend canvas[data-drawn=true]');
    const spec = JSON.parse((await page.getAttribute('#trend canvas', 'data-chart'))!) as { labels: string[]; datasets: Array<{ label: string; data: number[] }> };
    expect(spec.labels).toHaveLength(2);
    expect(spec.datasets.find((d) => d.label === 'Matched')!.data).toEqual([2, 1]);
    const rows = await page.$$eval('#exposures tbody tr a', (as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
    expect(rows).toHaveLength(1);
    expect(rows[0]![0]).toBe('CVE-2022-22965');
    expect(rows[0]![1]).toMatch(/^\/console\/exposures\/\d+$/);

    // A campaign from the page: no source to rescan here, so it rescores and validates; its row says what it removed.
    await Promise.all([page.waitForURL((u) => u.searchParams.has('campaign')), page.click('button:has-text("Start campaign")')]);
    const campaignId = new URL(page.url()).searchParams.get('campaign')!;
    expect(campaignId).toMatch(/^campaign:hunt\.kev-on-browser-images:[0-9a-f]{8}$/);
    expect(await page.textContent('[role=status]')).toContain(`Campaign ${campaignId} started`);
    await platform.temporalClient.workflow.getHandle(campaignId).result();
    await page.reload();
    const cells = await page.locator('#campaigns tbody tr').first().locator('td').allTextContents();
    expect(cells.slice(0, 2)).toEqual([campaignId, 'completed']);
    const urgent = String(await urgentKev());
    // Urgent before, after, removed, closed, rescored out, no longer matching, new.
    expect(cells.slice(3)).toEqual([urgent, urgent, '0', '0', '0', '0', '0']);
    await screenshot(page, 'hypothesis');

    await page.goto(`${platform.apiUrl}/console/hunting`);
    const row = page.locator('#hypotheses tbody tr', { hasText: 'kev-on-browser-images' });
    expect(await row.locator('td.num').allTextContents()).toEqual(['1', String(await urgentKev())]);
    // Two runs, then the campaign's results before and after.
    const u = await urgentKev();
    expect(await row.locator('svg.sparkline').getAttribute('aria-label')).toBe(`urgent over the last 4 results: 2, ${u}, ${u}, ${u}`);
    await screenshot(page, 'hunting');
    await page.close();
  }, 120_000);

  it('brings a malformed hypothesis back with each field at fault and what was typed', async () => {
    const page = await browser.newPage();
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, '/console/hunting');
    await page.fill('input[name=name]', 'bad one');
    await page.fill('input[name=statement]', 'Something');
    await page.fill('input[name=issueIds]', 'CVE-2021-44228, log4shell');
    await page.fill('input[name=components]', '*');
    await page.click('button:has-text("Save hypothesis")');
    const alert = await page.textContent('[role=alert]');
    expect(alert).toContain('Name: a name is 1-58 letters');
    expect(alert).toContain('Issue ids (value 2): an issue id is a CVE');
    expect(alert).toContain('Component patterns (value 1): a pattern needs at least one character besides *');
    expect(await page.inputValue('input[name=issueIds]')).toBe('CVE-2021-44228, log4shell');
    await screenshot(page, 'hunting-errors');
    expect((await platform.database.sql`select count(*)::int as n from hypotheses where name = 'bad one'`)[0]!.n).toBe(0);
    await page.close();
  });
});
