import type { AssetRef, NormalizedFinding, Severity } from '../../model.js';
import { cvssScore, hostCheckFindings, type HostCheckFacts } from '../nessus/findings.js';
import { cvss3Vector } from '../common/cvss.js';

// Identity rules shared by the Qualys XML and CSV connectors: one finding per host x QID x
// port/protocol x CVE, the component being the QID's title (the network-scanner rule of
// nessus/findings.ts, keyed `qualys:<QID>` when the QID lists no CVE).

const LEVELS: Record<string, Severity> = { '1': 'info', '2': 'low', '3': 'medium', '4': 'high', '5': 'critical' };

/** Qualys severity levels 1-5: 5 critical, 4 high, 3 medium, 2 low, 1 info. */
export const qualysSeverity = (raw: string): Severity => LEVELS[raw.trim()] ?? 'unknown';

export interface QualysDetection {
  qid: string;
  title: string;
  cves: readonly string[];
  port: string;
  protocol: string;
  severity: Severity;
  cvssScore?: number | undefined;
  cvssVector?: string | undefined;
  status: string;
  /** Qualys's threat text for the QID. */
  description?: string | undefined;
  /** The QID's solution text (HTML): a fixed version it names becomes the finding's. */
  solution?: string | undefined;
  /** The QID's knowledge-base category (`Ubuntu`, `Windows`, `Web server`...). */
  category?: string | undefined;
}

/**
 * Categories that say what is to be updated: a distribution's packages or Windows (an OS patch
 * run), or an application product. The others (TCP/IP, Information gathering, General remote
 * services...) say nothing about it.
 */
const CATEGORIES: Record<string, HostCheckFacts> = {
  debian: { ecosystem: 'deb', packageClass: 'os' },
  ubuntu: { ecosystem: 'deb', packageClass: 'os' },
  redhat: { ecosystem: 'rpm', packageClass: 'os' },
  centos: { ecosystem: 'rpm', packageClass: 'os' },
  fedora: { ecosystem: 'rpm', packageClass: 'os' },
  suse: { ecosystem: 'rpm', packageClass: 'os' },
  'oracle linux': { ecosystem: 'rpm', packageClass: 'os' },
  'amazon linux': { ecosystem: 'rpm', packageClass: 'os' },
  windows: { packageClass: 'os' },
  'web server': { packageClass: 'app' },
  cgi: { packageClass: 'app' },
  database: { packageClass: 'app' },
  'office application': { packageClass: 'app' },
  'web application': { packageClass: 'app' },
};

export const qualysFacts = (category: string | undefined): HostCheckFacts => CATEGORIES[category?.trim().toLowerCase() ?? ''] ?? {};

/**
 * A CVSS v3 base cell as Qualys writes it: `9.0 (AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H)`, the score
 * and then the vector without its `CVSS:3.x/` prefix (restored as 3.0: Qualys names no minor
 * version), or the score alone.
 */
export function qualysCvss3(raw: string | undefined): { cvssScore?: number; cvssVector?: string } {
  const score = cvssScore(raw);
  const vector = cvss3Vector(/\(([^)]*)\)/.exec(raw ?? '')?.[1]);
  return { ...(score !== undefined ? { cvssScore: score } : {}), ...(vector ? { cvssVector: vector } : {}) };
}

export function qualysFindings(asset: AssetRef, d: QualysDetection): Generator<NormalizedFinding> {
  return hostCheckFindings(asset, {
    fallbackId: `qualys:${d.qid}`,
    name: d.title,
    cves: d.cves,
    port: d.port,
    protocol: d.protocol,
    severity: d.severity,
    cvssScore: d.cvssScore,
    cvssVector: d.cvssVector,
    // Qualys keeps remediated detections in reports with status Fixed.
    vendorStatus: d.status.trim().toLowerCase() === 'fixed' ? 'fixed' : undefined,
    description: d.description,
    solution: d.solution,
    facts: qualysFacts(d.category),
  });
}
