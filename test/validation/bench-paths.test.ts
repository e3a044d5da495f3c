import { describe, expect, inject, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// The attack-path benchmark as the project runs it (a child process), small: it must finish, print
// one JSON object, and its incremental refreshes must store what a full computation stores.

describe('npm run bench:paths', () => {
  it('computes the paths of a small generated estate, then incrementally after one change', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-paths.ts', ['--assets', '500', '--edges', '5000', '--findings', '20000', '--json'], {
      DATABASE_URL: inject('postgresUrl'),
    });
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);
    expect(result).toMatchObject({ assets: 500, findings: 20_000, sameAsFull: true, targetMet: expect.any(Boolean) });
    // Sized so the materialized edges come near the asked count (one rule makes 32 x 32 edges).
    expect(result.edges).toBeGreaterThan(2_500);
    expect(result.edges).toBeLessThan(10_000);
    expect(result.paths).toBeGreaterThan(0);
    expect(result.jewelsReached).toBeGreaterThan(0);
    expect(result.full.nodesWritten).toBe(result.nodes);
    // Nothing changed: no group rebuilt, no row written. One rule: one group rebuilt.
    expect(result.unchanged).toMatchObject({ groupsChanged: 0, nodesWritten: 0, ticketsWritten: 0 });
    expect(result.rule.groupsChanged).toBe(1);
    expect(result.membership.groupsChanged).toBeGreaterThanOrEqual(2);
    expect(result.check.nodesWritten).toBe(0);
    for (const key of ['full', 'unchanged', 'rule', 'membership', 'check']) expect(result[key].seconds, key).toBeGreaterThan(0);
    expect(result.targetMet).toBe(result.full.seconds <= 30 && result.rule.seconds <= 3 && result.membership.seconds <= 3);
  });
});
