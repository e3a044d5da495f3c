import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { connectTemporal } from '../platform/connect.js';
import { loadConfig } from '../config/index.js';
import { startEmbeddedPostgres } from '../platform/postgres.js';
import { registerSearchAttributes, startDevServer } from '../platform/temporal.js';
import { testNamespaces } from './support/namespaces.js';
import { freePort } from '../platform/ports.js';

// One real Temporal dev server and one real PostgreSQL for the whole run; each test file gets its
// own Temporal namespace, database and task queue (test/support/platform.ts), so files run in
// parallel without sharing state.

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'ctem-test-'));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user, which must reach its data
  const namespaces = testNamespaces();
  const temporal = await startDevServer({ port: await freePort(), namespace: 'default', extraNamespaces: namespaces });
  let postgres;
  try {
    const { connection } = await connectTemporal(loadConfig({}), temporal.address);
    for (const namespace of ['default', ...namespaces]) await registerSearchAttributes(connection, namespace);
    await connection.close();
    postgres = await startEmbeddedPostgres(join(dir, 'postgres'), await freePort());
  } catch (err) {
    await temporal.stop();
    throw err;
  }
  project.provide('temporalAddress', temporal.address);
  project.provide('postgresUrl', postgres.url);
  return async () => {
    await temporal.stop();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
