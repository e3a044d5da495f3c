import { describe, expect, it } from 'vitest';
import { bodPolicy, decisionKey, defaultPolicy, defaultPolicyDocument, parsePolicy, shippedPolicy, TIER_BY_RANK, TIER_RANK, type PolicyDocument } from '../../prioritization/policy.js';
import { CELL_COUNT, cellKey, cellOf, cellTable, decide, decideVulnerability, roundHalfEven, score, SEVERITY_BASE, severityTier, type Cell } from '../../prioritization/scoring/decision.js';
import { format, numericRound2, pgNumber } from '../../prioritization/scoring/explanation.js';

// decision.ts on its own: the policy document's table, modifiers, tiers and score, read back from
// the document itself (no database).

const policy = defaultPolicy();
const doc = policy.document;
const m = doc.modifiers;
const plain: Cell = {
  base: 0, publicExploit: false, publiclyExposed: false, likelyExploited: false, edrCovered: false, notSeenLoaded: false,
  nonProduction: false, notExploitableControl: false, vendorStatus: false, criticalAsset: false, proven: false, notExploitable: false,
};
const rows = doc.table.map((r) => ({ r, key: decisionKey(r.inKev === 'yes', r.publiclyExposed === 'yes', r.automatable === 'yes', r.technicalImpact === 'total') }));
const rank = (t: string) => TIER_RANK[t as keyof typeof TIER_RANK];

