import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { importFeedFile, importIntelFiles, type FeedFileOptions } from '../../prioritization/feeds/import.js';
import type { Database } from '../../db/client.js';
import { FeedStateError, listFeedVersions, promoteFeed, UnknownCheckError, type FeedCheck } from '../../prioritization/feeds/store.js';
import { detectFeedKind, FeedError } from '../../prioritization/feeds/parse.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Threat-intel feeds into PostgreSQL: every version is staged, checked (schema, declared count,
// row count against the active version, freshness, no going back, KEV x EPSS), then activated or
// rejected; rejected and staged versions never change what scoring reads. Real FIRST EPSS and
// CISA KEV files, and small ones written here, each failing one check.

const DAY = 86_400_000;
const tmp = mkdtempSync(join(tmpdir(), 'intel-'));
const fixtures = join(import.meta.dirname, '..', 'fixtures');
const EPSS_SAMPLE = join(fixtures, 'epss-sample.csv');
const KEV_SAMPLE = join(fixtures, 'kev-sample.json');

// A database of its own per test (migratedTestDatabase): every check is judged against a known history.
afterAll(closeTestDatabases);

const options = (asOf: string, extra: Partial<FeedFileOptions> = {}): FeedFileOptions => ({
  maxAgeMs: { epss: 3 * DAY, kev: 14 * DAY },
  asOf: new Date(asOf),
  ...extra,
});

const sampleRows = readFileSync(EPSS_SAMPLE, 'utf8').trim().split('\n').slice(2);
let fileNo = 0;

/** An EPSS daily file for `date` (rows like `CVE-...,0.5,0.9`), gzipped unless said otherwise. */
function epssFile(date: string, rows: string[] = sampleRows, { gzip = true } = {}): string {
  const text = `#model_version:v2025.03.14,score_date:${date}T00:00:00Z\ncve,epss,percentile\n${rows.join('\n')}\n`;
  const file = join(tmp, `epss-${date}-${++fileNo}.csv${gzip ? '.gz' : ''}`);
  writeFileSync(file, gzip ? gzipSync(text) : text);
  return file;
}

const sampleKev = JSON.parse(readFileSync(KEV_SAMPLE, 'utf8')) as { vulnerabilities: Array<Record<string, unknown>> };

/** A KEV catalog: the sample's entries (or bare ones for other CVEs), with `count` as given. */
function kevFile(version: string, released: string, cves: string[], { count = cves.length }: { count?: number } = {}): string {
  const vulnerabilities = cves.map((cve) => sampleKev.vulnerabilities.find((v) => v.cveID === cve) ?? { cveID: cve, vendorProject: 'Example', product: 'Thing', dateAdded: released.slice(0, 10) });
  const file = join(tmp, `kev-${version}-${++fileNo}.json`);
  writeFileSync(file, JSON.stringify({ title: 'test catalog', catalogVersion: version, dateReleased: released, count, vulnerabilities }));
  return file;
}

const KEV_CVES = ['CVE-2021-44228', 'CVE-2022-22965'];

const failedChecks = (validation: FeedCheck[]) => validation.filter((c) => !c.ok).map((c) => c.check);

async function activeVersion(database: Database, kind: 'epss' | 'kev') {
  const [row] = await database.sql`select version from intel_feeds where kind = ${kind} and status = 'active'`;
  return row?.version as string | undefined;
}

/** What scoring reads: the active version's EPSS score of one CVE. */
async function activeEpss(database: Database, cve: string) {
  const [row] = await database.sql`
    select e.epss, e.feed_version from epss_scores e
    join intel_feeds f on f.kind = 'epss' and f.status = 'active' and f.version = e.feed_version
    where e.cve = ${cve}`;
  return row as { epss: number; feed_version: string } | undefined;
}

async function storedRows(database: Database, kind: 'epss' | 'kev', version: string) {
  const [row] = kind === 'epss'
    ? await database.sql`select count(*)::int as n from epss_scores where feed_version = ${version}`
    : await database.sql`select count(*)::int as n from kev_entries where feed_version = ${version}`;
  return row!.n as number;
}

/** Both sample feeds active, as of the day after they were published. */
async function withSamples(): Promise<Database> {
  const database = await migratedTestDatabase();
  const results = await importIntelFiles(database, { epssFile: EPSS_SAMPLE, kevFile: KEV_SAMPLE }, options('2026-11-02'));
  expect(results.map((r) => r.status)).toEqual(['active', 'active']);
  return database;
}

