import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, describe, expect, it } from 'vitest';
import { connectorFor, connectors, readHead } from '../../discovery/connectors/index.js';
import { ReportError, type NormalizedFinding } from '../../discovery/model.js';
import { storedFingerprint } from './fingerprints.js';
import { corpusDir, corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';

// Streaming XML and CSV connectors: Nessus XML, Nessus/Tenable CSV, Qualys XML and CSV, CycloneDX
// XML. Real DefectDojo sample reports where the corpus is present, own fixtures for the rest.

const MY_FORMATS = ['nessus', 'tenable-csv', 'tenable-vm-csv', 'qualys-xml', 'qualys-csv', 'qualys-pci-csv', 'cyclonedx-xml'] as const;
const tmp = mkdtempSync(join(tmpdir(), 'connectors-xml-csv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const connector = (format: string) => {
  const found = connectors.find((c) => c.format === format);
  if (!found) throw new Error(`no connector ${format}`);
  return found;
};

async function parse(format: string, file: string, target?: string): Promise<NormalizedFinding[]> {
  const out: NormalizedFinding[] = [];
  for await (const f of connector(format).parse(file, target ? { target } : {})) out.push(f);
  return out;
}

function fixture(name: string, content: string): string {
  const file = join(tmp, name);
  writeFileSync(file, content);
  return file;
}

async function rejection(run: Promise<unknown>): Promise<ReportError> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ReportError);
  return err as ReportError;
}

const fingerprints = (findings: NormalizedFinding[]) => new Set(findings.map(storedFingerprint));
const find = (findings: NormalizedFinding[], match: Partial<NormalizedFinding> & { assetKey?: string }) =>
  findings.filter((f) =>
    Object.entries(match).every(([k, v]) => (k === 'assetKey' ? f.asset.assetKey === v : (f as unknown as Record<string, unknown>)[k] === v)),
  );

// ---------------------------------------------------------------------------------------------
// Own fixtures: the same scan exported as Nessus XML and as Nessus CSV.

const NESSUS_XML = `<?xml version="1.0" ?>
<NessusClientData_v2>
<Policy><policyName>fixture</policyName></Policy>
<Report name="fixture scan" xmlns:cm="http://www.nessus.org/cm">
<ReportHost name="web01.corp.example"><HostProperties>
<tag name="host-ip">10.0.0.5</tag><tag name="host-fqdn">WEB01.corp.example</tag><tag name="netbios-name">WEB01</tag>
</HostProperties>
<ReportItem port="443" svc_name="www" protocol="tcp" severity="3" pluginID="42873" pluginName="SSL Medium Strength Cipher Suites Supported (SWEET32)" pluginFamily="General">
<cve>CVE-2016-2183</cve><cve>CVE-2016-6329</cve><cvss3_base_score>7.5</cvss3_base_score><risk_factor>Medium</risk_factor>
<plugin_output>Medium Strength Ciphers &amp; more</plugin_output></ReportItem>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="0" pluginID="19506" pluginName="Nessus Scan Information" pluginFamily="Settings">
<risk_factor>None</risk_factor><plugin_output><![CDATA[Nessus version : 10.7.1 <info>]]></plugin_output></ReportItem>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="4" pluginID="160000" pluginName="RHEL 7 : openssl (RHSA-2022:0000)" pluginFamily="Red Hat Local Security Checks">
<cve>CVE-2022-0778</cve><cvss3_base_score>9.8</cvss3_base_score><risk_factor>Critical</risk_factor>
<plugin_output>
Remote package installed : openssl-1.0.2k-19.el7
Should be                : openssl-1.0.2k-25.el7

Remote package installed : openssl-libs-1:1.0.2k-19.el7
Should be                : openssl-libs-1:1.0.2k-25.el7
</plugin_output></ReportItem>
</ReportHost>
<ReportHost name="10.0.0.6">
<ReportItem port="8080" svc_name="www" protocol="tcp" severity="2" pluginID="200798" pluginName="Kibana &lt; 7.17.22" pluginFamily="CGI abuses">
<cve>CVE-2024-23443</cve><cvss3_base_score>4.9</cvss3_base_score>
<plugin_output>URL : https://10.0.0.6:8080/
  Installed version : 7.13.2
  Fixed version : 7.17.22</plugin_output></ReportItem>
<HostProperties><tag name="host-ip">10.0.0.6</tag></HostProperties>
</ReportHost>
</Report>
</NessusClientData_v2>
`;

const csvCell = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const csvLine = (cells: string[]) => cells.map(csvCell).join(',');
const NESSUS_CSV = [
  csvLine(['Plugin ID', 'CVE', 'CVSS v2.0 Base Score', 'Risk', 'Host', 'Protocol', 'Port', 'Name', 'Synopsis', 'Description', 'Solution', 'See Also', 'Plugin Output', 'CVSS v3.0 Base Score']),
  csvLine(['42873', 'CVE-2016-2183', '5.0', 'High', 'web01.corp.example', 'tcp', '443', 'SSL Medium Strength Cipher Suites Supported (SWEET32)', 's', 'd', 'fix', '', 'Medium Strength Ciphers & more', '7.5']),
  csvLine(['42873', 'CVE-2016-6329', '5.0', 'High', 'web01.corp.example', 'tcp', '443', 'SSL Medium Strength Cipher Suites Supported (SWEET32)', 's', 'd', 'fix', '', 'Medium Strength Ciphers & more', '7.5']),
  csvLine(['19506', '', '', 'None', 'web01.corp.example', 'tcp', '0', 'Nessus Scan Information', 's', 'd', 'n/a', '', 'Nessus version : 10.7.1 <info>', '']),
  csvLine(['160000', 'CVE-2022-0778', '7.5', 'Critical', 'web01.corp.example', 'tcp', '0', 'RHEL 7 : openssl (RHSA-2022:0000)', 's', 'line one\nline "two"', 'yum update', '',
    '\nRemote package installed : openssl-1.0.2k-19.el7\nShould be                : openssl-1.0.2k-25.el7\n\nRemote package installed : openssl-libs-1:1.0.2k-19.el7\nShould be                : openssl-libs-1:1.0.2k-25.el7\n', '9.8']),
  csvLine(['200798', 'CVE-2024-23443', '6.1', 'Medium', '10.0.0.6', 'tcp', '8080', 'Kibana < 7.17.22', 's', 'd', 'upgrade', '',
    'URL : https://10.0.0.6:8080/\n  Installed version : 7.13.2\n  Fixed version : 7.17.22', '4.9']),
  '',
].join('\r\n');

// The same Qualys detections as XML (with its glossary) and as a CSV report with a preamble.
const QUALYS_XML = `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE ASSET_DATA_REPORT SYSTEM "https://qualysguard.example/asset_data_report.dtd">
<ASSET_DATA_REPORT>
  <HEADER><COMPANY><![CDATA[Fixture]]></COMPANY></HEADER>
  <HOST_LIST>
    <HOST>
      <IP>10.1.0.7</IP><TRACKING_METHOD>IP</TRACKING_METHOD><DNS><![CDATA[DB01.corp.example]]></DNS><NETBIOS><![CDATA[DB01]]></NETBIOS>
      <VULN_INFO_LIST>
        <VULN_INFO><QID id="qid_38173">38173</QID><TYPE>Vuln</TYPE><PORT>443</PORT><PROTOCOL>tcp</PROTOCOL><VULN_STATUS>Active</VULN_STATUS></VULN_INFO>
        <VULN_INFO><QID id="qid_6">6</QID><TYPE>Ig</TYPE><VULN_STATUS>New</VULN_STATUS></VULN_INFO>
        <VULN_INFO><QID id="qid_105971">105971</QID><TYPE>Vuln</TYPE><VULN_STATUS>Fixed</VULN_STATUS></VULN_INFO>
      </VULN_INFO_LIST>
    </HOST>
    <HOST>
      <IP>10.1.0.8</IP><TRACKING_METHOD>IP</TRACKING_METHOD>
      <VULN_INFO_LIST>
        <VULN_INFO><QID id="qid_38173">38173</QID><TYPE>Vuln</TYPE><PORT>8443</PORT><PROTOCOL>tcp</PROTOCOL><VULN_STATUS>New</VULN_STATUS></VULN_INFO>
      </VULN_INFO_LIST>
    </HOST>
  </HOST_LIST>
  <GLOSSARY><VULN_DETAILS_LIST>
    <VULN_DETAILS id="qid_38173"><QID id="qid_38173">38173</QID><TITLE><![CDATA[SSL Certificate - Signature Verification Failed]]></TITLE><SEVERITY>2</SEVERITY>
      <THREAT><![CDATA[multi
line, threat]]></THREAT>
      <CVSS3_SCORE><CVSS3_BASE>5.3 (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N)</CVSS3_BASE></CVSS3_SCORE></VULN_DETAILS>
    <VULN_DETAILS id="qid_6"><QID id="qid_6">6</QID><TITLE><![CDATA[DNS Host Name]]></TITLE><SEVERITY>1</SEVERITY></VULN_DETAILS>
    <VULN_DETAILS id="qid_105971"><QID id="qid_105971">105971</QID><TITLE><![CDATA[OpenSSL Multiple Vulnerabilities]]></TITLE><SEVERITY>5</SEVERITY>
      <CVE_ID_LIST><CVE_ID><ID><![CDATA[CVE-2022-0778]]></ID></CVE_ID><CVE_ID><ID><![CDATA[CVE-2021-3711]]></ID></CVE_ID></CVE_ID_LIST>
      <CVSS3_SCORE><CVSS3_BASE>9.8 (AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)</CVSS3_BASE><CVSS3_TEMPORAL>8.5</CVSS3_TEMPORAL></CVSS3_SCORE></VULN_DETAILS>
  </VULN_DETAILS_LIST></GLOSSARY>
</ASSET_DATA_REPORT>
`;

