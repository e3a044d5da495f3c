import { normalizeSeverity, type Severity } from '../../model.js';
import { severityFromScore } from '../common/identity.js';

// What the Defender CSV export and the Defender API JSON share: vulnerability ids, severity, and
// how the recommended security update is reported.

/**
 * A vulnerability id as Defender writes it: a CVE, or Defender's own `TVM-<year>-<n>` for issues
 * without one.
 */
export const isVulnerabilityId = (id: string): boolean => /^(CVE|TVM)-\d{4}-\d+$/i.test(id);

/** Defender's own level first; the CVSS score only when the level is absent. */
export function defenderSeverity(level: string | undefined, score: number | undefined): Severity {
  return normalizeSeverity(level) ?? (score === undefined ? 'unknown' : severityFromScore(score));
}

/** Windows itself is inventoried as software (`windows_10`, `windows_server_2019`): an OS fix. */
export const isOperatingSystem = (vendor: string, software: string): boolean =>
  vendor.toLowerCase() === 'microsoft' && /^windows(_|$)/i.test(software);

/**
 * The fix Defender recommends is a security update (a KB article for Windows), not a version: it
 * becomes the description's last paragraph and the status `fix_available`.
 */
export function updateFacts(update: string, description = ''): { description?: string; vendorStatus?: 'fix_available' } {
  const text = [description, update ? `Recommended security update: ${update}` : ''].filter(Boolean).join('\n\n');
  return { ...(text ? { description: text } : {}), ...(update ? { vendorStatus: 'fix_available' as const } : {}) };
}
