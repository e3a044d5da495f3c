import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { importStartupFeeds } from '../prioritization/feeds/import.js';
import { createApp } from '../api/app.js';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { activePolicy, seedShippedPolicies } from '../prioritization/policy-store.js';
import type { Itsm, ItsmName } from '../mobilization/itsm/index.js';
import { createServiceNowSimulator, type ServiceNowSimulator } from '../mobilization/itsm/servicenow/simulator.js';
import { createJiraSimulator, type JiraSimulator } from '../mobilization/itsm/jira/simulator.js';
import type { SlackBot } from '../slack/bot.js';
import type { Config } from '../config/index.js';
import { connectApiTemporal, connectTemporal, connectWorkerTemporal, createItsm, type ItsmConnections } from './connect.js';
import { startEmbeddedPostgres } from './postgres.js';
import { ensureHuntingSchedule, ensureIntelFeedSchedule, ensureMetricsSchedule, ensureOrphanReportSchedule, ensureValidationSchedule, moveSchedulesOffLegacyQueue, startMetricsSnapshot } from './schedules.js';
import { dayOf, hasSnapshot } from '../metrics/snapshot.js';
import { registerSearchAttributes, startDevServer } from './temporal.js';
import { createWorkers, installWorkerRuntime } from './worker.js';
import { freePort, listenError, listenHttp } from './ports.js';
import { createOperatorMetrics, metricsEndpoint } from './telemetry.js';
import { addSecretsToRedact, createLogger, requestLog, urlPassword } from './logging.js';
import { activeTraceId, startTracing, type Tracing } from './tracing.js';

export interface Roles {
  api: boolean;
  worker: boolean;
}

export interface Platform {
  apiUrl?: string;
  apiToken: string;
  databaseUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  serviceNowUrl: string;
  /** Credentials of the ServiceNow simulator, when it runs. */
  simulator?: { user: string; password: string; instance: ServiceNowSimulator };
  /** Which ITSM holds golden tickets. */
  itsm: ItsmName;
  /** OpenTelemetry, when an OTLP endpoint is configured. */
  tracing?: Tracing;
  /** Jira's base URL and, when the embedded simulator runs, its credentials (CTEM_ITSM=jira). */
  jiraUrl?: string;
  jiraSimulator?: { email: string; apiToken: string; instance: JiraSimulator };
  database: Database;
  temporalClient: Client;
  stop(): Promise<void>;
}

interface Secrets {
  apiToken: string;
  webhookSecret: string;
  simulatorPassword: string;
}

