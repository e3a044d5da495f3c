import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createCampaignActivities, type CampaignPublisher } from '../activities/campaign.js';
import { createDiscoveryActivities } from '../activities/discovery.js';
import { createHuntingActivities } from '../activities/hunting.js';
import { createEscalationDigestActivities } from '../activities/escalation-digest.js';
import { createIntelActivities } from '../activities/intel.js';
import { createMetricsActivities } from '../activities/metrics.js';
import { AUDIT_RETENTION_DEFAULT_MS, createAuditActivities } from '../activities/audit.js';
import { createMobilizationActivities } from '../activities/mobilization.js';
import { createPrioritizationActivities } from '../activities/prioritization.js';
import { createRescoreActivities } from '../activities/rescore.js';
import { createSourceActivities } from '../activities/sources.js';
import { createValidationActivities } from '../activities/validation.js';
import type { ValidationPublisher } from '../validation/runs.js';
import type { ServiceNowConnection } from '../discovery/context/index.js';
import type { Database } from '../db/client.js';
import type { Notifier } from '../mobilization/notifier.js';
import type { Itsm } from '../mobilization/itsm/index.js';
import { WORKER_CACHED_WORKFLOWS, type Config, type WorkerQueue } from '../config/index.js';
import { queueName, type QueueKind } from '../workflows/task-queues.js';
import { heartbeatWhileRunning } from './heartbeat.js';
import { formatLogEntry, reportedElsewhere, parseLogLevel, type LogFormat } from './logging.js';
import { setSdkMetricsAddress, type OperatorMetrics } from './telemetry.js';
import { bundleHasTracing, WORKFLOW_TRACING_MODULE, type Tracing } from './tracing.js';

const require = createRequire(import.meta.url);

export interface WorkerDeps {
  config: Pick<Config, 'sla' | 'temporal' | 'dataDir' | 'intel' | 'maxUploadBytes' | 'fallbackOwner' | 'validation' | 'worker'> & Partial<Pick<Config, 'auditRetentionMs'>>;
  connection: NativeConnection;
  client: Client;
  database: Database;
  /** The ITSM holding golden tickets. */
  itsm: Itsm;
  serviceNowConnection: ServiceNowConnection;
  /** Told about escalation digests and orphan reports (the Slack bot's DMs and posts); optional. */
  notifier?: Notifier;
  /** Told about campaign results (the Slack bot posts them); optional. */
  campaignPublisher?: CampaignPublisher;
  /** Told about validation results (the Slack bot posts them); optional. */
  validationPublisher?: ValidationPublisher;
  /** Activity timings and ingest counts for /metrics; optional. */
  operatorMetrics?: OperatorMetrics;
  /** OpenTelemetry: workflow and activity spans, when tracing is on. */
  tracing?: Tracing;
  /** Where the worker says what it decided about the workflow bundle. */
  log?: (line: string) => void;
}

export function createActivities({ config, client, database, itsm, serviceNowConnection, notifier, campaignPublisher, validationPublisher }: Omit<WorkerDeps, 'connection'>) {
  return {
    ...createDiscoveryActivities({ database, serviceNow: serviceNowConnection }),
    ...createSourceActivities({ database, reportsDir: join(config.dataDir, 'reports'), maxReportBytes: config.maxUploadBytes, ...(notifier ? { notifier } : {}) }),
    ...createCampaignActivities({ database, temporal: config.temporal, ...(campaignPublisher ? { publisher: campaignPublisher } : {}) }),
    ...createIntelActivities({ database, temporal: { client, taskQueue: config.temporal.taskQueue }, reportsDir: join(config.dataDir, 'reports'), intel: config.intel }),
    ...createRescoreActivities({ database }),
    ...createPrioritizationActivities({ database }),
    ...createMobilizationActivities({ database, itsm, temporal: { client, taskQueue: config.temporal.taskQueue }, sla: config.sla, ...(config.fallbackOwner ? { fallbackOwner: config.fallbackOwner } : {}) }),
    ...createEscalationDigestActivities({ database, ...(notifier ? { notifier } : {}) }),
    ...createMetricsActivities({ database }),
    ...createValidationActivities({ database, config: config.validation, temporal: config.temporal, ...(validationPublisher ? { publisher: validationPublisher } : {}) }),
    ...createHuntingActivities({ database }),
    ...createAuditActivities({ database, retentionMs: config.auditRetentionMs ?? AUDIT_RETENTION_DEFAULT_MS }),
  };
}

export const workflowsPath = require.resolve('../workflows/index.ts');

let runtimeInstalled = false;

/**
 * Must run before the first NativeConnection: the SDK's runtime is a process-wide singleton. With a
 * port, the SDK exports its own metrics (workflow task latency, slots, pollers) on loopback, and
 * /metrics appends them.
 */
