import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { ensureNamespace, freeTemporalPorts, startCluster, type Cluster } from '../../platform/cluster.js';
import { freePort } from '../../platform/ports.js';
import { ensureIntelFeedSchedule, intelScheduleId } from '../../platform/schedules.js';
import { registerSearchAttributes } from '../../platform/temporal.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { eventually, json } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// The production shape on a real Temporal server (on PostgreSQL, built by
// scripts/ensure-temporal-server.mjs): two workers, two APIs, each a separate supervised process.
// It needs the server built (minutes of Go, once) and starts seven processes, so it runs in
// `npm run test:cluster` only (CTEM_CLUSTER_TEST=1); the default suite lists it as skipped.

const enabled = process.env.CTEM_CLUSTER_TEST === '1';
const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8');

/**
 * The Trivy fixture as an image with `packages` OS packages, each carrying the fixture's OS
 * vulnerabilities: a report large enough that its ingest takes seconds.
 */
function largeImageReport(image: string, packages: number): string {
  const r = JSON.parse(fixture);
  const digest = createHash('sha256').update(image).digest('hex');
  r.ArtifactName = image;
  r.Metadata.ImageID = `sha256:${digest}`;
  r.Metadata.RepoDigests = [`${image.split(':')[0]}@sha256:${digest}`];
  const os = r.Results[0];
  const base = os.Vulnerabilities as Array<Record<string, unknown>>;
  os.Vulnerabilities = Array.from({ length: packages }, (_, i) => base.map((v) => ({ ...v, PkgName: `pkg-${i}-${String(v.PkgName)}` }))).flat();
  return JSON.stringify(r);
}