/** Generated once per data directory, so restarts keep the same token and the simulator keeps working. */
export function loadSecrets(dataDir: string): Secrets {
  const file = join(dataDir, 'secrets.json');
  if (!existsSync(file)) {
    const secrets: Secrets = {
      apiToken: randomBytes(24).toString('base64url'),
      webhookSecret: randomBytes(24).toString('base64url'),
      simulatorPassword: randomBytes(12).toString('base64url'),
    };
    // Written aside then linked into place: processes starting together never read half a file,
    // and the first one to link wins.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
}

type Log = (line: string) => void;

/**
 * Brings the platform up on its embedded defaults (PostgreSQL, Temporal dev server, ServiceNow
 * simulator) unless the configuration points at real ones, then the API and/or the worker.
 * stop() undoes it in reverse order; all state is on disk, so the next start resumes.
 */
export async function startPlatform(config: Config, roles: Roles = { api: true, worker: true }, log: Log = () => {}): Promise<Platform> {
  const stack: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const undo of stack.reverse()) {
      await undo().catch((err: Error) => log(`shutdown: ${err.message}`));
    }
    stack.length = 0;
  };
  try {
    mkdirSync(config.dataDir, { recursive: true });
    const secrets = loadSecrets(config.dataDir);
    const apiToken = config.apiToken ?? secrets.apiToken;
    // No log line of this process prints these, whatever carries them.
    addSecretsToRedact([
      apiToken,
      secrets.webhookSecret,
      secrets.simulatorPassword,
      config.serviceNow.password,
      config.serviceNow.webhookSecret,
      config.jira.apiToken,
      config.jira.webhookSecret,
      config.temporal.apiKey,
      config.operatorMetrics.token,
      config.slack?.botToken,
      config.slack?.signingSecret,
      config.slack?.appToken,
      urlPassword(config.databaseUrl),
      ...Object.values(config.tracing?.headers ?? {}),
    ]);
    let tracing: Tracing | undefined;
    if (config.tracing) {
      tracing = startTracing(config.tracing, roles);
      const started = tracing;
      // Last to stop: what the shutdown itself traced is exported too.
      stack.push(() => started.shutdown());
      log(`tracing: spans go to ${config.tracing.url}`);
    }

    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      log('starting embedded PostgreSQL...');
      const pg = await startEmbeddedPostgres(join(config.dataDir, 'postgres'), config.embeddedPostgresPort || (await freePort()), { supervise: (event) => log(event) });
      stack.push(() => pg.stop());
      databaseUrl = pg.url;
      addSecretsToRedact([urlPassword(pg.url)]);
    }
    await migrateDatabase(databaseUrl);
    const database = connectDatabase(databaseUrl);
    stack.push(() => database.close());
    const operatorMetrics = createOperatorMetrics({ database });
    // Shipped policies the database lacks are added as shadow; which one is active never changes here.
    const shipped = await seedShippedPolicies(database.sql);
    const active = await activePolicy(database.sql);
    const beside = shipped.filter((v) => v !== active.version);
    if (beside.length) log(`policy ${active.version} is active; shipped beside it (shadow): ${beside.join(', ')}`);

    let temporalAddress = config.temporal.address;
    let temporalUiUrl: string | undefined;
    if (!temporalAddress) {
      log('starting Temporal dev server...');
      const server = await startDevServer({
        // 0 picks free ports, as PORT=0 does for the API (the dev server itself refuses 0).
        port: config.temporal.devServerPort || (await freePort()),
        uiPort: config.temporal.uiPort || (await freePort()),
        ...(config.temporal.devServerHttpPort ? { httpPort: config.temporal.devServerHttpPort } : {}),
        ...(config.temporal.devServerMetricsPort ? { metricsPort: config.temporal.devServerMetricsPort } : {}),
        namespace: config.temporal.namespace,
        dbFile: join(config.dataDir, 'temporal.sqlite'),
        // Workflows wait in its SQLite file: a crash is a restart, not an outage until someone notices.
        supervise: (event) => log(event),
      });
      stack.push(() => server.stop());
      temporalAddress = server.address;
      temporalUiUrl = server.uiUrl;
    }
    const temporal = await connectTemporal(config, temporalAddress, tracing?.clientInterceptors);
    stack.push(() => temporal.connection.close());
    const registered = await registerSearchAttributes(temporal.connection, config.temporal.namespace);
    if (registered.length) log(`registered search attributes: ${registered.join(', ')}`);
    await ensureOrphanReportSchedule(temporal.client, config.temporal.taskQueue, config.orphanReportCron);
    await ensureValidationSchedule(temporal.client, config.temporal.taskQueue, config.validation.schedule);
    await ensureHuntingSchedule(temporal.client, config.temporal.taskQueue, config.huntingSchedule);
    await ensureMetricsSchedule(temporal.client, config.temporal.taskQueue, config.metrics.schedule);
    // Trends exist from day one: today's snapshot is taken now when missing, not at the next midnight.
    if (config.metrics.schedule !== 'off' && !(await hasSnapshot(database.sql, dayOf(new Date())))) {
      await startMetricsSnapshot(temporal.client, config.temporal.taskQueue, dayOf(new Date()));
    }
    for (const kind of ['epss', 'kev'] as const) {
      if (config.intel.urls[kind]) await ensureIntelFeedSchedule(temporal.client, config.temporal.taskQueue, kind, config.intel.schedule);
    }
    // Schedules of a version with one task queue (the per-source ones among them) start on the split queues from now on.
    const moved = await moveSchedulesOffLegacyQueue(temporal.client, config.temporal.taskQueue);
    if (moved.length) log(`schedules moved to the split task queues: ${moved.join(', ')}`);

    // The ITSM client is known once the simulator runs, after the API (it needs the API's URL).
    let itsm: Itsm | undefined;
    let slackBot: SlackBot | undefined;
    if (!config.slack) {
      log('Slack bot: not configured (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET or SLACK_APP_TOKEN, SLACK_CHANNEL); running without it');
    } else if (roles.api) {
      const uiUrl = config.temporal.uiUrl ?? temporalUiUrl;
      // Loaded only when Slack is configured: Bolt and its HTTP stack take half a second to import.
      const { createSlackBot } = await import('../slack/bot.js');
      const bot = createSlackBot({
        config: config.slack,
        database,
        temporal: { client: temporal.client, taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace, ...(uiUrl ? { uiUrl } : {}) },
        itsm: () => itsm,
        log,
      });
      await bot.start();
      stack.push(() => bot.stop());
      slackBot = bot;
      log(`Slack bot: ${bot.mode === 'socket' ? 'connected in Socket Mode' : 'listening at /slack/events'}`);
    }

    let apiUrl: string | undefined;
    if (roles.api) {
      const apiTemporal = await connectApiTemporal(config, temporalAddress, tracing?.clientInterceptors);
      const logger = createLogger({ level: config.logging.level, format: config.logging.format });
      stack.push(() => apiTemporal.connection.close());
      const app = createApp({
        database,
        temporal: { client: apiTemporal.client, taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace, ...(temporalUiUrl ? { uiUrl: temporalUiUrl } : {}) },
        apiToken,
        serviceNowWebhookSecret: config.serviceNow.webhookSecret ?? secrets.webhookSecret,
        ...(config.itsm === 'jira' ? { jira: { webhookSecret: config.jira.webhookSecret ?? secrets.webhookSecret, statusMap: config.jira.statusMap } } : {}),
        reportsDir: join(config.dataDir, 'reports'),
        maxUploadBytes: config.maxUploadBytes,
        scanSlaMs: config.scanSlaMs,
        riskAppetite: config.metrics.riskAppetite,
        operatorMetrics,
        // Tracing first, so the request line below is written inside the request's span.
        observe: [...(tracing ? [tracing.http] : []), requestLog(logger, { slowMs: config.logging.slowRequestMs, traceId: activeTraceId })],
        ...(config.operatorMetrics.token ? { metricsToken: config.operatorMetrics.token } : {}),
        intel: { urls: config.intel.urls, maxAgeMs: config.intel.maxAgeMs, cveMinRecords: config.intel.cveMinRecords },
        ...(slackBot?.handle ? { slack: { handle: slackBot.handle } } : {}),
        ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
        ...(config.oidc ? { oidc: config.oidc } : {}),
      });
      if (config.oidc) log(`Console single sign-on: OpenID Connect provider ${config.oidc.issuer} (discovered at the first sign-in)`);
      const server = await listenHttp(app.fetch, config.port, config.host, 'the API', 'PORT');
      stack.push(() => new Promise<void>((res) => server.close(() => res())));
      apiUrl = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${(server.address() as AddressInfo).port}`;
    }

    let serviceNow: { url: string; user: string; password: string };
    let simulator: Platform['simulator'];
    if (config.serviceNow.url) {
      serviceNow = { url: config.serviceNow.url, user: config.serviceNow.user!, password: config.serviceNow.password! };
    } else {
      const credentials = { user: 'admin', password: secrets.simulatorPassword };
      const publicUrl = config.port === 0 && apiUrl ? apiUrl : config.publicUrl;
      const instance = createServiceNowSimulator({
        stateFile: join(config.dataDir, 'servicenow-simulator.json'),
        credentials,
        webhook: { url: `${publicUrl}/api/v1/webhooks/servicenow`, secret: config.serviceNow.webhookSecret ?? secrets.webhookSecret },
      });
      const { url } = await instance.listen(config.serviceNow.simulatorPort).catch((err: unknown) => {
        throw listenError(err, 'the ServiceNow simulator', 'SERVICENOW_SIM_PORT', '127.0.0.1', config.serviceNow.simulatorPort);
      });
      stack.push(() => instance.close());
      serviceNow = { url, ...credentials };
      simulator = { ...credentials, instance };
    }

    const connections: ItsmConnections = { serviceNow };
    let jiraSimulator: Platform['jiraSimulator'];
    if (config.itsm === 'jira') {
      if (config.jira.url) {
        connections.jira = { url: config.jira.url, email: config.jira.email!, apiToken: config.jira.apiToken!, embedded: false };
        if (!config.people && !config.serviceNow.url) log('Jira: neither CTEM_PEOPLE_FILE nor SERVICENOW_URL is set, so escalations have no managers to climb to');
      } else {
        const credentials = { email: 'ctem-automation@example.com', apiToken: secrets.simulatorPassword };
        const publicUrl = config.port === 0 && apiUrl ? apiUrl : config.publicUrl;
        const instance = createJiraSimulator({
          stateFile: join(config.dataDir, 'jira-simulator.json'),
          credentials,
          webhook: { url: `${publicUrl}/api/v1/webhooks/jira`, secret: config.jira.webhookSecret ?? secrets.webhookSecret },
        });
        const { url } = await instance.listen(config.jira.simulatorPort).catch((err: unknown) => {
          throw listenError(err, 'the Jira simulator', 'JIRA_SIM_PORT', '127.0.0.1', config.jira.simulatorPort);
        });
        stack.push(() => instance.close());
        connections.jira = { url, ...credentials, embedded: true };
        jiraSimulator = { ...credentials, instance };
        log(`Jira simulator: ${url}`);
      }
    }
    itsm = createItsm(config, connections);

    if (config.intel.epssFile || config.intel.kevFile || config.intel.cveRecords) {
      await importStartupFeeds(database, { client: temporal.client, taskQueue: config.temporal.taskQueue }, config.intel, log);
    }

    if (roles.worker) {
      installWorkerRuntime({ sdkMetricsPort: config.operatorMetrics.sdkPort ?? (await freePort()), logging: config.logging });
      const connection = await connectWorkerTemporal(config, temporalAddress);
      stack.push(() => connection.close());
      // Escalation DMs, orphan reports and campaign results go to Slack when it is configured.
      const slackNotifier = config.slack ? (await import('../slack/notifier.js')).createSlackNotifier(config.slack, database, log) : undefined;
      const worker = await createWorkers({
        config,
        connection,
        client: temporal.client,
        database,
        itsm: createItsm(config, connections),
        operatorMetrics,
        ...(tracing ? { tracing } : {}),
        log,
        serviceNowConnection: { baseUrl: serviceNow.url, user: serviceNow.user, password: serviceNow.password },
        ...(slackNotifier ? { notifier: slackNotifier, campaignPublisher: slackNotifier, validationPublisher: slackNotifier } : {}),
      });
      log(`worker polls ${worker.workers.map((w) => `${w.taskQueue} (${w.queue})`).join(', ')}`);
      const running = worker.run();
      stack.push(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
      running.catch((err: Error) => log(`worker stopped: ${err.message}`));
      if (!roles.api && config.operatorMetrics.workerPort) {
        const endpoint = metricsEndpoint(operatorMetrics, [apiToken, config.operatorMetrics.token]);
        const serveMetrics = (request: Request) => (new URL(request.url).pathname === '/metrics' ? endpoint(request) : new Response(null, { status: 404 }));
        const server = await listenHttp(serveMetrics, config.operatorMetrics.workerPort, config.host, 'the worker metrics endpoint', 'CTEM_WORKER_METRICS_PORT');
        stack.push(() => new Promise<void>((res) => server.close(() => res())));
        log(`worker metrics: http://${config.host}:${(server.address() as AddressInfo).port}/metrics`);
      }
    }

    return {
      ...(apiUrl ? { apiUrl } : {}),
      apiToken,
      databaseUrl,
      temporalAddress,
      ...(temporalUiUrl ? { temporalUiUrl } : {}),
      serviceNowUrl: serviceNow.url,
      ...(simulator ? { simulator } : {}),
      itsm: config.itsm,
      ...(tracing ? { tracing } : {}),
      ...(connections.jira ? { jiraUrl: connections.jira.url } : {}),
      ...(jiraSimulator ? { jiraSimulator } : {}),
      database,
      temporalClient: temporal.client,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
