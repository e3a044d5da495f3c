import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { gitlabFixedVersion } from '../../discovery/connectors/gitlab/index.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// GitLab dependency and container scanning reports against real DefectDojo samples
// (test/fixtures/gitlab-*), detection against the whole corpus, and the forms the samples lack.

const DEP = 'gitlab-dependency-scanning';
const CON = 'gitlab-container-scanning';
const dep = (name: string) => fixtureFile('gitlab-dependency-scanning', name);
const con = (name: string) => fixtureFile('gitlab-container-scanning', name);
const fixture = scratchFiles('gitlab');
const parse = (format: string, file: string, target?: string): Promise<NormalizedFinding[]> => parseAs(format, file, target === undefined ? {} : { target });
const parseError = (format: string, file: string, target?: string) => parseErrorAs(format, file, target === undefined ? {} : { target });
const detected = detectedFormats;

describe('GitLab dependency scanning: real DefectDojo samples', () => {
  it('many-vuln (DefectDojo: more than 2, 6 entries): 6 findings, the CVE first', async () => {
    const findings = await parse(DEP, dep('gl-dependency-scanning-report-many-vuln_v15.json'), 'service-repo');
    expect(findings).toHaveLength(6);
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'fs:service-repo', kind: 'filesystem' }, issueId: 'CVE-2020-29652', component: 'golang.org/x/crypto',
      version: 'v0.0.0-20190219172222-a4c6cb3142f2', severity: 'high', title: 'Nil Pointer Dereference',
      fixedVersion: 'v0.0.0-20201216223049-8b5274cf687f', fixSource: 'text', ecosystem: 'golang', packageClass: 'app', manifest: 'service/go.sum',
    });
    expect(new Set(findings.map((f) => [f.issueId, f.component, f.version].join(' '))).size).toBe(6);
  });

  it('missing component (DefectDojo: 2, one without a component): the package from GitLab\'s compare key, version unknown', async () => {
    const findings = await parse(DEP, dep('gl-dependency-scanning-report-2-vuln-missing-component_v15.json'), 'svc');
    expect(findings).toHaveLength(2);
    expect(findings[0]).toMatchObject({ issueId: 'Gemnasium-7368f513-0aa9-4e34-a08d-40ea81f48e0e', component: 'gopkg.in/yaml.v2', version: '', severity: 'unknown', fixedVersion: '2.2.3' });
    expect(findings[1]).toMatchObject({ issueId: 'CVE-2020-29652', component: 'golang.org/x/crypto', version: 'v0.0.0-20190308221718-c2843e01d9a2' });
  });

  it('names no project, so a target is required', async () => {
    expect((await parseError(DEP, dep('gl-dependency-scanning-report-many-vuln_v15.json'))).message)
      .toBe('gl-dependency-scanning-report-many-vuln_v15.json: gitlab-dependency-scanning: the report does not name the project (pass a target to name the asset)');
  });
});

describe('GitLab container scanning: real DefectDojo samples', () => {
  it('5 vulnerabilities (DefectDojo: 5) on the report\'s image', async () => {
    const findings = await parse(CON, con('gl-container-scanning-report-5-vuln_v15.json'));
    expect(findings).toHaveLength(5);
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'image:registry/vulnerable-project:latest', kind: 'container_image' }, issueId: 'CVE-2020-1751',
      component: 'libc6', version: '2.28-10', severity: 'high', ecosystem: 'deb', packageClass: 'os',
    });
    expect(findings[0]!.fixedVersion).toBeUndefined(); // "No solution provided"
  });

  it('issue 6639 (DefectDojo: 98, no `scan` object): language entries go onto the one image', async () => {
    const findings = await parse(CON, con('issue6639_v15.json'));
    expect(findings).toHaveLength(98);
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['image:XXXXXX.dkr.ecr.eu-west-3.amazonaws.com/XXX/admintools/tools:pipeline-ci']));
    expect(findings.find((f) => f.component === 'busybox')).toMatchObject({ issueId: 'CVE-2022-28391', version: '1.34.1-r4', severity: 'critical', fixedVersion: '1.34.1-r5', fixSource: 'text' });
    expect(findings.find((f) => f.component === 'libretls')).toMatchObject({ issueId: 'CVE-2022-0778', version: '3.3.4-r2', severity: 'high', fixedVersion: '3.3.4-r3' });
    const node = findings.filter((f) => f.ecosystem === 'npm');
    const php = findings.filter((f) => f.ecosystem === 'composer');
    expect([node.length, php.length]).toEqual([15, 7]);
    expect(php.every((f) => f.manifest === 'var/www/composer.lock' && f.packageClass === 'app')).toBe(true);
  });

  it('a target names the image', async () => {
    const findings = await parse(CON, con('gl-container-scanning-report-5-vuln_v15.json'), 'app:1');
    expect(findings[0]!.asset).toEqual({ assetKey: 'image:app:1', kind: 'container_image', name: 'app:1' });
  });
});

