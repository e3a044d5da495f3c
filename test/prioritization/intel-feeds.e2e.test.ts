import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntelFeedResult } from '../../workflows/intel-feed.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// Threat-intel feeds on the running platform: FIRST EPSS and CISA KEV fetched from a local HTTP
// server (as the schedules do), checked, activated or rejected; a rejected upstream file changes no
// active version and no finding. Then the same through the API and the `ctem intel` command.

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'intel-e2e-'));
const DAY = 86_400_000;

// Feed dates relative to today, so the default-like freshness bounds apply as in production.
const day = (offset: number) => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10);
const epssVersion = (offset: number) => day(offset);
const kevVersion = (offset: number) => day(offset).replaceAll('-', '.');

const sampleRows = readFileSync(join(fixtures, 'epss-sample.csv'), 'utf8').trim().split('\n').slice(2);
const sampleKev = JSON.parse(readFileSync(join(fixtures, 'kev-sample.json'), 'utf8')) as { vulnerabilities: Array<Record<string, unknown>> };

function epss(offset: number, rows = sampleRows): Buffer {
  return gzipSync(`#model_version:v2025.03.14,score_date:${day(offset)}T00:00:00Z\ncve,epss,percentile\n${rows.join('\n')}\n`);
}

function kev(offset: number, { cves = ['CVE-2021-44228', 'CVE-2022-22965'], count }: { cves?: string[]; count?: number } = {}): Buffer {
  const vulnerabilities = cves.map((cve) => sampleKev.vulnerabilities.find((v) => v.cveID === cve) ?? { cveID: cve, vendorProject: 'Example', product: 'Thing' });
  return Buffer.from(JSON.stringify({ catalogVersion: kevVersion(offset), dateReleased: `${day(offset)}T12:00:00.000Z`, count: count ?? cves.length, vulnerabilities }));
}

/** What the local "upstream" serves, by path; a number is an HTTP status. */
const upstream: Record<string, Buffer | number> = {};
let server: Server;
let base: string;
let platform: TestPlatform;

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = upstream[req.url ?? ''];
    if (body === undefined || typeof body === 'number') {
      res.writeHead(typeof body === 'number' ? body : 404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  platform = await startTestPlatform({
    CTEM_EPSS_URL: `${base}/epss/epss_scores-current.csv.gz`,
    CTEM_KEV_URL: `${base}/kev/known_exploited_vulnerabilities.json?token=secret`,
    CTEM_FEED_MAX_AGE_EPSS: '7d',
  });
});

afterAll(async () => {
  await platform?.stop();
  await new Promise((r) => server?.close(r));
});

const serveEpss = (body: Buffer | number) => (upstream['/epss/epss_scores-current.csv.gz'] = body);
const serveKev = (body: Buffer | number) => (upstream['/kev/known_exploited_vulnerabilities.json?token=secret'] = body);

/** Fetches a feed now (what the schedule does) and waits for the run's result. */
async function fetchFeed(kind: 'epss' | 'kev'): Promise<IntelFeedResult> {
  const { workflowId } = await json<{ workflowId: string }>(platform.api(`/api/v1/intel/feeds/${kind}/runs`, { method: 'POST' }));
  expect(workflowId).toMatch(new RegExp(`^intel-feed:${kind}:manual:`));
  return platform.temporalClient.workflow.getHandle(workflowId).result();
}

async function rescoreDone(result: { rescore?: { started: boolean; workflowId?: string } }) {
  expect(result.rescore).toMatchObject({ started: true, workflowId: expect.stringMatching(/^rescore:intel:/) });
  return platform.temporalClient.workflow.getHandle(result.rescore!.workflowId!).result();
}

interface FeedVersion {
  kind: string;
  version: string;
  status: string;
  rows: number;
  origin: string | null;
  validation: Array<{ check: string; ok: boolean; overridden?: boolean }>;
}

const feeds = async () => (await json<{ items: FeedVersion[]; attribution: string }>(platform.api('/api/v1/intel/feeds'))).items;
const active = async (kind: string) => (await feeds()).find((f) => f.kind === kind && f.status === 'active')?.version;