const QUALYS_CSV = [
  '"Fixture Corp","Qualys Scan Report"',
  '"Report generated","2026-01-30 10:00:00"',
  '',
  '"IP","DNS","NetBIOS","QID","Title","Vuln Status","Type","Severity","Port","Protocol","FQDN","CVE ID","CVSS3","CVSS3 Base","Threat"',
  '"10.1.0.7","DB01.corp.example","DB01","38173","SSL Certificate - Signature Verification Failed","Active","Vuln","2","443","tcp","","","4.8","5.3 (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N)","multi\nline, threat"',
  '"10.1.0.7","DB01.corp.example","DB01","6","DNS Host Name","New","Ig","1",,,,,,,',
  '"10.1.0.7","DB01.corp.example","DB01","105971","OpenSSL Multiple Vulnerabilities","Fixed","Vuln","5",,,,"CVE-2022-0778, CVE-2021-3711","8.5","9.8 (AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)",""',
  '"10.1.0.8","","","38173","SSL Certificate - Signature Verification Failed","New","Vuln","2","8443","tcp","","","4.8","5.3 (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N)","multi\nline, threat"',
  '',
].join('\n');

// CycloneDX 1.5 BOM with VEX analysis on every state, nested and grouped components, and one
// affected ref that is only a package URL.
const CDX_NS = 'http://cyclonedx.org/schema/bom/1.5';
const cdxComponents = `
  <components>
    <component type="library" bom-ref="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1">
      <group>org.apache.logging.log4j</group><name>log4j-core</name><version>2.14.1</version>
      <purl>pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1</purl>
    </component>
    <component type="library" bom-ref="jackson">
      <group>com.fasterxml.jackson.core</group><name>jackson-databind</name><version>2.9.4</version>
      <purl>pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.4</purl>
      <components>
        <component type="library" bom-ref="pkg:npm/%40scope/left-pad@1.3.0">
          <group>@scope</group><name>left-pad</name><version>1.3.0</version><purl>pkg:npm/%40scope/left-pad@1.3.0</purl>
        </component>
      </components>
    </component>
    <component type="library" bom-ref="unreferenced"><name>zlib</name><version>1.2.13</version></component>
  </components>`;
const cdxVulnerabilities = `
  <vulnerabilities>
    <vulnerability bom-ref="v1">
      <id>CVE-2021-44228</id><source><name>NVD</name><url>https://nvd.nist.gov/vuln/detail/CVE-2021-44228</url></source>
      <ratings><rating><source><name>NVD</name></source><score>10.0</score><severity>critical</severity><method>CVSSv31</method>
        <vector>CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H</vector></rating></ratings>
      <cwes><cwe>502</cwe><cwe>400</cwe></cwes>
      <description>Apache Log4j2 JNDI features do not protect against attacker controlled LDAP.
Second line of the description.</description>
      <advisories><advisory><url>https://logging.apache.org/log4j/2.x/security.html</url></advisory></advisories>
      <analysis><state>exploitable</state><responses><response>update</response></responses></analysis>
      <affects><target><ref>pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1</ref></target></affects>
    </vulnerability>
    <vulnerability bom-ref="v2">
      <id>SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111</id>
      <references><reference><id>CVE-2018-7489</id><source><name>NVD</name><url>https://nvd.nist.gov/vuln/detail/CVE-2018-7489</url></source></reference></references>
      <ratings><rating><score>5.0</score><severity>medium</severity><method>other</method></rating>
        <rating><score>9.8</score><severity>critical</severity><method>CVSSv3</method></rating></ratings>
      <analysis><state>not_affected</state><justification>code_not_reachable</justification></analysis>
      <affects><target><ref>jackson</ref><versions><version><range>vers:maven/&lt;2.9.5</range><status>affected</status></version></versions></target></affects>
    </vulnerability>
    <vulnerability><id>CVE-2020-0001</id><ratings><rating><severity>low</severity></rating></ratings>
      <analysis><state>resolved</state></analysis>
      <affects><target><ref>pkg:npm/%40scope/left-pad@1.3.0</ref></target></affects></vulnerability>
    <vulnerability><id>CVE-2020-0002</id><analysis><state>false_positive</state></analysis>
      <affects><target><ref>jackson</ref></target></affects></vulnerability>
    <vulnerability><id>CVE-2020-0003</id><analysis><state>in_triage</state></analysis>
      <affects><target><ref>jackson</ref></target></affects></vulnerability>
    <vulnerability><id>GHSA-aaaa-bbbb-cccc</id><ratings><rating><score>7.1</score><method>CVSSv31</method></rating></ratings>
      <affects>
        <target><ref>pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1</ref></target>
        <target><ref>pkg:golang/github.com/acme/tool@v1.2.3</ref></target>
      </affects></vulnerability>
  </vulnerabilities>`;
const cdxMetadata = `
  <metadata><component type="container" bom-ref="root"><name>registry.example/shop/api:2.3.1</name><version>2.3.1</version></component></metadata>`;
const CDX_BOM = `<?xml version="1.0" encoding="UTF-8"?>
<bom xmlns="${CDX_NS}" serialNumber="urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79" version="1">${cdxMetadata}${cdxComponents}${cdxVulnerabilities}
</bom>
`;
// Non-canonical order (vulnerabilities before components) with a namespace prefix.
const CDX_BOM_REORDERED = `<?xml version="1.0"?>
<bom xmlns:cdx="${CDX_NS}" version="1">${cdxMetadata}${cdxVulnerabilities}${cdxComponents}
</bom>`.replace(/<(\/?)(?!\?|!)([a-z])/g, '<$1cdx:$2');
// A VEX document about a separate BOM: BOM-Link refs, no components, no metadata component.
const CDX_VEX = `<?xml version="1.0"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.4" version="1">
  <vulnerabilities>
    <vulnerability><id>CVE-2018-7489</id><ratings><rating><severity>critical</severity><method>CVSSv31</method><score>9.8</score></rating></ratings>
      <analysis><state>not_affected</state><justification>code_not_reachable</justification></analysis>
      <affects><target><ref>urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.4</ref></target></affects>
    </vulnerability>
  </vulnerabilities>
</bom>`;

