import { createHash } from 'node:crypto';
import type { ExplanationFactor } from '../../db/schema.js';
import type { DecisionRow, Policy } from '../policy.js';
import { cellOf, decideVulnerability, SEVERITY_BASE, tableRow, type Outcome, type VulnerabilityInputs } from './decision.js';

// Every word an explanation says, in one place. Templates use PostgreSQL's format() syntax (%s, %L,
// %%) because the scoring statement words a million findings in SQL: it receives these templates as
// parameters, and format() below applies them the same way in TypeScript (for the decision's part,
// built per policy cell here, and for tests). To change a factor's words, change its template here.
// The assembly of the three stored parts into the factor list is db/functions/explanation_assemble.sql,
// mirrored by assembleExplanation(); test/prioritization/scoring-equivalence.test.ts checks both.

export const WORDS = {
  kevSource: 'CISA KEV %s',
  kevSourceNone: 'CISA KEV (no catalog loaded)',
  kevNoCatalog: 'no CISA KEV catalog loaded: whether it is exploited is unknown',
  kevIn: 'in CISA KEV %s (added %s%s)',
  kevAddedUnknown: 'on an unknown date',
  kevRansomware: ', used in ransomware',
  kevNotIn: 'not in CISA KEV %s',

  epssSource: 'FIRST EPSS %s',
  epssSourceNone: 'FIRST EPSS (no feed loaded)',
  epssNoFeed: 'no FIRST EPSS feed loaded',
  epssNoScore: 'no EPSS score for this id',
  epss: '%s%% chance of exploitation activity in 30 days (percentile %s)',
  likely: 'EPSS %s ≥ %s: likely exploited within 30 days, raised to %s',

  ssvcSource: 'CISA SSVC in CVE records %s (assessed %s)',
  exploitation: 'CISA assessed Exploitation: %s',
  exploitationWords: '{"active": "active: exploited in the wild", "poc": "poc: a public proof of concept exists", "none": "none: no evidence of exploitation when assessed"}',
  publicExploit: 'public proof of concept (CISA SSVC): raised to %s',
  automatableSsvc: 'CISA assessed Automatable: %s',
  impactSsvc: 'CISA assessed Technical Impact: %s',
  vectorSource: 'CVSS v3 vector (%s)',
  ratingFrom: '{"cna": "CVE record, CNA", "adp": "CVE record, ADP", "scanner": "scanner"}',
  automatableVector: 'CVSS v3 AV:%s/AC:%s/PR:%s/UI:%s%s',
  automatableVectorYes: ': over the network, no privileges, no user interaction',
  automatableVectorNo: ', not AV:N/AC:L/PR:N/UI:N',
  automatableEpssYes: 'no CVSS v3 vector; EPSS %s ≥ %s: exploitation taken as automated',
  automatableEpssNo: 'no CVSS v3 vector; EPSS %s < %s',
  automatableNone: 'no CVSS v3 vector, no EPSS score',
  impactVector: 'CVSS v3 C:%s/I:%s/S:%s',
  impactScoreSource: 'CVSS score',
  impactNoCvss: 'no CVSS data: assumed partial',
  impactScoreTotal: 'no CVSS v3 vector; CVSS %s ≥ %s',
  impactScorePartial: 'no CVSS v3 vector; CVSS %s < %s',

  severity: 'no CISA KEV catalog loaded, so the BOD 26-04 table is not applied: CVSS %s → %s until a catalog is imported',

  contextSource: 'asset context (%s)',
  contextSourcePlain: 'asset context',
  exposedPrefix: 'internet-facing: %s',
  exposedRunsOn: 'runs on %s; ',
  exposedFirewall: '%s has public IP %s and security group %s open to %s on %s',
  exposedSomePorts: 'some ports',
  exposedExternalScan: 'an internet-side scan saw %s open on %s',
  exposedMarked: '%s is marked internet-facing',
  notExposed: '%s is not internet-facing',
  notExposedHosts: 'runs only on %s, none of them internet-facing',
  exposureAssumedSource: 'policy assumption (decisionPoints.publiclyExposed.unknownMeans)',
  exposureAssumedYes: 'exposure unknown, assumed exposed (no context on %s)',
  exposureAssumedNo: 'exposure unknown, assumed not exposed (no context on %s)',

  environmentUnknown: 'environment of %s unknown, assumed non-production: %s tier lower (score × %s)',
  environmentNonProduction: '%s runs in %s, not production: %s tier lower (score × %s)',

  businessRated: '%s is rated %s',
  businessRevenue: '%s carries %s a year in revenue (at least %s)',
  businessService: 'its business service %s',
  businessCritical: ': a critical asset, due dates × %s',

  runtimeSeen: 'EDR on %s saw %s %s loaded by %s',
  runtimeSomeProcess: 'a process',
  runtimeLower: '%s tier lower (score × %s)',

  controlSource: 'compensating control %s (%s%s)',
  controlExpires: ', expires %s',
  controlNotExposed: 'control %L blocks the path from the internet: not publicly exposed',
  controlNotExploitable: 'control %L blocks exploitation: %s (score × %s)',

  validationSource: 'validation evidence (%s)',
  validationResults: '{"exploited": "Exploited", "confirmed": "Confirmed", "not_exploitable": "Not exploitable"}',
  validationTest: '%s by %s%s%s on %s (expires %s), from %s',
  validationTarget: ' at %s',
  validationPort: ' (%s)',
  validationRaised: ': raised to %s',
  validationLowered: ': lowered to %s until %s (score × %s)',

  vendorSource: 'scanner or VEX statement',
  vendorOther: 'declared %s',
  vendor: '%s: %s (score × %s)',

  decision: 'row %s: %s → %s → %s',
  tier: 'due in %s (%s%s)',
  tierMoved: '%s; the table gave %s',
  tierSeverity: 'by severity, no KEV catalog',
  tierCritical: ', × %s for a critical asset',
  scoreExploited: 'exploited %s',
  scoreAutomatable: 'automatable %s',
  scoreTotal: 'total impact %s',
  scoreEpss: 'EPSS %s × %s',
  scoreCvss: 'CVSS %s/10 × %s',
  scoreExposed: 'exposed %s',
  scoreNothing: 'nothing adds up',
  scoreFactor: ', × %s (the factors above)',
} as const;

