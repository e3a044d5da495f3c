import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { bundleWorkflowCode } from '@temporalio/worker';
import postgres from 'postgres';
import { migrateDatabase } from '../db/client.js';
import { createServiceNowSimulator, type ServiceNowSimulator } from '../mobilization/itsm/servicenow/simulator.js';
import type { Config } from '../config/index.js';
import { freePort } from './ports.js';
import { startEmbeddedPostgres } from './postgres.js';
import { loadSecrets } from './start.js';
import { superviseChild, type SupervisedChild } from './supervise.js';
import { registerSearchAttributes } from './temporal.js';
import { installWorkerRuntime, workflowsPath } from './worker.js';
import { WORKFLOW_TRACING_MODULE } from './tracing.js';

// `ctem cluster`: the production shape of docker-compose.yml on one machine, without Docker.
// PostgreSQL (embedded, or DATABASE_URL's server) holds the platform's database and Temporal's two;
// a real Temporal server (built by scripts/ensure-temporal-server.mjs) runs on them with a config
// rendered here, beside the Temporal UI server; then N `ctem worker` and M `ctem api` processes,
// each a supervised child. Everything listens on loopback.

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

/** The tools scripts/ensure-temporal-server.mjs built and recorded. */
export interface ServerTools {
  version: string;
  server: string;
  sqlTool: string;
  schemaDir: string;
  uiVersion: string;
  uiServer: string;
}

export function serverToolsRecord(toolsDir = process.env.CTEM_TOOLS_DIR ?? join(projectRoot, '.tools')): ServerTools {
  const file = join(toolsDir, 'temporal-server.json');
  if (!existsSync(file)) throw new Error('the Temporal server is not built: run `npm run temporal-server:ensure` (npm run cluster does it)');
  return JSON.parse(readFileSync(file, 'utf8')) as ServerTools;
}

/** Every port the Temporal server opens; the frontend's gRPC port is the one clients use. */
export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

/** Temporal keeps each service's membership port in a PostgreSQL smallint. */
export const MAX_MEMBERSHIP_PORT = 32_767;

/** Temporal's usual layout (7233, 7234, 7235, 7239, 7243, 6933...) moved with the frontend's port. */
export function temporalPortsFrom(frontend: number): TemporalServerPorts {
  return {
    frontend,
    history: frontend + 1,
    matching: frontend + 2,
    worker: frontend + 6,
    frontendHttp: frontend + 10,
    frontendMembership: frontend - 300,
    historyMembership: frontend - 299,
    matchingMembership: frontend - 298,
    workerMembership: frontend - 294,
    metrics: frontend + 767,
  };
}

/** A free loopback port in [20000, 32767], as Temporal's membership ports must be. */
async function freeLowPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * (MAX_MEMBERSHIP_PORT - 20_000));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Every Temporal server port free, for a cluster beside another (tests, benchmarks). */
export async function freeTemporalPorts(): Promise<TemporalServerPorts> {
  return {
    frontend: await freePort(),
    frontendHttp: await freePort(),
    history: await freePort(),
    matching: await freePort(),
    worker: await freePort(),
    metrics: await freePort(),
    frontendMembership: await freeLowPort(),
    historyMembership: await freeLowPort(),
    matchingMembership: await freeLowPort(),
    workerMembership: await freeLowPort(),
  };
}

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
}

export const TEMPORAL_DATABASES = { default: 'temporal', visibility: 'temporal_visibility' } as const;

/**
 * The Temporal server's static configuration: both stores on `db` (PostgreSQL 12+ plugin), every
 * service in one process bound to loopback, `historyShards` fixed for the cluster's life (Temporal
 * cannot change it after the first start). JSON is YAML, so the server reads it as its config file.
 */
