import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Microsoft Defender for Endpoint API JSON against DefectDojo's real samples
// (test/fixtures/defender-endpoint-json/), detection against every other format, and malformed input.

const FORMAT = 'defender-endpoint-json';
const fixture = (name: string) => fixtureFile('defender-endpoint-json', name);
const write = scratchFiles('defender-json');
const parse = (file: string, target?: string): Promise<NormalizedFinding[]> => parseAs(FORMAT, file, target ? { target } : {});
const page = (value: unknown) => ({ '@odata.context': 'https://api.securitycenter.microsoft.com/api/$metadata#Collection(microsoft.windowsDefenderATP.api.PublicAssetVulnerabilityDto)', value });
const entry = { id: 'm1-_-CVE-2023-36884-_-microsoft-_-windows_10-_-10.0.19045.3570-_-', cveId: 'CVE-2023-36884', machineId: 'm1', fixingKbId: '5031356', productName: 'windows_10', productVendor: 'microsoft', productVersion: '10.0.19045.3570', severity: 'High' };

describe('defender-endpoint-json: DefectDojo samples', () => {
  it('report_many_vulns.json: 4 findings on one machine (DefectDojo 4)', async () => {
    const findings = await parse(fixture('report_many_vulns.json'));
    expect(findings).toHaveLength(4);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(4);
    expect(findings.map((f) => [f.issueId, f.severity])).toEqual([
      ['CVE-1234-5678', 'low'], ['CVE-1234-56788', 'high'], ['CVE-5678-9887', 'medium'], ['CVE-5678-8888', 'medium'],
    ]);
    // DefectDojo titles the third "CVE-5678-9887_wjeriowerjoiewrjoweirjeowij" (CVE and machine id):
    // here the machine id is the asset and the title names the product.
    expect(findings[2]).toMatchObject({
      asset: { assetKey: 'host:wjeriowerjoiewrjoweirjeowij', kind: 'host' },
      kind: 'vulnerability', component: 'tools', version: '1.2.3.4', location: '', packageClass: 'app', sourcePackage: 'tools',
      title: 'CVE-5678-9887 - packagvendor tools 1.2.3.4',
    });
    // fixingKbId null: no fix known.
    expect(findings.every((f) => f.vendorStatus === undefined && f.description === undefined && f.fixedVersion === undefined)).toBe(true);
  });

  it('report_one_vuln.json: 1 finding; report_no_vuln.json: none', async () => {
    const [one, ...rest] = await parse(fixture('report_one_vuln.json'));
    expect(rest).toEqual([]);
    expect(one).toMatchObject({ issueId: 'CVE-1234-5678', severity: 'low', asset: { assetKey: 'host:fjweoifjewiofjweoifjeowifjowei' } });
    expect(await parse(fixture('report_no_vuln.json'))).toEqual([]);
  });

  it('a fixing KB is the recommended update; Windows is an OS package', async () => {
    const [finding] = await parse(await write('kb.json', page([entry])));
    expect(finding).toMatchObject({ vendorStatus: 'fix_available', description: 'Recommended security update: KB5031356', packageClass: 'os', severity: 'high' });
  });

  it('the target names only entries without a machine id', async () => {
    expect((await parse(fixture('report_one_vuln.json'), 'pc1'))[0]!.asset.assetKey).toBe('host:fjweoifjewiofjweoifjeowifjowei');
    const [finding] = await parse(await write('nomachine.json', page([{ ...entry, machineId: null }])), 'pc1');
    expect(finding!.asset.assetKey).toBe('host:pc1');
  });

  it('is chosen by detection', async () => {
    for (const name of ['report_many_vulns.json', 'report_one_vuln.json', 'report_no_vuln.json']) {
      expect(await detectedFormats(fixture(name))).toEqual([FORMAT]);
      expect((await connectorFor(fixture(name), name)).format).toBe(FORMAT);
    }
  });
});

describe('defender-endpoint-json: bad input', () => {
  it('names the entry and field at fault', async () => {
    const error = async (value: unknown) => (await parseErrorAs(FORMAT, await write('bad.json', page(value)))).message;
    expect(await error([{ ...entry, cveId: null }])).toBe('bad.json: defender-endpoint-json: value[0].cveId: missing');
    expect(await error([entry, { ...entry, cveId: 'High' }])).toBe('bad.json: defender-endpoint-json: value[1].cveId: "High" is not a CVE or TVM id');
    expect(await error([{ ...entry, productName: '' }])).toBe('bad.json: defender-endpoint-json: value[0].productName: empty');
    expect(await error([{ ...entry, productVersion: 10 }])).toBe('bad.json: defender-endpoint-json: value[0].productVersion: expected a string, got 10');
    expect(await error([{ ...entry, machineId: null }])).toBe('bad.json: defender-endpoint-json: value[0].machineId: missing: no machine id and no target');
    expect(await error(['x'])).toBe('bad.json: defender-endpoint-json: value[0]: expected an object');
    expect(await error({})).toBe('bad.json: defender-endpoint-json: value: expected an array');
  });

  it('a page without value, a truncated file', async () => {
    const { value: _, ...noValue } = page([]);
    expect((await parseErrorAs(FORMAT, await write('novalue.json', noValue))).message)
      .toBe('novalue.json: defender-endpoint-json: value: missing: not a Defender for Endpoint API response');
    const cut = JSON.stringify(page([entry])).slice(0, 150);
    expect((await parseErrorAs(FORMAT, await write('cut.json', cut))).message).toMatch(/^cut\.json: defender-endpoint-json: /);
  });
});

describeExclusiveDetection({ 'defender-endpoint-json': FORMAT });
