import { parseDuration } from '../config/duration.js';

// How long an owner has to acknowledge a golden ticket, and how fast escalation climbs, per tier and
// per business criticality of the asset. Remediation due dates are not here: they come from the
// prioritization policy (tiers' dueDays and its critical-asset modifier), the one source of truth.
// Written as JSON in CTEM_SLA_POLICY, e.g.
//   {"tiers":{"act":{"ack":"1d","escalationInterval":"2d"}},"criticality":{"critical":{"ack":"4h"}}}
// When several entries apply, the stricter (shorter) duration wins.

export interface SlaTimes {
  ackMs?: number;
  escalationIntervalMs?: number;
}

export interface SlaPolicy {
  tiers: Record<string, SlaTimes>;
  criticality: Record<string, SlaTimes>;
}

export const EMPTY_SLA_POLICY: SlaPolicy = { tiers: {}, criticality: {} };

const TIER_NAMES = ['act', 'attend', 'track*', 'track'];
const CRITICALITIES = ['critical', 'high', 'medium', 'low'];

/** Parses CTEM_SLA_POLICY; throws with the JSON path and the reason. */
export function parseSlaPolicy(text: string | undefined): SlaPolicy {
  if (text === undefined || text.trim() === '') return EMPTY_SLA_POLICY;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('expected an object with "tiers" and/or "criticality"');
  const policy: SlaPolicy = { tiers: {}, criticality: {} };
  for (const [section, allowed] of [['tiers', TIER_NAMES], ['criticality', CRITICALITIES]] as const) {
    const entries = (doc as Record<string, unknown>)[section];
    if (entries === undefined) continue;
    if (typeof entries !== 'object' || entries === null) throw new Error(`${section}: expected an object`);
    for (const [name, times] of Object.entries(entries)) {
      if (!allowed.includes(name)) throw new Error(`${section}.${name}: unknown; expected one of ${allowed.join(', ')}`);
      if (typeof times !== 'object' || times === null) throw new Error(`${section}.${name}: expected {"ack"?, "escalationInterval"?}`);
      const out: SlaTimes = {};
      for (const [key, value] of Object.entries(times)) {
        const field = key === 'ack' ? 'ackMs' : key === 'escalationInterval' ? 'escalationIntervalMs' : undefined;
        if (!field) throw new Error(`${section}.${name}.${key}: unknown; expected ack or escalationInterval`);
        let ms: number;
        try {
          ms = parseDuration(String(value));
        } catch (err) {
          throw new Error(`${section}.${name}.${key}: ${(err as Error).message}`);
        }
        if (ms <= 0) throw new Error(`${section}.${name}.${key}: must be longer than zero`);
        out[field] = ms;
      }
      (policy[section] as Record<string, SlaTimes>)[name] = out;
    }
  }
  return policy;
}

/** The acknowledgement time and escalation interval of one golden ticket. */
export function slaFor(
  policy: SlaPolicy,
  defaults: { ackMs: number; escalationIntervalMs: number },
  ticket: { tier: string; criticality: string | null },
): { ackMs: number; escalationIntervalMs: number } {
  const applicable = [policy.tiers[ticket.tier], ticket.criticality ? policy.criticality[ticket.criticality] : undefined].filter(
    (t): t is SlaTimes => t !== undefined,
  );
  const strictest = (field: keyof SlaTimes, fallback: number) => {
    const values = applicable.map((t) => t[field]).filter((v): v is number => v !== undefined);
    return values.length ? Math.min(...values) : fallback;
  };
  return { ackMs: strictest('ackMs', defaults.ackMs), escalationIntervalMs: strictest('escalationIntervalMs', defaults.escalationIntervalMs) };
}