/** Every finding as scoring left it. */
const findingsState = () => platform.database.sql`select id, issue_id, tier, score, due_at, f.explanation from findings f order by id`;

const feedSources = async (issueId: string) => {
  const [row] = await platform.database.sql`select f.explanation from findings f where issue_id = ${issueId}`;
  return ((row?.explanation ?? []) as Array<{ source: string }>).map((f) => f.source);
};

describe('scheduled fetching', () => {
  it('creates one schedule per feed at start, running intelFeedWorkflow', async () => {
    for (const kind of ['epss', 'kev'] as const) {
      const description = await platform.temporalClient.schedule.getHandle(`intel-schedule:${kind}`).describe();
      expect(description.action).toMatchObject({ type: 'startWorkflow', workflowType: 'intelFeedWorkflow', args: [{ kind }] });
    }
  });

  it('fetches both feeds, activates them and re-scores the open findings', async () => {
    const res = await platform.api('/api/v1/scans?owner=alex.romero&target=shop/intel:1&filename=trivy-payments-api.json', {
      method: 'POST',
      body: readFileSync(join(fixtures, 'trivy-payments-api.json')),
    });
    const { scanId } = (await res.json()) as { scanId: string };
    await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), { what: 'scan' });
    expect((await feedSources('CVE-2021-44228')).some((source) => /^CISA KEV \d/.test(source))).toBe(false);

    serveEpss(epss(-3));
    serveKev(kev(-3));
    const e = await fetchFeed('epss');
    expect(e).toMatchObject({ kind: 'epss', outcome: 'activated', version: epssVersion(-3), rows: 6 });
    await rescoreDone(e);
    const k = await fetchFeed('kev');
    expect(k).toMatchObject({ kind: 'kev', outcome: 'activated', version: kevVersion(-3), rows: 2 });
    await rescoreDone(k);

    const sources = await feedSources('CVE-2021-44228');
    expect(sources).toEqual(expect.arrayContaining([`FIRST EPSS ${epssVersion(-3)}`, `CISA KEV ${kevVersion(-3)}`]));
    const listed = await json<{ items: FeedVersion[]; attribution: string }>(platform.api('/api/v1/intel/feeds'));
    expect(listed.attribution).toMatch(/FIRST EPSS.*CISA KEV/);
    // The recorded origin carries no query string (tokens travel there).
    expect(listed.items.find((f) => f.kind === 'kev')).toMatchObject({ status: 'active', origin: `${base}/kev/known_exploited_vulnerabilities.json` });
  });

  it('does nothing when upstream has not changed', async () => {
    const before = (await feeds()).length;
    expect(await fetchFeed('epss')).toMatchObject({ outcome: 'unchanged', version: epssVersion(-3) });
    expect(await fetchFeed('kev')).toMatchObject({ outcome: 'unchanged', version: kevVersion(-3) });
    expect((await feeds()).length).toBe(before);
  });

  it('rejects a bad upstream file without changing the active version or any finding', async () => {
    const before = await findingsState();
    serveKev(kev(-2, { cves: ['CVE-2021-44228'], count: 2 })); // truncated: says 2, lists 1
    serveEpss(epss(-2, sampleRows.slice(0, 2))); // two rows of six
    const k = await fetchFeed('kev');
    expect(k).toMatchObject({ outcome: 'rejected', version: kevVersion(-2) });
    expect(k.failed).toEqual([expect.stringMatching(/^count: says 2 but the catalog lists 1/), expect.stringMatching(/^row-count: /)]);
    expect(k.rescore).toBeUndefined();
    const e = await fetchFeed('epss');
    expect(e).toMatchObject({ outcome: 'rejected', version: epssVersion(-2), failed: [expect.stringMatching(/^row-count: 2 rows against 6/)] });

    expect(await active('kev')).toBe(kevVersion(-3));
    expect(await active('epss')).toBe(epssVersion(-3));
    expect(await findingsState()).toEqual(before);
    const rejected = (await feeds()).filter((f) => f.status === 'rejected').map((f) => `${f.kind} ${f.version}`);
    expect(rejected.sort()).toEqual([`epss ${epssVersion(-2)}`, `kev ${kevVersion(-2)}`]);
  });

  it('activates a corrected file of a rejected version, and re-scores with it', async () => {
    serveEpss(epss(-2, sampleRows.map((r) => r.replace(/^CVE-2021-3711,[^,]+/, 'CVE-2021-3711,0.61'))));
    const e = await fetchFeed('epss');
    expect(e).toMatchObject({ outcome: 'activated', version: epssVersion(-2) });
    // Only CVE-2021-3711's score differs from the active version: only its findings are re-scored.
    const rescored = await rescoreDone(e);
    const [changed] = await platform.database.sql<{ n: number }[]>`select count(*)::int as n from findings where issue_id = 'CVE-2021-3711' and status = 'open'`;
    const [open] = await platform.database.sql<{ n: number }[]>`select count(*)::int as n from findings where status = 'open'`;
    expect(changed!.n).toBeGreaterThan(0);
    expect(open!.n).toBeGreaterThan(changed!.n);
    expect(rescored).toMatchObject({ scored: changed!.n });
    expect(await active('epss')).toBe(epssVersion(-2));
    expect(await feedSources('CVE-2021-3711')).toContain(`FIRST EPSS ${epssVersion(-2)}`);
    const history = (await feeds()).filter((f) => f.kind === 'epss').map((f) => [f.version, f.status]);
    expect(history).toEqual([[epssVersion(-2), 'active'], [epssVersion(-3), 'retired']]);
  });

  it('fails the run when upstream answers 404, and changes nothing', async () => {
    serveKev(404);
    const before = await feeds();
    const err = await fetchFeed('kev').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const messages: string[] = [];
    for (let e: Error | undefined = err as Error; e; e = (e as { cause?: Error }).cause) messages.push(e.message);
    expect(messages.join(' / ')).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/kev\/known_exploited_vulnerabilities\.json answered 404/);
    expect(await feeds()).toEqual(before);
  });
});