describe('importing and activating', () => {
  it('imports a feed version once, with every check recorded; re-importing it changes nothing', async () => {
    const database = await migratedTestDatabase();
    const [epss, kev] = await importIntelFiles(database, { epssFile: EPSS_SAMPLE, kevFile: KEV_SAMPLE }, options('2026-11-02'));
    expect(epss).toMatchObject({ kind: 'epss', version: '2026-11-01', rows: 6, status: 'active', imported: true, activated: true, publishedAt: '2026-11-01T00:00:00.000Z', origin: 'file:epss-sample.csv' });
    expect(kev).toMatchObject({ kind: 'kev', version: '2026.11.01', rows: 2, status: 'active', imported: true, activated: true, publishedAt: '2026-11-01T12:00:00.000Z' });
    expect(epss!.validation.map((c) => [c.check, c.ok])).toEqual([['schema', true], ['row-count', true], ['freshness', true], ['not-older', true], ['kev-epss', true]]);
    expect(kev!.validation.map((c) => [c.check, c.ok])).toEqual([['schema', true], ['count', true], ['row-count', true], ['freshness', true], ['not-older', true], ['kev-epss', true]]);
    expect(kev!.validation.find((c) => c.check === 'kev-epss')!.detail).toBe('0 of 2 CISA KEV 2026.11.01 CVEs have no FIRST EPSS 2026-11-01 score (at most 0 allowed)');

    const again = await importIntelFiles(database, { epssFile: EPSS_SAMPLE, kevFile: KEV_SAMPLE }, options('2026-11-02'));
    expect(again.map((f) => [f.imported, f.activated, f.status])).toEqual([[false, false, 'active'], [false, false, 'active']]);
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
    const [ransomware] = await database.sql`select known_ransomware from kev_entries where cve = 'CVE-2021-44228'`;
    expect(ransomware!.known_ransomware).toBe(true);
  });

  it('activates a newer version and retires the previous one, keeping both in the history', async () => {
    const database = await withSamples();
    const next = await importFeedFile(database, 'epss', epssFile('2026-11-02', sampleRows.map((r) => r.replace('CVE-2021-44228,0.94358', 'CVE-2021-44228,0.95'))), options('2026-11-03'));
    expect(next).toMatchObject({ version: '2026-11-02', status: 'active', activated: true });
    expect(failedChecks(next.validation)).toEqual([]);
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.95, feed_version: '2026-11-02' });
    const versions = await listFeedVersions(database.sql, { kind: 'epss' });
    expect(versions.map((v) => [v.version, v.status, v.stored])).toEqual([['2026-11-02', 'active', true], ['2026-11-01', 'retired', true]]);
  });

  it('detects the kind of a feed file from its content', async () => {
    expect(await detectFeedKind(EPSS_SAMPLE)).toBe('epss');
    expect(await detectFeedKind(epssFile('2026-11-02'))).toBe('epss');
    expect(await detectFeedKind(KEV_SAMPLE)).toBe('kev');
    expect(await detectFeedKind(join(fixtures, 'trivy-payments-api.json'))).toBe('kev'); // JSON: the KEV parser says what is wrong
    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'hello');
    expect(await detectFeedKind(text)).toBeUndefined();
  });
});

describe('files that are not what they claim', () => {
  it('a known version offered again from a different file is not read, and the caller is told', async () => {
    const database = await withSamples();
    const changed = epssFile('2026-11-01', sampleRows.map((r) => r.replace(/,0\.\d+,/, ',0.99999,')));
    const [again] = await importIntelFiles(database, { epssFile: changed }, options('2026-11-02'));
    expect(again).toMatchObject({ imported: false, status: 'active' });
    expect(again!.warnings).toEqual([expect.stringMatching(/^FIRST EPSS 2026-11-01 is already active from a file with sha256 [0-9a-f]{12}…; this file \(sha256 [0-9a-f]{12}…\) differs and was not read$/)]);
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
    const [same] = await importIntelFiles(database, { epssFile: EPSS_SAMPLE }, options('2026-11-02'));
    expect(same!.warnings).toBeUndefined();
  });

  it('a gzip bomb of one endless line is refused early, in bounded memory', async () => {
    const database = await migratedTestDatabase();
    const header = '#model_version:v2025.03.14,score_date:2026-11-01T00:00:00Z\ncve,epss,percentile\n';
    const bomb = join(tmp, 'epss-bomb.csv.gz');
    // 100 MB of one line compresses to about 100 KB.
    writeFileSync(bomb, gzipSync(Buffer.concat([Buffer.from(header), Buffer.alloc(100 * 1024 * 1024, 0x41)]), { level: 9 }));
    const before = process.memoryUsage().rss;
    const err = await importIntelFiles(database, { epssFile: bomb }, options('2026-11-02')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedError);
    expect((err as Error).message).toMatch(/^epss-bomb\.csv\.gz: EPSS: line 3: unreadable \(a line longer than 65536 bytes\)$/);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(await listFeedVersions(database.sql, { kind: 'epss' })).toEqual([]);
  });
});

