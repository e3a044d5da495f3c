import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

// A `ctem start` killed with SIGKILL (or by the OOM killer) cannot stop its children: the embedded
// PostgreSQL and the Temporal dev server live on, holding their ports and their data files, and the
// next start would fail on them. Each launcher records its child's pid beside the data it owns; the
// next start stops a process still running under that pid before starting its own. The pid must
// still name the same program on the same data (its command line), so a recycled pid is left alone.

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's command line, or '' where /proc does not tell (not Linux, or gone). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/**
 * Stops the process `pidFile` names if it still runs and its command line holds `marker` (the data
 * directory or file it serves): `signal` first, SIGKILL after `graceMs`. Returns the pid it stopped.
 */
export async function stopOrphan(pidFile: string, marker: string, { signal = 'SIGTERM' as NodeJS.Signals, graceMs = 15_000 } = {}): Promise<number | undefined> {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !alive(pid) || !commandLine(pid).includes(marker)) return undefined;
  process.kill(pid, signal);
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  return pid;
}

export function recordPid(pidFile: string, pid: number | undefined): void {
  if (pid !== undefined) writeFileSync(pidFile, `${pid}\n`);
}

export function forgetPid(pidFile: string): void {
  rmSync(pidFile, { force: true });
}