describe('the API', () => {
  const post = (path: string, body?: Buffer) => platform.api(path, { method: 'POST', ...(body ? { body } : {}) });

  it('documents the feed routes in the OpenAPI document', async () => {
    const doc = await json<{ paths: Record<string, unknown> }>(platform.api('/api/v1/openapi.json'));
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/intel/{kind}',
        '/api/v1/intel/feeds',
        '/api/v1/intel/feeds/{kind}/{version}/promote',
        '/api/v1/intel/feeds/{kind}/{version}/shadow',
        '/api/v1/intel/feeds/{kind}/runs',
      ]),
    );
  });

  it('stages a version, shows its shadow diff, then promotes it', async () => {
    const version = epssVersion(-1);
    const staged = await post('/api/v1/intel/epss?stage=true&filename=epss-next.csv.gz', epss(-1, sampleRows.map((r) => r.replace(/^CVE-2021-44228,[^,]+/, 'CVE-2021-44228,0.02'))));
    expect(staged.status).toBe(200);
    expect(await staged.json()).toMatchObject({ kind: 'epss', version, rows: 6, status: 'staged', activated: false, origin: 'file:epss-next.csv.gz' });
    expect(await active('epss')).toBe(epssVersion(-2));

    const shadow = await json<{ version: string; feeds: { epss: string; kev: string }; scored: number; transitions: Record<string, number> }>(
      platform.api(`/api/v1/intel/feeds/epss/${version}/shadow`),
    );
    expect(shadow).toMatchObject({ version, feeds: { epss: version, kev: kevVersion(-3) } });
    expect(shadow.scored).toBe(6);
    expect((await platform.api('/api/v1/intel/feeds/epss/1999-01-01/shadow')).status).toBe(404);

    const promoted = await post(`/api/v1/intel/feeds/epss/${version}/promote`);
    expect(promoted.status).toBe(200);
    const body = (await promoted.json()) as { status: string; activated: boolean; rescore: { started: boolean; workflowId: string } };
    expect(body).toMatchObject({ status: 'active', activated: true });
    await rescoreDone(body);
    expect(await active('epss')).toBe(version);
    expect((await post('/api/v1/intel/feeds/epss/1999-01-01/promote')).status).toBe(404);
    expect((await post(`/api/v1/intel/feeds/epss/${epssVersion(-2)}/promote`)).status).toBe(422); // older than the active one
  });

  it('answers 422 with the checks for a rejected file, 400 for a malformed one or a bad parameter', async () => {
    const rejected = await post('/api/v1/intel/kev?filename=kev-short.json', kev(-1, { cves: ['CVE-2021-44228'] }));
    expect(rejected.status).toBe(422);
    const body = (await rejected.json()) as { status: string; validation: Array<{ check: string; ok: boolean }>; error: { code: string; message: string } };
    expect(body).toMatchObject({ status: 'rejected', error: { code: 'feed_rejected' } });
    expect(body.validation.filter((c) => !c.ok).map((c) => c.check)).toEqual(['row-count']);
    expect(body.error.message).toMatch(/^CISA KEV .* rejected: row-count: 1 rows against 2/);

    const malformed = await post('/api/v1/intel/epss?filename=bad.csv', Buffer.from('#model_version:v1,score_date:2026-11-02\ncve,epss,percentile\nCVE-1,2,3\n'));
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { code: 'invalid_feed', message: 'bad.csv: EPSS: line 3: invalid CVE id "CVE-1"' } });
    expect((await post('/api/v1/intel/kev?force=everything', kev(-1))).status).toBe(400);
    expect((await post('/api/v1/intel/kev?asOf=yesterday', kev(-1))).status).toBe(400);
    expect(await active('kev')).toBe(kevVersion(-3));
  });

  it('keeps the old form working: a gzipped EPSS body with ?gzip=true', async () => {
    const res = await post('/api/v1/intel/epss?gzip=true', epss(-1));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: epssVersion(-1), status: 'active', imported: false });
  });

  it('imports an old file on purpose with asOf and force, recording the overrides', async () => {
    const res = await post(`/api/v1/intel/kev?stage=true&asOf=${day(-40)}&force=not-older`, kev(-40));
    expect(res.status).toBe(200);
    const body = (await res.json()) as FeedVersion;
    expect(body.status).toBe('staged');
    expect(body.validation.find((c) => c.check === 'not-older')).toMatchObject({ ok: false, overridden: true });
    expect(await active('kev')).toBe(kevVersion(-3));
  });
});

