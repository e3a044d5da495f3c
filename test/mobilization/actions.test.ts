import { describe, expect, it } from 'vitest';
import { actionKey, groupIntoActions, packageClassOf, productOf, type ActionableFinding } from '../../mobilization/actions.js';
import { mitigationsFor } from '../../mobilization/mitigations.js';
import { compareVersions, fixedVersionCandidates, targetVersion } from '../../mobilization/versions.js';

// The grouping rules of golden tickets, one by one: what an owner does is one ticket. The package
// names, versions and titles below are the ones real reports carry (Trivy on a Debian image,
// Nessus on a PHP host); test/mobilization/corpus-tickets.e2e.test.ts runs the same rules over
// the whole real corpus.

let nextId = 1;
const finding = (over: Partial<ActionableFinding>): ActionableFinding => ({
  id: nextId++,
  assetId: 1,
  assetKey: 'image:shop/api:1.4',
  assetName: 'shop/api:1.4',
  assetKind: 'container_image',
  owner: 'alex.romero',
  criticality: 'high',
  kind: 'vulnerability',
  issueId: 'CVE-2024-0001',
  component: 'openssl',
  version: '3.0.11-1~deb12u1',
  location: '',
  fixedVersion: '3.0.13-1~deb12u1',
  ecosystem: 'debian',
  packageClass: 'os',
  manifest: '',
  sourcePackage: null,
  tier: 'attend',
  dueAt: new Date('2026-12-20T00:00:00Z'),
  ...over,
});

describe('versions', () => {
  it('orders numbers as numbers, epochs first and ~ before the release', () => {
    expect(compareVersions('2.10.0', '2.9.1')).toBeGreaterThan(0);
    expect(compareVersions('1:1.0', '2.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0~rc1', '1.0')).toBeLessThan(0);
    expect(compareVersions('2.9.1-r3', '2.9.1-r2')).toBeGreaterThan(0);
    expect(compareVersions('3.0.13-1~deb12u1', '3.0.13-1~deb12u1')).toBe(0);
  });

  it('reads the lists scanners write', () => {
    expect(fixedVersionCandidates('2.3.2, 2.2.5')).toEqual(['2.3.2', '2.2.5']);
    expect(fixedVersionCandidates('5.3.12 / 5.4.2')).toEqual(['5.3.12', '5.4.2']);
    expect(fixedVersionCandidates('>= 1.2.3')).toEqual(['1.2.3']);
    expect(fixedVersionCandidates('')).toEqual([]);
  });

  it('takes the fixed version that fits the installed branch', () => {
    // Trivy lists flask's fixes as `2.3.2, 2.2.5`: 2.2.2 goes to 2.2.5, not across a minor version.
    expect(targetVersion('2.2.2', '2.3.2, 2.2.5')).toBe('2.2.5');
    expect(targetVersion('2.3.0', '2.3.2, 2.2.5')).toBe('2.3.2');
    // Nessus `5.3.12 / 5.4.2` for PHP 5.1.6: the lowest of the branch's successors.
    expect(targetVersion('5.1.6', '5.3.12 / 5.4.2')).toBe('5.3.12');
    // Nothing above the installed version listed: the highest, for a person to look at.
    expect(targetVersion('9.0', '2.3.2, 2.2.5')).toBe('2.3.2');
    expect(targetVersion('1.0', 'none')).toBeUndefined();
  });
});

