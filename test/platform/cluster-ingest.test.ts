import { describe, expect, it } from 'vitest';
import { runScript } from '../support/scripts.js';

// bench:ingest --cluster at a small size: the generated Trivy reports uploaded through two API
// processes and ingested by two worker processes on a real Temporal server, then ingested again
// in-process into a fresh database; the two estates must be the same. Starts a cluster of its own,
// so it runs in `npm run test:cluster` only (CTEM_CLUSTER_TEST=1).

const enabled = process.env.CTEM_CLUSTER_TEST === '1';

interface ClusterResult {
  mode: string;
  findings: number;
  reports: number;
  seconds: number;
  scans: { running: number; completed: number; failed: number };
  uploadsPerApi: Record<string, number>;
  ingestsPerWorker: Record<string, number>;
  counts: {
    cluster: Record<string, number | string>;
    inProcess: Record<string, number | string>;
    identical: boolean;
    differences: string[];
  };
}

describe.runIf(enabled)('bench:ingest --cluster', () => {
  it('refuses the cluster options without --cluster, naming them', async () => {
    const { code, stderr } = await runScript('scripts/bench-ingest.ts', ['--findings', '100', '--workers', '3']);
    expect(code).toBe(1);
    expect(stderr).toContain('--apis, --workers, --uploads and --max-seconds apply to --cluster only');
  });

  it('ingests 20,000 findings through two APIs and two workers with the counts of a single-process run', async () => {
    const { code, stdout, stderr } = await runScript(
      'scripts/bench-ingest.ts',
      ['--cluster', '--findings', '20000', '--assets', '60', '--apis', '2', '--workers', '2', '--json'],
      { DATABASE_URL: undefined, TEMPORAL_ADDRESS: undefined },
    );
    expect(code, stderr).toBe(0);
    const r = JSON.parse(stdout) as ClusterResult;
    expect(r.mode).toBe('cluster');
    expect(r.reports).toBe(60);
    expect(r.scans).toEqual({ running: 0, completed: 60, failed: 0 });
    expect(r.findings).toBe(20_000);
    expect(r.counts.differences).toEqual([]);
    expect(r.counts.identical).toBe(true);
    expect(r.counts.cluster.findings).toBe(20_000);
    expect(r.counts.inProcess.findings).toBe(20_000);
    expect(r.counts.cluster.assets).toBe(60);
    expect(r.counts.cluster.findingsDigest).toBe(r.counts.inProcess.findingsDigest);
    // Round-robin: each API took half the uploads.
    expect(Object.values(r.uploadsPerApi)).toEqual([30, 30]);
    // Every scan's ingest ran on one of the cluster's workers.
    expect(Object.keys(r.ingestsPerWorker).every((w) => /^worker-\d$/.test(w)), JSON.stringify(r.ingestsPerWorker)).toBe(true);
    expect(Object.values(r.ingestsPerWorker).reduce((a, b) => a + b, 0)).toBe(60);
    expect(r.seconds).toBeGreaterThan(0);
  }, 900_000);
});
