import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { backtest, BacktestError, laterKevCves, type BacktestRow } from '../../prioritization/backtest.js';
import { importFeedFile, importIntelFiles } from '../../prioritization/feeds/import.js';
import { bodPolicy, defaultPolicy } from '../../prioritization/policy.js';
import { formatBacktest } from '../../cli/commands/backtest.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Backtests on PostgreSQL: a constructed window where every count is known by hand, then the
// forward test on real data (every CVE of the January 2026 FIRST EPSS file, the KEV catalog of the
// same week, the later KEV entries of the August 2026 joined table).

afterAll(closeTestDatabases);

const row = (rows: BacktestRow[], name: string) => rows.find((r) => r.name === name)!;

describe('a constructed window', () => {
  let db: Database;
  beforeAll(async () => {
    db = await migratedTestDatabase();
    await db.sql`
      insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
      values ('epss', 'bt-epss', 6, 'e', 'active', now()), ('kev', 'bt-kev', 1, 'k', 'active', now()), ('cve', 'bt-cve', 2, 'c', 'active', now())`;
    // A: in KEV at t0 (not forecast); B: EPSS 0.5, later exploited; C: EPSS 0.2, never; D: SSVC
    // active, EPSS 0.01, later exploited; E: SSVC poc + automatable, EPSS 0.02, later exploited;
    // F: EPSS 0.05 with a CVSS 9.8 record, never.
    for (const [cve, epss] of [['CVE-2097-0001', 0.9], ['CVE-2097-0002', 0.5], ['CVE-2097-0003', 0.2], ['CVE-2097-0004', 0.01], ['CVE-2097-0005', 0.02], ['CVE-2097-0006', 0.05]] as const) {
      await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) values ('bt-epss', ${cve}, ${epss}, 0.5)`;
    }
    await db.sql`insert into kev_entries (feed_version, cve) values ('bt-kev', 'CVE-2097-0001')`;
    await db.sql`
      insert into cve_records (feed_version, cve, state, cna_vector, cna_score, ssvc_exploitation, ssvc_automatable, ssvc_technical_impact, sha256) values
        ('bt-cve', 'CVE-2097-0004', 'PUBLISHED', null, null, 'active', 'no', 'partial', 'x'),
        ('bt-cve', 'CVE-2097-0005', 'PUBLISHED', null, null, 'poc', 'yes', 'total', 'x'),
        ('bt-cve', 'CVE-2097-0006', 'PUBLISHED', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8, null, null, null, 'x')`;
  });

  it('counts effort, coverage and efficiency of the policies and the baselines', async () => {
    const later = ['CVE-2097-0001', 'CVE-2097-0002', 'CVE-2097-0004', 'CVE-2097-0005'];
    const result = await backtest(db.sql, { policies: [defaultPolicy(), bodPolicy()], laterKev: later, universe: 'cves' });
    expect(result).toMatchObject({ feeds: { epss: 'bt-epss', kev: 'bt-kev', cve: 'bt-cve' }, population: 5, positives: 3, withCvss: 1 });
    // The default: B and C (EPSS >= 0.1), D (SSVC active: attend, not exposed); not E (a public
    // exploit, but nothing says an attacker can reach it: exposure is assumed no without context)
    // and not F (no evidence, however critical).
    expect(row(result.rows, 'policy exploitability-2')).toEqual({ name: 'policy exploitability-2', flagged: 3, effort: 0.6, caught: 2, coverage: 2 / 3, efficiency: 2 / 3 });
    // EPSS alone at that effort takes the three highest scores: B, C, F.
    expect(row(result.rows, 'EPSS alone at the effort of exploitability-2')).toMatchObject({ flagged: 3, caught: 1 });
    // BOD 26-04 reads neither SSVC: B and C by EPSS only.
    expect(row(result.rows, 'policy bod-26-04+epss-2')).toMatchObject({ flagged: 2, caught: 1 });
    expect(row(result.rows, 'EPSS >= 0.1')).toMatchObject({ flagged: 2, caught: 1, efficiency: 0.5 });
    expect(row(result.rows, 'CVSS >= 9')).toMatchObject({ flagged: 1, caught: 0 });
    expect(formatBacktest(result)).toMatch(/policy exploitability-2\s+3\s+60\.0%\s+2\s+66\.7%\s+66\.7%/);
  });

  it('narrows the population to the CVEs that have a record', async () => {
    const result = await backtest(db.sql, { policies: [defaultPolicy()], laterKev: ['CVE-2097-0002', 'CVE-2097-0004', 'CVE-2097-0005'], universe: 'records' });
    // D, E and F have records; D and E were later exploited; D is flagged through SSVC active.
    expect(result).toMatchObject({ population: 3, positives: 2 });
    expect(row(result.rows, 'policy exploitability-2')).toMatchObject({ flagged: 1, caught: 1 });
    expect(row(result.rows, 'EPSS >= 0.1')).toMatchObject({ flagged: 0, caught: 0 });
  });

  it('refuses an unknown feed version and an empty catalog, naming the field', async () => {
    await expect(backtest(db.sql, { policies: [defaultPolicy()], laterKev: ['CVE-2097-0002'], universe: 'cves', epss: 'nope' })).rejects.toThrow('epss: no EPSS feed version nope');
    await expect(backtest(db.sql, { policies: [defaultPolicy()], laterKev: [], universe: 'cves' })).rejects.toBeInstanceOf(BacktestError);
  });

  it('reads a later KEV from its JSON or from a CSV with a CVE column', () => {
    expect(laterKevCves(JSON.stringify({ vulnerabilities: [{ cveID: 'CVE-2097-0002' }, { cveID: 'CVE-2097-0002' }, { cveID: 'bad' }] }), 'k.json')).toEqual(['CVE-2097-0002']);
    expect(laterKevCves('cveID,vendorProject\nCVE-2097-0004,Acme\n', 'k.csv')).toEqual(['CVE-2097-0004']);
    expect(() => laterKevCves('id,name\n1,2\n', 'x.csv')).toThrow('x.csv: no CVE or cveID column in the header (id, name)');
  });
});

describe.skipIf(!hasCorpus)(`the forward test on real feeds${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  it('catches at least what EPSS alone catches at the same effort, and prints the table', async () => {
    const db = await migratedTestDatabase();
    await importIntelFiles(
      db,
      { epssFile: corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz'), kevFile: corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json') },
      { maxAgeMs: { epss: 3 * 86_400_000, kev: 14 * 86_400_000 }, asOf: new Date('2026-01-31') },
    );
    const later = laterKevCves(readFileSync(corpusFile('intel', 'joined', 'epss_kev_nvd_2026-08-22.csv'), 'utf8'), 'epss_kev_nvd_2026-08-22.csv');
    const started = Date.now();
    const result = await backtest(db.sql, { policies: [defaultPolicy(), bodPolicy()], laterKev: later, universe: 'cves' });
    const seconds = (Date.now() - started) / 1000;
    // The figures docs/benchmarks.md quotes, printed for whoever runs this file.
    console.log(`Forward test, every CVE of FIRST EPSS 2026-01-30 (${seconds.toFixed(1)} s):\n${formatBacktest(result)}`);
    expect(result.population).toBeGreaterThan(300_000);
    expect(result.positives).toBeGreaterThan(40);
    const policy = row(result.rows, 'policy exploitability-2');
    const epssAlone = row(result.rows, 'EPSS alone at the effort of exploitability-2');
    expect(policy.coverage).toBeGreaterThanOrEqual(epssAlone.coverage);
    expect(policy.coverage).toBeGreaterThanOrEqual(row(result.rows, 'EPSS >= 0.1').coverage);
    expect(policy.effort).toBeLessThan(0.1);

    // With CISA's Vulnrichment records (the October 2024 sample), on the CVEs they cover.
    const records = await importFeedFile(db, 'cve', corpusFile('intel', 'cve-records', 'vulnrichment-sample'), {
      maxAgeMs: { epss: 3 * 86_400_000, kev: 14 * 86_400_000, cve: 14 * 86_400_000 }, asOf: new Date('2024-10-25'),
    });
    expect(records.status).toBe('active');
    const covered = await backtest(db.sql, { policies: [defaultPolicy(), bodPolicy()], laterKev: later, universe: 'records' });
    console.log(`Forward test, the CVEs of the Vulnrichment sample:\n${formatBacktest(covered)}`);
    expect(covered.population).toBeGreaterThan(1000);
    expect(row(covered.rows, 'policy exploitability-2').coverage).toBeGreaterThanOrEqual(row(covered.rows, 'EPSS alone at the effort of exploitability-2').coverage);
  }, 300_000);
});
