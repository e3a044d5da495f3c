import type { Severity } from '../model.js';

// A finding reported by several scanners gets one rating, whatever order they scanned in. This is
// the rule in TypeScript; ingest.ts applies it in SQL (its merge and its closing step), and the
// ingest tests hold the stored findings to it.

/** One source's rating of a finding, as kept on its finding_sources row. */
export interface SourceRating {
  severity: Severity | string;
  cvssScore: number | null;
  cvssVector: string | null;
}

/** critical > high > medium > low > info (Grype's negligible) > unknown. */
export const SEVERITY_ORDER: readonly Severity[] = ['unknown', 'info', 'low', 'medium', 'high', 'critical'];

export function severityRank(severity: string): number {
  if (severity === 'negligible') return 1;
  const rank = SEVERITY_ORDER.indexOf(severity as Severity);
  return rank === -1 ? 0 : rank;
}

/**
 * The finding's rating from its present sources' ratings: the highest severity any of them gives;
 * the CVSS score and vector of one rating, the one with a vector before one without, then the
 * higher score, then the lexicographically (code point) smaller vector.
 */
export function findingRating(ratings: readonly SourceRating[]): SourceRating | undefined {
  if (ratings.length === 0) return undefined;
  let severity = ratings[0]!.severity;
  for (const r of ratings) if (severityRank(r.severity) > severityRank(severity)) severity = r.severity;
  const best = [...ratings].sort(
    (a, b) =>
      Number(a.cvssVector === null) - Number(b.cvssVector === null)
      || (b.cvssScore ?? -Infinity) - (a.cvssScore ?? -Infinity)
      || (a.cvssVector === b.cvssVector ? 0 : a.cvssVector === null ? 1 : b.cvssVector === null ? -1 : a.cvssVector < b.cvssVector ? -1 : 1),
  )[0]!;
  return { severity: SEVERITY_ORDER[severityRank(severity)]!, cvssScore: best.cvssScore, cvssVector: best.cvssVector };
}
