import { describe, expect, inject, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// The remediation benchmark as the project runs it (a child process with its own Temporal dev
// server), small: every timer fires, no escalation comes early, and it prints one JSON object.

describe('npm run bench:remediation', () => {
  it('starts 40 remediation workflows, fires every acknowledgement timer once and reports as one JSON object', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-remediation.ts', ['--workflows', '40', '--ack', '3s', '--cache', '10', '--json'], { TEMPORAL_ADDRESS: undefined, CTEM_WORKFLOW_BUNDLE: inject('workflowBundle') });
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);
    expect(result).toMatchObject({ workflows: 40, maxCachedWorkflows: 10, ticketsOpened: 40, escalations: 40, complete: true });
    expect(result.startsPerSecond).toBeGreaterThan(0);
    // Lateness is measured from the deadline: never negative (no timer fires early), p50 <= p99 <= max.
    expect(result.latenessMs.p50).toBeGreaterThanOrEqual(0);
    expect(result.latenessMs.p99).toBeGreaterThanOrEqual(result.latenessMs.p50);
    expect(result.latenessMs.max).toBeGreaterThanOrEqual(result.latenessMs.p99);
    expect(result.peakRssMb).toBeGreaterThan(0);
  });
});
