import { performance } from 'node:perf_hooks';
import { allowed, OutsideAllowListError, type AllowList, type Endpoint, type Gate, type Resolver } from './allow-list.js';
import { httpBanner, serviceBanner, tcpConnect, tlsInfo, type HttpBanner, type ServiceBanner, type TcpResult, type TlsResult } from './checks.js';
import { verifyControl, type ControlClaim, type ControlVerification } from './controls.js';
import { compareBanner, type VersionClaim, type VersionVerdict } from './version.js';

// Runs many probes the way a validation activity needs them: a bounded number at a time, new
// connections limited per second (token bucket), each task and the whole run under a deadline,
// progress reported regularly (the activity forwards it to Temporal's heartbeat), and an abort
// that destroys every socket. Every connection asks the allow-list first, right before it is
// opened; a task whose target it refuses is `skipped` and nothing is sent. Results come back in
// the order of the tasks, whatever order they finished in.

export type ProbeTask =
  | { id: string; kind: 'tcp'; host: string; port: number }
  | { id: string; kind: 'tls'; host: string; port: number; servername?: string }
  | { id: string; kind: 'http'; url: string; maxBytes?: number; expect?: VersionClaim }
  | { id: string; kind: 'banner'; host: string; port: number; expect?: VersionClaim }
  | { id: string; kind: 'control'; host: string; url?: string; control: ControlClaim };

export type ProbeResult = TcpResult | TlsResult | HttpBanner | ServiceBanner | ControlVerification;

export type ProbeOutcome =
  | {
      id: string;
      kind: ProbeTask['kind'];
      status: 'done';
      /** Whether the service answered (a connection was made); absent for controls. */
      reachable?: boolean;
      result: ProbeResult;
      /** The announced version against the finding's, when the task named one. */
      version?: VersionVerdict;
      /** The addresses actually connected to. */
      endpoints: Endpoint[];
      durationMs: number;
    }
  | { id: string; kind: ProbeTask['kind']; status: 'skipped'; reason: 'outside allow-list'; detail: string }
  | { id: string; kind: ProbeTask['kind']; status: 'skipped'; reason: 'budget exhausted' | 'cancelled'; detail: string }
  | { id: string; kind: ProbeTask['kind']; status: 'timeout'; detail: string; durationMs: number }
  | { id: string; kind: ProbeTask['kind']; status: 'error'; detail: string; durationMs: number };

export interface RunProgress {
  total: number;
  started: number;
  finished: number;
  running: number;
  done: number;
  skipped: number;
  timedOut: number;
  errors: number;
  /** Connections opened so far (each passed the allow-list and the rate limit). */
  connections: number;
  elapsedMs: number;
}

export interface RunOptions {
  allowList: AllowList;
  /** Tasks in flight at once; default 4. */
  concurrency?: number;
  /** New connections per second at most; default 10. */
  connectionsPerSecond?: number;
  /** Connections that may open at once before the rate applies; default 1. */
  burst?: number;
  /** Deadline of one task (all its connections); default 15 s. */
  taskTimeoutMs?: number;
  /** Deadline of one connection's probe; default 5 s (capped by the task's deadline). */
  probeTimeoutMs?: number;
  /** Deadline of the whole run: tasks not started by then are skipped, running ones stopped; default 10 min. */
  budgetMs?: number;
  /** Called every heartbeatIntervalMs and after every task; a throw stops the run and is rethrown. */
  heartbeat?: (progress: RunProgress) => void;
  heartbeatIntervalMs?: number;
  signal?: AbortSignal;
  /** Where the probes run from (`internet`, `internal`...), for control tasks. */
  vantage?: string;
  dnsTimeoutMs?: number;
  resolve?: Resolver;
}

export interface RunReport {
  results: ProbeOutcome[];
  progress: RunProgress;
  /** True when the run's signal aborted it (the remaining tasks are `cancelled`). */
  cancelled: boolean;
}

