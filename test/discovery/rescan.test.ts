import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { fingerprint, ingestFindings, type ScanToIngest } from '../../discovery/store/ingest.js';
import { findingLastSeen } from '../../db/read-models/inventory.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Scan semantics on real PostgreSQL: complete rescans close what they no longer report and re-open
// what returns; empty and partial reports close nothing; one finding reported by two scanners
// closes only when neither reports it.

let database: Database;
const tmp = mkdtempSync(join(tmpdir(), 'rescan-'));
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8'));

beforeAll(async () => {
  database = await migratedTestDatabase();
});
afterAll(closeTestDatabases);

async function ingest(file: string, scan: Omit<ScanToIngest, 'id'>, format?: string) {
  const connector = await connectorFor(file, file, format);
  const id = randomUUID();
  const counts = await ingestFindings(database.sql, { id, ...scan }, connector.parse(file, { target: scan.target ?? undefined }));
  return { id, counts };
}

function writeReport(name: string, mutate: (report: typeof fixture) => void): string {
  const report = structuredClone(fixture);
  // Without digests the target name is the asset's identity, so one file can stand for two images.
  delete report.Metadata;
  mutate(report);
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(report));
  return file;
}

async function findingsOf(asset: string) {
  return database.sql<{ issue_id: string; status: string; closed_reason: string | null; closed_by_scan_id: string | null; reopen_count: number }[]>`
    select f.issue_id, f.status, f.closed_reason, f.closed_by_scan_id, f.reopen_count
    from findings f join assets a on a.id = f.asset_id where a.name = ${asset} order by f.issue_id`;
}

describe('rescans of one source', () => {
  const target = 'rescan/app:1';
  const source = 'trivy-ci';
  const full = writeReport('full.json', () => {});
  const withoutLog4j = writeReport('without-log4j.json', (r) => {
    r.Results[1].Vulnerabilities = r.Results[1].Vulnerabilities.filter((v: { VulnerabilityID: string }) => v.VulnerabilityID !== 'CVE-2021-44228');
  });
  const empty = writeReport('empty.json', (r) => {
    r.Results = [];
  });
  const onlyOne = writeReport('only-one.json', (r) => {
    r.Results = [{ ...r.Results[0], Vulnerabilities: [r.Results[0].Vulnerabilities[0]] }];
  });

  it('closes what a complete rescan no longer reports, with the reason and the closing scan', async () => {
    expect((await ingest(full, { source, target })).counts).toMatchObject({ findings: 6, newFindings: 6, closedFindings: 0 });
    const second = await ingest(withoutLog4j, { source, target });
    expect(second.counts).toMatchObject({ findings: 5, newFindings: 0, closedFindings: 1 });
    const log4j = (await findingsOf(target)).find((f) => f.issue_id === 'CVE-2021-44228')!;
    expect(log4j).toMatchObject({ status: 'closed', closed_reason: 'no longer reported by a complete scan of trivy-ci', closed_by_scan_id: second.id });
    expect((await findingsOf(target)).filter((f) => f.status === 'open')).toHaveLength(5);
  });

  it('closes nothing on an empty report that is not declared complete, or on a partial one', async () => {
    expect((await ingest(empty, { source, target })).counts).toMatchObject({ findings: 0, closedFindings: 0 });
    expect((await ingest(onlyOne, { source, target, complete: false })).counts).toMatchObject({ findings: 1, closedFindings: 0 });
    expect((await findingsOf(target)).filter((f) => f.status === 'open')).toHaveLength(5);
  });

  it('re-opens a finding that comes back', async () => {
    const back = await ingest(full, { source, target });
    expect(back.counts).toMatchObject({ findings: 6, newFindings: 0, reopenedFindings: 1, closedFindings: 0 });
    const log4j = (await findingsOf(target)).find((f) => f.issue_id === 'CVE-2021-44228')!;
    expect(log4j).toMatchObject({ status: 'open', closed_reason: null, closed_by_scan_id: null, reopen_count: 1 });
  });

  it('closes everything on an empty report declared complete for its target', async () => {
    expect((await ingest(empty, { source, target, complete: true })).counts).toMatchObject({ findings: 0, closedFindings: 6 });
    expect((await findingsOf(target)).every((f) => f.status === 'closed')).toBe(true);
  });

  it('leaves other assets and other sources alone', async () => {
    await ingest(full, { source, target: 'rescan/other:1' });
    await ingest(empty, { source, target, complete: true });
    expect((await findingsOf('rescan/other:1')).filter((f) => f.status === 'open')).toHaveLength(6);
  });
});

