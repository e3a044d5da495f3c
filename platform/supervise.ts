import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { forgetPid, recordPid, stopOrphan } from './orphans.js';

// One long-running child process kept alive: started again when it exits, after a back-off that
// doubles while it keeps dying (1 s up to 30 s) and resets once it has stayed up for a minute. Its
// output goes to a log file of its own; its pid is recorded so that a supervisor killed with
// SIGKILL leaves nothing the next start cannot stop (platform/orphans.ts).

export interface SupervisedChild {
  name: string;
  /** The process now (another one after a restart); undefined while it is down. */
  pid(): number | undefined;
  /** How many times it was started (1 before any restart). */
  starts(): number;
  /** Resolves at the next start after now (for tests that kill it). */
  nextStart(): Promise<number>;
  stop(): Promise<void>;
}

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where its pid and log go: `<runDir>/<name>.pid`, `<runDir>/<name>.log`. */
  runDir: string;
  /** A string of its command line that names this deployment (a data or config path): see stopOrphan. */
  marker: string;
  log: (line: string) => void;
}

const MAX_BACKOFF_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;

export async function superviseChild(spec: ChildSpec): Promise<SupervisedChild> {
  mkdirSync(spec.runDir, { recursive: true });
  const pidFile = join(spec.runDir, `${spec.name}.pid`);
  const logFile = join(spec.runDir, `${spec.name}.log`);
  mkdirSync(dirname(logFile), { recursive: true });
  await stopOrphan(pidFile, spec.marker);
  const out = createWriteStream(logFile, { flags: 'a' });

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let starts = 0;
  let backoff = 1000;
  let timer: NodeJS.Timeout | undefined;
  const waiting: Array<(n: number) => void> = [];

  const launch = () => {
    const startedAt = Date.now();
    // A process group of its own: Ctrl-C in the terminal reaches the supervisor alone, which then
    // stops the children in order (APIs and workers before Temporal and PostgreSQL).
    const proc = spawn(spec.command, spec.args, { env: spec.env ?? process.env, cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = proc;
    starts++;
    recordPid(pidFile, proc.pid);
    proc.stdout!.pipe(out, { end: false });
    proc.stderr!.pipe(out, { end: false });
    for (const resolve of waiting.splice(0)) resolve(starts);
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        child = undefined;
        resolve();
        if (stopping) return;
        backoff = Date.now() - startedAt > HEALTHY_AFTER_MS ? 1000 : backoff;
        spec.log(`${spec.name} exited (${signal ?? `code ${code}`}); starting it again in ${backoff / 1000} s (log: ${logFile})`);
        timer = setTimeout(launch, backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      });
    });
    proc.once('error', (err) => spec.log(`${spec.name}: ${err.message}`));
  };
  launch();

  return {
    name: spec.name,
    pid: () => child?.pid,
    starts: () => starts,
    nextStart: () => new Promise((resolve) => waiting.push(resolve)),
    stop: async () => {
      stopping = true;
      clearTimeout(timer);
      const proc = child;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(kill);
      }
      forgetPid(pidFile);
      await new Promise<void>((resolve) => out.end(resolve));
    },
  };
}
