import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { expect, inject } from 'vitest';
import { connectDatabase, migrateDatabase, type Database } from '../../db/client.js';
import { loadConfig } from '../../config/index.js';
import { startPlatform, type Platform, type Roles } from '../../platform/start.js';
import { namespaceForTestFile } from './namespaces.js';

/** A database of its own for one test file, on the shared PostgreSQL server. */
export async function createTestDatabase(): Promise<string> {
  const base = inject('postgresUrl');
  const name = `test_${randomUUID().replace(/-/g, '')}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  return base.replace(/\/[^/]*$/, `/${name}`);
}

const openedDatabases: Database[] = [];

/** A migrated database of its own, for tests of queries without the platform; see closeTestDatabases. */
export async function migratedTestDatabase(): Promise<Database> {
  const url = await createTestDatabase();
  await migrateDatabase(url);
  const database = connectDatabase(url, { max: 4 });
  openedDatabases.push(database);
  return database;
}

/** Closes every database migratedTestDatabase opened in this test file (an afterAll hook). */
export async function closeTestDatabases(): Promise<void> {
  await Promise.all(openedDatabases.splice(0).map((d) => d.close()));
}

/**
 * The sample EPSS and KEV files under test/fixtures as the platform's feeds. They are dated
 * 2026-11-01, so freshness is waived: the tests using them are not about freshness.
 */
export const SAMPLE_FEEDS_ENV: Readonly<Record<string, string>> = {
  CTEM_EPSS_FILE: join(import.meta.dirname, '..', 'fixtures', 'epss-sample.csv'),
  CTEM_KEV_FILE: join(import.meta.dirname, '..', 'fixtures', 'kev-sample.json'),
  CTEM_FEED_MAX_AGE_EPSS: '3650d',
  CTEM_FEED_MAX_AGE_KEV: '3650d',
};

export interface TestPlatform extends Platform {
  env: Record<string, string>;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Calls the ServiceNow simulator's Table API as its admin user. */
  serviceNow(path: string, init?: RequestInit): Promise<Response>;
  /** Calls the Jira simulator's REST API as its API user (CTEM_ITSM=jira). */
  jira(path: string, init?: RequestInit): Promise<Response>;
}

function testNamespace(): string {
  const file = expect.getState().testPath;
  return file ? namespaceForTestFile(file) : 'default';
}

/**
 * The real platform (API, worker, ServiceNow simulator) against the shared Temporal server, with a
 * fresh database, data directory and task queue. `env` overrides configuration, e.g. short SLAs.
 */
export async function startTestPlatform(env: Record<string, string> = {}, roles: Roles = { api: true, worker: true }): Promise<TestPlatform> {
  const fullEnv: Record<string, string> = {
    PORT: '0',
    SERVICENOW_SIM_PORT: '0',
    JIRA_SIM_PORT: '0',
    CTEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'ctem-data-')),
    DATABASE_URL: await createTestDatabase(),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
    // The calling test file's own namespace on the shared server (test/global-setup.ts creates it).
    ...(env.TEMPORAL_ADDRESS ? {} : { TEMPORAL_NAMESPACE: testNamespace() }),
    CTEM_TASK_QUEUE: `test-${randomUUID()}`,
    CTEM_API_TOKEN: `token-${randomUUID()}`,
    // Validation runs only where a test starts them (validation.e2e.test.ts turns these on).
    CTEM_VALIDATION_SCHEDULE: 'off',
    CTEM_VALIDATION_AFTER_RESCORE: 'false',
    // Metric snapshots (and the start-up one) only where a test asks (console-metrics, metrics-schedule).
    CTEM_METRICS_SCHEDULE: 'off',
    CTEM_HUNTING_SCHEDULE: 'off',
    ...env,
  };
  const platform = await startPlatform(loadConfig(fullEnv), roles);
  const jiraBasic = platform.jiraSimulator ? `Basic ${Buffer.from(`${platform.jiraSimulator.email}:${platform.jiraSimulator.apiToken}`).toString('base64')}` : '';
  const basic = platform.simulator ? `Basic ${Buffer.from(`${platform.simulator.user}:${platform.simulator.password}`).toString('base64')}` : '';
  return {
    ...platform,
    env: fullEnv,
    api: (path, init = {}) =>
      fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${fullEnv.CTEM_API_TOKEN}`, ...(init.headers ?? {}) } }),
    serviceNow: (path, init = {}) =>
      fetch(`${platform.serviceNowUrl}${path}`, {
        ...init,
        headers: { authorization: basic, 'content-type': 'application/json', accept: 'application/json', ...(init.headers ?? {}) },
      }),
    jira: (path, init = {}) =>
      fetch(`${platform.jiraUrl}${path}`, {
        ...init,
        headers: { authorization: jiraBasic, 'content-type': 'application/json', accept: 'application/json', ...(init.headers ?? {}) },
      }),
  };
}

/** Polls until `probe` returns a value that is not undefined, or fails with the last state seen. */
export async function eventually<T>(probe: () => Promise<T | undefined>, { timeoutMs = 30_000, intervalMs = 250, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The JSON body of a successful response; anything else fails with the status and body. */
export async function json<T>(res: Response | Promise<Response>): Promise<T> {
  const r = await res;
  const text = await r.text();
  if (!r.ok) throw new Error(`${r.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
