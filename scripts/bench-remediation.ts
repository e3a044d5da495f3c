// Remediation benchmark: many golden-ticket workflows waiting on SLA timers, on a real Temporal dev
// server, with the real remediation workflow code and a worker configured like the platform's.
//   start     N remediation workflows started with signal-with-start, as mobilization starts them,
//             each with an absolute acknowledgement deadline (`ackDueAt`) of one of three shapes:
//               default     `--ack` after the workflow's own start (deadlines follow the starts);
//               --spread D  spread uniformly over D, the first one at least `--ack` after the last
//                           start (starting does not overlap the deadlines);
//               --storm     one and the same deadline for all, at least `--ack` after the last start;
//             deadlines after the last start are planned before the first one, with `--start-budget`
//             (default 10 ms a workflow, at least 10 s) for the starts; the actual margin between
//             the last start and the first deadline is reported, and a start past it fails the run;
//   timers    every workflow's acknowledgement timer fires and the escalation activity records the
//             moment it ran: lateness is that moment minus the deadline (p50, p99, max); the storm
//             also reports its drain time (last escalation minus the common deadline);
//   losses    escalations recorded against expected (one a workflow), and duplicates: a workflow
//             escalated more than once (the activity stub tells them apart by workflow id);
//   memory    the peak RSS of this process (worker + client), sampled every 100 ms, with the worker's
//             workflow cache bounded by `--cache` (maxCachedWorkflows, the platform uses 1000).
// The activities record and answer at once (ticket opened, manager notified, top of the chain): the
// benchmark measures the workflow engine, not ServiceNow or PostgreSQL.
//
//   npm run bench:remediation -- [--workflows N] [--ack 10m] [--spread 1h | --storm] [--start-budget 100s]
//                                [--cache N] [--concurrency N] [--grace 15m] [--workers N] [--cluster] [--json]
//
//   --workers N  N worker processes poll the task queue (this one and N-1 forked ones, each with the
//                same cache bound); every escalation is reported to this process, so losses and
//                duplicates are counted across workers.
//   --cluster    the production shape's engine instead of the dev server: a real Temporal server on
//                PostgreSQL started as `ctem cluster` starts it (platform/cluster.ts, no API or
//                platform worker processes), in a temp dir removed afterwards. Needs the server
//                built (`npm run temporal-server:ensure`).
//
// Exit 1 if an escalation is lost (not recorded within `--grace` after the last deadline) or
// duplicated, or if the starts ran past the first planned deadline. Progress goes to stderr.
//
// TEMPORAL_ADDRESS set: that server (namespace `default`, search attributes registered); otherwise a
// headless dev server (or with --cluster a Temporal server on PostgreSQL) started for the run. CTEM_WORKFLOW_BUNDLE: a workflow bundle built ahead.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { formatDuration } from '../config/duration.js';
import { loadConfig } from '../config/index.js';
import { freeTemporalPorts, startCluster, type Cluster } from '../platform/cluster.js';
import { freePort } from '../platform/ports.js';
import { parseBenchArgs } from './bench-args.js';
import { registerSearchAttributes, startDevServer, type DevServer } from '../platform/temporal.js';
import { installWorkerRuntime, workflowsPath } from '../platform/worker.js';
import { findingsChangedSignal, type TicketChange } from '../workflows/remediation/messages.js';
import { remediationWorkflow } from '../workflows/remediation/workflow.js';

interface Options {
  workflows: number;
  /** Acknowledgement deadline after each start (default shape), or after the last start (spread, storm), in ms. */
  ack: number;
  /** Deadlines spread uniformly over this many ms (0: not this shape). */
  spread: number;
  /** One common deadline for every workflow. */
  storm: boolean;
  /** Time planned for the starts, in ms, when the deadlines follow the last start (0: 10 ms a workflow, at least 10 s). */
  startBudget: number;
  cache: number;
  concurrency: number;
  /** How long after the last deadline escalations are still waited for (then the run is incomplete). */
  grace: number;
  /** Worker processes polling the queue (this one included). */
  workers: number;
  /** A real Temporal server on PostgreSQL instead of the dev server. */
  cluster: boolean;
  json: boolean;
  /** Internal: run as a forked worker on this task queue and report escalations to the parent. */
  workerOf?: string;
}

function parseArgs(argv: string[]): Options {
  // The default deadline falls after the last start on a small machine, so lateness measures the
  // timers and not the backlog of starts.
  return parseBenchArgs<Options>(
    argv,
    {
      workflows: 'count',
      ack: 'duration',
      spread: 'duration',
      storm: 'flag',
      startBudget: 'duration',
      cache: 'count',
      concurrency: 'count',
      grace: 'duration',
      workers: 'count',
      cluster: 'flag',
      json: 'flag',
      workerOf: 'text',
    },
    { workflows: 10_000, ack: 600_000, spread: 0, storm: false, startBudget: 0, cache: 1000, concurrency: 64, grace: 900_000, workers: 1, cluster: false, json: false },
  );
}

