import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor, connectors, type NormalizedFinding } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { fingerprint, ingestFindings } from '../../discovery/store/ingest.js';
import { planLinks } from '../../discovery/store/aliases.js';
import { listExposures } from '../../db/read-models/exposures.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Vulnerability aliases end to end: what each connector reports beside the issue id (real files),
// how links are planned, and on real PostgreSQL that a GHSA-only report and a report naming the CVE
// with that GHSA alias make one finding whichever comes first, including the re-key of findings
// stored before the link was known.

const fixtures = join(import.meta.dirname, '..', 'fixtures');

async function parse(format: string, file: string, target?: string): Promise<NormalizedFinding[]> {
  const connector = connectors.find((c) => c.format === format);
  if (!connector) throw new Error(`no connector ${format}`);
  const out: NormalizedFinding[] = [];
  for await (const f of connector.parse(file, target ? { target } : {})) out.push(f);
  return out;
}

/**
 * `issueId component@version -> aliases` of the findings that have aliases, sorted and
 * deduplicated; every alias list is checked on the way: sorted, one of each, without the issue id.
 */
function aliasLines(findings: NormalizedFinding[]): string[] {
  for (const f of findings) {
    if (!f.aliases) continue;
    expect(f.aliases.length).toBeGreaterThan(0);
    expect(f.aliases).not.toContain(f.issueId);
    expect([...f.aliases].sort()).toEqual(f.aliases);
    expect(new Set(f.aliases).size).toBe(f.aliases.length);
  }
  return [...new Set(findings.filter((f) => f.aliases).map((f) => `${f.issueId} ${f.component}@${f.version} -> ${f.aliases!.join(' ')}`))].sort();
}

describe('connectors report every id of the vulnerability', () => {
  it('Snyk: its own id beside the CVE it keys on (test fixture)', async () => {
    const lines = aliasLines(await parse('snyk-json', join(fixtures, 'snyk-json', 'all_projects_issue4277.json')));
    expect(lines).toContain('CVE-2019-0548 Microsoft.AspNetCore.WebSockets@2.2.0 -> SNYK-DOTNET-MICROSOFTASPNETCOREWEBSOCKETS-72898');
    expect(lines).toContain('CVE-2019-0815 Microsoft.AspNetCore@2.2.0 -> SNYK-DOTNET-MICROSOFTASPNETCORE-174184');
  });

  it('GitLab: the Gemnasium advisory beside the CVE (test fixture)', async () => {
    const lines = aliasLines(await parse('gitlab-dependency-scanning', join(fixtures, 'gitlab-dependency-scanning', 'gl-dependency-scanning-report-many-vuln_v15.json'), 'acme/app'));
    expect(lines).toContain('CVE-2020-14040 golang.org/x/text@v0.3.0 -> Gemnasium-8ab0265a-d1a9-4085-a661-0d9d9931f0ad');
  });

  describe.skipIf(!hasCorpus)(`real reports (${hasCorpus ? 'corpus' : corpusSkipReason})`, () => {
    const scanners = (...parts: string[]) => corpusFile('scanners', ...parts);

    it('Grype: the GitHub advisory that matched, keyed by its one related CVE', async () => {
      const lines = aliasLines(await parse('grype', scanners('more', 'trivy-grype-same-image', 'grype-results.json')));
      expect(lines).toContain('CVE-2023-30861 flask@1.1.2 -> GHSA-m2qf-hxjv-5gpq');
      expect(lines).toContain('CVE-2024-6345 setuptools@57.5.0 -> GHSA-cx63-2mw6-8hw5');
      expect(aliasLines(await parse('grype', scanners('defectdojo', 'anchore_grype', 'check_all_fields.json'))))
        .toContain('CVE-2021-44420 django@3.2.9 -> GHSA-v6rh-hp5x-86rv');
    });

    it('Trivy: the distribution advisory (VendorIDs)', async () => {
      const lines = aliasLines(await parse('trivy-json', scanners('defectdojo', 'trivy', 'kubernetes.json')));
      expect(lines).toEqual(['CVE-2020-27350 apt@1.8.2.1 -> DSA-4808-1']);
    });

    it('OSV-Scanner: the group ids and the records\' aliases', async () => {
      const lines = aliasLines(await parse('osv-scanner', scanners('defectdojo', 'osv_scanner', 'many_findings.json'), 'shop/api'));
      expect(lines).toContain('CVE-2022-29248 guzzlehttp/guzzle@6.3.3 -> BIT-drupal-2022-29248 GHSA-cwmx-hcrq-mhc3');
      // A malicious-package record without a CVE keeps its own id and names the GHSA.
      expect(aliasLines(await parse('osv-scanner', scanners('defectdojo', 'osv_scanner', 'some_findings.json'), 'shop/api')))
        .toEqual(['MAL-2023-1035 flot-axis@0.0.0 -> GHSA-8348-2q94-ffjx']);
    });

    it('Dependency-Track: the aliases objects (cveId, ghsaId...)', async () => {
      const lines = aliasLines(await parse('dependency-track', scanners('defectdojo', 'dependency_track', 'dependency_track_4.10_2024_02_11.json')));
      expect(lines).toEqual(['CVE-2023-45803 urllib3@1.26.16 -> GHSA-g4mx-q9vg-27p4']);
    });

    it('npm audit: the npm advisory beside the CVE (v1) or the GHSA (npm 7+)', async () => {
      expect(aliasLines(await parse('npm-audit', scanners('defectdojo', 'npm_audit', 'many_vuln.json'), 'shop/web')))
        .toContain('CVE-2017-16137 debug@2.2.0 -> NPM-534');
      expect(aliasLines(await parse('npm-audit', scanners('defectdojo', 'npm_audit_7_plus', 'many_vulns.json'), 'shop/web')))
        .toContain('GHSA-gxpj-cx7g-858c debug@ -> NPM-1094219');
    });

    it('CycloneDX: the ids of the vulnerability\'s references', async () => {
      expect(aliasLines(await parse('cyclonedx-json', scanners('defectdojo', 'cyclonedx', 'valid-vulnerability-1.4.json'), 'acme/app')))
        .toEqual(['SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111 com.fasterxml.jackson.core:jackson-databind@2.9.4 -> CVE-2018-7489']);
    });

    it('SARIF: a CVE named inside the rule id, never one only cited in a description', async () => {
      const cxf = aliasLines(await parse('sarif', scanners('defectdojo', 'sarif', 'cxf-3.4.6.sarif')));
      expect(cxf).toContain('CVE-2008-0732-geronimo-j2ee-management_1.1_spec lib/geronimo-j2ee-management_1.1_spec-1.0.1.jar@ -> CVE-2008-0732');
      // Trivy's rule CVE-2023-50782 describes an incomplete fix of CVE-2020-25659: not an alias.
      const trivy = await parse('sarif', scanners('more', 'sarif', 'trivy-0.49.1-container.sarif'));
      expect(trivy.filter((f) => f.issueId === 'CVE-2023-50782').every((f) => f.aliases === undefined)).toBe(true);
    });
  });
});