describe('GitLab reports: detection', () => {
  it('each sample is claimed by its own connector alone', async () => {
    for (const f of [dep('gl-dependency-scanning-report-many-vuln_v15.json'), dep('gl-dependency-scanning-report-2-vuln-missing-component_v15.json')]) {
      expect(await detected(f), f).toEqual([DEP]);
    }
    for (const f of [con('gl-container-scanning-report-5-vuln_v15.json'), con('issue6639_v15.json')]) {
      expect(await detected(f), f).toEqual([CON]);
      expect((await connectorFor(f, 'x')).format).toBe(CON);
    }
  });

  it('other GitLab report types (SAST, secrets) and the Snyk samples are not claimed', async () => {
    const sast = await fixture('sast.json', { version: '15.0.0', vulnerabilities: [{ id: '1', identifiers: [{ type: 'semgrep_id', value: 'x' }], location: { file: 'a.py', start_line: 1 } }], scan: { type: 'sast' } });
    const secrets = await fixture('secrets.json', { version: '15.0.0', vulnerabilities: [], scan: { type: 'secret_detection' } });
    expect(await detected(sast)).toEqual([]);
    expect(await detected(secrets)).toEqual([]);
    for (const f of ['all_projects_issue4277.json', 'snykcontainer_issue_9270.json']) {
      expect(await detected(fixtureFile('snyk-json', f))).toEqual(['snyk-json']);
    }
  });
});

describeExclusiveDetection({ 'gitlab-dependency-scanning': DEP, 'gitlab-container-scanning': CON });

describe('GitLab reports: forms the samples lack', () => {
  const vuln = (over: Record<string, unknown> = {}) => ({
    id: 'a', severity: 'Medium', solution: 'Upgrade apt from 1.4.8 to 1.4.9',
    location: { dependency: { package: { name: 'apt' }, version: '1.4.8' }, operating_system: 'debian:9.4', image: 'reg/webgoat@sha256:bc09' },
    identifiers: [{ type: 'cve', name: 'CVE-2019-3462', value: 'CVE-2019-3462', url: 'https://x/1' }, { type: 'cwe', name: 'CWE-79', value: '79' }],
    cvss_vectors: [{ vendor: 'NVD', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
    ...over,
  });
  const report = (vulns: unknown[], type = 'container_scanning') => ({ version: '15.0.4', vulnerabilities: vulns, remediations: [], scan: { type, status: 'success' } });

  it('maps the fields; an image digest is the asset\'s digest', async () => {
    const [f] = await parse(CON, await fixture('c.json', report([vuln()])));
    expect(f).toEqual({
      asset: { assetKey: 'image:reg/webgoat', kind: 'container_image', name: 'reg/webgoat', digest: 'sha256:bc09' }, kind: 'vulnerability',
      issueId: 'CVE-2019-3462', component: 'apt', version: '1.4.8', location: '', fixedVersion: '1.4.9', fixSource: 'text', severity: 'medium',
      cvssScore: 9.8, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', cwes: ['CWE-79'], references: ['https://x/1'], ecosystem: 'deb', packageClass: 'os',
    });
  });

  it('refuses the other report type, a location without dependency, and a report without vulnerabilities', async () => {
    expect((await parseError(CON, await fixture('d.json', report([], 'dependency_scanning')))).message)
      .toBe('d.json: gitlab-container-scanning: scan.type: is dependency_scanning, expected container_scanning');
    expect((await parseError(CON, await fixture('n.json', report([vuln({ location: { image: 'x:1' } })])))).message)
      .toBe('n.json: gitlab-container-scanning: vulnerabilities[0].location.dependency: missing');
    expect((await parseError(DEP, await fixture('e.json', { version: '15.0.4', scan: { type: 'dependency_scanning' } }), 't')).message)
      .toBe('e.json: gitlab-dependency-scanning: vulnerabilities: missing: not a GitLab security report');
  });

  it('a language entry with several images needs a target', async () => {
    const file = await fixture('two.json', report([vuln(), vuln({ location: { dependency: { package: { name: 'x' }, version: '1' }, image: 'other:2' } }),
      vuln({ location: { dependency: { package: { name: 'lodash' }, version: '4.17.11' }, image: 'Node.js' } })]));
    expect((await parseError(CON, file)).message).toContain('vulnerabilities[2].location.image: Node.js is not an image and the report names several images');
    expect((await parse(CON, file, 'app:1')).map((f) => f.asset.assetKey)).toEqual(['image:app:1', 'image:app:1', 'image:app:1']);
  });

  it('reads the fixed version GitLab\'s solutions state', () => {
    expect(gitlabFixedVersion('Upgrade apt from 1.4.8 to 1.4.9', 'apt')).toBe('1.4.9');
    expect(gitlabFixedVersion('Upgrade busybox to 1.34.1-r5', 'busybox')).toBe('1.34.1-r5');
    expect(gitlabFixedVersion('Upgrade to version 2.2.3 or above.', 'x')).toBe('2.2.3');
    expect(gitlabFixedVersion('Upgrade curl to 7.80.0-r2', 'libcurl')).toBeUndefined();
    expect(gitlabFixedVersion('No solution provided', 'x')).toBeUndefined();
  });
});