type Shape = 'follow-starts' | 'spread' | 'storm';

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** What a worker's activities report: a ticket opened, or an escalation (with its attempt). */
type WorkerEvent = { type: 'opened' } | { type: 'escalated'; id: string; at: number; attempt: number; slaDeadline: string };

/** A worker with the benchmark's activities: they record and answer at once. */
async function createBenchWorker(address: string, namespace: string, taskQueue: string, cache: number, report: (event: WorkerEvent) => void): Promise<Worker> {
  installWorkerRuntime();
  let opened = 0;
  const tag = process.pid.toString(36);
  return Worker.create({
    connection: await NativeConnection.connect({ address }),
    namespace,
    taskQueue,
    // A bundle built ahead (CTEM_WORKFLOW_BUNDLE, as for the platform's worker) saves the bundling.
    ...(process.env.CTEM_WORKFLOW_BUNDLE ? { workflowBundle: { codePath: process.env.CTEM_WORKFLOW_BUNDLE } } : { workflowsPath }),
    maxCachedWorkflows: cache,
    activities: {
      async openTicket({ ticketKey }: { ticketKey: string }) {
        opened++;
        report({ type: 'opened' });
        return { sysId: ticketKey.padEnd(32, '0').slice(0, 32), number: `INC${tag}${String(opened).padStart(7, '0')}` };
      },
      async escalate({ ticketKey, slaDeadline }: { ticketKey: string; slaDeadline: string }) {
        const { workflowExecution, attempt } = Context.current().info;
        report({ type: 'escalated', id: workflowExecution?.workflowId ?? `remediation:${ticketKey}`, at: Date.now(), attempt, slaDeadline });
        return { notified: { userName: 'manager', name: 'Manager' }, topOfChainReached: true };
      },
      async recordTicketState() {},
      async syncTicket(_: { change: TicketChange }) {
        return { sequence: 0, state: '', assignedTo: '' };
      },
      async reconcileTicket() {
        return null;
      },
      async reassignTicket() {
        return { owner: null };
      },
    },
  });
}

/** A forked worker (`--workers N`): runs until the parent says stop, reporting every event to it. */
async function runForkedWorker(taskQueue: string, cache: number): Promise<void> {
  const send = (message: unknown) => process.send?.(message);
  const worker = await createBenchWorker(process.env.TEMPORAL_ADDRESS!, process.env.BENCH_NAMESPACE ?? 'default', taskQueue, cache, send);
  const stop = () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  process.on('message', (message) => message === 'stop' && stop());
  process.on('disconnect', stop);
  const running = worker.run();
  send('ready');
  await running;
  process.disconnect?.();
}

