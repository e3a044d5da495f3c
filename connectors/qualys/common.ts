import type { AssetRef, NormalizedFinding, Severity } from '../model.js';
import { location } from '../nessus/findings.js';

// Identity rules shared by the Qualys XML and CSV connectors: one finding per host x QID x
// port/protocol x CVE, the component being the QID's title.

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
  status: string;
  /** Qualys's threat text for the QID. */
  description?: string | undefined;
}

export function* qualysFindings(asset: AssetRef, d: QualysDetection): Generator<NormalizedFinding> {
  const issueIds = d.cves.length > 0 ? d.cves : [`qualys:${d.qid}`];
  const where = location(d.port, d.protocol);
  for (const issueId of issueIds) {
    yield {
      asset,
      kind: 'vulnerability',
      issueId,
      component: d.title,
      version: '',
      location: where,
      severity: d.severity,
      ...(d.cvssScore !== undefined ? { cvssScore: d.cvssScore } : {}),
      title: d.title,
      // Qualys keeps remediated detections in reports with status Fixed.
      ...(d.status.trim().toLowerCase() === 'fixed' ? { vendorStatus: 'fixed' as const } : {}),
      ...(d.description ? { description: d.description } : {}),
    };
  }
}