const KINDS = new Set(['tcp', 'tls', 'http', 'banner', 'control']);
/** A probe reads a version endpoint, not a download: more than this is refused up front. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Checks every task before anything runs; throws naming the task and field at fault. */
export function validateTasks(tasks: readonly ProbeTask[]): void {
  if (!Array.isArray(tasks)) throw new TypeError('probe tasks: expected an array');
  const ids = new Set<string>();
  tasks.forEach((task, i) => {
    const fail = (field: string, why: string): never => {
      throw new TypeError(`probe task ${i} (${(task as { id?: unknown })?.id ?? 'no id'}): ${field}: ${why}`);
    };
    if (!task || typeof task !== 'object') fail('task', 'not an object');
    if (typeof task.id !== 'string' || !task.id) fail('id', 'a non-empty string is required');
    if (ids.has(task.id)) fail('id', 'used by an earlier task');
    ids.add(task.id);
    if (!KINDS.has(task.kind)) fail('kind', `"${String(task.kind)}" is not one of ${[...KINDS].join(', ')}`);
    if (task.kind === 'http') {
      let url: URL | undefined;
      try {
        url = new URL(task.url);
      } catch {
        fail('url', `"${task.url}" is not a URL`);
      }
      if (url!.protocol !== 'http:' && url!.protocol !== 'https:') fail('url', 'http or https only');
      if (url!.username || url!.password) fail('url', 'must not carry credentials');
      if (task.maxBytes !== undefined && !(Number.isInteger(task.maxBytes) && task.maxBytes >= 0 && task.maxBytes <= MAX_BODY_BYTES)) {
        fail('maxBytes', `${task.maxBytes} is not a whole number from 0 to ${MAX_BODY_BYTES}`);
      }
    } else {
      if (typeof task.host !== 'string' || !task.host.trim()) fail('host', 'a host name or address is required');
      if (task.kind !== 'control' && (!Number.isInteger(task.port) || task.port < 1 || task.port > 65535)) fail('port', `${task.port} is not 1-65535`);
      if (task.kind === 'control' && (!task.control || typeof task.control !== 'object')) fail('control', 'the control to verify is required');
    }
    if ('expect' in task && task.expect && (!task.expect.component || !task.expect.version)) fail('expect', 'needs component and version');
  });
}

/** Runs the tasks; never contacts anything the allow-list refuses. */
export async function runProbes(tasks: readonly ProbeTask[], options: RunOptions): Promise<RunReport> {
  validateTasks(tasks);
  if (!options?.allowList) throw new TypeError('runProbes: options.allowList is required (an empty list allows nothing)');
  const concurrency = positive('concurrency', options.concurrency ?? 4);
  const rate = positive('connectionsPerSecond', options.connectionsPerSecond ?? 10);
  const taskTimeoutMs = positive('taskTimeoutMs', options.taskTimeoutMs ?? 15_000);
  const probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? 5_000);
  const budgetMs = positive('budgetMs', options.budgetMs ?? 600_000);
  const bucket = new TokenBucket(rate, positive('burst', options.burst ?? 1));
  const started = performance.now();

  const budget = AbortSignal.timeout(budgetMs);
  const runSignal = options.signal ? AbortSignal.any([options.signal, budget]) : budget;
  // A throwing heartbeat stops the run like a cancellation, and its error is rethrown at the end.
  const stop = new AbortController();
  const anyStop = AbortSignal.any([runSignal, stop.signal]);
  let heartbeatError: unknown;

  const progress: RunProgress = { total: tasks.length, started: 0, finished: 0, running: 0, done: 0, skipped: 0, timedOut: 0, errors: 0, connections: 0, elapsedMs: 0 };
  const beat = () => {
    if (!options.heartbeat || heartbeatError !== undefined) return;
    try {
      options.heartbeat({ ...progress, elapsedMs: Math.round(performance.now() - started) });
    } catch (err) {
      heartbeatError = err;
      stop.abort(err);
    }
  };
  const ticker = setInterval(beat, options.heartbeatIntervalMs ?? 1000);

  const results: ProbeOutcome[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      const task = tasks[index]!;
      if (anyStop.aborted) {
        const why = budget.aborted && !options.signal?.aborted && heartbeatError === undefined ? 'budget exhausted' : 'cancelled';
        results[index] = { id: task.id, kind: task.kind, status: 'skipped', reason: why, detail: `not started: the run was ${why === 'cancelled' ? 'cancelled' : `over its ${budgetMs} ms budget`}` };
      } else {
        progress.started++;
        progress.running++;
        results[index] = await runTask(task, { ...options, taskTimeoutMs, probeTimeoutMs, budgetMs, signal: anyStop, budget, bucket, progress });
        progress.running--;
      }
      const r = results[index]!;
      progress.finished++;
      if (r.status === 'done') progress.done++;
      else if (r.status === 'skipped') progress.skipped++;
      else if (r.status === 'timeout') progress.timedOut++;
      else progress.errors++;
      beat();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  } finally {
    clearInterval(ticker);
  }
  progress.elapsedMs = Math.round(performance.now() - started);
  if (heartbeatError !== undefined) throw heartbeatError;
  return { results, progress, cancelled: options.signal?.aborted === true };
}

interface TaskContext extends RunOptions {
  taskTimeoutMs: number;
  probeTimeoutMs: number;
  budgetMs: number;
  signal: AbortSignal;
  budget: AbortSignal;
  bucket: TokenBucket;
  progress: RunProgress;
}

