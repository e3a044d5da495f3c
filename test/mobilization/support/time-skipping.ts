import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { inject } from 'vitest';
// @ts-expect-error: a plain ES module script without type declarations
import { ensureTemporalTestServer } from '../../../scripts/ensure-temporal.mjs';
import { createApp } from '../../../api/app.js';
import { loadConfig } from '../../../config/index.js';
import type { Database } from '../../../db/client.js';
import type { DigestedEscalation, EscalationDigestNotice, Notifier } from '../../../mobilization/notifier.js';
import { createServiceNowSimulator, type ServiceNowSimulator } from '../../../mobilization/itsm/servicenow/simulator.js';
import { createJiraSimulator, type JiraSimulator } from '../../../mobilization/itsm/jira/simulator.js';
import { createItsm, type ItsmConnections } from '../../../platform/connect.js';
import { createWorkers, installWorkerRuntime } from '../../../platform/worker.js';
import { importStartupFeeds } from '../../../prioritization/feeds/import.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../../../workflows/search-attributes.js';
import { migratedTestDatabase, SAMPLE_FEEDS_ENV } from '../../support/platform.js';

// Temporal's time-skipping test server (a real server, provisioned by scripts/ensure-temporal.mjs):
// while every workflow waits on a timer it may jump to the next one, so SLAs of hours and days pass
// in moments. Time moves only inside `env.sleep()`; between sleeps it runs at its normal pace. The
// rest is real: the worker with every activity, a migrated PostgreSQL database, the API, and the
// ServiceNow simulator over HTTP with its webhooks. Activities read the real clock, workflows the
// server's: compare deadlines with the workflow's state, not with rows that activities stamp.

const INDEXED_TYPE = {
  KEYWORD: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DATETIME: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

export async function startTimeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  installWorkerRuntime();
  const path = (await ensureTemporalTestServer()) as string;
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
  // The test server knows no custom search attribute until told (and cannot list them).
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_KEYS.map((k) => [k.name, INDEXED_TYPE[k.type as keyof typeof INDEXED_TYPE]])),
  });
  return env;
}

/** Keeps every escalation digest, as the Slack notifier would post it once; can fail a few times first, as Slack may. */
export class RecordingNotifier implements Notifier {
  digests: EscalationDigestNotice[] = [];
  /** Deliveries that reached it, repeats included: the activity asks once per digest unless a delivery failed. */
  deliveries = 0;
  failuresLeft = 0;
  async escalationDigest(notice: EscalationDigestNotice): Promise<void> {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('Slack is down');
    }
    this.deliveries++;
    if (!this.digests.some((d) => d.id === notice.id)) this.digests.push(notice);
  }
  /** The digests that named a ticket, each with that ticket's line. */
  linesFor(ticketKey: string): Array<{ digest: EscalationDigestNotice; line: DigestedEscalation }> {
    return this.digests.flatMap((digest) => digest.escalations.filter((e) => e.ticketKey === ticketKey).map((line) => ({ digest, line })));
  }
  async orphanReport(): Promise<void> {}
}