describe('Nessus XML and Nessus CSV (own fixtures)', () => {
  it('reads hosts, plugins, CVEs, ports, packages and versions', async () => {
    const findings = await parse('nessus', fixture('scan.nessus', NESSUS_XML));
    expect(findings).toHaveLength(6);
    const sweet32 = find(findings, { issueId: 'CVE-2016-2183' });
    expect(sweet32).toHaveLength(1);
    expect(sweet32[0]).toMatchObject({
      asset: { assetKey: 'host:web01.corp.example', kind: 'host', name: 'web01.corp.example' },
      kind: 'vulnerability',
      component: 'SSL Medium Strength Cipher Suites Supported (SWEET32)',
      version: '',
      location: '443/tcp',
      severity: 'high',
      cvssScore: 7.5,
    });
    expect(find(findings, { issueId: 'CVE-2016-6329', location: '443/tcp' })).toHaveLength(1);
    expect(find(findings, { issueId: 'nessus:19506' })[0]).toMatchObject({ severity: 'info', location: '0/tcp', component: 'Nessus Scan Information' });
    // One finding per affected package named in the plugin output.
    const openssl = find(findings, { issueId: 'CVE-2022-0778' }).map((f) => [f.component, f.version, f.fixedVersion, f.severity]);
    expect(openssl).toEqual([
      ['openssl', '1.0.2k-19.el7', '1.0.2k-25.el7', 'critical'],
      ['openssl-libs', '1:1.0.2k-19.el7', '1:1.0.2k-25.el7', 'critical'],
    ]);
    // Items before HostProperties still get the host's identity; an IP-only host is keyed by IP.
    expect(find(findings, { issueId: 'CVE-2024-23443' })[0]).toMatchObject({
      asset: { assetKey: 'host:10.0.0.6' },
      component: 'Kibana < 7.17.22',
      version: '7.13.2',
      fixedVersion: '7.17.22',
      location: '8080/tcp',
      severity: 'medium',
      cvssScore: 4.9,
    });
  });

  it('gives the same fingerprints for the same scan exported as CSV', async () => {
    const xml = await parse('nessus', fixture('same-scan.nessus', NESSUS_XML));
    const csv = await parse('tenable-csv', fixture('same-scan.csv', NESSUS_CSV));
    expect(csv).toHaveLength(6);
    expect(fingerprints(csv)).toEqual(fingerprints(xml));
    expect(csv.map((f) => f.severity).sort()).toEqual(xml.map((f) => f.severity).sort());
  });

  it('reads a Tenable.sc-style CSV (IP Address, DNS Name, comma-separated CVEs)', async () => {
    const file = fixture('tsc.csv', [
      'Plugin,Plugin Name,Family,Severity,IP Address,Protocol,Port,DNS Name,NetBIOS Name,Plugin Text,CVSS V3 Base Score,CVE',
      '65821,SSL RC4 Cipher Suites Supported (Bar Mitzvah),General,Medium,10.2.1.1,TCP,443,App02.Corp.Example.,APP02,"Plugin Output: \nList of RC4 cipher suites",5.9,"CVE-2013-2566,CVE-2015-2808"',
      '11219,Nessus SYN scanner,Port scanners,Info,10.2.1.9,TCP,22,,,,,',
      ',,,,,,,,,,,',
    ].join('\n'));
    const findings = await parse('tenable-csv', file);
    expect(findings.map((f) => [f.asset.assetKey, f.issueId, f.location, f.severity, f.cvssScore])).toEqual([
      ['host:app02.corp.example', 'CVE-2013-2566', '443/tcp', 'medium', 5.9],
      ['host:app02.corp.example', 'CVE-2015-2808', '443/tcp', 'medium', 5.9],
      ['host:10.2.1.9', 'nessus:11219', '22/tcp', 'info', undefined],
    ]);
  });

  it('marks Tenable.io rows whose vulnerability state is Fixed', async () => {
    const file = fixture('tio.csv', [
      'Plugin ID,CVE,Risk,Host,Protocol,Port,Name,Vulnerability State,IP Address,FQDN,NetBios,CVSS3 Base Score',
      '176700,CVE-2023-32233,High,10.9.9.9,TCP,0,Amazon Linux 2 : kernel,Fixed,10.9.9.9,ip-10-9-9-9.ec2.internal,,7.8',
      '176701,CVE-2023-00001,High,10.9.9.9,TCP,0,Amazon Linux 2 : other,Active,10.9.9.9,ip-10-9-9-9.ec2.internal,,7.8',
    ].join('\n'));
    const findings = await parse('tenable-csv', file);
    expect(findings.map((f) => [f.asset.assetKey, f.issueId, f.vendorStatus])).toEqual([
      ['host:ip-10-9-9-9.ec2.internal', 'CVE-2023-32233', 'fixed'],
      ['host:ip-10-9-9-9.ec2.internal', 'CVE-2023-00001', undefined],
    ]);
  });

  it('yields nothing for a header-only CSV', async () => {
    expect(await parse('tenable-csv', fixture('header-only.csv', NESSUS_CSV.split('\r\n')[0] + '\r\n'))).toEqual([]);
  });
});

describe('Qualys XML and CSV (own fixtures)', () => {
  it('reads detections with the glossary, and the CSV export (after its preamble) matches', async () => {
    const xml = await parse('qualys-xml', fixture('qualys.xml', QUALYS_XML));
    const csv = await parse('qualys-csv', fixture('qualys.csv', QUALYS_CSV));
    expect(xml.map((f) => [f.asset.assetKey, f.issueId, f.component, f.location, f.severity, f.cvssScore, f.vendorStatus])).toEqual([
      ['host:db01.corp.example', 'qualys:38173', 'SSL Certificate - Signature Verification Failed', '443/tcp', 'low', 5.3, undefined],
      ['host:db01.corp.example', 'qualys:6', 'DNS Host Name', '', 'info', undefined, undefined],
      ['host:db01.corp.example', 'CVE-2022-0778', 'OpenSSL Multiple Vulnerabilities', '', 'critical', 9.8, 'fixed'],
      ['host:db01.corp.example', 'CVE-2021-3711', 'OpenSSL Multiple Vulnerabilities', '', 'critical', 9.8, 'fixed'],
      ['host:10.1.0.8', 'qualys:38173', 'SSL Certificate - Signature Verification Failed', '8443/tcp', 'low', 5.3, undefined],
    ]);
    expect(csv).toEqual(xml);
    expect(fingerprints(csv)).toEqual(fingerprints(xml));
  });

  it('rejects a detection whose QID is missing from the glossary', async () => {
    const broken = QUALYS_XML.replace(/<VULN_DETAILS id="qid_6">[\s\S]*?<\/VULN_DETAILS>/, '');
    const err = await rejection(parse('qualys-xml', fixture('no-glossary.xml', broken)));
    expect(err.message).toBe('no-glossary.xml: qualys-xml: GLOSSARY: QID 6 has no VULN_DETAILS entry');
  });
});

describe('CycloneDX XML', () => {
  it('maps vulnerabilities to affected components with VEX status', async () => {
    const findings = await parse('cyclonedx-xml', fixture('bom.xml', CDX_BOM));
    const rows = findings.map((f) => [f.issueId, f.component, f.version, f.severity, f.cvssScore, f.vendorStatus]);
    expect(rows).toEqual([
      ['CVE-2021-44228', 'org.apache.logging.log4j:log4j-core', '2.14.1', 'critical', 10, 'affected'],
      // Keyed on the document's own id (as the CycloneDX JSON connector does), not its CVE alias.
      ['SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111', 'com.fasterxml.jackson.core:jackson-databind', '2.9.4', 'critical', 9.8, 'not_affected'],
      ['CVE-2020-0001', '@scope/left-pad', '1.3.0', 'low', undefined, 'fixed'],
      ['CVE-2020-0002', 'com.fasterxml.jackson.core:jackson-databind', '2.9.4', 'unknown', undefined, 'false_positive'],
      ['CVE-2020-0003', 'com.fasterxml.jackson.core:jackson-databind', '2.9.4', 'unknown', undefined, 'under_investigation'],
      ['GHSA-aaaa-bbbb-cccc', 'org.apache.logging.log4j:log4j-core', '2.14.1', 'high', 7.1, undefined],
      // Not in the BOM: named from its package URL.
      ['GHSA-aaaa-bbbb-cccc', 'github.com/acme/tool', 'v1.2.3', 'high', 7.1, undefined],
    ]);
    for (const f of findings) {
      expect(f.asset).toEqual({ assetKey: 'image:registry.example/shop/api:2.3.1', kind: 'container_image', name: 'registry.example/shop/api:2.3.1' });
      expect(f.location).toBe('');
    }
    expect(findings[1]!.references).toEqual(['https://nvd.nist.gov/vuln/detail/CVE-2018-7489']);
    expect(findings[0]).toMatchObject({
      title: 'Apache Log4j2 JNDI features do not protect against attacker controlled LDAP.',
      description: 'Apache Log4j2 JNDI features do not protect against attacker controlled LDAP.\nSecond line of the description.',
      references: ['https://nvd.nist.gov/vuln/detail/CVE-2021-44228', 'https://logging.apache.org/log4j/2.x/security.html'],
      cwes: ['CWE-502', 'CWE-400'],
    });
  });

  it('gives the same findings when vulnerabilities precede components (prefixed namespace)', async () => {
    const file = fixture('bom-reordered.xml', CDX_BOM_REORDERED);
    expect(connectors.filter((c) => c.detect(readFileSync(file, 'utf8'))).map((c) => c.format)).toEqual(['cyclonedx-xml']);
    const reordered = await parse('cyclonedx-xml', file);
    const canonical = await parse('cyclonedx-xml', fixture('bom-canonical.xml', CDX_BOM));
    expect(reordered).toEqual(canonical);
  });

  it('reads a VEX document about another BOM, given a target; without one it says so', async () => {
    const file = fixture('vex.xml', CDX_VEX);
    const findings = await parse('cyclonedx-xml', file, 'payments-api');
    expect(findings).toEqual([
      {
        asset: { assetKey: 'asset:payments-api', kind: 'other', name: 'payments-api' },
        kind: 'vulnerability',
        issueId: 'CVE-2018-7489',
        component: 'com.fasterxml.jackson.core:jackson-databind',
        version: '2.9.4',
        location: '',
        severity: 'critical',
        cvssScore: 9.8,
        vendorStatus: 'not_affected',
        ecosystem: 'maven',
        packageClass: 'app',
      },
    ]);
    const err = await rejection(parse('cyclonedx-xml', file));
    expect(err.message).toBe('vex.xml: cyclonedx-xml: metadata/component: missing (pass a target to name the asset)');
  });

  it('yields nothing for an SBOM without vulnerabilities', async () => {
    const sbom = CDX_BOM.replace(cdxVulnerabilities, '');
    expect(await parse('cyclonedx-xml', fixture('sbom.xml', sbom))).toEqual([]);
  });

});

