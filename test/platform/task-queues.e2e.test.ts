import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type WorkerQueue } from '../../config/index.js';
import { createItsm } from '../../platform/connect.js';
import { moveSchedulesOffLegacyQueue, ensureHuntingSchedule, HUNTING_SCHEDULE_ID } from '../../platform/schedules.js';
import { createWorkers, type PlatformWorkers } from '../../platform/worker.js';
import { remediationWorkflow } from '../../workflows/remediation/workflow.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { runCtem } from '../support/scripts.js';

// One worker per task queue, each a Worker of its own: the platform's process polls only
// remediation; the test runs the bulk worker (and later a legacy one) beside it, on the same dev
// server, database and ServiceNow simulator. With the bulk worker down, scans wait and tickets
// still move; a workflow started on the single queue of earlier versions finishes once a worker
// polls that queue again.

const { EventType } = temporal.api.enums.v1;

let platform: TestPlatform;
let connection: NativeConnection;
let base: string;
const running: Array<{ workers: PlatformWorkers; done: Promise<void> }> = [];

async function startWorker(queues: WorkerQueue[]): Promise<{ workers: PlatformWorkers; done: Promise<void> }> {
  const config = loadConfig(platform.env);
  const serviceNow = { url: platform.serviceNowUrl, user: platform.simulator!.user, password: platform.simulator!.password };
  const workers = await createWorkers({
    config: { ...config, worker: { ...config.worker, queues } },
    connection,
    client: platform.temporalClient,
    database: platform.database,
    itsm: createItsm(config, { serviceNow }),
    serviceNowConnection: { baseUrl: serviceNow.url, user: serviceNow.user, password: serviceNow.password },
  });
  const entry = { workers, done: workers.run() };
  running.push(entry);
  return entry;
}

async function stopWorker(entry: { workers: PlatformWorkers; done: Promise<void> }): Promise<void> {
  entry.workers.shutdown();
  await entry.done;
  running.splice(running.indexOf(entry), 1);
}

async function upload(target: string): Promise<{ scanId: string; workflowId: string }> {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) });
  expect(res.status).toBe(202);
  return (await res.json()) as { scanId: string; workflowId: string };
}

