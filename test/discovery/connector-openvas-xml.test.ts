import { describe, expect, it } from 'vitest';
import { connectorFor, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { describeExclusiveDetection, detectedFormats, fixtureFile, parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// OpenVAS / Greenbone report XML against DefectDojo's real samples (test/fixtures/openvas-xml/),
// against every other corpus format (detection), and against malformed input.

const FORMAT = 'openvas-xml';
const fixture = (name: string) => fixtureFile('openvas-xml', name);
const write = scratchFiles('openvas');
const parse = (file: string, target?: string): Promise<NormalizedFinding[]> => parseAs(FORMAT, file, target ? { target } : {});
const parseError = (file: string) => parseErrorAs(FORMAT, file);

const ddCount = (findings: NormalizedFinding[]) => new Set(findings.map((f) => `${f.asset.assetKey}\x1f${f.location}\x1f${f.title}`)).size;

const envelope = (results: string, extra = '') =>
  `<report id="r" format_id="a994b278-1f62-11e1-96ac-406186ea4fc5" extension="xml" content_type="text/xml"><report_format id="f"><name>XML</name></report_format>`
  + `<report id="r2">${extra}<results start="1" max="-1">${results}</results></report></report>`;

const result = (body: string) => `<result id="x">${body}</result>`;

describe('openvas-xml: DefectDojo samples', () => {
  it('many_vuln.xml: 44 results on one host, 76 findings (DefectDojo 44)', async () => {
    const findings = await parse(fixture('many_vuln.xml'));
    expect(findings).toHaveLength(76);
    expect(new Set(findings.map(storedFingerprint)).size).toBe(76);
    expect(ddCount(findings)).toBe(44);
    // Every result names the host by its host name as well as its IP: the name is the identity.
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['host:b6b9f466d63']));
    expect(findings.filter((f) => f.title === 'FTP Brute Force Logins Reporting').map((f) => f.location))
      .toEqual([...Array(8).fill('21/tcp'), ...Array(8).fill('2121/tcp')]);
    const rexec = findings.find((f) => f.issueId === 'CVE-1999-0618')!;
    expect(rexec).toMatchObject({ kind: 'vulnerability', component: 'The rexec service is running', version: '', location: '512/tcp', severity: 'high' });
    // A check without a CVE is keyed by its NVT OID; a host-level one sits on general/tcp.
    expect(findings.find((f) => f.issueId === 'openvas:1.3.6.1.4.1.25623.1.0.103674')!.location).toBe('general/tcp');
    // "Installed version / Fixed version" in the result give the version and the fix.
    const twiki = findings.find((f) => f.issueId === 'CVE-2008-5304')!;
    expect(twiki).toMatchObject({ version: '01.Feb.2003', fixedVersion: '4.2.4', fixSource: 'text' });
    const severities = new Map<string, number>();
    for (const f of findings) severities.set(f.severity, (severities.get(f.severity) ?? 0) + 1);
    expect([...severities.keys()].sort()).toEqual(['high', 'medium']);
  });

  it('report_detail_v2.xml: one result listing 93 CVEs, with a CVSS v3 rating (DefectDojo 1)', async () => {
    const findings = await parse(fixture('report_detail_v2.xml'));
    expect(findings).toHaveLength(93);
    expect(ddCount(findings)).toBe(1);
    expect(new Set(findings.map((f) => f.issueId)).size).toBe(93);
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'host:server99', kind: 'host', name: 'server99' },
      issueId: 'CVE-2025-49659', component: 'Microsoft Windows Multiple Vulnerabilities (KB5062557)', location: '42/tcp',
      severity: 'high', cvssScore: 9.8, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    });
  });

  it('both samples are detected as openvas-xml only', async () => {
    for (const name of ['many_vuln.xml', 'report_detail_v2.xml']) {
      expect(await detectedFormats(fixture(name))).toEqual([FORMAT]);
      expect((await connectorFor(fixture(name), name)).format).toBe(FORMAT);
    }
  });
});

