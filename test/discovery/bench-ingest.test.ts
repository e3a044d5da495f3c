import { describe, expect, inject, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// The ingest benchmark as `npm run bench:ingest` runs it, at a small scale, against the shared
// test server (the script creates and drops a database of its own there).

describe('bench:ingest', () => {
  it('measures ingest, re-ingest and the COPY baseline, and the re-ingest changes nothing', { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-ingest.ts', ['--findings', '20000', '--assets', '20', '--json'], { DATABASE_URL: inject('postgresUrl') });
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({
      findings: 20000,
      assets: 20,
      reports: 20,
      reingest: { findings: 20000, newFindings: 0, reopenedFindings: 0, closedFindings: 0, unchanged: true },
      target: { reingestChangedNothing: true, millionFindings: false, met: false },
    });
    for (const field of ['seconds', 'findingsPerSecond', 'copyRowsPerSecond', 'ratio', 'peakRssMb', 'reingestSeconds', 'copySeconds']) {
      expect(result[field], field).toBeGreaterThan(0);
    }
    expect(result.findingsPerSecond).toBeCloseTo(20000 / result.seconds, -2);
    expect(result.ratio).toBeCloseTo(result.findingsPerSecond / result.copyRowsPerSecond, 2);
    expect(Object.values(result.target).every((v) => typeof v === 'boolean')).toBe(true);
  });

  it('reports larger than the inline batch go through COPY and merge the same', { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runScript('scripts/bench-ingest.ts', ['--findings', '12000', '--assets', '2', '--concurrency', '1', '--json'], { DATABASE_URL: inject('postgresUrl') });
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ findings: 12000, reports: 2, reingest: { newFindings: 0, unchanged: true } });
  });
});
