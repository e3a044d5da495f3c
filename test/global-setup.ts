import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { connectTemporal } from '../platform/connect.js';
import { loadConfig } from '../config/index.js';
import { startEmbeddedPostgres } from '../platform/postgres.js';
import { registerSearchAttributes, startDevServer } from '../platform/temporal.js';
import { testNamespaces } from './support/namespaces.js';
import { freePort } from '../platform/ports.js';
import { installWorkerRuntime, workflowsPath } from '../platform/worker.js';

// One real Temporal dev server and one real PostgreSQL for the whole run; each test file gets its
// own Temporal namespace, database and task queue (test/support/platform.ts), so files run in
// parallel without sharing state. The workflow code is bundled once here, not at every platform
// start (each bundle costs seconds of CPU); the bundle is the same code the worker would build.

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    postgresUrl: string;
    workflowBundle: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'ctem-test-'));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user, which must reach its data
  installWorkerRuntime();
  const workflowBundle = join(dir, 'workflow-bundle.js');
  writeFileSync(workflowBundle, (await bundleWorkflowCode({ workflowsPath })).code);
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
  project.provide('workflowBundle', workflowBundle);
  return async () => {
    await temporal.stop();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