describe('openvas-xml: forms', () => {
  const nvt = (refs = '') => `<nvt oid="1.3.6.1.4.1.25623.1.0.1"><name>Check</name><cvss_base>5.0</cvss_base><tags>summary=S|cvss_base_vector=AV:N/AC:L/Au:N/C:P/I:N/A:N|solution=Upgrade to version 2.0 or later.</tags><refs>${refs}</refs></nvt>`;

  it('host identity: the host name, else the IP; threat Log is info; a v2-only rating gives no score', async () => {
    const file = await write('forms.xml', envelope(
      result(`<host>10.0.0.7<asset asset_id=""/><hostname>Web01.Example.COM</hostname></host><port>443/tcp</port>${nvt('<ref type="cve" id="CVE-2024-0001"/><ref type="url" id="https://example.com/a"/>')}<threat>Medium</threat><severity>5.0</severity><description>Installed version: 1.2\nFixed version: None</description>`)
      + result(`<host>10.0.0.8<asset asset_id=""/><hostname></hostname></host><port>general/tcp</port>${nvt()}<threat>Log</threat><severity>0.0</severity><description/>`)
      + result(`<host>10.0.0.9</host><port>80/tcp</port>${nvt()}<threat>False Positive</threat><severity>-1</severity><original_threat>Low</original_threat>`),
    ));
    const findings = await parse(file);
    expect(findings.map((f) => [f.asset.assetKey, f.issueId, f.location, f.severity, f.version, f.fixedVersion, f.vendorStatus])).toEqual([
      ['host:web01.example.com', 'CVE-2024-0001', '443/tcp', 'medium', '1.2', '2.0', undefined],
      ['host:10.0.0.8', 'openvas:1.3.6.1.4.1.25623.1.0.1', 'general/tcp', 'info', '', '2.0', undefined],
      ['host:10.0.0.9', 'openvas:1.3.6.1.4.1.25623.1.0.1', '80/tcp', 'low', '', '2.0', 'false_positive'],
    ]);
    expect(findings[0]!.references).toEqual(['https://example.com/a']);
    expect(findings[0]!.cvssScore).toBeUndefined();
    expect(findings[0]!.cvssVector).toBeUndefined();
  });

  it('a report without results is zero findings; one whose results are missing is refused', async () => {
    expect(await parse(await write('none.xml', envelope('')))).toEqual([]);
    const noResults = await write('noresults.xml', '<report id="r" format_id="f"><report_format id="f"/><report id="r2"><hosts><count>0</count></hosts></report></report>');
    expect((await parseError(noResults)).message).toMatch(/^noresults\.xml: openvas-xml: report\/results: missing/);
  });

  it('refuses a result without host or NVT, and another XML root, naming file and field', async () => {
    expect((await parseError(await write('nohost.xml', envelope(result(`<port>80/tcp</port>${nvt()}`))))).message)
      .toMatch(/^nohost\.xml: openvas-xml: result\.host: missing/);
    expect((await parseError(await write('nonvt.xml', envelope(result('<host>10.0.0.1</host><port>80/tcp</port>'))))).message)
      .toMatch(/^nonvt\.xml: openvas-xml: result\.nvt@oid: missing/);
    expect((await parseError(await write('other.xml', '<NessusClientData_v2/>'))).message)
      .toBe('other.xml: openvas-xml: NessusClientData_v2: root element is <NessusClientData_v2>, expected <report>');
    expect((await parseError(await write('cut.xml', envelope(result('<host>10.0.0.1</host>')).slice(0, 200)))).message).toMatch(/^cut\.xml: openvas-xml: /);
  });

  it('the target names only a host the report does not name', async () => {
    const file = await write('anon.xml', envelope(result(`<host></host><port>80/tcp</port>${nvt()}<threat>High</threat>`)));
    expect((await parse(file, 'scanned-box'))[0]!.asset.assetKey).toBe('host:scanned-box');
  });
});

// Detection is exclusive: no file of another format, in the corpus or the fixtures, is claimed.
describeExclusiveDetection({ 'openvas-xml': FORMAT });