describe('each check on its own', () => {
  it('schema: an EPSS file with a bad row is refused whole, naming the line, and stores nothing', async () => {
    const database = await withSamples();
    const file = join(tmp, 'epss-bad.csv.gz');
    writeFileSync(file, gzipSync('#model_version:v2025.03.14,score_date:2026-11-02T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,0.5,0.9\nCVE-2021-3711,1.7,0.5\n'));
    await expect(importFeedFile(database, 'epss', file, options('2026-11-02'))).rejects.toThrow('epss-bad.csv.gz: EPSS: line 4: epss and percentile must be numbers between 0 and 1');
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
    expect((await listFeedVersions(database.sql)).map((v) => v.version)).toEqual(['2026-11-01', '2026.11.01']);
    expect(await storedRows(database, 'epss', '2026-11-02')).toBe(0);
  });

  it('schema: a file that is not an EPSS feed, and a CVE listed twice, are refused', async () => {
    const database = await migratedTestDatabase();
    const file = join(tmp, 'not-epss.csv');
    writeFileSync(file, 'cve,epss,percentile\nCVE-2021-44228,0.5,0.9\n');
    await expect(importFeedFile(database, 'epss', file, options('2026-11-02'))).rejects.toThrow('not-epss.csv: EPSS: line 1: expected "#model_version:...,score_date:..."');
    const twice = epssFile('2026-11-02', [...sampleRows, 'CVE-2021-3711,0.1,0.5']);
    await expect(importFeedFile(database, 'epss', twice, options('2026-11-02'))).rejects.toThrow(/EPSS: CVE-2021-3711 listed twice/);
    expect(await listFeedVersions(database.sql)).toEqual([]);
    await expect(importFeedFile(database, 'kev', join(fixtures, 'trivy-payments-api.json'), options('2026-11-02'))).rejects.toThrow(FeedError);
  });

  it('count: a truncated KEV catalog is rejected, its rows dropped, the active catalog kept', async () => {
    const database = await withSamples();
    const result = await importFeedFile(database, 'kev', kevFile('2026.11.02', '2026-11-02T12:00:00Z', [KEV_CVES[0]!], { count: 2 }), options('2026-11-03', { name: 'kev-truncated.json' }));
    expect(result).toMatchObject({ version: '2026.11.02', status: 'rejected', imported: true, activated: false });
    // One entry of two is a 50% drop as well: both say the same thing about this file.
    expect(failedChecks(result.validation)).toEqual(['count', 'row-count']);
    expect(result.validation.find((c) => c.check === 'count')!.detail).toBe('says 2 but the catalog lists 1 (truncated?)');
    expect(await activeVersion(database, 'kev')).toBe('2026.11.01');
    expect(await storedRows(database, 'kev', '2026.11.01')).toBe(2);
    expect(await storedRows(database, 'kev', '2026.11.02')).toBe(0);
  });

  it('count alone: a catalog whose declared count is wrong but which lists everything', async () => {
    const database = await withSamples();
    const result = await importFeedFile(database, 'kev', kevFile('2026.11.02', '2026-11-02T12:00:00Z', KEV_CVES, { count: 3 }), options('2026-11-03'));
    expect(result.status).toBe('rejected');
    expect(failedChecks(result.validation)).toEqual(['count']);
  });

  it('row-count: an EPSS file with more than 10% fewer rows than the active one is rejected', async () => {
    const database = await withSamples();
    const result = await importFeedFile(database, 'epss', epssFile('2026-11-02', sampleRows.slice(0, 5)), options('2026-11-03'));
    expect(result.status).toBe('rejected');
    expect(failedChecks(result.validation)).toEqual(['row-count']);
    expect(result.validation.find((c) => c.check === 'row-count')!.detail).toBe('5 rows against 6 in active 2026-11-01 (16.7% fewer; at most 10.0% allowed)');
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
  });

  it('freshness: a stale file is rejected and the active scores stay', async () => {
    const database = await migratedTestDatabase();
    await importFeedFile(database, 'epss', epssFile('2026-10-25', sampleRows.map((r) => r.replace('0.94358', '0.9'))), options('2026-10-26'));
    const stale = await importFeedFile(database, 'epss', EPSS_SAMPLE, options('2026-11-10'));
    expect(stale.status).toBe('rejected');
    expect(failedChecks(stale.validation)).toEqual(['freshness']);
    expect(stale.validation.find((c) => c.check === 'freshness')!.detail).toBe(
      'published 2026-11-01T00:00:00.000Z, 9.0d before 2026-11-10T00:00:00.000Z; at most 3.0d allowed',
    );
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.9, feed_version: '2026-10-25' });
    // The same file again is the same verdict, without re-reading it.
    const again = await importFeedFile(database, 'epss', EPSS_SAMPLE, options('2026-11-10'));
    expect(again).toMatchObject({ status: 'rejected', imported: false });
  });

  it('not-older: a fresh-looking file older than the active version is rejected', async () => {
    const database = await withSamples();
    const older = await importFeedFile(database, 'epss', epssFile('2026-10-30'), options('2026-10-31'));
    expect(older.status).toBe('rejected');
    expect(failedChecks(older.validation)).toEqual(['not-older']);
    expect(older.validation.find((c) => c.check === 'not-older')!.detail).toBe('older than active 2026-11-01 (2026-11-01T00:00:00.000Z): going back needs force');
    expect(await activeVersion(database, 'epss')).toBe('2026-11-01');
  });

  it('kev-epss: a KEV catalog listing a CVE that the active EPSS does not score is rejected', async () => {
    const database = await withSamples();
    const result = await importFeedFile(database, 'kev', kevFile('2026.11.02', '2026-11-02T12:00:00Z', [...KEV_CVES, 'CVE-2026-99999']), options('2026-11-03'));
    expect(result.status).toBe('rejected');
    expect(failedChecks(result.validation)).toEqual(['kev-epss']);
    expect(result.validation.find((c) => c.check === 'kev-epss')!.detail).toBe(
      '1 of 3 CISA KEV 2026.11.02 CVEs have no FIRST EPSS 2026-11-01 score (at most 0 allowed): CVE-2026-99999',
    );
    expect(await activeVersion(database, 'kev')).toBe('2026.11.01');
  });

  it('kev-epss: an EPSS file that lost a CVE of the active KEV is rejected', async () => {
    const database = await withSamples();
    const rows = sampleRows.map((r) => r.replace('CVE-2022-22965', 'CVE-2022-00001'));
    const result = await importFeedFile(database, 'epss', epssFile('2026-11-02', rows), options('2026-11-03'));
    expect(failedChecks(result.validation)).toEqual(['kev-epss']);
    expect(result.status).toBe('rejected');
  });
});