// Real CycloneDX 1.2 BOMs with the vulnerability extension 1.0 (see test/fixtures/cyclonedx/README.md).
const REAL_CDX = (name: string) => fileURLToPath(new URL(`../fixtures/cyclonedx/${name}`, import.meta.url));

describe('CycloneDX XML: vulnerability extension 1.0 (CycloneDX 1.0-1.3)', () => {
  it('reads every vulnerability of a Grype 0.7 BOM, on the component that holds it', async () => {
    const file = REAL_CDX('grype_dd_1_14_1.xml');
    expect(connectors.filter((c) => c.detect(readFileSync(file, 'utf8').slice(0, 4096))).map((c) => c.format)).toEqual(['cyclonedx-xml']);
    const findings = await parse('cyclonedx-xml', file);
    // DefectDojo's parser reads 312 findings from this file, and agrees on [0] and [200].
    expect(findings).toHaveLength(312);
    const count = (s: string) => findings.filter((f) => f.severity === s).length;
    expect([count('critical'), count('high'), count('medium'), count('low')]).toEqual([5, 31, 139, 137]);
    expect(findings[0]).toEqual({
      asset: { assetKey: 'image:defectdojo/defectdojo-django:1.14.1', kind: 'container_image', name: 'defectdojo/defectdojo-django:1.14.1' },
      kind: 'vulnerability',
      issueId: 'GHSA-xgxc-v2qg-chmh',
      component: 'Django',
      version: '2.2.18',
      location: '',
      severity: 'low',
      title: 'Directory Traversal in Django',
      description: 'Directory Traversal in Django',
      references: ['https://github.com/advisories/GHSA-xgxc-v2qg-chmh'],
    });
    expect(findings[200]).toMatchObject({ issueId: 'CVE-2019-6988', component: 'libopenjp2-7', version: '2.3.0-2+deb10u2', severity: 'low' });
    // A CVSSv3 rating gives the score and the vector; the others (CVSSv2 only) give the severity alone.
    expect(findings.find((f) => f.issueId === 'CVE-2019-15005')).toMatchObject({
      component: 'jira', version: '2.0.0', severity: 'medium', cvssScore: 4.3, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N',
    });
    // 114 CVSSv3 ratings, 9 of them with a score and no vector.
    expect(findings.filter((f) => f.cvssScore !== undefined)).toHaveLength(114);
    expect(findings.filter((f) => f.cvssVector !== undefined)).toHaveLength(105);
  });

  it('reads the spec example: a top-level extension vulnerability whose ref names the component', async () => {
    const findings = await parse('cyclonedx-xml', REAL_CDX('spec1.xml'), 'payments-api');
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      asset: { assetKey: 'asset:payments-api', kind: 'other', name: 'payments-api' },
      issueId: 'CVE-2018-7489',
      component: 'com.fasterxml.jackson.core:jackson-databind',
      version: '2.9.9',
      // The CVSSv3 rating wins over the OWASP Risk one ("Low"); the vector's version is the method's.
      severity: 'critical',
      cvssScore: 9.8,
      cvssVector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      cwes: ['CWE-184', 'CWE-502'],
      ecosystem: 'maven',
    });
    expect(findings[0]!.references).toEqual([
      'https://nvd.nist.gov/vuln/detail/CVE-2018-7489',
      'https://github.com/FasterXML/jackson-databind/issues/1931',
      'http://www.securityfocus.com/bid/103203',
      'http://www.securitytracker.com/id/1040693',
      'http://www.securitytracker.com/id/1041890',
    ]);
  });

  it('gives the same finding when the extension vulnerabilities precede the components', async () => {
    const spec = readFileSync(REAL_CDX('spec1.xml'), 'utf8');
    const components = spec.slice(spec.indexOf('  <components>'), spec.indexOf('  <v:vulnerabilities>'));
    const reordered = spec.replace(components, '').replace('</bom>', `${components}</bom>`);
    expect(reordered.indexOf('<v:vulnerabilities>')).toBeLessThan(reordered.indexOf('<components>'));
    expect(await parse('cyclonedx-xml', fixture('spec1-reordered.xml', reordered), 'x')).toEqual(await parse('cyclonedx-xml', REAL_CDX('spec1.xml'), 'x'));
  });

  it('reads a component\'s extension vulnerabilities wherever they sit inside it', async () => {
    const grype = readFileSync(REAL_CDX('grype_dd_1_14_1.xml'), 'utf8');
    // Django 2.2.18's vulnerabilities moved before its name and version.
    const start = grype.indexOf('<name>Django</name>\n      <version>2.2.18</version>');
    const vulnsStart = grype.indexOf('      <v:vulnerabilities>', start);
    const vulnsEnd = grype.indexOf('</v:vulnerabilities>', vulnsStart) + '</v:vulnerabilities>\n'.length;
    expect(start).toBeGreaterThan(0);
    const moved = grype.slice(0, start) + grype.slice(vulnsStart, vulnsEnd).trimStart() + '      ' + grype.slice(start, vulnsStart) + grype.slice(vulnsEnd);
    expect(moved.length).toBe(grype.length);
    expect(moved.indexOf('GHSA-xgxc-v2qg-chmh')).toBeLessThan(moved.indexOf('<name>Django</name>\n      <version>2.2.18</version>'));
    expect(await parse('cyclonedx-xml', fixture('grype-moved.xml', moved))).toEqual(await parse('cyclonedx-xml', REAL_CDX('grype_dd_1_14_1.xml')));
  });

  it('refuses, never imports as empty, vulnerabilities it does not understand', async () => {
    const spec = readFileSync(REAL_CDX('spec1.xml'), 'utf8');
    // An extension version it does not know.
    const v2 = fixture('spec1-ext2.xml', spec.replace('ext/vulnerability/1.0', 'ext/vulnerability/2.0'));
    expect((await rejection(parse('cyclonedx-xml', v2, 'x'))).message).toBe(
      'spec1-ext2.xml: cyclonedx-xml: vulnerabilities: vulnerability extension http://cyclonedx.org/schema/ext/vulnerability/2.0 is not understood (only http://cyclonedx.org/schema/ext/vulnerability/1.0)',
    );
    // A ref that names no component, not even by package URL.
    const dangling = fixture('spec1-dangling.xml', spec.replace('<v:vulnerability ref="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.9">', '<v:vulnerability ref="no-such-component">'));
    expect((await rejection(parse('cyclonedx-xml', dangling, 'x'))).message).toBe(
      'spec1-dangling.xml: cyclonedx-xml: vulnerabilities/vulnerability/@ref: "no-such-component" names no component of this document',
    );
    // Vulnerabilities somewhere neither form puts them.
    const elsewhere = fixture('spec1-elsewhere.xml', spec.replace('<v:vulnerabilities>', '<v:report><v:vulnerabilities>').replace('</v:vulnerabilities>', '</v:vulnerabilities></v:report>'));
    expect((await rejection(parse('cyclonedx-xml', elsewhere, 'x'))).message).toBe(
      "spec1-elsewhere.xml: cyclonedx-xml: bom/report/vulnerabilities/vulnerability: a <vulnerability> outside <bom><vulnerabilities> or a component's vulnerability extension 1.0 is not understood",
    );
    // A top-level vulnerability without ref in a 1.2 BOM (no <affects> before 1.4) names no component.
    const noRef = fixture('spec1-no-ref.xml', spec.replace(' ref="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.9">', '>'));
    expect((await rejection(parse('cyclonedx-xml', noRef, 'x'))).message).toBe(
      'spec1-no-ref.xml: cyclonedx-xml: bom/vulnerabilities/vulnerability: a <vulnerability> without ref in a CycloneDX 1.2 BOM is not understood (the extension 1.0 names its component in ref; <affects> exists from 1.4)',
    );
  });
});

