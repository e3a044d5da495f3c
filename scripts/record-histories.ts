// Records real event histories of every workflow type, for the replay test (test/platform/replay.test.ts):
// the workflows live for months, so the code of a later release must replay what this one wrote.
// Run it before changing workflow code that is already deployed, and commit what it writes under
// test/histories/<date>/; histories recorded earlier are never re-recorded or deleted.
//
//   npx tsx scripts/record-histories.ts [--out test/histories/YYYY-MM-DD]
//
// It starts an embedded PostgreSQL, a Temporal dev server and the platform (API, worker, ServiceNow
// simulator) on free ports, drives each scenario through the public API as a user would, then
// writes each workflow's history as JSON (the form `temporal workflow show --output json` prints).
import { createServer } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { loadConfig } from '../config/index.js';
import { startEmbeddedPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/ports.js';
import { startPlatform } from '../platform/start.js';
import { startDevServer } from '../platform/temporal.js';

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const root = resolve(import.meta.dirname, '..');
const out = resolve(values.out ?? join(root, 'test', 'histories', new Date().toISOString().slice(0, 10)));
const fixtures = join(root, 'test', 'fixtures');
const trivy = readFileSync(join(fixtures, 'trivy-payments-api.json'), 'utf8');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/**
 * The Trivy fixture as the report of another image, with only the given packages when named. Golden
 * tickets are one per remediation action (mobilization/actions.ts): the image's OS layer, one per
 * application manifest (log4j-core and spring-beans share `app/lib`), one mitigation per package
 * with no fix; a scenario that needs a ticket of its own gets an image of its own.
 */
function imageReport(image: string, packages?: string[]): string {
  const r = JSON.parse(trivy);
  const digest = Buffer.from(image).toString('hex').padEnd(64, '0').slice(0, 64);
  r.Metadata.ImageID = `sha256:${digest}`;
  r.Metadata.RepoDigests = [`${image.split(':')[0]}@sha256:${digest}`];
  for (const result of r.Results) {
    result.Vulnerabilities = (result.Vulnerabilities ?? []).filter((v: { PkgName: string }) => !packages || packages.includes(v.PkgName));
  }
  return JSON.stringify(r);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ctem-histories-'));
  chmodSync(dir, 0o755);
  const stack: Array<() => Promise<unknown>> = [];
  try {
    // Feeds and a scanner report served over HTTP, as FIRST, CISA and a registry's scan API would.
    const files = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      if (path === '/epss.csv') return res.end(readFileSync(join(fixtures, 'epss-sample.csv')));
      if (path === '/kev.json') return res.end(readFileSync(join(fixtures, 'kev-sample.json')));
      const report = /^\/reports\/(.+)\.json$/.exec(path);
      if (report) return res.end(imageReport(decodeURIComponent(report[1]!)));
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    stack.push(() => new Promise((r) => files.close(r)));
    const filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

    const pg = await startEmbeddedPostgres(join(dir, 'postgres'), await freePort());
    stack.push(() => pg.stop());
    const temporal = await startDevServer({ port: await freePort(), namespace: 'default' });
    stack.push(() => temporal.stop());
    const token = 'record-histories';
    const platform = await startPlatform(
      loadConfig({
        PORT: '0',
        SERVICENOW_SIM_PORT: '0',
        CTEM_DATA_DIR: join(dir, 'data'),
        DATABASE_URL: pg.url,
        TEMPORAL_ADDRESS: temporal.address,
        CTEM_API_TOKEN: token,
        CTEM_EPSS_URL: `${filesUrl}/epss.csv`,
        CTEM_KEV_URL: `${filesUrl}/kev.json`,
        CTEM_FEED_MAX_AGE_EPSS: '3650d',
        CTEM_FEED_MAX_AGE_KEV: '3650d',
        CTEM_SLA_ACK: '3s',
        CTEM_ESCALATION_INTERVAL: '1s',
        CTEM_ESCALATION_DIGEST_WINDOW: '2s',
        CTEM_TICKET_RECONCILE_INTERVAL: '2s',
      }),
    );
    stack.push(() => platform.stop());
    const client = platform.temporalClient;
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const apiJson = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
      const res = await api(path, init);
      const text = await res.text();
      if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    };
    const basic = `Basic ${Buffer.from(`${platform.simulator!.user}:${platform.simulator!.password}`).toString('base64')}`;
    const serviceNow = (path: string, init: RequestInit = {}) =>
      fetch(`${platform.serviceNowUrl}${path}`, { ...init, headers: { authorization: basic, 'content-type': 'application/json', accept: 'application/json' } });

    const recorded: string[] = [];
    // Workflow code may read its own id (a campaign names its children after it): ids.json keeps it.
    const ids: Record<string, string> = {};
    mkdirSync(out, { recursive: true });
    async function record(name: string, workflowId: string) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      writeFileSync(join(out, `${name}.json`), JSON.stringify(JSON.parse(historyToJSON(history)), null, 1) + '\n');
      ids[`${name}.json`] = workflowId;
      writeFileSync(join(out, 'ids.json'), JSON.stringify(ids, null, 2) + '\n');
      recorded.push(`${name} (${history.events?.length ?? 0} events)`);
    }
    // An empty report is not taken as a complete scan unless it says so (`complete=true`).
    async function scan(target: string, body = imageReport(target), complete = false) {
      const { scanId, workflowId } = await apiJson<{ scanId: string; workflowId: string }>(
        `/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json${complete ? '&complete=true' : ''}`,
        { method: 'POST', body },
      );
      await until(`scan of ${target}`, async () => ((await apiJson<{ status: string }>(`/api/v1/scans/${scanId}`)).status === 'running' ? undefined : true));
      return workflowId;
    }
    type Ticket = { key: string; workflowId: string; externalSysId: string | null; action: string; fix: { component: string }; asset: { name: string }; state: string; escalationLevel: number };
    // A golden ticket is one remediation action on an asset: found by the image and the action
    // (each scenario's image holds only the packages of the one ticket it needs).
    const ticket = (target: string, action: 'manifest' | 'os-layer') =>
      until(`${action} ticket on ${target}`, async () => {
        const t = (await apiJson<{ items: Ticket[] }>(`/api/v1/tickets?limit=1000&action=${action}`)).items.find((x) => x.asset.name === target && x.action === action);
        return t?.externalSysId ? t : undefined;
      });
    const detail = (key: string) => apiJson<Ticket & { workflow: { phase: string; escalationLevel: number } }>(`/api/v1/tickets/${encodeURIComponent(key)}`);
    const LOG4J = 'org.apache.logging.log4j:log4j-core';
    const SPRING = 'org.springframework:spring-beans';
    /** The activities a recorded workflow scheduled, in order. */
    const activitiesOf = async (workflowId: string) =>
      ((await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).flatMap((e) => {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
        return name ? [name] : [];
      });

    // Threat intel fetched on demand: activated, then a re-score.
    for (const kind of ['epss', 'kev'] as const) {
      const { workflowId } = await apiJson<{ workflowId: string }>(`/api/v1/intel/feeds/${kind}/runs`, { method: 'POST' });
      await client.workflow.getHandle(workflowId).result();
      await record(`intel-feed-${kind}-activated`, workflowId);
    }

    // A scan: ingest, score, mobilize; the ladder climbs, the owner acknowledges from the API, then
    // resolves; a rescan that still finds the package re-opens, one without it verifies and closes.
    const ladder = 'history/ladder:1';
    await record('discovery-report', await scan(ladder, imageReport(ladder, [LOG4J])));
    const log4j = await ticket(ladder, 'manifest');
    await until('escalation to level 2', async () => ((await detail(log4j.key)).workflow.escalationLevel >= 2 ? true : undefined));
    await apiJson(`/api/v1/tickets/${encodeURIComponent(log4j.key)}/acknowledge`, { method: 'POST', body: JSON.stringify({ by: 'alex.romero', note: 'on it' }) });
    // Past the due date nothing else happens until resolution (due dates are days away).
    await sleep(2500);
    await apiJson(`/api/v1/tickets/${encodeURIComponent(log4j.key)}/resolve`, { method: 'POST', body: JSON.stringify({ by: 'alex.romero' }) });
    await until('resolved in the read model', async () => ((await detail(log4j.key)).state === 'resolved' ? true : undefined));
    await scan(ladder, imageReport(ladder, [LOG4J]));
    await until('re-opened', async () => ((await detail(log4j.key)).workflow.phase === 'awaiting-resolution' ? true : undefined));
    await apiJson(`/api/v1/tickets/${encodeURIComponent(log4j.key)}/resolve`, { method: 'POST', body: JSON.stringify({ by: 'alex.romero' }) });
    // The workflow's own phase: the read model may still say `resolved` from the first time.
    await until('resolved again', async () => ((await detail(log4j.key)).workflow.phase === 'verifying' ? true : undefined));
    await scan(ladder, imageReport(ladder, []), true);
    await client.workflow.getHandle(log4j.workflowId).result();
    await record('remediation-escalated-acknowledged-reopened-verified', log4j.workflowId);

    // ServiceNow's own changes, as webhooks: acknowledged (In Progress), reassigned, resolved.
    const webhooks = 'history/servicenow:1';
    await scan(webhooks, imageReport(webhooks, [SPRING]));
    const spring = await ticket(webhooks, 'manifest');
    const users = (await (await serviceNow('/api/now/table/sys_user?sysparm_query=user_name=jonas.weber')).json()) as { result: Array<{ sys_id: string }> };
    await serviceNow(`/api/now/table/incident/${spring.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '2' }) });
    await until('acknowledged by webhook', async () => ((await detail(spring.key)).workflow.phase === 'awaiting-resolution' ? true : undefined));
    await serviceNow(`/api/now/table/incident/${spring.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ assigned_to: users.result[0]!.sys_id }) });
    await until('reassigned', async () => ((await apiJson<{ owner: string }>(`/api/v1/tickets/${encodeURIComponent(spring.key)}`)).owner === 'jonas.weber' ? true : undefined));
    await sleep(2500); // a reconciliation read in between
    await serviceNow(`/api/now/table/incident/${spring.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '6' }) });
    await until('resolved by webhook', async () => ((await detail(spring.key)).workflow.phase === 'verifying' ? true : undefined));
    await record('remediation-servicenow-acknowledged-reassigned-resolved', spring.workflowId);

    // A risk acceptance that expires: the ticket re-opens (New) and escalation starts afresh.
    const risk = 'history/risk:1';
    await scan(risk, imageReport(risk, ['libssl1.1']));
    const libssl = await ticket(risk, 'os-layer');
    const expiresAt = new Date(Date.now() + 4000).toISOString();
    await apiJson(`/api/v1/tickets/${encodeURIComponent(libssl.key)}/risk-acceptance`, {
      method: 'POST',
      body: JSON.stringify({ requester: 'alex.romero', approver: 'jonas.weber', reason: 'compensating WAF rule until the maintenance window', expiresAt }),
    });
    await until('risk acceptance expired', async () => {
      const d = await detail(libssl.key);
      return d.workflow.phase === 'awaiting-acknowledgement' && d.workflow.escalationLevel >= 1 ? true : undefined;
    });
    await record('remediation-risk-accepted-expired-escalated', libssl.workflowId);

    // A later scan adds a finding to an open ticket's fix (another jar of the same library
    // directory, so the same manifest): the same workflow hears of it.
    const members = 'history/members:1';
    await scan(members, imageReport(members, [LOG4J]));
    const membersTicket = await ticket(members, 'manifest');
    await scan(members, imageReport(members, [LOG4J, SPRING]));
    await until('membership change applied', async () => {
      const s = await client.workflow.getHandle(membersTicket.workflowId).query<{ findingCount: number }>('status');
      return s.findingCount === 2 ? true : undefined;
    });
    await record('remediation-membership-changed', membersTicket.workflowId);

    // An image whose context will change below: its ticket exists before the context does.
    const incremental = 'history/incremental:1';
    await scan(incremental, imageReport(incremental, [LOG4J]));
    const incrementalTicket = await ticket(incremental, 'manifest');

    // A context document: ingest, then a re-score of what it changed (a new host, no findings) as a child.
    const cmdb = 'name,fqdn,owner,business_service,criticality,environment\nhistory-host,history-host.example.com,alex.romero,payments,critical,production\n';
    const contextUpload = await apiJson<{ scanId: string; workflowId: string }>('/api/v1/context?source=cmdb-csv&filename=cmdb.csv', { method: 'POST', body: cmdb });
    await client.workflow.getHandle(contextUpload.workflowId).result();
    await record('discovery-context', contextUpload.workflowId);
    await record('rescore-context', `rescore:context:${contextUpload.scanId}`);

    // Incremental rescoring (patch `incremental-rescore`): a context change that moves one image to
    // staging re-scores that image's findings only and re-plans its ticket; the same document again
    // changes nothing, and the rescore stops before mobilization.
    const staging = `name,kind,image,environment\n${incremental},container_image,${incremental},staging\n`;
    const rescoreOf = async (filename: string) => {
      const upload = await apiJson<{ scanId: string; workflowId: string }>(`/api/v1/context?source=cmdb-csv&filename=${filename}`, { method: 'POST', body: staging });
      await client.workflow.getHandle(upload.workflowId).result();
      const workflowId = `rescore:context:${upload.scanId}`;
      return { workflowId, result: await client.workflow.getHandle(workflowId).result(), activities: await activitiesOf(workflowId) };
    };
    const moved = await rescoreOf('staging.csv');
    if (!moved.activities.includes('rescoreChanged') || !moved.activities.includes('mobilizeAssets') || !(moved.result.changed! > 0)) {
      throw new Error(`rescore-incremental did not re-plan ${incrementalTicket.key}: ${JSON.stringify(moved)}`);
    }
    await record('rescore-incremental', moved.workflowId);
    const same = await rescoreOf('staging-again.csv');
    if (same.activities.join() !== 'rescoreChanged') throw new Error(`rescore-nothing-changed did more than score: ${JSON.stringify(same)}`);
    await record('rescore-nothing-changed', same.workflowId);

    // A pulled source run on demand, and a campaign over a scope that runs it per image.
    await apiJson('/api/v1/sources/registry', { method: 'PUT', body: JSON.stringify({ kind: 'report-url', config: { url: `${filesUrl}/reports/{target}.json`, owner: 'alex.romero' }, schedule: null }) });
    const run = await apiJson<{ workflowId: string }>('/api/v1/sources/registry/runs', { method: 'POST', body: JSON.stringify({ target: 'history/pulled:1' }) });
    await client.workflow.getHandle(run.workflowId).result();
    await record('source-discovery', run.workflowId);
    await apiJson('/api/v1/scopes/history', { method: 'PUT', body: JSON.stringify({ selector: { assetNamePrefix: 'history/' } }) });
    const campaign = await apiJson<{ workflowId: string }>('/api/v1/campaigns', { method: 'POST', body: JSON.stringify({ scope: 'history', hypothesis: 'Log4Shell CVE-2021-44228 in history images' }) });
    await client.workflow.getHandle(campaign.workflowId).result();
    await record('campaign', campaign.workflowId);
    // The campaign validated its scope after the rescoring (a child run named after it).
    await record('validation-campaign', `validation:history:${campaign.workflowId.split(':').pop()}`);

    // A hunting hypothesis asked by its daily schedule, and a campaign started from it (its result
    // recorded before and after).
    await apiJson('/api/v1/hypotheses/history-log4shell', { method: 'PUT', body: JSON.stringify({ statement: 'Log4Shell on the history images', query: { issueIds: ['CVE-2021-44228'], scope: { assetNamePrefix: 'history/' } } }) });
    await client.schedule.getHandle('hunting-schedule:daily').trigger();
    const huntingRun = await until('the scheduled hunting run', async () => {
      for await (const w of client.workflow.list({ query: `WorkflowType = 'huntingWorkflow' AND ExecutionStatus = 'Completed'` })) return w.workflowId;
      return undefined;
    });
    await record('hunting', huntingRun);
    const hunt = await apiJson<{ workflowId: string }>('/api/v1/hypotheses/history-log4shell/campaign', { method: 'POST', body: JSON.stringify({ requestedBy: 'history' }) });
    await client.workflow.getHandle(hunt.workflowId).result();
    await record('campaign-hypothesis', hunt.workflowId);

    // The weekly orphan report, on demand.
    await apiJson('/api/v1/reports/orphan-assets', { method: 'POST' });
    const [orphan] = await (async () => {
      const ids: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowType = 'orphanReportWorkflow'` })) ids.push(w.workflowId);
      return ids;
    })();
    await record('orphan-report', orphan!);

    // Still running: the ticket waiting on its acknowledgement, mid-ladder, as a deploy finds it.
    const waiting = 'history/waiting:1';
    await scan(waiting, imageReport(waiting, [LOG4J]));
    const waitingTicket = await ticket(waiting, 'manifest');
    await until('escalation to level 1', async () => ((await detail(waitingTicket.key)).workflow.escalationLevel >= 1 ? true : undefined));
    await record('remediation-running-escalated', waitingTicket.workflowId);

    // The round of the manager it was escalated to: one digest, then the run completes.
    const digest = client.workflow.getHandle('escalation-digest:jonas.weber');
    await until('an escalation round of jonas.weber', async () => ((await digest.describe()).status.name === 'COMPLETED' ? true : undefined));
    await record('escalation-digest', 'escalation-digest:jonas.weber');

    // The day's program-metric snapshot, started at start-up because the day had none.
    const snapshots: string[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowType = 'metricsSnapshotWorkflow'` })) snapshots.push(w.workflowId);
    const startup = snapshots.find((id) => /^metrics-snapshot:\d{4}-\d{2}-\d{2}$/.test(id));
    if (!startup) throw new Error(`no start-up metrics snapshot among ${JSON.stringify(snapshots)}`);
    await client.workflow.getHandle(startup).result();
    await record('metrics-snapshot', startup);

    console.log(`recorded into ${out}:\n  ${recorded.join('\n  ')}`);
  } finally {
    for (const undo of stack.reverse()) await undo().catch((err: Error) => console.error(`cleanup: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
