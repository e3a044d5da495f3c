import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importIntelFiles } from '../activities/prioritization.js';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { corpusFile, corpusSkipReason, hasCorpus } from './corpus.js';
import { createTestDatabase } from './support/platform.js';

// Threat-intel feeds into PostgreSQL: real FIRST EPSS and CISA KEV files, and broken ones that must
// be rejected whole while the active version stays in force.

let database: Database;
const tmp = mkdtempSync(join(tmpdir(), 'intel-'));
const fixtures = join(import.meta.dirname, 'fixtures');

beforeAll(async () => {
  const url = await createTestDatabase();
  await migrateDatabase(url);
  database = connectDatabase(url);
});
afterAll(async () => database?.close());

async function activeVersions() {
  return database.sql`select kind, version, rows from intel_feeds order by kind, imported_at`;
}

describe('feed validation', () => {
  it('imports a feed version once; re-importing it changes nothing', async () => {
    const [epss, kev] = await importIntelFiles(database, { epssFile: join(fixtures, 'epss-sample.csv'), kevFile: join(fixtures, 'kev-sample.json') });
    expect(epss).toEqual({ kind: 'epss', version: '2026-11-01', rows: 6, imported: true });
    expect(kev).toEqual({ kind: 'kev', version: '2026.11.01', rows: 2, imported: true });
    const again = await importIntelFiles(database, { epssFile: join(fixtures, 'epss-sample.csv'), kevFile: join(fixtures, 'kev-sample.json') });
    expect(again.map((f) => f.imported)).toEqual([false, false]);
    const [log4j] = await database.sql`select epss, percentile, feed_version from epss_scores where cve = 'CVE-2021-44228'`;
    expect(log4j).toEqual({ epss: 0.94358, percentile: 0.99959, feed_version: '2026-11-01' });
    const [ransomware] = await database.sql`select known_ransomware from kev_entries where cve = 'CVE-2021-44228'`;
    expect(ransomware!.known_ransomware).toBe(true);
  });

  it('rejects a truncated KEV catalog and keeps the active one', async () => {
    const catalog = JSON.parse(readFileSync(join(fixtures, 'kev-sample.json'), 'utf8'));
    catalog.catalogVersion = '2026.11.02';
    catalog.vulnerabilities.pop();
    const file = join(tmp, 'kev-truncated.json');
    writeFileSync(file, JSON.stringify(catalog));
    await expect(importIntelFiles(database, { kevFile: file })).rejects.toThrow('kev-truncated.json: KEV: count: says 2 but the catalog lists 1 (truncated?)');
    const [{ count }] = (await database.sql`select count(*)::int as count from kev_entries where feed_version = '2026.11.01'`) as unknown as [{ count: number }];
    expect(count).toBe(2);
  });

  it('rejects an EPSS file with a bad row, naming the line, and keeps the active scores', async () => {
    const file = join(tmp, 'epss-bad.csv.gz');
    writeFileSync(file, gzipSync('#model_version:v2025.03.14,score_date:2026-11-02T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,0.5,0.9\nCVE-2021-3711,1.7,0.5\n'));
    await expect(importIntelFiles(database, { epssFile: file })).rejects.toThrow('epss-bad.csv.gz: EPSS: line 4: epss and percentile must be numbers between 0 and 1');
    const [row] = await database.sql`select epss, feed_version from epss_scores where cve = 'CVE-2021-44228'`;
    expect(row).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
    expect((await activeVersions()).map((r) => r.version)).toEqual(['2026-11-01', '2026.11.01']);
  });

  it('rejects a file that is not an EPSS feed', async () => {
    const file = join(tmp, 'not-epss.csv');
    writeFileSync(file, 'cve,epss,percentile\nCVE-2021-44228,0.5,0.9\n');
    await expect(importIntelFiles(database, { epssFile: file })).rejects.toThrow('not-epss.csv: EPSS: line 1: expected "#model_version:...,score_date:..."');
  });
});

describe.skipIf(!hasCorpus)(`real feeds${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  it('imports the full FIRST EPSS file and the CISA KEV catalog that pairs with it', async () => {
    const started = Date.now();
    const [epss, kev] = await importIntelFiles(database, {
      epssFile: corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz'),
      kevFile: corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json'),
    });
    expect(epss).toMatchObject({ version: '2026-01-30', rows: 313_089, imported: true });
    expect(kev).toMatchObject({ version: '2026.01.29', rows: 1501, imported: true });
    expect(Date.now() - started).toBeLessThan(30_000);
    // Values written like 5e-05 are read as numbers.
    const [tiny] = await database.sql`select count(*)::int as count from epss_scores where epss < 0.0001`;
    expect(tiny!.count).toBeGreaterThan(0);
    const [first] = await database.sql`select epss, percentile from epss_scores where cve = 'CVE-1999-0001'`;
    expect(first).toEqual({ epss: 0.01151, percentile: 0.78086 });
    // Sanity across the two feeds: every KEV CVE has an EPSS score in the paired file.
    const [missing] = await database.sql`select count(*)::int as count from kev_entries k left join epss_scores e using (cve) where e.cve is null`;
    expect(missing!.count).toBeLessThan(15);
  });
});
