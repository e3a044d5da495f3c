import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { ScheduleNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHuntingSchedule, HUNTING_SCHEDULE_ID } from '../../platform/schedules.js';
import { imageReport } from '../support/reports.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// The hunting workbench through its fronts on the real platform: a hypothesis saved and asked
// through the API and the `ctem` command, the exposures it matches, a campaign started from it
// whose complete rescan no longer finds Log4Shell (and so removes it from the urgent backlog), and
// the daily schedule on the real Temporal server.

const root = resolve(import.meta.dirname, '..', '..');
const IMAGE = 'hunt/payments-api:1';
const LOG4J = 'org.apache.logging.log4j:log4j-core';

let platform: TestPlatform;
let registry: Server;

type Result = { id: number; matched: number; urgent: number; counts: Record<string, number>; trigger: string; campaignId: string | null };

const ctem = (args: string[]) => runCtem(args, platformEnv(platform));

const put = (name: string, body: unknown) =>
  platform.api(`/api/v1/hypotheses/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const openOnImage = async (issueId: string) =>
  (await platform.database.sql`
    select f.id, f.tier from findings f join assets a on a.id = f.asset_id where a.name = ${IMAGE} and f.status = 'open' and f.issue_id = ${issueId}`) as unknown as Array<{ id: number; tier: string | null }>;

beforeAll(async () => {
  // A registry's scan API: the image's rescan no longer has log4j-core (it was upgraded).
  registry = createServer((req, res) => {
    const m = /^\/reports\/(.+)\.json$/.exec(req.url ?? '');
    if (!m) {
      res.statusCode = 404;
      return res.end();
    }
    res.end(imageReport(decodeURIComponent(m[1]!), { withoutPackages: [LOG4J] }));
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV });
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/scans?filename=trivy.json&source=registry&complete=true&target=${encodeURIComponent(IMAGE)}`, { method: 'POST', body: imageReport(IMAGE) }),
  );
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), { what: 'the scan' });
  await eventually(async () => {
    const rows = await platform.database.sql`select count(*)::int as n from findings where tier is null`;
    return rows[0]!.n === 0 ? true : undefined;
  }, { what: 'the findings to be scored', timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await new Promise((r) => registry?.close(r));
});

describe('hypotheses API', () => {
  it('refuses a malformed hypothesis naming each field at fault', async () => {
    const res = await put('log4shell', { statement: 'x', query: { issueIds: ['log4shell'], runtime: 'maybe', colour: 'red' } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; details: Array<{ field: string; message: string }> } };
    expect(body.error.details.map((d) => d.field).sort()).toEqual(['query', 'query.issueIds.0', 'query.runtime']);
    expect(body.error.message).toContain('query: unknown field colour');
    const short = await put('log4shell', { statement: ' x ', query: {} });
    expect(short.status).toBe(400);
    expect(await short.text()).toMatch(/statement: say what the hypothesis asks/);
    expect((await platform.api('/api/v1/hypotheses/log4shell')).status).toBe(404);
  });

  it('saves, asks and lists a hypothesis; its exposures are exactly what it matched', async () => {
    const saved = await put('kev-on-hunt', { statement: 'Known-exploited vulnerabilities on the hunt images', query: { kev: true, scope: { assetNamePrefix: 'hunt/' } }, createdBy: 'alice' });
    expect(saved.status).toBe(200);
    const kev = [...(await openOnImage('CVE-2021-44228')), ...(await openOnImage('CVE-2022-22965'))];
    expect(kev).toHaveLength(2);

    const run = await json<Result>(platform.api('/api/v1/hypotheses/kev-on-hunt/run', { method: 'POST' }));
    expect(run).toMatchObject({ matched: 2, urgent: kev.filter((f) => f.tier === 'act' || f.tier === 'attend').length, trigger: 'api' });
    expect(run.urgent).toBeGreaterThan(0);
    expect(run.counts.assets).toBe(1);

    const exposures = await json<{ estimate: { count: number; exact: boolean }; next: string | null; items: Array<{ id: number; issueId: string; kev: boolean }> }>(platform.api('/api/v1/hypotheses/kev-on-hunt/exposures?limit=10'));
    expect(exposures.estimate).toEqual({ count: 2, exact: true });
    expect(exposures.next).toBeNull();
    expect(exposures.items.map((e) => e.id).sort()).toEqual(kev.map((f) => Number(f.id)).sort());
    expect(exposures.items.every((e) => e.kev)).toBe(true);

    const detail = await json<{ words: string[]; latest: Result; createdBy: string }>(platform.api('/api/v1/hypotheses/kev-on-hunt'));
    expect(detail).toMatchObject({ createdBy: 'alice', latest: { id: run.id }, words: ['in CISA KEV', 'asset name starting hunt/'] });
    const results = await json<{ items: Result[] }>(platform.api('/api/v1/hypotheses/kev-on-hunt/results'));
    expect(results.items.map((r) => r.id)).toEqual([run.id]);
    expect((await platform.api('/api/v1/hypotheses/no-such/run', { method: 'POST' })).status).toBe(404);

    // Every route is in the OpenAPI document, with named schemas.
    const doc = await json<{ paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>> }>(platform.api('/api/v1/openapi.json'));
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/api/v1/hypotheses')).sort()).toEqual([
      '/api/v1/hypotheses', '/api/v1/hypotheses/{name}', '/api/v1/hypotheses/{name}/campaign', '/api/v1/hypotheses/{name}/campaigns',
      '/api/v1/hypotheses/{name}/exposures', '/api/v1/hypotheses/{name}/results', '/api/v1/hypotheses/{name}/run',
    ]);
    expect(doc.paths['/api/v1/hypotheses/{name}/run']!.post!.responses['201']!.content!['application/json']!.schema).toEqual({ $ref: '#/components/schemas/HypothesisResult' });
    expect(doc.paths['/api/v1/hypotheses/{name}']!.put!.responses['200']!.content!['application/json']!.schema).toEqual({ $ref: '#/components/schemas/Hypothesis' });
  });
});

