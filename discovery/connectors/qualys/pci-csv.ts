import { ReportError, type Severity } from '../../model.js';
import type { CsvColumns } from '../../streams/csv.js';
import { csvConnector } from '../shared/csv-connector.js';
import { cveList } from '../nessus/findings.js';
import { qualysCvss3, qualysFindings, qualysSeverity } from './common.js';

// Qualys PCI scan CSV (PCI compliance / HackerGuardian exports): upper-case columns `IP, HOSTNAME,
// QID, VULN TITLE, SEVERITY, PORT, PROTOCOL, CVSS_BASE, Q_SEVERITY, ..., CVEID`. Same identity as the
// Qualys VM connectors (common.ts): one finding per host, QID, port and CVE.

const FORMAT = 'qualys-pci-csv';

const COLUMNS = {
  ip: { names: ['IP'], required: true },
  qid: { names: ['QID'], required: true },
  title: { names: ['VULN TITLE'], required: true },
  hostname: { names: ['HOSTNAME', 'DNS'] },
  netbios: { names: ['NETBIOS'] },
  // Qualys's own level (1-5); SEVERITY is the PCI rating (Low/Medium/High, or L/M/H), or a level.
  level: { names: ['Q_SEVERITY', 'SEVERITY LEVEL'] },
  severity: { names: ['SEVERITY'] },
  port: { names: ['PORT'] },
  protocol: { names: ['PROTOCOL'] },
  cve: { names: ['CVEID', 'CVE ID', 'CVE'] },
  cvss: { names: ['CVSS3 BASE', 'CVSS_BASE', 'CVSS BASE', 'CVSS'] },
  status: { names: ['VULN STATUS', 'STATUS'] },
  threat: { names: ['THREAT'] },
  solution: { names: ['SOLUTION'] },
  category: { names: ['CATEGORY'] },
} satisfies CsvColumns<string>;

const RATINGS: Record<string, Severity> = {
  c: 'critical', critical: 'critical', urgent: 'critical',
  h: 'high', high: 'high', serious: 'high',
  m: 'medium', medium: 'medium',
  l: 'low', low: 'low', minimal: 'low',
  i: 'info', info: 'info', informational: 'info',
};

/** Qualys's level when the export has one, else the PCI rating (a word, its initial, or a level). */
function pciSeverity(level: string, rating: string): Severity {
  const fromLevel = qualysSeverity(level);
  if (fromLevel !== 'unknown') return fromLevel;
  return RATINGS[rating.trim().toLowerCase()] ?? qualysSeverity(rating);
}

export const qualysPciCsv = csvConnector({
  format: FORMAT,
  description: 'Qualys PCI scan CSV (IP, HOSTNAME, QID, VULN TITLE, SEVERITY, CVEID): one finding per host, QID, port and CVE',
  columns: COLUMNS,
  *rowFindings({ values: v, line }, name, options, host) {
    if (v.qid === '' && v.title === '' && v.ip === '') return;
    if (!/^\d+$/.test(v.qid)) throw new ReportError(name, FORMAT, 'QID', `expected a number on line ${line}, found ${JSON.stringify(v.qid)}`);
    const asset = host({ hostname: v.hostname, netbios: v.netbios, ip: v.ip }, options.target);
    if (!asset) throw new ReportError(name, FORMAT, 'IP', `no host IP or name on line ${line}`);
    yield* qualysFindings(asset, {
      qid: v.qid,
      title: v.title || `QID ${v.qid}`,
      cves: cveList(v.cve),
      port: v.port,
      protocol: v.protocol,
      severity: pciSeverity(v.level, v.severity),
      ...qualysCvss3(v.cvss),
      status: v.status,
      description: v.threat,
      solution: v.solution,
      category: v.category,
    });
  },
});
