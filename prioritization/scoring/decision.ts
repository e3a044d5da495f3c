import { TIER_BY_RANK, TIER_RANK, type Policy, type Tier } from '../policy.js';

// The policy's decision, stated once: from a finding's decision points and the evidence for each
// modifier to its tier, due date and score. Pure: no database, no wording (explanation.ts words it).
// Bulk rescoring does not call it per finding: it computes each finding's cell (below) in SQL and
// looks the outcome up in arrays that cellTable() fills from decide(), so SQL and this module cannot
// disagree about a cell; test/prioritization/scoring-equivalence.test.ts checks the rest.

/**
 * Everything a tier, due date and score factor depend on. Findings with the same cell are decided
 * alike: a million findings fall into a few hundred cells.
 */
export interface Cell {
  /** The decision table's key (decisionKey: inKev*8 + exposed*4 + automatable*2 + total), or 16 + the severity tier's rank when no KEV catalog is loaded. */
  base: number;
  publiclyExposed: boolean;
  /** EPSS at or above modifiers.likelyExploited.epssAtLeast. */
  likelyExploited: boolean;
  /** CISA's SSVC says a public proof of concept exists (exploitation poc), and the vulnerability is not exploited. */
  publicExploit: boolean;
  /** EDR covers every host the asset runs on. */
  edrCovered: boolean;
  /** No host's EDR saw the component loaded. */
  notSeenLoaded: boolean;
  /** The asset's environment is not a production one (or unknown, when the policy says so). */
  nonProduction: boolean;
  /** An active compensating control with effect not_exploitable covers the finding. */
  notExploitableControl: boolean;
  /** The finding's vendor or VEX status is one the policy lists. */
  vendorStatus: boolean;
  criticalAsset: boolean;
  /** The finding's validation evidence (the latest unexpired exploited, confirmed or not_exploitable test) is a result modifiers.validation.proven lists. */
  proven: boolean;
  /** The finding's validation evidence is not_exploitable. */
  notExploitable: boolean;
}

/** Modifier combinations per base (the exposure bit only feeds the score): a cell's base is its key / MODIFIER_SPAN. */
export const MODIFIER_SPAN = 2048;
/** Bases 0-19, MODIFIER_SPAN modifier combinations each. */
export const CELL_COUNT = 20 * MODIFIER_SPAN;
/** Base of the severity outcomes (no KEV catalog): 16 track, 17 track*, 18 attend. */
export const SEVERITY_BASE = 16;

/**
 * A cell as one integer: base * 2048 + not exploitable (validation) 1024 + proven (validation) 512 + public exploit 256 + exposed 128 +
 * likely 64 + EDR 32 + unseen 16 + non-production 8 + control 4 + vendor 2 + critical 1.
 */
export function cellKey(c: Cell): number {
  return (
    c.base * MODIFIER_SPAN + +c.notExploitable * 1024 + +c.proven * 512 + +c.publicExploit * 256 + +c.publiclyExposed * 128 + +c.likelyExploited * 64 + +c.edrCovered * 32 + +c.notSeenLoaded * 16 +
    +c.nonProduction * 8 + +c.notExploitableControl * 4 + +c.vendorStatus * 2 + +c.criticalAsset
  );
}

export function cellOf(key: number): Cell {
  const bit = (i: number) => ((key >> i) & 1) === 1;
  return {
    base: Math.floor(key / MODIFIER_SPAN), publicExploit: bit(8), publiclyExposed: bit(7), likelyExploited: bit(6), edrCovered: bit(5), notSeenLoaded: bit(4),
    nonProduction: bit(3), notExploitableControl: bit(2), vendorStatus: bit(1), criticalAsset: bit(0), proven: bit(9), notExploitable: bit(10),
  };
}

/** Which modifiers applied (those that are off in the policy never do). */
export interface Applied {
  likelyExploited: boolean;
  publicExploit: boolean;
  /** EDR covers the asset: the runtime factor is explained (loaded or not). */
  runtime: boolean;
  notLoadedAtRuntime: boolean;
  nonProduction: boolean;
  notExploitableControl: boolean;
  vendorStatus: boolean;
  criticalAsset: boolean;
  /** Validation evidence proved it exploitable here: raised to at least modifiers.validation.proven.to. */
  proven: boolean;
  /** Validation evidence says a dated test failed to exploit it: capped at modifiers.validation.notExploitable.to. */
  notExploitable: boolean;
}

