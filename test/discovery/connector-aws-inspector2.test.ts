import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// AWS Inspector v2 findings JSON against DefectDojo's real samples (test/fixtures/aws-inspector2/),
// against every other corpus format (detection), and against malformed input.

const FORMAT = 'aws-inspector2-json';
const fixture = (name: string) => fixtureFile('aws-inspector2', name);
const write = scratchFiles('inspector2');
const parse = (file: string, target?: string): Promise<NormalizedFinding[]> => parseAs(FORMAT, file, target ? { target } : {});
const parseError = (file: string) => parseErrorAs(FORMAT, file);

/** DefectDojo keeps one finding per Inspector finding: per asset and vulnerability here. */
const ddCount = (findings: NormalizedFinding[]) => new Set(findings.map((f) => `${f.asset.assetKey}\x1f${f.issueId}`)).size;

describe('aws-inspector2-json: DefectDojo samples', () => {
  it('aws_inspector2_many_vul.json: ECR image and EC2 instance, 10 findings (DefectDojo 8)', async () => {
    const findings = await parse(fixture('aws_inspector2_many_vul.json'));
    expect(findings).toHaveLength(10);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(10);
    expect(ddCount(findings)).toBe(8);

    const image = 'image:012345678901.dkr.ecr.us-east-1.amazonaws.com/my-awesome-docker-image:2.3.0';
    const closed = findings.find((f) => f.issueId === 'CVE-2021-3744')!;
    expect(closed).toMatchObject({
      asset: { assetKey: image, kind: 'container_image', digest: 'sha256:d667ad018b538adadb5bd1db75836c8561b23bc7d31d9cd8941fa74f5df93802' },
      kind: 'vulnerability', component: 'linux', version: '4.19.118-2', location: '', fixedVersion: '4.19.232-1', fixSource: 'scanner',
      severity: 'medium', cvssScore: 5.5, cvssVector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H',
      vendorStatus: 'fixed', ecosystem: 'deb', packageClass: 'os', title: 'CVE-2021-3744 - linux',
    });
    expect(closed.references).toEqual(['https://security-tracker.debian.org/tracker/CVE-2021-3744']);
    // UNTRIAGED, fixedInVersion NotAvailable: no fix, no status, no score.
    const untriaged = findings.find((f) => f.issueId === 'CVE-2024-37021')!;
    expect(untriaged.severity).toBe('unknown');
    expect(untriaged.fixedVersion).toBeUndefined();
    expect(untriaged.vendorStatus).toBeUndefined();
    expect(untriaged.cvssScore).toBeUndefined();
    expect(findings.find((f) => f.issueId === 'CVE-2021-3640')!.vendorStatus).toBe('fix_available');
    // Two installed libxml2 versions in the image's layers: two findings.
    expect(findings.filter((f) => f.issueId === 'CVE-2022-29824').map((f) => f.version).sort()).toEqual(['2.9.4+dfsg1-7', '2.9.4+dfsg1-7+b3']);
    // The EC2 instance: a host named by its instance id; CentOS OS packages are rpm.
    const host = findings.filter((f) => f.asset.assetKey === 'host:i-0b22a22eec53b9321');
    expect(host.map((f) => [f.issueId, f.component, f.version, f.fixedVersion, f.ecosystem, f.severity])).toEqual([
      ['CVE-2015-8035', 'libxml2', '2.9.1-6.el7_2.3', '2.9.1-6.el7.4', 'rpm', 'low'],
      ['CVE-2015-8035', 'libxml2-python', '2.9.1-6.el7_2.3', '2.9.1-6.el7.4', 'rpm', 'low'],
    ]);
    expect(host[0]!.asset.kind).toBe('host');
  });

  it('aws_inspector2_package_vuln_metadata.json: Lambda packages and a code finding, 31 findings (DefectDojo 28)', async () => {
    const findings = await parse(fixture('aws_inspector2_package_vuln_metadata.json'));
    expect(findings).toHaveLength(31);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(31);
    expect(ddCount(findings)).toBe(28);
    expect(new Set(findings.map((f) => f.asset.kind))).toEqual(new Set(['other']));
    expect(findings[0]).toMatchObject({
      issueId: 'CVE-2025-58187', component: 'go/stdlib', version: '1.24.4', location: '', manifest: 'extensions/collector',
      fixedVersion: '1.25.3', severity: 'high', cvssScore: 7.5, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
    });
    expect(findings[0]!.references).toEqual(['https://nvd.nist.gov/vuln/detail/CVE-2025-58187', 'https://groups.google.com/g/golang-announce/c/4Emdl2iQ_bI']);
    // One package found installed (its dist-info) and in a requirements file: two findings.
    const requests = findings.filter((f) => f.issueId === 'CVE-2024-47081');
    expect(requests.map((f) => [f.component, f.location, f.manifest, f.ecosystem, f.packageClass])).toEqual([
      ['requests', 'python/requests-2.32.0.dist-info/METADATA', undefined, 'pypi', 'app'],
      ['requests', '', 'requirements.txt', 'pypi', 'app'],
    ]);
    expect(findings.find((f) => f.component === 'github.com/expr-lang/expr')).toMatchObject({ ecosystem: 'golang', version: 'v1.17.6' });
    const code = findings.find((f) => f.issueId === 'python-log-injection')!;
    expect(code).toMatchObject({
      kind: 'vulnerability', component: 'src/project_api/service/api_client.py', version: '',
      location: 'src/project_api/service/api_client.py:268', severity: 'high', cwes: ['CWE-117', 'CWE-93'],
    });
  });

  it('the target names every resource of the file', async () => {
    const findings = await parse(fixture('aws_inspector2_many_vul.json'), 'prod-image');
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['image:prod-image', 'host:prod-image']));
  });
});

