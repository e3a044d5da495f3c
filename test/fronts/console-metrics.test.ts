import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScheduleNotFoundError } from '@temporalio/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayOf } from '../../metrics/snapshot.js';
import { ensureMetricsSchedule, METRICS_SCHEDULE_ID } from '../../platform/schedules.js';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// Program metrics on the real platform: the daily Schedule and the start-up snapshot, the API's
// overview, executive summary and snapshot series, and the console's Overview and Executive pages
// in a real browser. The estate is the Trivy fixture scanned as two images, one of them mapped by a
// CMDB file to a business service with its revenue; the sample KEV lists two of its CVEs.

const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8');
const CMDB = 'name,kind,image,owner,business_service,annual_revenue,environment\nCheckout,business_service,,alex.romero,Checkout,12500000,production\nshop/checkout:1,container_image,shop/checkout:1,alex.romero,Checkout,,production\n';

let platform: TestPlatform;
let browser: Browser;
const today = dayOf(new Date());

type Total = { estimate: { count: number; exact: boolean } };
type Overview = {
  scope: string;
  snapshot: { day: string; takenAt: string } | null;
  backlog: { open: number; act: number; attend: number; actAttend: number; kev: number; kevActAttend: number; internetFacing: number } | null;
  appetite: { appetite: number; current: number | null; status: string };
  newestKevHits: Array<{ cve: string; kevDateAdded: string; findingId: number; assetName: string }>;
  escalations: Array<{ level: number; tickets: number }>;
  trend: Array<{ day: string; actAttend: number | null }>;
};
type Executive = {
  business: { services: Array<{ name: string; annualRevenue: number | null; urgent: number }>; revenueAtRisk: number } | null;
  mttd: { fromPublished: { count: number }; fromKevAdded: { count: number } } | null;
  trend: unknown[];
};

/** The fixture as the report of another image: a digest of its own, or the two would be one asset. */
function imageReport(image: string): string {
  const r = JSON.parse(fixture);
  const digest = Buffer.from(image).toString('hex').padEnd(64, '0').slice(0, 64);
  r.Metadata.ImageID = `sha256:${digest}`;
  r.Metadata.RepoDigests = [`${image.split(':')[0]}@sha256:${digest}`];
  return JSON.stringify(r);
}

async function scan(target: string) {
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) }),
  );
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'running' ? undefined : true), { what: `scan of ${target}` });
}

/** The `ctem` command against this platform. */
const ctem = (args: string[]) => runCtem(args, platformEnv(platform));

const total = async (query: string) => {
  const { estimate } = await json<Total>(platform.api(`/api/v1/exposures?limit=1&${query}`));
  // Small counts are exact; the comparison with the snapshot needs them to be.
  expect(estimate.exact).toBe(true);
  return estimate.count;
};

beforeAll(async () => {
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV, CTEM_METRICS_SCHEDULE: '1d', CTEM_RISK_APPETITE: '6' });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

