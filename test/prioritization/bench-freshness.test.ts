import { describe, expect, inject, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// The freshness benchmark as the project runs it (a child process), small: it must finish, print one
// JSON object with the documented fields, and the unchanged re-score must do no work.

describe('npm run bench:freshness', () => {
  it('measures an unchanged re-score, a KEV change and a new EPSS file on 10,000 findings', { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-freshness.ts', ['--findings', '10000', '--rounds', '2', '--json'], { DATABASE_URL: inject('postgresUrl') });
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);
    expect(result).toMatchObject({ findings: 10_000, targets: { unchangedSeconds: 0.5, kevSeconds: 5, epssSeconds: 15 }, targetMet: expect.any(Boolean) });
    for (const key of ['firstSeconds', 'kevSeconds', 'epssSeconds']) expect(result[key], key).toBeGreaterThan(0);
    expect(result.unchangedSeconds).toBeGreaterThanOrEqual(0);
    expect(result.unchangedSeconds).toBeLessThan(result.firstSeconds);
    const { unchanged, kev, epss } = result.rounds;
    expect(unchanged).toEqual([expect.objectContaining({ mode: 'unchanged', changed: 0 }), expect.objectContaining({ mode: 'unchanged', changed: 0 })]);
    // Ten CVEs into KEV: only their findings are read, and each asset with a tier move is re-planned.
    for (const k of kev) {
      expect(k).toMatchObject({ mode: 'partial' });
      expect(k.findings).toBeGreaterThan(0);
      expect(k.findings).toBeLessThan(10_000);
      expect(k.assets).toBeLessThanOrEqual(k.events);
      expect(k.seconds).toBeGreaterThanOrEqual(k.scoringSeconds);
    }
    // One host exposed: its findings and those of the images on it, not the estate.
    for (const c of result.rounds.context) {
      expect(c).toMatchObject({ mode: 'partial' });
      expect(c.assetsRescored).toBeGreaterThan(0);
      expect(c.findings).toBeLessThan(10_000);
    }
    // Every EPSS score moved: the whole estate is rescored.
    for (const e of epss) expect(e).toMatchObject({ mode: 'full', changed: 10_000 });
    expect(result.targetMet).toBe(result.unchangedSeconds <= 0.5 && result.kevSeconds <= 5 && result.epssSeconds <= 15);
  });
});