describe('first and last seen', () => {
  const target = 'rescan/seen:1';
  const source = 'trivy-seen';
  const full = writeReport('seen-full.json', () => {});
  const withoutLog4j = writeReport('seen-without-log4j.json', (r) => {
    r.Results[1].Vulnerabilities = r.Results[1].Vulnerabilities.filter((v: { VulnerabilityID: string }) => v.VulnerabilityID !== 'CVE-2021-44228');
  });
  const onlyOne = writeReport('seen-only-one.json', (r) => {
    r.Results = [{ ...r.Results[0], Vulnerabilities: [r.Results[0].Vulnerabilities[0]] }];
  });
  const seen = async () =>
    database.sql<{ issue_id: string; status: string; row_version: string; first_seen_at: Date; last_seen_at: Date }[]>`
      select f.issue_id, f.status, f.xmin::text as row_version, f.first_seen_at, ${findingLastSeen(database.sql)} as last_seen_at
      from findings f join assets a on a.id = f.asset_id where a.name = ${target} order by f.issue_id, f.component, f.id`;
  const time = (d: Date) => d.getTime();

  it('a complete rescan that changes nothing writes no finding, and every last seen moves to it', async () => {
    await ingest(full, { source, target });
    const before = await seen();
    await ingest(full, { source, target });
    const after = await seen();
    expect(after.map((f) => f.row_version)).toEqual(before.map((f) => f.row_version));
    expect(after.map((f) => time(f.first_seen_at))).toEqual(before.map((f) => time(f.first_seen_at)));
    expect(after.every((f, i) => time(f.last_seen_at) > time(before[i]!.last_seen_at))).toBe(true);
    expect(new Set(after.map((f) => time(f.last_seen_at))).size).toBe(1);
  });

  it('a partial rescan moves the last seen of what it lists only', async () => {
    const before = await seen();
    await ingest(onlyOne, { source, target, complete: false });
    const after = await seen();
    const moved = after.filter((f, i) => time(f.last_seen_at) > time(before[i]!.last_seen_at));
    expect(moved).toHaveLength(1);
    expect(after.map((f) => time(f.first_seen_at))).toEqual(before.map((f) => time(f.first_seen_at)));
  });

  it('a finding no longer reported keeps, as its last seen, the last complete scan that reported it', async () => {
    await ingest(full, { source, target });
    const before = await seen();
    const log4jBefore = before.find((f) => f.issue_id === 'CVE-2021-44228')!;
    await ingest(withoutLog4j, { source, target });
    const after = await seen();
    const log4j = after.find((f) => f.issue_id === 'CVE-2021-44228')!;
    expect(log4j.status).toBe('closed');
    expect(time(log4j.last_seen_at)).toBe(time(log4jBefore.last_seen_at));
    expect(after.filter((f) => f.status === 'open').every((f) => time(f.last_seen_at) > time(log4jBefore.last_seen_at))).toBe(true);
  });
});

