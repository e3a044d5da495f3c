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
  return (JSON.parse(readFileSync(record, 'utf8')) as { path: string }).path;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
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
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (pidFile) recordPid(pidFile, child.pid);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const address = `127.0.0.1:${options.port}`;
  await waitForFrontend(address, options.namespace, exited, () => output);
  return {
    address,
    ...(options.uiPort ? { uiUrl: `http://127.0.0.1:${options.uiPort}` } : {}),
    stop: async () => {
      await stopChild(child, exited);
      if (pidFile) forgetPid(pidFile);
    },
  };
}

async function waitForFrontend(address: string, namespace: string, exited: Promise<number | null>, output: () => string) {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (done) throw new Error(`temporal server start-dev exited early:\n${output()}`);
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

/** Registers the platform's custom search attributes; those already present are left alone. */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_TYPE[k.type as keyof typeof INDEXED_TYPE]])),
    });
  } catch (err) {
    // Another process (a second worker, the API) registered them at the same moment.
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
  return missing.map((k) => k.name);
}
