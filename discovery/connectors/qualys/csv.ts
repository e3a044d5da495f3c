import { ReportError } from '../../model.js';
import type { CsvColumns } from '../../streams/csv.js';
import { csvConnector } from '../shared/csv-connector.js';
import { cveList } from '../nessus/findings.js';
import { qualysCvss3, qualysFindings, qualysSeverity } from './common.js';

// Qualys VM CSV (scan results and vulnerability reports). Report exports open with preamble lines
// (company, report title, dates) before the header row; those are skipped.

const FORMAT = 'qualys-csv';

const COLUMNS = {
  ip: { names: ['IP'], required: true },
  qid: { names: ['QID'], required: true },
  title: { names: ['Title'], required: true },
  severity: { names: ['Severity'], required: true },
  dns: { names: ['DNS', 'DNS Name'] },
  netbios: { names: ['NetBIOS'] },
  port: { names: ['Port'] },
  protocol: { names: ['Protocol'] },
  cve: { names: ['CVE ID', 'CVE'] },
  // Base scores only ("CVSS3" alone is the temporal-adjusted one), matching the XML glossary's CVSS3_BASE.
  cvss3: { names: ['CVSS3.1 Base', 'CVSS3 Base', 'CVSS3.0 Base'] },
  status: { names: ['Vuln Status', 'Status'] },
  threat: { names: ['Threat'] },
  solution: { names: ['Solution'] },
  category: { names: ['Category'] },
} satisfies CsvColumns<string>;

export const qualysCsv = csvConnector({
  format: FORMAT,
  description: 'Qualys VM CSV report (preamble lines tolerated): one finding per host, QID, port and CVE',
  columns: COLUMNS,
  *rowFindings({ values: v, line }, name, options, host) {
    // Footer notes (a single text cell) carry no QID, title or severity.
    if (v.qid === '' && v.title === '' && v.severity === '') return;
    if (!/^\d+$/.test(v.qid)) throw new ReportError(name, FORMAT, 'QID', `expected a number on line ${line}, found ${JSON.stringify(v.qid)}`);
    const asset = host({ hostname: v.dns, netbios: v.netbios, ip: v.ip }, options.target);
    if (!asset) throw new ReportError(name, FORMAT, 'IP', `no host IP or name on line ${line}`);
    yield* qualysFindings(asset, {
      qid: v.qid,
      title: v.title || `QID ${v.qid}`,
      cves: cveList(v.cve),
      port: v.port,
      protocol: v.protocol,
      severity: qualysSeverity(v.severity),
      ...qualysCvss3(v.cvss3),
      status: v.status,
      description: v.threat,
      solution: v.solution,
      category: v.category,
    });
  },
});
