import type { LogEntry, LogLevel } from '@temporalio/worker';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';

// How the platform's log lines look, the worker's and the API's alike. One line per event: a failing
// scan used to print about forty lines of stack traces (the activity's, then the workflow's), though
// its message says it all. `text` (default): `2026-12-07T22:15:43.724Z WARN Activity failed
// activityType=ingestReport workflowId=... error="ApplicationFailure: t.json: trivy-json: not valid
// JSON: ..."`. `json`: one JSON object per line, for a log pipeline. Stacks appear at DEBUG, where
// someone asked for them. Every line passes through redact() on its way out.

export type LogFormat = 'text' | 'json';
export type { LogLevel };

/** Identifiers nobody reads in a log line: the task token is a long opaque blob. */
const NOISE = new Set(['taskToken', 'sdkComponent', 'isLocal', 'trace_flags']);
/** OpenTelemetry's interceptors name these in snake case; the platform's fields are camel case. */
const RENAMED: Record<string, string> = { trace_id: 'traceId', span_id: 'spanId' };

// ---------------------------------------------------------------------------------------------
// Redaction: the values of configured secrets, whatever field or message carries them; fields named
// like credentials (a headers object's Authorization or Cookie); credentials in URLs and in
// Authorization-style text.

const REDACTED = '[redacted]';
const secretValues = new Set<string>();
const SECRET_FIELD = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|apikey|password|passwd|secret|token|x-ctem-signature|x-hub-signature|x-slack-signature)$/i;

/**
 * Values never to print: configured tokens, webhook secrets, passwords. Short values are refused
 * (replacing a 3-letter word everywhere would garble every line); configured secrets are long.
 */
export function addSecretsToRedact(values: Iterable<string | undefined | null>): void {
  for (const value of values) {
    if (!value || value.length < 8) continue;
    secretValues.add(value);
    // A secret in a URL is percent-encoded there.
    const encoded = encodeURIComponent(value);
    if (encoded !== value) secretValues.add(encoded);
  }
}

/** The password of a connection URL (postgres://user:password@host/db), when it has one. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/** The text with every registered secret, URL credential and Bearer/Basic credential replaced. */
export function redact(text: string): string {
  let out = text;
  for (const value of secretValues) if (out.includes(value)) out = out.split(value).join(REDACTED);
  return out
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/\s@"']+:)[^@\s/"']+@/gi, `$1${REDACTED}@`)
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`);
}

function redactFields(value: unknown, depth = 0): unknown {
  if (depth > 4 || !value || typeof value !== 'object' || value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => redactFields(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? REDACTED : redactFields(v, depth + 1)]));
}

// ---------------------------------------------------------------------------------------------

function errorText(err: Error, withStack: boolean): string {
  const cause = (err as { cause?: unknown }).cause;
  // Temporal wraps the activity's own failure ("Activity task failed"); the cause is what happened.
  const own = `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`;
  const text = cause instanceof Error ? `${own}: ${errorText(cause, false)}` : own;
  return withStack && err.stack ? `${text}\n${err.stack}` : text;
}

function plain(value: unknown, withStack: boolean): unknown {
  if (value instanceof Error) return errorText(value, withStack);
  return value;
}

export function formatLogEntry(entry: LogEntry, format: LogFormat, withStack = entry.level === 'DEBUG' || entry.level === 'TRACE'): string {
  const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const fields = Object.entries(entry.meta ?? {})
    .filter(([k, v]) => !NOISE.has(k) && v !== undefined)
    .map(([k, v]): [string, unknown] => [RENAMED[k] ?? k, SECRET_FIELD.test(k) ? REDACTED : redactFields(v)]);
  if (format === 'json') {
    // A field named like the line's own keys (a workflow's `message`) must not replace them.
    const own = new Set(['at', 'level', 'message']);
    return redact(JSON.stringify({ at, level: entry.level, message: entry.message, ...Object.fromEntries(fields.map(([k, v]) => [own.has(k) ? `${k}Field` : k, plain(v, withStack)])) }));
  }
  const parts = fields.map(([k, v]) => {
    const value = plain(v, false);
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return `${k}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
  });
  const stacks = withStack ? fields.flatMap(([, v]) => (v instanceof Error && v.stack ? [v.stack] : [])) : [];
  return redact([[at, entry.level, entry.message, ...parts].join(' '), ...stacks].join('\n'));
}

// ---------------------------------------------------------------------------------------------
// The API's log lines, in the same format as the worker's.

const LEVELS: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/**
 * Lines the SDK writes about a failure the platform reports in its own line, so that a failed scan
 * is one line at WARN (the discovery workflow's "scan failed", naming the scan and the reason):
 * the SDK's "Workflow failed" of a discovery workflow, and "Activity failed" for a failure that is
 * final (non-retryable: the workflow that called it reports it, or fails and the SDK says so).
 * A failure that will be retried keeps its line: it says what is wrong while it lasts. Shown at
 * DEBUG, where someone asked for everything.
 */
export function reportedElsewhere(entry: LogEntry): boolean {
  const meta = entry.meta ?? {};
  if (entry.message === 'Workflow failed') return meta.workflowType === 'discoveryWorkflow';
  if (entry.message !== 'Activity failed') return false;
  for (let err: unknown = meta.error, depth = 0; err instanceof Error && depth < 4; err = (err as { cause?: unknown }).cause, depth++) {
    if ((err as { nonRetryable?: unknown }).nonRetryable === true) return true;
  }
  return false;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'WARN'): LogLevel {
  const upper = value?.toUpperCase();
  return LEVELS.includes(upper as LogLevel) ? (upper as LogLevel) : fallback;
}

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string, meta?: Record<string, unknown>): void;
}

/** Lines at `level` and above, to stderr (WARN, ERROR) or stdout, formatted and redacted. */
export function createLogger({ level, format, write }: { level: LogLevel; format: LogFormat; write?: (line: string, level: LogLevel) => void }): Logger {
  const min = LEVELS.indexOf(level);
  const out = write ?? ((line: string, at: LogLevel) => (at === 'ERROR' || at === 'WARN' ? process.stderr : process.stdout).write(`${line}\n`));
  return {
    level,
    enabled: (at) => LEVELS.indexOf(at) >= min,
    log(at, message, meta = {}) {
      if (LEVELS.indexOf(at) < min) return;
      out(formatLogEntry({ level: at, message, meta, timestampNanos: BigInt(Date.now()) * 1_000_000n }, format), at);
    },
  };
}

/**
 * One line per request worth a look: a 5xx at ERROR (with its error), a slow request at WARN, every
 * other request at INFO (so quiet at the default WARN). Carries the request id, the caller's
 * identity id (never its token) and the trace id when tracing is on; never headers or bodies.
 */
export function requestLog(logger: Logger, { slowMs, traceId }: { slowMs: number; traceId?: () => string | undefined }): MiddlewareHandler {
  return async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const status = c.res.status;
    const level: LogLevel = status >= 500 ? 'ERROR' : ms >= slowMs ? 'WARN' : 'INFO';
    if (!logger.enabled(level)) return;
    const matched = routePath(c, -1);
    const principal = c.get('principal') as { id?: string } | undefined;
    logger.log(level, status >= 500 ? 'request failed' : ms >= slowMs ? 'slow request' : 'request', {
      method: c.req.method,
      route: matched.endsWith('*') ? 'unmatched' : matched,
      path: c.req.path,
      status,
      durationMs: Math.round(ms),
      requestId: c.get('requestId') as string | undefined,
      identity: principal?.id,
      traceId: traceId?.(),
      error: status >= 500 ? (c.error ?? undefined) : undefined,
    });
  };
}