export interface Outcome {
  /** The tier the table (or severity) gave, before modifiers. */
  tableTier: Tier;
  tier: Tier;
  /** Days from the change of tier to the due date. */
  dueDays: number;
  /** The product of the score factors of the modifiers that lowered the finding. */
  scoreFactor: number;
  applied: Applied;
}

/** Without a KEV catalog: severity alone decides (never act). */
export function severityTier(policy: Policy, cvss: number | null): Tier {
  const without = policy.document.decisionPoints.inKev.withoutCatalog;
  const cv = cvss ?? -1;
  return cv >= without.attendAtCvss ? 'attend' : cv >= without.trackStarAtCvss ? 'track*' : 'track';
}

/** The table's row for a cell (undefined for a severity base). */
export const tableRow = (policy: Policy, base: number) => (base < SEVERITY_BASE ? policy.decisions[base] : undefined);

/**
 * The table, then the modifiers in the policy's order: likely exploited, a public exploit and
 * proven exploitation (validation) raise (to its `to`), not loaded at runtime and non-production
 * lower (never below track), a not-exploitable control, a failed exploitation test (validation) and
 * a vendor status cap. Proven exploitation overrides what the test proved wrong: a not-exploitable
 * control and an EDR that never saw the component loaded then neither lower nor explain it; the
 * environment still lowers it and a vendor status (the code is not there) still caps it. The due date is the timeline's when the final tier is the
 * table's, the final tier's otherwise, shortened on a critical asset.
 */
export function decide(policy: Policy, cell: Cell): Outcome {
  const m = policy.document.modifiers;
  const row = tableRow(policy, cell.base);
  const tableTier: Tier = row ? row.tier : TIER_BY_RANK[cell.base - SEVERITY_BASE]!;
  const t0 = TIER_RANK[tableTier];
  const likely = m.likelyExploited !== undefined && cell.likelyExploited && m.likelyExploited.raise.some((t) => TIER_RANK[t] === t0);
  const poc = m.publicExploit !== undefined && cell.publicExploit && m.publicExploit.raise.some((t) => TIER_RANK[t] === t0)
    && (!m.publicExploit.whenExposed || cell.publiclyExposed);
  // One evidence row per finding: a cell with both bits (never computed) counts as proven.
  const proven = m.validation?.proven !== undefined && cell.proven;
  const failed = m.validation?.notExploitable !== undefined && cell.notExploitable && !proven;
  const runtime = m.notLoadedAtRuntime !== undefined && cell.edrCovered && !proven;
  const notLoaded = runtime && cell.notSeenLoaded;
  const nonProduction = m.nonProduction !== undefined && cell.nonProduction;
  const control = m.notExploitableControl !== undefined && cell.notExploitableControl && !proven;
  const vendor = m.vendorStatus !== undefined && cell.vendorStatus;
  const critical = m.criticalAsset !== undefined && cell.criticalAsset;

  let rank = Math.max(t0, likely ? TIER_RANK[m.likelyExploited!.to] : 0, poc ? TIER_RANK[m.publicExploit!.to] : 0, proven ? TIER_RANK[m.validation!.proven!.to] : 0);
  rank -= (notLoaded ? m.notLoadedAtRuntime!.lowerBy : 0) + (nonProduction ? m.nonProduction!.lowerBy : 0);
  rank = Math.max(rank, 0);
  if (control) rank = Math.min(rank, TIER_RANK[m.notExploitableControl!.to]);
  if (failed) rank = Math.min(rank, TIER_RANK[m.validation!.notExploitable!.to]);
  if (vendor) rank = Math.min(rank, TIER_RANK[m.vendorStatus!.to]);
  const tier = TIER_BY_RANK[rank]!;

  const dueDays = dueDaysOf(policy, cell.base, tier, critical);
  const scoreFactor =
    (notLoaded ? m.notLoadedAtRuntime!.scoreFactor : 1) * (nonProduction ? m.nonProduction!.scoreFactor : 1) *
    (control ? m.notExploitableControl!.scoreFactor : 1) * (failed ? m.validation!.notExploitable!.scoreFactor : 1) * (vendor ? m.vendorStatus!.scoreFactor : 1);
  return {
    tableTier,
    tier,
    dueDays,
    scoreFactor,
    applied: { likelyExploited: likely, publicExploit: poc, runtime, notLoadedAtRuntime: notLoaded, nonProduction, notExploitableControl: control, vendorStatus: vendor, criticalAsset: critical,
      proven, notExploitable: failed },
  };
}

