import { once } from 'node:events';
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectorFor, connectors, readHead, ReportError, type NormalizedFinding, type ParseOptions,
} from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';

// The JSON connectors against the real corpus (every Trivy, Grype, SARIF, CycloneDX JSON,
// Dependency-Track, npm audit and OSV-Scanner file), against hostile input, and at 200 MB.

const JSON_FORMATS = ['trivy-json', 'grype', 'sarif', 'cyclonedx-json', 'dependency-track', 'npm-audit', 'osv-scanner'] as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctem-json-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function connector(format: string) {
  const found = connectors.find((c) => c.format === format);
  if (!found) throw new Error(`no connector ${format}`);
  return found;
}

async function parse(format: string, file: string, options: ParseOptions = {}): Promise<NormalizedFinding[]> {
  const out: NormalizedFinding[] = [];
  for await (const finding of connector(format).parse(file, options)) out.push(finding);
  return out;
}

async function parseError(format: string, file: string, options: ParseOptions = {}): Promise<ReportError> {
  try {
    await parse(format, file, options);
  } catch (err) {
    expect(err).toBeInstanceOf(ReportError);
    return err as ReportError;
  }
  throw new Error(`${format} accepted ${file}`);
}

const distinct = (findings: NormalizedFinding[]) => new Set(findings.map(storedFingerprint)).size;

function only(findings: NormalizedFinding[], match: Partial<Record<'issueId' | 'component' | 'version' | 'kind', string>>): NormalizedFinding {
  const hits = findings.filter((f) => Object.entries(match).every(([k, v]) => f[k as keyof NormalizedFinding] === v));
  expect(hits, JSON.stringify(match)).toHaveLength(1);
  return hits[0]!;
}