describe('decision.ts', () => {
  it('every cell number decodes to the cell it encodes', () => {
    for (let k = 0; k < CELL_COUNT; k++) expect(cellKey(cellOf(k))).toBe(k);
  });

  it('without modifiers, each row of the table gives its timeline: tier and days', () => {
    for (const { r, key } of rows) {
      const timeline = doc.timelines[r.timeline]!;
      expect(decide(policy, { ...plain, base: key, publiclyExposed: r.publiclyExposed === 'yes' }), `row ${r.row}`).toMatchObject({ tableTier: timeline.tier, tier: timeline.tier, dueDays: timeline.dueDays, scoreFactor: 1 });
    }
  });

  it('likely exploited raises only the listed tiers, to its "to"', () => {
    for (const { r, key } of rows) {
      const base = doc.timelines[r.timeline]!.tier;
      const outcome = decide(policy, { ...plain, base: key, likelyExploited: true });
      const raised = m.likelyExploited!.raise.includes(base);
      expect(outcome.tier, `row ${r.row}`).toBe(raised ? m.likelyExploited!.to : base);
      expect(outcome.applied.likelyExploited).toBe(raised);
      // Another tier than the table's takes that tier's days.
      expect(outcome.dueDays).toBe(raised ? doc.tiers[m.likelyExploited!.to].dueDays : doc.timelines[r.timeline]!.dueDays);
    }
  });

  it('not loaded at runtime and non-production lower by their steps, never below track, and multiply the score', () => {
    for (const { r, key } of rows) {
      const base = rank(doc.timelines[r.timeline]!.tier);
      const runtime = decide(policy, { ...plain, base: key, edrCovered: true, notSeenLoaded: true });
      expect(runtime.tier).toBe(TIER_BY_RANK[Math.max(0, base - m.notLoadedAtRuntime!.lowerBy)]);
      expect(runtime.scoreFactor).toBe(m.notLoadedAtRuntime!.scoreFactor);
      // Covered but seen loaded: explained, not lowered.
      expect(decide(policy, { ...plain, base: key, edrCovered: true })).toMatchObject({ tier: TIER_BY_RANK[base], scoreFactor: 1, applied: { runtime: true, notLoadedAtRuntime: false } });
      // Not covered: EDR says nothing.
      expect(decide(policy, { ...plain, base: key, notSeenLoaded: true }).applied.runtime).toBe(false);
      const both = decide(policy, { ...plain, base: key, edrCovered: true, notSeenLoaded: true, nonProduction: true });
      expect(both.tier).toBe(TIER_BY_RANK[Math.max(0, base - m.notLoadedAtRuntime!.lowerBy - m.nonProduction!.lowerBy)]);
      expect(both.scoreFactor).toBeCloseTo(m.notLoadedAtRuntime!.scoreFactor * m.nonProduction!.scoreFactor, 12);
    }
  });

  it('a not-exploitable control and a vendor status cap the tier, after any raise', () => {
    const top = rows.find(({ r }) => doc.timelines[r.timeline]!.tier === 'act')!.key;
    const low = rows.find(({ r }) => m.likelyExploited!.raise.includes(doc.timelines[r.timeline]!.tier))!.key;
    for (const key of [top, low]) {
      expect(decide(policy, { ...plain, base: key, likelyExploited: true, notExploitableControl: true })).toMatchObject({ tier: m.notExploitableControl!.to, scoreFactor: m.notExploitableControl!.scoreFactor });
      expect(decide(policy, { ...plain, base: key, likelyExploited: true, vendorStatus: true })).toMatchObject({ tier: m.vendorStatus!.to, scoreFactor: m.vendorStatus!.scoreFactor });
    }
  });

  it('proven exploitation raises every cell to at least proven.to, overriding a not-exploitable control and EDR; the environment still lowers and a vendor status still caps', () => {
    const v = m.validation!;
    let checked = 0;
    for (let k = 0; k < CELL_COUNT; k++) {
      const cell = cellOf(k);
      if (!cell.proven) continue;
      checked++;
      const o = decide(policy, cell);
      // The raises alone (table, EPSS, public exploit), then proven's floor, the environment's step and the vendor's cap.
      const raised = decide(policy, { ...cell, edrCovered: false, notSeenLoaded: false, nonProduction: false, notExploitableControl: false, vendorStatus: false, proven: false, notExploitable: false });
      let r = Math.max(rank(raised.tier), rank(v.proven!.to)) - (cell.nonProduction ? m.nonProduction!.lowerBy : 0);
      r = Math.max(r, 0);
      if (cell.vendorStatus) r = Math.min(r, rank(m.vendorStatus!.to));
      expect(o.tier, `cell ${k}`).toBe(TIER_BY_RANK[r]);
      expect(o.applied).toMatchObject({ proven: true, notExploitable: false, notExploitableControl: false, runtime: false, notLoadedAtRuntime: false, nonProduction: cell.nonProduction, vendorStatus: cell.vendorStatus });
      expect(o.scoreFactor).toBeCloseTo((cell.nonProduction ? m.nonProduction!.scoreFactor : 1) * (cell.vendorStatus ? m.vendorStatus!.scoreFactor : 1), 12);
      // Never below the same cell without the evidence.
      expect(rank(o.tier)).toBeGreaterThanOrEqual(rank(decide(policy, { ...cell, proven: false, notExploitable: false }).tier));
    }
    expect(checked).toBe(CELL_COUNT / 2);
    // On the plain track row: act, with act's days; a control that says not exploitable loses to the test.
    expect(decide(policy, { ...plain, proven: true, notExploitableControl: true })).toMatchObject({ tier: 'act', dueDays: doc.tiers.act.dueDays, scoreFactor: 1 });
    expect(decide(policy, { ...plain, proven: true, vendorStatus: true })).toMatchObject({ tier: m.vendorStatus!.to, scoreFactor: m.vendorStatus!.scoreFactor });
    expect(decide(policy, { ...plain, proven: true, nonProduction: true }).tier).toBe('attend');
  });

  it('a failed exploitation test caps every cell at notExploitable.to with its factor, beside a control and a vendor status', () => {
    const v = m.validation!.notExploitable!;
    for (let k = 0; k < CELL_COUNT; k++) {
      const cell = cellOf(k);
      if (!cell.notExploitable || cell.proven) continue;
      const o = decide(policy, cell);
      const without = decide(policy, { ...cell, notExploitable: false });
      expect(o.tier, `cell ${k}`).toBe(TIER_BY_RANK[Math.min(rank(without.tier), rank(v.to))]);
      expect(o.scoreFactor).toBeCloseTo(without.scoreFactor * v.scoreFactor, 12);
      expect(o.applied).toEqual({ ...without.applied, notExploitable: true });
    }
    const act = rows.find(({ r }) => doc.timelines[r.timeline]!.tier === 'act')!.key;
    expect(decide(policy, { ...plain, base: act, notExploitable: true })).toMatchObject({ tier: v.to, dueDays: doc.tiers[v.to].dueDays, scoreFactor: v.scoreFactor });
    // Proven and not exploitable never come together (one test decides); should they, proven wins.
    expect(decide(policy, { ...plain, base: act, notExploitable: true, proven: true })).toMatchObject({ tier: 'act', applied: { proven: true, notExploitable: false } });
  });

  it('a policy without modifiers.validation ignores the evidence bits', () => {
    const one = shippedPolicy('exploitability.json');
    for (let k = 0; k < CELL_COUNT; k += 3) {
      const cell = cellOf(k);
      if (!cell.proven && !cell.notExploitable) continue;
      expect(decide(one, cell)).toEqual(decide(one, { ...cell, proven: false, notExploitable: false }));
    }
  });

  it('a critical asset shortens the due date by dueFactor, whatever the tier', () => {
    for (let k = 0; k < CELL_COUNT; k += 2) {
      const normal = decide(policy, cellOf(k));
      const critical = decide(policy, cellOf(k + 1));
      expect(critical.tier).toBe(normal.tier);
      expect(critical.dueDays).toBe(normal.dueDays * m.criticalAsset!.dueFactor);
    }
  });

  it('without a KEV catalog severity decides by the document thresholds, never act', () => {
    const w = doc.decisionPoints.inKev.withoutCatalog;
    expect(severityTier(policy, w.attendAtCvss)).toBe('attend');
    expect(severityTier(policy, w.attendAtCvss - 0.1)).toBe('track*');
    expect(severityTier(policy, w.trackStarAtCvss)).toBe('track*');
    expect(severityTier(policy, w.trackStarAtCvss - 0.1)).toBe('track');
    expect(severityTier(policy, null)).toBe('track');
    for (const tier of ['track', 'track*', 'attend'] as const) {
      expect(decide(policy, { ...plain, base: SEVERITY_BASE + TIER_RANK[tier] })).toMatchObject({ tier, dueDays: doc.tiers[tier].dueDays });
    }
  });

  it('a modifier the document leaves out never applies', () => {
    const raw = defaultPolicyDocument() as PolicyDocument;
    const bare = parsePolicy({ ...raw, version: 'bare-1', modifiers: {} }, 'test');
    for (let k = 0; k < CELL_COUNT; k++) {
      const cell = cellOf(k);
      const o = decide(bare, cell);
      expect(o.tier).toBe(o.tableTier);
      expect(o.scoreFactor).toBe(1);
      expect(Object.values(o.applied).some(Boolean)).toBe(false);
    }
  });

  it('the score adds the weights of what holds, EPSS and CVSS, times the factor, to 0.1', () => {
    const w = doc.score.weights;
    const all = { inKev: true, publiclyExposed: true, automatable: true, totalImpact: true, epss: 1, cvss: 10 };
    expect(score(policy, all, 1)).toBe(100);
    expect(score(policy, { ...all, inKev: false, epss: 0.5 }, 1)).toBe(100 - w.inKev - w.epss / 2);
    expect(score(policy, { ...all, epss: null, cvss: null }, 0.5)).toBe((w.inKev + w.publiclyExposed + w.automatable + w.technicalImpact) / 2);
    expect(score(policy, { inKev: false, publiclyExposed: false, automatable: false, totalImpact: false, epss: 0.0123, cvss: 7.5 }, 0.7)).toBe(roundHalfEven((w.epss * 0.0123 + (w.cvss * 7.5) / 10) * 0.7 * 10) / 10);
  });

  it('the cell table is decide() for every cell', () => {
    const table = cellTable(policy);
    for (let k = 0; k < CELL_COUNT; k += 7) {
      const o = decide(policy, cellOf(k));
      expect([table.tierRank[k], table.dueDays[k], table.scoreFactor[k]]).toEqual([TIER_RANK[o.tier], o.dueDays, o.scoreFactor]);
    }
  });
});