describe('an image', () => {
  it('gets one OS-layer ticket for all its OS packages, a source package on one line', () => {
    const actions = groupIntoActions([
      finding({ component: 'libc6', sourcePackage: 'glibc', version: '2.36-9', fixedVersion: '2.36-9+deb12u4', issueId: 'CVE-2023-4911' }),
      finding({ component: 'libc-bin', sourcePackage: 'glibc', version: '2.36-9', fixedVersion: '2.36-9+deb12u4', issueId: 'CVE-2023-4911' }),
      finding({ component: 'libgnutls30', version: '3.7.9-2', fixedVersion: '3.7.9-2+deb12u1', issueId: 'CVE-2024-0553' }),
      finding({ component: 'libgnutls30', version: '3.7.9-2', fixedVersion: '3.7.9-2+deb12u2', issueId: 'CVE-2024-28834', tier: 'act' }),
    ]);
    expect(actions).toHaveLength(1);
    const [os] = actions;
    expect(os).toMatchObject({ action: 'os-layer', subject: 'OS packages', tier: 'act', target: '' });
    expect(os!.lines).toEqual([
      { package: 'glibc', packages: ['libc-bin', 'libc6'], installed: '2.36-9', target: '2.36-9+deb12u4', issueIds: ['CVE-2023-4911'] },
      // Two CVEs, two fixes: the line asks for the higher.
      { package: 'libgnutls30', packages: ['libgnutls30'], installed: '3.7.9-2', target: '3.7.9-2+deb12u2', issueIds: ['CVE-2024-0553', 'CVE-2024-28834'] },
    ]);
  });

  it('gets one ticket per manifest, each installed version its own line with the fix that fits it', () => {
    const app = { packageClass: 'app' as const, ecosystem: 'pip' };
    const actions = groupIntoActions([
      finding({ ...app, component: 'flask', version: '2.2.2', fixedVersion: '2.3.2, 2.2.5', manifest: 'app/requirements.txt', issueId: 'CVE-2023-30861' }),
      finding({ ...app, component: 'setuptools', version: '65.5.0', fixedVersion: '65.5.1', manifest: 'app/requirements.txt', issueId: 'CVE-2022-40897' }),
      finding({ ...app, component: 'setuptools', version: '58.1.0', fixedVersion: '65.5.1', manifest: 'tools/requirements.txt', issueId: 'CVE-2022-40897' }),
      finding({ component: 'python3.11', version: '3.11.2-6', fixedVersion: '3.11.2-6+deb12u1', issueId: 'CVE-2023-24329' }),
    ]);
    expect(actions.map((a) => [a.action, a.subject]).sort()).toEqual([
      ['manifest', 'app/requirements.txt'],
      ['manifest', 'tools/requirements.txt'],
      ['os-layer', 'OS packages'],
    ]);
    const app1 = actions.find((a) => a.subject === 'app/requirements.txt')!;
    expect(app1.lines.map((l) => [l.package, l.installed, l.target])).toEqual([
      ['flask', '2.2.2', '2.2.5'],
      ['setuptools', '65.5.0', '65.5.1'],
    ]);
  });

  it('keeps several installed versions of one package as lines of one ticket', () => {
    const [os] = groupIntoActions([
      finding({ component: 'python3.9', version: '3.9.2-1', fixedVersion: '3.9.2-1+deb11u1' }),
      finding({ component: 'python3.9', version: '3.9.2-1+deb11u0', fixedVersion: '3.9.2-1+deb11u1', issueId: 'CVE-2024-0002' }),
    ]);
    expect(os!.lines.map((l) => l.installed)).toEqual(['3.9.2-1', '3.9.2-1+deb11u0']);
  });

  it("leaves the OS layer of images built on a known base image to one ticket on the base's owner", () => {
    const base = { assetId: 50, assetKey: 'image:registry.example.com/base/debian:12', assetName: 'registry.example.com/base/debian:12', owner: 'sam.okafor' };
    const actions = groupIntoActions([
      finding({ assetId: 1, assetKey: 'image:shop/api:1.4', assetName: 'shop/api:1.4', baseImage: base, component: 'openssl' }),
      finding({ assetId: 2, assetKey: 'image:shop/web:2.0', assetName: 'shop/web:2.0', baseImage: base, component: 'openssl' }),
      // The base image's own scan: the same rebuild.
      finding({ assetId: 50, assetKey: base.assetKey, assetName: base.assetName, owner: 'sam.okafor', component: 'zlib1g', fixedVersion: '1:1.2.13.dfsg-1+deb12u1' }),
      // Application packages stay with each image's owner.
      finding({ assetId: 2, assetKey: 'image:shop/web:2.0', assetName: 'shop/web:2.0', baseImage: base, packageClass: 'app', ecosystem: 'npm', manifest: 'package-lock.json', component: 'express', version: '4.17.1', fixedVersion: '4.19.2' }),
    ]);
    expect(actions.map((a) => [a.action, a.assetId, a.owner, a.assetIds]).sort()).toEqual([
      ['base-image', 50, 'sam.okafor', [1, 2, 50]],
      ['manifest', 2, 'alex.romero', [2]],
    ]);
    expect(actions.find((a) => a.action === 'base-image')!.key).toBe(actionKey('os-layer', 'OS packages', { kind: 'asset', assetKey: base.assetKey, assetName: base.assetName }));
  });

  it('puts the jars of one library directory on one ticket', () => {
    const jar = { packageClass: 'app' as const, ecosystem: 'jar' };
    const actions = groupIntoActions([
      finding({ ...jar, component: 'org.apache.logging.log4j:log4j-core', version: '2.14.1', fixedVersion: '2.15.0', manifest: 'app/lib/log4j-core-2.14.1.jar' }),
      finding({ ...jar, component: 'org.springframework:spring-beans', version: '5.3.17', fixedVersion: '5.3.18', manifest: 'app/lib/spring-beans-5.3.17.jar' }),
      finding({ ...jar, component: 'commons-io:commons-io', version: '2.6', fixedVersion: '2.7', manifest: 'tools/cli.jar' }),
    ]);
    expect(actions.map((a) => [a.subject, a.lines.length]).sort()).toEqual([
      ['app/lib', 2],
      ['tools', 1],
    ]);
  });

  it('takes packages of older reports without a class as OS packages only when they carry no path', () => {
    expect(packageClassOf({ packageClass: null, ecosystem: null, assetKind: 'container_image', manifest: '', location: '' })).toBe('os');
    expect(packageClassOf({ packageClass: null, ecosystem: null, assetKind: 'container_image', manifest: '', location: 'app/lib/log4j-core-2.14.1.jar' })).toBe('app');
    expect(packageClassOf({ packageClass: null, ecosystem: 'apk', assetKind: 'other', manifest: '', location: '' })).toBe('os');
    expect(packageClassOf({ packageClass: null, ecosystem: 'npm', assetKind: 'container_image', manifest: '', location: '' })).toBe('app');
  });
});