describe('aws-inspector2-json: other finding types and forms', () => {
  const base = {
    findingArn: 'arn:aws:inspector2:eu-west-1:111122223333:finding/abc',
    awsAccountId: '111122223333',
    severity: 'MEDIUM',
    status: 'ACTIVE',
    title: 'Port 22 is reachable from an Internet Gateway - TCP',
    resources: [{
      type: 'AWS_EC2_INSTANCE', id: 'i-0123456789abcdef0', region: 'eu-west-1',
      details: { awsEc2Instance: { ipV4Addresses: ['10.0.0.5'], platform: 'AMAZON_LINUX_2' } },
    }],
  };

  it('a network reachability finding is a misconfiguration of the host at its port range', async () => {
    const file = await write('net.json', {
      findings: [{
        ...base,
        type: 'NETWORK_REACHABILITY',
        networkReachabilityDetails: {
          openPortRange: { begin: 22, end: 22 }, protocol: 'TCP',
          networkPath: { steps: [{ componentId: 'igw-1', componentType: 'AWS::EC2::InternetGateway' }, { componentId: 'sg-1', componentType: 'AWS::EC2::SecurityGroup' }] },
        },
      }, {
        ...base,
        status: 'SUPPRESSED',
        type: 'NETWORK_REACHABILITY',
        networkReachabilityDetails: { openPortRange: { begin: 8000, end: 8080 }, protocol: 'TCP' },
      }],
    });
    const findings = await parse(file);
    expect(findings.map((f) => [f.asset.assetKey, f.kind, f.issueId, f.location, f.vendorStatus])).toEqual([
      ['host:i-0123456789abcdef0', 'misconfiguration', 'aws-inspector2:network-reachability', '22/tcp', undefined],
      ['host:i-0123456789abcdef0', 'misconfiguration', 'aws-inspector2:network-reachability', '8000-8080/tcp', 'suppressed'],
    ]);
    expect(findings[0]!.description).toContain('igw-1 -> sg-1');
    expect(await detectedFormats(file)).toEqual([FORMAT]);
  });

  it('Amazon Linux OS packages are rpm; an epoch is kept, a 0: epoch in the fix is dropped', async () => {
    const file = await write('al2.json', {
      findings: [{
        ...base, type: 'PACKAGE_VULNERABILITY',
        packageVulnerabilityDetails: {
          vulnerabilityId: 'CVE-2023-0001',
          cvss: [{ baseScore: 9.8, scoringVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', source: 'NVD', version: '3.1' }, { baseScore: 7.5, scoringVector: 'AV:N/AC:L/Au:N/C:P/I:P/A:P', source: 'NVD', version: '2.0' }],
          vulnerablePackages: [{ name: 'openssl', version: '1.0.2k', release: '24.amzn2', epoch: 1, fixedInVersion: '1:1.0.2k-25.amzn2', packageManager: 'OS' }],
        },
      }],
    });
    const [finding] = await parse(file);
    expect(finding).toMatchObject({ component: 'openssl', version: '1:1.0.2k-24.amzn2', fixedVersion: '1:1.0.2k-25.amzn2', ecosystem: 'rpm', packageClass: 'os', cvssScore: 9.8 });
  });

  it('an empty findings list is zero findings when the format is named; it is not claimed by detection', async () => {
    const file = await write('zero.json', '{\n    "findings": []\n}');
    expect(await parse(file)).toEqual([]);
    expect(await detectedFormats(file)).not.toContain(FORMAT);
  });

  it('refuses what is not an Inspector findings list, naming file and path', async () => {
    expect((await parseError(await write('empty_with_error.json', '{}'))).message)
      .toBe('empty_with_error.json: aws-inspector2-json: findings: missing: not an AWS Inspector v2 findings report');
    expect((await parseError(await write('list.json', '[]'))).message).toMatch(/^list\.json: aws-inspector2-json: expected a JSON object/);
    expect((await parseError(await write('obj.json', { findings: {} }))).message).toBe('obj.json: aws-inspector2-json: findings: expected an array');
    expect((await parseError(await write('type.json', { findings: [{ ...base, type: 'SOMETHING_NEW' }] }))).message)
      .toBe('type.json: aws-inspector2-json: findings[0].type: unsupported finding type "SOMETHING_NEW"');
    expect((await parseError(await write('nores.json', { findings: [{ ...base, resources: [], type: 'PACKAGE_VULNERABILITY' }] }))).message)
      .toBe('nores.json: aws-inspector2-json: findings[0].resources: missing or empty: the finding names no resource');
    expect((await parseError(await write('nopkg.json', { findings: [{ ...base, type: 'PACKAGE_VULNERABILITY', packageVulnerabilityDetails: { vulnerabilityId: 'CVE-1' } }] }))).message)
      .toBe('nopkg.json: aws-inspector2-json: findings[0].packageVulnerabilityDetails.vulnerablePackages: missing or empty');
    const truncated = await write('cut.json', '{"findings": [{"findingArn": "arn:aws:inspector2:x", ');
    expect((await parseError(truncated)).message).toMatch(/^cut\.json: aws-inspector2-json: .*(ends early|not valid JSON)/);
  });

  it('connectorFor picks it for the real samples', async () => {
    for (const name of ['aws_inspector2_many_vul.json', 'aws_inspector2_package_vuln_metadata.json']) {
      expect((await connectorFor(fixture(name), name)).format).toBe(FORMAT);
    }
  });
});

// Detection is exclusive: no file of any other format, in the corpus or the fixtures, is claimed
// by this connector, and its own samples are claimed by it alone.
describeExclusiveDetection({ 'aws-inspector2': FORMAT });