async function fixture(name: string, content: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const dd = (file: string) => corpusFile('scanners', 'defectdojo', file);
const more = (file: string) => corpusFile('scanners', 'more', file);

/** DefectDojo's expected counts: '' means its parser must raise. */
function manifest(): Map<string, number | 'error'> {
  const rows = readFileSync(dd('MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1);
  return new Map(rows.map((row) => {
    const [, file = '', , expected = ''] = row.split('\t');
    return [file, expected === '' ? 'error' : Number(expected)];
  }));
}

// ---------------------------------------------------------------------------------------------
// Detection: every corpus file is claimed by exactly the right connector, among ALL registered.

function expectedFormat(path: string): string | undefined {
  if (/\.(xml|csv|nessus)$/.test(path)) return undefined;
  if (path === 'defectdojo/osv_scanner/no_findings.json') return 'none';
  const rules: [RegExp, string][] = [
    [/^defectdojo\/trivy\//, 'trivy-json'],
    [/^defectdojo\/anchore_grype\//, 'grype'],
    [/\.sarif$/, 'sarif'],
    [/^(defectdojo\/cyclonedx|more\/cyclonedx-vex)\//, 'cyclonedx-json'],
    [/^defectdojo\/dependency_track\//, 'dependency-track'],
    [/^defectdojo\/npm_audit(_7_plus)?\//, 'npm-audit'],
    [/^defectdojo\/osv_scanner\//, 'osv-scanner'],
    [/trivy-results\.json$/, 'trivy-json'],
    [/grype-results\.json$/, 'grype'],
  ];
  return rules.find(([re]) => re.test(path))?.[1];
}

if (!hasCorpus) console.warn(`connectors-json: corpus tests skipped: ${corpusSkipReason}`);

const corpusReports = hasCorpus
  ? (readdirSync(corpusFile('scanners'), { recursive: true }) as string[])
      .map((p) => p.split('\\').join('/'))
      .filter((p) => statSync(corpusFile('scanners', p)).isFile() && !/(MANIFEST\.tsv|README\.md|SHA256SUMS)$/.test(p))
      .sort()
  : [];

describe.skipIf(!hasCorpus)('detection over the corpus', () => {
  it('finds the corpus files', () => {
    expect(corpusReports.filter((p) => expectedFormat(p) !== undefined).length).toBeGreaterThanOrEqual(70);
  });

  it.each(corpusReports)('%s is claimed by exactly one connector', async (path) => {
    const head = await readHead(corpusFile('scanners', path));
    const matches = connectors.filter((c) => c.detect(head)).map((c) => c.format);
    const expected = expectedFormat(path);
    if (expected === 'none') expect(matches).toEqual([]);
    else if (expected === undefined) {
      // XML/CSV reports belong to other connectors: none of the JSON ones may claim them.
      expect(matches).toHaveLength(1);
      expect(JSON_FORMATS).not.toContain(matches[0]);
    } else expect(matches).toEqual([expected]);
  });

  it('rejects the 0-byte OSV report as empty, detected or named', async () => {
    const file = dd('osv_scanner/no_findings.json');
    await expect(connectorFor(file, 'no_findings.json')).rejects.toThrow('no_findings.json: unknown: the report is empty');
    expect((await parseError('osv-scanner', file)).message).toBe('no_findings.json: osv-scanner: the report is empty');
  });
});

// ---------------------------------------------------------------------------------------------
// Counts for every corpus file, cross-checked with DefectDojo's (MANIFEST.tsv).

interface CountCase {
  file: string;
  format: string;
  options?: ParseOptions;
  /** Findings the connector yields. */
  count: number | 'error';
  /** Distinct fingerprints (what is stored), when it differs from count. */
  stored?: number;
  /** DefectDojo's count, for files from its corpus. */
  dd?: number | 'error';
  /** Why this project's stored count differs from DefectDojo's. */
  why?: string;
}

const COUNTS: CountCase[] = [
  { file: 'defectdojo/trivy/scheme_2_many_vulns.json', format: 'trivy-json', count: 5, dd: 5 },
  { file: 'defectdojo/trivy/legacy_many_vulns.json', format: 'trivy-json', count: 93, dd: 93 },
  { file: 'defectdojo/trivy/legacy_no_vuln.json', format: 'trivy-json', count: 0, dd: 0 },
  { file: 'defectdojo/trivy/scheme_2_no_vuln.json', format: 'trivy-json', count: 0, dd: 0 },
  { file: 'defectdojo/trivy/kubernetes.json', format: 'trivy-json', count: 20, dd: 20 },
  { file: 'defectdojo/trivy/all_statuses.json', format: 'trivy-json', count: 8, dd: 8 },
  { file: 'defectdojo/anchore_grype/no_vuln.json', format: 'grype', count: 0, dd: 0 },
  { file: 'defectdojo/anchore_grype/many_vulns3.json', format: 'grype', count: 327, dd: 327 },
  { file: 'defectdojo/anchore_grype/many_vulns_with_epss_values.json', format: 'grype', count: 15, dd: 15 },
  // Both Django matches share one fingerprint, so storage merges them as DefectDojo does.
  { file: 'defectdojo/anchore_grype/check_all_fields.json', format: 'grype', count: 6, stored: 5, dd: 5 },
  // libc6 at two paths is one installed deb package: no path for OS packages, one stored finding.
  { file: 'defectdojo/anchore_grype/same_cve_different_paths.json', format: 'grype', count: 2, stored: 1, dd: 1 },
  { file: 'defectdojo/sarif/appendix_k.sarif', format: 'sarif', count: 1, dd: 1 },
  { file: 'defectdojo/sarif/appendix_k1.sarif', format: 'sarif', count: 0, dd: 0 },
  {
    file: 'defectdojo/sarif/no_runs.sarif', format: 'sarif', count: 'error', dd: 0,
    // An empty log is no analysis, and importing it as a clean scan would close every open finding.
    why: 'a log with no runs is rejected rather than imported as a clean scan',
  },
  { file: 'defectdojo/sarif/dependency_check.sarif', format: 'sarif', count: 13, dd: 13 },
  { file: 'defectdojo/sarif/cxf-3.4.6.sarif', format: 'sarif', count: 22, dd: 22 },
  { file: 'defectdojo/cyclonedx/valid-vulnerability-1.4.json', format: 'cyclonedx-json', options: { target: 'acme/app' }, count: 1, dd: 1 },
  { file: 'defectdojo/cyclonedx/log4j.json', format: 'cyclonedx-json', count: 8, dd: 8 },
  { file: 'defectdojo/dependency_track/one_finding.json', format: 'dependency-track', count: 1, dd: 1 },
  { file: 'defectdojo/dependency_track/many_findings.json', format: 'dependency-track', count: 4, dd: 4 },
  { file: 'defectdojo/dependency_track/dependency_track_4.10_2024_02_11.json', format: 'dependency-track', count: 1, dd: 1 },
  { file: 'defectdojo/dependency_track/no_findings_because_findings_key_is_null.json', format: 'dependency-track', count: 0, dd: 0 },
  { file: 'defectdojo/npm_audit/many_vuln.json', format: 'npm-audit', options: { target: 'shop/web' }, count: 5, dd: 5 },
  { file: 'defectdojo/npm_audit/empty_with_error.json', format: 'npm-audit', options: { target: 'shop/web' }, count: 'error', dd: 'error' },
  {
    file: 'defectdojo/npm_audit_7_plus/many_vulns.json', format: 'npm-audit', options: { target: 'shop/web' }, count: 3, dd: 6,
    // Only debug, semver and undici carry advisories; the other 3 are vulnerable only through them.
    why: 'packages vulnerable only through a dependency (`via` names) are not findings of their own',
  },
  {
    file: 'defectdojo/osv_scanner/many_findings.json', format: 'osv-scanner', count: 37, dd: 66,
    // OSV-Scanner's groups join alias records (GHSA-x + PYSEC-y of one CVE): 66 records, 37 vulnerabilities.
    why: 'one finding per alias group, not per OSV record',
  },
  { file: 'defectdojo/osv_scanner/some_findings.json', format: 'osv-scanner', count: 1, dd: 1 },
  {
    file: 'defectdojo/osv_scanner/no_findings.json', format: 'osv-scanner', count: 'error', dd: 0,
    // A 0-byte file is a failed or interrupted scan, not a clean one.
    why: 'a 0-byte report is rejected as empty',
  },
  { file: 'more/trivy-grype-same-image/trivy-results.json', format: 'trivy-json', count: 54 },
  { file: 'more/trivy-grype-same-image/grype-results.json', format: 'grype', count: 160 },
  { file: 'more/sarif/trivy-0.49.1-container.sarif', format: 'sarif', count: 21 },
  // CycloneDX VEX examples: one finding per vulnerability x affected ref, and per listed version or
  // range when the VEX speaks about a product by version. BOM-Link VEX documents name no subject: target.
  ...([
    ['bom.json', 0], ['vex.json', 1],
    ['CISA-Use-Cases/Case-1/vex-affected.json', 1], ['CISA-Use-Cases/Case-1/vex-fixed.json', 1],
    ['CISA-Use-Cases/Case-1/vex-not_affected.json', 1], ['CISA-Use-Cases/Case-1/vex-under_investigation.json', 1],
    ['CISA-Use-Cases/Case-2/vex.json', 19], ['CISA-Use-Cases/Case-3/vex.json', 19], ['CISA-Use-Cases/Case-4/vex.json', 3],
    ['CISA-Use-Cases/Case-5/vex.json', 1], ['CISA-Use-Cases/Case-6/vex.json', 7],
    ['CISA-Use-Cases/Case-7/bom-1.json', 0], ['CISA-Use-Cases/Case-7/bom-2.json', 0], ['CISA-Use-Cases/Case-7/vex.json', 10],
    ['CISA-Use-Cases/Case-8/bom-1.json', 0], ['CISA-Use-Cases/Case-8/bom-2.json', 0], ['CISA-Use-Cases/Case-8/vex.json', 24, 22] /* the document states CVE-2021-45105 for JKL twice */,
    ['Use-Cases/Case-1/vex.json', 1], ['Use-Cases/Case-2/vex.json', 1], ['Use-Cases/Case-3/vex.json', 1],
    ['Use-Cases/Case-4/vex.json', 1], ['Use-Cases/Case-5/vex.json', 2],
    ['Use-Cases/Case-6/bom-1.json', 0], ['Use-Cases/Case-6/bom-2.json', 0], ['Use-Cases/Case-6/bom-3.json', 0], ['Use-Cases/Case-6/vex.json', 3],
    ['Use-Cases/Case-7/vex.json', 0], ['Use-Cases/Case-8/vex.json', 4],
    ['Use-Cases/Case-9/bom-1.json', 0], ['Use-Cases/Case-9/bom-2.json', 0], ['Use-Cases/Case-9/bom-3.json', 0], ['Use-Cases/Case-9/vex.json', 57],
    ['Use-Cases/Case-10/vex.json', 13, 12] /* lists version 2.3.1 twice */, ['Use-Cases/Case-11/vex.json', 19], ['Use-Cases/Case-12/vex.json', 3],
    ['Use-Cases/Case-13/bom-1.json', 0], ['Use-Cases/Case-13/bom-2.json', 0], ['Use-Cases/Case-13/bom-3.json', 0], ['Use-Cases/Case-13/vex.json', 3],
  ] as const).map(([file, count, stored]): CountCase => ({
    file: `more/cyclonedx-vex/${file}`, format: 'cyclonedx-json', options: { target: 'acme/product' }, count,
    ...(stored !== undefined ? { stored } : {}),
  })),
];

describe.skipIf(!hasCorpus)('every corpus file: counts, cross-checked with DefectDojo', () => {
  it('covers every JSON corpus file', () => {
    const covered = new Set(COUNTS.map((c) => c.file));
    const json = corpusReports.filter((p) => expectedFormat(p) !== undefined);
    expect(json.filter((p) => !covered.has(p))).toEqual([]);
  });

  it.each(COUNTS)('$file ($format)', async (c) => {
    const file = corpusFile('scanners', c.file);
    if (c.dd !== undefined) {
      const expected = manifest().get(c.file.replace(/^defectdojo\//, ''));
      expect(expected, 'DefectDojo count in MANIFEST.tsv').toBe(c.dd);
    }
    if (c.count === 'error') {
      await parseError(c.format, file, c.options);
    } else {
      const findings = await parse(c.format, file, c.options);
      expect(findings).toHaveLength(c.count);
      expect(distinct(findings)).toBe(c.stored ?? c.count);
      for (const f of findings) {
        expect(f.issueId).not.toBe('');
        expect(['critical', 'high', 'medium', 'low', 'info', 'unknown']).toContain(f.severity);
        expect(f.asset.assetKey).toMatch(/^[a-z0-9]+:./);
      }
    }
    const stored = c.count === 'error' ? 'error' : (c.stored ?? c.count);
    if (c.dd !== undefined && stored !== c.dd) expect(c.why, 'a differing count needs a reason').toBeTruthy();
  });
});

// ---------------------------------------------------------------------------------------------
// Concrete fields, per format.

describe.skipIf(!hasCorpus)('Trivy JSON (corpus)', () => {
  it('SchemaVersion 2 image: ids, components, paths, fixed versions, CWE, CVSS', async () => {
    const findings = await parse('trivy-json', dd('trivy/scheme_2_many_vulns.json'));
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'image:teamdojo:latest', kind: 'container_image', name: 'teamdojo:latest' },
      kind: 'vulnerability', issueId: 'CVE-2020-15999', component: 'freetype', version: '2.9.1-r2',
      location: 'app/libs/freetype-2.9.1-r2', fixedVersion: '2.9.1-r3', severity: 'medium', cvssScore: 6.5, cwes: ['CWE-787'],
    });
    expect(findings[1]).toMatchObject({ issueId: 'CVE-2020-28196', component: 'krb5-libs', version: '1.15.5-r0', severity: 'high', fixedVersion: '1.15.5-r1' });
    expect(only(findings, { issueId: 'CVE-2018-1324' })).toMatchObject({
      component: 'org.apache.commons:commons-compress', version: '1.14', location: 'app/libs/commons-compress-1.14', fixedVersion: '1.16',
    });
  });

  it('legacy list and the literal null report', async () => {
    const findings = await parse('trivy-json', dd('trivy/legacy_many_vulns.json'));
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'image:debian (debian 10.8)', kind: 'container_image' },
      issueId: 'CVE-2011-3374', component: 'apt', version: '1.8.2.2', severity: 'low', location: '', cwes: ['CWE-347'],
    });
    expect(findings.filter((f) => f.severity === 'unknown')).toHaveLength(1);
    expect(await parse('trivy-json', dd('trivy/legacy_no_vuln.json'))).toEqual([]);
    expect(await parse('trivy-json', dd('trivy/scheme_2_no_vuln.json'))).toEqual([]);
  });

  it('Kubernetes cluster report: one asset per resource, vulnerabilities and misconfigurations', async () => {
    const findings = await parse('trivy-json', dd('trivy/kubernetes.json'));
    const cluster = 'arn:aws:eks:us-east-1:576036489467:cluster/monitoring-test-cluster';
    expect(findings.filter((f) => f.kind === 'vulnerability')).toHaveLength(10);
    expect(findings.filter((f) => f.kind === 'misconfiguration')).toHaveLength(10);
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set([
      `k8s:${cluster}/default/Deployment/redis-follower`, `k8s:${cluster}/default/Deployment/redis-leader`,
    ]));
    expect(findings[0]).toMatchObject({
      asset: { assetKey: `k8s:${cluster}/default/Deployment/redis-follower` },
      issueId: 'CVE-2020-27350', component: 'apt', version: '1.8.2.1', severity: 'medium', fixedVersion: '1.8.2.2',
    });
    expect(findings[10]).toMatchObject({
      kind: 'misconfiguration', issueId: 'KSV001', title: 'Process can elevate its own privileges', severity: 'medium',
      component: 'Deployment/redis-follower', version: '', location: 'Deployment/redis-follower',
    });
    const renamed = await parse('trivy-json', dd('trivy/kubernetes.json'), { target: 'prod' });
    expect(renamed[0]!.asset.assetKey).toBe('k8s:prod/default/Deployment/redis-follower');
  });

  it('vendor status for every Trivy status, and an image named only by its result target', async () => {
    const findings = await parse('trivy-json', dd('trivy/all_statuses.json'));
    expect(findings.map((f) => f.vendorStatus)).toEqual([
      'unknown', 'not_affected', 'affected', 'fix_available', 'under_investigation', 'will_not_fix', 'will_not_fix', 'will_not_fix',
    ]);
    // ArtifactName is "" (scanned by ID): the OS result's target names the image.
    expect(findings[0]!.asset).toMatchObject({ assetKey: 'image:noppaknopsta/example-app:main-159', digest: expect.stringMatching(/^sha256:22ae/) });
    expect(findings[3]).toMatchObject({ issueId: 'CVE-2018-1000876', component: 'binutils', version: '2.31.1-16', cwes: ['CWE-190', 'CWE-787'] });
    expect(findings[4]!.cwes).toEqual(['CWE-476']);
    expect(findings[2]).toMatchObject({ issueId: 'TEMP-0841856-B18BAF', component: 'bash' });
    expect(findings[2]!.cwes).toBeUndefined();
  });
});

describe.skipIf(!hasCorpus)('Grype JSON (corpus)', () => {
  it('prefers the CVE over GHSA ids; fixed versions, vendor status, paths only for language packages', async () => {
    const findings = await parse('grype', dd('anchore_grype/check_all_fields.json'));
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'image:vulnerable-image:latest', kind: 'container_image', digest: expect.stringMatching(/^sha256:ce98/) },
      issueId: 'CVE-2004-0971', component: 'libgssapi-krb5-2', version: '1.17-3+deb10u3', location: '', severity: 'low',
      cvssScore: 2.1, vendorStatus: 'affected',
    });
    expect(findings[0]!.fixedVersion).toBeUndefined();
    expect(findings[1]).toMatchObject({
      issueId: 'CVE-2021-32626', component: 'redis', version: '4.0.2', vendorStatus: 'will_not_fix',
      location: 'usr/local/lib/python3.8/site-packages/redis-4.0.2.dist-info/METADATA', cvssScore: 8.8,
    });
    expect(findings[1]!.fixedVersion).toBeUndefined(); // wont-fix lists versions, but none is a fix
    expect(findings[4]).toMatchObject({
      issueId: 'CVE-2021-44420', component: 'django', version: '3.2.9', fixedVersion: '3.2.10', vendorStatus: 'fix_available', severity: 'high',
    });
  });

  it('old Grype layout and binary packages', async () => {
    const old = await parse('grype', dd('anchore_grype/many_vulns3.json'));
    expect(only(old, { issueId: 'CVE-2011-3389' })).toMatchObject({ severity: 'medium', component: 'libgnutls30', version: '3.6.7-4+deb10u5' });
    expect(old[0]).toMatchObject({ issueId: 'CVE-2019-18276', component: 'bash', severity: 'low', cvssScore: 7.2 });
    expect(old.filter((f) => f.severity === 'unknown')).toHaveLength(10);
    const epss = await parse('grype', dd('anchore_grype/many_vulns_with_epss_values.json'));
    expect(epss[0]).toMatchObject({ issueId: 'CVE-2022-28391', component: 'busybox', version: '1.32.1', severity: 'high' });
    expect(epss[14]!.issueId).toBe('CVE-2025-46394');
    expect(await parse('grype', dd('anchore_grype/no_vuln.json'))).toEqual([]);
  });

  it('one CVE at two paths of one deb package is one stored finding', async () => {
    const findings = await parse('grype', dd('anchore_grype/same_cve_different_paths.json'));
    expect(findings.map((f) => [f.issueId, f.component, f.version, f.location])).toEqual([
      ['CVE-2021-33574', 'libc6', '2.28-10', ''], ['CVE-2021-33574', 'libc6', '2.28-10', ''],
    ]);
  });
});

describe.skipIf(!hasCorpus)('CVSS v3 vectors (corpus)', () => {
  // Prioritization reads automatability and technical impact from the vector; a score alone can't say.
  it('carries the vector behind the score, per format', async () => {
    const vectorOf = async (format: string, file: string, issueId: string) =>
      (await parse(format, dd(file))).find((f) => f.issueId === issueId)?.cvssVector;
    expect(await vectorOf('trivy-json', 'trivy/scheme_2_many_vulns.json', 'CVE-2020-15999')).toBe('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H');
    expect(await vectorOf('grype', 'anchore_grype/check_all_fields.json', 'CVE-2021-32626')).toBe('CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H');
    expect(await vectorOf('osv-scanner', 'osv_scanner/many_findings.json', 'CVE-2022-31090')).toBe('CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:N/A:N');
    expect(await vectorOf('dependency-track', 'dependency_track/one_finding.json', 'NPM-533')).toBe('CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H');
    expect(await vectorOf('cyclonedx-json', 'cyclonedx/log4j.json', 'CVE-2021-44228')).toBe('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H');
  });

  it('a finding with only a v2 rating has no v3 vector', async () => {
    const findings = await parse('trivy-json', dd('trivy/legacy_many_vulns.json'));
    const withVector = findings.filter((f) => f.cvssVector !== undefined);
    expect(withVector.length).toBeGreaterThan(0);
    expect(withVector.length).toBeLessThan(findings.length);
    expect(withVector.every((f) => /^CVSS:3\.[01]\/AV:[NALP]\/AC:[LH]\/PR:[NLH]\/UI:[NR]\/S:[UC]\/C:[NLH]\/I:[NLH]\/A:[NLH]/.test(f.cvssVector!))).toBe(true);
  });
});

describe.skipIf(!hasCorpus)('Trivy and Grype on the same image', () => {
  it('every Trivy CVE finding has a Grype finding with the same fingerprint', async () => {
    for (const options of [{}, { target: 'registry.example.com/my-app:latest' }]) {
      const trivy = await parse('trivy-json', more('trivy-grype-same-image/trivy-results.json'), options);
      const grype = await parse('grype', more('trivy-grype-same-image/grype-results.json'), options);
      const grypeByPrint = new Map(grype.map((f) => [storedFingerprint(f), f]));
      const cves = trivy.filter((f) => f.issueId.startsWith('CVE-'));
      expect(cves).toHaveLength(54);
      expect(cves.filter((f) => !grypeByPrint.has(storedFingerprint(f))).map((f) => `${f.issueId} ${f.component}`)).toEqual([]);
      // OS packages in particular (no path), and the vendor statuses agree too.
      const os = cves.filter((f) => f.location === '');
      expect(os).toHaveLength(49);
      for (const f of cves) expect(grypeByPrint.get(storedFingerprint(f))!.vendorStatus).toBe(f.vendorStatus);
      // Python names differ in case between the tools (Flask / flask): normalized.
      expect(only(trivy, { issueId: 'CVE-2023-30861' })).toMatchObject({
        component: 'flask', location: 'usr/local/lib/python3.8/site-packages/Flask-1.1.2.dist-info/METADATA',
      });
      expect(grype[0]!.asset).toEqual(trivy[0]!.asset);
    }
  });
});

describe.skipIf(!hasCorpus)('SARIF (corpus)', () => {
  it('spec appendix K: rule, file and line, level, suppression, repository asset', async () => {
    const [finding] = await parse('sarif', dd('sarif/appendix_k.sarif'));
    expect(finding).toMatchObject({
      asset: { assetKey: 'repo:https://github.com/example-corp/browser', kind: 'repository' },
      issueId: 'C2001', component: 'collections/list.h', version: '', location: 'collections/list.h:15',
      severity: 'high', vendorStatus: 'suppressed', title: 'A variable was used without being initialized.',
    });
  });

  it('Dependency-Check, Grype and Trivy SARIF', async () => {
    const depcheck = await parse('sarif', dd('sarif/dependency_check.sarif'));
    expect(depcheck[0]!.component).toBe('file:////src/.venv/lib/python3.9/site-packages/tastypie_swagger/static/tastypie_swagger/js/lib/handlebars-1.0.0.js');
    expect(depcheck[6]).toMatchObject({ issueId: 'CVE-2019-11358', severity: 'high', asset: { assetKey: 'repo:dependency-check' } });
    expect(depcheck[6]!.title).toMatch(/^CVE-2019-11358 - jQuery before 3\.4\.0/);

    const cxf = await parse('sarif', dd('sarif/cxf-3.4.6.sarif'));
    expect(cxf[0]).toMatchObject({ severity: 'low', issueId: 'CVE-2008-0732-geronimo-j2ee-management_1.1_spec', location: 'lib/geronimo-j2ee-management_1.1_spec-1.0.1.jar:1' });
    expect(cxf[6]!.severity).toBe('high');
    expect(cxf[0]!.asset.assetKey).toBe('repo:Grype');
    expect((await parse('sarif', dd('sarif/cxf-3.4.6.sarif'), { target: 'apache/cxf' }))[0]!.asset.assetKey).toBe('repo:apache/cxf');

    // Trivy writes the image name after the results: still an image asset.
    const trivy = await parse('sarif', more('sarif/trivy-0.49.1-container.sarif'));
    expect(trivy[0]).toMatchObject({ asset: { assetKey: 'image:test_tag', kind: 'container_image' }, issueId: 'CVE-2024-26597', severity: 'high' });
    expect(trivy[1]).toMatchObject({ issueId: 'CVE-2023-0286', location: expect.stringMatching(/cryptography-37\.0\.4\.dist-info\/METADATA:1$/) });
  });

  it('an empty results list is a clean run; no runs is refused', async () => {
    expect(await parse('sarif', dd('sarif/appendix_k1.sarif'))).toEqual([]);
    expect((await parseError('sarif', dd('sarif/no_runs.sarif'))).message).toMatch(/^no_runs\.sarif: sarif: runs: no runs.*refusing to import as an empty scan/);
  });
});

// Real Gitleaks 7.5 SARIF (see test/fixtures/sarif/README.md): results carry no ruleId and no rule.
const REAL_SARIF = (name: string) => fileURLToPath(new URL(`../fixtures/sarif/${name}`, import.meta.url));

describe('SARIF: results that reference no rule', () => {
  it('Gitleaks 7.5: the rule is the driver rule the message names', async () => {
    const file = REAL_SARIF('gitleaks_7.5.0.sarif');
    expect((await connectorFor(file, 'gitleaks_7.5.0.sarif')).format).toBe('sarif');
    const findings = await parse('sarif', file);
    // DefectDojo's SARIF parser reads 8 findings from this file, Medium (no level: warning).
    expect(findings.map((f) => [f.issueId, f.location, f.severity])).toEqual([
      ['AWS Access Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_1_vuln.json:13', 'medium'],
      ['AWS Access Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_1_vuln.json:13', 'medium'],
      ['Asymmetric Private Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_3_vuln.json:13', 'medium'],
      ['AWS Access Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_3_vuln.json:44', 'medium'],
      ['AWS Access Key', 'dojo/unittests/tools/test_gitlab_secret_detection_report_parser.py:37', 'medium'],
      ['Asymmetric Private Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_3_vuln.json:13', 'medium'],
      ['AWS Access Key', 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_3_vuln.json:44', 'medium'],
      ['AWS Access Key', 'dojo/unittests/tools/test_gitlab_secret_detection_report_parser.py:37', 'medium'],
    ]);
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'repo:Gitleaks', kind: 'repository', name: 'Gitleaks' },
      component: 'dojo/unittests/scans/gitlab_secret_detection_report/gitlab_secret_detection_report_1_vuln.json',
      version: '',
      title: 'AWS Access Key',
      description: 'AWS Access Key secret detected',
    });
  });

  it('takes rule.index, then the longest rule named in the message; refuses a result nothing identifies', async () => {
    const rules = [{ id: 'Slack', name: 'Slack' }, { id: 'Slack Webhook', name: 'Slack Webhook' }, { id: 'gl-aws', name: 'AWS', defaultConfiguration: { level: 'error' } }];
    const at = (uri: string) => [{ physicalLocation: { artifactLocation: { uri }, region: { startLine: 1 } } }];
    const log = (results: unknown[]) => ({ version: '2.1.0', runs: [{ tool: { driver: { name: 'Gitleaks', rules } }, results }] });
    const ok = await fixture('by-message.sarif', log([
      { rule: { index: 2 }, message: { text: 'whatever' }, locations: at('a') },
      { message: { text: 'Slack Webhook secret detected' }, locations: at('b') },
      { message: { text: 'Slack secret detected' }, locations: at('c') },
      // By the rule's name when its id differs: the rule's level applies.
      { message: { text: 'AWS secret detected' }, locations: at('d') },
    ]));
    expect((await parse('sarif', ok)).map((f) => [f.issueId, f.location, f.severity])).toEqual([
      ['gl-aws', 'a:1', 'high'], ['Slack Webhook', 'b:1', 'medium'], ['Slack', 'c:1', 'medium'], ['gl-aws', 'd:1', 'high'],
    ]);
    // "Slackware" is not the rule "Slack": a rule is named only as a whole word.
    const none = await fixture('no-rule.sarif', log([{ message: { text: 'AWS secret detected' }, locations: at('a') }, { message: { text: 'Slackware key' }, locations: at('b') }]));
    expect((await parseError('sarif', none)).message).toBe(
      "no-rule.sarif: sarif: runs[0].results[1]: no rule identifies this result: no ruleId, rule.id or ruleIndex/rule.index naming a rule, and the message names none of the driver's rules",
    );
  });
});