export function installWorkerRuntime(options: { sdkMetricsPort?: number; logging?: { workerLevel: string; format: LogFormat } } = {}): void {
  if (runtimeInstalled) return;
  // At INFO the SDK prints the whole webpack build of the workflow bundle at every start.
  const format: LogFormat = options.logging?.format ?? (process.env.CTEM_LOG_FORMAT === 'json' ? 'json' : 'text');
  const level = parseLogLevel(options.logging?.workerLevel ?? process.env.CTEM_WORKER_LOG_LEVEL ?? process.env.CTEM_LOG_LEVEL);
  const bindAddress = options.sdkMetricsPort ? `127.0.0.1:${options.sdkMetricsPort}` : undefined;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      if (reportedElsewhere(entry) && level !== 'DEBUG' && level !== 'TRACE') return;
      (entry.level === 'ERROR' || entry.level === 'WARN' ? process.stderr : process.stdout).write(`${formatLogEntry(entry, format)}\n`);
    }),
    ...(bindAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress, countersTotalSuffix: true, useSecondsForDurations: true } } } } : {}),
  });
  setSdkMetricsAddress(bindAddress);
  runtimeInstalled = true;
}

/**
 * Where the workers' workflow code comes from, bundled once for every queue's worker (seconds of
 * CPU each otherwise). Tracing needs its interceptors inside the bundle: a bundle built ahead
 * without them (CTEM_WORKFLOW_BUNDLE) is set aside and workflows/ is bundled at start with them.
 * Without tracing, the bundle is the plain one, as before.
 */
async function workflowCode(bundle: string | undefined, tracing: boolean, log: (line: string) => void): Promise<NonNullable<WorkerOptions['workflowBundle']>> {
  if (bundle && (!tracing || bundleHasTracing(readFileSync(bundle, 'utf8')))) return { codePath: bundle };
  if (bundle) log(`tracing: the workflow bundle ${bundle} has no tracing interceptors; bundling workflows/ with them instead`);
  const workflowInterceptorModules = tracing ? [WORKFLOW_TRACING_MODULE] : [];
  return { code: (await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: Runtime.instance().logger })).code };
}

/** One Worker per polled task queue, run and stopped together. */
export interface PlatformWorkers {
  workers: Array<{ queue: WorkerQueue; taskQueue: string; worker: Worker }>;
  /** Runs every worker; resolves when all have stopped, rejects (after stopping the others) when one fails. */
  run(): Promise<void>;
  /** Starts the graceful shutdown of every running worker. */
  shutdown(): void;
  /** RUNNING while any worker runs. */
  getState(): ReturnType<Worker['getState']>;
}

/** The task queue a worker of that kind polls: `<base>-bulk`, `<base>-remediation`, or the legacy `<base>`. */
export function workerTaskQueue(base: string, queue: WorkerQueue): string {
  return queue === 'legacy' ? base : queueName(base, queue);
}

/**
 * A Worker per queue in config.worker.queues (CTEM_WORKER_QUEUES), all with every workflow and
 * activity (so any of them can finish what the single queue of earlier versions holds), each sized
 * for its queue's work. The legacy queue is sized like remediation: what lives on there longest
 * are ticket workflows.
 */
export async function createWorkers(deps: WorkerDeps): Promise<PlatformWorkers> {
  const { temporal, worker: workerConfig } = deps.config;
  const activities = createActivities(deps);
  const workflowBundle = await workflowCode(temporal.workflowBundle, !!deps.tracing, deps.log ?? (() => {}));
  // Tracing outermost, so the other interceptors and the activity run inside its span.
  const interceptors = { activity: [...(deps.tracing?.activityInterceptors ?? []), heartbeatWhileRunning, ...(deps.operatorMetrics ? [deps.operatorMetrics.activities] : [])] };
  const workers: PlatformWorkers['workers'] = [];
  for (const queue of workerConfig.queues) {
    const kind: QueueKind = queue === 'legacy' ? 'remediation' : queue;
    const slots = workerConfig.slots[kind];
    const taskQueue = workerTaskQueue(temporal.taskQueue, queue);
    const options: WorkerOptions = {
      connection: deps.connection,
      namespace: temporal.namespace,
      taskQueue,
      activities,
      maxConcurrentActivityTaskExecutions: slots.activities,
      maxConcurrentWorkflowTaskExecutions: slots.workflowTasks,
      // Bounded cache: memory stays flat however many remediation workflows wait on timers.
      maxCachedWorkflows: WORKER_CACHED_WORKFLOWS[kind],
      interceptors,
      ...(deps.tracing ? { sinks: deps.tracing.workflowSinks } : {}),
      workflowBundle,
    };
    workers.push({ queue, taskQueue, worker: await Worker.create(options) });
  }
  const shutdown = () => {
    for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  return {
    workers,
    async run() {
      const results = await Promise.allSettled(
        workers.map(({ worker }) =>
          worker.run().catch((err: unknown) => {
            shutdown();
            throw err;
          }),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    shutdown,
    getState: () => (workers.some(({ worker }) => worker.getState() === 'RUNNING') ? 'RUNNING' : (workers[0]?.worker.getState() ?? 'STOPPED')),
  };
}