async function runTask(task: ProbeTask, ctx: TaskContext): Promise<ProbeOutcome> {
  const started = performance.now();
  const taskTimeout = AbortSignal.timeout(ctx.taskTimeoutMs);
  const signal = AbortSignal.any([ctx.signal, taskTimeout]);
  const endpoints: Endpoint[] = [];
  const refusals: string[] = [];
  // The one way a probe gets an address: a token, then the allow-list, then connect at once (a
  // refused target spends a token but is never contacted).
  const gate: Gate = async (host, port) => {
    signal.throwIfAborted();
    await ctx.bucket.take(signal);
    const decision = await allowed(ctx.allowList, { host, port }, { signal, ...(ctx.dnsTimeoutMs !== undefined && { dnsTimeoutMs: ctx.dnsTimeoutMs }), ...(ctx.resolve && { resolve: ctx.resolve }) });
    if (!decision.allowed) {
      refusals.push(decision.reason);
      throw new OutsideAllowListError(decision);
    }
    const endpoint: Endpoint = { host, port, address: decision.address, ...(decision.servername && { servername: decision.servername }) };
    endpoints.push(endpoint);
    ctx.progress.connections++;
    return endpoint;
  };
  const timeoutMs = () => Math.max(1, Math.min(ctx.probeTimeoutMs, ctx.taskTimeoutMs - (performance.now() - started)));
  const durationMs = () => Math.round(performance.now() - started);
  const base = { id: task.id, kind: task.kind };
  try {
    const done = (result: ProbeResult, extra: { reachable?: boolean; version?: VersionVerdict } = {}): ProbeOutcome => ({
      ...base,
      status: 'done',
      ...extra,
      result,
      endpoints,
      durationMs: durationMs(),
    });
    switch (task.kind) {
      case 'tcp': {
        const e = await gate(task.host, task.port);
        const result = await tcpConnect(e.address, task.port, { timeoutMs: timeoutMs(), signal });
        return done(result, { reachable: result.state === 'open' });
      }
      case 'tls': {
        const e = await gate(task.host, task.port);
        const servername = task.servername ?? e.servername;
        const result = await tlsInfo(e.address, task.port, { timeoutMs: timeoutMs(), signal, ...(servername && { servername }) });
        return done(result, { reachable: result.state === 'tls' || result.state === 'not_tls' });
      }
      case 'banner': {
        const e = await gate(task.host, task.port);
        const result = await serviceBanner(e.address, task.port, { timeoutMs: timeoutMs(), waitMs: Math.min(2000, timeoutMs()), signal });
        const reachable = result.state === 'banner' || result.state === 'silent';
        return done(result, { reachable, ...(task.expect && { version: compareBanner(task.expect, result.state === 'banner' ? [result.line] : []) }) });
      }
      case 'http': {
        const url = new URL(task.url);
        const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
        const e = await gate(url.hostname.replace(/^\[|\]$/g, ''), port);
        const result = await httpBanner(url, { address: e.address, timeoutMs: timeoutMs(), signal, ...(task.maxBytes !== undefined && { maxBytes: task.maxBytes }) });
        const reachable = result.outcome === 'response';
        return done(result, { reachable, ...(task.expect && { version: compareBanner(task.expect, result.outcome === 'response' ? [result.server, result.poweredBy] : []) }) });
      }
      case 'control': {
        const result = await verifyControl(task.control, { host: task.host, ...(task.url && { url: task.url }) }, { vantage: ctx.vantage ?? 'unknown', gate, timeoutMs: timeoutMs(), signal });
        // Refused everywhere it would have gone: nothing was contacted, say so plainly.
        if (endpoints.length === 0 && refusals.length > 0) return { ...base, status: 'skipped', reason: 'outside allow-list', detail: refusals.join('; ') };
        return done(result);
      }
    }
  } catch (err) {
    if (err instanceof OutsideAllowListError) return { ...base, status: 'skipped', reason: 'outside allow-list', detail: err.decision.reason };
    if (signal.aborted) {
      if (ctx.budget.aborted) return { ...base, status: 'timeout', detail: `stopped: the run exceeded its ${ctx.budgetMs} ms budget`, durationMs: durationMs() };
      if (taskTimeout.aborted && !ctx.signal.aborted) return { ...base, status: 'timeout', detail: `the task exceeded ${ctx.taskTimeoutMs} ms`, durationMs: durationMs() };
      return { ...base, status: 'skipped', reason: 'cancelled', detail: 'stopped: the run was cancelled' };
    }
    return { ...base, status: 'error', detail: err instanceof Error ? err.message : String(err), durationMs: durationMs() };
  }
}

/** Connections per second with a burst: tokens refill continuously; takers wait their turn (FIFO). */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.wait(signal));
    // A cancelled taker must not block the ones behind it.
    this.queue = turn.catch(() => {});
    return turn;
  }

  private async wait(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.refill();
    if (this.tokens < 1) {
      await sleep(((1 - this.tokens) / this.perSecond) * 1000, signal);
      this.refill();
    }
    this.tokens -= 1;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    const timer = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`runProbes: ${name} must be a positive number, got ${value}`);
  return value;
}
