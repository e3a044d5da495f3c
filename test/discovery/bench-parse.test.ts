import { describe, expect, it } from 'vitest';
import { benchParse, SAMPLES } from '../../scripts/bench-parse.js';
import { corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { runScript } from '../support/scripts.js';

// The parse benchmark amplifies real reports and parses them in-process. Its figures are only worth
// reading if the amplified reports are what they claim: exactly `copies` times the real report's
// findings, no warnings, memory that does not grow with the file.
describe.skipIf(!hasCorpus)(`bench:parse${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  it('amplifies every benchmarked real report into one that parses to copies x its findings, in flat memory', { timeout: 120_000 }, async () => {
    const figures = await benchParse(8);
    expect(figures.map((f) => f.format)).toEqual(SAMPLES.map((s) => s.format));
    for (const f of figures) {
      expect(f.findingsPerCopy, f.format).toBeGreaterThan(0);
      expect(f.copies, f.format).toBeGreaterThan(1);
      expect(f.findings, f.format).toBe(f.copies * f.findingsPerCopy);
      expect(f.megabytes, f.format).toBeGreaterThanOrEqual(7.9);
      expect(f.warnings, f.format).toBe(0);
      expect(f.mbPerSecond, f.format).toBeGreaterThan(0);
      expect(f.rssGrowthMb, `${f.format}: RSS growth while parsing ${f.megabytes} MB`).toBeLessThan(100);
    }
  });

  it('names an unknown format and the ones it benchmarks', async () => {
    const run = await runScript('scripts/bench-parse.ts', ['--mb', '1', '--formats', 'trivy-json,nope']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--formats: unknown nope (benchmarked: trivy-json, grype,');
  });
});
