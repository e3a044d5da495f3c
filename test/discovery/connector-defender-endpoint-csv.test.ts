import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Microsoft Defender for Endpoint software vulnerabilities CSV against the fixture written from the
// documented columns (test/fixtures/defender-endpoint-csv/), detection against every other format,
// and malformed input.

const FORMAT = 'defender-endpoint-csv';
const FIXTURE = fixtureFile('defender-endpoint-csv', 'device-tvm-software-vulnerabilities.csv');
const write = scratchFiles('defender');
const parse = (file: string, target?: string): Promise<NormalizedFinding[]> => parseAs(FORMAT, file, target ? { target } : {});

const HEADER = 'DeviceId,DeviceName,OSPlatform,SoftwareVendor,SoftwareName,SoftwareVersion,CveId,VulnerabilitySeverityLevel';

describe('defender-endpoint-csv: the export', () => {
  it('one finding per row: 6 findings on 3 devices', async () => {
    const findings = await parse(FIXTURE);
    expect(findings).toHaveLength(6);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(6);
    expect([...new Set(findings.map((f) => f.asset.assetKey))]).toEqual([
      'host:ws-0142.corp.contoso.com',
      'host:srv-web01.corp.contoso.com',
      // No DeviceName: the device id names it.
      'host:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567',
    ]);
    expect(new Set(findings.map((f) => f.asset.kind))).toEqual(new Set(['host']));
  });

  it('maps CVE, software, version, severity and the recommended update', async () => {
    const findings = await parse(FIXTURE);
    const windows = findings.find((f) => f.issueId === 'CVE-2023-36884')!;
    expect(windows).toMatchObject({
      kind: 'vulnerability', component: 'windows_10', version: '10.0.19045.3570', location: '', severity: 'high',
      vendorStatus: 'fix_available', packageClass: 'os', sourcePackage: 'windows_10',
      title: 'CVE-2023-36884 - microsoft windows_10 10.0.19045.3570',
      description: 'Recommended security update: October 2023 Security Updates (5031356)',
    });
    expect(windows.fixedVersion).toBeUndefined();
    expect(windows.cvssScore).toBeUndefined();
    const chrome = findings.filter((f) => f.component === 'chrome');
    expect(chrome.map((f) => [f.issueId, f.severity, f.packageClass])).toEqual([
      ['CVE-2023-5217', 'high', 'app'],
      ['CVE-2023-5346', 'medium', 'app'],
    ]);
    // No security update exists (CveTags NoSecurityUpdate): no fix status.
    const jre = findings.find((f) => f.component === 'jre')!;
    expect(jre).toMatchObject({ issueId: 'CVE-2023-22049', severity: 'low', version: '8.0.3810.9' });
    expect(jre.vendorStatus).toBeUndefined();
    expect(jre.description).toBeUndefined();
  });

  it('the target names only devices the export leaves unnamed', async () => {
    const findings = await parse(FIXTURE, 'ignored-name');
    expect(new Set(findings.map((f) => f.asset.assetKey)).size).toBe(3);
    const file = await write('unnamed.csv', `${HEADER}\n,,Linux,canonical,openssl,3.0.2,CVE-2023-3817,Medium\n`);
    expect((await parse(file, 'build-01'))[0]!.asset.assetKey).toBe('host:build-01');
  });

  it('a CvssScore column (joined from the KB table) gives the score, and the severity when the level is empty', async () => {
    const file = await write('kb.csv', `${HEADER},CvssScore,VulnerabilityDescription\n` +
      'id1,pc1.contoso.com,Windows11,google,chrome,118.0.1,CVE-2023-4863,,8.8,"Heap buffer overflow in libwebp"\n' +
      'id1,pc1.contoso.com,Windows11,google,chrome,118.0.1,CVE-2023-5217,Critical,8.8,\n');
    const [first, second] = await parse(file);
    expect(first).toMatchObject({ cvssScore: 8.8, severity: 'high', description: 'Heap buffer overflow in libwebp' });
    expect(second).toMatchObject({ cvssScore: 8.8, severity: 'critical' });
  });

  it("Defender's own TVM ids stand where there is no CVE", async () => {
    const file = await write('tvm.csv', `${HEADER}\nid1,pc1.contoso.com,Windows11,microsoft,windows_11,10.0.22621.2428,tvm-2020-0002,Medium\n`);
    expect((await parse(file))[0]).toMatchObject({ issueId: 'TVM-2020-0002', packageClass: 'os', severity: 'medium' });
  });

  it('is chosen by detection', async () => {
    expect(await detectedFormats(FIXTURE)).toEqual([FORMAT]);
    expect((await connectorFor(FIXTURE, 'export.csv')).format).toBe(FORMAT);
  });
});

describe('defender-endpoint-csv: bad input', () => {
  it('a missing required column is named', async () => {
    const file = await write('no-cve.csv', 'DeviceId,DeviceName,SoftwareName,SoftwareVersion\nid1,pc1,chrome,1\n');
    const err = await parseErrorAs(FORMAT, file);
    expect(err.message).toBe('no-cve.csv: defender-endpoint-csv: CveId: required column "CveId" is missing from the header row');
  });

  it('a shifted row is refused with its line', async () => {
    const file = await write('shifted.csv', `${HEADER}\nid1,pc1.contoso.com,Windows11,google,chrome,118.0.1,CVE-2023-5217,High\nid1,pc1.contoso.com,Windows11,google,chrome,118,0,1,CVE-2023-4863,High\n`);
    const err = await parseErrorAs(FORMAT, file);
    expect(err.message).toBe('shifted.csv: defender-endpoint-csv: line 3 has 10 columns, the header row (line 1) has 8');
  });

  it('a cell that is not a CVE id, an empty software name, a bad score, no device', async () => {
    const row = (cells: string) => write('bad.csv', `${HEADER},CvssScore\n${cells}\n`);
    expect((await parseErrorAs(FORMAT, await row('id1,pc1,Windows11,google,chrome,1,Medium,CVE-2023-5217,'))).message)
      .toBe('bad.csv: defender-endpoint-csv: CveId: "Medium" on line 2 is not a CVE or TVM id');
    expect((await parseErrorAs(FORMAT, await row('id1,pc1,Windows11,google,,1,CVE-2023-5217,High,'))).message)
      .toBe('bad.csv: defender-endpoint-csv: SoftwareName: empty on line 2');
    expect((await parseErrorAs(FORMAT, await row('id1,pc1,Windows11,google,chrome,1,CVE-2023-5217,High,high'))).message)
      .toBe('bad.csv: defender-endpoint-csv: CvssScore: "high" on line 2 is not a CVSS score (0-10)');
    expect((await parseErrorAs(FORMAT, await row(',,Windows11,google,chrome,1,CVE-2023-5217,High,'))).message)
      .toBe('bad.csv: defender-endpoint-csv: DeviceName: no device name or id on line 2');
  });
});

describeExclusiveDetection({ 'defender-endpoint-csv': FORMAT });
