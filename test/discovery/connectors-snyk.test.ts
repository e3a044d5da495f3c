import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Snyk CLI JSON against real DefectDojo samples (test/fixtures/snyk-json), detection against the
// whole corpus, and the forms the samples lack.

const real = (name: string) => fixtureFile('snyk-json', name);
const fixture = scratchFiles('snyk');
const parse = (file: string, target?: string): Promise<NormalizedFinding[]> => parseAs('snyk-json', file, target === undefined ? {} : { target });
const parseError = (file: string) => parseErrorAs('snyk-json', file);

const vuln = (over: Record<string, unknown> = {}) => ({
  id: 'SNYK-JS-LODASH-1040724', packageName: 'lodash', name: 'lodash', version: '4.17.11', packageManager: 'npm',
  severity: 'high', cvssScore: 7.2, CVSSv3: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H/E:P/RL:U/RC:C',
  identifiers: { CVE: ['CVE-2021-23337'], CWE: ['CWE-78'] }, fixedIn: ['4.17.21'], from: ['app@1.0.0', 'lodash@4.17.11'],
  upgradePath: [false, 'lodash@4.17.21'], isUpgradable: true, title: 'Command Injection', ...over,
});
const project = (vulns: unknown[], over: Record<string, unknown> = {}) => ({
  vulnerabilities: vulns, ok: vulns.length === 0, dependencyCount: 3, org: 'o', packageManager: 'npm',
  projectName: 'app', displayTargetFile: 'package-lock.json', path: '/src/app', ...over,
});