describe('force, staging and promotion', () => {
  it('force overrides the named checks, records them as overridden, and replaces the rejected record', async () => {
    const database = await withSamples();
    const file = epssFile('2026-10-30');
    expect((await importFeedFile(database, 'epss', file, options('2026-10-31'))).status).toBe('rejected');
    await expect(importFeedFile(database, 'epss', file, options('2026-10-31', { force: ['no-such-check'] }))).rejects.toThrow(UnknownCheckError);
    const forced = await importFeedFile(database, 'epss', file, options('2026-11-20', { force: ['freshness', 'not-older'] }));
    expect(forced).toMatchObject({ version: '2026-10-30', status: 'active', activated: true, imported: true });
    expect(forced.validation.filter((c) => !c.ok)).toEqual([
      { check: 'freshness', ok: false, overridden: true, detail: expect.stringContaining('at most 3.0d allowed') },
      { check: 'not-older', ok: false, overridden: true, detail: expect.stringContaining('older than active 2026-11-01') },
    ]);
    expect(await activeVersion(database, 'epss')).toBe('2026-10-30');
    const history = await listFeedVersions(database.sql, { kind: 'epss' });
    expect(history.map((v) => [v.version, v.status])).toEqual([['2026-11-01', 'retired'], ['2026-10-30', 'active']]);
  });

  it('stage-only leaves scoring alone; promote activates after checking again', async () => {
    const database = await withSamples();
    const staged = await importFeedFile(database, 'epss', epssFile('2026-11-02', sampleRows.map((r) => r.replace('0.94358', '0.5'))), options('2026-11-03', { activate: 'never' }));
    expect(staged).toMatchObject({ status: 'staged', activated: false });
    expect(failedChecks(staged.validation)).toEqual([]);
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.94358, feed_version: '2026-11-01' });
    expect(await storedRows(database, 'epss', '2026-11-02')).toBe(6);

    const promoted = await promoteFeed(database.sql, 'epss', '2026-11-02', { maxAgeMs: 3 * DAY, asOf: new Date('2026-11-03') });
    expect(promoted).toMatchObject({ status: 'active', activated: true });
    expect(await activeEpss(database, 'CVE-2021-44228')).toEqual({ epss: 0.5, feed_version: '2026-11-02' });
    // Promoting the active version again changes nothing.
    expect(await promoteFeed(database.sql, 'epss', '2026-11-02', { maxAgeMs: 3 * DAY })).toMatchObject({ status: 'active', activated: false });
  });

  it('a staged version that fails its checks stays staged until promoted with force', async () => {
    const database = await withSamples();
    const staged = await importFeedFile(database, 'kev', kevFile('2026.11.02', '2026-11-02T12:00:00Z', [...KEV_CVES, 'CVE-2026-99999']), options('2026-11-03', { activate: 'never' }));
    expect(staged.status).toBe('staged');
    expect(failedChecks(staged.validation)).toEqual(['kev-epss']);
    const refused = await promoteFeed(database.sql, 'kev', '2026.11.02', { maxAgeMs: 14 * DAY, asOf: new Date('2026-11-03') });
    expect(refused).toMatchObject({ status: 'staged', activated: false });
    expect(await activeVersion(database, 'kev')).toBe('2026.11.01');
    const forced = await promoteFeed(database.sql, 'kev', '2026.11.02', { maxAgeMs: 14 * DAY, asOf: new Date('2026-11-03'), force: ['kev-epss'] });
    expect(forced).toMatchObject({ status: 'active', activated: true });
    expect(forced.validation.find((c) => c.check === 'kev-epss')).toMatchObject({ ok: false, overridden: true });
    // The file-level checks recorded at import are kept through promotion.
    expect(forced.validation.map((c) => c.check)).toEqual(['schema', 'count', 'row-count', 'freshness', 'not-older', 'kev-epss']);
  });

  it('importing a staged version again without stage-only promotes it', async () => {
    const database = await withSamples();
    const file = epssFile('2026-11-02');
    expect((await importFeedFile(database, 'epss', file, options('2026-11-03', { activate: 'never' }))).status).toBe('staged');
    expect(await importFeedFile(database, 'epss', file, options('2026-11-03'))).toMatchObject({ status: 'active', activated: true, imported: false });
  });

  it('refuses to promote unknown and rejected versions', async () => {
    const database = await withSamples();
    await expect(promoteFeed(database.sql, 'epss', '1999-01-01', { maxAgeMs: DAY })).rejects.toThrow(FeedStateError);
    await importFeedFile(database, 'epss', epssFile('2026-11-02', sampleRows.slice(0, 1)), options('2026-11-03'));
    await expect(promoteFeed(database.sql, 'epss', '2026-11-02', { maxAgeMs: DAY })).rejects.toThrow(/was rejected and its rows deleted/);
  });

  it('two imports of the same version at once: one stages and activates it, the other finds it', async () => {
    const database = await withSamples();
    const file = epssFile('2026-11-02');
    const results = await Promise.all([importFeedFile(database, 'epss', file, options('2026-11-03')), importFeedFile(database, 'epss', file, options('2026-11-03'))]);
    expect(results.filter((r) => r.activated)).toHaveLength(1);
    expect(results.every((r) => r.status === 'active')).toBe(true);
    expect(await storedRows(database, 'epss', '2026-11-02')).toBe(6);
  });
});

