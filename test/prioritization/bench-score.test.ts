import { describe, expect, inject, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// The scoring benchmark as the project runs it (a child process), small: it must finish, print one
// JSON object with the documented fields, and its numbers must make sense together.

describe('npm run bench:score', () => {
  it('scores 20,000 generated findings and reports the timings as one JSON object', { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-score.ts', ['--findings', '20000', '--json'], { DATABASE_URL: inject('postgresUrl') });
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);
    expect(result).toMatchObject({
      findings: 20_000,
      events: 20_000,
      changed: 20_000,
      unchangedWrites: 0,
      targetMet: expect.any(Boolean),
      baseline: expect.stringContaining('update findings set score = score + 0'),
    });
    for (const key of ['seconds', 'baselineSeconds', 'ratio', 'unchangedSeconds', 'feedChangeSeconds', 'shadowSeconds']) {
      expect(result[key], key).toBeGreaterThan(0);
    }
    expect(Math.abs(result.ratio - result.seconds / result.baselineSeconds) / result.ratio).toBeLessThan(0.1);
    // Three (scoring, baseline) pairs by default; the reported one is the pair with the median ratio.
    const rounds = result.rounds as { seconds: number; baselineSeconds: number; ratio: number }[];
    expect(rounds).toHaveLength(3);
    for (const r of rounds) expect(r.seconds * r.baselineSeconds * r.ratio).toBeGreaterThan(0);
    const middle = [...rounds].sort((a, b) => a.ratio - b.ratio)[1]!;
    expect({ seconds: result.seconds, baselineSeconds: result.baselineSeconds, ratio: result.ratio }).toEqual(middle);
    expect(result.targetMet).toBe(result.seconds <= 15 && result.ratio <= 2);
    // Every finding got a tier; the shadow run predicted exactly the tier moves the feed change made.
    expect(Object.values(result.tiers as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(20_000);
    expect(result.shadow.movedUp + result.shadow.movedDown).toBe(result.feedChangeEvents);
  });
});