/** The timeline's days when the final tier is the table's, the final tier's otherwise; times dueFactor on a critical asset. */
export function dueDaysOf(policy: Policy, base: number, tier: Tier, critical: boolean): number {
  const row = tableRow(policy, base);
  const tableTier = row ? row.tier : TIER_BY_RANK[base - SEVERITY_BASE]!;
  const days = tier === tableTier && row ? row.dueDays : policy.document.tiers[tier].dueDays;
  const factor = policy.document.modifiers.criticalAsset?.dueFactor ?? 1;
  return critical ? days * factor : days;
}

/** What a CVE record says, as scoring reads it (prioritization/feeds: table cve_records). */
export interface RecordFacts {
  cnaVector: string | null;
  cnaScore: number | null;
  adpVector: string | null;
  adpScore: number | null;
  ssvcExploitation: 'none' | 'poc' | 'active' | null;
  ssvcAutomatable: 'yes' | 'no' | null;
  ssvcTechnicalImpact: 'partial' | 'total' | null;
}

/** What the feeds, the CVE record and the scanner say about one vulnerability. */
export interface VulnerabilityInputs {
  inKev: boolean;
  epss: number | null;
  /** The scanner's rating of the finding. */
  cvss: number | null;
  vector: string | null;
  record: RecordFacts | null;
}

export type RatingSource = 'cna' | 'adp' | 'scanner';
export type PointSource = 'ssvc' | 'vector' | 'fallback';

/** The decision points that depend on the vulnerability alone, each with the source that decided it. */
export interface VulnerabilityDecision {
  /** In KEV, or (when the policy says so) CISA's SSVC says exploitation is active. */
  exploited: boolean;
  /** SSVC says a public proof of concept exists (and the policy reads it), and it is not exploited. */
  publicExploit: boolean;
  automatable: boolean;
  automatableFrom: PointSource;
  totalImpact: boolean;
  totalImpactFrom: PointSource;
  /** The rating the decision read: the CVE record's (CNA, else ADP) when the policy puts it first, else the scanner's. */
  vector: string | null;
  vectorFrom: RatingSource | null;
  cvss: number | null;
}

const isV3 = (v: string | null): v is string => v !== null && /^CVSS:3\..\//.test(v);
const hasMetric = (v: string, m: string) => v.includes(`/${m}/`) || v.endsWith(`/${m}`);

/** AV:N/AC:L/PR:N/UI:N: an attacker can script reconnaissance to exploitation. */
export const vectorAutomatable = (v: string) => ['AV:N', 'AC:L', 'PR:N', 'UI:N'].every((m) => hasMetric(v, m));
/** C:H and I:H, or S:C with C:H. */
export const vectorTotal = (v: string) => hasMetric(v, 'C:H') && (hasMetric(v, 'I:H') || hasMetric(v, 'S:C'));

/**
 * One rule of precedence per decision point, as the policy states it (vulnerabilities.ts computes
 * the same in SQL): exploitation from KEV or SSVC active; automatable and technical impact from
 * SSVC when CISA assessed the CVE, else from the best CVSS v3 vector (the CVE record's CNA or ADP
 * vector over the scanner's), else EPSS and the CVSS score.
 */