describe.skipIf(!hasCorpus)('CycloneDX JSON (corpus)', () => {
  it('resolves affects refs to components; VEX analysis becomes the vendor status', async () => {
    const [finding] = await parse('cyclonedx-json', dd('cyclonedx/valid-vulnerability-1.4.json'), { target: 'acme/app' });
    expect(finding).toMatchObject({
      asset: { assetKey: 'asset:acme/app' }, issueId: 'SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111',
      component: 'com.fasterxml.jackson.core:jackson-databind', version: '2.9.4', severity: 'critical', cvssScore: 9.8,
      vendorStatus: 'not_affected', cwes: ['CWE-184', 'CWE-502'],
    });
    // The document names no subject: the asset must be given.
    expect((await parseError('cyclonedx-json', dd('cyclonedx/valid-vulnerability-1.4.json'))).message).toMatch(/metadata\.component: missing \(pass a target/);

    const log4j = await parse('cyclonedx-json', dd('cyclonedx/log4j.json'));
    expect(log4j[0]).toMatchObject({
      issueId: 'CVE-2021-44228', component: 'org.apache.logging.log4j:log4j-core', version: '2.13.2', severity: 'critical',
      cvssScore: 10, vendorStatus: 'under_investigation',
    });
    expect(log4j[0]!.asset.assetKey).toBe('asset:./configuration/.m2/repository/org/apache/logging/log4j/log4j-core/2.13.2');
    expect(log4j.map((f) => f.issueId).filter((id) => id.startsWith('GHSA-'))).toHaveLength(4);
  });

  it('VEX states, per-version statements and BOM-Links', async () => {
    const vex = (file: string) => parse('cyclonedx-json', more(`cyclonedx-vex/${file}`), { target: 'acme/product' });
    const states = await Promise.all(['affected', 'fixed', 'not_affected', 'under_investigation'].map((s) => vex(`CISA-Use-Cases/Case-1/vex-${s}.json`)));
    expect(states.map(([f]) => f!.vendorStatus)).toEqual(['affected', 'fixed', 'not_affected', 'under_investigation']);
    expect(states[1]![0]).toMatchObject({ issueId: 'CVE-2021-44228', component: 'DEF', version: '1.1' });

    const byVersion = await vex('CISA-Use-Cases/Case-6/vex.json');
    expect(byVersion.map((f) => [f.version, f.vendorStatus])).toEqual([
      ['2.4', 'affected'], ['2.6', 'affected'], ['vers:generic/>=2.9|<=4.1', 'affected'],
      ['vers:generic/>=1.0|<=2.3', 'not_affected'], ['2.5', 'not_affected'], ['vers:generic/>=2.7|<=2.8', 'not_affected'], ['4.2', 'not_affected'],
    ]);
    expect(new Set(byVersion.map((f) => f.component))).toEqual(new Set(['ABC']));

    const links = await vex('CISA-Use-Cases/Case-7/vex.json');
    expect(only(links, { component: 'product-JKL', version: '5.1' }).vendorStatus).toBe('fixed');
    const [jackson] = await vex('vex.json');
    expect(jackson).toMatchObject({ component: 'com.fasterxml.jackson.core:jackson-databind', version: '2.10.0', vendorStatus: 'not_affected' });
    // A plain SBOM: no vulnerabilities, no findings (the component inventory is not stored yet).
    expect(await parse('cyclonedx-json', more('cyclonedx-vex/bom.json'))).toEqual([]);
  });
});

describe.skipIf(!hasCorpus)('Dependency-Track FPF (corpus)', () => {
  it('project asset, prefixed source ids, analysis decisions, CVSS from the vector', async () => {
    const [one] = await parse('dependency-track', dd('dependency_track/one_finding.json'));
    expect(one).toMatchObject({
      asset: { assetKey: 'project:Acme Example@1.0', name: 'Acme Example@1.0' },
      issueId: 'NPM-533', component: 'timespan', version: '2.3.0', severity: 'low', cvssScore: 9.8, cwes: ['CWE-400'],
      references: ['https://example.com', 'https://example.org'],
    });
    const many = await parse('dependency-track', dd('dependency_track/many_findings.json'));
    expect(many.map((f) => f.issueId)).toEqual(['NPM-533', 'NPM-48', 'CVE-2016-2097', 'CVE-2016-2097']);
    expect(many[2]).toMatchObject({ component: 'actionview', version: '5.2.3', vendorStatus: 'false_positive', severity: 'medium' });
    expect(many[3]).toMatchObject({ component: 'actionview', version: '' });
    expect(many[3]!.vendorStatus).toBeUndefined();
    // 4.10 writes findings before the project; the asset is still the project.
    const [epss] = await parse('dependency-track', dd('dependency_track/dependency_track_4.10_2024_02_11.json'));
    expect(epss).toMatchObject({ asset: { assetKey: 'project:blablabla-Requirements-txt@1' }, issueId: 'CVE-2023-45803', component: 'urllib3', version: '1.26.16', cvssScore: 4.2 });
    expect(await parse('dependency-track', dd('dependency_track/no_findings_because_findings_key_is_null.json'))).toEqual([]);
  });
});

describe.skipIf(!hasCorpus)('npm audit (corpus)', () => {
  it('v1 advisories: CVE per installed version', async () => {
    const findings = await parse('npm-audit', dd('npm_audit/many_vuln.json'), { target: 'shop/web' });
    expect(findings[0]!.asset).toEqual({ assetKey: 'fs:shop/web', kind: 'filesystem', name: 'shop/web' });
    expect(only(findings, { issueId: 'CVE-2017-16138' })).toMatchObject({ component: 'mime', version: '1.3.4', severity: 'medium' });
    expect(only(findings, { issueId: 'CVE-2017-16119' })).toMatchObject({ component: 'fresh', version: '0.3.0', severity: 'high', fixedVersion: '0.5.2', cwes: ['CWE-400'] });
    expect(only(findings, { issueId: 'CVE-2016-10539' })).toMatchObject({ component: 'negotiator', fixedVersion: '0.6.1' });
    // A union of ranges names no single fix; the recommendation lists one per major version, kept as a list.
    expect(only(findings, { issueId: 'CVE-2017-16082' })).toMatchObject({ fixedVersion: '2.11.2, 3.6.4, 4.5.7, 5.2.1, 6.4.2, 7.1.2', fixSource: 'text' });
    expect((await parseError('npm-audit', dd('npm_audit/many_vuln.json'))).message).toMatch(/pass a target/);
  });

  it('v2 (npm 7+): advisories from via, GHSA ids', async () => {
    const findings = await parse('npm-audit', dd('npm_audit_7_plus/many_vulns.json'), { target: 'shop/web' });
    expect(findings.map((f) => [f.issueId, f.component, f.version, f.severity])).toEqual([
      ['GHSA-gxpj-cx7g-858c', 'debug', '', 'medium'],
      ['GHSA-c2qf-rxjj-qqgw', 'semver', '', 'medium'],
      ['GHSA-3787-6prv-h9w3', 'undici', '', 'low'],
    ]);
    expect(findings[0]).toMatchObject({ cvssScore: 5.3, cwes: ['CWE-400'], title: 'Regular Expression Denial of Service in debug' });
  });

  it('ENOAUDIT is an error, never an empty scan', async () => {
    const file = dd('npm_audit/empty_with_error.json');
    expect((await connectorFor(file, 'empty_with_error.json')).format).toBe('npm-audit');
    const err = await parseError('npm-audit', file, { target: 'shop/web' });
    expect(err.message).toMatch(/^empty_with_error\.json: npm-audit: error: npm audit report contains errors: ENOAUDIT: /);
  });
});

describe.skipIf(!hasCorpus)('OSV-Scanner (corpus)', () => {
  it('alias groups keyed on their CVE, nearest fixed version, asset per scanned directory', async () => {
    const findings = await parse('osv-scanner', dd('osv_scanner/many_findings.json'));
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'fs:/tmpcardmarket-api', kind: 'filesystem' },
      issueId: 'CVE-2022-31090', component: 'guzzlehttp/guzzle', version: '6.3.3', fixedVersion: '6.5.8', severity: 'high', cvssScore: 7.7,
    });
    // GHSA-53qw-q765-4fww + PYSEC-2022-1 are one finding; 3.2.11 is the fix on django's 3.2 line.
    expect(only(findings, { issueId: 'CVE-2021-45115' })).toMatchObject({ component: 'django', version: '3.2.4', fixedVersion: '3.2.11', severity: 'high' });
    // Three CVEs in one group: no single CVE to key on, the group's id stays.
    expect(only(findings, { issueId: 'GHSA-q7rv-6hp3-vh96' })).toMatchObject({ component: 'guzzlehttp/psr7', version: '1.6.1', fixedVersion: '1.8.4' });
    expect(only(findings, { issueId: 'CVE-2023-50094' })).toMatchObject({
      component: 'https://github.com/yogeshojha/rengine', version: 'f5f3c22f3ed5a6804a2a8d9ee9fa43044cfa24a6', severity: 'high', cvssScore: 8.8,
    });
    expect(findings.filter((f) => f.component === 'django')).toHaveLength(20);
    expect(new Set(findings.map((f) => f.asset.assetKey)).size).toBe(6);
    const renamed = await parse('osv-scanner', dd('osv_scanner/many_findings.json'), { target: 'monorepo' });
    expect(new Set(renamed.map((f) => f.asset.assetKey))).toEqual(new Set(['fs:monorepo']));
  });

  it('malicious-package records', async () => {
    const [finding] = await parse('osv-scanner', dd('osv_scanner/some_findings.json'));
    expect(finding).toMatchObject({ issueId: 'MAL-2023-1035', component: 'flot-axis', version: '0.0.0', severity: 'critical', cwes: ['CWE-506'] });
  });
});