describe('history and retention', () => {
  it('keeps every version record, and the rows of the active one and the last 3 retired', async () => {
    const database = await migratedTestDatabase();
    const dates = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05', '2026-11-06'];
    for (const date of dates) {
      const result = await importFeedFile(database, 'epss', epssFile(date), options(date));
      expect(result.status, date).toBe('active');
    }
    await importFeedFile(database, 'epss', epssFile('2026-11-07', sampleRows.slice(0, 2)), options('2026-11-07'));
    const history = await listFeedVersions(database.sql, { kind: 'epss' });
    expect(history.map((v) => [v.version, v.status, v.rows, v.stored])).toEqual([
      ['2026-11-07', 'rejected', 2, false],
      ['2026-11-06', 'active', 6, true],
      ['2026-11-05', 'retired', 6, true],
      ['2026-11-04', 'retired', 6, true],
      ['2026-11-03', 'retired', 6, true],
      ['2026-11-02', 'retired', 6, false],
      ['2026-11-01', 'retired', 6, false],
    ]);
    expect(history.every((v) => v.validation.length > 0 && v.origin?.startsWith('file:'))).toBe(true);
    // A retained retired version can be rolled back to on purpose; a pruned one cannot.
    await expect(promoteFeed(database.sql, 'epss', '2026-11-02', { maxAgeMs: DAY })).rejects.toThrow(/deleted by retention/);
    const rollback = await promoteFeed(database.sql, 'epss', '2026-11-05', { maxAgeMs: DAY, asOf: new Date('2026-11-06'), force: ['not-older'] });
    expect(rollback).toMatchObject({ status: 'active', activated: true });
    expect(await activeVersion(database, 'epss')).toBe('2026-11-05');
  });
});