describe('program metrics on the platform', () => {
  it('creates the daily Schedule and takes the day’s snapshot at start-up; off removes the Schedule', async () => {
    const schedule = await platform.temporalClient.schedule.getHandle(METRICS_SCHEDULE_ID).describe();
    expect(schedule.spec.intervals?.[0]?.every).toBe(86_400_000);
    expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'metricsSnapshotWorkflow', taskQueue: `${platform.env.CTEM_TASK_QUEUE}-bulk` });
    const run = await platform.temporalClient.workflow.getHandle(`metrics-snapshot:${today}`).result();
    expect(run).toEqual({ day: today, scopes: ['*'] });
    const [row] = await platform.database.sql`select day, scope, metrics -> 'backlog' as backlog from metric_snapshots`;
    expect(row).toEqual({ day: today, scope: '*', backlog: { open: 0, act: 0, attend: 0, actAttend: 0, kev: 0, kevActAttend: 0, internetFacing: 0 } });

    await ensureMetricsSchedule(platform.temporalClient, platform.env.CTEM_TASK_QUEUE!, 'off');
    await expect(platform.temporalClient.schedule.getHandle(METRICS_SCHEDULE_ID).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    // Removing what is already gone is not an error (every start applies the setting).
    await ensureMetricsSchedule(platform.temporalClient, platform.env.CTEM_TASK_QUEUE!, 'off');
  });

  it('answers the overview and executive summary from the snapshot, agreeing with the exposure list', async () => {
    const context = await json<{ workflowId: string }>(platform.api('/api/v1/context?source=cmdb-csv&filename=cmdb.csv', { method: 'POST', body: CMDB }));
    await platform.temporalClient.workflow.getHandle(context.workflowId).result();
    await scan('shop/checkout:1');
    await scan('shop/admin:2');
    await eventually(async () => ((await total('tier=act')) > 0 ? true : undefined), { what: 'scored findings' });

    const taken = await json<{ day: string; scopes: string[] }>(platform.api('/api/v1/metrics/snapshots', { method: 'POST' }));
    expect(taken).toEqual({ day: today, scopes: ['*'] });
    const overview = await json<Overview>(platform.api('/api/v1/metrics/overview'));
    const [act, attend, kev, open] = await Promise.all([total('tier=act'), total('tier=attend'), total('kev=true'), total('status=open')]);
    expect(overview.snapshot?.day).toBe(today);
    expect(overview.backlog).toMatchObject({ open, act, attend, actAttend: act + attend, kev });
    expect(act + attend).toBeGreaterThan(0);
    expect(overview.appetite).toMatchObject({ appetite: 6, current: act + attend, status: act + attend > 6 ? 'above' : 'within' });
    // Both images carry both KEV CVEs: the newer listing (2022-04-04) first.
    expect(overview.newestKevHits.map((h) => [h.cve, h.kevDateAdded])).toEqual([
      ['CVE-2022-22965', '2022-04-04'],
      ['CVE-2022-22965', '2022-04-04'],
      ['CVE-2021-44228', '2021-12-10'],
      ['CVE-2021-44228', '2021-12-10'],
    ]);
    expect(new Set(overview.newestKevHits.map((h) => h.assetName))).toEqual(new Set(['shop/checkout:1', 'shop/admin:2']));
    expect(overview.trend).toEqual([expect.objectContaining({ day: today, actAttend: act + attend })]);

    const executive = await json<Executive>(platform.api('/api/v1/metrics/executive'));
    const checkoutUrgent = (await total('tier=act&asset=shop/checkout:1')) + (await total('tier=attend&asset=shop/checkout:1'));
    expect(executive.business?.services).toEqual([expect.objectContaining({ name: 'Checkout', annualRevenue: 12_500_000, urgent: checkoutUrgent })]);
    expect(executive.business?.revenueAtRisk).toBe(checkoutUrgent > 0 ? 12_500_000 : 0);

    // The CLI reads the same views.
    const asJson = await ctem(['metrics', 'overview', '--json']);
    expect(asJson.code, asJson.stderr).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual(overview);
    const human = await ctem(['metrics', 'overview']);
    expect(human.stdout).toContain(`exploitable backlog  ${act + attend} (act ${act}, attend ${attend}); in KEV ${kev}`);
    expect(human.stdout).toContain(`  CVE-2022-22965  added 2022-04-04`);
    const summary = await ctem(['metrics', 'executive']);
    expect(summary.code, summary.stderr).toBe(0);
    expect(summary.stdout).toContain(`  Checkout  ${checkoutUrgent}  12,500,000`);
    const wrong = await ctem(['metrics', 'overview', '--scope', 'nowhere']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('no scope named nowhere');
  }, 300_000);

  it('reads the snapshot series and refuses bad ranges and unknown scopes', async () => {
    const series = await json<{ scope: string; from: string; to: string; points: Array<{ day: string }> }>(platform.api(`/api/v1/metrics/snapshots?from=${today}&to=${today}`));
    expect(series).toMatchObject({ scope: '*', from: today, to: today, points: [{ day: today }] });
    const reversed = await platform.api(`/api/v1/metrics/snapshots?from=${today}&to=2000-01-01`);
    expect(reversed.status).toBe(400);
    expect(await reversed.json()).toEqual({ error: { code: 'invalid_request', message: 'from: must not be after to (2000-01-01)', details: { field: 'from' } } });
    const impossible = await platform.api('/api/v1/metrics/snapshots?from=2026-02-30');
    expect(((await impossible.json()) as { error: { details: { field: string } } }).error.details.field).toBe('from');
    const unknown = await platform.api('/api/v1/metrics/overview?scope=nowhere');
    expect(unknown.status).toBe(404);
    type Operation = { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> };
    const spec = await json<{ paths: Record<string, Record<string, Operation>> }>(platform.api('/api/v1/openapi.json'));
    // Every answer has a named schema.
    const named = (path: string, method: string) => spec.paths[path]?.[method]?.responses['200']?.content?.['application/json']?.schema.$ref;
    expect([named('/api/v1/metrics/overview', 'get'), named('/api/v1/metrics/executive', 'get'), named('/api/v1/metrics/snapshots', 'get'), named('/api/v1/metrics/snapshots', 'post')]).toEqual([
      '#/components/schemas/MetricsOverview',
      '#/components/schemas/MetricsExecutive',
      '#/components/schemas/MetricSeries',
      '#/components/schemas/MetricSnapshotTaken',
    ]);
  });

  it('shows the Overview and Executive pages with their figures and drawn charts', async () => {
    // Sixty earlier days, as a running program would have them: the backlog coming down to today's.
    await platform.database.sql`
      insert into metric_snapshots (day, scope, metrics, taken_at)
      select to_char(current_date - d, 'YYYY-MM-DD'), '*',
             jsonb_set(jsonb_set(jsonb_set(jsonb_set(s.metrics, '{trend,actAttend}', to_jsonb((s.metrics #>> '{trend,actAttend}')::int + d / 6)),
                                           '{trend,act}', to_jsonb((s.metrics #>> '{trend,act}')::int + d / 12)),
                                 '{trend,kev}', to_jsonb((s.metrics #>> '{trend,kev}')::int + d / 10)),
                       '{trend,internetFacing}', to_jsonb(d / 15)),
             now() - make_interval(days => d)
      from metric_snapshots s, generate_series(1, 60) d
      where s.day = ${today} and s.scope = '*'`;
    const overview = await json<Overview>(platform.api('/api/v1/metrics/overview'));
    const executive = await json<Executive>(platform.api('/api/v1/metrics/executive'));
    expect(overview.trend).toHaveLength(61);

    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!);
    await page.waitForSelector('canvas[data-drawn=true]');
    expect(await page.textContent('#fig-backlog .value')).toBe(String(overview.backlog!.actAttend));
    expect(await page.textContent('#fig-kev .value')).toBe(String(overview.backlog!.kev));
    expect(await page.locator('#kev-hits tbody tr').count()).toBe(overview.newestKevHits.length);
    expect(await page.getAttribute('#kev-hits tbody tr:first-child a', 'href')).toBe(`/console/exposures/${overview.newestKevHits[0]!.findingId}`);
    expect(await page.textContent('#appetite')).toContain('risk appetite of 6 open act + attend exposures');
    expect(await page.locator('canvas[data-drawn=true]').count()).toBe(1);
    await screenshot(page, 'overview');

    await page.click('header.top nav a[href="/console/executive"]');
    await page.waitForSelector('canvas[data-drawn=true]');
    expect(await page.textContent('#fig-revenue .value')).toBe('12.5M');
    expect(await page.locator('#services tbody tr').first().textContent()).toContain('Checkout');
    // No CVE records are imported here, so detection time has nothing to measure, and says so.
    expect(executive.mttd!.fromPublished.count).toBe(0);
    expect(await page.textContent('#fig-mttd .note')).toBe('no CVE published since the first scan has been found yet');
    expect(executive.trend).toHaveLength(61);
    await screenshot(page, 'executive');

    // A saved scope gets its own snapshot when one is taken from the page (today's estate row is
    // replaced, not doubled), and the pages show it when picked.
    await json(platform.api('/api/v1/scopes/checkout', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ selector: { businessServices: ['Checkout'] } }) }));
    await page.reload();
    await Promise.all([page.waitForURL((url) => url.pathname === '/console/executive'), page.click('#snapshot-note button')]);
    const rows = await platform.database.sql`select scope from metric_snapshots where day = ${today} order by scope`;
    expect(rows.map((r) => r.scope)).toEqual(['*', 'checkout']);
    await page.selectOption('#scope-picker select', 'checkout');
    await Promise.all([page.waitForURL((url) => url.search === '?scope=checkout'), page.click('#scope-picker button')]);
    expect(await page.textContent('h1')).toBe('Executive summary · checkout');
    expect(await page.textContent('#fig-revenue .value')).toBe('12.5M');
    expect(await page.textContent('#risk-trend')).toContain(`One day recorded so far (${today})`);
    await screenshot(page, 'executive-scope');
    const checkout = await json<Overview>(platform.api('/api/v1/metrics/overview?scope=checkout'));
    await page.goto(`${platform.apiUrl}/console?scope=checkout`);
    expect(await page.textContent('#fig-backlog .value')).toBe(String(checkout.backlog!.actAttend));
    expect(checkout.newestKevHits.map((h) => h.assetName)).toEqual(['shop/checkout:1', 'shop/checkout:1']);
    const unknown = await page.goto(`${platform.apiUrl}/console?scope=nowhere`);
    expect(unknown?.status()).toBe(404);
    expect(await page.textContent('[role=alert]')).toContain('There is no saved scope named “nowhere”.');
    await page.close();
  });

  it('says what to do before the first snapshot', async () => {
    await platform.database.sql`delete from metric_snapshots`;
    const page = await browser.newPage();
    await signIn(page, platform.apiUrl!, platform.env.CTEM_API_TOKEN!);
    expect(await page.textContent('#no-snapshot')).toContain('No snapshot yet: the first is taken at start-up');
    await page.goto(`${platform.apiUrl}/console/executive`);
    expect(await page.textContent('#no-snapshot')).toContain('No snapshot yet');
    expect(await page.textContent('#risk-trend')).toContain('No trend yet');
    await page.close();
  });
});
