import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { fixedVersionFromText } from '../../discovery/connectors/shared/fix-text.js';
import { nessusFacts } from '../../discovery/connectors/nessus/findings.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import type { Database } from '../../db/client.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// The package facts mobilization groups findings by (ecosystem, OS or application package,
// manifest, source package) and fixed versions recovered from scanner text, read from real reports.

const tmp = mkdtempSync(join(tmpdir(), 'package-facts-'));
const dd = (...parts: string[]) => corpusFile('scanners', 'defectdojo', ...parts);
const more = (...parts: string[]) => corpusFile('scanners', 'more', ...parts);

async function parse(format: string, file: string, target?: string): Promise<NormalizedFinding[]> {
  const connector = await connectorFor(file, file, format);
  const out: NormalizedFinding[] = [];
  for await (const f of connector.parse(file, target === undefined ? {} : { target })) out.push(f);
  return out;
}

/** How many findings carry each value of one fact ('-' for none). */
function tally(findings: NormalizedFinding[], fact: (f: NormalizedFinding) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of findings) {
    const key = fact(f) ?? '-';
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function one(findings: NormalizedFinding[], match: (f: NormalizedFinding) => boolean): NormalizedFinding {
  const hits = findings.filter(match);
  expect(hits.length, 'matching findings').toBeGreaterThan(0);
  return hits[0]!;
}

describe('fixed versions from text', () => {
  it.each([
    ['Package: cryptography\nInstalled Version: 38.0.4\nVulnerability CVE-2023-0286\nSeverity: HIGH\nFixed Version: 39.0.1\nLink: x', '39.0.1'],
    ['Upgrade to PHP version 5.3.29 or later.', '5.3.29'],
    ['Fixed version : 7.4.33', '7.4.33'],
    ['Installed version : 7.4.3\n  Fixed version     : 7.4.33\n', '7.4.33'],
    ['upgrade to version 2.4.58 or higher', '2.4.58'],
    ['Fixed Version: 2.3.2, 2.2.5', '2.3.2, 2.2.5'],
    ['Upgrade to OpenSSL 1.0.2h or later.', '1.0.2h'],
    ['Update to Version 1.0.1g or latest fixed to resolve this issue.', '1.0.1g'],
    ['Upgrade to NTP Version 4.2.7p26 or latest version to fix this issue.', '4.2.7p26'],
    ['Upgrade com.fasterxml.jackson.core:jackson-databind to version 2.6.7.5, 2.8.11.1, 2.9.5 or higher.', '2.6.7.5, 2.8.11.1, 2.9.5'],
    ['Upgrade to PHP version 5.3.12 / 5.4.2 or later.', '5.3.12, 5.4.2'],
    ['Version 2.x.x: Update to version 2.6.9 or later.\nVersion 3.x.x: Update to version 3.1.0 or later.', '2.6.9, 3.1.0'],
    ['Upgrade to PHP version 5.2.8 or later. Note that version 5.2.7 has been removed from distribution.', '5.2.8'],
    ['<P>Upgrade to <B>Apache</B> version 2.4.58 or later.<BR>', '2.4.58'],
    ['Upgrade the affected package to version 2.36-9+deb12u8.', '2.36-9+deb12u8'],
  ])('%j -> %s', (text, expected) => {
    expect(fixedVersionFromText(text)).toBe(expected);
  });

  it.each([
    ['an empty labelled value', 'Package: linux-libc-dev\nFixed Version: \nLink: [CVE-2024-26597](https://avd.aquasec.com/nvd/cve-2024-26597)'],
    ['no version named', 'Upgrade to the latest version.'],
    ['a supported version, unnamed', 'Upgrade to a version of PHP that is currently supported.'],
    ['a KB number and a CVE id', 'Apply Microsoft KB4012212 to fix CVE-2017-0144.'],
    ['a date', 'Update to the release of 2016/05/03, see the advisory of 2016.05.03 for details.'],
    ['a year after "version"', 'Upgrade to version 2021 to fix CVE-2021-1234.'],
    ['a protocol version', 'Update to add RDS support for TLS 1.1'],
    ['a protocol name', 'Configure the server to upgrade to TLSv1.2.'],
    ['a version in the next sentence', 'Update to fix this. Note that version 5.2.7 has been removed.'],
    ['an installed version only', 'Installed version : 5.1.6'],
    ['a version that is not the fix', 'Versions 1.3.22 and earlier are affected.'],
    ['nothing', undefined],
  ])('nothing from %s', (_, text) => {
    expect(fixedVersionFromText(text)).toBeUndefined();
  });
});

describe('Nessus facts from family and CPE', () => {
  it('reads distribution local checks as OS packages, CPEs as application or OS', () => {
    expect(nessusFacts('Debian Local Security Checks', undefined)).toEqual({ ecosystem: 'deb', packageClass: 'os' });
    expect(nessusFacts('Amazon Linux Local Security Checks', 'cpe:/o:amazon:linux')).toEqual({ ecosystem: 'rpm', packageClass: 'os' });
    expect(nessusFacts('CGI abuses', 'cpe:/a:php:php')).toEqual({ packageClass: 'app', product: 'php' });
    expect(nessusFacts('Web Servers', 'cpe:2.3:a:apache:http_server:2.4.57:*:*:*:*:*:*:*')).toEqual({ packageClass: 'app', product: 'http_server' });
    expect(nessusFacts('Windows', 'cpe:/o:microsoft:windows')).toEqual({ packageClass: 'os' });
    expect(nessusFacts('General', '')).toEqual({});
  });
});

describe('own fixtures', () => {
  it('Trivy: SrcName is the source package, a lockfile Target the manifest', async () => {
    const file = join(tmp, 'trivy-src.json');
    writeFileSync(file, JSON.stringify({
      SchemaVersion: 2,
      ArtifactName: 'shop/api:2',
      ArtifactType: 'container_image',
      Results: [
        {
          Target: 'shop/api:2 (debian 12.7)', Class: 'os-pkgs', Type: 'debian',
          Vulnerabilities: [
            { VulnerabilityID: 'CVE-2024-2961', PkgName: 'libc6', SrcName: 'glibc', InstalledVersion: '2.36-9+deb12u4', FixedVersion: '2.36-9+deb12u7', Severity: 'HIGH' },
            { VulnerabilityID: 'CVE-2024-2961', PkgName: 'libc-bin', SrcName: 'glibc', InstalledVersion: '2.36-9+deb12u4', Severity: 'HIGH' },
          ],
        },
        {
          Target: 'srv/app/package-lock.json', Class: 'lang-pkgs', Type: 'npm',
          Vulnerabilities: [{ VulnerabilityID: 'CVE-2024-4068', PkgName: 'braces', InstalledVersion: '3.0.2', FixedVersion: '3.0.3', Severity: 'HIGH' }],
        },
        {
          Target: 'usr/local/bin/api', Class: 'lang-pkgs', Type: 'gobinary',
          Vulnerabilities: [{ VulnerabilityID: 'CVE-2024-24790', PkgName: 'stdlib', InstalledVersion: '1.22.1', FixedVersion: '1.21.11, 1.22.4', Severity: 'CRITICAL' }],
        },
        {
          // Jars found in an image are one Result named after the language: each jar is its own manifest.
          Target: 'Java', Class: 'lang-pkgs', Type: 'jar',
          Vulnerabilities: [{ VulnerabilityID: 'CVE-2021-44228', PkgName: 'org.apache.logging.log4j:log4j-core', PkgPath: 'opt/app/lib/log4j-core-2.14.1.jar', InstalledVersion: '2.14.1', FixedVersion: '2.15.0', Severity: 'CRITICAL' }],
        },
      ],
    }));
    const findings = await parse('trivy-json', file);
    expect(findings.map((f) => [f.component, f.ecosystem, f.packageClass, f.manifest, f.sourcePackage, f.fixSource])).toEqual([
      ['libc6', 'deb', 'os', undefined, 'glibc', 'scanner'],
      ['libc-bin', 'deb', 'os', undefined, 'glibc', undefined],
      ['braces', 'npm', 'app', 'srv/app/package-lock.json', undefined, 'scanner'],
      ['stdlib', 'golang', 'app', 'usr/local/bin/api', undefined, 'scanner'],
      ['org.apache.logging.log4j:log4j-core', 'maven', 'app', 'opt/app/lib/log4j-core-2.14.1.jar', undefined, 'scanner'],
    ]);
  });

  it('SARIF (Trivy, fs scan): the lockfile a result points at is the manifest', async () => {
    const file = join(tmp, 'trivy-fs.sarif');
    const rule = (id: string, name: string) => ({ id, name, shortDescription: { text: id } });
    const result = (ruleIndex: number, ruleId: string, uri: string, text: string) => ({
      ruleId, ruleIndex, level: 'error', message: { text },
      locations: [{ physicalLocation: { artifactLocation: { uri, uriBaseId: 'ROOTPATH' }, region: { startLine: 1 } } }],
    });
    writeFileSync(file, JSON.stringify({
      version: '2.1.0',
      runs: [{
        tool: { driver: { name: 'Trivy', rules: [rule('CVE-2024-4068', 'LanguageSpecificPackageVulnerability'), rule('CVE-2024-2961', 'OsPackageVulnerability')] } },
        results: [
          result(0, 'CVE-2024-4068', 'web/package-lock.json', 'Package: braces\nInstalled Version: 3.0.2\nVulnerability CVE-2024-4068\nSeverity: HIGH\nFixed Version: 3.0.3\nLink: x'),
          result(1, 'CVE-2024-2961', 'shop/api', 'Package: libc6\nInstalled Version: 2.36-9\nVulnerability CVE-2024-2961\nSeverity: HIGH\nFixed Version: 2.36-9+deb12u7\nLink: x'),
        ],
        versionControlProvenance: [{ repositoryUri: 'https://git.example.com/shop' }],
      }],
    }));
    const findings = await parse('sarif', file);
    expect(findings.map((f) => [f.component, f.packageClass, f.manifest, f.fixedVersion, f.fixSource])).toEqual([
      ['web/package-lock.json', 'app', 'web/package-lock.json', '3.0.3', 'text'],
      ['shop/api', 'os', undefined, '2.36-9+deb12u7', 'text'],
    ]);
  });
});

describe.skipIf(!hasCorpus)('package facts from real reports', () => {
  it.skipIf(!hasCorpus)('Trivy: OS and Python results of one image; Alpine and a jar; the legacy list', async () => {
    const image = await parse('trivy-json', more('trivy-grype-same-image', 'trivy-results.json'));
    expect(tally(image, (f) => `${f.ecosystem}/${f.packageClass}`)).toEqual({ 'deb/os': 49, 'pypi/app': 5 });
    // Installed Python packages come from no manifest; their own path is the location.
    expect(image.filter((f) => f.manifest !== undefined)).toEqual([]);
    expect(one(image, (f) => f.component === 'flask')).toMatchObject({ fixedVersion: '2.3.2, 2.2.5', fixSource: 'scanner', packageClass: 'app' });
    expect(image.every((f) => (f.fixedVersion === undefined) === (f.fixSource === undefined))).toBe(true);

    const alpine = await parse('trivy-json', dd('trivy', 'scheme_2_many_vulns.json'));
    expect(tally(alpine, (f) => `${f.ecosystem}/${f.packageClass}/${f.manifest ?? ''}`)).toEqual({
      'apk/os/': 3,
      'maven/app/app/libs/commons-compress-1.14.jar': 2,
    });
    const legacy = await parse('trivy-json', dd('trivy', 'legacy_many_vulns.json'));
    expect(tally(legacy, (f) => `${f.ecosystem}/${f.packageClass}`)).toEqual({ 'deb/os': 93 });
    // Misconfigurations are no packages.
    const cluster = await parse('trivy-json', dd('trivy', 'kubernetes.json'));
    expect(tally(cluster.filter((f) => f.kind === 'misconfiguration'), (f) => f.packageClass)).toEqual({ '-': 10 });
  });

  it.skipIf(!hasCorpus)('Grype: artifact types, upstream source packages', async () => {
    const image = await parse('grype', more('trivy-grype-same-image', 'grype-results.json'));
    expect(tally(image, (f) => `${f.ecosystem}/${f.packageClass ?? '-'}`)).toEqual({ 'deb/os': 140, 'pypi/app': 5, 'generic/-': 15 });
    expect(one(image, (f) => f.component === 'libc6')).toMatchObject({ sourcePackage: 'glibc', packageClass: 'os' });
    expect(one(image, (f) => f.component === 'libc-bin')).toMatchObject({ sourcePackage: 'glibc' });
    expect(one(image, (f) => f.component === 'bsdutils')).toMatchObject({ sourcePackage: 'util-linux' });
    expect(new Set(image.filter((f) => f.sourcePackage === 'glibc').map((f) => f.component))).toEqual(new Set(['libc6', 'libc-bin']));
    expect(image.filter((f) => f.manifest !== undefined)).toEqual([]);

    // Trivy and Grype classify the same image's packages alike.
    const trivy = await parse('trivy-json', more('trivy-grype-same-image', 'trivy-results.json'));
    const classOf = new Map(image.map((f) => [`${f.issueId}/${f.component}/${f.version}`, `${f.ecosystem}/${f.packageClass}`]));
    for (const f of trivy) expect(classOf.get(`${f.issueId}/${f.component}/${f.version}`), f.component).toBe(`${f.ecosystem}/${f.packageClass}`);
  });

  it.skipIf(!hasCorpus)('SARIF (Trivy): fixed versions from the message text, OS or language package from the rule', async () => {
    const findings = await parse('sarif', more('sarif', 'trivy-0.49.1-container.sarif'));
    expect(tally(findings, (f) => f.packageClass)).toEqual({ os: 1, app: 20 });
    expect(one(findings, (f) => f.issueId === 'CVE-2023-0286')).toMatchObject({ fixedVersion: '39.0.1', fixSource: 'text' });
    expect(one(findings, (f) => f.issueId === 'CVE-2018-1000805').fixedVersion).toBe('2.4.2, 2.3.3, 2.2.4, 2.1.6, 2.0.9');
    // "Fixed Version: " with nothing after it: no fix.
    const kernel = one(findings, (f) => f.issueId === 'CVE-2024-26597');
    expect(kernel).toMatchObject({ packageClass: 'os' });
    expect(kernel.fixedVersion).toBeUndefined();
    expect(kernel.fixSource).toBeUndefined();
    expect(tally(findings, (f) => f.fixSource)).toEqual({ text: 16, '-': 5 });
    // Another tool's SARIF says nothing about packages.
    const check = await parse('sarif', dd('sarif', 'dependency_check.sarif'));
    expect(check.filter((f) => f.packageClass || f.fixedVersion)).toEqual([]);
  });

  it.skipIf(!hasCorpus)('CycloneDX: ecosystem from the purl, fixed version from the recommendation', async () => {
    const log4j = await parse('cyclonedx-json', dd('cyclonedx', 'log4j.json'));
    expect(tally(log4j, (f) => `${f.ecosystem}/${f.packageClass}`)).toEqual({ 'maven/app': 8 });
    const [vex] = await parse('cyclonedx-json', dd('cyclonedx', 'valid-vulnerability-1.4.json'), 'payments');
    expect(vex).toMatchObject({
      component: 'com.fasterxml.jackson.core:jackson-databind',
      ecosystem: 'maven',
      packageClass: 'app',
      fixedVersion: '2.6.7.5, 2.8.11.1, 2.9.5',
      fixSource: 'text',
    });
  });

  it.skipIf(!hasCorpus)('Dependency-Track: purl ecosystem, recommendation text', async () => {
    const findings = await parse('dependency-track', dd('dependency_track', 'many_findings.json'));
    expect(one(findings, (f) => f.component === 'uglify-js')).toMatchObject({ ecosystem: 'npm', packageClass: 'app', fixedVersion: '2.6.0', fixSource: 'text' });
    expect(one(findings, (f) => f.component === 'actionview')).toMatchObject({ ecosystem: 'gem', packageClass: 'app' });
    // "No direct patch is available": no version.
    expect(one(findings, (f) => f.component === 'timespan').fixedVersion).toBeUndefined();
  });

  it.skipIf(!hasCorpus)('OSV-Scanner: ecosystem and lockfile per source', async () => {
    const many = await parse('osv-scanner', dd('osv_scanner', 'many_findings.json'));
    expect(tally(many, (f) => `${f.ecosystem ?? '-'}/${f.manifest ?? '-'}`)).toEqual({
      'composer/composer.lock': 6,
      'pypi/requirements.txt': 26,
      'pypi/poetry.lock': 4,
      '-/-': 1, // the git source: C code vendored in a repository, no package manager
    });
    expect(many.filter((f) => f.fixedVersion).every((f) => f.fixSource === 'advisory')).toBe(true);
    const [yarn] = await parse('osv-scanner', dd('osv_scanner', 'some_findings.json'));
    expect(yarn).toMatchObject({ asset: { assetKey: 'fs:/tmp/components' }, ecosystem: 'npm', packageClass: 'app', manifest: 'yarn.lock' });
    // With a target the asset is no longer the lockfile's folder: the path as reported.
    const [named] = await parse('osv-scanner', dd('osv_scanner', 'some_findings.json'), 'web');
    expect(named!.manifest).toBe('/tmp/components/yarn.lock');
  });

  it.skipIf(!hasCorpus)('npm audit: npm packages of package-lock.json; v1 recommendations as text', async () => {
    const v1 = await parse('npm-audit', dd('npm_audit', 'many_vuln.json'), 'shop/web');
    expect(tally(v1, (f) => `${f.ecosystem}/${f.packageClass}/${f.manifest}`)).toEqual({ 'npm/app/package-lock.json': 5 });
    expect(one(v1, (f) => f.component === 'fresh')).toMatchObject({ fixedVersion: '0.5.2', fixSource: 'scanner' });
    expect(one(v1, (f) => f.component === 'mime')).toMatchObject({ fixedVersion: '2.0.3', fixSource: 'text' });
    const v2 = await parse('npm-audit', dd('npm_audit_7_plus', 'many_vulns.json'), 'shop/web');
    expect(tally(v2, (f) => `${f.ecosystem}/${f.packageClass}/${f.manifest}`)).toEqual({ 'npm/app/package-lock.json': 3 });
  });

  it.skipIf(!hasCorpus)('Nessus: the product of PHP plugins, fixed versions from output and solution', async () => {
    const findings = await parse('nessus', dd('tenable', 'nessus', 'nessus_with_cvssv3.nessus'));
    const php = findings.filter((f) => f.sourcePackage === 'php');
    expect(php).toHaveLength(143);
    expect(php.every((f) => f.packageClass === 'app')).toBe(true);
    // The component stays the plugin (it is part of the finding's identity); the product is the source package.
    expect(one(findings, (f) => f.issueId === 'CVE-2006-1015')).toMatchObject({
      component: 'PHP 5.x < 5.2 Multiple Vulnerabilities', version: '5.1.6', fixedVersion: '5.2', fixSource: 'text', sourcePackage: 'php',
    });
    expect(one(findings, (f) => f.issueId === 'nessus:152853')).toMatchObject({ version: '5.1.6', fixedVersion: '7.3.28', sourcePackage: 'php' });
    // "Upgrade to a version of PHP that is currently supported" names none.
    const unsupported = findings.filter((f) => f.issueId === 'nessus:58987');
    expect(new Set(unsupported.map((f) => `${f.version} -> ${f.fixedVersion ?? 'none'}`))).toEqual(new Set(['5.6.40-38+ubuntu20.04.1+deb.sury.org+1 -> none', '5.1.6 -> none']));
    expect(one(findings, (f) => f.component === 'nginx HTTP Server Detection')).toMatchObject({ sourcePackage: 'nginx', packageClass: 'app' });

    const windows = await parse('nessus', dd('tenable', 'nessus', 'nessus_v_unknown.xml'));
    expect(tally(windows, (f) => f.packageClass)).toEqual({ os: 25, '-': 271 });
  });

  it.skipIf(!hasCorpus)('Tenable CSV: Amazon Linux local checks are OS packages with their "Should be" versions', async () => {
    const findings = await parse('tenable-csv', dd('tenable', 'tenable_many_vuln.csv'));
    expect(tally(findings, (f) => `${f.ecosystem ?? '-'}/${f.packageClass ?? '-'}/${f.fixSource ?? '-'}`)).toEqual({ 'rpm/os/text': 19, '-/-/text': 2 });
    expect(one(findings, (f) => f.component === 'kernel-tools')).toMatchObject({
      version: '4.14.314-237.533.amzn2', fixedVersion: '4.14.314-238.539.amzn2', ecosystem: 'rpm', packageClass: 'os',
    });
    expect(findings.filter((f) => f.sourcePackage)).toEqual([]);
    // Tenable.sc's CPE column names the product as the XML's cpe element does.
    const sc = await parse('tenable-csv', dd('tenable', 'nessus', 'nessus_many_vuln.csv'));
    expect(tally(sc, (f) => f.sourcePackage)).toEqual({ md5: 1, '-': 4 });
  });

  it.skipIf(!hasCorpus)('every corpus report: a fix source exactly when a fixed version, no manifest on OS packages', async () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.(json|xml|csv|sarif|nessus)$/.test(name)) files.push(path);
      }
    };
    walk(corpusFile('scanners'));
    let checked = 0;
    for (const file of files) {
      let findings: NormalizedFinding[];
      try {
        findings = await parse((await connectorFor(file, file)).format, file, 'corpus-target');
      } catch {
        continue; // the broken and empty reports, tested where their errors are
      }
      checked += findings.length;
      expect(findings.filter((f) => !!f.fixedVersion !== !!f.fixSource), file).toEqual([]);
      expect(findings.filter((f) => f.packageClass === 'os' && f.manifest !== undefined), file).toEqual([]);
    }
    expect(checked).toBeGreaterThan(1500);
  });

  it.skipIf(!hasCorpus)('Qualys: fixed versions from the solution, OS or application from the category', async () => {
    const xml = await parse('qualys-xml', dd('qualys', 'Qualys_Sample_Report.xml'));
    expect(tally(xml, (f) => f.packageClass)).toEqual({ os: 23, app: 66, '-': 264 });
    expect(one(xml, (f) => f.issueId === 'CVE-2013-5211')).toMatchObject({ fixedVersion: '4.2.7p26', fixSource: 'text' });
    expect(tally(xml, (f) => f.fixSource)).toEqual({ text: 5, '-': 348 });
    const csv = await parse('qualys-csv', dd('qualys', 'Qualys_Sample_Report.csv'));
    expect(tally(csv, (f) => f.packageClass)).toEqual({ os: 23, '-': 5 });
    // The Windows update QID (23 CVEs) is an OS patch run.
    expect(one(csv, (f) => f.title === 'Microsoft Windows Security Update for May 2021')).toMatchObject({ packageClass: 'os' });
  });
});

