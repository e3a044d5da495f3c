import { spawn, type ChildProcess } from 'node:child_process';
import { forgetPid, recordPid, stopOrphan } from './orphans.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/search-attributes.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The Temporal CLI that scripts/ensure-temporal.mjs found or installed. */
export function temporalCliPath(): string {
  if (process.env.TEMPORAL_CLI_PATH) return process.env.TEMPORAL_CLI_PATH;
  const record = join(process.env.CTEM_TOOLS_DIR ?? join(projectRoot, '.tools'), 'temporal-cli.json');
  if (!existsSync(record)) throw new Error('Temporal CLI not provisioned: run `npm run temporal:ensure` (npm start and npm test do it)');
  const { path } = JSON.parse(readFileSync(record, 'utf8')) as { path: string };
  // The record outlives what it names (a cache moved or deleted): say so instead of a bare ENOENT.
  if (!existsSync(path)) throw new Error(`Temporal CLI not found at ${path} (recorded in ${record}): run \`npm run temporal:ensure\` again`);
  return path;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
  /** The server process now (another one after a supervised restart). */
  pid(): number | undefined;
}

export interface DevServerOptions {
  port: number;
  namespace: string;
  /** Further namespaces created at start (tests: one per test file). */
  extraNamespaces?: string[];
  /** Persistent SQLite file; omitted means in-memory (tests). */
  dbFile?: string;
  /** Omitted means headless. */
  uiPort?: number;
  /** The HTTP API and metrics ports; omitted, the dev server picks free ones. */
  httpPort?: number;
  metricsPort?: number;
  logFile?: string;
  /**
   * Start it again when it dies (a persistent dbFile only: an in-memory server would come back
   * empty). Told each restart, or that it gave up after too many in a short time.
   */
  supervise?: (event: string) => void;
}

/** Runs `temporal server start-dev` as a child process and waits until its frontend answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--namespace', options.namespace, '--log-level', 'warn'];
  for (const namespace of options.extraNamespaces ?? []) args.push('--namespace', namespace);
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  if (options.httpPort) args.push('--http-port', String(options.httpPort));
  if (options.metricsPort) args.push('--metrics-port', String(options.metricsPort));
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  // A dev server left running on this database by a start that was killed holds its port and file.
  const pidFile = options.dbFile ? `${options.dbFile}.pid` : undefined;
  if (pidFile) await stopOrphan(pidFile, options.dbFile!);
  const address = `127.0.0.1:${options.port}`;

  // One run of the server process; `launch` is called again by the supervisor.
  async function launch() {
    const child = spawn(temporalCliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (pidFile) recordPid(pidFile, child.pid);
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    await waitForFrontend(address, options.namespace, exited, () => output);
    return { child, exited, output: () => output };
  }

  let current = await launch();
  let stopping = false;
  const restarts: number[] = [];
  const supervise = options.supervise && options.dbFile ? options.supervise : undefined;
  const watch = (run: Awaited<ReturnType<typeof launch>>) => {
    void run.exited.then(async (code) => {
      if (stopping || !supervise) return;
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
      // A server that keeps dying (a corrupt database, a port taken) is left down, loudly.
      if (restarts.length > 5) return supervise(`Temporal dev server exited (code ${code}) for the sixth time in a minute; not restarting it:\n${run.output()}`);
      supervise(`Temporal dev server exited (code ${code}); starting it again on ${address}`);
      await new Promise((r) => setTimeout(r, 1000));
      if (stopping) return;
      try {
        current = await launch();
        supervise(`Temporal dev server is back on ${address}`);
        watch(current);
      } catch (err) {
        supervise(`Temporal dev server did not come back: ${(err as Error).message}`);
      }
    });
  };
  watch(current);
  return {
    address,
    ...(options.uiPort ? { uiUrl: `http://127.0.0.1:${options.uiPort}` } : {}),
    stop: async () => {
      stopping = true;
      await stopChild(current.child, current.exited);
      if (pidFile) forgetPid(pidFile);
    },
    pid: () => current.child.pid,
  };
}

// The dev server says which of its ports it could not bind; the person needs the variable that moves it.
const PORT_VARIABLES: Array<[RegExp, string]> = [
  [/frontend port/i, 'CTEM_TEMPORAL_PORT'],
  [/ui port/i, 'TEMPORAL_UI_PORT'],
  [/http port/i, 'CTEM_TEMPORAL_HTTP_PORT'],
  [/metrics/i, 'CTEM_TEMPORAL_METRICS_PORT'],
];
function portHint(output: string): string {
  const line = output.split('\n').find((l) => /address already in use/i.test(l));
  if (!line) return '';
  const variable = PORT_VARIABLES.find(([pattern]) => pattern.test(line))?.[1];
  return `\na port of the Temporal dev server is in use${variable ? `: set ${variable} to another port` : ''}, or stop what holds it`;
}

async function waitForFrontend(address: string, namespace: string, exited: Promise<number | null>, output: () => string) {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (done) throw new Error(`temporal server start-dev exited early:\n${output()}${portHint(output())}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal dev server at ${address} did not become ready within 60 s:\n${output()}`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timeout);
}

const INDEXED_TYPE = {
  KEYWORD: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DATETIME: proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

/** A visibility query that names every custom attribute, with a value of its type. */
function probeQuery(): string {
  const value = { KEYWORD: "'ctem-probe'", INT: '0', DATETIME: "'2000-01-01T00:00:00Z'" } as const;
  return SEARCH_ATTRIBUTE_KEYS.map((k) => `${k.name} = ${value[k.type as keyof typeof value]}`).join(' AND ');
}

/**
 * Waits until the frontend accepts every custom search attribute. A real Temporal server stores a new
 * attribute at once but its frontend reads them from a cache refreshed every few seconds: until then
 * a schedule whose action carries CtemPhase is refused ("Failed to create schedule") and so is a
 * list query naming it. The dev server refreshes on every read, which hid this. The probe is the
 * count query the frontend validates through that same cache.
 */
export async function waitForSearchAttributes(connection: Connection, namespace: string, timeoutMs = 60_000): Promise<void> {
  const query = probeQuery();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`the Temporal frontend still refuses the search attributes of namespace ${namespace} after ${timeoutMs / 1000} s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Registers the platform's custom search attributes (those already present are left alone), then
 * waits until the frontend accepts them, so that schedules created next do not fail.
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length > 0) {
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_TYPE[k.type as keyof typeof INDEXED_TYPE]])),
      });
    } catch (err) {
      // Another process (a second worker, the API) registered them at the same moment.
      if (!/already exists/i.test((err as Error).message)) throw err;
    }
  }
  // Also when none was missing: another replica may have registered them a moment ago.
  await waitForSearchAttributes(connection, namespace);
  return missing.map((k) => k.name);
}
