import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { connectorFor, parseReport, type NormalizedFinding, type ParseWarning } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Microsoft Defender for Cloud vulnerability sub-assessments against Microsoft's published API and
// documentation samples and DefectDojo's parser samples (test/fixtures/defender-cloud/), detection
// against every other format, and malformed input.

const FORMAT = 'defender-cloud-json';
const fixture = (name: string) => fixtureFile('defender-cloud', name);
const write = scratchFiles('defender-cloud');

async function parseWarned(file: string, target?: string): Promise<{ findings: NormalizedFinding[]; warnings: ParseWarning[] }> {
  const warnings: ParseWarning[] = [];
  const findings = await parseAs(FORMAT, file, { warn: (w) => warnings.push(w), ...(target ? { target } : {}) });
  return { findings, warnings };
}
const parse = async (file: string, target?: string) => (await parseWarned(file, target)).findings;
const json = async (name: string) => JSON.parse(await readFile(fixture(name), 'utf8')) as unknown;

/** A Defender Vulnerability Management server finding, as the DefectDojo sample writes it. */
const serverRow = (over: Record<string, unknown> = {}) => ({
  id: '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Security/assessments/a1/subAssessments/x1',
  name: 'x1',
  type: 'Microsoft.Security/assessments/subAssessments',
  properties: {
    id: 'CVE-2024-3094',
    displayName: 'CVE-2024-3094',
    status: { code: 'Unhealthy', severity: 'Critical' },
    resourceDetails: { source: 'Azure', id: '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1' },
    additionalData: { assessedResourceType: 'ServerVulnerabilityTvm', softwareName: 'xz-utils', softwareVersion: '5.6.0', softwareVendor: 'tukaani', recommendedVersion: '5.6.1' },
    ...over,
  },
});