describe.runIf(enabled)('ctem cluster on a real Temporal server', () => {
  let cluster: Cluster;
  let dataDir: string;
  let sql: postgres.Sql;
  let connection: Connection;
  let client: Client;
  const api = (i: number, path: string, init: RequestInit = {}) =>
    fetch(`${cluster.apiUrls[i]}${path}`, { ...init, headers: { authorization: `Bearer ${cluster.apiToken}`, ...(init.headers ?? {}) } });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ctem-cluster-'));
    chmodSync(dataDir, 0o755); // the embedded PostgreSQL runs as the postgres user
    const env: Record<string, string> = {
      CTEM_DATA_DIR: dataDir,
      CTEM_PG_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      SERVICENOW_SIM_PORT: String(await freePort()),
      CTEM_VALIDATION_SCHEDULE: 'off',
      CTEM_VALIDATION_AFTER_RESCORE: 'false',
      CTEM_METRICS_SCHEDULE: 'off',
      CTEM_HUNTING_SCHEDULE: 'off',
      // Tickets nobody acknowledges escalate after a minute: the escalation wave of the last test.
      CTEM_SLA_ACK: '60s',
      CTEM_ESCALATION_INTERVAL: '1h',
    };
    const started = Date.now();
    cluster = await startCluster({
      config: loadConfig(env),
      workers: 2,
      apis: 2,
      apiPorts: [await freePort(), await freePort()],
      temporalPorts: await freeTemporalPorts(),
      childEnv: env,
      log: (line) => console.log(`[cluster] ${line}`),
    });
    console.log(`[cluster] up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    sql = postgres(cluster.databaseUrl, { max: 2, onnotice: () => {} });
    connection = await Connection.connect({ address: cluster.temporalAddress });
    client = new Client({ connection, namespace: cluster.namespace });
  }, 600_000);

  afterAll(async () => {
    await connection?.close();
    await sql?.end();
    await cluster?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('creates the intel-feed schedules on the first start (search attributes visible before schedules)', async () => {
    for (const kind of ['epss', 'kev'] as const) {
      const description = await client.schedule.getHandle(intelScheduleId(kind)).describe();
      expect(description.action.type).toBe('startWorkflow');
    }
  });

  it('registers search attributes on a fresh namespace so that a schedule carrying one can be created at once', async () => {
    // Without the wait in registerSearchAttributes this fails with "Failed to create schedule":
    // the frontend serves attributes from a cache that learns them seconds later.
    for (let i = 0; i < 2; i++) {
      const namespace = `fresh-${i}-${Date.now()}`;
      await ensureNamespace(connection, namespace, 1);
      expect(await registerSearchAttributes(connection, namespace)).toContain('CtemPhase');
      await ensureIntelFeedSchedule(new Client({ connection, namespace }), 'ctem', 'epss', '1d');
      const description = await new Client({ connection, namespace }).schedule.getHandle(intelScheduleId('epss')).describe();
      expect(description.action.type).toBe('startWorkflow');
    }
  });

  it.skipIf(!hasCorpus)(`ingests each scan uploaded through either API exactly once (${hasCorpus ? 'corpus' : corpusSkipReason})`, async () => {
    const reports = [corpusFile('scanners', 'defectdojo', 'trivy', 'kubernetes.json'), corpusFile('scanners', 'more', 'trivy-grype-same-image', 'trivy-results.json')];
    const scanIds: string[] = [];
    for (const [i, file] of reports.entries()) {
      const res = await api(i, `/api/v1/scans?${new URLSearchParams({ filename: basename(file), owner: 'alex.romero', target: `cluster/corpus-${i}:1` })}`, {
        method: 'POST',
        body: readFileSync(file),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      scanIds.push(((await res.json()) as { scanId: string }).scanId);
    }
    for (const [i, scanId] of scanIds.entries()) {
      // Read back through the other API: both serve the same platform.
      const scan = await eventually(
        async () => {
          const s = await json<{ status: string; error?: string }>(api(1 - i, `/api/v1/scans/${scanId}`));
          return s.status === 'running' ? undefined : s;
        },
        { what: `scan ${scanId}`, timeoutMs: 120_000 },
      );
      expect(scan.status, JSON.stringify(scan)).toBe('completed');
    }
    const rows = await sql<{ id: string; n: number }[]>`select id::text, count(*)::int as n from scans where id = any(${scanIds}) group by id`;
    expect(rows.map((r) => r.n)).toEqual([1, 1]);
    // One discovery run per scan, never a second one.
    for (const scanId of scanIds) {
      const runs = await client.workflow.count(`WorkflowId STARTS_WITH "discovery:" AND WorkflowId = "${(await workflowIdOf(scanId))}"`);
      expect(runs.count).toBe(1);
    }
  });

  async function workflowIdOf(scanId: string): Promise<string> {
    const [row] = await sql<{ workflow_id: string }[]>`select workflow_id from scans where id = ${scanId}`;
    return row!.workflow_id;
  }

  it('restarts a worker killed with SIGKILL mid-ingest, and the scan completes once', async () => {
    const image = 'cluster/large:1';
    const report = largeImageReport(image, 20_000);
    const res = await api(0, `/api/v1/scans?${new URLSearchParams({ owner: 'alex.romero', target: image })}`, { method: 'POST', body: report });
    expect(res.status, await res.clone().text()).toBe(202);
    const { scanId, workflowId } = (await res.json()) as { scanId: string; workflowId: string };

    // The worker that runs the ingest names itself in the pending activity (`<pid>@<host>`).
    const pid = await eventually(
      async () => {
        const d = await client.workflow.getHandle(workflowId).describe();
        const pending = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'ingestReport' && a.lastWorkerIdentity);
        return pending ? Number(pending.lastWorkerIdentity!.split('@')[0]) : undefined;
      },
      { what: 'the ingest activity on a worker', timeoutMs: 60_000, intervalMs: 100 },
    );
    const victim = cluster.workers.find((w) => w.pid() === pid);
    expect(victim, `worker pid ${pid} is one of the cluster's`).toBeDefined();
    const startsBefore = victim!.starts();
    const restarted = victim!.nextStart();
    process.kill(pid, 'SIGKILL');
    await restarted;
    expect(victim!.starts()).toBe(startsBefore + 1);

    // The lost attempt is retried (on either worker) after its heartbeat timeout.
    const scan = await eventually(
      async () => {
        const s = await json<{ status: string; findings?: number }>(api(1, `/api/v1/scans/${scanId}`));
        return s.status === 'running' ? undefined : s;
      },
      { what: `scan ${scanId} after the kill`, timeoutMs: 300_000, intervalMs: 1000 },
    );
    expect(scan.status, JSON.stringify(scan)).toBe('completed');
    const [count] = await sql<{ scans: number; findings: number }[]>`
      select (select count(*)::int from scans where id = ${scanId}) as scans,
             (select count(*)::int from findings f join assets a on a.id = f.asset_id where a.name = ${image}) as findings`;
    expect(count!.scans).toBe(1);
    // Every finding of the report once (80,002: 20,000 packages times four, and the two Java ones).
    const reported = (JSON.parse(report).Results as Array<{ Vulnerabilities?: unknown[] }>).reduce((n, r) => n + (r.Vulnerabilities?.length ?? 0), 0);
    expect(reported).toBe(80_002);
    expect(count!.findings).toBe(reported);

    // Its fixes become golden tickets once each (the OS layer, the Java libraries), each opened once
    // in ServiceNow, though the worker died under the run that found them.
    const tickets = await eventually(
      async () => {
        const all = await json<{ items: TicketRow[] }>(api(0, '/api/v1/tickets?limit=1000'));
        const mine = all.items.filter((t) => t.asset.name === image);
        return mine.length === 2 && mine.every((t) => t.externalNumber) ? all.items : undefined;
      },
      { what: 'two opened tickets for the large image', timeoutMs: 120_000, intervalMs: 1000 },
    );
    const numbers = tickets.map((t) => t.externalNumber).filter(Boolean);
    expect(new Set(numbers).size).toBe(numbers.length);
    const basic = `Basic ${Buffer.from(`${cluster.simulator!.user}:${cluster.simulator!.password}`).toString('base64')}`;
    const incidents = await json<{ result: Array<{ number: string }> }>(
      fetch(`${cluster.serviceNowUrl}/api/now/table/incident?sysparm_limit=10000`, { headers: { authorization: basic, accept: 'application/json' } }),
    );
    // Every incident in ServiceNow is a ticket's, and no ticket opened two.
    expect(incidents.result.map((i) => i.number).sort()).toEqual([...numbers].sort());
  }, 420_000);
  it('a worker killed in the middle of an escalation wave: every ticket escalated once, one work note each', async () => {
    const images = Array.from({ length: 16 }, (_, i) => `cluster/wave-${i}:1`);
    for (const [i, image] of images.entries()) {
      const res = await api(i % 2, `/api/v1/scans?${new URLSearchParams({ owner: 'alex.romero', target: image })}`, { method: 'POST', body: imageReport(image) });
      expect(res.status, await res.clone().text()).toBe(202);
    }
    const tickets = await eventually(
      async () => {
        const all = await json<{ items: TicketRow[] }>(api(1, '/api/v1/tickets?limit=1000'));
        const mine = all.items.filter((t) => images.includes(t.asset.name));
        return mine.length === 2 * images.length && mine.every((t) => t.externalSysId) ? mine : undefined;
      },
      { what: 'two opened tickets per image', timeoutMs: 240_000, intervalMs: 1000 },
    );
    const keys = tickets.map((t) => t.key);
    const escalated = async () => {
      const [row] = await sql<{ n: number }[]>`select count(distinct ticket_key)::int as n from escalations where ticket_key = any(${keys}) and level = 1`;
      return row!.n;
    };
    // Tickets were opened over a minute or so, so their deadlines pass one after another: a wave.
    const midWave = await eventually(async () => {
      const n = await escalated();
      return n > 0 && n < keys.length ? n : undefined;
    }, { what: 'the escalation wave under way', timeoutMs: 240_000, intervalMs: 100 });
    const victim = cluster.workers[0]!;
    const restarted = victim.nextStart();
    process.kill(victim.pid()!, 'SIGKILL');
    await restarted;
    console.log(`[cluster] killed ${victim.name} with ${midWave} of ${keys.length} tickets escalated`);

    await eventually(async () => ((await escalated()) === keys.length ? true : undefined), {
      what: 'every ticket escalated after the kill',
      timeoutMs: 300_000,
      intervalMs: 1000,
    });
    const sysIds = new Set(tickets.map((t) => t.externalSysId!));
    const notes = () =>
      cluster.simulator!.instance.records('sys_journal_field').filter((r) => r.element === 'work_notes' && r.value?.startsWith('Escalation level 1') && sysIds.has(r.element_id!));
    // The note follows the escalation's row: wait for all, then for any duplicate.
    await eventually(async () => (notes().length >= keys.length ? true : undefined), { what: 'every escalation work note', timeoutMs: 180_000, intervalMs: 1000 });
    await new Promise((r) => setTimeout(r, 3000));
    const perTicket = new Map<string, number>();
    for (const n of notes()) perTicket.set(n.element_id!, (perTicket.get(n.element_id!) ?? 0) + 1);
    expect([...perTicket.values()]).toEqual(keys.map(() => 1));
    const [rows] = await sql<{ n: number }[]>`select count(*)::int as n from escalations where ticket_key = any(${keys}) and level = 1`;
    expect(rows!.n).toBe(keys.length);
    // And still one ServiceNow incident per ticket.
    const incidents = cluster.simulator!.instance.records('incident').filter((r) => keys.includes(String(r.correlation_id)));
    expect(incidents).toHaveLength(keys.length);
  }, 900_000);
});
