import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../platform/ports.js';

// `ctem start` killed with SIGKILL cannot stop its embedded PostgreSQL and Temporal dev server: they
// live on, holding their ports and data. The next start must stop them and come up on the same data,
// not die with an unreadable error. Real processes, real ports, real SIGKILL.

const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'ctem-crash-'));
chmodSync(dir, 0o755); // the embedded server runs as the postgres user, which must reach its data
const running: ChildProcess[] = [];

afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  // Whatever the last start left (it is stopped cleanly in the test; this is for a failure).
  for (const pidFile of [join(dir, 'data', 'postgres', 'data', 'postmaster.pid'), join(dir, 'data', 'temporal.sqlite.pid')]) {
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['bin/ctem.js', 'start'], { cwd: root, env: { ...process.env, ...env } });
  running.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`not up within 120 s:\n${output}`)), 120_000);
    const check = () => {
      if (output.includes('CTEM platform is up')) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        res({ child, output: () => output });
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`ctem start exited with ${code}:\n${output}`));
    });
  });
}

describe('ctem start after a crash', () => {
  it('stops the embedded servers the killed start left behind, and comes up on the same data', async () => {
    const env = {
      CTEM_DATA_DIR: join(dir, 'data'),
      PORT: String(await freePort()),
      CTEM_PG_PORT: String(await freePort()),
      CTEM_TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      SERVICENOW_SIM_PORT: String(await freePort()),
      CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
      CTEM_VALIDATION_SCHEDULE: 'off',
    };
    const first = await start(env);
    const orphans = ['postgres/data/postmaster.pid', 'temporal.sqlite.pid'].map((f) => Number(readFileSync(join(dir, 'data', f), 'utf8').split('\n')[0]));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // Both servers outlived it.
    for (const pid of orphans) expect(() => process.kill(pid, 0)).not.toThrow();

    const second = await start(env);
    for (const pid of orphans) expect(() => process.kill(pid, 0)).toThrow();
    const token = (JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as { apiToken: string }).apiToken;
    const health = await fetch(`http://127.0.0.1:${env.PORT}/healthz`, { headers: { authorization: `Bearer ${token}` } });
    expect(health.status).toBe(200);

    second.child.kill('SIGTERM');
    const code = await new Promise((r) => second.child.once('exit', r));
    expect(code, second.output().slice(-2000)).toBe(0);
    // A clean stop leaves no pid file behind for the next start to act on.
    expect(existsSync(join(dir, 'data', 'temporal.sqlite.pid'))).toBe(false);
  }, 300_000);
});