export function renderTemporalServerConfig(options: { db: PostgresServer; ports: TemporalServerPorts; historyShards: number; dynamicConfigFile: string }) {
  const { db, ports } = options;
  // Temporal stores membership ports in a smallint column: a port above 32767 fails its start.
  for (const key of ['frontendMembership', 'historyMembership', 'matchingMembership', 'workerMembership'] as const) {
    if (ports[key] > MAX_MEMBERSHIP_PORT) throw new Error(`Temporal's ${key} port ${ports[key]} is above ${MAX_MEMBERSHIP_PORT} (it is stored as a smallint)`);
  }
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...(httpPort ? { httpPort } : {}) },
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: options.historyShards,
      datastores: {
        'postgres-default': store(TEMPORAL_DATABASES.default, 20),
        'postgres-visibility': store(TEMPORAL_DATABASES.visibility, 10),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${ports.metrics}` } },
    },
    services: {
      frontend: service(ports.frontend, ports.frontendMembership, ports.frontendHttp),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend}`, httpAddress: `127.0.0.1:${ports.frontendHttp}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: options.dynamicConfigFile, pollInterval: '10s' },
  };
}

/** Runtime settings operators tune without a restart; the platform relies on Updates being on. */
const DYNAMIC_CONFIG = `# Temporal dynamic configuration, read every 10 s (keys: the server's common/dynamicconfig).
# The platform's remediation workflow takes Updates (acknowledge, risk acceptance).
frontend.enableUpdateWorkflowExecution:
  - value: true
`;

/** The Temporal UI server's configuration (its config.go keys). */
export function renderUiServerConfig(options: { port: number; temporalAddress: string; namespace: string }) {
  return {
    temporalGrpcAddress: options.temporalAddress,
    host: '127.0.0.1',
    port: options.port,
    enableUi: true,
    defaultNamespace: options.namespace,
    // The UI takes no credentials (as on the dev server): loopback only, like every port here.
    cors: { cookieInsecure: true, allowOrigins: [], unsafeAllowAllOrigins: false },
    notifyOnNewVersion: false,
    refreshInterval: '1m',
  };
}

function postgresServerOf(url: string): PostgresServer {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/** Creates Temporal's databases when missing, then sets up and upgrades their schemas with the schema tool. */
export async function prepareTemporalDatabases(adminUrl: string, tools: ServerTools, log: (line: string) => void): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    for (const name of Object.values(TEMPORAL_DATABASES)) {
      const [found] = await admin`select 1 as one from pg_database where datname = ${name}`;
      if (!found) {
        log(`creating database ${name}`);
        await admin.unsafe(`create database ${name}`);
      }
    }
  } finally {
    await admin.end();
  }
  const db = postgresServerOf(adminUrl);
  // The password goes through the environment, not the command line (visible in ps).
  const env = { ...process.env, SQL_HOST: db.host, SQL_PORT: String(db.port), SQL_USER: db.user, SQL_PASSWORD: db.password, SQL_PLUGIN: 'postgres12' };
  for (const [kind, name] of Object.entries(TEMPORAL_DATABASES)) {
    const schemaTool = async (...args: string[]) => {
      try {
        await run(tools.sqlTool, ['--db', name, ...args], { env });
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`temporal-sql-tool ${args[0]} on database ${name} failed: ${(e.stderr ?? '').trim().split('\n').slice(-5).join('\n') || e.message}`);
      }
    };
    // Both are idempotent: set-up creates the version tables if missing; update applies what is newer.
    await schemaTool('setup-schema', '-v', '0.0');
    await schemaTool('update-schema', '-d', join(tools.schemaDir, kind === 'default' ? 'temporal' : 'visibility', 'versioned'));
  }
}

/** The last lines of a log file, for an error message. */
function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n');
  } catch {
    return '';
  }
}

/** Waits until the frontend answers; a server that keeps exiting fails the start with its log. */
async function waitForTemporal(address: string, server: SupervisedChild, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline && server.starts() < 3) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const why = server.starts() >= 3 ? 'it exited twice' : `it did not answer within ${timeoutMs / 1000} s (${last})`;
  throw new Error(`the Temporal server at ${address} did not come up: ${why}; the end of ${logFile}:\n${tail(logFile)}`);
}

/** Registers the namespace when the server lacks it; the server's registry learns it within seconds. */
export async function ensureNamespace(connection: Connection, namespace: string, retentionDays: number): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return false;
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
  }
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
      description: 'CTEM platform',
    });
  } catch (err) {
    if (!/already exists|already registered/i.test((err as Error).message)) throw err;
  }
  // Stored at once, but served from the frontend's namespace cache, refreshed every few seconds.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await connection.operatorService.listSearchAttributes({ namespace });
      return true;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} was registered but the frontend did not serve it within 60 s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * The history shard count: chosen at the first start and recorded, since Temporal refuses to run a
 * cluster with another count than the one its database was created with.
 */
export function fixedHistoryShards(file: string, asked: number | undefined, fallback: number = CLUSTER_DEFAULTS.historyShards): number {
  if (existsSync(file)) {
    const recorded = Number(readFileSync(file, 'utf8').trim());
    if (asked !== undefined && asked !== recorded) {
      throw new Error(`this cluster was created with ${recorded} history shards (${file}); Temporal cannot change that: drop --history-shards or start on a new data directory`);
    }
    return recorded;
  }
  const shards = asked ?? fallback;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${shards}\n`);
  return shards;
}

