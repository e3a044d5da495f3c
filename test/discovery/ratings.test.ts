import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { findingRating, type SourceRating } from '../../discovery/store/ratings.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';
import { getExposure } from '../../db/read-models/exposures.js';
import { exposureRoutes } from '../../api/routes/exposures.js';

// A finding's rating does not depend on which scanner scanned last: each source's rating is kept on
// its finding_sources row and the finding's is findingRating() of the present sources'. Trivy and
// Grype rate the CVEs of one image from different sources (NVD, Debian), so the real pair of reports
// of one image shows it.

const pair = (name: string) => corpusFile('scanners', 'more', 'trivy-grype-same-image', name);
const TARGET = 'ratings/app:1';
const tmp = mkdtempSync(join(tmpdir(), 'ratings-'));

async function ingest(database: Database, file: string, source: string, complete: boolean | null = null) {
  const connector = await connectorFor(file, file);
  return ingestFindings(database.sql, { id: randomUUID(), source, target: TARGET, complete }, connector.parse(file, { target: TARGET }));
}

interface Rated {
  key: string;
  id: number;
  severity: string;
  cvss_score: number | null;
  cvss_vector: string | null;
  status: string;
}

async function findings(database: Database): Promise<Map<string, Rated>> {
  const rows = await database.sql<Rated[]>`
    select concat_ws(' ', f.kind, f.issue_id, f.component, f.version, f.location) as key, f.id::int as id,
           f.severity, f.cvss_score, f.cvss_vector, f.status
    from findings f join assets a on a.id = f.asset_id where a.name = ${TARGET}`;
  return new Map(rows.map((r) => [r.key, r]));
}

async function sourceRatings(database: Database, findingId: number, presentOnly = true) {
  return database.sql<(SourceRating & { source: string; present: boolean })[]>`
    select source, present, severity, cvss_score as "cvssScore", cvss_vector as "cvssVector"
    from finding_sources where finding_id = ${findingId} and (present or not ${presentOnly}) order by source`;
}

const rating = (f: Rated | undefined) => f && { severity: f.severity, cvssScore: f.cvss_score, cvssVector: f.cvss_vector };