describe('planLinks', () => {
  const plan = (stated: Array<[string, string[]]>, stored: Array<[string, string]> = []) => {
    const { set, drop } = planLinks(stated.map(([issueId, aliases]) => ({ issueId, aliases })), new Map(stored));
    return { set: Object.fromEntries(set), drop: [...drop].sort() };
  };

  it('links every other id to the one CVE a report states', () => {
    expect(plan([['CVE-2023-30861', ['GHSA-m2qf-hxjv-5gpq']]])).toEqual({ set: { 'GHSA-m2qf-hxjv-5gpq': 'CVE-2023-30861' }, drop: [] });
    // The CVE as an alias of an advisory: the advisory is the alias.
    expect(plan([['SNYK-JAVA-X-1', ['CVE-2018-7489', 'GHSA-aaaa-bbbb-cccc']]]).set)
      .toEqual({ 'SNYK-JAVA-X-1': 'CVE-2018-7489', 'GHSA-aaaa-bbbb-cccc': 'CVE-2018-7489' });
    // Already stored: nothing to write.
    expect(plan([['CVE-2023-30861', ['GHSA-m2qf-hxjv-5gpq']]], [['GHSA-m2qf-hxjv-5gpq', 'CVE-2023-30861']])).toEqual({ set: {}, drop: [] });
  });

  it('makes an id named beside two CVEs an alias of neither, and never makes a CVE an alias', () => {
    // npm audit v1: one advisory, a finding per CVE, the GHSA beside each.
    expect(plan([['CVE-2016-1', ['CVE-2016-2', 'GHSA-aaaa-bbbb-cccc']], ['CVE-2016-2', ['CVE-2016-1', 'GHSA-aaaa-bbbb-cccc']]])).toEqual({ set: {}, drop: [] });
    // A distribution advisory fixing two CVEs, the second seen in a later report: the stored link goes.
    expect(plan([['CVE-2016-2', ['DSA-5000-1']]], [['DSA-5000-1', 'CVE-2016-1']])).toEqual({ set: {}, drop: ['DSA-5000-1'] });
    // Trivy names the advisory beside each CVE and Grype the GHSA beside one: the GHSA still links.
    expect(plan([['CVE-2016-1', ['DSA-5000-1', 'GHSA-aaaa-bbbb-cccc']], ['CVE-2016-2', ['DSA-5000-1']]]))
      .toEqual({ set: { 'GHSA-aaaa-bbbb-cccc': 'CVE-2016-1' }, drop: [] });
  });

  it('without a CVE keeps the id findings are already stored under, and moves a whole group to a CVE that arrives', () => {
    expect(plan([['PYSEC-2023-1', ['GHSA-aaaa-bbbb-cccc']], ['GHSA-aaaa-bbbb-cccc', ['PYSEC-2023-1']]]).set).toEqual({ 'PYSEC-2023-1': 'GHSA-aaaa-bbbb-cccc' });
    expect(plan([['PYSEC-2023-1', ['GHSA-aaaa-bbbb-cccc']]], [['GHSA-aaaa-bbbb-cccc', 'PYSEC-2023-1']]).set).toEqual({});
    expect(plan([['CVE-2023-9', ['GHSA-aaaa-bbbb-cccc']]], [['PYSEC-2023-1', 'GHSA-aaaa-bbbb-cccc'], ['OSV-1', 'GHSA-aaaa-bbbb-cccc']]).set)
      .toEqual({ 'GHSA-aaaa-bbbb-cccc': 'CVE-2023-9', 'PYSEC-2023-1': 'CVE-2023-9', 'OSV-1': 'CVE-2023-9' });
  });
});

