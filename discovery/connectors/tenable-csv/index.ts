import { ReportError } from '../../model.js';
import type { CsvColumns } from '../../streams/csv.js';
import { csvConnector } from '../shared/csv-connector.js';
import { cveList, cvssScore, nessusFindings, nessusSeverity } from '../nessus/findings.js';
import { cvss3Vector } from '../common/cvss.js';

// Nessus / Tenable CSV exports: Nessus ("Plugin ID, CVE, ..., Host, Protocol, Port, Name"),
// Tenable.io (adds IP Address, FQDN, NetBios, Vulnerability State) and Tenable.sc ("Plugin,
// Plugin Name, ..., IP Address, DNS Name, NetBIOS Name"). Same identity rules as the XML connector.

const FORMAT = 'tenable-csv';

const COLUMNS = {
  pluginId: { names: ['Plugin ID', 'Plugin'], required: true },
  name: { names: ['Name', 'Plugin Name'], required: true },
  host: { names: ['Host', 'IP Address', 'DNS Name', 'FQDN'], required: true },
  ip: { names: ['IP Address', 'IP'] },
  fqdn: { names: ['FQDN', 'DNS Name', 'Host FQDN'] },
  netbios: { names: ['NetBIOS Name', 'NetBios', 'NetBIOS'] },
  cve: { names: ['CVE', 'CVEs'] },
  protocol: { names: ['Protocol'] },
  port: { names: ['Port'] },
  risk: { names: ['Risk'] },
  severity: { names: ['Severity'] },
  riskFactor: { names: ['Risk Factor'] },
  cvss3: { names: ['CVSS v3.0 Base Score', 'CVSS V3 Base Score', 'CVSS3 Base Score', 'CVSS v3 Base Score', 'CVSS v3.1 Base Score'] },
  cvss3Vector: { names: ['CVSS v3.0 Vector', 'CVSS V3 Vector', 'CVSS3 Vector', 'CVSS v3 Vector', 'CVSS v3.1 Vector'] },
  output: { names: ['Plugin Output', 'Plugin Text'] },
  state: { names: ['Vulnerability State', 'State'] },
  description: { names: ['Description'] },
  synopsis: { names: ['Synopsis'] },
  seeAlso: { names: ['See Also'] },
  family: { names: ['Family', 'Plugin Family'] },
  cpe: { names: ['CPE'] },
  solution: { names: ['Solution'] },
} satisfies CsvColumns<string>;

export const tenableCsv = csvConnector({
  format: FORMAT,
  description: 'Nessus / Tenable.io / Tenable.sc CSV export: one finding per host, plugin, port and CVE (same identity as nessus)',
  columns: COLUMNS,
  *rowFindings({ values: v, line }, name, options, host) {
    if (v.pluginId === '') throw new ReportError(name, FORMAT, COLUMNS.pluginId.names[0], `empty on line ${line}`);
    // Tenable.sc lists every name it has; Nessus gives only the target in "Host".
    const asset = host({ fqdn: v.fqdn, netbios: v.netbios, ip: v.ip, target: v.host }, options.target);
    if (!asset) throw new ReportError(name, FORMAT, COLUMNS.host.names[0], `no host name or IP on line ${line}`);
    yield* nessusFindings(asset, {
      pluginId: v.pluginId,
      pluginName: v.name || `Nessus plugin ${v.pluginId}`,
      cves: cveList(v.cve),
      port: v.port,
      protocol: v.protocol,
      pluginOutput: v.output.replace(/^Plugin Output:\s*/i, ''),
      severity: nessusSeverity(v.risk, v.severity, v.riskFactor),
      cvssScore: cvssScore(v.cvss3),
      cvssVector: cvss3Vector(v.cvss3Vector),
      description: v.description || v.synopsis,
      seeAlso: v.seeAlso,
      family: v.family,
      cpe: v.cpe,
      solution: v.solution,
      ...(v.state.toLowerCase() === 'fixed' ? { vendorStatus: 'fixed' as const } : {}),
    });
  },
});