describe('defender-cloud-json: Microsoft samples', () => {
  it('REST list, Qualys-based registry scanner: one finding on the image, the check named by its CVE', async () => {
    const { findings, warnings } = await parseWarned(fixture('rest-list-subscription-subassessments.json'));
    expect(warnings).toEqual([]);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      // The registry's resource names the registry; its login server is <name>.azurecr.io.
      asset: { assetKey: 'image:myregistry.azurecr.io/myRepo@c186fc44-3154-4ce2-ba18-b719d895c3b0', kind: 'container_image' },
      kind: 'vulnerability', issueId: 'CVE-2019-12345', component: "'Back Orifice' Backdoor", version: '', location: '',
      severity: 'high', cvssScore: 10, vendorStatus: 'fix_available', title: "'Back Orifice' Backdoor", references: ['http://contoso.com'],
    });
    // A digest that is not sha256:<hex> names the image but is no image digest.
    expect(findings[0]!.asset.digest).toBeUndefined();
    expect(findings[0]!.aliases).toBeUndefined();
    expect(findings[0]!.fixedVersion).toBeUndefined();
    expect(findings[0]!.description).toMatch(/^The backdoor 'Back Orifice' was detected[\s\S]*\n\nRemediation: Use a recent anti-virus program/);
  });

  it('REST list, SQL vulnerability assessment: Healthy is skipped with a warning', async () => {
    const { findings, warnings } = await parseWarned(fixture('rest-list-subassessments-sql.json'));
    expect(findings).toEqual([]);
    expect(warnings).toEqual([{ file: 'rest-list-subassessments-sql.json', format: FORMAT, field: 'value[0]', reason: '1 skipped: status.code Healthy: the resource passes this check' }]);
  });

  it('Resource Graph rows, AWS ECR image: package, fix, advisory alias, CVSS 3.1', async () => {
    const { findings, warnings } = await parseWarned(fixture('arg-mdvm-aws.json'));
    expect(warnings).toEqual([]);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      asset: {
        assetKey: 'image:544047870946.dkr.ecr.us-east-1.amazonaws.com/mc/va/eastus/verybigimage:latest', kind: 'container_image',
        digest: 'sha256:87e18285c301bc09b7f2da126992475eb0c536d38272aa0a7066324b7dda3d87',
      },
      kind: 'vulnerability', issueId: 'CVE-2023-32700', aliases: ['USN-6115-1'], component: 'libptexenc1', version: '2019.20190605.51237-3build2', location: '',
      fixedVersion: '2019.20190605.51237-3ubuntu0.1', fixSource: 'scanner', vendorStatus: 'fix_available',
      severity: 'high', cvssScore: 7.8, cvssVector: 'CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H',
      ecosystem: 'deb', packageClass: 'os', title: 'CVE-2023-32700 - libptexenc1 2019.20190605.51237-3build2',
    });
    expect(findings[0]!.references).toHaveLength(7);
    expect(findings[0]!.references).toContain('https://ubuntu.com/security/notices/USN-6115-1');
  });

  it('Resource Graph rows, GCP Artifact Registry image: temporal metrics dropped from the vector, CWE kept', async () => {
    const [finding, ...rest] = await parse(fixture('arg-mdvm-gcp.json'));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      asset: { assetKey: 'image:us-central1-docker.pkg.dev/detection-stg-manual-tests-2/hital/nginx:1.12' },
      issueId: 'CVE-2017-11613', aliases: ['DSA-4349-1'], component: 'tiff', version: '4.0.8-2+deb9u2', fixedVersion: '4.0.8-2+deb9u4',
      severity: 'low', cvssScore: 3.3, cvssVector: 'CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:L', cwes: ['CWE-20'], ecosystem: 'deb',
    });
  });

  it('Resource Graph rows, Azure registry image: the exempt row is skipped; made Unhealthy it is a Python finding with its GHSA', async () => {
    const { findings, warnings } = await parseWarned(fixture('arg-mdvm-azure.json'));
    expect(findings).toEqual([]);
    expect(warnings.map((w) => [w.field, w.reason])).toEqual([['[0]', '1 skipped: status.code NotApplicable: the check does not apply to the resource (or is exempt)']]);

    const rows = await json('arg-mdvm-azure.json') as { properties: { status: Record<string, unknown> } }[];
    rows[0]!.properties.status = { severity: 'High', code: 'Unhealthy' };
    const [finding, ...rest] = await parse(await write('azure-unhealthy.json', rows));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      asset: { assetKey: 'image:ptebic.azurecr.io/public/azureml/aifx/stable-ubuntu2004-cu117-py39-torch200:biweekly.202309.1' },
      issueId: 'CVE-2022-42969', aliases: ['GHSA-w596-4wvx-j9j6'], component: 'py', version: '1.11.0.0', ecosystem: 'pypi', packageClass: 'app',
      // FixAvailable, but the fixed version is empty: the status says so, no version is invented.
      vendorStatus: 'fix_available', severity: 'high', cvssScore: 7.5, cwes: ['CWE-1333'],
    });
    expect(finding!.fixedVersion).toBeUndefined();
  });

  it('the same image digest from two clouds\' rows keys its own image each', async () => {
    const aws = await json('arg-mdvm-aws.json') as unknown[];
    const gcp = await json('arg-mdvm-gcp.json') as unknown[];
    const findings = await parse(await write('both.json', { count: 2, data: [...aws, ...gcp], skip_token: null }));
    expect(findings.map((f) => f.issueId)).toEqual(['CVE-2023-32700', 'CVE-2017-11613']);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(2);
  });
});

