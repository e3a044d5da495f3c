// Remediation benchmark: many golden-ticket workflows waiting on SLA timers, on a real Temporal dev
// server, with the real remediation workflow code and a worker configured like the platform's.
//   start     N remediation workflows started with signal-with-start, as mobilization starts them
//             (each with an acknowledgement deadline `--ack` after its own start);
//   timers    every workflow's acknowledgement timer fires and the escalation activity records the
//             moment it ran: lateness is that moment minus the deadline (p50, p99, max);
//   memory    the peak RSS of this process (worker + client), sampled every 100 ms, with the worker's
//             workflow cache bounded by `--cache` (maxCachedWorkflows, the platform uses 1000).
// The activities record and answer at once (ticket opened, manager notified, top of the chain): the
// benchmark measures the workflow engine, not ServiceNow or PostgreSQL.
//
//   npm run bench:remediation -- [--workflows N] [--ack 10m] [--cache N] [--concurrency N] [--grace 15m] [--json]
//
// TEMPORAL_ADDRESS set: that server (namespace `default`, search attributes registered); otherwise a
// headless dev server started for the run. CTEM_WORKFLOW_BUNDLE: a workflow bundle built ahead.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { freePort } from '../platform/ports.js';
import { parseBenchArgs } from './bench-args.js';
import { registerSearchAttributes, startDevServer, type DevServer } from '../platform/temporal.js';
import { installWorkerRuntime, workflowsPath } from '../platform/worker.js';
import { findingsChangedSignal, type TicketChange } from '../workflows/remediation/messages.js';
import { remediationWorkflow } from '../workflows/remediation/workflow.js';

interface Options {
  workflows: number;
  /** Acknowledgement deadline after each start, in ms. */
  ack: number;
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
    { workflows: 'count', ack: 'duration', cache: 'count', concurrency: 'count', grace: 'duration', json: 'flag' },
    { workflows: 10_000, ack: 600_000, cache: 1000, concurrency: 64, grace: 900_000, json: false },
  );
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const say = (line: string) => {
    if (!options.json) console.error(line);
  };
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

  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const lateness: number[] = [];
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
      async escalate({ slaDeadline }: { slaDeadline: string }) {
        lateness.push(Date.now() - Date.parse(slaDeadline));
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

  say(`starting ${options.workflows} remediation workflows (acknowledgement deadline ${options.ack / 1000}s after each start)...`);
  const startedAt = Date.now();
  let next = 0;
  const day = 86_400_000;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.workflows) {
        const i = next++;
        const now = Date.now();
        const dueAt = new Date(now + 14 * day).toISOString();
        await client.workflow.signalWithStart(remediationWorkflow, {
          workflowId: `remediation:bench-${run}-${i}`,
          taskQueue,
          args: [
            {
              ticketKey: `bench-${run}-${i}`,
              owner: 'bench.owner',
              tier: i % 3 === 0 ? 'act' : 'attend',
              findingCount: 1 + (i % 7),
              ackDueAt: new Date(now + options.ack).toISOString(),
              dueAt,
              escalationIntervalMs: 5 * day,
              ackSlaMs: options.ack,
            },
          ],
          signal: findingsChangedSignal,
          signalArgs: [{ findingCount: 1 + (i % 7), tier: i % 3 === 0 ? 'act' : 'attend', dueAt }],
        });
      }
    }),
  );
  const startSeconds = (Date.now() - startedAt) / 1000;
  say(`started in ${round(startSeconds)} s; waiting for every escalation timer...`);

  const waitUntil = Date.now() + options.ack + options.grace;
  while (lateness.length < options.workflows && Date.now() < waitUntil) {
    await new Promise((r) => setTimeout(r, 250));
  }
  clearInterval(sampler);
  const sorted = [...lateness].sort((a, b) => a - b);
  const result = {
    workflows: options.workflows,
    maxCachedWorkflows: options.cache,
    startSeconds: round(startSeconds, 2),
    startsPerSecond: round(options.workflows / startSeconds),
    ticketsOpened: opened,
    escalations: lateness.length,
    latenessMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN },
    peakRssMb: round(peakRss / 1024 / 1024),
    complete: lateness.length === options.workflows,
  };

  worker.shutdown();
  await running;
  // Leave nothing waiting on a shared server.
  if (!server) {
    for (let i = 0; i < options.workflows; i++) {
      await client.workflow.getHandle(`remediation:bench-${run}-${i}`).terminate('benchmark done').catch(() => {});
    }
  }
  await connection.close();
  await server?.stop();

  if (options.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(
      [
        `workflows                ${result.workflows}`,
        `start rate               ${result.startsPerSecond}/s (${result.startSeconds} s)`,
        `escalations recorded     ${result.escalations}`,
        `timer lateness p50       ${result.latenessMs.p50} ms`,
        `timer lateness p99       ${result.latenessMs.p99} ms`,
        `timer lateness max       ${result.latenessMs.max} ms`,
        `peak RSS                 ${result.peakRssMb} MB (maxCachedWorkflows ${result.maxCachedWorkflows})`,
      ].join('\n'),
    );
  }
  if (!result.complete) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