describe.skipIf(!hasCorpus)(`ratings independent of upload order (Trivy and Grype of one image)${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  let trivyFirst: Database;
  let grypeFirst: Database;

  beforeAll(async () => {
    // Fresh databases: the reports name the image by digest, so the two orders must not meet.
    [trivyFirst, grypeFirst] = await Promise.all([migratedTestDatabase(), migratedTestDatabase()]);
    await ingest(trivyFirst, pair('trivy-results.json'), 'trivy');
    await ingest(trivyFirst, pair('grype-results.json'), 'grype');
    await ingest(grypeFirst, pair('grype-results.json'), 'grype');
    await ingest(grypeFirst, pair('trivy-results.json'), 'trivy');
  });
  afterAll(closeTestDatabases);

  it('gives every finding the same rating in either order', async () => {
    const a = await findings(trivyFirst);
    const b = await findings(grypeFirst);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect(a.size).toBeGreaterThan(100);
    for (const [key, finding] of a) expect(rating(finding), key).toEqual(rating(b.get(key)));
  });

  it('keeps each source’s own rating, and the finding’s is findingRating() of them', async () => {
    let disagreeing = 0;
    let shared = 0;
    for (const finding of (await findings(trivyFirst)).values()) {
      const sources = await sourceRatings(trivyFirst, finding.id);
      expect(sources.every((s) => s.severity !== null), finding.key).toBe(true);
      expect(rating(finding), finding.key).toEqual(findingRating(sources));
      if (sources.length === 2) {
        shared++;
        const [grype, trivy] = sources;
        if (grype!.cvssScore !== trivy!.cvssScore || grype!.cvssVector !== trivy!.cvssVector || grype!.severity !== trivy!.severity) disagreeing++;
      }
    }
    // The pair is a real test: both scanners report most findings, and rate many differently.
    expect(shared).toBeGreaterThanOrEqual(54);
    expect(disagreeing).toBeGreaterThan(0);
  });

  it('shows each source’s rating in the exposure detail', async () => {
    for (const finding of (await findings(trivyFirst)).values()) {
      const sources = await sourceRatings(trivyFirst, finding.id);
      if (sources.length < 2 || sources[0]!.cvssVector === sources[1]!.cvssVector) continue;
      const detail = await getExposure(trivyFirst.sql, finding.id);
      expect(detail!.sources.map(({ source, present, severity, cvssScore, cvssVector }) => ({ source, present, severity, cvssScore, cvssVector })))
        .toEqual(sources);
      const { severity, cvssScore } = findingRating(sources)!;
      expect({ severity: detail!.severity, cvssScore: detail!.cvssScore }).toEqual({ severity, cvssScore });
      return;
    }
    expect.fail('no finding the two scanners rate with different vectors');
  });

  it('re-rates a finding from the sources still reporting it when one no longer does', async () => {
    const before = await findings(trivyFirst);
    // A CVE both report and rate differently: Grype stops reporting it in a complete rescan.
    let chosen: Rated | undefined;
    let trivyRating: SourceRating | undefined;
    for (const finding of before.values()) {
      const sources = await sourceRatings(trivyFirst, finding.id);
      const trivy = sources.find((s) => s.source === 'trivy');
      if (sources.length === 2 && trivy && JSON.stringify(findingRating([trivy])) !== JSON.stringify(rating(finding))) {
        chosen = finding;
        trivyRating = findingRating([trivy]);
        break;
      }
    }
    expect(chosen, 'a finding whose rating Grype raised').toBeDefined();
    const issueId = chosen!.key.split(' ')[1]!;
    const report = JSON.parse(readFileSync(pair('grype-results.json'), 'utf8'));
    report.matches = report.matches.filter((m: { vulnerability: { id: string }; relatedVulnerabilities?: { id: string }[] }) =>
      m.vulnerability.id !== issueId && !(m.relatedVulnerabilities ?? []).some((r) => r.id === issueId));
    const file = join(tmp, 'grype-without.json');
    writeFileSync(file, JSON.stringify(report));
    await ingest(trivyFirst, file, 'grype', true);
    const after = (await findings(trivyFirst)).get(chosen!.key)!;
    expect(after.status).toBe('open');
    expect(rating(after)).toEqual(trivyRating);
  });
});

describe('ratings of one source', () => {
  let database: Database;
  beforeAll(async () => {
    database = await migratedTestDatabase();
  });
  afterAll(closeTestDatabases);

  const report = (vulns: Array<{ id: string; severity: string; score?: number; vector?: string }>) => {
    const file = join(tmp, `trivy-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify({
      SchemaVersion: 2, ArtifactName: 'one-source/app:1', ArtifactType: 'container_image',
      Results: [{
        Target: 'one-source/app:1 (debian 12)', Class: 'os-pkgs', Type: 'debian',
        Vulnerabilities: vulns.map((v) => ({
          VulnerabilityID: v.id, PkgName: 'openssl', InstalledVersion: '3.0.11-1', Severity: v.severity,
          ...(v.score !== undefined ? { CVSS: { nvd: { V3Score: v.score, ...(v.vector ? { V3Vector: v.vector } : {}) } } } : {}),
        })),
      }],
    }));
    return file;
  };
  const stored = async () => (await database.sql`
    select f.severity, f.cvss_score, f.cvss_vector, s.severity as s_severity, s.cvss_score as s_score, s.cvss_vector as s_vector
    from findings f join finding_sources s on s.finding_id = f.id join assets a on a.id = f.asset_id
    where a.name = 'one-source/app:1' and f.issue_id = 'CVE-2024-0001'`)[0];

  it('writes its rating on its source row, and a report without a score keeps the stated one', async () => {
    const vector = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';
    const connector = await connectorFor(report([]), 'x.json');
    const run = (file: string) => ingestFindings(database.sql, { id: randomUUID(), source: 'trivy' }, connector.parse(file, {}));
    await run(report([{ id: 'CVE-2024-0001', severity: 'CRITICAL', score: 9.8, vector }]));
    expect(await stored()).toEqual({ severity: 'critical', cvss_score: 9.8, cvss_vector: vector, s_severity: 'critical', s_score: 9.8, s_vector: vector });
    await run(report([{ id: 'CVE-2024-0001', severity: 'HIGH' }]));
    expect(await stored()).toEqual({ severity: 'high', cvss_score: 9.8, cvss_vector: vector, s_severity: 'high', s_score: 9.8, s_vector: vector });
    const counts = await run(report([{ id: 'CVE-2024-0001', severity: 'HIGH' }]));
    expect(counts).toMatchObject({ findings: 1, newFindings: 0 });
  });
});

describe('findingRating()', () => {
  const r = (severity: string, cvssScore: number | null, cvssVector: string | null): SourceRating => ({ severity, cvssScore, cvssVector });
  it('prefers a vector, then the higher score, then the smaller vector; the highest severity', () => {
    expect(findingRating([r('high', 9.8, null), r('medium', 5.5, 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N')]))
      .toEqual(r('high', 5.5, 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N'));
    expect(findingRating([r('low', 7.5, 'CVSS:3.1/B'), r('negligible', 7.5, 'CVSS:3.1/A'), r('unknown', 8, 'CVSS:3.1/C')]))
      .toEqual(r('low', 8, 'CVSS:3.1/C'));
    expect(findingRating([r('unknown', null, null), r('info', null, null)])).toEqual(r('info', null, null));
    expect(findingRating([r('medium', 7.5, 'CVSS:3.1/B'), r('critical', 7.5, 'CVSS:3.1/A')])).toEqual(r('critical', 7.5, 'CVSS:3.1/A'));
  });
});

describe('the exposure API document', () => {
  it('describes each source’s rating in the exposure detail', () => {
    const doc = exposureRoutes.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'test', version: '1' } });
    const source = doc.components?.schemas?.ExposureSource as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(source.properties)).toEqual(expect.arrayContaining(['source', 'present', 'severity', 'cvssScore', 'cvssVector']));
    expect(source.required).toEqual(expect.arrayContaining(['severity', 'cvssScore', 'cvssVector']));
  });
});