describe('defender-cloud-json: DefectDojo samples', () => {
  it('defender_for_cloud_many_vuln.json: 3 findings of 6 (DefectDojo 3), 3 skipped with warnings', async () => {
    const { findings, warnings } = await parseWarned(fixture('defender_for_cloud_many_vuln.json'));
    expect(findings).toHaveLength(3);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(3);
    // The server: a host keyed by its Azure resource id (lower-cased), named by the VM.
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'cloud:/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/example-rg/providers/microsoft.compute/virtualmachines/web-node-1', kind: 'host', name: 'web-node-1' },
      issueId: 'CVE-2000-0001', component: 'openssl', version: '3.0.2', fixedVersion: '3.0.13', fixSource: 'scanner', vendorStatus: 'fix_available',
      severity: 'high', cvssScore: 9.8, cvssVector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', packageClass: 'app', sourcePackage: 'openssl',
      title: 'CVE-2000-0001 - openssl 3.0.2',
    });
    // The registry image: no tag, so named by digest; only a CVSS 2.0 score, so none is kept.
    expect(findings[1]).toMatchObject({
      asset: { assetKey: 'image:exampleacr.azurecr.example.com/generic-app@sha256:0000000000000000000000000000000000000000000000000000000000000001', kind: 'container_image' },
      issueId: 'CVE-2000-0002', component: 'libxml2', version: '2.9.13', fixedVersion: '2.9.14', severity: 'medium', ecosystem: 'deb', packageClass: 'os',
    });
    expect(findings[1]!.cvssScore).toBeUndefined();
    // An unknown type that names a CVE: kept, on the resource as named; its severity is no label.
    expect(findings[2]).toMatchObject({ asset: { assetKey: 'asset:web-node-3', kind: 'other' }, issueId: 'CVE-2000-0005', severity: 'unknown', component: "A future scanner's finding" });
    expect(warnings.map((w) => [w.field, w.reason])).toEqual([
      ['value[2]', '1 skipped: assessedResourceType "GeneralVulnerability" names no CVE: not a vulnerability finding'],
      ['value[3]', '1 skipped: status.code Healthy: the resource passes this check'],
      ['value[5]', '1 skipped: assessedResourceType "SomeFutureConfigurationCheck" names no CVE: not a vulnerability finding'],
    ]);
  });

  it('defender_for_cloud_no_vuln.json: nothing, every row accounted for', async () => {
    const { findings, warnings } = await parseWarned(fixture('defender_for_cloud_no_vuln.json'));
    expect(findings).toEqual([]);
    expect(warnings).toHaveLength(3);
    // Through parseReport (as ingest reads it): the skips, then the shared check that a document
    // naming a CVE gave nothing; the skip warnings say why.
    const all: ParseWarning[] = [];
    const connector = await connectorFor(fixture('defender_for_cloud_no_vuln.json'), 'no_vuln.json');
    for await (const _ of parseReport(connector, fixture('defender_for_cloud_no_vuln.json'), 'no_vuln.json', { warn: (w) => all.push(w) })) { /* none */ }
    expect(all.map((w) => w.reason)).toEqual([
      '1 skipped: assessedResourceType "GeneralVulnerability" names no CVE: not a vulnerability finding',
      '1 skipped: status.code Healthy: the resource passes this check',
      '1 skipped: assessedResourceType "SomeFutureConfigurationCheck" names no CVE: not a vulnerability finding',
      '0 findings, yet the document names 1 vulnerability id (e.g. CVE-2000-0004)',
    ]);
  });

  it('the target names every resource of the file', async () => {
    const findings = await parse(fixture('defender_for_cloud_many_vuln.json'), 'Prod-1');
    expect(findings.map((f) => f.asset.assetKey)).toEqual(['host:prod-1', 'image:Prod-1', 'asset:Prod-1']);
  });

  it('is chosen by detection', async () => {
    for (const name of ['rest-list-subscription-subassessments.json', 'rest-list-subassessments-sql.json', 'arg-mdvm-azure.json', 'arg-mdvm-aws.json', 'arg-mdvm-gcp.json', 'defender_for_cloud_many_vuln.json', 'defender_for_cloud_no_vuln.json']) {
      expect(await detectedFormats(fixture(name)), name).toEqual([FORMAT]);
      expect((await connectorFor(fixture(name), name)).format).toBe(FORMAT);
    }
  });
});

