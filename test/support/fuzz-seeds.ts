import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ParseOptions } from '../../discovery/connectors/index.js';

// The seed corpus of the connector fuzzer: one valid report per format. Real fixture files where
// the repository has a small one (their READMEs name source and licence); otherwise a minimal
// report of the kind the connector tests write inline (own work, no third-party content).

export interface Seed {
  format: string;
  /** File name the mutated report is written under (its extension matters to nobody but humans). */
  name: string;
  bytes: Buffer;
  /** Where it comes from: a fixture path or "inline". */
  source: string;
  options: ParseOptions;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const fromFile = (format: string, path: string, options: ParseOptions = {}): Seed => ({
  format, name: path.split('/').pop()!, bytes: readFileSync(root + path), source: path, options,
});
const inline = (format: string, name: string, content: unknown, options: ParseOptions = {}): Seed => ({
  format, name, source: 'inline', options,
  bytes: Buffer.from(typeof content === 'string' ? content : JSON.stringify(content, null, 2)),
});

const trivyVuln = (id: string, pkg: string, version: string) => ({ VulnerabilityID: id, PkgName: pkg, InstalledVersion: version, Severity: 'HIGH' });
const snykVuln = {
  id: 'SNYK-JS-LODASH-1040724', packageName: 'lodash', name: 'lodash', version: '4.17.11', packageManager: 'npm',
  severity: 'high', cvssScore: 7.2, CVSSv3: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H/E:P/RL:U/RC:C',
  identifiers: { CVE: ['CVE-2021-23337'], CWE: ['CWE-78'] }, fixedIn: ['4.17.21'], from: ['app@1.0.0', 'lodash@4.17.11'],
  upgradePath: [false, 'lodash@4.17.21'], isUpgradable: true, title: 'Command Injection',
};

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
<ReportItem port="0" svc_name="general" protocol="tcp" severity="4" pluginID="160000" pluginName="RHEL 7 : openssl (RHSA-2022:0000)" pluginFamily="Red Hat Local Security Checks">
<cve>CVE-2022-0778</cve><cvss3_base_score>9.8</cvss3_base_score><risk_factor>Critical</risk_factor>
<plugin_output>
Remote package installed : openssl-1.0.2k-19.el7
Should be                : openssl-1.0.2k-25.el7
</plugin_output></ReportItem>
</ReportHost>
</Report>
</NessusClientData_v2>
`;

const NESSUS_CSV = [
  'Plugin ID,CVE,CVSS v2.0 Base Score,Risk,Host,Protocol,Port,Name,Synopsis,Description,Solution,See Also,Plugin Output,CVSS v3.0 Base Score',
  '42873,CVE-2016-2183,5.0,High,web01.corp.example,tcp,443,SSL Medium Strength Cipher Suites Supported (SWEET32),s,d,fix,,Medium Strength Ciphers & more,7.5',
  '160000,CVE-2022-0778,7.5,Critical,web01.corp.example,tcp,0,RHEL 7 : openssl (RHSA-2022:0000),s,"line one\nline ""two""",yum update,,"Remote package installed : openssl-1.0.2k-19.el7\nShould be                : openssl-1.0.2k-25.el7",9.8',
  '',
].join('\r\n');

const TENABLE_VM_CSV = [
  'asset.host_name,asset.ipv4_addresses,definition.id,definition.name,definition.cve,definition.severity,definition.cvss3.base_score,definition.cvss3.base_vector,severity,port,protocol,state',
  'web-1.example.com,10.1.1.5,176700,Amazon Linux 2 : kernel,CVE-2023-32233,High,7.8,CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H,Critical,0,TCP,ACTIVE',
  ',"10.1.1.6, 10.1.1.7",176700,Amazon Linux 2 : kernel,CVE-2023-32233,High,7.8,,,0,TCP,ACTIVE',
  '',
].join('\n');

const QUALYS_XML = `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE ASSET_DATA_REPORT SYSTEM "https://qualysguard.example/asset_data_report.dtd">
<ASSET_DATA_REPORT>
  <HEADER><COMPANY><![CDATA[Fixture]]></COMPANY></HEADER>
  <HOST_LIST>
    <HOST>
      <IP>10.1.0.7</IP><TRACKING_METHOD>IP</TRACKING_METHOD><DNS><![CDATA[DB01.corp.example]]></DNS><NETBIOS><![CDATA[DB01]]></NETBIOS>
      <VULN_INFO_LIST>
        <VULN_INFO><QID id="qid_38173">38173</QID><TYPE>Vuln</TYPE><PORT>443</PORT><PROTOCOL>tcp</PROTOCOL><VULN_STATUS>Active</VULN_STATUS></VULN_INFO>
        <VULN_INFO><QID id="qid_105971">105971</QID><TYPE>Vuln</TYPE><VULN_STATUS>Fixed</VULN_STATUS></VULN_INFO>
      </VULN_INFO_LIST>
    </HOST>
  </HOST_LIST>
  <GLOSSARY><VULN_DETAILS_LIST>
    <VULN_DETAILS id="qid_38173"><QID id="qid_38173">38173</QID><TITLE><![CDATA[SSL Certificate - Signature Verification Failed]]></TITLE><SEVERITY>2</SEVERITY>
      <CVSS3_SCORE><CVSS3_BASE>5.3 (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N)</CVSS3_BASE></CVSS3_SCORE></VULN_DETAILS>
    <VULN_DETAILS id="qid_105971"><QID id="qid_105971">105971</QID><TITLE><![CDATA[OpenSSL Multiple Vulnerabilities]]></TITLE><SEVERITY>5</SEVERITY>
      <CVE_ID_LIST><CVE_ID><ID><![CDATA[CVE-2022-0778]]></ID></CVE_ID></CVE_ID_LIST></VULN_DETAILS>
  </VULN_DETAILS_LIST></GLOSSARY>
</ASSET_DATA_REPORT>
`;

const QUALYS_CSV = [
  '"Fixture Corp","Qualys Scan Report"',
  '',
  '"IP","DNS","NetBIOS","QID","Title","Vuln Status","Type","Severity","Port","Protocol","FQDN","CVE ID","CVSS3","CVSS3 Base","Threat"',
  '"10.1.0.7","DB01.corp.example","DB01","38173","SSL Certificate - Signature Verification Failed","Active","Vuln","2","443","tcp","","","4.8","5.3 (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N)","multi\nline, threat"',
  '"10.1.0.7","DB01.corp.example","DB01","105971","OpenSSL Multiple Vulnerabilities","Fixed","Vuln","5",,,,"CVE-2022-0778, CVE-2021-3711","8.5","9.8 (AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)",""',
  '',
].join('\n');

/** One valid report per connector format, in the order of `connectors`. */
export const SEEDS: readonly Seed[] = [
  fromFile('trivy-json', 'test/fixtures/trivy-payments-api.json'),
  inline('grype', 'grype.json', {
    matches: [{ vulnerability: { id: 'CVE-2024-0001', severity: 'High' }, artifact: { name: 'zlib', version: '1.3-r0', type: 'apk', locations: [{ path: '/lib/apk/db/installed' }] } }],
    source: { type: 'image', target: { userInput: 'a:1' } },
  }),
  fromFile('sarif', 'test/fixtures/sarif/gitleaks_7.5.0.sarif'),
  inline('cyclonedx-json', 'bom.json', {
    bomFormat: 'CycloneDX', specVersion: '1.5', metadata: { component: { type: 'application', name: 'app' } },
    components: [{ 'bom-ref': 'z', name: 'zlib', version: '1.3' }], vulnerabilities: [{ id: 'CVE-2024-0001', affects: [{ ref: 'z' }] }],
  }),
  inline('dependency-track', 'fpf.json', {
    version: '1.2', meta: { application: 'Dependency-Track' }, project: { name: 'app', version: '1' },
    findings: [{ component: { name: 'zlib', version: '1.3' }, vulnerability: { vulnId: 'CVE-2024-0001', source: 'NVD', severity: 'HIGH' }, analysis: {} }],
  }),
  inline('npm-audit', 'npm-audit.json', {
    auditReportVersion: 2,
    vulnerabilities: { debug: { name: 'debug', severity: 'low', via: [{ source: 1, name: 'debug', dependency: 'debug', url: 'https://github.com/advisories/GHSA-gxpj-cx7g-858c', severity: 'low' }] } },
  }, { target: 'app' }),
  inline('osv-scanner', 'osv.json', {
    results: [{ source: { path: '/src/app/package-lock.json', type: 'lockfile' }, packages: [{ package: { name: 'debug', version: '4.0.0', ecosystem: 'npm' }, vulnerabilities: [{ id: 'GHSA-gxpj-cx7g-858c', aliases: ['CVE-2017-20165'] }] }] }],
  }),
  inline('snyk-json', 'snyk.json', {
    vulnerabilities: [snykVuln], ok: false, dependencyCount: 3, org: 'o', packageManager: 'npm',
    projectName: 'app', displayTargetFile: 'package-lock.json', path: '/src/app',
  }),
  fromFile('gitlab-dependency-scanning', 'test/fixtures/gitlab-dependency-scanning/gl-dependency-scanning-report-2-vuln-missing-component_v15.json', { target: 'shop/api' }),
  fromFile('gitlab-container-scanning', 'test/fixtures/gitlab-container-scanning/gl-container-scanning-report-5-vuln_v15.json'),
  inline('nessus', 'scan.nessus', NESSUS_XML),
  inline('tenable-csv', 'nessus.csv', NESSUS_CSV),
  inline('tenable-vm-csv', 'tenable-vm.csv', TENABLE_VM_CSV),
  inline('qualys-xml', 'qualys.xml', QUALYS_XML),
  inline('qualys-csv', 'qualys.csv', QUALYS_CSV),
  fromFile('qualys-pci-csv', 'test/fixtures/qualys-pci-csv/monthly_pci_issue6932.csv'),
  fromFile('cyclonedx-xml', 'test/fixtures/cyclonedx/spec1.xml', { target: 'shop/api' }),
  fromFile('cnapp', 'examples/context/cnapp-findings.json'),
  fromFile('aws-inspector2-json', 'test/fixtures/aws-inspector2/aws_inspector2_many_vul.json'),
  fromFile('openvas-xml', 'test/fixtures/openvas-xml/report_detail_v2.xml'),
  fromFile('defender-endpoint-csv', 'test/fixtures/defender-endpoint-csv/device-tvm-software-vulnerabilities.csv'),
  fromFile('defender-endpoint-json', 'test/fixtures/defender-endpoint-json/report_many_vulns.json'),
  fromFile('defender-cloud-json', 'test/fixtures/defender-cloud/defender_for_cloud_many_vuln.json'),
];

export type Family = 'json' | 'xml' | 'csv';

/** How a format is written, for mutations that need to know (a value, an element, a cell). */
export function familyOf(seed: Seed): Family {
  const first = seed.bytes.toString('utf8', 0, 200).replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '{' || first === '[') return 'json';
  if (first === '<') return 'xml';
  return 'csv';
}