// Real Tenable VM and Qualys PCI CSV exports (see the READMEs in test/fixtures/tenable-vm-csv and
// test/fixtures/qualys-pci-csv).
const REAL = (format: string, name: string) => fileURLToPath(new URL(`../fixtures/${format}/${name}`, import.meta.url));
const TVM_REAL = REAL('tenable-vm-csv', 'nessus_new.csv');
const PCI_MONTHLY = REAL('qualys-pci-csv', 'monthly_pci_issue6932.csv');
const PCI_HG = REAL('qualys-pci-csv', 'many_finding.csv');
const detectedBy = (content: string) => connectors.filter((c) => c.detect(content)).map((c) => c.format);

/** The same records written again with another separator, every cell quoted. */
function redelimit(content: string, delimiter: string): string {
  const records = parseCsv(content, { delimiter: ';', relax_column_count: true }) as string[][];
  return records.map((r) => r.map((cell) => `"${cell.replace(/"/g, '""')}"`).join(delimiter)).join('\n') + '\n';
}

describe('Tenable VM CSV (dotted columns)', () => {
  it('reads a real `;`-separated export: host names, plugins, CVEs, packages, CVSS 3', async () => {
    expect(detectedBy(readFileSync(TVM_REAL, 'utf8'))).toEqual(['tenable-vm-csv']);
    expect((await connectorFor(TVM_REAL, 'nessus_new.csv')).format).toBe('tenable-vm-csv');
    const findings = await parse('tenable-vm-csv', TVM_REAL);
    // 99 rows, one host each; 150 host x plugin x CVE, split further per affected package.
    expect(findings).toHaveLength(236);
    expect(distinct(findings, (f) => f.asset.assetKey)).toBe(99);
    expect(distinct(findings, (f) => `${f.asset.assetKey}|${f.issueId}`)).toBe(150);
    // asset.host_name names the host (lower-cased, as for every network scanner).
    expect(findings[0]!.asset).toEqual({ assetKey: 'host:blah1', kind: 'host', name: 'blah1', alsoKnownAs: [['ip', '10.0.0.1']] });
    // A plugin without CVE is keyed by its plugin ID, on its port; CVSS 3 score and vector from definition.cvss3.
    expect(find(findings, { assetKey: 'host:blah5', issueId: 'nessus:153953' })).toMatchObject([
      { component: 'SSH Weak Key Exchange Algorithms Enabled', location: '22/tcp', severity: 'low', cvssScore: 3.7, cvssVector: 'CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N' },
    ]);
    // One finding per CVE of definition.cve ("CVE-..., CVE-..."), on each package the output names.
    expect(find(findings, { assetKey: 'host:blah54', issueId: 'CVE-2019-19126' }).map((f) => [f.component, f.version, f.fixedVersion, f.packageClass])).toEqual([
      ['glibc', '2.17-292.el7', '2.17-317.el7', 'os'],
      ['glibc-common', '2.17-292.el7', '2.17-317.el7', 'os'],
      ['glibc-devel', '2.17-292.el7', '2.17-317.el7', 'os'],
      ['glibc-headers', '2.17-292.el7', '2.17-317.el7', 'os'],
    ]);
    // `severity` (the finding's, Low in every row) wins over definition.severity (Medium, Critical in three).
    expect(new Set(findings.map((f) => f.severity))).toEqual(new Set(['low']));
    // States are ACTIVE, NEW and RESURFACED: none is closed.
    expect(findings.filter((f) => f.vendorStatus)).toEqual([]);
  });

  it('reads the same export `,`-separated, with the same findings', async () => {
    const real = readFileSync(TVM_REAL, 'utf8');
    const commas = fixture('tvm-commas.csv', redelimit(real, ','));
    expect(detectedBy(readFileSync(commas, 'utf8'))).toEqual(['tenable-vm-csv']);
    expect((await connectorFor(commas, 'tvm-commas.csv')).format).toBe('tenable-vm-csv');
    const [semicolons, withCommas] = [await parse('tenable-vm-csv', TVM_REAL), await parse('tenable-vm-csv', commas)];
    expect(withCommas).toEqual(semicolons);
    expect(fingerprints(withCommas)).toEqual(fingerprints(semicolons));
  });

  it('names a host by its IP when it has no name, and closes FIXED rows', async () => {
    const file = fixture('tvm-fixed.csv', [
      'asset.host_name,asset.ipv4_addresses,definition.id,definition.name,definition.cve,definition.severity,definition.cvss3.base_score,definition.cvss3.base_vector,severity,port,protocol,state',
      'web-1.example.com,10.1.1.5,176700,Amazon Linux 2 : kernel,CVE-2023-32233,High,7.8,CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H,Critical,0,TCP,FIXED',
      ',"10.1.1.6, 10.1.1.7",176700,Amazon Linux 2 : kernel,CVE-2023-32233,High,7.8,,,0,TCP,ACTIVE',
    ].join('\n'));
    expect(detectedBy(readFileSync(file, 'utf8'))).toEqual(['tenable-vm-csv']);
    expect((await parse('tenable-vm-csv', file)).map((f) => [f.asset.assetKey, f.issueId, f.severity, f.cvssScore, f.vendorStatus])).toEqual([
      ['host:web-1.example.com', 'CVE-2023-32233', 'critical', 7.8, 'fixed'],
      ['host:10.1.1.6', 'CVE-2023-32233', 'high', 7.8, undefined],
    ]);
  });

  it('rejects a row with no plugin ID, naming the line', async () => {
    const file = fixture('tvm-no-id.csv', 'asset.host_name;definition.id;definition.name\nweb-1;;Some plugin\n');
    expect((await rejection(parse('tenable-vm-csv', file))).message).toBe('tvm-no-id.csv: tenable-vm-csv: definition.id: empty on line 2');
  });
});