describe('defender-cloud-json: shapes and rules', () => {
  it('several CVEs on one check: one finding each, and no advisory alias', async () => {
    const row = serverRow({
      id: '105943', displayName: 'EOL/Obsolete Software: OpenSSL',
      additionalData: {
        assessedResourceType: 'ServerVulnerabilityAssessment', patchable: false,
        cve: [{ title: 'CVE-2016-2105', link: 'https://nvd.nist.gov/vuln/detail/CVE-2016-2105' }, { title: 'cve-2016-2106' }, { title: 'CVE-2016-2105' }],
        cvss: { '2.0': { base: 5 }, '3.0': { base: 7.5 } },
      },
    });
    const findings = await parse(await write('multi.json', { value: [row] }));
    expect(findings.map((f) => [f.issueId, f.component, f.title, f.severity, f.cvssScore, f.aliases])).toEqual([
      ['CVE-2016-2105', 'EOL/Obsolete Software: OpenSSL', 'EOL/Obsolete Software: OpenSSL', 'critical', 7.5, undefined],
      ['CVE-2016-2106', 'EOL/Obsolete Software: OpenSSL', 'EOL/Obsolete Software: OpenSSL', 'critical', 7.5, undefined],
    ]);
    expect(findings.every((f) => f.asset.assetKey === 'cloud:/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1' && f.asset.kind === 'host')).toBe(true);
    expect(findings[0]!.vendorStatus).toBeUndefined();
  });

  it('a Qualys check without a CVE is keyed by its QID, as the Qualys connectors key it', async () => {
    const row = serverRow({ id: '38173', displayName: 'SSL Certificate - Signature Verification Failed', status: { code: 'Unhealthy', severity: 'Low' }, additionalData: { assessedResourceType: 'ServerVulnerabilityAssessment', cve: [] } });
    const [finding] = await parse(await write('qid.json', { value: [row] }));
    expect(finding).toMatchObject({ issueId: 'qualys:38173', component: 'SSL Certificate - Signature Verification Failed', severity: 'low', asset: { kind: 'host' } });
  });

  it('an Unhealthy SQL rule is a misconfiguration of the database', async () => {
    const body = await json('rest-list-subassessments-sql.json') as { value: { properties: { status: Record<string, unknown> } }[] };
    body.value[0]!.properties.status.code = 'Unhealthy';
    const [finding, ...rest] = await parse(await write('sql.json', body));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      asset: { assetKey: 'cloud:/subscriptions/212f9889-769e-45ae-ab43-6da33674bd26/resourcegroups/ascdemorg/providers/microsoft.sql/servers/sqlserver1demo/databases/database1', kind: 'other', name: 'database1' },
      kind: 'misconfiguration', issueId: 'VA2064', component: 'SQL vulnerability assessment', version: '', severity: 'high',
      title: 'VA2064 - Database-level firewall rules should be tracked and maintained at a strict minimum',
    });
  });

  it('the resource comes from the sub-assessment id when resourceDetails names none; Windows is an OS package', async () => {
    const row = serverRow({
      resourceDetails: { source: 'Azure' },
      additionalData: { assessedResourceType: 'ServerVulnerabilityTvm', softwareName: 'windows_server_2019', softwareVendor: 'microsoft', softwareVersion: '10.0.17763.5122' },
    });
    const [finding] = await parse(await write('rowid.json', [row]));
    expect(finding).toMatchObject({ asset: { assetKey: 'cloud:/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1', name: 'vm1' }, packageClass: 'os', severity: 'critical' });
    expect(finding!.fixedVersion).toBeUndefined();
  });

  it('skips are counted per reason, one warning each', async () => {
    const rows = [serverRow(), serverRow({ status: { code: 'Healthy' } }), serverRow({ status: { code: 'Healthy' } }), serverRow({ status: { code: 'NotApplicable' } })];
    const { findings, warnings } = await parseWarned(await write('skips.json', { value: rows }));
    expect(findings).toHaveLength(1);
    expect(warnings.map((w) => [w.field, w.reason])).toEqual([
      ['value[1]', '2 skipped: status.code Healthy: the resource passes this check (first shown)'],
      ['value[3]', '1 skipped: status.code NotApplicable: the check does not apply to the resource (or is exempt)'],
    ]);
  });

  it('reads an empty list, and a Resource Graph response', async () => {
    expect(await parse(await write('empty.json', { value: [], nextLink: null }))).toEqual([]);
    expect(await parse(await write('empty-rows.json', []))).toEqual([]);
    const findings = await parse(await write('arg.json', { totalRecords: 1, count: 1, data: [serverRow()], facets: [], resultTruncated: 'false' }));
    expect(findings.map((f) => [f.issueId, f.fixedVersion])).toEqual([['CVE-2024-3094', '5.6.1']]);
  });
});