describe.skipIf(!hasCorpus)(`real feeds${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  const EPSS_2026 = () => corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz');
  const KEV_2026 = () => corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json');
  const KEV_2025 = () => corpusFile('intel', 'kev', 'cisagov-kev-data_2025.08.25', 'known_exploited_vulnerabilities.json');

  it('imports the full FIRST EPSS file and the CISA KEV catalog that pairs with it, every check passing', async () => {
    const database = await migratedTestDatabase();
    const started = Date.now();
    const [epss, kev] = await importIntelFiles(database, { epssFile: EPSS_2026(), kevFile: KEV_2026() }, options('2026-01-31'));
    expect(epss).toMatchObject({ version: '2026-01-30', rows: 313_089, status: 'active', publishedAt: '2026-01-30T12:55:00.000Z' });
    expect(kev).toMatchObject({ version: '2026.01.29', rows: 1501, status: 'active', publishedAt: '2026-01-29T20:24:37.095Z' });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(failedChecks([...epss!.validation, ...kev!.validation])).toEqual([]);
    // The measured figure behind the kev-epss bound: every KEV CVE has a score in the paired file.
    expect(kev!.validation.find((c) => c.check === 'kev-epss')!.detail).toBe(
      '0 of 1501 CISA KEV 2026.01.29 CVEs have no FIRST EPSS 2026-01-30 score (at most 30 allowed)',
    );
    // Values written like 5e-05 are read as numbers.
    const [tiny] = await database.sql`select count(*)::int as count from epss_scores where epss < 0.0001`;
    expect(tiny!.count).toBeGreaterThan(0);
    expect(await activeEpss(database, 'CVE-1999-0001')).toEqual({ epss: 0.01151, feed_version: '2026-01-30' });

    // The older official catalog (2025.08.25): going back and 6.5% fewer entries, both refused...
    const old = await importFeedFile(database, 'kev', KEV_2025(), options('2025-08-26'));
    expect(old.status).toBe('rejected');
    expect(failedChecks(old.validation)).toEqual(['row-count', 'not-older']);
    expect(await activeVersion(database, 'kev')).toBe('2026.01.29');
    // ...unless it is imported on purpose; then the newer one is promoted back.
    const onPurpose = await importFeedFile(database, 'kev', KEV_2025(), options('2025-08-26', { force: ['row-count', 'not-older'] }));
    expect(onPurpose).toMatchObject({ status: 'active', rows: 1404 });
    expect((await promoteFeed(database.sql, 'kev', '2026.01.29', { maxAgeMs: 14 * DAY, asOf: new Date('2026-01-31') })).status).toBe('active');
  });

  it('judged in late November, the January catalog is stale and nothing takes effect', async () => {
    const database = await migratedTestDatabase();
    const asOf = new Date('2026-11-26T00:00:00Z');
    const kev = await importFeedFile(database, 'kev', KEV_2026(), { maxAgeMs: { epss: 3 * DAY, kev: 14 * DAY }, asOf });
    expect(kev.status).toBe('rejected');
    expect(failedChecks(kev.validation)).toEqual(['freshness']);
    expect(await activeVersion(database, 'kev')).toBeUndefined();
  });
});