async function waitForHealthy(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what} did not answer at ${url} within ${timeoutMs / 1000} s`);
}

/** Two of each, as docker-compose.yml runs them (its test holds the two in step). */
export const CLUSTER_DEFAULTS = { workers: 2, apis: 2, historyShards: 4 } as const;

/** The services of the production shape, named as docker-compose.yml names them. */
export const CLUSTER_SERVICES = ['postgres', 'temporal', 'temporal-ui', 'api', 'worker'] as const;

/**
 * What ties every `ctem api` and `ctem worker` to the shared pieces: the variables both the cluster
 * and docker-compose.yml set on them. Anything else comes from the operator's environment.
 */
export function ctemChildEnv(wiring: {
  dataDir: string;
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  temporalUiUrl: string;
  apiToken: string;
  serviceNow: { url: string; user: string; password: string; webhookSecret: string };
}): Record<string, string> {
  return {
    CTEM_DATA_DIR: wiring.dataDir,
    DATABASE_URL: wiring.databaseUrl,
    TEMPORAL_ADDRESS: wiring.temporalAddress,
    TEMPORAL_NAMESPACE: wiring.namespace,
    TEMPORAL_UI_URL: wiring.temporalUiUrl,
    CTEM_API_TOKEN: wiring.apiToken,
    SERVICENOW_URL: wiring.serviceNow.url,
    SERVICENOW_USER: wiring.serviceNow.user,
    SERVICENOW_PASSWORD: wiring.serviceNow.password,
    SERVICENOW_WEBHOOK_SECRET: wiring.serviceNow.webhookSecret,
  };
}

/**
 * Set by the cluster alone, each for a reason of one machine: the API's port and public URL differ
 * per API process (compose maps one container port instead), CTEM_HOST keeps every API on loopback,
 * and the workflow bundle is built once for the workers of this machine.
 */
export const CLUSTER_ONLY_VARIABLES = ['PORT', 'CTEM_PUBLIC_URL', 'CTEM_HOST', 'CTEM_WORKFLOW_BUNDLE'] as const;

export interface ClusterOptions {
  config: Config;
  workers: number;
  apis: number;
  /** The API processes' ports (one each); default: PORT, PORT+1, ... */
  apiPorts?: number[];
  /** Every Temporal server port; default: temporalPortsFrom(CTEM_TEMPORAL_PORT). */
  temporalPorts?: TemporalServerPorts;
  /** Temporal's history shard count, fixed at the first start (default 4); a later start must not change it. */
  historyShards?: number;
  /** Workflow retention of a namespace the cluster creates. */
  retentionDays?: number;
  tools?: ServerTools;
  /** Variables every ctem child gets besides the cluster's own (tests: short schedules). */
  childEnv?: Record<string, string>;
  log?: (line: string) => void;
}

export interface Cluster {
  apiUrls: string[];
  apiToken: string;
  databaseUrl: string;
  temporalAddress: string;
  temporalUiUrl: string;
  serviceNowUrl: string;
  simulator?: { user: string; password: string; instance: ServiceNowSimulator };
  namespace: string;
  dataDir: string;
  server: SupervisedChild;
  ui: SupervisedChild;
  workers: SupervisedChild[];
  apis: SupervisedChild[];
  stop(): Promise<void>;
}

/**
 * Starts the production shape: PostgreSQL, Temporal server and UI, the ServiceNow simulator (unless
 * SERVICENOW_URL), then the workers and APIs. stop() undoes it in reverse; all state is in dataDir.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { config } = options;
  const log = options.log ?? (() => {});
  if (config.itsm === 'jira' && !config.jira.url) {
    throw new Error('ctem cluster: CTEM_ITSM=jira needs JIRA_BASE_URL (each process would otherwise run a Jira simulator of its own)');
  }
  const tools = options.tools ?? serverToolsRecord();
  const dataDir = resolve(config.dataDir);
  const runDir = join(dataDir, 'run');
  const namespace = config.temporal.namespace;
  const stack: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const undo of stack.reverse()) await undo().catch((err: Error) => log(`shutdown: ${err.message}`));
    stack.length = 0;
  };
  try {
    mkdirSync(runDir, { recursive: true });
    const secrets = loadSecrets(dataDir);
    const apiToken = config.apiToken ?? secrets.apiToken;

    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      log('starting embedded PostgreSQL...');
      const pg = await startEmbeddedPostgres(join(dataDir, 'postgres'), config.embeddedPostgresPort, { supervise: log });
      stack.push(() => pg.stop());
      databaseUrl = pg.url;
    }
    log('setting up Temporal\'s databases (temporal-sql-tool)...');
    await prepareTemporalDatabases(databaseUrl, tools, log);
    await migrateDatabase(databaseUrl);

    const ports = options.temporalPorts ?? temporalPortsFrom(config.temporal.devServerPort);
    const temporalDir = join(dataDir, 'temporal');
    const configDir = join(temporalDir, 'config');
    mkdirSync(configDir, { recursive: true });
    const dynamicConfigFile = join(configDir, 'dynamic.yaml');
    if (!existsSync(dynamicConfigFile)) writeFileSync(dynamicConfigFile, DYNAMIC_CONFIG);
    const historyShards = fixedHistoryShards(join(temporalDir, 'history-shards'), options.historyShards);
    const serverConfig = join(configDir, 'cluster.yaml');
    const rendered = renderTemporalServerConfig({ db: postgresServerOf(databaseUrl), ports, historyShards, dynamicConfigFile });
    writeFileSync(serverConfig, `# Rendered by ctem cluster at every start; edit the settings, not this file.\n${JSON.stringify(rendered, null, 2)}\n`, { mode: 0o600 });
    chmodSync(serverConfig, 0o600);

    log(`starting Temporal server ${tools.version} on 127.0.0.1:${ports.frontend}...`);
    const server = await superviseChild({
      name: 'temporal-server',
      command: tools.server,
      args: ['--root', temporalDir, '--config', 'config', '--env', 'cluster', '--allow-no-auth', 'start'],
      runDir,
      marker: temporalDir,
      log,
    });
    stack.push(() => server.stop());
    const temporalAddress = `127.0.0.1:${ports.frontend}`;
    await waitForTemporal(temporalAddress, server, 120_000, join(runDir, 'temporal-server.log'));

    const connection = await Connection.connect({ address: temporalAddress });
    try {
      if (await ensureNamespace(connection, namespace, options.retentionDays ?? 30)) log(`registered namespace ${namespace}`);
      // The bounded wait of registerSearchAttributes covers the namespace too: its count query fails
      // until the frontend's registry knows the namespace and its attributes.
      const registered = await registerSearchAttributes(connection, namespace);
      if (registered.length) log(`registered search attributes: ${registered.join(', ')}`);
    } finally {
      await connection.close();
    }

    const uiDir = join(dataDir, 'temporal-ui');
    mkdirSync(join(uiDir, 'config'), { recursive: true });
    writeFileSync(join(uiDir, 'config', 'cluster.yaml'), JSON.stringify(renderUiServerConfig({ port: config.temporal.uiPort, temporalAddress, namespace }), null, 2) + '\n');
    const ui = await superviseChild({
      name: 'temporal-ui',
      command: tools.uiServer,
      args: ['--root', uiDir, '--config', 'config', '--env', 'cluster', 'start'],
      runDir,
      marker: uiDir,
      log,
    });
    stack.push(() => ui.stop());
    const temporalUiUrl = `http://127.0.0.1:${config.temporal.uiPort}`;

    const apiPorts = options.apiPorts ?? Array.from({ length: options.apis }, (_, i) => config.port + i);
    if (apiPorts.length !== options.apis) throw new Error(`ctem cluster: ${options.apis} APIs but ${apiPorts.length} API ports`);
    const apiUrls = apiPorts.map((p) => `http://127.0.0.1:${p}`);

    // One ServiceNow simulator for every process (each ctem process would otherwise start its own).
    let serviceNow: { url: string; user: string; password: string; webhookSecret: string };
    let simulator: Cluster['simulator'];
    const webhookSecret = config.serviceNow.webhookSecret ?? secrets.webhookSecret;
    if (config.serviceNow.url) {
      serviceNow = { url: config.serviceNow.url, user: config.serviceNow.user ?? '', password: config.serviceNow.password ?? '', webhookSecret };
    } else {
      const credentials = { user: 'admin', password: secrets.simulatorPassword };
      const instance = createServiceNowSimulator({
        stateFile: join(dataDir, 'servicenow-simulator.json'),
        credentials,
        // Its webhooks go to CTEM_PUBLIC_URL when set, else to the first API.
        webhook: { url: `${process.env.CTEM_PUBLIC_URL ? config.publicUrl : apiUrls[0]}/api/v1/webhooks/servicenow`, secret: webhookSecret },
      });
      const { url } = await instance.listen(config.serviceNow.simulatorPort);
      stack.push(() => instance.close());
      serviceNow = { url, ...credentials, webhookSecret };
      simulator = { ...credentials, instance };
    }

    // The workflow code is bundled once here for every worker (seconds of CPU each time otherwise),
    // with the workflow tracing interceptors when tracing is on.
    let workflowBundle = config.temporal.workflowBundle;
    if (!workflowBundle) {
      installWorkerRuntime();
      workflowBundle = join(runDir, 'workflow-bundle.js');
      const workflowInterceptorModules = config.tracing ? [WORKFLOW_TRACING_MODULE] : [];
      writeFileSync(workflowBundle, (await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: quietLogger })).code);
    }

    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      ...options.childEnv,
      ...ctemChildEnv({
        dataDir,
        databaseUrl,
        temporalAddress,
        namespace,
        temporalUiUrl: config.temporal.uiUrl ?? temporalUiUrl,
        apiToken,
        serviceNow,
      }),
      CTEM_WORKFLOW_BUNDLE: workflowBundle,
      CTEM_HOST: '127.0.0.1',
    };
    const ctem = join(projectRoot, 'bin', 'ctem.js');
    const child = (name: string, role: 'worker' | 'api', env: NodeJS.ProcessEnv) =>
      superviseChild({ name, command: process.execPath, args: [ctem, role], env, runDir, marker: `${ctem} ${role}`, log });

    const workers: SupervisedChild[] = [];
    for (let i = 1; i <= options.workers; i++) {
      const w = await child(`worker-${i}`, 'worker', childEnv);
      stack.push(() => w.stop());
      workers.push(w);
    }
    const apis: SupervisedChild[] = [];
    for (const [i, port] of apiPorts.entries()) {
      const a = await child(`api-${i + 1}`, 'api', { ...childEnv, PORT: String(port), CTEM_PUBLIC_URL: apiUrls[i]! });
      stack.push(() => a.stop());
      apis.push(a);
    }
    await Promise.all(apiUrls.map((url, i) => waitForHealthy(`${url}/healthz`, 180_000, `api-${i + 1} (log: ${join(runDir, `api-${i + 1}.log`)})`)));

    return {
      apiUrls,
      apiToken,
      databaseUrl,
      temporalAddress,
      temporalUiUrl,
      serviceNowUrl: serviceNow.url,
      ...(simulator ? { simulator } : {}),
      namespace,
      dataDir,
      server,
      ui,
      workers,
      apis,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (message: string) => console.error(message),
};