/** What a vendor or VEX status means, in words. */
export const VENDOR_STATUS_WORDS: Record<string, string> = {
  not_affected: 'the vendor or a VEX statement says this component is not affected',
  fixed: 'declared fixed in this very component',
  false_positive: 'marked a false positive',
  suppressed: 'suppressed (accepted) in the scanner',
};

/** A number as PostgreSQL prints a double precision (shortest form; exponent below 1e-4 and from 1e15). */
export function pgNumber(x: number): string {
  const a = Math.abs(x);
  if (x === 0 || (a >= 1e-4 && a < 1e15)) return String(x);
  const [mantissa, exponent] = x.toExponential().split('e');
  const e = Number(exponent);
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

const quoteLiteral = (s: string) => (s.includes('\\') ? `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'` : `'${s.replace(/'/g, "''")}'`);

/** PostgreSQL's format() for %s, %L and %%: null prints as nothing (%s) or NULL (%L). */
export function format(template: string, ...args: Array<string | number | boolean | null | undefined>): string {
  let i = 0;
  return template.replace(/%([sL%])/g, (_, kind: string) => {
    if (kind === '%') return '%';
    const arg = args[i++];
    const text = arg === null || arg === undefined ? null : typeof arg === 'number' ? pgNumber(arg) : String(arg);
    if (kind === 'L') return text === null ? 'NULL' : quoteLiteral(text);
    return text ?? '';
  });
}

/** PostgreSQL's round(x::numeric, 2) of a double precision: 15 significant digits, then half away from zero. */
export function numericRound2(x: number): string {
  const [digits, exponent = '0'] = Math.abs(Number(x.toPrecision(15))).toExponential().split('e');
  const [int, frac = ''] = digits!.split('.');
  // In thousandths, truncated: the third decimal alone decides the rounding to two.
  const shift = Number(exponent) + 3 - frac.length;
  const whole = BigInt(int! + frac);
  const thousandths = shift >= 0 ? whole * 10n ** BigInt(shift) : whole / 10n ** BigInt(-shift);
  const hundredths = (thousandths + 5n) / 10n;
  const text = hundredths.toString().padStart(3, '0');
  return `${x < 0 && hundredths !== 0n ? '-' : ''}${text.slice(0, -2)}.${text.slice(-2)}`;
}

const daysText = (d: number) => `${Number(d.toFixed(2))} day${d === 1 ? '' : 's'}`;
const yesNo = (b: boolean, yes: string, no: string) => (b ? yes : no);

export interface FeedVersions {
  epss: string | null;
  kev: string | null;
  /** CVE records (table cve_records); absent or null: none loaded. */
  cve?: string | null;
}

/** Words of a JSON-encoded WORDS entry, by key. */
export const wordsOf = (entry: string): Record<string, string> => JSON.parse(entry) as Record<string, string>;

export const kevSource = (feeds: FeedVersions) => (feeds.kev ? format(WORDS.kevSource, feeds.kev) : WORDS.kevSourceNone);
export const epssSource = (feeds: FeedVersions) => (feeds.epss ? format(WORDS.epssSource, feeds.epss) : WORDS.epssSourceNone);

// ---- The decision's part: from the policy and the cell, built once per cell (never per finding).

export const describeRow = (policy: Policy, d: DecisionRow) => {
  const exploited = policy.document.decisionPoints.exploitation?.ssvcActive ? ['exploited', 'not exploited'] : ['in KEV', 'not in KEV'];
  return [yesNo(d.inKev, exploited[0]!, exploited[1]!), yesNo(d.publiclyExposed, 'publicly exposed', 'not exposed'), yesNo(d.automatable, 'automatable', 'not automatable'), yesNo(d.totalImpact, 'total impact', 'partial impact')].join(', ');
};

export const policySource = (policy: Policy) => `policy ${policy.version}`;

/** The table's row and outcome (the severity fallback is worded in the vulnerability's part). */
export function decisionFactor(policy: Policy, d: DecisionRow): ExplanationFactor {
  return { factor: 'decision', value: d.timeline, source: policySource(policy), effect: format(WORDS.decision, d.row, describeRow(policy, d), d.timelineName, d.tier) };
}

/** The final tier with its due date and why those days. */
export function tierFactor(policy: Policy, base: number, outcome: Pick<Outcome, 'tier' | 'tableTier' | 'dueDays'>, critical: boolean): ExplanationFactor {
  const row = tableRow(policy, base);
  const why = row ? row.timelineName : WORDS.tierSeverity;
  const from = outcome.tier === outcome.tableTier ? why : format(WORDS.tierMoved, outcome.tier, outcome.tableTier);
  const factor = policy.document.modifiers.criticalAsset?.dueFactor ?? 1;
  const crit = critical && factor !== 1 ? format(WORDS.tierCritical, factor) : '';
  return { factor: 'tier', value: outcome.tier, source: policySource(policy), effect: format(WORDS.tier, daysText(outcome.dueDays), from, crit) };
}

/** The score's exposure term, when the finding is publicly exposed (the vulnerability's terms are in its part). */
export const scoreExposedText = (policy: Policy) => format(WORDS.scoreExposed, policy.document.score.weights.publiclyExposed);

/** The tail of the score line: the product of the factors of the modifiers that lowered the finding. */
export const scoreFactorText = (factor: number) => (factor === 1 ? '' : format(WORDS.scoreFactor, Number(factor.toFixed(6))));

/** The vulnerability's terms of the score that hold, in the order the score sums them. */
export function scoreTerms(policy: Policy, t: { exploited: boolean; automatable: boolean; totalImpact: boolean; epss: number | null; cvss: number | null }): string {
  const w = policy.document.score.weights;
  const terms: string[] = [];
  if (t.exploited && w.inKev) terms.push(format(WORDS.scoreExploited, w.inKev));
  if (t.automatable && w.automatable) terms.push(format(WORDS.scoreAutomatable, w.automatable));
  if (t.totalImpact && w.technicalImpact) terms.push(format(WORDS.scoreTotal, w.technicalImpact));
  if (t.epss !== null && t.epss > 0 && w.epss) terms.push(format(WORDS.scoreEpss, t.epss, w.epss));
  if (t.cvss !== null && t.cvss > 0 && w.cvss) terms.push(format(WORDS.scoreCvss, t.cvss, w.cvss));
  return terms.join(' + ');
}

export function vendorFactor(policy: Policy, status: string): ExplanationFactor | undefined {
  const v = policy.document.modifiers.vendorStatus;
  if (!v || !v.statuses.includes(status)) return undefined;
  return { factor: 'vendor_status', value: status, source: WORDS.vendorSource, effect: format(WORDS.vendor, VENDOR_STATUS_WORDS[status] ?? format(WORDS.vendorOther, status), v.to, v.scoreFactor) };
}

export function runtimeEffect(policy: Policy): string {
  const r = policy.document.modifiers.notLoadedAtRuntime;
  return format(WORDS.runtimeLower, r?.lowerBy ?? 0, r?.scoreFactor ?? 1);
}

/** The policy-derived wording of every decision part, by cell: what the scoring statement receives as parameters. */
export function policyWording(policy: Policy) {
  const vendors: Record<string, ExplanationFactor> = {};
  for (const status of policy.document.modifiers.vendorStatus?.statuses ?? []) vendors[status] = vendorFactor(policy, status)!;
  const decisions = policy.decisions.map((d) => decisionFactor(policy, d));
  const text = scoreExposedText(policy);
  // Everything the decision's part says that comes from the policy: a reworded policy (or a
  // changed template) never reuses an old part.
  const digest = createHash('sha256')
    .update(JSON.stringify([policySource(policy), decisions, text, vendors, runtimeEffect(policy), policy.document.modifiers, policy.document.decisionPoints, WORDS, 'score-terms-public-exploit']))
    .digest('hex');
  return { source: policySource(policy), decisions, scoreExposed: text, vendors, runtimeEffect: runtimeEffect(policy), digest };
}

/** The decision's part of an explanation (stored in explanation_parts, read by explanation_assemble). */
export interface DecisionPart {
  tier: ExplanationFactor;
  likely: boolean;
  poc: boolean;
  runtime: boolean;
  nonprod: boolean;
  critical: boolean;
  runtimeEffect: string;
  scoreSource: string;
  /** The exposure term of the score ('' when not exposed) and the factors' tail ('' when none lowered it). */
  scoreExposed: string;
  scoreFactor: string;
  decision?: ExplanationFactor;
  unexposedBy?: ExplanationFactor;
  control?: ExplanationFactor;
  /** The validation evidence that raised or lowered the finding. */
  validation?: ExplanationFactor;
  vendor?: ExplanationFactor;
}

/** The decision's part for a cell and its outcome, with the control and vendor status that applied. */
export function decisionPart(
  policy: Policy,
  key: number,
  outcome: Outcome,
  extra: { unexposedBy?: ExplanationFactor | null; control?: ExplanationFactor | null; validation?: ExplanationFactor | null; vendorStatus?: string | null } = {},
): DecisionPart {
  const cell = cellOf(key);
  const a = outcome.applied;
  const part: DecisionPart = {
    tier: tierFactor(policy, cell.base, outcome, cell.criticalAsset),
    likely: a.likelyExploited, poc: a.publicExploit, runtime: a.runtime, nonprod: a.nonProduction, critical: cell.criticalAsset,
    runtimeEffect: runtimeEffect(policy), scoreSource: policySource(policy),
    scoreExposed: cell.publiclyExposed && policy.document.score.weights.publiclyExposed ? scoreExposedText(policy) : '',
    scoreFactor: scoreFactorText(outcome.scoreFactor),
  };
  if (cell.base < SEVERITY_BASE) part.decision = decisionFactor(policy, policy.decisions[cell.base]!);
  if (extra.unexposedBy) part.unexposedBy = extra.unexposedBy;
  if (extra.control && a.notExploitableControl) part.control = extra.control;
  if (extra.validation && (a.proven || a.notExploitable)) part.validation = extra.validation;
  if (extra.vendorStatus && a.vendorStatus) part.vendor = vendorFactor(policy, extra.vendorStatus);
  return part;
}

// ---- The vulnerability's and the asset's factors, from their facts (the scoring statement words
// the same in SQL with the templates above; these state it for people and tests).

export interface VulnerabilityFacts extends VulnerabilityInputs {
  kevDateAdded?: string | null;
  knownRansomware?: boolean;
  percentile?: number | null;
  /** When CISA made the SSVC assessment in the record (YYYY-MM-DD). */
  ssvcAssessedOn?: string | null;
}

const vectorPart = (vector: string, metric: string) => vector.match(new RegExp(`/${metric}:([A-Z])`))?.[1] ?? '?';

/** The vulnerability's factors and score terms, from its facts and decideVulnerability (vulnerabilities.ts words the same in SQL). */
export function vulnerabilityFactors(policy: Policy, feeds: FeedVersions, v: VulnerabilityFacts): VulnerabilityPart {
  const dp = policy.document.decisionPoints;
  const d = decideVulnerability(policy, v);
  const ssvcSource = format(WORDS.ssvcSource, feeds.cve ?? null, v.ssvcAssessedOn ?? null);
  const ratingFrom = wordsOf(WORDS.ratingFrom);
  const kev: ExplanationFactor = {
    factor: 'in_kev', value: feeds.kev !== null ? v.inKev : null, source: kevSource(feeds),
    effect: feeds.kev === null ? WORDS.kevNoCatalog
      : v.inKev ? format(WORDS.kevIn, feeds.kev, v.kevDateAdded ?? WORDS.kevAddedUnknown, v.knownRansomware ? WORDS.kevRansomware : '')
        : format(WORDS.kevNotIn, feeds.kev),
  };
  const readsExploitation = dp.exploitation !== undefined || policy.document.modifiers.publicExploit !== undefined;
  const expl: ExplanationFactor | undefined = readsExploitation && v.record?.ssvcExploitation
    ? { factor: 'exploitation', value: v.record.ssvcExploitation, source: ssvcSource, effect: format(WORDS.exploitation, wordsOf(WORDS.exploitationWords)[v.record.ssvcExploitation]!) }
    : undefined;
  const vecSource = format(WORDS.vectorSource, d.vectorFrom ? ratingFrom[d.vectorFrom]! : null);
  const auto: ExplanationFactor = d.automatableFrom === 'ssvc'
    ? { factor: 'automatable', value: yesNo(d.automatable, 'yes', 'no'), source: ssvcSource, effect: format(WORDS.automatableSsvc, yesNo(d.automatable, 'yes', 'no')) }
    : d.automatableFrom === 'vector'
      ? { factor: 'automatable', source: vecSource, value: yesNo(d.automatable, 'yes', 'no'),
          effect: format(WORDS.automatableVector, vectorPart(d.vector!, 'AV'), vectorPart(d.vector!, 'AC'), vectorPart(d.vector!, 'PR'), vectorPart(d.vector!, 'UI'),
            d.automatable ? WORDS.automatableVectorYes : WORDS.automatableVectorNo) }
      : { factor: 'automatable', value: yesNo(d.automatable, 'yes', 'no'), source: epssSource(feeds),
          effect: d.automatable ? format(WORDS.automatableEpssYes, v.epss, dp.automatable.epssAtLeast)
            : v.epss !== null ? format(WORDS.automatableEpssNo, v.epss, dp.automatable.epssAtLeast) : WORDS.automatableNone };
  const ti: ExplanationFactor = d.totalImpactFrom === 'ssvc'
    ? { factor: 'technical_impact', value: yesNo(d.totalImpact, 'total', 'partial'), source: ssvcSource, effect: format(WORDS.impactSsvc, yesNo(d.totalImpact, 'total', 'partial')) }
    : d.totalImpactFrom === 'vector'
      ? { factor: 'technical_impact', source: vecSource, value: yesNo(d.totalImpact, 'total', 'partial'),
          effect: format(WORDS.impactVector, vectorPart(d.vector!, 'C'), vectorPart(d.vector!, 'I'), vectorPart(d.vector!, 'S')) }
      : { factor: 'technical_impact', value: yesNo(d.totalImpact, 'total', 'partial'), source: WORDS.impactScoreSource,
          effect: d.cvss === null ? WORDS.impactNoCvss : format(d.totalImpact ? WORDS.impactScoreTotal : WORDS.impactScorePartial, d.cvss, dp.technicalImpact.totalAtCvss) };
  const epss: ExplanationFactor = {
    factor: 'epss', value: v.epss, source: epssSource(feeds),
    effect: feeds.epss === null ? WORDS.epssNoFeed : v.epss === null ? WORDS.epssNoScore
      : format(WORDS.epss, numericRound2(v.epss * 100), numericRound2((v.percentile ?? 0) * 100)),
  };
  const m = policy.document.modifiers.likelyExploited;
  const likely: ExplanationFactor | undefined = m && v.epss !== null && v.epss >= m.epssAtLeast
    ? { factor: 'likely_exploited', value: v.epss, source: epssSource(feeds), effect: format(WORDS.likely, v.epss, m.epssAtLeast, m.to) }
    : undefined;
  const pm = policy.document.modifiers.publicExploit;
  const poc: ExplanationFactor | undefined = pm && d.publicExploit
    ? { factor: 'public_exploit', value: 'poc', source: ssvcSource, effect: format(WORDS.publicExploit, pm.to) }
    : undefined;
  const terms = scoreTerms(policy, { exploited: d.exploited, automatable: d.automatable, totalImpact: d.totalImpact, epss: v.epss, cvss: d.cvss });
  return { kev, ...(expl ? { expl } : {}), auto, ti, epss, ...(likely ? { likely } : {}), ...(poc ? { poc } : {}), scoreTerms: terms };
}

/** The severity fallback's decision factor (no KEV catalog). */
export function severityFactor(policy: Policy, cvss: number | null, tier: string): ExplanationFactor {
  return { factor: 'decision', value: tier, source: policySource(policy), effect: format(WORDS.severity, cvss === null ? 'unknown' : String(cvss), tier) };
}

/** An active compensating control's factor (asset-context.ts words it the same in SQL). */
export function controlFactor(policy: Policy, c: { name: string; kind: string; effect: 'not_exposed' | 'not_exploitable'; expiresAt?: Date | null }): ExplanationFactor {
  const m = policy.document.modifiers.notExploitableControl;
  const expires = c.expiresAt ? format(WORDS.controlExpires, c.expiresAt.toISOString().slice(0, 10)) : '';
  return {
    factor: 'control', value: c.name, source: format(WORDS.controlSource, c.name, c.kind, expires),
    effect: c.effect === 'not_exposed' ? format(WORDS.controlNotExposed, c.name) : format(WORDS.controlNotExploitable, c.name, m?.to ?? 'track', m?.scoreFactor ?? 1),
  };
}

/** A validation test as the scoring statement reads it (table validation_evidence). */
export interface ValidationEvidence {
  result: 'exploited' | 'confirmed' | 'not_exploitable';
  tool: string;
  source: string;
  target?: string | null;
  port?: string | null;
  testedAt: Date;
  expiresAt: Date;
}

const utcDay = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The finding's validation evidence: what the test found, where, when, until when and from which
 * report, and what it does (asset-context.ts words the same in SQL, once per evidence row).
 */
export function validationFactor(policy: Policy, e: ValidationEvidence): ExplanationFactor {
  const m = policy.document.modifiers.validation;
  const test = format(WORDS.validationTest, wordsOf(WORDS.validationResults)[e.result]!, e.tool, e.target ? format(WORDS.validationTarget, e.target) : '',
    e.port ? format(WORDS.validationPort, e.port) : '', utcDay(e.testedAt), utcDay(e.expiresAt), e.source);
  const effect = e.result === 'not_exploitable'
    ? format(WORDS.validationLowered, m?.notExploitable?.to ?? 'track', utcDay(e.expiresAt), m?.notExploitable?.scoreFactor ?? 1)
    : format(WORDS.validationRaised, m?.proven?.to ?? 'act');
  return { factor: 'validation', value: e.result, source: format(WORDS.validationSource, e.tool), effect: test + effect };
}

/** The exposure of an asset marked internet-facing or not, or without context (the firewall and scan wordings are in asset-context.ts). */
export function exposureFactor(policy: Policy, a: { name: string; internetFacing: boolean | null; source?: string | null }): ExplanationFactor {
  const unknownMeans = policy.document.decisionPoints.publiclyExposed.unknownMeans;
  if (a.internetFacing === true) return { factor: 'publicly_exposed', value: 'yes', source: format(WORDS.contextSource, a.source ?? 'inventory'), effect: format(WORDS.exposedPrefix, format(WORDS.exposedMarked, a.name)) };
  if (a.internetFacing === false) return { factor: 'publicly_exposed', value: 'no', source: format(WORDS.contextSource, a.source ?? 'inventory'), effect: format(WORDS.notExposed, a.name) };
  return { factor: 'publicly_exposed', value: unknownMeans, source: WORDS.exposureAssumedSource, effect: format(unknownMeans === 'yes' ? WORDS.exposureAssumedYes : WORDS.exposureAssumedNo, a.name) };
}

export function environmentFactor(policy: Policy, a: { name: string; environment: string | null; source?: string | null }): ExplanationFactor {
  const m = policy.document.modifiers.nonProduction;
  const lower = m?.lowerBy ?? 0;
  const factor = m?.scoreFactor ?? 1;
  return {
    factor: 'environment', value: a.environment, source: format(WORDS.contextSource, a.source ?? 'inventory'),
    effect: a.environment ? format(WORDS.environmentNonProduction, a.name, a.environment, lower, factor) : format(WORDS.environmentUnknown, a.name, lower, factor),
  };
}

/** Business impact of an asset rated critical (the revenue wording is in asset-context.ts). */
export function businessFactor(policy: Policy, a: { name: string; criticality: string; source?: string | null }): ExplanationFactor {
  return {
    factor: 'business_impact', value: a.criticality, source: format(WORDS.contextSource, a.source ?? 'inventory'),
    effect: format(WORDS.businessRated, a.name, a.criticality) + format(WORDS.businessCritical, policy.document.modifiers.criticalAsset?.dueFactor ?? 1),
  };
}

/** What EDR on a host saw loaded, as the asset's part keeps it per package. */
export const runtimeSeenText = (host: string, pkg: string, version: string | null, process: string | null) =>
  format(WORDS.runtimeSeen, host, pkg, version || null, process || WORDS.runtimeSomeProcess);

// ---- Assembly: the order people read, the same as db/functions/explanation_assemble.sql.

export interface VulnerabilityPart {
  kev: ExplanationFactor; expl?: ExplanationFactor; auto: ExplanationFactor; ti: ExplanationFactor; epss: ExplanationFactor;
  likely?: ExplanationFactor; poc?: ExplanationFactor; sev?: ExplanationFactor;
  /** The score's terms that depend on the vulnerability alone. */
  scoreTerms: string;
}
export interface AssetPart { exposure: ExplanationFactor; environment: ExplanationFactor; runtimeHosts: string | null; runtimeSeen: Record<string, string> | null; business?: ExplanationFactor }

export const ASSEMBLY_WORDS = {
  runtimeSource: 'EDR runtime evidence',
  runtimeLoaded: 'runtime: %s',
  runtimeNotLoaded: 'runtime: EDR covers %s and never saw %s loaded: %s',
  unexposedSource: '%s and %s',
  unexposedEffect: '%s; but %s',
  scoreNothing: 'nothing adds up',
} as const;

/** The factor list from the three parts: kev, exposure, automatable, impact, EPSS, decision, the modifiers that applied (validation after the control), business impact, tier, score. */
export function assembleExplanation(v: VulnerabilityPart, a: AssetPart, c: DecisionPart, component: string, score: number): ExplanationFactor[] {
  const out: ExplanationFactor[] = [
    v.kev,
    ...(v.expl ? [v.expl] : []),
    c.unexposedBy
      ? { factor: 'publicly_exposed', value: 'no', source: format(ASSEMBLY_WORDS.unexposedSource, a.exposure.source, c.unexposedBy.source), effect: format(ASSEMBLY_WORDS.unexposedEffect, a.exposure.effect, c.unexposedBy.effect) }
      : a.exposure,
    v.auto, v.ti, v.epss, (c.decision ?? v.sev)!,
  ];
  if (c.likely) out.push(v.likely!);
  if (c.poc) out.push(v.poc!);
  if (c.runtime) {
    const seen = a.runtimeSeen?.[component.toLowerCase()] ?? (component.includes(':') ? a.runtimeSeen?.[component.split(':')[1]!.toLowerCase()] : undefined);
    out.push(seen !== undefined
      ? { factor: 'runtime', value: 'loaded', source: ASSEMBLY_WORDS.runtimeSource, effect: format(ASSEMBLY_WORDS.runtimeLoaded, seen) }
      : { factor: 'runtime', value: 'not loaded', source: ASSEMBLY_WORDS.runtimeSource, effect: format(ASSEMBLY_WORDS.runtimeNotLoaded, a.runtimeHosts, component, c.runtimeEffect) });
  }
  if (c.nonprod) out.push(a.environment);
  if (c.control) out.push(c.control);
  if (c.validation) out.push(c.validation);
  if (c.vendor) out.push(c.vendor);
  if (c.critical && a.business) out.push(a.business);
  const terms = [v.scoreTerms, c.scoreExposed].filter((t) => t !== '').join(' + ');
  out.push(c.tier, { factor: 'score', value: score, source: c.scoreSource, effect: (terms || ASSEMBLY_WORDS.scoreNothing) + c.scoreFactor });
  return out;
}

/** The factors whose value (or, for feeds, source) differs between two explanations, in words. */
export function differingFactors(before: ExplanationFactor[] | null, after: ExplanationFactor[]): string {
  if (!before) return 'not scored yet';
  const old = new Map(before.map((f) => [f.factor, f]));
  const now = new Map(after.map((f) => [f.factor, f]));
  const parts: string[] = [];
  const shown = (v: unknown) => (v === null || v === undefined ? 'none' : String(v));
  for (const [name, f] of now) {
    if (name === 'score' || name === 'tier') continue;
    const was = old.get(name);
    if (!was) parts.push(`${name} now applies: ${f.effect}`);
    else if (shown(was.value) !== shown(f.value)) parts.push(`${name} ${shown(was.value)} → ${shown(f.value)}: ${f.effect}`);
    else if (name === 'decision' && was.effect !== f.effect) parts.push(`decision: ${f.effect}`);
  }
  for (const [name, f] of old) {
    if (!now.has(name) && name !== 'score' && name !== 'tier') parts.push(`${name} no longer applies (was: ${f.effect})`);
  }
  return parts.length ? parts.join('; ') : 'the policy maps the same factors differently';
}