export function decideVulnerability(policy: Policy, v: VulnerabilityInputs): VulnerabilityDecision {
  const dp = policy.document.decisionPoints;
  const r = v.record;
  const recordFirst = dp.cvss?.cveRecordFirst === true && r !== null;
  const [vector, vectorFrom, cvss]: [string | null, RatingSource | null, number | null] =
    recordFirst && r.cnaVector ? [r.cnaVector, 'cna', r.cnaScore]
      : recordFirst && r.adpVector ? [r.adpVector, 'adp', r.adpScore]
        : [v.vector, v.vector ? 'scanner' : null, recordFirst ? (r.cnaScore ?? r.adpScore ?? v.cvss) : v.cvss];
  const exploited = v.inKev || (dp.exploitation?.ssvcActive === true && r?.ssvcExploitation === 'active');
  const publicExploit = policy.document.modifiers.publicExploit !== undefined && !exploited && r?.ssvcExploitation === 'poc';
  const v3 = isV3(vector);
  const [automatable, automatableFrom]: [boolean, PointSource] =
    dp.automatable.fromSsvc && r?.ssvcAutomatable ? [r.ssvcAutomatable === 'yes', 'ssvc']
      : dp.automatable.fromCvssVector && v3 ? [vectorAutomatable(vector), 'vector']
        : [v.epss !== null && v.epss >= dp.automatable.epssAtLeast, 'fallback'];
  const [totalImpact, totalImpactFrom]: [boolean, PointSource] =
    dp.technicalImpact.fromSsvc && r?.ssvcTechnicalImpact ? [r.ssvcTechnicalImpact === 'total', 'ssvc']
      : dp.technicalImpact.fromCvssVector && v3 ? [vectorTotal(vector), 'vector']
        : [(cvss ?? -1) >= dp.technicalImpact.totalAtCvss, 'fallback'];
  return { exploited, publicExploit, automatable, automatableFrom, totalImpact, totalImpactFrom, vector, vectorFrom, cvss };
}

/** What the score adds up: the decision points that hold, EPSS and CVSS. */
export interface ScoreInputs {
  /** Exploited: in KEV, or SSVC active where the policy reads it (the score's inKev weight). */
  inKev: boolean;
  publiclyExposed: boolean;
  automatable: boolean;
  totalImpact: boolean;
  epss: number | null;
  cvss: number | null;
}

/**
 * The part of the score that depends on the vulnerability alone, summed in the order the SQL sums
 * it (floating point: the same order gives the same bits).
 */
export function vulnerabilityScore(policy: Policy, v: Omit<ScoreInputs, 'publiclyExposed'>): number {
  const w = policy.document.score.weights;
  return w.inKev * +v.inKev + w.automatable * +v.automatable + w.technicalImpact * +v.totalImpact + w.epss * (v.epss ?? 0) + (w.cvss * Math.max(v.cvss ?? -1, 0)) / 10;
}

/** 0-100, to 0.1: the weights of what holds, times the factors of the modifiers that lowered the finding. */
export function score(policy: Policy, inputs: ScoreInputs, scoreFactor: number): number {
  const sum = vulnerabilityScore(policy, inputs) + (inputs.publiclyExposed ? policy.document.score.weights.publiclyExposed : 0);
  return roundHalfEven(sum * scoreFactor * 10) / 10;
}

/** PostgreSQL's round(double precision): to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Every cell's outcome, indexed by cellKey, as the arrays the scoring statement looks up (tier
 * ranks, due days, score factors, and which modifiers applied as a bit set for the explanation).
 */
export function cellTable(policy: Policy) {
  const table = { tierRank: new Array<number>(CELL_COUNT), dueDays: new Array<number>(CELL_COUNT), scoreFactor: new Array<number>(CELL_COUNT), shape: new Array<number>(CELL_COUNT) };
  for (let k = 0; k < CELL_COUNT; k++) {
    const o = decide(policy, cellOf(k));
    table.tierRank[k] = TIER_RANK[o.tier];
    table.dueDays[k] = o.dueDays;
    table.scoreFactor[k] = o.scoreFactor;
    table.shape[k] = shapeOf(o.applied);
  }
  return table;
}

/**
 * The modifiers an explanation shows, as bits: likely 1, runtime 2, non-production 4, control 8, vendor 16, public exploit 32,
 * validation (proven or not exploitable) 64.
 */
export const shapeOf = (a: Applied): number =>
  +a.likelyExploited + +a.runtime * 2 + +a.nonProduction * 4 + +a.notExploitableControl * 8 + +a.vendorStatus * 16 + +a.publicExploit * 32 +
  +(a.proven || a.notExploitable) * 64;