export interface TimeSkippingPlatform {
  env: TestWorkflowEnvironment;
  database: Database;
  simulator: ServiceNowSimulator;
  /** The Jira simulator, with CTEM_ITSM=jira in the overrides, and its Basic authorization header. */
  jira?: { simulator: JiraSimulator; authorization: string };
  notifier: RecordingNotifier;
  /** The simulator's Basic authorization header, for calls to its Table API. */
  simulatorAuthorization: string;
  /** Points the simulator's webhook at the API again (after a test broke it). */
  restoreWebhook(): void;
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * A migrated database with the sample EPSS and KEV feeds active, for one or more time-skipping
 * platforms of a test file (each test's tickets are told apart by their image names).
 */
export async function preparedTestDatabase(): Promise<Database> {
  const database = await migratedTestDatabase();
  const config = loadConfig({ ...SAMPLE_FEEDS_ENV });
  // No finding is open yet, so no re-score is started: the client is never used.
  await importStartupFeeds(database, { client: undefined as never, taskQueue: '' }, config.intel, () => {});
  return database;
}

/**
 * The platform's API, worker and ServiceNow simulator on a time-skipping server of their own;
 * `overrides` configure it (SLAs). The database is the caller's (see preparedTestDatabase).
 */
export async function startTimeSkippingPlatform(database: Database, overrides: Record<string, string> = {}): Promise<TimeSkippingPlatform> {
  const stack: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const undo of stack.reverse()) await undo().catch(() => {});
  };
  try {
    const env = await startTimeSkippingEnvironment();
    stack.push(() => env.teardown());
    const apiToken = `token-${randomUUID()}`;
    const config = loadConfig({
      CTEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'ctem-data-')),
      CTEM_TASK_QUEUE: `test-${randomUUID()}`,
      CTEM_API_TOKEN: apiToken,
      // The bundle test/global-setup.ts built once for the run.
      CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
      // Everything here starts on the split queues: no poller on the former single queue.
      CTEM_WORKER_QUEUES: 'bulk,remediation',
      ...SAMPLE_FEEDS_ENV,
      ...overrides,
    });
    const temporal = { client: env.client, taskQueue: config.temporal.taskQueue, namespace: env.namespace ?? 'default' };
    const webhookSecret = randomUUID();

    const app = createApp({
      database,
      temporal,
      apiToken,
      serviceNowWebhookSecret: webhookSecret,
      reportsDir: join(config.dataDir, 'reports'),
      maxUploadBytes: config.maxUploadBytes,
      scanSlaMs: config.scanSlaMs,
      intel: { urls: config.intel.urls, maxAgeMs: config.intel.maxAgeMs },
      ...(config.itsm === 'jira' ? { jira: { webhookSecret, statusMap: config.jira.statusMap } } : {}),
    });
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    stack.push(() => new Promise<void>((res) => server.close(() => res())));
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const credentials = { user: 'admin', password: randomUUID() };
    const webhook = { url: `${apiUrl}/api/v1/webhooks/servicenow`, secret: webhookSecret };
    const simulator = createServiceNowSimulator({ credentials, webhook });
    const { url: serviceNowUrl } = await simulator.listen(0);
    stack.push(() => simulator.close());

    const connections: ItsmConnections = { serviceNow: { url: serviceNowUrl, ...credentials } };
    let jira: TimeSkippingPlatform['jira'];
    if (config.itsm === 'jira') {
      const jiraCredentials = { email: 'ctem-automation@example.com', apiToken: randomUUID() };
      const jiraSimulator = createJiraSimulator({
        credentials: jiraCredentials,
        webhook: { url: `${apiUrl}/api/v1/webhooks/jira`, secret: webhookSecret },
        // Platforms of one test file share the database, whose issue ids are unique: one id range each.
        firstIssueId: 10_001 + Math.floor(Math.random() * 1e6) * 1000,
      });
      const { url } = await jiraSimulator.listen(0);
      stack.push(() => jiraSimulator.close());
      connections.jira = { url, ...jiraCredentials, embedded: true };
      jira = { simulator: jiraSimulator, authorization: `Basic ${Buffer.from(`${jiraCredentials.email}:${jiraCredentials.apiToken}`).toString('base64')}` };
    }

    const notifier = new RecordingNotifier();
    const worker = await createWorkers({
      config: { ...config, temporal: { ...config.temporal, namespace: temporal.namespace } },
      connection: env.nativeConnection,
      client: env.client,
      database,
      itsm: createItsm(config, connections),
      serviceNowConnection: { baseUrl: serviceNowUrl, ...credentials },
      notifier,
    });
    const running = worker.run();
    stack.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });

    return {
      env,
      database,
      simulator,
      ...(jira ? { jira } : {}),
      notifier,
      simulatorAuthorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`,
      restoreWebhook: () => simulator.setWebhook(webhook),
      api: (path, init = {}) =>
        fetch(`${apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) } }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