/** Starts N-1 more worker processes on the queue; resolves once each polls. */
async function forkWorkers(count: number, env: NodeJS.ProcessEnv, taskQueue: string, cache: number, onEvent: (event: WorkerEvent, worker: number) => void): Promise<ChildProcess[]> {
  const script = fileURLToPath(import.meta.url);
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      const child = fork(script, ['--worker-of', taskQueue, '--cache', String(cache)], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return new Promise<ChildProcess>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`a forked worker exited with code ${code} before it polled`)));
        child.on('message', (message) => {
          if (message === 'ready') {
            child.removeAllListeners('exit');
            resolve(child);
          } else onEvent(message as WorkerEvent, i + 1);
        });
      });
    }),
  );
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.workerOf) return runForkedWorker(options.workerOf, options.cache);
  if (options.spread && options.storm) throw new Error('--spread and --storm are two different shapes: choose one');
  const shape: Shape = options.storm ? 'storm' : options.spread ? 'spread' : 'follow-starts';
  // Progress goes to stderr, with --json too: the JSON alone is on stdout.
  const say = (line: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
  let server: DevServer | undefined;
  let cluster: Cluster | undefined;
  let clusterDir: string | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  let namespace = 'default';
  if (options.cluster) {
    if (address) throw new Error('--cluster starts its own Temporal server: unset TEMPORAL_ADDRESS');
    clusterDir = mkdtempSync(join(tmpdir(), 'ctem-bench-cluster-'));
    chmodSync(clusterDir, 0o755); // embedded PostgreSQL runs as its own user when started as root
    say('starting a Temporal server on PostgreSQL (the production shape)...');
    // Free ports throughout, so the benchmark runs beside a platform or a cluster on the defaults.
    const env: NodeJS.ProcessEnv = { ...process.env, CTEM_DATA_DIR: clusterDir, CTEM_PG_PORT: String(await freePort()), TEMPORAL_UI_PORT: String(await freePort()), SERVICENOW_SIM_PORT: String(await freePort()) };
    delete env.DATABASE_URL;
    cluster = await startCluster({ config: loadConfig(env), workers: 0, apis: 0, temporalPorts: await freeTemporalPorts(), log: (line) => say(`  [cluster] ${line}`) });
    address = cluster.temporalAddress;
    namespace = cluster.namespace;
  } else if (!address) {
    say('starting a headless Temporal dev server...');
    server = await startDevServer({ port: await freePort(), namespace: 'default' });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  await registerSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  const taskQueue = `bench-remediation-${randomUUID()}`;
  const run = randomUUID().slice(0, 8);
  const workflowId = (i: number) => `remediation:bench-${run}-${i}`;

  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  // Per workflow: the first escalation's lateness counts; any later one is a duplicate.
  const lateness: number[] = [];
  const escalationsOf = new Map<string, number>();
  let duplicates = 0;
  let retriedEscalations = 0;
  let lastEscalationAt = NaN;
  let opened = 0;
  // Escalations each worker process ran (0: this one), to show the work was shared.
  const byWorker = Array.from({ length: options.workers }, () => 0);
  const record = (event: WorkerEvent, worker = 0) => {
    if (event.type === 'escalated') byWorker[worker]!++;
    if (event.type === 'opened') {
      opened++;
      return;
    }
    const seen = escalationsOf.get(event.id) ?? 0;
    escalationsOf.set(event.id, seen + 1);
    if (event.attempt > 1) retriedEscalations++;
    if (seen > 0) duplicates++;
    else lateness.push(event.at - Date.parse(event.slaDeadline));
    lastEscalationAt = Math.max(Number.isNaN(lastEscalationAt) ? 0 : lastEscalationAt, event.at);
  };

  const worker = await createBenchWorker(address, namespace, taskQueue, options.cache, (event) => record(event));
  const running = worker.run();
  const forked = options.workers > 1
    ? await forkWorkers(options.workers - 1, { ...process.env, TEMPORAL_ADDRESS: address, BENCH_NAMESPACE: namespace }, taskQueue, options.cache, record)
    : [];
  if (forked.length) say(`${options.workers} workers polling ${taskQueue}`);

  // Spread and storm: deadlines planned before the first start, after the time budgeted for the starts.
  const startBudget = options.startBudget || Math.max(10_000, options.workflows * 10);
  const startedAt = Date.now();
  const firstPlanned = startedAt + startBudget + options.ack;
  const deadlineOf = (i: number, now: number) =>
    shape === 'storm' ? firstPlanned : shape === 'spread' ? firstPlanned + Math.floor((i * options.spread) / options.workflows) : now + options.ack;
  const lastPlanned = deadlineOf(options.workflows - 1, startedAt);
  say(
    shape === 'follow-starts'
      ? `starting ${options.workflows} remediation workflows (acknowledgement deadline ${formatDuration(options.ack)} after each start)...`
      : `starting ${options.workflows} remediation workflows (${formatDuration(startBudget)} budgeted); ` +
          (shape === 'storm'
            ? `one common deadline at ${new Date(firstPlanned).toISOString()}...`
            : `deadlines spread over ${formatDuration(options.spread)}, ${new Date(firstPlanned).toISOString()} to ${new Date(lastPlanned).toISOString()}...`),
  );
  const day = 86_400_000;
  let next = 0;
  let started = 0;
  let lastStartAt = startedAt;
  const startProgress = setInterval(() => say(`  ${started} of ${options.workflows} started`), 10_000);
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.workflows) {
        const i = next++;
        const now = Date.now();
        const ackDueAt = deadlineOf(i, now);
        // The resolution due date stays well after the acknowledgement deadline: that one alone is breached.
        const dueAt = new Date(Math.max(now + 14 * day, ackDueAt + day)).toISOString();
        await client.workflow.signalWithStart(remediationWorkflow, {
          workflowId: workflowId(i),
          taskQueue,
          args: [
            {
              ticketKey: `bench-${run}-${i}`,
              owner: 'bench.owner',
              tier: i % 3 === 0 ? 'act' : 'attend',
              findingCount: 1 + (i % 7),
              ackDueAt: new Date(ackDueAt).toISOString(),
              dueAt,
              escalationIntervalMs: 5 * day,
              ackSlaMs: options.ack,
            },
          ],
          signal: findingsChangedSignal,
          signalArgs: [{ findingCount: 1 + (i % 7), tier: i % 3 === 0 ? 'act' : 'attend', dueAt }],
        });
        started++;
        lastStartAt = Math.max(lastStartAt, Date.now());
      }
    }),
  );
  clearInterval(startProgress);
  const startSeconds = (lastStartAt - startedAt) / 1000;
  // Spread and storm: how long after the last start the first deadline fell (at least --ack unless over budget).
  const marginSeconds = shape === 'follow-starts' ? undefined : round((firstPlanned - lastStartAt) / 1000, 2);
  const startOverran = marginSeconds !== undefined && marginSeconds < 0;
  say(
    `started in ${round(startSeconds)} s` +
      (marginSeconds === undefined ? '' : `, first deadline ${marginSeconds} s after the last start${startOverran ? ' (STARTS OVERRAN THE DEADLINES: raise --start-budget)' : ''}`) +
      '; waiting for every escalation timer...',
  );

  const lastDeadline = shape === 'follow-starts' ? lastStartAt + options.ack : lastPlanned;
  const waitUntil = lastDeadline + options.grace;
  let lastProgress = Date.now();
  while (escalationsOf.size < options.workflows && Date.now() < waitUntil) {
    await new Promise((r) => setTimeout(r, 250));
    if (Date.now() - lastProgress >= 60_000) {
      lastProgress = Date.now();
      say(`  ${escalationsOf.size} of ${options.workflows} escalated, ${duplicates} duplicates, RSS ${round(process.memoryUsage().rss / 1024 / 1024)} MB`);
    }
  }
  // Duplicates come late (a retried or replayed escalation): a short watch after the last one.
  if (escalationsOf.size === options.workflows) await new Promise((r) => setTimeout(r, 5_000));
  clearInterval(sampler);
  const sorted = [...lateness].sort((a, b) => a - b);
  const escalated = escalationsOf.size;
  const result = {
    shape,
    workflows: options.workflows,
    ackSeconds: options.ack / 1000,
    ...(shape === 'spread' ? { spreadSeconds: options.spread / 1000 } : {}),
    maxCachedWorkflows: options.cache,
    engine: options.cluster ? 'temporal-server-postgresql' : server ? 'dev-server' : 'external',
    workers: options.workers,
    escalationsByWorker: byWorker,
    startSeconds: round(startSeconds, 2),
    startsPerSecond: round(options.workflows / startSeconds),
    ...(marginSeconds === undefined ? {} : { firstDeadlineAfterLastStartSeconds: marginSeconds, startOverran }),
    ticketsOpened: opened,
    escalationsExpected: options.workflows,
    escalations: escalated,
    lost: options.workflows - escalated,
    duplicates,
    retriedEscalations,
    latenessMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN },
    ...(shape === 'storm'
      ? { drainSeconds: escalated ? round((lastEscalationAt - firstPlanned) / 1000, 2) : NaN, drainPerSecond: escalated ? round(escalated / Math.max(0.001, (lastEscalationAt - firstPlanned) / 1000)) : NaN }
      : {}),
    peakRssMb: round(peakRss / 1024 / 1024),
    complete: escalated === options.workflows,
  };

  worker.shutdown();
  await Promise.all([running, ...forked.map((child) => new Promise((resolve) => (child.once('exit', resolve), child.send('stop'))))]);
  // Leave nothing waiting on a shared server.
  if (!server) {
    for (let i = 0; i < options.workflows; i++) {
      await client.workflow.getHandle(workflowId(i)).terminate('benchmark done').catch(() => {});
    }
  }
  await connection.close();
  await server?.stop();
  await cluster?.stop();
  if (clusterDir) rmSync(clusterDir, { recursive: true, force: true });

  if (options.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(
      [
        `deadlines                ${
          shape === 'storm'
            ? `storm: one common deadline, ${result.firstDeadlineAfterLastStartSeconds} s after the last start`
            : shape === 'spread'
              ? `spread over ${formatDuration(options.spread)}, the first ${result.firstDeadlineAfterLastStartSeconds} s after the last start`
              : `${formatDuration(options.ack)} after each start`
        }`,
        `engine                   ${result.engine}, ${result.workers} worker process${result.workers === 1 ? '' : 'es'}${result.workers > 1 ? ` (escalations run: ${result.escalationsByWorker.join(' / ')})` : ''}`,
        `workflows                ${result.workflows}`,
        `start rate               ${result.startsPerSecond}/s (${result.startSeconds} s)`,
        `escalations recorded     ${result.escalations} of ${result.escalationsExpected} (${result.lost} lost)`,
        `duplicate escalations    ${result.duplicates} (${result.retriedEscalations} retried attempts)`,
        `timer lateness p50       ${result.latenessMs.p50} ms`,
        `timer lateness p99       ${result.latenessMs.p99} ms`,
        `timer lateness max       ${result.latenessMs.max} ms`,
        ...(result.drainSeconds !== undefined ? [`storm drained in         ${result.drainSeconds} s (${result.drainPerSecond} escalations/s)`] : []),
        `peak RSS                 ${result.peakRssMb} MB (maxCachedWorkflows ${result.maxCachedWorkflows})`,
      ].join('\n'),
    );
  }
  if (!result.complete || result.duplicates > 0 || startOverran) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