describe('ctem intel', () => {
  const ctem = (args: string[]) => runCtem(['intel', ...args], platformEnv(platform));

  it('imports (kind detected), stages, promotes and lists', async () => {
    const file = join(tmp, 'epss_scores-today.csv.gz');
    writeFileSync(file, epss(0));
    const staged = await ctem(['import', file, '--stage-only']);
    expect(staged.stderr).toBe('');
    expect(staged.code).toBe(0);
    expect(staged.stdout).toContain(`FIRST EPSS ${epssVersion(0)}: staged`);
    expect(staged.stdout).toMatch(/ok\s+freshness/);

    const promoted = await ctem(['promote', 'epss', epssVersion(0)]);
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toContain(`FIRST EPSS ${epssVersion(0)}: active`);

    const list = await ctem(['list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`FIRST EPSS\\s+${epssVersion(0)}\\s+active`));
    expect(list.stdout).toMatch(new RegExp(`CISA KEV\\s+${kevVersion(-2).replaceAll('.', '\\.')}\\s+rejected\\s+1\\s+\\S+\\s+count,row-count`));
    expect(list.stdout).toContain('Data: FIRST EPSS');
  });

  it('exits 1 naming the failed checks when a file is rejected', async () => {
    const file = join(tmp, 'kev.json');
    writeFileSync(file, kev(0, { cves: ['CVE-2021-44228', 'CVE-2022-22965', 'CVE-2026-0001'] }));
    const { code, stdout, stderr } = await ctem(['import', file, '--as-of', new Date().toISOString()]);
    expect(code).toBe(1);
    expect(stdout).toContain(`CISA KEV ${kevVersion(0)}: rejected`);
    expect(stderr).toMatch(/^rejected: failed checks: kev-epss\n {2}kev-epss: 1 of 3 CISA KEV .* CVE-2026-0001\n\(to accept on purpose: --force kev-epss\)/);
    const missing = await ctem(['import', join(tmp, 'nope.json')]);
    expect(missing).toMatchObject({ code: 1, stderr: 'nope.json: file not found\n' });
  });
});
