import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { heartbeatWhileRunning } from '../../platform/heartbeat.js';
import { installWorkerRuntime } from '../../platform/worker.js';
import { namespaceForTestFile } from '../support/namespaces.js';

// Set-based scoring reports no progress while its statement runs; the worker heartbeats for it, so
// a heartbeat timeout of a minute notices a dead worker without timing out a live, quiet activity.
// On the real Temporal server: a quiet 3-second activity with a 1-second heartbeat timeout.

const namespace = namespaceForTestFile(import.meta.filename);
let connection: NativeConnection;
let client: Client;

beforeAll(async () => {
  installWorkerRuntime();
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }), namespace });
});

afterAll(async () => {
  await connection?.close();
  await client?.connection.close();
});

async function runWith(interceptors: boolean): Promise<string> {
  const taskQueue = `heartbeat-${randomUUID()}`;
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: new URL('./support/heartbeat-workflow.ts', import.meta.url).pathname,
    activities: { quiet: (ms: number) => new Promise<string>((r) => setTimeout(() => r('done'), ms)) },
    ...(interceptors ? { interceptors: { activity: [heartbeatWhileRunning] } } : {}),
  });
  return worker.runUntil(client.workflow.execute('quietActivityWorkflow', { taskQueue, workflowId: `heartbeat-${randomUUID()}`, args: [3000] }));
}

describe('heartbeats while an activity runs', () => {
  it('keeps a quiet activity alive past its heartbeat timeout', async () => {
    expect(await runWith(true)).toBe('done');
  }, 60_000);

  it('without them, the same activity times out on its heartbeat', async () => {
    const err = await runWith(false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(JSON.stringify((err as WorkflowFailedError).cause?.cause)).toMatch(/HEARTBEAT|heartbeat/);
  }, 60_000);
});
