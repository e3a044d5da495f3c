// The normalized model every connector produces. Large reports stream through it; nothing here
// holds a whole report in memory.

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info' | 'unknown';

export interface AssetRef {
  /** Identity key, e.g. `image:docker.io/library/nginx:1.25`. */
  assetKey: string;
  kind: 'container_image' | 'filesystem' | 'repository' | 'host' | 'other';
  name: string;
  digest?: string;
}

export interface NormalizedFinding {
  asset: AssetRef;
  kind: 'vulnerability' | 'misconfiguration' | 'secret';
  /** CVE, GHSA, vendor advisory or plugin id. */
  issueId: string;
  component: string;
  version: string;
  /** Where the component lives when one asset can hold it twice (a jar's path); '' otherwise. */
  location: string;
  fixedVersion?: string;
  severity: Severity;
  cvssScore?: number;
  /** The CVSS v3.x vector (`CVSS:3.1/AV:N/...`): prioritization reads automatability and impact from it. */
  cvssVector?: string;
  title?: string;
  /**
   * `fix_available` (Trivy/Grype `fixed`): the installed version is still affected and a fixed one
   * exists; unlike `fixed` (CycloneDX `resolved`), which says this very component is not affected.
   */
  vendorStatus?: 'affected' | 'not_affected' | 'fixed' | 'under_investigation' | 'will_not_fix' | 'false_positive' | 'suppressed' | 'unknown' | 'fix_available';
  description?: string;
  references?: string[];
  /** `CWE-<n>` identifiers. */
  cwes?: string[];
}

/** A report that cannot be imported, with the file, format and field that made it so. */
export class ReportError extends Error {
  constructor(
    readonly file: string,
    readonly format: string,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${format}${field ? `: ${field}` : ''}: ${reason}`);
    this.name = 'ReportError';
  }
}

const SEVERITIES: Record<string, Severity> = {
  critical: 'critical',
  high: 'high',
  medium: 'medium',
  moderate: 'medium',
  low: 'low',
  negligible: 'low',
  info: 'info',
  informational: 'info',
  none: 'info',
  unknown: 'unknown',
};

export function normalizeSeverity(raw: unknown): Severity | undefined {
  return typeof raw === 'string' ? SEVERITIES[raw.trim().toLowerCase()] : undefined;
}
