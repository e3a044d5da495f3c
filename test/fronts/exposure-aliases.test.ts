import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// Aliases through the fronts of a real platform: a GHSA-only report and Grype's report naming the
// CVE with that GHSA alias, uploaded through the API onto one image, are one exposure that the API's
// issue filter and free-text search, the CLI's --issue and the console's exposure page all find and
// name by both ids.

const TARGET = 'aliases/web:1';
const GHSA = 'GHSA-m2qf-hxjv-5gpq';
const CVE = 'CVE-2023-30861';

let platform: TestPlatform;
let browser: Browser;

interface Exposure { id: number; issueId: string; aliases: string[]; component: string }

async function scan(body: string, source: string): Promise<void> {
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/scans?filename=grype.json&source=${source}&target=${encodeURIComponent(TARGET)}`, { method: 'POST', body }),
  );
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), { what: `the ${source} scan` });
}

const flask = async (query: string) =>
  (await json<{ items: Exposure[] }>(platform.api(`/api/v1/exposures?asset=${encodeURIComponent(TARGET)}&${query}`))).items
    .filter((e) => e.component === 'flask')
    .map((e) => [e.issueId, e.aliases]);

describe.skipIf(!hasCorpus)(`exposures by any of their ids (${hasCorpus ? 'real platform' : corpusSkipReason})`, () => {
  beforeAll(async () => {
    platform = await startTestPlatform();
    browser = await launchBrowser();
    const grype = readFileSync(corpusFile('scanners', 'more', 'trivy-grype-same-image', 'grype-results.json'), 'utf8');
    // What Grype writes for a GitHub advisory no CVE is known for yet: the flask match alone, without its NVD record.
    const report = JSON.parse(grype);
    report.matches = report.matches
      .filter((m: { vulnerability: { id: string } }) => m.vulnerability.id === GHSA)
      .map((m: Record<string, unknown>) => ({ ...m, relatedVulnerabilities: [] }));
    await scan(JSON.stringify(report), 'grype-github');
    await scan(grype, 'grype');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await platform?.stop();
  });

  it('the API finds the one exposure by the CVE, by the GHSA and by free text in any case, and names both', async () => {
    for (const query of [`issueId=${CVE}`, `issueId=${GHSA}`, `q=${GHSA.toLowerCase()}`, `q=${CVE.toLowerCase()}`]) {
      expect(await flask(query), query).toEqual([[CVE, [GHSA]]]);
    }
    expect(await flask('issueId=GHSA-0000-0000-0000')).toEqual([]);
    const [item] = (await json<{ items: Exposure[] }>(platform.api(`/api/v1/exposures?issueId=${GHSA}`))).items;
    const detail = await json<Exposure & { sources: Array<{ source: string }> }>(platform.api(`/api/v1/exposures/${item!.id}`));
    expect(detail.aliases).toEqual([GHSA]);
    expect(detail.sources.map((s) => s.source)).toEqual(['grype', 'grype-github']);
  });

  it('the CLI lists it for --issue with the GHSA', async () => {
    const run = await runCtem(['exposures', 'list', '--issue', GHSA, '--json'], platformEnv(platform));
    expect(run.code, run.stderr).toBe(0);
    const listed = JSON.parse(run.stdout) as { items: Exposure[] } | Exposure[];
    const items = Array.isArray(listed) ? listed : listed.items;
    expect(items.map((e) => [e.issueId, e.aliases, e.component])).toEqual([[CVE, [GHSA], 'flask']]);
  });

  it('the console\'s exposure page says what else it is known as', async () => {
    const [item] = (await json<{ items: Exposure[] }>(platform.api(`/api/v1/exposures?issueId=${GHSA}`))).items;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!, `/console/exposures/${item!.id}`);
    expect(await page.textContent('h1')).toContain(CVE);
    expect(await page.textContent('dl.facts')).toContain(`Also known as${GHSA}`);
    await screenshot(page, 'exposure-aliases');
    await page.close();
  });
});