describe('Snyk JSON: real DefectDojo samples', () => {
  it('--all-projects (issue 4277): 82 entries in DefectDojo, 50 findings here (one per dependency path there)', async () => {
    const findings = await parse(real('all_projects_issue4277.json'));
    expect(findings).toHaveLength(50);
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set([
      'fs:C:\\Users\\uac\\source\\repos\\project\\company.Api.project\\src\\obj',
      'fs:C:\\Users\\uac\\source\\repos\\project\\company.Ux.project',
    ]));
    // DefectDojo's findings[0], [40] and [81].
    const asp = findings.find((f) => f.component === 'Microsoft.AspNetCore' && f.version === '2.2.0' && f.issueId === 'CVE-2019-0815')!;
    expect(asp).toMatchObject({ severity: 'high', cwes: ['CWE-200'], cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', ecosystem: 'nuget', packageClass: 'app', manifest: 'project.assets.json' });
    const lodash = findings.find((f) => f.component === 'lodash' && f.version === '4.17.11' && f.issueId === 'CVE-2021-23337')!;
    expect(lodash).toMatchObject({ severity: 'high', cwes: ['CWE-78'], cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H', ecosystem: 'npm', manifest: 'package-lock.json', fixSource: 'scanner' });
    const yargs = findings.find((f) => f.component === 'yargs-parser' && f.version === '5.0.0' && f.issueId === 'CVE-2020-7608')!;
    expect(yargs).toMatchObject({ severity: 'medium', cwes: ['CWE-400'] });
    // One per asset × issue × package × version: the dependency paths are not findings of their own.
    expect(new Set(findings.map((f) => [f.asset.assetKey, f.issueId, f.component, f.version].join(' '))).size).toBe(50);
  });

  it('snyk container test: OS packages per binary, the image\'s applications on the same asset', async () => {
    const findings = await parse(real('snykcontainer_issue_9270.json'));
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['image:sarim04/juiceshop:latest']));
    const os = findings.filter((f) => f.packageClass === 'os');
    const apps = findings.filter((f) => f.packageClass === 'app');
    expect(os).toHaveLength(18);
    expect(apps).toHaveLength(12);
    const gcc = findings.find((f) => f.component === 'libgcc-s1')!;
    expect(gcc).toMatchObject({ issueId: 'CVE-2023-4039', version: '10.2.1-6', ecosystem: 'deb', sourcePackage: 'gcc-10', severity: 'low', cvssScore: 4.8 });
    expect(gcc.manifest).toBeUndefined();
    expect(apps.every((f) => f.ecosystem === 'npm' && f.manifest === 'juice-shop/package.json')).toBe(true);
  });

  it('both samples are claimed by snyk-json alone', async () => {
    for (const name of ['all_projects_issue4277.json', 'snykcontainer_issue_9270.json']) {
      expect(await detectedFormats(real(name)), name).toEqual(['snyk-json']);
      expect((await connectorFor(real(name), name)).format).toBe('snyk-json');
    }
  });
});

describeExclusiveDetection({ 'snyk-json': 'snyk-json' });

describe('Snyk JSON: forms the samples lack', () => {
  it('a single project: asset is the scanned folder; fields mapped', async () => {
    const file = await fixture('one.json', project([vuln(), vuln({ from: ['app@1.0.0', 'x@1', 'lodash@4.17.11'] })]));
    const findings = await parse(file);
    expect(findings).toEqual([{
      asset: { assetKey: 'fs:/src/app', kind: 'filesystem', name: '/src/app' }, kind: 'vulnerability', issueId: 'CVE-2021-23337',
      aliases: ['SNYK-JS-LODASH-1040724'], component: 'lodash', version: '4.17.11', location: '', fixedVersion: '4.17.21', fixSource: 'scanner', severity: 'high', cvssScore: 7.2,
      cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H', title: 'Command Injection', cwes: ['CWE-78'],
      ecosystem: 'npm', packageClass: 'app', manifest: 'package-lock.json',
    }]);
    const named = await parse(file, 'payments');
    expect(named[0]).toMatchObject({ asset: { assetKey: 'fs:payments' }, manifest: 'package-lock.json' });
  });

  it('issueId: the Snyk id without a CVE, or with several; fix from upgradePath; PEP 503 names', async () => {
    const file = await fixture('ids.json', project([
      vuln({ id: 'SNYK-JS-X-1', identifiers: { CVE: [], CWE: [] }, fixedIn: [], upgradePath: [false, 'lodash@4.17.12'] }),
      vuln({ id: 'SNYK-JS-X-2', identifiers: { CVE: ['CVE-2020-1', 'CVE-2020-2'] } }),
      vuln({ id: 'SNYK-PYTHON-FLASK-1', packageName: 'Flask', name: 'Flask', version: '1.0', packageManager: 'pip', severityWithCritical: 'critical' }),
    ]));
    const [a, b, c] = await parse(file);
    expect(a).toMatchObject({ issueId: 'SNYK-JS-X-1', fixedVersion: '4.17.12', fixSource: 'scanner' });
    expect(b!.issueId).toBe('SNYK-JS-X-2');
    // Two CVEs: neither keys the finding, both are its aliases.
    expect(b!.aliases).toEqual(['CVE-2020-1', 'CVE-2020-2']);
    expect(c).toMatchObject({ issueId: 'CVE-2021-23337', component: 'flask', ecosystem: 'pypi', severity: 'critical' });
  });

  it('an error object is refused, never an empty scan', async () => {
    const file = await fixture('err.json', { ok: false, error: 'Could not detect supported target files', path: '/src' });
    expect((await parseError(file)).message).toBe('err.json: snyk-json: error: Snyk reported an error, not a scan: Could not detect supported target files');
  });

  it('refuses a project without vulnerabilities, a non-object entry, and bad JSON', async () => {
    expect((await parseError(await fixture('nov.json', [project([]), { ok: true, projectName: 'x' }]))).message)
      .toBe('nov.json: snyk-json: [1].vulnerabilities: missing: not a Snyk test report');
    expect((await parseError(await fixture('scalar.json', [1]))).message).toContain('expected a project object');
    expect((await parseError(await fixture('bad.json', '{"vulnerabilities": [{"id": '))).message).toContain('snyk-json');
    expect((await parseError(await fixture('vnull.json', project([{ id: 'SNYK-1' }])))).message).toBe('vnull.json: snyk-json: vulnerabilities[0].packageName: missing');
  });

  it('zero vulnerabilities is a clean scan', async () => {
    expect(await parse(await fixture('clean.json', project([])))).toEqual([]);
    expect(await parse(await fixture('clean-all.json', [project([]), project([], { projectName: 'b' })]))).toEqual([]);
  });
});