describe('a host', () => {
  const host = { assetKey: 'host:testphp.vulnweb.com', assetName: 'testphp.vulnweb.com', assetKind: 'host', ecosystem: null, packageClass: null };

  it('gets one product upgrade for every check of that product, to the highest version any asks', () => {
    const actions = groupIntoActions([
      finding({ ...host, component: 'PHP < 5.2.4 Multiple Vulnerabilities', version: '5.1.6', fixedVersion: '5.2.4', issueId: 'CVE-2007-1413' }),
      finding({ ...host, component: 'PHP 5.x < 5.2.2 Multiple vulnerabilities', version: '5.1.6', fixedVersion: '5.2.2', issueId: 'CVE-2007-1001' }),
      finding({ ...host, component: 'PHP < 5.3.12 / 5.4.2 CGI Query String Code Execution', version: '5.1.6', fixedVersion: '5.3.12 / 5.4.2', issueId: 'CVE-2012-1823' }),
    ]);
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ action: 'product', subject: 'PHP', target: '5.3.12' });
    expect(actions[0]!.lines).toEqual([
      { package: 'PHP', packages: expect.arrayContaining(['PHP < 5.2.4 Multiple Vulnerabilities']), installed: '5.1.6', target: '5.3.12', issueIds: ['CVE-2007-1001', 'CVE-2007-1413', 'CVE-2012-1823'] },
    ]);
  });

  it('folds a check of the product with no version of its own into the product upgrade', () => {
    const php = { ...host, sourcePackage: 'php', version: '5.1.6' };
    const actions = groupIntoActions([
      finding({ ...php, component: 'PHP < 5.2.4 Multiple Vulnerabilities', fixedVersion: '5.2.4', issueId: 'CVE-2007-1413' }),
      finding({ ...php, component: 'PHP Unsupported Version Detection', fixedVersion: null, issueId: 'NESSUS-58987' }),
      // A check with no installed version is about something else (a phpinfo page): a mitigation.
      finding({ ...php, version: '', component: 'Web Server info.php / phpinfo.php Detection', fixedVersion: null, issueId: 'NESSUS-11229' }),
      // On another host with no upgrade ticket, it stays a mitigation.
      finding({ ...php, assetKey: 'host:other', assetName: 'other', component: 'PHP Unsupported Version Detection', fixedVersion: null, issueId: 'NESSUS-58987' }),
    ]);
    expect(actions.map((a) => [a.action, a.scope.kind === 'asset' ? a.scope.assetName : '', a.findingIds.length])).toEqual([
      ['product', 'testphp.vulnweb.com', 2],
      ['mitigation', 'testphp.vulnweb.com', 1],
      ['mitigation', 'other', 1],
    ]);
    expect(actions[0]!.target).toBe('5.2.4');
  });

  it("runs one OS patch across an owner's hosts", () => {
    const actions = groupIntoActions([
      finding({ ...host, assetId: 7, assetKey: 'host:web-01', assetName: 'web-01', packageClass: 'os', component: 'openssl', fixedVersion: '3.0.13-1' }),
      finding({ ...host, assetId: 8, assetKey: 'host:web-02', assetName: 'web-02', packageClass: 'os', component: 'bash', fixedVersion: '5.2.15-2+b7' }),
      finding({ ...host, assetId: 9, assetKey: 'host:db-01', assetName: 'db-01', owner: 'jonas.weber', packageClass: 'os', component: 'bash', fixedVersion: '5.2.15-2+b7' }),
    ]);
    expect(actions.map((a) => [a.action, a.owner, a.assetIds])).toEqual([
      ['os-patch', 'alex.romero', [7, 8]],
      ['os-patch', 'jonas.weber', [9]],
    ]);
    expect(actions[0]!.key).toBe(actionKey('os-patch', 'OS packages', { kind: 'owner', owner: 'alex.romero' }));
  });

  it('names the product before the version test of a check title', () => {
    expect(productOf('PHP 8.2.x < 8.2.20 Multiple Vulnerabilities')).toBe('PHP');
    expect(productOf('Apache 2.4.x < 2.4.58 Multiple Vulnerabilities')).toBe('Apache');
    expect(productOf('OpenSSL 1.0.1 < 1.0.1g Multiple Vulnerabilities (Heartbleed)')).toBe('OpenSSL');
    expect(productOf('Apache Tomcat 9.0.0.M1 < 9.0.31')).toBe('Apache Tomcat');
    expect(productOf('PHP 5 < 5.2.7 Multiple Vulnerabilities')).toBe('PHP');
    expect(productOf('php')).toBe('php');
  });
});

