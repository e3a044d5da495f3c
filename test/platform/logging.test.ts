import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { formatLogEntry } from '../../platform/logging.js';

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

  it('carry the stack at DEBUG, where someone asked for it', () => {
    expect(formatLogEntry({ ...entry, level: 'DEBUG' }, 'text')).toMatch(/\n\s+at /);
  });
});
