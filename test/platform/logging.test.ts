import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { addSecretsToRedact, createLogger, formatLogEntry, redact, reportedElsewhere, requestLog, urlPassword } from '../../platform/logging.js';

// A failing scan is one log line per event, naming what failed and why, not forty lines of stacks.

const failure = ApplicationFailure.nonRetryable('t.json: trivy-json: not valid JSON: the report ends early at byte 2500', 'ReportError');
const wrapped = new ActivityFailure('Activity task failed', 'ingestReport', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', failure);
const entry = {
  level: 'WARN' as const,
  message: 'Activity failed',
  timestampNanos: BigInt(Date.parse('2026-12-07T22:15:43.724Z')) * 1_000_000n,
  meta: { sdkComponent: 'worker', taskToken: 'CiQwMWEy...', activityType: 'ingestReport', attempt: 1, workflowId: 'discovery:trivy-json:b329', error: wrapped },
};

describe('worker log lines', () => {
  it('are one line: time, level, message, fields, and the error with its cause, without the task token', () => {
    const line = formatLogEntry(entry, 'text');
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toBe(
      '2026-12-07T22:15:43.724Z WARN Activity failed activityType=ingestReport attempt=1 workflowId=discovery:trivy-json:b329 ' +
        'error="ActivityFailure: Activity task failed: ApplicationFailure: t.json: trivy-json: not valid JSON: the report ends early at byte 2500"',
    );
  });

  it('are one JSON object per line with CTEM_LOG_FORMAT=json', () => {
    const line = formatLogEntry(entry, 'json');
    expect(JSON.parse(line)).toEqual({
      at: '2026-12-07T22:15:43.724Z',
      level: 'WARN',
      message: 'Activity failed',
      activityType: 'ingestReport',
      attempt: 1,
      workflowId: 'discovery:trivy-json:b329',
      error: 'ActivityFailure: Activity task failed: ApplicationFailure: t.json: trivy-json: not valid JSON: the report ends early at byte 2500',
    });
  });

  it('leave a final failure to the line of whoever reports it, and keep a failure that will be retried', () => {
    expect(reportedElsewhere(entry)).toBe(true);
    expect(reportedElsewhere({ ...entry, meta: { ...entry.meta, error: failure } })).toBe(true);
    const retried = ApplicationFailure.retryable('connect ECONNREFUSED 127.0.0.1:5433', 'Error');
    expect(reportedElsewhere({ ...entry, meta: { ...entry.meta, error: retried } })).toBe(false);
    expect(reportedElsewhere({ ...entry, meta: { ...entry.meta, error: new Error('connect ECONNREFUSED') } })).toBe(false);
    const workflowFailed = { ...entry, message: 'Workflow failed', meta: { workflowType: 'discoveryWorkflow', error: wrapped } };
    expect(reportedElsewhere(workflowFailed)).toBe(true);
    expect(reportedElsewhere({ ...workflowFailed, meta: { workflowType: 'remediationWorkflow', error: wrapped } })).toBe(false);
    expect(reportedElsewhere({ ...entry, message: 'scan failed' })).toBe(false);
  });

  it('keep their own message when a field is called message', () => {
    expect(JSON.parse(formatLogEntry({ ...entry, message: 'scan failed', meta: { message: 'the reason' } }, 'json'))).toMatchObject({ message: 'scan failed', messageField: 'the reason' });
  });

  it('carry the stack at DEBUG, where someone asked for it', () => {
    expect(formatLogEntry({ ...entry, level: 'DEBUG' }, 'text')).toMatch(/\n\s+at /);
  });
});

describe('redaction', () => {
  const secret = 'sn-webhook-secret-9f8e7d6c5b4a';
  addSecretsToRedact([secret, 'short', urlPassword('postgres://ctem:pg%2Fpass%40word1@db:5432/ctem')]);

  it('replaces a configured secret wherever a line carries it, and leaves short values alone', () => {
    const line = formatLogEntry({ ...entry, message: `signature check with ${secret}`, meta: { detail: { nested: [`x${secret}y`] } } }, 'json');
    expect(line).not.toContain(secret);
    expect(JSON.parse(line)).toMatchObject({ message: 'signature check with [redacted]', detail: { nested: ['x[redacted]y'] } });
    expect(redact('a short word')).toBe('a short word');
  });

  it('replaces credential-named fields, URL passwords and Bearer or Basic credentials', () => {
    const line = formatLogEntry({ ...entry, meta: { headers: { Authorization: 'Bearer abc', cookie: 'ctem_session=xyz', accept: 'json' }, password: 'p' } }, 'text');
    expect(line).toContain('headers="{\\"Authorization\\":\\"[redacted]\\",\\"cookie\\":\\"[redacted]\\",\\"accept\\":\\"json\\"}"');
    expect(line).toContain('password=[redacted]');
    expect(redact('connect postgres://ctem:other-pass@db/ctem failed')).toBe('connect postgres://ctem:[redacted]@db/ctem failed');
    // The configured database password, also where it appears decoded.
    expect(redact('auth failed for pg/pass@word1')).toBe('auth failed for [redacted]');
    expect(redact('GET with Authorization: Bearer tok_0123456789')).toBe('GET with Authorization: Bearer [redacted]');
  });
});

describe('API request lines', () => {
  function app(level: 'WARN' | 'INFO') {
    const lines: string[] = [];
    const logger = createLogger({ level, format: 'json', write: (line) => lines.push(line) });
    const hono = new Hono();
    hono.use('*', async (c, next) => {
      c.set('requestId' as never, 'req-42' as never);
      c.set('principal' as never, { id: 'ident-7', name: 'ci' } as never);
      await next();
    });
    hono.use('*', requestLog(logger, { slowMs: 50, traceId: () => 'a'.repeat(32) }));
    hono.get('/ok/:id', (c) => c.text('ok'));
    hono.get('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 80));
      return c.text('late');
    });
    hono.get('/boom', () => {
      throw new Error('database exploded');
    });
    hono.onError((_err, c) => c.text('internal', 500));
    return { hono, lines };
  }

  it('are quiet at WARN: only 5xx (with the error) and slow requests', async () => {
    const { hono, lines } = app('WARN');
    await hono.request('/ok/1', { headers: { authorization: 'Bearer secret-token-1' } });
    await hono.request('/slow');
    await hono.request('/boom');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => [l.level, l.message, l.route, l.status])).toEqual([
      ['WARN', 'slow request', '/slow', 200],
      ['ERROR', 'request failed', '/boom', 500],
    ]);
    expect(parsed[1]).toMatchObject({ requestId: 'req-42', identity: 'ident-7', traceId: 'a'.repeat(32), error: 'database exploded' });
  });

  it('name every request at INFO, by route pattern, without headers', async () => {
    const { hono, lines } = app('INFO');
    await hono.request('/ok/1', { headers: { authorization: 'Bearer secret-token-1' } });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'INFO', message: 'request', method: 'GET', route: '/ok/:id', path: '/ok/1', status: 200, requestId: 'req-42', identity: 'ident-7' });
    expect(lines[0]).not.toContain('secret-token-1');
  });
});