describe('ctem hypotheses', () => {
  it('saves, runs, lists and shows with --json, and names a missing or malformed parameter', async () => {
    const saved = await ctem(['hypotheses', 'save', 'log4shell-hunt', '--statement', 'Log4Shell on the hunt images', '--query', '{"issueIds":["CVE-2021-44228"],"scope":{"assetNamePrefix":"hunt/"}}', '--json']);
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    expect(JSON.parse(saved.stdout)).toMatchObject({ name: 'log4shell-hunt', createdBy: 'cli' });

    const run = await ctem(['hypotheses', 'run', 'log4shell-hunt', '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ matched: 1, trigger: 'cli' });

    const list = await ctem(['hypotheses', 'list', '--json']);
    const items = (JSON.parse(list.stdout) as { items: Array<{ name: string; latest: Result | null }> }).items;
    expect(items.find((h) => h.name === 'log4shell-hunt')?.latest).toMatchObject({ matched: 1 });

    const shown = await ctem(['hypotheses', 'show', 'log4shell-hunt']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('asks: issue CVE-2021-44228; asset name starting hunt/');
    expect(shown.stdout).toMatch(/now: 1 matched, \d urgent/);

    const noStatement = await ctem(['hypotheses', 'save', 'x', '--query', '{}']);
    expect(noStatement.code).toBe(2);
    expect(noStatement.stderr).toContain('--statement is missing');
    const badJson = await ctem(['hypotheses', 'save', 'x', '--statement', 'something', '--query', '{kev: true}']);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('--query is not JSON');
    const refused = await ctem(['hypotheses', 'save', 'x', '--statement', 'something', '--query', '{"tiers":["urgent"]}']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/query\.tiers\.0/);
    const unknown = await ctem(['hypotheses', 'show', 'no-such']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no hypothesis named no-such');
  });
});

describe('a campaign from a hypothesis', () => {
  it('rescans the hypothesis’s images; the rescan closes Log4Shell and the campaign reports it removed', async () => {
    await json(platform.api('/api/v1/sources/registry', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'report-url', config: { url: `http://127.0.0.1:${(registry.address() as AddressInfo).port}/reports/{target}.json`, owner: 'alex.romero', complete: true }, schedule: null }),
    }));
    const [log4j] = await openOnImage('CVE-2021-44228');
    const wasUrgent = log4j!.tier === 'act' || log4j!.tier === 'attend';
    expect(wasUrgent).toBe(true);

    const started = await platform.api('/api/v1/hypotheses/kev-on-hunt/campaign', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requestedBy: 'alice' }) });
    expect(started.status).toBe(202);
    const { campaignId, scope } = (await started.json()) as { campaignId: string; scope: string };
    expect(scope).toBe('hunt.kev-on-hunt');
    expect(campaignId).toMatch(/^campaign:hunt\.kev-on-hunt:[0-9a-f]{8}$/);
    const state = (await platform.temporalClient.workflow.getHandle(campaignId).result()) as { phase: string; hunt: { urgentBefore: number; urgentAfter: number; removed: number } };
    expect(state.phase).toBe('done');

    // The rescan was complete and had no log4j-core: the finding closed.
    expect(await openOnImage('CVE-2021-44228')).toEqual([]);
    const campaigns = await json<{ items: Array<{ campaignId: string; status: string; before: Result; after: Result; removal: Record<string, number> }> }>(
      platform.api('/api/v1/hypotheses/kev-on-hunt/campaigns'),
    );
    expect(campaigns.items).toHaveLength(1);
    const c = campaigns.items[0]!;
    expect(c).toMatchObject({ campaignId, status: 'completed', before: { trigger: 'campaign', matched: 2 }, after: { trigger: 'campaign-end', matched: 1 } });
    expect(c.removal).toEqual({ urgentBefore: c.before.urgent, removedClosed: 1, removedRescored: 0, removed: 1, leftHypothesis: 0, added: 0 });
    expect(state.hunt).toEqual({ urgentBefore: c.before.urgent, urgentAfter: c.after.urgent, removed: 1 });
    expect(c.after.urgent).toBe(c.before.urgent - 1);
  }, 120_000);
});

