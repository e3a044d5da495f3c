import type { LogEntry } from '@temporalio/worker';

// How the worker's log lines look. One line per event: a failing scan used to print about forty
// lines of stack traces (the activity's, then the workflow's), though its message says it all.
// `text` (default): `2026-12-07T22:15:43.724Z WARN Activity failed activityType=ingestReport
// workflowId=... error="ApplicationFailure: t.json: trivy-json: not valid JSON: ..."`. `json`: one
// JSON object per line, for a log pipeline. Stacks appear at DEBUG, where someone asked for them.

export type LogFormat = 'text' | 'json';

/** Identifiers nobody reads in a log line: the task token is a long opaque blob. */
const NOISE = new Set(['taskToken', 'sdkComponent', 'isLocal']);

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
  const fields = Object.entries(entry.meta ?? {}).filter(([k, v]) => !NOISE.has(k) && v !== undefined);
  if (format === 'json') {
    return JSON.stringify({ at, level: entry.level, message: entry.message, ...Object.fromEntries(fields.map(([k, v]) => [k, plain(v, withStack)])) });
  }
  const parts = fields.map(([k, v]) => {
    const value = plain(v, false);
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return `${k}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
  });
  const stacks = withStack ? fields.flatMap(([, v]) => (v instanceof Error && v.stack ? [v.stack] : [])) : [];
  return [[at, entry.level, entry.message, ...parts].join(' '), ...stacks].join('\n');
}