// ---------------------------------------------------------------------------------------------
// Trivy forms the corpus lacks: secrets, Dockerfile misconfigurations, the newer cluster layout.

const vuln = (id: string, pkg: string, version: string, extra: Record<string, unknown> = {}) => ({
  VulnerabilityID: id, PkgName: pkg, InstalledVersion: version, Severity: 'HIGH', ...extra,
});

describe('Trivy JSON (fixtures)', () => {
  it('misconfigurations, secrets and language packages in an image report', async () => {
    const file = await fixture('trivy-all.json', {
      SchemaVersion: 2, ArtifactName: 'shop/api:2', ArtifactType: 'container_image',
      Metadata: { RepoDigests: ['shop/api@sha256:abc'] },
      Results: [
        { Target: 'shop/api:2 (alpine 3.19.1)', Class: 'os-pkgs', Type: 'alpine', Vulnerabilities: [vuln('CVE-2024-0001', 'busybox', '1.36.1-r15', { Status: 'will_not_fix' })] },
        {
          Target: 'app/Dockerfile', Class: 'config', Type: 'dockerfile',
          Misconfigurations: [
            { ID: 'DS002', AVDID: 'AVD-DS-0002', Title: "Image user should not be 'root'", Severity: 'HIGH', Status: 'FAIL', Message: 'Specify at least 1 USER command' },
            { ID: 'DS001', Title: ':latest tag used', Severity: 'MEDIUM', Status: 'PASS' },
            { AVDID: 'AVD-DS-0026', Title: 'No HEALTHCHECK defined', Severity: 'LOW', Status: 'EXCEPTION' },
          ],
        },
        { Target: 'app/.env', Class: 'secret', Secrets: [{ RuleID: 'aws-access-key-id', Title: 'AWS Access Key ID', Severity: 'CRITICAL', StartLine: 3, EndLine: 3, Match: 'AWS_ACCESS_KEY_ID=****' }] },
        { Target: 'Python', Class: 'lang-pkgs', Type: 'python-pkg', Vulnerabilities: [vuln('CVE-2023-30861', 'Flask', '1.1.2', { PkgPath: 'app/Flask-1.1.2.dist-info/METADATA', Status: 'fixed', FixedVersion: '2.2.5' })] },
        { Target: 'app/requirements.txt', Class: 'lang-pkgs', Type: 'pip', Vulnerabilities: null },
      ],
    });
    const findings = await parse('trivy-json', file);
    expect(findings.map((f) => [f.kind, f.issueId, f.component, f.version, f.location, f.severity, f.vendorStatus])).toEqual([
      ['vulnerability', 'CVE-2024-0001', 'busybox', '1.36.1-r15', '', 'high', 'will_not_fix'],
      ['misconfiguration', 'DS002', 'app/Dockerfile', '', 'app/Dockerfile', 'high', undefined],
      ['misconfiguration', 'AVD-DS-0026', 'app/Dockerfile', '', 'app/Dockerfile', 'low', 'suppressed'],
      ['secret', 'aws-access-key-id', 'app/.env', '', 'app/.env:3', 'critical', undefined],
      ['vulnerability', 'CVE-2023-30861', 'flask', '1.1.2', 'app/Flask-1.1.2.dist-info/METADATA', 'high', 'fix_available'],
    ]);
    expect(findings[0]!.asset).toEqual({ assetKey: 'image:shop/api:2', kind: 'container_image', name: 'shop/api:2', digest: 'shop/api@sha256:abc' });
    expect(JSON.stringify(findings[3])).not.toContain('AWS_ACCESS_KEY_ID');
    expect(findings[1]!.description).toBe('Specify at least 1 USER command');
  });

  it('the newer cluster layout (Resources), cluster-scoped resources included', async () => {
    const file = await fixture('trivy-k8s.json', {
      ClusterName: 'prod',
      Resources: [
        {
          Namespace: 'shop', Kind: 'Deployment', Name: 'api',
          Results: [
            { Target: 'registry/shop/api:2 (debian 12.5)', Class: 'os-pkgs', Type: 'debian', Vulnerabilities: [vuln('CVE-2024-2961', 'libc6', '2.36-9+deb12u4')] },
            { Target: 'Deployment/api', Class: 'config', Type: 'kubernetes', Misconfigurations: [{ ID: 'KSV012', Severity: 'MEDIUM', Status: 'FAIL', Title: 'Runs as root user' }] },
          ],
        },
        { Kind: 'ClusterRole', Name: 'admin', Results: [{ Target: 'ClusterRole/admin', Misconfigurations: [{ ID: 'KSV046', Severity: 'CRITICAL', Status: 'FAIL' }] }] },
      ],
    });
    const findings = await parse('trivy-json', file);
    expect(findings.map((f) => [f.asset.assetKey, f.kind, f.issueId])).toEqual([
      ['k8s:prod/shop/Deployment/api', 'vulnerability', 'CVE-2024-2961'],
      ['k8s:prod/shop/Deployment/api', 'misconfiguration', 'KSV012'],
      ['k8s:prod//ClusterRole/admin', 'misconfiguration', 'KSV046'],
    ]);
  });

  it('keeps the rules and messages callers rely on', async () => {
    const good = { SchemaVersion: 2, ArtifactName: 'shop/web:1', ArtifactType: 'container_image', Results: [
      { Target: 'shop/web:1 (alpine 3.19.1)', Type: 'alpine', Vulnerabilities: [vuln('CVE-2024-0001', 'zlib', '1.3-r0')] },
      { Target: 'Node.js', Type: 'node-pkg', Vulnerabilities: [vuln('CVE-2024-0002', 'express', '4.0.0')] },
    ] };
    const text = JSON.stringify(good, null, 1);
    const truncated = await fixture('trivy-web.json', text.slice(0, Math.floor(text.length / 2)));
    expect((await parseError('trivy-json', truncated)).message).toMatch(/^trivy-web\.json: trivy-json: not valid JSON: .*truncated/);

    const bad = structuredClone(good) as { Results: { Vulnerabilities: Record<string, unknown>[] }[] };
    bad.Results[1]!.Vulnerabilities[0]!.InstalledVersion = 42;
    expect((await parseError('trivy-json', await fixture('trivy-bad.json', bad))).message)
      .toBe('trivy-bad.json: trivy-json: Results[1].Vulnerabilities[0].InstalledVersion: expected a non-empty string');

    const unnamed = { ...good, ArtifactName: undefined };
    expect((await parseError('trivy-json', await fixture('trivy-unnamed.json', unnamed))).message).toMatch(/ArtifactName: missing before Results \(pass a target/);
    expect((await parse('trivy-json', await fixture('trivy-unnamed.json', unnamed), { target: 'shop/web:1' }))[0]!.asset.assetKey).toBe('image:shop/web:1');

    expect((await parseError('trivy-json', await fixture('trivy-v3.json', { ...good, SchemaVersion: 3 }))).message).toMatch(/SchemaVersion: unsupported version 3/);
    const late = { SchemaVersion: 2, Results: good.Results, ArtifactName: 'shop/web:1' };
    expect((await parseError('trivy-json', await fixture('trivy-late.json', late))).message).toMatch(/ArtifactName: missing before Results/);
    expect((await parseError('trivy-json', await fixture('trivy-late.json', late), { target: 'x' })).message).toMatch(/ArtifactName: appears after Results/);
    const shape = { ...good, Results: [{ Target: 'x', Vulnerabilities: { a: 1 } }] };
    expect((await parseError('trivy-json', await fixture('trivy-shape.json', shape))).message).toMatch(/Results\[0\]\.Vulnerabilities: expected an array/);
  });
});

// ---------------------------------------------------------------------------------------------
// Bad input: every JSON connector turns it into a ReportError naming file and format.

/** A minimal valid document of each format, one finding each. */
const DOCS: Record<(typeof JSON_FORMATS)[number], unknown> = {
  'trivy-json': { SchemaVersion: 2, ArtifactName: 'a:1', ArtifactType: 'container_image', Results: [{ Target: 'a:1 (alpine 3.19)', Type: 'alpine', Vulnerabilities: [vuln('CVE-2024-0001', 'zlib', '1.3-r0')] }] },
  grype: { matches: [{ vulnerability: { id: 'CVE-2024-0001', severity: 'High' }, artifact: { name: 'zlib', version: '1.3-r0', type: 'apk', locations: [{ path: '/lib/apk/db/installed' }] } }], source: { type: 'image', target: { userInput: 'a:1' } } },
  sarif: { version: '2.1.0', runs: [{ tool: { driver: { name: 'semgrep', rules: [{ id: 'xss', properties: { 'security-severity': '7.5' } }] } }, results: [{ ruleId: 'xss', message: { text: 'XSS' }, locations: [{ physicalLocation: { artifactLocation: { uri: 'web/app.js' }, region: { startLine: 10 } } }] }] }] },
  'cyclonedx-json': { bomFormat: 'CycloneDX', specVersion: '1.5', metadata: { component: { type: 'application', name: 'app' } }, components: [{ 'bom-ref': 'z', name: 'zlib', version: '1.3' }], vulnerabilities: [{ id: 'CVE-2024-0001', affects: [{ ref: 'z' }] }] },
  'dependency-track': { version: '1.2', meta: { application: 'Dependency-Track' }, project: { name: 'app', version: '1' }, findings: [{ component: { name: 'zlib', version: '1.3' }, vulnerability: { vulnId: 'CVE-2024-0001', source: 'NVD', severity: 'HIGH' }, analysis: {} }] },
  'npm-audit': { auditReportVersion: 2, vulnerabilities: { debug: { name: 'debug', severity: 'low', via: [{ source: 1, name: 'debug', dependency: 'debug', url: 'https://github.com/advisories/GHSA-gxpj-cx7g-858c', severity: 'low' }] } } },
  'osv-scanner': { results: [{ source: { path: '/src/app/package-lock.json', type: 'lockfile' }, packages: [{ package: { name: 'debug', version: '4.0.0', ecosystem: 'npm' }, vulnerabilities: [{ id: 'GHSA-gxpj-cx7g-858c', aliases: ['CVE-2017-20165'] }] }] }] },
};

describe('bad input', () => {
  it('the minimal documents parse, each by its own connector only', async () => {
    for (const format of JSON_FORMATS) {
      const file = await fixture(`doc-${format}.json`, DOCS[format]);
      expect((await parse(format, file, { target: 'app' })).length, format).toBe(1);
      const head = await readHead(file);
      expect(connectors.filter((c) => c.detect(head)).map((c) => c.format), format).toEqual([format]);
    }
  });

  it('a file of another format, given with an explicit format, is a ReportError', async () => {
    for (const format of JSON_FORMATS) {
      for (const other of JSON_FORMATS) {
        if (other === format) continue;
        const file = await fixture(`doc-${other}.json`, DOCS[other]);
        const err = await parseError(format, file, { target: 'app' });
        expect(err.message, `${other} as ${format}`).toMatch(new RegExp(`^doc-${other}\\.json: ${format}: `));
      }
      const legacyList = await fixture('list.json', [{ Target: 'x', Vulnerabilities: [] }]);
      if (format !== 'trivy-json') await parseError(format, legacyList, { target: 'app' });
    }
  });

  it('truncated JSON names file, format and where it broke', async () => {
    for (const format of JSON_FORMATS) {
      const text = JSON.stringify(DOCS[format], null, 2);
      const file = await fixture(`cut-${format}.json`, text.slice(0, text.length - 7));
      const err = await parseError(format, file, { target: 'app' });
      expect(err.message).toMatch(new RegExp(`^cut-${format}\\.json: ${format}: not valid JSON: the report ends early at byte \\d+ \\(truncated\\?\\)`));
    }
    const garbage = await fixture('garbage.json', '{"matches": [ {"vulnerability": } ], "source": {}}');
    expect((await parseError('grype', garbage)).message).toMatch(/^garbage\.json: grype: not valid JSON: .* within bytes 0-\d+/);
  });

  it('deeply nested JSON is refused without exhausting the stack', async () => {
    const depth = 100_000;
    const arrays = await fixture('deep.json', '['.repeat(depth) + ']'.repeat(depth));
    const objects = await fixture('deep-object.json', `{"Results":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`);
    for (const format of JSON_FORMATS) {
      for (const file of [arrays, objects]) {
        const err = await parseError(format, file, { target: 'app' });
        expect(err.message).toMatch(/JSON nested deeper than 256 levels.*refusing to parse/);
      }
    }
  });

  it('empty reports: 0 bytes is an error for every format', async () => {
    const empty = await fixture('empty.json', '');
    const blank = await fixture('blank.json', ' \n\t\n');
    for (const format of JSON_FORMATS) {
      expect((await parseError(format, empty)).message).toBe(`empty.json: ${format}: the report is empty`);
      expect((await parseError(format, blank)).message).toBe(`blank.json: ${format}: the report is empty`);
    }
  });

  it('refuses reports that record a failed run rather than a clean one', async () => {
    const noaudit = await fixture('noaudit.json', { error: { code: 'ENOAUDIT', summary: 'Your configured registry may not support audit requests', detail: '' } });
    expect((await connectorFor(noaudit, 'noaudit.json')).format).toBe('npm-audit');
    expect((await parseError('npm-audit', noaudit, { target: 'app' })).message).toMatch(/npm audit report contains errors: ENOAUDIT/);
    const nullRuns = await fixture('null-runs.sarif', { version: '2.1.0', runs: null });
    expect((await parseError('sarif', nullRuns)).message).toMatch(/runs: null: the tool did not run/);
    const noResults = await fixture('no-results.sarif', { version: '2.1.0', runs: [{ tool: { driver: { name: 'x' } } }] });
    expect((await parseError('sarif', noResults)).message).toMatch(/runs\[0\]\.results: missing or null/);
    // Clean runs of each tool are zero findings, not errors.
    expect(await parse('grype', await fixture('grype-clean.json', { matches: [], source: { type: 'image', target: { userInput: 'a:1' } } }))).toEqual([]);
    expect(await parse('trivy-json', await fixture('trivy-clean.json', { SchemaVersion: 2, ArtifactName: 'a:1', Results: [] }))).toEqual([]);
    expect(await parse('osv-scanner', await fixture('osv-clean.json', { results: [], experimental_config: {} }))).toEqual([]);
    expect(await parse('dependency-track', await fixture('dt-clean.json', { project: { name: 'app' } }))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Flat memory: a ~200 MB Trivy report parses end to end without holding it.

async function writeBigTrivy(file: string, targetBytes: number): Promise<number> {
  const out = createWriteStream(file);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await write('{"SchemaVersion":2,"ArtifactName":"big/app:1","ArtifactType":"container_image","Metadata":{"RepoTags":["big/app:1"]},"Results":[');
  const description = 'A long description of the flaw, as scanners write them. '.repeat(12);
  let written = 0;
  let count = 0;
  for (let r = 0; written < targetBytes; r++) {
    let batch = `${r ? ',' : ''}{"Target":"big/app:1 (debian 12.5)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[`;
    for (let i = 0; i < 2000; i++, count++) {
      batch += `${i ? ',' : ''}{"VulnerabilityID":"CVE-2024-${count}","PkgName":"pkg-${count % 997}","InstalledVersion":"1.${r}.${i}",`
        + `"FixedVersion":"2.0","Status":"fixed","Severity":"HIGH","Title":"Flaw ${count}","Description":"${description}",`
        + `"CweIDs":["CWE-787"],"CVSS":{"nvd":{"V3Vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","V3Score":9.8}},`
        + `"References":["https://example.com/${count}/a","https://example.com/${count}/b"]}`;
    }
    batch += ']}';
    written += batch.length;
    await write(batch);
  }
  await write(']}');
  out.end();
  await once(out, 'finish');
  return count;
}

describe('streaming', () => {
  it('parses a ~200 MB Trivy report with flat memory', { timeout: 90_000 }, async () => {
    const file = join(dir, 'big-trivy.json');
    const expected = await writeBigTrivy(file, 200 * 1024 * 1024);
    expect((await stat(file)).size).toBeGreaterThan(190 * 1024 * 1024);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const started = Date.now();
    let count = 0;
    let last: NormalizedFinding | undefined;
    for await (const finding of connector('trivy-json').parse(file, {})) {
      if (++count % 2000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
      last = finding;
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const seconds = (Date.now() - started) / 1000;
    expect(count).toBe(expected);
    expect(last).toMatchObject({ asset: { assetKey: 'image:big/app:1' }, issueId: `CVE-2024-${expected - 1}`, cvssScore: 9.8, vendorStatus: 'fix_available' });
    expect((peak - baseline) / 1024 / 1024, `rss growth in MB (${count} findings in ${seconds.toFixed(1)} s)`).toBeLessThan(150);
    expect(seconds).toBeLessThan(30);
    await rm(file);
  });
});

describe('json-stream: keeping only some members of a selected object', () => {
  // The trivy-json connector builds only the members it reads. The projection must equal what
  // JSON.parse gives for those members, for values that straddle the reader's 256 kB chunks too,
  // and a malformed value must fail exactly as the whole-value path does.
  const item = (i: number) => ({
    VulnerabilityID: `CVE-2024-${1000 + i}`,
    PkgName: i % 7 === 0 ? 'caf\u00e9-\u20ac\u{1F600}' : `pkg-${i}`,
    Description: 'x'.repeat((i * 97) % 5000) + '"quoted" \\ back\nline \u2028 end',
    CVSS: { nvd: { V3Score: 9.8 - (i % 50) / 10, V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' } },
    Severity: i % 3 === 0 ? 'HIGH' : 'LOW',
    FixedVersion: i % 4 === 0 ? null : `1.${i}.0`,
    Weird: { n: 0, big: 12345678901234567890, e: 1.5e-7 },
    Score: i / 3,
    Dup: 'never', // written twice in the text below
  });
  const keep = ['VulnerabilityID', 'PkgName', 'CVSS', 'Severity', 'FixedVersion', 'Weird', 'Score', 'Dup'];

  it('gives the members JSON.parse gives, in values that straddle chunks, with duplicate keys resolved the same way', async () => {
    const { streamJson } = await import('../../discovery/streams/json.js');
    const items = Array.from({ length: 600 }, (_, i) => item(i));
    // A duplicate key written twice in the text: JSON.parse keeps the last one.
    const text = JSON.stringify({ Results: [{ Vulnerabilities: items }] }, null, 1).replace(/"Dup": "never"/g, '"Dup": "first", "Dup": "last"')
      .replace(/"n": 0/g, '"__proto__": { "polluted": true }, "n": -0'); // JSON.stringify writes neither
    const file = join(dir, 'keep.json');
    await writeFile(file, text);
    expect(text.length).toBeGreaterThan(4 * 256 * 1024); // many values cross a chunk boundary
    const expected = (JSON.parse(text) as { Results: [{ Vulnerabilities: Record<string, unknown>[] }] }).Results[0].Vulnerabilities.map((v) =>
      Object.fromEntries(keep.filter((k) => Object.hasOwn(v, k)).map((k) => [k, v[k]])),
    );
    const got: unknown[] = [];
    for await (const event of streamJson(file, { name: 'keep.json', format: 'test', select: ['Results.*.Vulnerabilities.*'], keep: { 'Results.*.Vulnerabilities.*': keep } })) {
      if (event.kind === 'value') got.push(event.value);
    }
    expect(got).toHaveLength(600);
    expect(got).toEqual(expected);
    expect((got[0] as { Dup: string }).Dup).toBe('last');
    expect(Object.is((got[0] as { Weird: { n: number } }).Weird.n, -0)).toBe(true);
    expect(Object.keys(got[1] as object)).not.toContain('Description');
    // "__proto__" is an own member, as JSON.parse makes it, never the prototype.
    const weird = (got[0] as { Weird: Record<string, unknown> }).Weird;
    expect(Object.hasOwn(weird, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(weird)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports a malformed kept value exactly as the whole-value path does', async () => {
    const { streamJson } = await import('../../discovery/streams/json.js');
    const text = JSON.stringify({ Results: [{ Vulnerabilities: [item(1), item(2)] }] }).replace('"Severity":"LOW"', '"Severity":LOW');
    const file = join(dir, 'keep-bad.json');
    await writeFile(file, text);
    const failure = async (withKeep: boolean) => {
      try {
        for await (const _ of streamJson(file, { name: 'keep-bad.json', format: 'test', select: ['Results.*.Vulnerabilities.*'], ...(withKeep ? { keep: { 'Results.*.Vulnerabilities.*': keep } } : {}) })) {
          // drain
        }
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    const message = await failure(true);
    expect(message).toMatch(/^keep-bad\.json: test: /);
    expect(message).toBe(await failure(false));
  });
});