describe('no fix, configuration and secrets', () => {
  it('gets one mitigation ticket per component, with controls that fit it', () => {
    const host = { assetKey: 'host:10.2.1.1', assetName: '10.2.1.1', assetKind: 'host', fixedVersion: null, ecosystem: null, packageClass: null };
    const actions = groupIntoActions([
      finding({ ...host, component: 'SSL RC4 Cipher Suites Supported (Bar Mitzvah)', issueId: 'CVE-2013-2566', location: '443/tcp' }),
      finding({ ...host, component: 'SSL RC4 Cipher Suites Supported (Bar Mitzvah)', issueId: 'CVE-2015-2808', location: '443/tcp' }),
    ]);
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ action: 'mitigation', subject: 'SSL RC4 Cipher Suites Supported' });
    const controls = mitigationsFor({ assetKey: '10.2.1.1', component: 'RC4', issueIds: ['CVE-2013-2566'], locations: ['443/tcp'], cwes: [], assetKind: 'host' });
    expect(controls.map((c) => c.control?.kind)).toEqual(['segmentation', 'waf', 'feature_disabled']);
    expect(controls[0]!.control).toMatchObject({ mitigates: { ports: ['443/tcp'] }, effect: 'not_exposed' });
  });

  it('suggests removing an unused package only where the scan will see it gone', () => {
    const controls = mitigationsFor({ assetKey: 'image:x', component: 'jira', issueIds: ['CVE-2019-3401'], locations: [''], cwes: ['CWE-79'], assetKind: 'container_image' });
    expect(controls.map((c) => c.control?.kind ?? 'remove')).toEqual(['waf', 'feature_disabled', 'remove']);
  });

  it('gets one configuration change and one secret rotation per asset', () => {
    const actions = groupIntoActions([
      finding({ kind: 'misconfiguration', issueId: 'DS002', component: 'Dockerfile', fixedVersion: null }),
      finding({ kind: 'misconfiguration', issueId: 'DS026', component: 'Dockerfile', fixedVersion: null }),
      finding({ kind: 'secret', issueId: 'aws-access-key-id', component: 'secret', fixedVersion: null, location: 'app/.env:3' }),
    ]);
    expect(actions.map((a) => [a.action, a.findingIds.length]).sort()).toEqual([
      ['config', 2],
      ['secret', 1],
    ]);
  });
});
