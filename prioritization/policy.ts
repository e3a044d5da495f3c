import type { SlaConfig } from '../platform/config.js';

// The first prioritization policy: CVSS for severity, FIRST EPSS for exploit likelihood, CISA KEV
// for known exploitation. Tiers follow SSVC's CISA vocabulary (act / attend / track* / track).
// The thresholds are data, applied set-based in PostgreSQL by db/queries/scoring.ts.

export type Tier = 'act' | 'attend' | 'track*' | 'track';

export const TIERS: readonly Tier[] = ['act', 'attend', 'track*', 'track'];

export interface Policy {
  version: string;
  /** EPSS at or above this is "exploitation likely": FIRST's work puts the efficient threshold near 0.1. */
  epssAttend: number;
  /** CVSS at or above this is attended even without exploit evidence. */
  cvssAttend: number;
  /** CVSS at or above this is tracked closely (track*). */
  cvssTrackStar: number;
  /** Remediation time per tier. */
  slaMs: Record<Tier, number>;
}

export function defaultPolicy(sla: SlaConfig): Policy {
  return {
    version: 'baseline-1',
    epssAttend: 0.1,
    cvssAttend: 9.0,
    cvssTrackStar: 7.0,
    slaMs: { act: sla.tierMs.act, attend: sla.tierMs.attend, 'track*': sla.tierMs.trackStar, track: sla.tierMs.track },
  };
}

/** Tiers that open golden tickets; the rest stay on the exposure list. */
export const ACTION_TIERS: readonly Tier[] = ['act', 'attend'];
