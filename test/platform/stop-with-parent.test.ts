import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { benchApiEnv, startApi, type ApiProcess } from '../../scripts/bench-api-process.js';
import { freePort } from '../../platform/ports.js';
import { closeTestDatabases, createTestDatabase } from '../support/platform.js';

// A benchmark or test that starts `ctem api` and is then killed (a timeout, SIGKILL) used to leave
// the API running as an orphan, holding its port and database connections. The API it starts reads
// its stdin: when the starter dies, the pipe closes and the API stops by itself.

const dataDir = mkdtempSync(join(tmpdir(), 'ctem-stop-with-parent-'));
let api: ApiProcess | undefined;

afterAll(async () => {
  await api?.stop();
  await closeTestDatabases();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('ctem api started by another process', () => {
  it('stops by itself when the process that started it is gone (its stdin closes)', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const env = benchApiEnv({ port, databaseUrl: await createTestDatabase(), temporalAddress: inject('temporalAddress'), token: randomBytes(24).toString('base64url'), dataDir, name: 'stop-with-parent' });
    api = await startApi(env, port);
    expect((await fetch(`${api.url}/healthz`)).ok).toBe(true);
    // What the kernel does when the starter dies: its end of the pipe closes.
    const exited = new Promise<number | null>((resolve) => api!.child.once('exit', (code) => resolve(code)));
    api.child.stdin!.end();
    const code = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code).toBe(0);
    await expect(fetch(`${api.url}/healthz`)).rejects.toThrow();
  });
});