describe.skipIf(!hasCorpus)(`one finding under every name (${hasCorpus ? 'real PostgreSQL' : corpusSkipReason})`, () => {
  let database: Database;
  const tmp = mkdtempSync(join(tmpdir(), 'aliases-'));
  const corpusReport = (name: string) => JSON.parse(readFileSync(corpusFile('scanners', 'more', 'trivy-grype-same-image', name), 'utf8'));
  // The real reports without the image's digest, so each test's target names an asset of its own
  // (with it, identity resolution finds the first test's image by digest).
  const grypeFile = join(tmp, 'grype.json');
  const trivyFile = join(tmp, 'trivy.json');
  const GHSA = 'GHSA-m2qf-hxjv-5gpq';
  const CVE = 'CVE-2023-30861';

  // What Grype writes for a GitHub advisory no CVE is known for yet: the real report's flask match
  // without its related NVD record, and nothing else.
  const ghsaOnlyFile = join(tmp, 'grype-ghsa-only.json');
  beforeAll(async () => {
    const grype = corpusReport('grype-results.json');
    for (const field of ['imageID', 'repoDigests', 'manifestDigest']) delete grype.source.target[field];
    writeFileSync(grypeFile, JSON.stringify(grype));
    const trivy = corpusReport('trivy-results.json');
    for (const field of ['ImageID', 'RepoDigests']) delete trivy.Metadata[field];
    writeFileSync(trivyFile, JSON.stringify(trivy));
    const report = structuredClone(grype);
    report.matches = report.matches
      .filter((m: { vulnerability: { id: string } }) => m.vulnerability.id === GHSA)
      .map((m: Record<string, unknown>) => ({ ...m, relatedVulnerabilities: [] }));
    expect(report.matches).toHaveLength(1);
    writeFileSync(ghsaOnlyFile, JSON.stringify(report));
    database = await migratedTestDatabase();
  });
  afterAll(closeTestDatabases);

  async function ingest(file: string, source: string, target: string) {
    const connector = await connectorFor(file, file);
    return ingestFindings(database.sql, { id: randomUUID(), source, target }, connector.parse(file, { target }));
  }

  async function flaskFindings(target: string) {
    return database.sql<{ id: string; issue_id: string; aliases: string[]; fingerprint: string; asset_id: string; first_seen_at: Date; ticket_key: string | null; sources: string[] }[]>`
      select f.id, f.issue_id, f.aliases, f.fingerprint, f.asset_id, f.first_seen_at, f.ticket_key,
             array(select fs.source from finding_sources fs where fs.finding_id = f.id order by fs.source) as sources
      from findings f join assets a on a.id = f.asset_id
      where a.name = ${target} and f.component = 'flask' and f.version = '1.1.2' order by f.id`;
  }

  function expectCanonical(finding: { issue_id: string; fingerprint: string; asset_id: string }) {
    expect(finding.issue_id).toBe(CVE);
    expect(finding.fingerprint).toBe(fingerprint(Number(finding.asset_id), {
      kind: 'vulnerability', issueId: CVE, component: 'flask', version: '1.1.2',
      location: 'usr/local/lib/python3.8/site-packages/Flask-1.1.2.dist-info/METADATA',
    }));
  }

  it('GHSA-only first, then the CVE with that alias: the stored finding is re-keyed, one finding, two sources', async () => {
    const target = 'aliases/ghsa-first:1';
    await ingest(ghsaOnlyFile, 'grype-github', target);
    const before = await flaskFindings(target);
    expect(before.map((f) => f.issue_id)).toEqual([GHSA]);

    await ingest(grypeFile, 'grype', target);
    const after = await flaskFindings(target);
    expect(after).toHaveLength(1);
    expect(after[0]!.id).toBe(before[0]!.id);
    expectCanonical(after[0]!);
    expect(after[0]!.aliases).toEqual([GHSA]);
    expect(after[0]!.sources).toEqual(['grype', 'grype-github']);
    const [link] = await database.sql`select canonical, source from vulnerability_aliases where alias = ${GHSA}`;
    expect(link).toEqual({ canonical: CVE, source: 'grype' });

    // Re-importing the GHSA-only report keeps it one finding and loses no alias.
    await ingest(ghsaOnlyFile, 'grype-github', target);
    const again = await flaskFindings(target);
    expect(again.map((f) => [f.issue_id, f.aliases, f.sources])).toEqual([[CVE, [GHSA], ['grype', 'grype-github']]]);
  });

  it('a re-key on an asset the scan did not cover leaves that asset to the next incremental rescoring', async () => {
    await database.sql`delete from vulnerability_aliases where alias = ${GHSA}`;
    await ingest(ghsaOnlyFile, 'grype-github', 'aliases/elsewhere:1');
    const [elsewhere] = await flaskFindings('aliases/elsewhere:1');
    expect(elsewhere!.issue_id).toBe(GHSA);
    // As a scoring run leaves it: every asset's context hash recorded, the estate's generation known.
    const assetId = String(elsewhere!.asset_id);
    await database.sql`
      insert into scoring_inputs (name, inputs, scored_at) values
        ('assets', ${database.sql.json({ [assetId]: 'hash-before' })}, now()), ('estate', ${database.sql.json({ context: 'generation-before' })}, now())
      on conflict (name) do update set inputs = excluded.inputs`;
    await ingest(grypeFile, 'grype', 'aliases/other-image:1');
    const [rekeyed] = await flaskFindings('aliases/elsewhere:1');
    expect(rekeyed!.issue_id).toBe(CVE);
    const inputs = Object.fromEntries((await database.sql<{ name: string; inputs: Record<string, string> }[]>`select name, inputs from scoring_inputs`).map((r) => [r.name, r.inputs]));
    expect(inputs.assets).not.toHaveProperty(assetId);
    expect(inputs.estate).toMatchObject({ context: 'forgotten' });
  });

  it('the CVE first, then GHSA-only: stored under the CVE at once', async () => {
    const target = 'aliases/cve-first:1';
    await ingest(grypeFile, 'grype', target);
    await ingest(ghsaOnlyFile, 'grype-github', target);
    const findings = await flaskFindings(target);
    expect(findings).toHaveLength(1);
    expectCanonical(findings[0]!);
    expect(findings[0]!.aliases).toEqual([GHSA]);
    expect(findings[0]!.sources).toEqual(['grype', 'grype-github']);
  });

  it('both names in one report: one finding, the link learned from that same report', async () => {
    await database.sql`delete from vulnerability_aliases`;
    const both = JSON.parse(readFileSync(grypeFile, 'utf8'));
    both.matches.push(...JSON.parse(readFileSync(ghsaOnlyFile, 'utf8')).matches);
    const file = join(tmp, 'grype-both.json');
    writeFileSync(file, JSON.stringify(both));
    const target = 'aliases/both:1';
    const counts = await ingest(file, 'grype', target);
    const findings = await flaskFindings(target);
    expect(findings).toHaveLength(1);
    expectCanonical(findings[0]!);
    expect(findings[0]!.aliases).toEqual([GHSA]);
    // The report's findings, its two flask matches counted once.
    expect(counts.findings).toBe(counts.newFindings);
    expect(counts.findings).toBe((await database.sql`select count(*)::int as n from findings f join assets a on a.id = f.asset_id where a.name = ${target}`)[0]!.n);
  });

  it('a link learned from another asset merges findings stored apart: sources, earliest first sighting, aliases, ticket', async () => {
    // Without the link, Trivy's CVE and the GHSA-only report are two findings on this image.
    await database.sql`delete from vulnerability_aliases`;
    const target = 'aliases/merge:1';
    await ingest(ghsaOnlyFile, 'grype-github', target);
    await ingest(trivyFile, 'trivy', target);
    const apart = await flaskFindings(target);
    expect(apart.map((f) => f.issue_id).sort()).toEqual([CVE, GHSA]);
    const ghsaFinding = apart.find((f) => f.issue_id === GHSA)!;
    const cveFinding = apart.find((f) => f.issue_id === CVE)!;
    await database.sql`update findings set first_seen_at = now() - interval '30 days', ticket_key = 'ticket:aliases-merge' where id = ${ghsaFinding.id}`;
    await database.sql`insert into score_changes (finding_id, asset_id, tier, score, policy_version, reason)
                       values (${ghsaFinding.id}, ${ghsaFinding.asset_id}, 'track', 1, 'test', 'before the merge')`;

    // Grype on another image states CVE <-> GHSA.
    await ingest(grypeFile, 'grype', 'aliases/elsewhere:1');
    const merged = await flaskFindings(target);
    expect(merged).toHaveLength(1);
    expect(merged[0]!.id).toBe(cveFinding.id);
    expectCanonical(merged[0]!);
    expect(merged[0]!.aliases).toEqual([GHSA]);
    expect(merged[0]!.sources).toEqual(['grype-github', 'trivy']);
    expect(merged[0]!.ticket_key).toBe('ticket:aliases-merge');
    expect(merged[0]!.first_seen_at.getTime()).toBeLessThan(cveFinding.first_seen_at.getTime() - 29 * 86_400_000);
    const [history] = await database.sql`select count(*)::int as n from score_changes where finding_id = ${cveFinding.id} and reason = 'before the merge'`;
    expect(history!.n).toBe(1);
    const [gone] = await database.sql`select count(*)::int as n from findings where id = ${ghsaFinding.id}`;
    expect(gone!.n).toBe(0);
  });

  it('merging two findings one source reports under both names keeps one source row, seen since the earlier', async () => {
    await database.sql`delete from vulnerability_aliases`;
    const target = 'aliases/same-source:1';
    await ingest(ghsaOnlyFile, 'registry', target);
    await ingest(trivyFile, 'registry', target);
    const apart = await flaskFindings(target);
    expect(apart).toHaveLength(2);
    const ghsaFinding = apart.find((f) => f.issue_id === GHSA)!;
    await database.sql`update finding_sources set first_seen_at = now() - interval '10 days' where finding_id = ${ghsaFinding.id}`;

    await ingest(grypeFile, 'grype', 'aliases/elsewhere:2');
    const merged = await flaskFindings(target);
    expect(merged.map((f) => [f.issue_id, f.aliases, f.sources])).toEqual([[CVE, [GHSA], ['registry']]]);
    const [row] = await database.sql`select present, first_seen_at from finding_sources where finding_id = ${merged[0]!.id}`;
    expect(row!.present).toBe(true);
    expect((row!.first_seen_at as Date).getTime()).toBeLessThan(Date.now() - 9 * 86_400_000);
  });

  it('the exposure list finds the finding by its CVE, by its alias and by free text', async () => {
    const target = 'aliases/cve-first:1';
    await database.sql`update findings set status = 'open' where true`;
    for (const filter of [{ issueId: CVE }, { issueId: GHSA }, { q: GHSA.toLowerCase() }, { q: CVE.toLowerCase() }]) {
      const page = await listExposures(database.sql, { ...filter, asset: target, limit: 10 });
      expect(page.items.map((e) => [e.issueId, e.aliases, e.component]), JSON.stringify(filter)).toEqual([[CVE, [GHSA], 'flask']]);
    }
    // A finding stored under the CVE by a source that named no alias is still found by the alias.
    const trivyOnly = 'aliases/trivy-only:1';
    await ingest(trivyFile, 'trivy', trivyOnly);
    const page = await listExposures(database.sql, { issueId: GHSA, asset: trivyOnly, limit: 10 });
    expect(page.items.map((e) => [e.issueId, e.aliases])).toEqual([[CVE, []]]);
  });
});