describe('explanation.ts formatting, as PostgreSQL prints', () => {
  it('rounds half to even like round(double precision) and half away from zero like round(numeric, 2)', () => {
    expect([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(2.4), roundHalfEven(2.6)]).toEqual([0, 2, 2, 2, 3]);
    expect([numericRound2(94.358), numericRound2(5), numericRound2(0.125), numericRound2(0.004), numericRound2(1.005)]).toEqual(['94.36', '5.00', '0.13', '0.00', '1.01']);
  });

  it('format() applies %s, %L and %% as format() does', () => {
    expect(format("control %L: %s%% at %s%s", "Edge 'WAF'", 12.5, null, 'x')).toBe("control 'Edge ''WAF''': 12.5% at x");
    expect([pgNumber(0.00042), pgNumber(0.00001234), pgNumber(3)]).toEqual(['0.00042', '1.234e-05', '3']);
  });
});

describe('decideVulnerability: one source per decision point', () => {
  const exploitability = defaultPolicy();
  const none = { cnaVector: null, cnaScore: null, adpVector: null, adpScore: null, ssvcExploitation: null, ssvcAutomatable: null, ssvcTechnicalImpact: null } as const;
  const scanner = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';

  it('takes SSVC over any vector, the record vector over the scanner, the CNA over the ADP', () => {
    const ssvc = decideVulnerability(exploitability, { inKev: false, epss: 0.001, cvss: 9.8, vector: scanner, record: { ...none, ssvcAutomatable: 'no', ssvcTechnicalImpact: 'partial' } });
    expect(ssvc).toMatchObject({ automatable: false, automatableFrom: 'ssvc', totalImpact: false, totalImpactFrom: 'ssvc', vectorFrom: 'scanner' });
    const cna = decideVulnerability(exploitability, {
      inKev: false, epss: null, cvss: 9.8, vector: scanner,
      record: { ...none, cnaVector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', cnaScore: 5.5, adpVector: scanner, adpScore: 9.8 },
    });
    expect(cna).toMatchObject({ vectorFrom: 'cna', cvss: 5.5, automatable: false, automatableFrom: 'vector', totalImpact: false });
    const adp = decideVulnerability(exploitability, { inKev: false, epss: null, cvss: 5.0, vector: null, record: { ...none, adpVector: scanner, adpScore: 9.8 } });
    expect(adp).toMatchObject({ vectorFrom: 'adp', cvss: 9.8, automatable: true, totalImpact: true });
  });

  it('counts SSVC active as exploited and poc as a public exploit, only where the policy reads them', () => {
    const active = { inKev: false, epss: 0.01, cvss: null, vector: null, record: { ...none, ssvcExploitation: 'active' as const } };
    expect(decideVulnerability(exploitability, active)).toMatchObject({ exploited: true, publicExploit: false });
    expect(decideVulnerability(bodPolicy(), active)).toMatchObject({ exploited: false, publicExploit: false });
    const poc = { ...active, record: { ...none, ssvcExploitation: 'poc' as const } };
    expect(decideVulnerability(exploitability, poc)).toMatchObject({ exploited: false, publicExploit: true });
    expect(decideVulnerability(exploitability, { ...poc, inKev: true })).toMatchObject({ exploited: true, publicExploit: false });
    // BOD 26-04 reads the scanner's vector, whatever the record says.
    expect(decideVulnerability(bodPolicy(), { inKev: false, epss: null, cvss: 9.8, vector: scanner, record: { ...none, cnaVector: 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N' } })).toMatchObject({ vectorFrom: 'scanner', automatable: true });
  });

  it('never lets exposure and a vector alone put an unexploited, low-EPSS finding above track*', () => {
    for (let k = 0; k < CELL_COUNT; k++) {
      const cell = cellOf(k);
      // Validation evidence of exploitation is evidence too.
      if (cell.base >= SEVERITY_BASE || (cell.base & 8) !== 0 || cell.likelyExploited || cell.publicExploit || cell.proven) continue;
      expect(TIER_RANK[decide(exploitability, cell).tier], `cell ${k}`).toBeLessThanOrEqual(TIER_RANK['track*']);
    }
  });
});
