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
//                                [--cache N] [--concurrency N] [--grace 15m] [--json]
//
// Exit 1 if an escalation is lost (not recorded within `--grace` after the last deadline) or
// duplicated, or if the starts ran past the first planned deadline. Progress goes to stderr.
//
// TEMPORAL_ADDRESS set: that server (namespace `default`, search attributes registered); otherwise a
// headless dev server started for the run. CTEM_WORKFLOW_BUNDLE: a workflow bundle built ahead.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { formatDuration } from '../config/duration.js';
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
  json: boolean;
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
      json: 'flag',
    },
    { workflows: 10_000, ack: 600_000, spread: 0, storm: false, startBudget: 0, cache: 1000, concurrency: 64, grace: 900_000, json: false },
  );
}

type Shape = 'follow-starts' | 'spread' | 'storm';

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.spread && options.storm) throw new Error('--spread and --storm are two different shapes: choose one');
  const shape: Shape = options.storm ? 'storm' : options.spread ? 'spread' : 'follow-starts';
  // Progress goes to stderr, with --json too: the JSON alone is on stdout.
  const say = (line: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
  let server: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    say('starting a headless Temporal dev server...');
    server = await startDevServer({ port: await freePort(), namespace: 'default' });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  await registerSearchAttributes(connection, 'default');
  const client = new Client({ connection, namespace: 'default' });
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

  installWorkerRuntime();
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    namespace: 'default',
    taskQueue,
    // A bundle built ahead (CTEM_WORKFLOW_BUNDLE, as for the platform's worker) saves the bundling.
    ...(process.env.CTEM_WORKFLOW_BUNDLE ? { workflowBundle: { codePath: process.env.CTEM_WORKFLOW_BUNDLE } } : { workflowsPath }),
    maxCachedWorkflows: options.cache,
    activities: {
      async openTicket({ ticketKey }: { ticketKey: string }) {
        opened++;
        return { sysId: ticketKey.padEnd(32, '0').slice(0, 32), number: `INC${String(opened).padStart(7, '0')}` };
      },
      async escalate({ ticketKey, slaDeadline }: { ticketKey: string; slaDeadline: string }) {
        const at = Date.now();
        const { workflowExecution, attempt } = Context.current().info;
        const id = workflowExecution?.workflowId ?? `remediation:${ticketKey}`;
        const seen = escalationsOf.get(id) ?? 0;
        escalationsOf.set(id, seen + 1);
        if (attempt > 1) retriedEscalations++;
        if (seen > 0) duplicates++;
        else lateness.push(at - Date.parse(slaDeadline));
        lastEscalationAt = at;
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
  const running = worker.run();

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
  await running;
  // Leave nothing waiting on a shared server.
  if (!server) {
    for (let i = 0; i < options.workflows; i++) {
      await client.workflow.getHandle(workflowId(i)).terminate('benchmark done').catch(() => {});
    }
  }
  await connection.close();
  await server?.stop();

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
