// The API role as the benchmarks that load it run it: `ctem api` as its own process (as deployed,
// console and API on one port) on a seeded database, with nothing in the background (no worker, no
// schedules), and its peak memory read from /proc. Used by bench-console.ts and bench-api-load.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round } from './bench-estate.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ApiProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** The settings of a benchmarked `ctem api`: the seeded database, a Temporal, and no background work. */
export function benchApiEnv(options: { port: number; databaseUrl: string; temporalAddress: string; token: string; dataDir: string; name: string }): Record<string, string> {
  return {
    PORT: String(options.port),
    CTEM_HOST: '127.0.0.1',
    DATABASE_URL: options.databaseUrl,
    TEMPORAL_ADDRESS: options.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    CTEM_TASK_QUEUE: `${options.name}-${randomUUID()}`,
    CTEM_API_TOKEN: options.token,
    CTEM_DATA_DIR: options.dataDir,
    SERVICENOW_SIM_PORT: '0',
    JIRA_SIM_PORT: '0',
    // Nothing runs in the background during the load: no worker, no schedules.
    CTEM_VALIDATION_SCHEDULE: 'off',
    CTEM_VALIDATION_AFTER_RESCORE: 'false',
    CTEM_METRICS_SCHEDULE: 'off',
    CTEM_HUNTING_SCHEDULE: 'off',
    // The load measures the API, not the per-identity budget: many virtual users share few tokens.
    CTEM_RATE_LIMIT: 'off',
  };
}

/** `ctem api` as its own process on the seeded database; resolves once /healthz answers. */
export async function startApi(env: Record<string, string>, port: number): Promise<ApiProcess> {
  const childEnv: NodeJS.ProcessEnv = {};
  // Only the basics of this environment: the platform's own settings come from `env` alone.
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(CTEM_|DATABASE_URL|TEMPORAL_|SERVICENOW_|JIRA_|SLACK_|PORT$)/.test(key)) childEnv[key] = value;
  }
  // Its stdin is a pipe from this process: if this one dies (a killed benchmark or test), it stops too.
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ctem.js'), 'api'], {
    cwd: repoRoot,
    env: { ...childEnv, ...env, CTEM_STOP_WHEN_STDIN_CLOSES: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timeout);
  };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ctem api exited with ${child.exitCode}:\n${output}`);
    try {
      const health = await fetch(`${url}/healthz`);
      await health.arrayBuffer();
      if (health.ok) return { child, url, output: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`ctem api did not answer /healthz within 120 s:\n${output}`);
}

/** Peak resident memory of a process (Linux), in MB; null where /proc is not there. */
export function peakRssMbOf(pid: number | undefined): number | null {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}