describe('CVSS vectors', () => {
  const target = 'rescan/vectors:1';
  const source = 'trivy-vectors';
  const HTTP = 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H';
  const vulns = (r: typeof fixture) => r.Results.flatMap((x: { Vulnerabilities?: unknown[] }) => x.Vulnerabilities ?? []) as Array<Record<string, any>>;
  const full = writeReport('vectors-full.json', () => {});
  const rerated = writeReport('vectors-rerated.json', (r) => {
    // NVD re-rates CVE-2021-3711: same score, another vector.
    vulns(r).find((v) => v.VulnerabilityID === 'CVE-2021-3711')!.CVSS.nvd.V3Vector = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H';
  });
  const withoutVectors = writeReport('vectors-none.json', (r) => {
    for (const v of vulns(r)) delete v.CVSS.nvd.V3Vector;
  });
  const stored = async () =>
    database.sql<{ issue_id: string; cvss_vector: string | null; row_version: string }[]>`
      select f.issue_id, f.cvss_vector, f.xmin::text as row_version
      from findings f join assets a on a.id = f.asset_id where a.name = ${target} order by f.issue_id, f.component, f.id`;

  it('stores each finding’s vector; a report that repeats it writes nothing', async () => {
    await ingest(full, { source, target });
    const first = await stored();
    const expected = vulns(fixture).map((v) => [v.VulnerabilityID, v.CVSS.nvd.V3Vector]).sort((a, b) => a[0].localeCompare(b[0]));
    expect(first.map((f) => [f.issue_id, f.cvss_vector])).toEqual(expected);
    expect(first.find((f) => f.issue_id === 'CVE-2021-3712')!.cvss_vector).toBe(HTTP);
    await ingest(full, { source, target });
    expect((await stored()).map((f) => f.row_version)).toEqual(first.map((f) => f.row_version));
  });

  it('a changed vector rewrites that finding only; a report without vectors keeps them', async () => {
    const before = await stored();
    await ingest(rerated, { source, target });
    const after = await stored();
    const changed = after.filter((f, i) => f.row_version !== before[i]!.row_version);
    expect(changed.map((f) => [f.issue_id, f.cvss_vector])).toEqual([['CVE-2021-3711', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H']]);
    await ingest(withoutVectors, { source, target });
    expect(await stored()).toEqual(after);
  });
});

describe.skipIf(!hasCorpus)(`two scanners, one image${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  const trivy = corpusFile('scanners', 'more', 'trivy-grype-same-image', 'trivy-results.json');
  const grype = corpusFile('scanners', 'more', 'trivy-grype-same-image', 'grype-results.json');
  const target = 'my-app:latest';

  it('stores a CVE on a package reported by Trivy and by Grype as one finding with two sources', async () => {
    const t = await ingest(trivy, { source: 'trivy', target });
    const g = await ingest(grype, { source: 'grype', target });
    expect(t.counts.findings).toBe(54);
    expect(g.counts.newFindings).toBeLessThan(g.counts.findings);
    const [row] = await database.sql`
      select count(*) filter (where n = 2)::int as both, count(*) filter (where n = 1 and has_trivy)::int as trivy_only
      from (select f.id, count(*) as n, bool_or(fs.source = 'trivy') as has_trivy
            from findings f join assets a on a.id = f.asset_id join finding_sources fs on fs.finding_id = f.id
            where a.name = ${target} group by f.id) x`;
    // Every Trivy CVE is also in Grype's output for this image (the corpus README says so).
    expect(row).toEqual({ both: 54, trivy_only: 0 });
  });

  it('keeps the finding open while one scanner still reports it', async () => {
    const emptyTrivy = join(tmp, 'empty-trivy.json');
    writeFileSync(emptyTrivy, JSON.stringify({ SchemaVersion: 2, ArtifactName: target, ArtifactType: 'container_image', Results: [] }));
    const byTrivy = await ingest(emptyTrivy, { source: 'trivy', target, complete: true });
    expect(byTrivy.counts.closedFindings).toBe(0);
    const [open] = await database.sql`
      select count(*)::int as n from findings f join assets a on a.id = f.asset_id
      join finding_sources fs on fs.finding_id = f.id and fs.source = 'trivy'
      where a.name = ${target} and f.status = 'open' and not fs.present`;
    expect(open!.n).toBe(54);
  });
});

describe('asset identity across reports', () => {
  it('resolves one image reported under two tags to one asset by its digest', async () => {
    const tagged = (tag: string) => {
      const report = structuredClone(fixture);
      report.ArtifactName = `registry.example.com/shop/identity:${tag}`;
      const file = join(tmp, `identity-${tag}.json`);
      writeFileSync(file, JSON.stringify(report));
      return file;
    };
    const first = await ingest(tagged('1.4.2'), { source: 'trivy' });
    const second = await ingest(tagged('stable'), { source: 'trivy' });
    expect(first.counts.newFindings).toBe(6);
    expect(second.counts.newFindings).toBe(0);
    const identifiers = await database.sql`
      select kind, value from asset_identifiers where asset_id = (select asset_id from asset_identifiers where kind = 'key' and value = 'image:registry.example.com/shop/identity:1.4.2')
      order by kind, value`;
    expect(identifiers.map((i) => `${i.kind}=${i.value}`)).toEqual(
      expect.arrayContaining([
        'image=registry.example.com/shop/identity:1.4.2',
        'image=registry.example.com/shop/identity:stable',
        'image_digest=sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0',
        'key=image:registry.example.com/shop/identity:stable',
      ]),
    );
  });
});

describe('fingerprints', () => {
  it('stores, for every finding, the fingerprint that fingerprint() computes from its resolved asset', async () => {
    const target = 'rescan/fingerprints:1';
    await ingest(writeReport('fingerprints.json', () => {}), { source: 'trivy', target });
    const rows = await database.sql<{ fingerprint: string; asset_id: string; kind: 'vulnerability'; issue_id: string; component: string; version: string; location: string }[]>`
      select f.fingerprint, f.asset_id, f.kind, f.issue_id, f.component, f.version, f.location
      from findings f join assets a on a.id = f.asset_id where a.name = ${target}`;
    expect(rows).toHaveLength(6);
    for (const r of rows) {
      const identity = { kind: r.kind, issueId: r.issue_id, component: r.component, version: r.version, location: r.location };
      expect(fingerprint(Number(r.asset_id), identity), r.issue_id).toBe(r.fingerprint);
    }
  });
});
