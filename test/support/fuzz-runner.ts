import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ParseOptions } from '../../discovery/connectors/index.js';

// Runs fuzzed reports through the connectors in a child process with a deadline per report.
// A report that does not finish in time kills the child (a synchronous loop included) and comes
// back as a timeout; the next report gets a fresh child. The child's heap is capped, so runaway
// memory is an out-of-memory failure of that report, not of the machine; its peak RSS (the
// kernel's high-water mark) is what the memory bound is checked against.

export interface FuzzRequest {
  id: number;
  file: string;
  /** The format to force; undefined: detected from the file, as `ctem ingest` does without --format. */
  format?: string;
  options: ParseOptions;
}

export type FuzzResult =
  /** detectMs: the time detection took, when the format was not forced. */
  | { id: number; outcome: 'parsed'; findings: number; problems: string[]; ms: number; detectMs?: number }
  | { id: number; outcome: 'refused'; message: string; ms: number; detectMs?: number }
  | { id: number; outcome: 'crashed'; message: string; ms: number }
  | { id: number; outcome: 'timeout'; ms: number };

const WORKER = fileURLToPath(new URL('./fuzz-worker.ts', import.meta.url));
const HEAP_LIMIT_MB = 1024;

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

interface Child {
  process: ChildProcess;
  ready: Promise<void>;
  waiting?: { id: number; resolve: (r: FuzzResult) => void };
  /** RSS once the connectors are loaded, before the first report. */
  baseline: number;
}

export class FuzzRunner {
  private child: Child | undefined;
  private nextId = 0;
  /** Crashes reported outside the report they belong to (an unhandled rejection after it finished). */
  readonly strays: string[] = [];
  /** Largest growth of a child's peak RSS over its loaded baseline since resetPeak. */
  peakGrowth = 0;

  private spawn(): Child {
    const proc = fork(WORKER, [], { execArgv: ['--import', 'tsx', `--max-old-space-size=${HEAP_LIMIT_MB}`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let started!: () => void;
    const child: Child = { process: proc, ready: new Promise((resolve) => (started = resolve)), baseline: 0 };
    proc.on('message', (result: FuzzResult) => {
      if (result.id === -1) {
        child.baseline = memoryOf(proc.pid!).rss;
        started();
      } else if (child.waiting && result.id === child.waiting.id) {
        const { resolve } = child.waiting;
        child.waiting = undefined;
        resolve(result);
      } else if (result.outcome === 'crashed') {
        this.strays.push(result.message);
      }
    });
    proc.on('exit', (code, signal) => {
      // Out of memory or an uncaught exception: the report under way crashed.
      if (this.child === child) this.child = undefined;
      const waiting = child.waiting;
      child.waiting = undefined;
      if (waiting) waiting.resolve({ id: waiting.id, outcome: 'crashed', message: `the parser's process died (exit code ${code}, signal ${signal})`, ms: 0 });
      started();
    });
    return child;
  }

  /**
   * Starts a new measurement: the live child's kernel high-water mark is reset to its present RSS
   * (clear_refs 5), which becomes the baseline growth is counted from.
   */
  resetPeak(): void {
    this.peakGrowth = 0;
    const child = this.child;
    if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
    try {
      writeFileSync(`/proc/${child.process.pid}/clear_refs`, '5');
      child.baseline = memoryOf(child.process.pid!).rss;
    } catch {
      // Gone meanwhile: the next report starts a fresh child with its own baseline.
    }
  }

  private notePeak(child: Child): void {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return;
    try {
      this.peakGrowth = Math.max(this.peakGrowth, memoryOf(child.process.pid!).peak - child.baseline);
    } catch {
      // The process has just gone; its last sample stands.
    }
  }

  async parse(request: Omit<FuzzRequest, 'id'>, timeoutMs: number): Promise<FuzzResult> {
    const child = (this.child ??= this.spawn());
    await child.ready;
    const id = this.nextId++;
    const started = performance.now();
    // The high-water mark is sampled too, in case the process is killed before the report ends.
    const sampler = setInterval(() => this.notePeak(child), 50);
    try {
      return await new Promise<FuzzResult>((resolve) => {
        const timer = setTimeout(() => {
          if (child.waiting?.id !== id) return;
          child.waiting = undefined;
          this.notePeak(child);
          if (this.child === child) this.child = undefined;
          child.process.kill('SIGKILL');
          resolve({ id, outcome: 'timeout', ms: performance.now() - started });
        }, timeoutMs);
        child.waiting = {
          id,
          resolve: (result) => {
            clearTimeout(timer);
            resolve(result);
          },
        };
        if (!child.process.connected) child.waiting.resolve({ id, outcome: 'crashed', message: "the parser's process is gone", ms: 0 });
        else child.process.send({ ...request, id } satisfies FuzzRequest);
      });
    } finally {
      clearInterval(sampler);
      this.notePeak(child);
    }
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
    const exited = new Promise((resolve) => child.process.once('exit', resolve));
    child.process.kill();
    await exited;
  }
}
