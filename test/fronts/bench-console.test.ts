import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { JOURNEYS } from '../../scripts/bench-console-load.js';
import { runScript } from '../support/scripts.js';

// The console benchmark as `npm run bench:console` runs it (a child process that seeds a database
// of its own on the shared test server and starts `ctem api` on it), at a tiny size: the seed holds
// exactly what was asked for, and the report names every route with its figures or its errors. The
// runs are child processes on databases of their own, so they run side by side.

describe.concurrent('bench:console', () => {
  it('seeds the requested estate, loads every route of the journeys and reports per route', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await runScript(
      'scripts/bench-console.ts',
      ['--findings', '2000', '--tickets', '50', '--days', '30', '--users', '3', '--seconds', '3', '--no-check', '--json'],
      // No corpus: synthetic feed rows for the CVEs used keep the seed small.
      { DATABASE_URL: inject('postgresUrl'), TEMPORAL_ADDRESS: inject('temporalAddress'), CTEM_CORPUS_DIR: join(tmpdir(), 'no-corpus-here') },
    );
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);

    const counts = result.seed.counts;
    expect(counts).toMatchObject({ findings: 2000, tickets: 50, snapshotDays: 30, scopes: 5, hypotheses: 8 });
    // The estate and the five saved scopes each have a snapshot a day; each hypothesis a result a day.
    expect(counts.metricSnapshots).toBe(30 * 6);
    expect(counts.hypothesisResults).toBe(30 * 8);
    expect(Object.values(counts.ticketStates as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(50);
    // Every open finding was scored by the real rescoring; a share is urgent, most is not.
    const tiers = counts.tiers as Record<string, number>;
    expect(tiers.unscored).toBeUndefined();
    expect(Object.values(tiers).reduce((a, b) => a + b, 0)).toBe(counts.openFindings);
    expect((tiers.act ?? 0) + (tiers.attend ?? 0)).toBeGreaterThan(0);
    expect(tiers.track).toBeGreaterThan((tiers.act ?? 0) + (tiers.attend ?? 0));
    expect(counts.owners).toBeGreaterThan(1);
    expect(counts.findingSources).toBeGreaterThanOrEqual(2000);
    expect(counts.escalations).toBeGreaterThan(0);

    // Every route of the journeys is reported, called or failing, plus the sign-in.
    const routes = result.load.routes as Array<{ route: string; kind: string; count: number; errors: number; errorsBy: Record<string, number>; p50: number | null; p95: number | null; p99: number | null; max: number | null }>;
    const expected = new Set(JOURNEYS.flatMap((j) => j.steps));
    expect(new Set(routes.map((r) => r.route))).toEqual(new Set(['POST /console/sign-in', ...expected]));
    expect(routes.find((r) => r.route === 'POST /console/sign-in')).toMatchObject({ count: 3, errors: 0 });
    // Routes that exist answer with latencies in order; missing ones are errors with their status.
    const exposures = routes.find((r) => r.route === '/api/v1/exposures/:id')!;
    expect(exposures.errors).toBe(0);
    expect(exposures.count).toBeGreaterThan(0);
    for (const r of routes.filter((r) => r.count > r.errors)) {
      expect(r.p50!, r.route).toBeGreaterThan(0);
      expect(r.p95!, r.route).toBeGreaterThanOrEqual(r.p50!);
      expect(r.p99!, r.route).toBeGreaterThanOrEqual(r.p95!);
      expect(r.max!, r.route).toBeGreaterThanOrEqual(r.p99!);
    }
    for (const r of routes.filter((r) => r.errors)) expect(Object.values(r.errorsBy).reduce((a, b) => a + b, 0), r.route).toBe(r.errors);
    expect(result.load.overall.count).toBe(routes.reduce((sum, r) => sum + r.count, 0));
    expect(result.load.requests).toBeGreaterThan(0);
    // --no-check: reported, not enforced; the verdict agrees with the misses it lists.
    expect(result.target).toMatchObject({ p95Ms: 150, p99Ms: 400, checked: false });
    expect(result.target.met).toBe(result.target.misses.length === 0);
    expect(result.peakRssMb.bench).toBeGreaterThan(0);
  });

  it('--keep leaves the seeded database, and --database runs the load alone on it', { timeout: 120_000 }, async () => {
    const env = { DATABASE_URL: inject('postgresUrl'), TEMPORAL_ADDRESS: inject('temporalAddress'), CTEM_CORPUS_DIR: join(tmpdir(), 'no-corpus-here') };
    const seeded = await runScript('scripts/bench-console.ts', ['--findings', '600', '--tickets', '10', '--days', '3', '--users', '1', '--seconds', '1', '--no-check', '--keep', '--json'], env);
    expect(seeded.code, seeded.stderr).toBe(0);
    const { keptDatabase } = JSON.parse(seeded.stdout);
    expect(keptDatabase).toMatch(/^bench_console_[0-9a-f]+$/);
    const url = new URL(inject('postgresUrl'));
    url.pathname = `/${keptDatabase}`;
    const again = await runScript('scripts/bench-console.ts', ['--database', url.toString(), '--users', '2', '--seconds', '1', '--journeys', 'one exposure', '--no-check', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('the load alone');
    const result = JSON.parse(again.stdout);
    // Nothing seeded a second time: the same counts, read from the kept database.
    expect(result.seed).toMatchObject({ seconds: 0, counts: { findings: 600, tickets: 10, snapshotDays: 3 } });
    expect(result.options).toEqual({ seeded: true, users: 2, seconds: 1, journeys: 'one exposure' });
    // Only the chosen journey's routes are walked and reported.
    const routes = result.load.routes as Array<{ route: string; count: number; errors: number }>;
    expect(routes.map((r) => r.route)).toEqual(['POST /console/sign-in', '/console/exposures/:id', '/api/v1/exposures/:id']);
    expect(routes[0]!.count).toBe(2);
    expect(routes[2]!.count).toBeGreaterThan(0);
    expect(routes[2]!.errors).toBe(0);
    expect(result.keptDatabase).toBeUndefined();
  });

  it('refuses more tickets than the findings have fixes, naming the option', { timeout: 60_000 }, async () => {
    const { code, stderr } = await runScript('scripts/bench-console.ts', ['--findings', '200', '--tickets', '5000', '--days', '2', '--seconds', '1'], {
      DATABASE_URL: inject('postgresUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      CTEM_CORPUS_DIR: join(tmpdir(), 'no-corpus-here'),
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/--tickets 5000: the findings make only \d+ distinct fixes/);
  });
});