describe('the two documented examples on the example estate', () => {
  const examples = resolve(root, 'examples', 'context');
  const fixtures = resolve(root, 'test', 'fixtures');
  const completed = async (res: Promise<Response>) => {
    const { scanId } = await json<{ scanId: string }>(res);
    const scan = await eventually(async () => {
      const s = await json<{ status: string; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    }, { what: `scan ${scanId}` });
    expect(scan).toMatchObject({ status: 'completed' });
  };
  const matches = async (name: string) => {
  const { estimate } = await json<{ estimate: { count: number; exact: boolean } }>(platform.api(`/api/v1/hypotheses/${name}/exposures?limit=1`));
  expect(estimate.exact).toBe(true);
  return estimate.count;
};

  it('EOL kernels on internet-facing Linux hosts, and Log4Shell in runtime on internet-facing hosts', async () => {
    await completed(platform.api('/api/v1/scans?filename=trivy-payments-api.json', { method: 'POST', body: readFileSync(resolve(fixtures, 'trivy-payments-api.json')) }));
    await completed(platform.api('/api/v1/scans?filename=inspector.json', { method: 'POST', body: readFileSync(resolve(fixtures, 'aws-inspector2', 'aws_inspector2_many_vul.json')) }));
    for (const file of ['cmdb.csv', 'cloud-inventory.json', 'security-groups.json', 'edr-runtime.jsonl']) {
      await completed(platform.api(`/api/v1/context?filename=${file}`, { method: 'POST', body: readFileSync(resolve(examples, file)) }));
    }
    const docs = readFileSync(resolve(root, 'docs', 'hunting.md'), 'utf8');
    const example = (name: string) => JSON.parse(new RegExp(`ctem hypotheses save ${name} --statement '[^']+' --query '([^']+)'`).exec(docs)![1]!) as Record<string, unknown>;
    const eol = example('eol-kernels-internet');
    const log4shell = example('log4shell-runtime-internet');
    expect((await put('eol-kernels-internet', { statement: 'EOL kernels on internet-facing Linux', query: eol })).status).toBe(200);
    expect((await put('log4shell-runtime-internet', { statement: 'Log4Shell in runtime on internet-facing hosts', query: log4shell })).status).toBe(200);
    const { publiclyExposed: _exposed, ...log4shellAnywhere } = log4shell;
    expect((await put('log4shell-runtime', { statement: 'Log4Shell in runtime anywhere', query: log4shellAnywhere })).status).toBe(200);
    const { scope: _scope, ...eolAnywhere } = eol;
    expect((await put('eol-kernels', { statement: 'EOL kernels anywhere', query: eolAnywhere })).status).toBe(200);

    // The context is applied by a rescoring after each upload: EDR's evidence reaches the explanation.
    expect(await eventually(async () => ((await matches('log4shell-runtime')) === 1 ? 1 : undefined), { what: 'EDR evidence in the scoring', timeoutMs: 60_000 })).toBe(1);
    // log4j-core is loaded on app-01, which the internet does not reach; no host carries a kernel finding,
    // the kernel (linux 4.19.118) is in the Inspector image's six findings.
    expect(await matches('log4shell-runtime-internet')).toBe(0);
    expect(await matches('eol-kernels-internet')).toBe(0);
    expect(await matches('eol-kernels')).toBe(6);
  }, 120_000);
});

describe('the hunting schedule', () => {
  it('asks every hypothesis when it fires, and `off` removes it', async () => {
    const client = platform.temporalClient;
    const taskQueue = platform.env.CTEM_TASK_QUEUE!;
    await expect(client.schedule.getHandle(HUNTING_SCHEDULE_ID).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await ensureHuntingSchedule(client, taskQueue, '1d');
    // Idempotent: a second start updates the schedule it finds.
    await ensureHuntingSchedule(client, taskQueue, '12h');
    const handle = client.schedule.getHandle(HUNTING_SCHEDULE_ID);
    const described = await handle.describe();
    expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'huntingWorkflow' });
    expect(described.spec.intervals?.[0]?.every).toBe(12 * 3600 * 1000);

    await handle.trigger();
    const names = (await platform.database.sql`select name from hypotheses order by name`).map((r) => r.name as string);
    const scheduled = await eventually(async () => {
      const rows = await platform.database.sql`select hypothesis from hypothesis_results where trigger = 'schedule' order by hypothesis`;
      return rows.length >= names.length ? rows.map((r) => r.hypothesis as string) : undefined;
    }, { what: 'a scheduled result of every hypothesis', timeoutMs: 60_000 });
    expect(scheduled).toEqual(names);

    await ensureHuntingSchedule(client, taskQueue, 'off');
    await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  }, 90_000);
});