const scanStatus = async (scanId: string) => (await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status;
const scanDone = (scanId: string) =>
  eventually(async () => {
    const status = await scanStatus(scanId);
    return status === 'running' ? undefined : status;
  }, { what: `scan ${scanId}`, timeoutMs: 60_000 });

async function openedTickets(assetName: string): Promise<TicketRow[]> {
  return eventually(
    async () => {
      const mine = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=200'))).items.filter((t) => t.asset.name === assetName);
      return mine.length && mine.every((t) => t.externalNumber) ? mine : undefined;
    },
    { what: `opened tickets on ${assetName}`, timeoutMs: 60_000 },
  );
}

async function incidentState(sysId: string): Promise<string> {
  return (await json<{ result: { state: string } }>(platform.serviceNow(`/api/now/table/incident/${sysId}`))).result.state;
}

const acknowledge = (key: string) =>
  platform.api(`/api/v1/tickets/${encodeURIComponent(key)}/acknowledge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 'alex.romero' }) });

beforeAll(async () => {
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV, CTEM_WORKER_QUEUES: 'remediation' });
  base = platform.env.CTEM_TASK_QUEUE!;
  connection = await NativeConnection.connect({ address: platform.temporalAddress });
});

afterAll(async () => {
  for (const entry of [...running]) await stopWorker(entry).catch(() => {});
  await connection?.close();
  await platform?.stop();
});

describe('a worker per task queue', () => {
  let waitingScan: { scanId: string; workflowId: string };

  it('runs an ingest on the bulk worker and the tickets it opens on the remediation worker', async () => {
    const bulk = await startWorker(['bulk']);
    expect(bulk.workers.workers.map((w) => w.taskQueue)).toEqual([`${base}-bulk`]);
    const { scanId, workflowId } = await upload('queues/split:1');
    expect(await scanDone(scanId)).toBe('completed');
    const tickets = await openedTickets('queues/split:1');

    const discovery = await platform.temporalClient.workflow.getHandle(workflowId).describe();
    expect(discovery.taskQueue).toBe(`${base}-bulk`);
    for (const t of tickets) {
      const ticket = await platform.temporalClient.workflow.getHandle(t.workflowId).describe();
      expect(ticket.taskQueue).toBe(`${base}-remediation`);
      expect(ticket.status.name).toBe('RUNNING');
    }
    await stopWorker(bulk);
  });

  it('keeps tickets moving while the bulk worker is down; the scans wait for it', async () => {
    const [ticket] = await openedTickets('queues/split:1');
    waitingScan = await upload('queues/waiting:1');

    // An acknowledgement is an Update the remediation worker answers, then writes to ServiceNow.
    const ack = await acknowledge(ticket!.key);
    expect(ack.status).toBe(200);
    expect(((await ack.json()) as { phase: string }).phase).toBe('awaiting-resolution');
    // The write-back is an activity of a worker that has just started: on a loaded two-core runner it can take more than 30 s.
    await eventually(async () => ((await incidentState(ticket!.externalSysId!)) === '2' ? true : undefined), { what: 'the incident In Progress', timeoutMs: 90_000 });

    // Nobody polls the bulk queue: seconds later (an ingest takes about that with a worker), the
    // scan's workflow has not even had its first task taken.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await scanStatus(waitingScan.scanId)).toBe('running');
    const history = await platform.temporalClient.workflow.getHandle(waitingScan.workflowId).fetchHistory();
    const types = history.events!.map((e) => e.eventType);
    expect(types).toContain(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED);
    expect(types).not.toContain(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  });

  it('finishes the waiting scan once a bulk worker is back', async () => {
    const bulk = await startWorker(['bulk']);
    expect(await scanDone(waitingScan.scanId)).toBe('completed');
    await openedTickets('queues/waiting:1');
    await stopWorker(bulk);
  });
});

describe('after the upgrade from one task queue', () => {
  it('finishes a workflow that was started on the former single queue, on a worker that polls it', async () => {
    // As the previous version started it: on CTEM_TASK_QUEUE itself.
    const snapshot = await platform.temporalClient.workflow.start('metricsSnapshotWorkflow', { workflowId: `metrics-snapshot:legacy-${base}`, taskQueue: base, args: [{ day: '2026-01-01' }] });
    const legacy = await startWorker(['legacy']);
    expect(legacy.workers.workers.map((w) => w.taskQueue)).toEqual([base]);
    expect(await snapshot.result()).toEqual({ day: '2026-01-01', scopes: ['*'] });
    expect((await snapshot.describe()).taskQueue).toBe(base);
    await stopWorker(legacy);
  });

  it('keeps serving a ticket workflow that lives on the former queue: Updates reach it and it writes to the ITSM', async () => {
    // Bulk up again to plan a ticket; its workflow is then re-created on the former queue, the one
    // a ticket opened before the upgrade still lives on (remediation workflows run for weeks).
    const bulk = await startWorker(['bulk']);
    await upload('queues/legacy:1');
    const [ticket] = await openedTickets('queues/legacy:1');
    await stopWorker(bulk);
    const handle = platform.temporalClient.workflow.getHandle(ticket!.workflowId);
    const started = (await handle.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
    const input = defaultPayloadConverter.fromPayload(started.input!.payloads![0]!) as Parameters<typeof remediationWorkflow>[0];
    await handle.terminate('re-created on the former single task queue');
    await platform.temporalClient.workflow.start(remediationWorkflow, { workflowId: ticket!.workflowId, taskQueue: base, args: [input] });
    expect((await handle.describe()).taskQueue).toBe(base);

    const legacy = await startWorker(['legacy']);
    const ack = await acknowledge(ticket!.key);
    expect(ack.status).toBe(200);
    expect(((await ack.json()) as { phase: string }).phase).toBe('awaiting-resolution');
    // The write-back is an activity of a worker that has just started: on a loaded two-core runner it can take more than 30 s.
    await eventually(async () => ((await incidentState(ticket!.externalSysId!)) === '2' ? true : undefined), { what: 'the incident In Progress', timeoutMs: 90_000 });
    const after = await handle.describe();
    expect(after.taskQueue).toBe(base);
    expect(after.status.name).toBe('RUNNING');
    await stopWorker(legacy);
  });

  it('points schedules still on the former queue at their workflow type’s queue', async () => {
    const client = platform.temporalClient;
    // As the previous version wrote a source's schedule and the hunting one.
    const sourceSchedule = `discovery-schedule:legacy-${base}`;
    await client.schedule.create({
      scheduleId: sourceSchedule,
      spec: { intervals: [{ every: '1d' }] },
      action: { type: 'startWorkflow', workflowType: 'sourceDiscoveryWorkflow', workflowId: `discovery-source:legacy-${base}`, taskQueue: base, args: [{ source: 'legacy' }] },
    });
    await client.schedule.create({
      scheduleId: HUNTING_SCHEDULE_ID,
      spec: { intervals: [{ every: '1d' }] },
      action: { type: 'startWorkflow', workflowType: 'huntingWorkflow', workflowId: 'hunting', taskQueue: base, args: [] },
    });
    const other = `other-${base}`;
    await client.schedule.create({
      scheduleId: other,
      spec: { intervals: [{ every: '1d' }] },
      action: { type: 'startWorkflow', workflowType: 'huntingWorkflow', workflowId: 'hunting-elsewhere', taskQueue: 'someone-elses-queue', args: [] },
    });
    try {
      // The ensure functions write their own schedule's queue...
      await ensureHuntingSchedule(client, base, '12h');
      expect((await client.schedule.getHandle(HUNTING_SCHEDULE_ID).describe()).action).toMatchObject({ taskQueue: `${base}-bulk` });
      // ...and start-up moves every other one still aimed at the former queue, leaving the rest alone.
      // (Listing schedules reads Temporal's visibility store, which may lag a creation by a moment.)
      const first = await eventually(async () => {
        const ids = await moveSchedulesOffLegacyQueue(client, base);
        return ids.length ? ids : undefined;
      }, { what: 'the former-queue schedule listed' });
      expect(first).toEqual([sourceSchedule]);
      const moved = await client.schedule.getHandle(sourceSchedule).describe();
      expect(moved.action).toMatchObject({ workflowType: 'sourceDiscoveryWorkflow', taskQueue: `${base}-bulk`, args: [{ source: 'legacy' }] });
      expect(moved.spec.intervals?.[0]?.every).toBe(86_400_000);
      expect((await client.schedule.getHandle(other).describe()).action).toMatchObject({ taskQueue: 'someone-elses-queue' });
      expect(await moveSchedulesOffLegacyQueue(client, base)).toEqual([]);
    } finally {
      for (const id of [sourceSchedule, HUNTING_SCHEDULE_ID, other]) await client.schedule.getHandle(id).delete().catch(() => {});
    }
  });
});

describe('ctem worker --queues', () => {
  it('polls the queues it names, and says so', async () => {
    const child = spawn(process.execPath, ['bin/ctem.js', 'worker', '--queues', 'bulk'], {
      cwd: resolve(import.meta.dirname, '..', '..'),
      env: { ...process.env, ...platform.env, CTEM_WORKER_QUEUES: 'both' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((res) => child.once('exit', res));
    try {
      await new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`worker did not start:\n${output}`)), 90_000);
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('CTEM platform is up')) {
            clearTimeout(timer);
            res();
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        void exited.then((code) => rej(new Error(`worker exited with ${code}:\n${output}`)));
      });
      // The flag wins over the environment's `both`.
      expect(output).toContain(`worker polls ${base}-bulk (bulk)\n`);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('refuses an unknown queue, and the flag on a process without a worker', async () => {
    const unknown = await runCtem(['worker', '--queues', 'bulk,fast']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('--queues: unknown queue "fast" (expected both, or a list of bulk, remediation, legacy)');
    const api = await runCtem(['api', '--queues', 'bulk']);
    expect(api.code).toBe(1);
    expect(api.stderr).toContain('api: --queues is an option of the worker');
  });
});