describe('defender-cloud-json: bad input', () => {
  it('names the sub-assessment and field at fault', async () => {
    const error = async (value: unknown) => (await parseErrorAs(FORMAT, await write('bad.json', { value }))).message;
    const { properties } = serverRow();
    expect(await error([{ id: 'x' }])).toBe('bad.json: defender-cloud-json: value[0].properties: missing');
    expect(await error([serverRow(), { properties: { ...properties, status: undefined } }])).toBe('bad.json: defender-cloud-json: value[1].properties.status: missing');
    expect(await error([{ properties: { ...properties, status: { severity: 'High' } } }])).toBe('bad.json: defender-cloud-json: value[0].properties.status.code: missing');
    expect(await error([{ properties: { ...properties, status: { code: 'Broken' } } }]))
      .toBe('bad.json: defender-cloud-json: value[0].properties.status.code: unknown status "Broken" (expected Unhealthy, Healthy or NotApplicable)');
    expect(await error([{ properties: { ...properties, resourceDetails: {} } }])).toBe('bad.json: defender-cloud-json: value[0].properties.resourceDetails.id: missing: the assessed resource is not named (pass a target)');
    expect(await error([{ properties: { ...properties, additionalData: { assessedResourceType: 'AzureContainerRegistryVulnerability', vulnerabilityDetails: { cveId: 'CVE-2024-1' }, artifactDetails: { registryHost: 'r.azurecr.io' } } } }]))
      .toBe('bad.json: defender-cloud-json: value[0].properties.additionalData.artifactDetails.repositoryName: missing: the image is not named (pass a target)');
    expect(await error([{ properties: { ...properties, additionalData: { assessedResourceType: 'SqlServerVulnerability' }, id: undefined } }]))
      .toBe('bad.json: defender-cloud-json: value[0].properties.id: missing: the rule id of a SQL vulnerability assessment');
    expect(await error(['x'])).toBe('bad.json: defender-cloud-json: value[0]: expected an object');
    expect(await error({})).toBe('bad.json: defender-cloud-json: value: expected an array');
  });

  it('a document without a list, a scalar, a truncated file', async () => {
    expect((await parseErrorAs(FORMAT, await write('nolist.json', serverRow()))).message)
      .toBe('nolist.json: defender-cloud-json: value: missing: not a Defender for Cloud sub-assessments list ({"value": [...]} or {"data": [...]})');
    expect((await parseErrorAs(FORMAT, await write('scalar.json', '"x"'))).message)
      .toBe('scalar.json: defender-cloud-json: expected a JSON object {"value": [...]} or {"data": [...]}, or an array of sub-assessments');
    const cut = JSON.stringify({ value: [serverRow()] }).slice(0, 200);
    expect((await parseErrorAs(FORMAT, await write('cut.json', cut))).message).toMatch(/^cut\.json: defender-cloud-json: /);
  });
});

describeExclusiveDetection({ 'defender-cloud': FORMAT });