describe('Qualys PCI scan CSV', () => {
  it('reads real PCI exports: host names, QIDs per port, Qualys levels, CVSS base', async () => {
    for (const file of [PCI_MONTHLY, PCI_HG]) {
      expect(detectedBy(readFileSync(file, 'utf8'))).toEqual(['qualys-pci-csv']);
      expect((await connectorFor(file, 'pci.csv')).format).toBe('qualys-pci-csv');
    }
    const monthly = await parse('qualys-pci-csv', PCI_MONTHLY);
    expect(monthly).toMatchObject([
      {
        asset: { assetKey: 'host:abv.xyw.com.fj', kind: 'host' },
        issueId: 'qualys:86476',
        component: 'Web Server Stopped Responding',
        location: '80/tcp',
        severity: 'medium',
        cvssScore: 6.4,
        packageClass: 'app',
      },
    ]);
    expect(monthly[0]!.description).toMatch(/^The Web server stopped responding/);
    // Q_SEVERITY (Qualys's 1-5 level) is the severity, as in the Qualys VM exports; SEVERITY "M" is the PCI rating.
    const hg = await parse('qualys-pci-csv', PCI_HG);
    expect(hg.map((f) => [f.asset.assetKey, f.issueId, f.location, f.severity, f.cvssScore])).toEqual([
      ['host:help.example.co', 'qualys:150059', '80/tcp', 'info', 5.3],
      ['host:help.example.co', 'qualys:150059', '443/tcp', 'info', 5.3],
      ['host:jt.example.co', 'qualys:11827', '443/tcp', 'low', 5.3],
      ['host:data.example.co', 'qualys:150004', '80/tcp', 'low', 5.3],
    ]);
  });

  it('splits a QID per CVE and falls back to SEVERITY LEVEL, then the PCI rating', async () => {
    const file = fixture('pci-cves.csv', [
      '"IP","HOSTNAME","QID","VULN TITLE","SEVERITY LEVEL","SEVERITY","PORT","PROTOCOL","CVSS","CVEID"',
      '"10.2.2.2","","38173","SSL Certificate - Signature Verification Failed","5","High","443","tcp","9.8","CVE-2016-2183, CVE-2016-6329"',
      '"10.2.2.2","","38174","SSL Certificate - Expired","","High","443","tcp","",""',
      '"10.2.2.2","","38175","SSL Certificate - Self-Signed","","L","443","tcp","",""',
    ].join('\n'));
    expect(detectedBy(readFileSync(file, 'utf8'))).toEqual(['qualys-pci-csv']);
    expect((await parse('qualys-pci-csv', file)).map((f) => [f.asset.assetKey, f.issueId, f.severity, f.cvssScore])).toEqual([
      ['host:10.2.2.2', 'CVE-2016-2183', 'critical', 9.8],
      ['host:10.2.2.2', 'CVE-2016-6329', 'critical', 9.8],
      ['host:10.2.2.2', 'qualys:38174', 'high', undefined],
      ['host:10.2.2.2', 'qualys:38175', 'low', undefined],
    ]);
  });

  it('is neither Qualys VM CSV nor Tenable CSV, nor they it', async () => {
    expect(detectedBy(QUALYS_CSV)).toEqual(['qualys-csv']);
    expect(detectedBy(NESSUS_CSV)).toEqual(['tenable-csv']);
    const asVm = await rejection(parse('qualys-csv', PCI_HG));
    expect(asVm.message).toMatch(/^many_finding\.csv: qualys-csv: Title: required column "Title" is missing/);
    const vmAsPci = await rejection(parse('qualys-pci-csv', fixture('vm.csv', QUALYS_CSV)));
    expect(vmAsPci.message).toMatch(/^vm\.csv: qualys-pci-csv: VULN TITLE: required column "VULN TITLE" is missing/);
    const tvmAsTenable = await rejection(parse('tenable-csv', TVM_REAL));
    expect(tvmAsTenable.message).toMatch(/^nessus_new\.csv: tenable-csv: /);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad input is rejected with the file and the reason', () => {
  it('truncated XML', async () => {
    const file = fixture('truncated.nessus', NESSUS_XML.slice(0, NESSUS_XML.indexOf('<ReportItem port="0"')));
    const err = await rejection(parse('nessus', file));
    expect(err.file).toBe('truncated.nessus');
    expect(err.format).toBe('nessus');
    expect(err.message).toMatch(/^truncated\.nessus: nessus: not well-formed XML \(.*unclosed tag/);
  });

  it('a billion-laughs DOCTYPE', async () => {
    const lol = ['<!ENTITY lol "lol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`)];
    const file = fixture('lol.nessus', `<?xml version="1.0"?>\n<!DOCTYPE NessusClientData_v2 [\n${lol.join('\n')}\n]>\n<NessusClientData_v2>&lol9;</NessusClientData_v2>\n`);
    const started = Date.now();
    const err = await rejection(parse('nessus', file));
    expect(err.message).toBe('lol.nessus: nessus: DOCTYPE with entity declarations is not accepted');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('an XXE external entity, without reading the entity file', async () => {
    // A FIFO: opening it for reading would block until a writer appears, so any attempt hangs the test.
    const secret = join(tmp, 'secret-fifo');
    let fifo = true;
    try {
      execFileSync('mkfifo', [secret]);
    } catch {
      fifo = false;
      writeFileSync(secret, 'TOP-SECRET-CONTENT');
    }
    const xxe = `<?xml version="1.0"?>\n<!DOCTYPE ASSET_DATA_REPORT [ <!ENTITY xxe SYSTEM "file://${secret}"> ]>\n<ASSET_DATA_REPORT><HOST_LIST><HOST><IP>&xxe;</IP></HOST></HOST_LIST></ASSET_DATA_REPORT>\n`;
    const err = await rejection(parse('qualys-xml', fixture('xxe.xml', xxe)));
    expect(err.message).toBe('xxe.xml: qualys-xml: DOCTYPE with entity declarations is not accepted');
    expect(err.message).not.toContain('TOP-SECRET');
    // An external DTD is never fetched either: the same FIFO as the DTD parses normally.
    const withDtd = NESSUS_XML.replace('<NessusClientData_v2>', `<!DOCTYPE NessusClientData_v2 SYSTEM "file://${secret}">\n<NessusClientData_v2>`);
    expect(await parse('nessus', fixture('dtd.nessus', withDtd))).toHaveLength(6);
    // An entity that was never declared is an error, not an empty string.
    const undeclared = await rejection(parse('nessus', fixture('undeclared.nessus', '<NessusClientData_v2>&xxe;</NessusClientData_v2>')));
    expect(undeclared.message).toMatch(/undeclared\.nessus: nessus: not well-formed XML \(.*undefined entity/);
    if (!fifo) expect(readFileSync(secret, 'utf8')).toBe('TOP-SECRET-CONTENT');
  });

  it('elements nested beyond the depth cap', async () => {
    const deep = `<NessusClientData_v2>${'<a>'.repeat(100)}${'</a>'.repeat(100)}</NessusClientData_v2>`;
    const err = await rejection(parse('nessus', fixture('deep.nessus', deep)));
    expect(err.reason).toBe('elements nested deeper than 64');
  });

  it('a CSV missing a required column', async () => {
    const noQid = QUALYS_CSV.replace('"QID",', '"Q-ID",');
    const err = await rejection(parse('qualys-csv', fixture('no-qid.csv', noQid)));
    expect(err.message).toBe('no-qid.csv: qualys-csv: QID: required column "QID" is missing from the header row');
    const noPlugin = NESSUS_CSV.replace('Plugin ID,', 'Plugin Identifier,');
    const err2 = await rejection(parse('tenable-csv', fixture('no-plugin.csv', noPlugin)));
    expect(err2.message).toBe('no-plugin.csv: tenable-csv: Plugin ID: required column "Plugin ID" or "Plugin" is missing from the header row');
  });

  it('a CSV with an unterminated quote', async () => {
    const err = await rejection(parse('tenable-csv', fixture('unterminated.csv', NESSUS_CSV.split('\r\n')[0] + '\r\n42873,"CVE-2016-2183,5.0\r\n')));
    expect(err.message).toMatch(/^unterminated\.csv: tenable-csv: not valid CSV \(/);
  });

  it('a wrong-format file given with an explicit format', async () => {
    const qualys = fixture('qualys-as-nessus.xml', QUALYS_XML);
    const named = await connectorFor(qualys, 'qualys-as-nessus.xml', 'nessus');
    expect(named.format).toBe('nessus');
    const err = await rejection(parse('nessus', qualys));
    expect(err.message).toBe('qualys-as-nessus.xml: nessus: ASSET_DATA_REPORT: root element is <ASSET_DATA_REPORT>, expected <NessusClientData_v2>');
    const json = fixture('trivy.json', '{"SchemaVersion": 2, "ArtifactName": "x", "Results": []}');
    expect((await rejection(parse('cyclonedx-xml', json))).message).toMatch(/^trivy\.json: cyclonedx-xml: not well-formed XML \(/);
    expect((await rejection(parse('qualys-xml', json))).message).toMatch(/^trivy\.json: qualys-xml: not well-formed XML \(/);
    const nessusAsCsv = await rejection(parse('qualys-csv', fixture('scan-as-csv.nessus', NESSUS_XML)));
    expect(nessusAsCsv.message).toMatch(/^scan-as-csv\.nessus: qualys-csv: IP: required column "IP" is missing/);
    const csvAsCdx = await rejection(parse('cyclonedx-xml', fixture('csv-as-cdx.csv', QUALYS_CSV)));
    expect(csvAsCdx.message).toMatch(/^csv-as-cdx\.csv: cyclonedx-xml: not well-formed XML \(/);
    const bomAsNessus = await rejection(parse('nessus', fixture('bom-as-nessus.xml', CDX_BOM)));
    expect(bomAsNessus.reason).toBe('root element is <bom>, expected <NessusClientData_v2>');
  });

  it('own fixtures are detected by their own connector only', async () => {
    const cases: [string, string][] = [
      ['nessus', NESSUS_XML], ['tenable-csv', NESSUS_CSV], ['qualys-xml', QUALYS_XML], ['qualys-csv', QUALYS_CSV],
      ['cyclonedx-xml', CDX_BOM], ['cyclonedx-xml', CDX_VEX],
    ];
    for (const [format, content] of cases) {
      expect(connectors.filter((c) => c.detect(content)).map((c) => c.format)).toEqual([format]);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const dd = (...parts: string[]) => corpusFile('scanners', 'defectdojo', ...parts);

/** MANIFEST.tsv: DefectDojo's own finding count per file. */
function manifestCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(dd('MANIFEST.tsv'), 'utf8').split('\n').slice(1)) {
    const [, file, , expected] = line.split('\t');
    if (file && expected) counts.set(file, Number(expected));
  }
  return counts;
}

const distinct = (findings: NormalizedFinding[], key: (f: NormalizedFinding) => string) => new Set(findings.map(key)).size;

interface CorpusCase {
  file: string;
  format: (typeof MY_FORMATS)[number];
  count: number;
  /** Our findings grouped the way DefectDojo groups them: must give MANIFEST's count. */
  ddGroups: (f: NormalizedFinding) => string;
}

const CORPUS: CorpusCase[] = [
  // DD merges one plugin across hosts and ports; ours is per host x plugin x port x CVE.
  { file: 'tenable/nessus/nessus_many_vuln.xml', format: 'nessus', count: 7, ddGroups: (f) => f.title! },
  { file: 'tenable/nessus/nessus_v_unknown.xml', format: 'nessus', count: 296, ddGroups: (f) => f.title! },
  { file: 'tenable/nessus/nessus_with_cvssv3.nessus', format: 'nessus', count: 168, ddGroups: (f) => f.title! },
  { file: 'tenable/nessus_was/nessus_was_no_vuln.xml', format: 'nessus', count: 0, ddGroups: (f) => f.title! },
  // DD keeps one finding per row; ours splits the row listing two CVEs.
  { file: 'tenable/nessus/nessus_many_vuln.csv', format: 'tenable-csv', count: 5, ddGroups: (f) => `${f.title}|${f.asset.assetKey}` },
  { file: 'tenable/nessus/nessus-template.csv', format: 'tenable-csv', count: 5, ddGroups: (f) => `${f.title}|${f.asset.assetKey}` },
  // DD merges rows by title+host+port; ours is per CVE and per affected package (kernel + kernel-tools).
  { file: 'tenable/tenable_many_vuln.csv', format: 'tenable-csv', count: 21, ddGroups: (f) => `${f.title}|${f.asset.assetKey}|${f.location}` },
  // DD keeps one finding per host x QID; ours splits QIDs listing several CVEs.
  { file: 'qualys/Qualys_Sample_Report.xml', format: 'qualys-xml', count: 353, ddGroups: (f) => `${f.title}|${f.asset.assetKey}|${f.location}` },
  { file: 'qualys/empty.xml', format: 'qualys-xml', count: 0, ddGroups: (f) => f.title! },
  // DD merges hosts of one QID; ours is per host x QID x CVE (6 rows, one QID with 23 CVEs).
  { file: 'qualys/Qualys_Sample_Report.csv', format: 'qualys-csv', count: 28, ddGroups: (f) => f.title! },
  { file: 'qualys/empty.csv', format: 'qualys-csv', count: 0, ddGroups: (f) => f.title! },
  { file: 'cyclonedx/cyclonedx_bom.xml', format: 'cyclonedx-xml', count: 0, ddGroups: (f) => f.issueId },
];

describe.skipIf(!hasCorpus)(`DefectDojo sample reports${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  const results = new Map<string, NormalizedFinding[]>();
  const parsed = async (file: string) => {
    let found = results.get(file);
    if (!found) {
      const c = CORPUS.find((x) => x.file === file)!;
      found = await parse(c.format, dd(file));
      results.set(file, found);
    }
    return found;
  };

  it.each(CORPUS)('$file: $count findings, and MANIFEST count under DefectDojo grouping', async ({ file, count, ddGroups }) => {
    const findings = await parsed(file);
    expect(findings).toHaveLength(count);
    // No report lists one finding twice, so ingest's in-report merge changes nothing here.
    expect(fingerprints(findings).size).toBe(count);
    expect(distinct(findings, ddGroups)).toBe(manifestCounts().get(file));
  });

  it('nessus_many_vuln.xml: one FQDN-named host, info plugins, SYN scanner on two ports', async () => {
    const findings = await parsed('tenable/nessus/nessus_many_vuln.xml');
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['host:preprod.boardvantage.net']));
    expect(findings.every((f) => f.severity === 'info' && f.issueId.startsWith('nessus:'))).toBe(true);
    expect(find(findings, { issueId: 'nessus:11219' }).map((f) => f.location).sort()).toEqual(['264/tcp', '443/tcp']);
    expect(find(findings, { issueId: 'nessus:19506' })[0]).toMatchObject({ component: 'Nessus Scan Information', location: '0/tcp', version: '' });
  });

  it('nessus_v_unknown.xml: seven hosts by FQDN tag, one CVE plugin on each', async () => {
    const findings = await parsed('tenable/nessus/nessus_v_unknown.xml');
    const hosts = [...new Set(findings.map((f) => f.asset.assetKey))].sort();
    expect(hosts).toEqual([1, 2, 3, 4, 5, 6, 9].map((n) => `host:qa3app0${n}`));
    const rdp = find(findings, { issueId: 'CVE-2005-1794' });
    expect(rdp).toHaveLength(7);
    for (const f of rdp) {
      expect(f).toMatchObject({ component: 'Microsoft Windows Remote Desktop Protocol Server Man-in-the-Middle Weakness', location: '3389/tcp', severity: 'medium' });
    }
    expect(find(findings, { issueId: 'nessus:11219', assetKey: 'host:qa3app01' })).toHaveLength(6);
    expect(find(findings, { issueId: 'nessus:10150', assetKey: 'host:qa3app01' })[0]!.location).toBe('137/udp');
    const severities = Object.fromEntries(['info', 'low', 'medium'].map((s) => [s, find(findings, { severity: s as NormalizedFinding['severity'] }).length]));
    expect(severities).toEqual({ info: 266, low: 7, medium: 23 });
  });

  it('nessus_with_cvssv3.nessus: CVE per finding, CVSS3, installed and fixed versions', async () => {
    const findings = await parsed('tenable/nessus/nessus_with_cvssv3.nessus');
    expect(new Set(findings.map((f) => f.asset.assetKey))).toEqual(new Set(['host:testphp.vulnweb.com']));
    expect(findings.filter((f) => f.issueId.startsWith('CVE-'))).toHaveLength(138);
    expect(findings.filter((f) => f.issueId.startsWith('nessus:'))).toHaveLength(30);
    const counts = (s: string) => findings.filter((f) => f.severity === s).length;
    expect([counts('critical'), counts('high'), counts('medium'), counts('low'), counts('info')]).toEqual([2, 87, 55, 1, 23]);
    expect(find(findings, { issueId: 'CVE-2007-1001' })[0]).toMatchObject({
      component: 'PHP 5.x < 5.2.2 Multiple vulnerabilities',
      version: '5.1.6',
      fixedVersion: '5.2.2',
      location: '80/tcp',
      severity: 'high',
      cvssScore: 7.5,
      cvssVector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N',
    });
    expect(find(findings, { issueId: 'CVE-2006-1015' })[0]).toMatchObject({
      component: 'PHP 5.x < 5.2 Multiple Vulnerabilities',
      cwes: ['CWE-94', 'CWE-119', 'CWE-399'],
      references: ['http://www.hardened-php.net/advisory_092006.133.html', 'http://www.php.net/releases/5_2_0.php'],
    });
    expect(find(findings, { issueId: 'CVE-2006-1015' })[0]!.description).toMatch(/^According to its banner, the version of PHP 5\.x/);
    // The plugin reported twice (two PHP installs seen) is two findings, told apart by version.
    expect(find(findings, { issueId: 'nessus:58987' }).map((f) => [f.version, f.severity, f.cvssScore])).toEqual([
      ['5.6.40-38+ubuntu20.04.1+deb.sury.org+1', 'critical', 10],
      ['5.1.6', 'critical', 10],
    ]);
  });

  it('Tenable CSVs: Tenable.sc, Nessus template and Tenable.io exports', async () => {
    const sc = await parsed('tenable/nessus/nessus_many_vuln.csv');
    expect(sc.map((f) => [f.asset.assetKey, f.issueId, f.location, f.severity, f.cvssScore ?? null])).toEqual([
      ['host:10.1.1.1', 'CVE-2004-2761', '443/tcp', 'medium', 7.5],
      ['host:10.1.1.1', 'nessus:51192', '443/tcp', 'medium', 6.5],
      ['host:10.2.1.1', 'nessus:57582', '443/tcp', 'medium', null],
      ['host:10.2.1.1', 'CVE-2013-2566', '443/tcp', 'medium', 5.9],
      ['host:10.2.1.1', 'CVE-2015-2808', '443/tcp', 'medium', 5.9],
    ]);
    const template = await parsed('tenable/nessus/nessus-template.csv');
    // This export lost its decimal separators ("75" for 7.5); scores are read as tenths.
    expect(template.map((f) => [f.asset.assetKey, f.issueId, f.location, f.severity, f.cvssScore, f.version])).toEqual([
      ['host:192.168.0.100', 'CVE-2016-2183', '3389/tcp', 'high', 7.5, ''],
      ['host:192.168.0.100', 'CVE-2003-1567', '443/tcp', 'medium', 5.3, ''],
      ['host:192.168.0.100', 'CVE-2023-48795', '22/tcp', 'medium', 5.9, ''],
      ['host:192.168.0.101', 'CVE-2024-4577', '8080/tcp', 'critical', 9.8, '8.2.18'],
      ['host:192.168.0.101', 'CVE-2024-23443', '5601/tcp', 'medium', 4.9, '7.13.2'],
    ]);
    expect(template[0]).toMatchObject({
      component: 'SSL Medium Strength Cipher Suites Supported (SWEET32)',
      references: ['http://www.nessus.org/u?df5555f5', 'https://sweet32.info'],
    });
    expect(template[0]!.description).toMatch(/^The remote host supports the use of SSL ciphers/);
    const tio = await parsed('tenable/tenable_many_vuln.csv');
    expect(new Set(tio.map((f) => f.asset.assetKey))).toEqual(
      new Set(['host:ip-127-0-0-1.us-west-2.compute.internal', 'host:ip-192-168-1-110.us-west-2.compute.internal']),
    );
    expect(find(tio, { issueId: 'CVE-2023-32233' }).map((f) => [f.component, f.version, f.fixedVersion, f.location, f.severity, f.cvssScore])).toEqual([
      ['kernel', '4.14.314-237.533.amzn2', '4.14.314-238.539.amzn2', '0/tcp', 'high', 7.8],
      ['kernel-tools', '4.14.314-237.533.amzn2', '4.14.314-238.539.amzn2', '0/tcp', 'high', 7.8],
    ]);
    expect(find(tio, { component: 'mariadb-libs' })).toHaveLength(10);
    // Tenable writes the vector without its `CVSS:3.0/` prefix; the connector restores it.
    expect(find(tio, { issueId: 'CVE-2023-32233' }).map((f) => f.cvssVector)).toEqual([
      'CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 'CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H',
    ]);
    expect(find(tio, { issueId: 'CVE-2022-21216' })[0]).toMatchObject({ component: 'microcode_ctl', version: '2.1-47.amzn2.0.14', severity: 'medium' });
  });

  it('Qualys_Sample_Report.xml: hosts by DNS name, QID or CVE, Qualys levels', async () => {
    const findings = await parsed('qualys/Qualys_Sample_Report.xml');
    const perHost = Object.fromEntries(
      [...new Set(findings.map((f) => f.asset.assetKey))].map((k) => [k, find(findings, { assetKey: k }).length]),
    );
    expect(perHost).toEqual({
      'host:demo13.s02.sjc01.qualys.com': 27,
      'host:demo14.s02.sjc01.qualys.com': 30,
      'host:demo15.s02.sjc01.qualys.com': 20,
      'host:trn-win7.trn.qualys.com': 44,
      'host:win2008r2.trn.qualys.com': 54,
      'host:trn-win2012-dc.trn.qualys.com': 32,
      'host:demo20.s02.sjc01.qualys.com': 146,
    });
    expect(find(findings, { issueId: 'qualys:6', assetKey: 'host:demo13.s02.sjc01.qualys.com' })[0]).toMatchObject({
      component: 'DNS Host Name',
      severity: 'info',
      location: '',
    });
    const amd = find(findings, { assetKey: 'host:demo14.s02.sjc01.qualys.com', component: 'AMD Processors Multiple Security Vulnerabilities (RYZENFALL/MASTERKEY/CHIMERA-FW/FALLOUT)' });
    expect(amd.map((f) => f.issueId)).toEqual(['CVE-2018-8930', 'CVE-2018-8931', 'CVE-2018-8932', 'CVE-2018-8933', 'CVE-2018-8934', 'CVE-2018-8935', 'CVE-2018-8936']);
    // The glossary's CVSS3 base score (DD reports the per-detection final score, 8.2, here).
    expect(amd.every((f) => f.severity === 'high' && f.cvssScore === 9)).toBe(true);
    // Severity levels match DefectDojo's legacy histogram per host x QID: 177 info, 65 low, 46 medium, 6 high, 7 critical.
    const perDetection = new Map(findings.map((f) => [`${f.asset.assetKey}|${f.component}|${f.location}`, f.severity]));
    const histogram = [...perDetection.values()].reduce<Record<string, number>>((h, s) => ({ ...h, [s]: (h[s] ?? 0) + 1 }), {});
    expect(histogram).toEqual({ info: 177, low: 65, medium: 46, high: 6, critical: 7 });
    expect(find(findings, { location: '8443/tcp' })).toHaveLength(43);
  });

  it('Qualys_Sample_Report.csv: four hosts, EOL QID on each, one Windows update with 23 CVEs', async () => {
    const findings = await parsed('qualys/Qualys_Sample_Report.csv');
    expect(find(findings, { issueId: 'qualys:105971' }).map((f) => f.asset.assetKey)).toEqual([
      'host:ip-10-98-57-180.eu-west-1.compute.internal',
      'host:ip-10-98-57-151.eu-west-1.compute.internal',
      'host:ip-10-98-49-209.eu-west-1.compute.internal',
      'host:ip-10-98-35-11.eu-west-1.compute.internal',
    ]);
    expect(find(findings, { issueId: 'qualys:105971' })[0]).toMatchObject({
      component: 'EOL/Obsolete Software: Microsoft ASP.NET 1.0 Detected',
      severity: 'critical',
      cvssScore: 8.1,
      location: '',
    });
    const update = find(findings, { component: 'Microsoft Windows Security Update for May 2021' });
    expect(update).toHaveLength(23);
    expect(update.every((f) => /^CVE-\d{4}-\d+$/.test(f.issueId) && f.cvssScore === 9.9)).toBe(true);
    expect(findings.every((f) => f.severity === 'critical')).toBe(true);
  });

  it('every corpus file is detected by its own connector only, among all registered ones', async () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : [path];
      });
    const mine = new Map(CORPUS.map((c) => [dd(c.file), c.format]));
    const files = [...walk(corpusFile('scanners')), ...walk(corpusFile('intel'))].filter((f) => !f.endsWith('.gz'));
    expect(files.length).toBeGreaterThan(50);
    for (const file of files) {
      const detected = connectors.filter((c) => c.detect(readHeadSync(file))).map((c) => c.format);
      const own = mine.get(file);
      const label = relative(corpusDir, file);
      if (own) expect([label, detected]).toEqual([label, [own]]);
      else expect([label, detected.filter((f) => (MY_FORMATS as readonly string[]).includes(f))]).toEqual([label, []]);
    }
    // And auto-detection through the registry picks the same.
    for (const c of CORPUS) {
      if (statSync(dd(c.file)).size === 0) continue;
      expect((await connectorFor(dd(c.file), c.file)).format).toBe(c.format);
    }
    expect(await readHead(dd(CORPUS[0]!.file))).toBe(readHeadSync(dd(CORPUS[0]!.file)));
  });
});

/** The first 64 KiB as the registry reads them. */
function readHeadSync(file: string): string {
  const buffer = readFileSync(file);
  return buffer.subarray(0, 64 * 1024).toString('utf8');
}

// ---------------------------------------------------------------------------------------------

describe('memory', () => {
  it('parses a ~150 MB .nessus with flat memory', async () => {
    const file = join(tmp, 'big.nessus');
    const out = createWriteStream(file);
    const write = async (s: string) => {
      if (!out.write(s)) await once(out, 'drain');
    };
    await write('<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="big">\n');
    const filler = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(12);
    let bytes = 0;
    let hosts = 0;
    while (bytes < 150_000_000) {
      const ip = `10.${(hosts >> 16) & 255}.${(hosts >> 8) & 255}.${hosts & 255}`;
      let s = `<ReportHost name="${ip}"><HostProperties><tag name="host-ip">${ip}</tag><tag name="host-fqdn">h${hosts}.big.example</tag></HostProperties>\n`;
      for (let i = 0; i < 200; i++) {
        s += `<ReportItem port="${i}" svc_name="x" protocol="tcp" severity="${i % 5}" pluginID="${10000 + i}" pluginName="Plugin ${i}" pluginFamily="F">` +
          `<description>${filler}</description><cve>CVE-2020-${1000 + i}</cve><cvss3_base_score>7.5</cvss3_base_score>` +
          `<plugin_output>Installed version : 1.${i}\nFixed version : 2.0</plugin_output></ReportItem>\n`;
      }
      s += '</ReportHost>\n';
      bytes += s.length;
      hosts++;
      await write(s);
    }
    await write('</Report></NessusClientData_v2>\n');
    out.end();
    await once(out, 'finish');
    expect(statSync(file).size).toBeGreaterThan(140_000_000);

    const started = Date.now();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let count = 0;
    for await (const f of connector('nessus').parse(file, {})) {
      if (++count % 2000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
      if (count === 1) expect(f).toMatchObject({ asset: { assetKey: 'host:h0.big.example' }, issueId: 'CVE-2020-1000', version: '1.0' });
    }
    expect(count).toBe(hosts * 200);
    expect(peak - baseline).toBeLessThan(150 * 1024 * 1024);
    expect(Date.now() - started).toBeLessThan(30_000);
    rmSync(file);
  });
});