describe('ingest stores the package facts', () => {
  let database: Database;
  beforeAll(async () => {
    database = await migratedTestDatabase();
  });
  afterAll(closeTestDatabases);

  const asset = { assetKey: 'image:facts/api:1', kind: 'container_image' as const, name: 'facts/api:1' };
  const base = { asset, kind: 'vulnerability' as const, severity: 'high' as const, location: '' };
  async function* stream(findings: NormalizedFinding[]) {
    yield* findings;
  }
  const ingest = (findings: NormalizedFinding[], complete = false) =>
    ingestFindings(database.sql, { id: randomUUID(), source: 'facts-test', complete }, stream(findings));
  const stored = () => database.sql<{ component: string; fixed_version: string | null; ecosystem: string | null; package_class: string | null; manifest: string; source_package: string | null; fix_source: string | null }[]>`
    select f.component, f.fixed_version, f.ecosystem, f.package_class, f.manifest, f.source_package, f.fix_source
    from findings f join assets a on a.id = f.asset_id where a.asset_key = ${asset.assetKey} order by f.component`;

  it('inserts them, refreshes them on re-import, keeps them when a report omits them', async () => {
    await ingest([
      { ...base, issueId: 'CVE-2024-2961', component: 'libc6', version: '2.36-9', fixedVersion: '2.36-9+deb12u7', fixSource: 'scanner', ecosystem: 'deb', packageClass: 'os', sourcePackage: 'glibc' },
      { ...base, issueId: 'CVE-2024-4068', component: 'braces', version: '3.0.2', ecosystem: 'npm', packageClass: 'app', manifest: 'app/package-lock.json' },
      { ...base, issueId: 'CVE-2023-0286', component: 'library/test_tag', version: '' },
    ]);
    expect(await stored()).toEqual([
      { component: 'braces', fixed_version: null, ecosystem: 'npm', package_class: 'app', manifest: 'app/package-lock.json', source_package: null, fix_source: null },
      { component: 'libc6', fixed_version: '2.36-9+deb12u7', ecosystem: 'deb', package_class: 'os', manifest: '', source_package: 'glibc', fix_source: 'scanner' },
      { component: 'library/test_tag', fixed_version: null, ecosystem: null, package_class: null, manifest: '', source_package: null, fix_source: null },
    ]);

    // The latest report's facts win; the fix source goes with the fixed version it describes.
    await ingest([
      { ...base, issueId: 'CVE-2024-2961', component: 'libc6', version: '2.36-9', fixedVersion: '2.36-9+deb12u8', fixSource: 'text', ecosystem: 'deb', packageClass: 'os', sourcePackage: 'glibc-2.36' },
      { ...base, issueId: 'CVE-2024-4068', component: 'braces', version: '3.0.2', fixedVersion: '3.0.3', fixSource: 'scanner', ecosystem: 'npm', packageClass: 'app', manifest: 'srv/app/package-lock.json' },
      { ...base, issueId: 'CVE-2023-0286', component: 'library/test_tag', version: '', fixedVersion: '39.0.1', fixSource: 'text', packageClass: 'app' },
    ], true);
    expect(await stored()).toEqual([
      { component: 'braces', fixed_version: '3.0.3', ecosystem: 'npm', package_class: 'app', manifest: 'srv/app/package-lock.json', source_package: null, fix_source: 'scanner' },
      { component: 'libc6', fixed_version: '2.36-9+deb12u8', ecosystem: 'deb', package_class: 'os', manifest: '', source_package: 'glibc-2.36', fix_source: 'text' },
      { component: 'library/test_tag', fixed_version: '39.0.1', ecosystem: null, package_class: 'app', manifest: '', source_package: null, fix_source: 'text' },
    ]);

    // A report that fails half-way stores nothing, facts included.
    async function* broken(): AsyncGenerator<NormalizedFinding> {
      yield { ...base, issueId: 'CVE-2024-2961', component: 'libc6', version: '2.36-9', fixedVersion: '9.9', fixSource: 'text', sourcePackage: 'other' };
      throw new Error('report ends early');
    }
    await expect(ingestFindings(database.sql, { id: randomUUID(), source: 'facts-test', complete: true }, broken())).rejects.toThrow('report ends early');
    expect((await stored()).find((r) => r.component === 'libc6')).toMatchObject({ fixed_version: '2.36-9+deb12u8', fix_source: 'text', source_package: 'glibc-2.36' });

    // A report that states none of them (another scanner's, or an older format) keeps what is stored.
    const counts = await ingest([
      { ...base, issueId: 'CVE-2024-2961', component: 'libc6', version: '2.36-9' },
      { ...base, issueId: 'CVE-2024-4068', component: 'braces', version: '3.0.2' },
      { ...base, issueId: 'CVE-2023-0286', component: 'library/test_tag', version: '' },
    ], true);
    expect(counts).toMatchObject({ findings: 3, newFindings: 0, closedFindings: 0 });
    expect((await stored()).map((r) => [r.component, r.fixed_version, r.fix_source, r.ecosystem, r.package_class, r.manifest, r.source_package])).toEqual([
      ['braces', '3.0.3', 'scanner', 'npm', 'app', 'srv/app/package-lock.json', null],
      ['libc6', '2.36-9+deb12u8', 'text', 'deb', 'os', '', 'glibc-2.36'],
      ['library/test_tag', '39.0.1', 'text', null, 'app', '', null],
    ]);
  });

  it('stores them through COPY too (a report larger than one inline batch)', async () => {
    const big = { assetKey: 'image:facts/big:1', kind: 'container_image' as const, name: 'facts/big:1' };
    async function* many(): AsyncGenerator<NormalizedFinding> {
      for (let i = 0; i < 5200; i++) {
        yield {
          asset: big, kind: 'vulnerability', severity: 'medium', location: '', issueId: `CVE-2024-${10000 + i}`, component: `pkg-${i % 50}`, version: '1.0.0',
          ...(i % 2 === 0
            ? { ecosystem: 'npm', packageClass: 'app' as const, manifest: 'C:\\src\\web app\\package-lock.json', fixedVersion: '1.0.1', fixSource: 'scanner' as const }
            : { ecosystem: 'deb', packageClass: 'os' as const, sourcePackage: 'glibc' }),
        };
      }
    }
    const counts = await ingestFindings(database.sql, { id: randomUUID(), source: 'facts-big' }, many());
    expect(counts).toMatchObject({ findings: 5200, newFindings: 5200 });
    const rows = await database.sql<{ ecosystem: string; package_class: string; manifest: string; source_package: string | null; fix_source: string | null; n: number }[]>`
      select f.ecosystem, f.package_class, f.manifest, f.source_package, f.fix_source, count(*)::int as n
      from findings f join assets a on a.id = f.asset_id where a.asset_key = ${big.assetKey} group by 1, 2, 3, 4, 5 order by 1`;
    expect(rows).toEqual([
      { ecosystem: 'deb', package_class: 'os', manifest: '', source_package: 'glibc', fix_source: null, n: 2600 },
      { ecosystem: 'npm', package_class: 'app', manifest: 'C:\\src\\web app\\package-lock.json', source_package: null, fix_source: 'scanner', n: 2600 },
    ]);
  });

  it.skipIf(!hasCorpus)('stores what a real Grype report says', async () => {
    const file = more('trivy-grype-same-image', 'grype-results.json');
    const connector = await connectorFor(file, file, 'grype');
    await ingestFindings(database.sql, { id: randomUUID(), source: 'grype-facts', target: 'facts/grype:1' }, connector.parse(file, { target: 'facts/grype:1' }));
    const rows = await database.sql<{ package_class: string | null; n: number }[]>`
      select f.package_class, count(*)::int as n from findings f join assets a on a.id = f.asset_id
      where a.name = 'facts/grype:1' group by 1 order by 1 nulls last`;
    // 165 matches are 160 findings once the same package at two paths is merged.
    expect(rows.map((r) => [r.package_class, r.n])).toEqual([['app', 5], ['os', expect.any(Number)], [null, expect.any(Number)]]);
    const [glibc] = await database.sql<{ n: number }[]>`
      select count(*)::int as n from findings f join assets a on a.id = f.asset_id
      where a.name = 'facts/grype:1' and f.source_package = 'glibc' and f.component in ('libc6', 'libc-bin')`;
    expect(glibc!.n).toBeGreaterThan(0);
  });
});
