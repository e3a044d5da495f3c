import type { ExplanationFactor } from '../db/schema.js';
import type { NormalizedFinding } from '../discovery/model.js';
import { decisionKey, TIER_RANK, TIERS, type Policy, type Tier } from './policy.js';
import { cellKey, decide, decideVulnerability, score, SEVERITY_BASE, severityTier, type Cell, type RecordFacts } from './scoring/decision.js';
import {
  assembleExplanation, businessFactor, decisionPart, environmentFactor, exposureFactor, severityFactor, vulnerabilityFactors,
  type AssetPart, type FeedVersions,
} from './scoring/explanation.js';

// The CI/CD gate: a scanner report of something not deployed yet (an image before it ships),
// decided finding by finding with decide() under the policy and feeds the gate was given, and a
// verdict by the block rule. Nothing is written: a report evaluated here never enters the estate.
// Pure: the inputs (feeds' facts for the report's vulnerabilities, the asset's context, exceptions)
// come from gate-inputs.ts, read from the platform's PostgreSQL or from feed files.

/** What the feeds say about the report's vulnerabilities, and which versions said it. */
export interface GateIntel {
  versions: FeedVersions;
  epss: Map<string, { epss: number; percentile: number }>;
  kev: Map<string, { dateAdded: string | null; knownRansomware: boolean }>;
  /** PUBLISHED records only (scoring ignores rejected ones), with when CISA assessed SSVC (YYYY-MM-DD). */
  records: Map<string, RecordFacts & { ssvcAssessedOn: string | null }>;
}

/** A compensating control that applies to the asset, as scoring reads it (asset-context.ts ctl). */
export interface GateControl {
  name: string;
  effect: 'not_exposed' | 'not_exploitable';
  issueIds: string[];
  components: string[];
  ports: string[];
  factor: ExplanationFactor;
}

/** The asset's context as the scoring statement's asset step derives it (asset-context.ts asset_ctx). */
export interface GateAssetContext {
  key: string;
  name: string;
  /** Where the context came from: the platform's inventory (the asset is known), or the request alone. */
  source: 'platform' | 'request';
  owner: string | null;
  businessService: string | null;
  exposed: 'yes' | 'no' | 'unknown';
  exposedPorts: string[] | null;
  exposure: ExplanationFactor;
  nonProduction: boolean;
  environment: ExplanationFactor;
  critical: boolean;
  business?: ExplanationFactor;
  edrCovered: boolean;
  runtimeHosts: string | null;
  /** What EDR saw loaded, by lower-cased package. */
  runtimeSeen: Record<string, string> | null;
  controls: GateControl[];
  /** The latest unexpired validation test per vulnerability that moves a tier: its result and factor. */
  evidence: Record<string, { result: string; factor: ExplanationFactor }>;
}

/** Context given with the request (flags, query parameters) for an asset the platform does not know, or over what it knows. */
export interface RequestedContext {
  internetFacing?: boolean;
  environment?: string;
  criticality?: 'critical' | 'high' | 'medium' | 'low';
  owner?: string;
  businessService?: string;
}

/** An exception that lets a finding pass: a risk acceptance on a ticket (platform) or an entry of an exceptions file (standalone). */
export interface GateException {
  issueId: string;
  /** Absent: every component with this vulnerability. */
  component?: string;
  reason: string;
  expiresAt: string;
  ticket?: string;
  approver?: string;
}

export const BLOCK_RULES = ['act', 'attend', 'kev'] as const;
export type BlockRule = (typeof BLOCK_RULES)[number];

export interface GateRule {
  block: BlockRule[];
  honourExceptions: boolean;
}

/** Bad gate input: which input (file, parameter), which field, why. */
export class GateInputError extends Error {
  constructor(readonly where: string, readonly field: string, readonly reason: string) {
    super(`${where}${field ? `: ${field}` : ''}: ${reason}`);
    this.name = 'GateInputError';
  }
}

/** `act` (the default), `act+attend`, `kev`, or any of them joined with + or a comma. */
export function parseBlockRule(text: string | undefined, where = '--block'): BlockRule[] {
  if (text === undefined || text.trim() === '') return ['act'];
  const parts = text.split(/[+,]/).map((p) => p.trim().toLowerCase());
  const bad = parts.find((p) => !(BLOCK_RULES as readonly string[]).includes(p));
  if (bad !== undefined) throw new GateInputError(where, '', `unknown block rule ${JSON.stringify(bad)}; use act, attend or kev, joined with + (e.g. act+attend, act+kev)`);
  return BLOCK_RULES.filter((r) => parts.includes(r));
}

/** The context of an asset the platform does not know, from what the request says (worded as scoring words an asset without context). */
export function requestedAssetContext(policy: Policy, asset: { key: string; name: string }, given: RequestedContext): GateAssetContext {
  const source = 'gate request';
  const nonProduction = nonProductionOf(policy, given.environment ?? null);
  const critical = given.criticality !== undefined && (policy.document.modifiers.criticalAsset?.criticalities ?? []).includes(given.criticality);
  return {
    key: asset.key, name: asset.name, source: 'request', owner: given.owner ?? null, businessService: given.businessService ?? null,
    exposed: given.internetFacing === undefined ? 'unknown' : given.internetFacing ? 'yes' : 'no',
    exposedPorts: null,
    exposure: exposureFactor(policy, { name: asset.name, internetFacing: given.internetFacing ?? null, ...(given.internetFacing !== undefined ? { source } : {}) }),
    nonProduction,
    environment: environmentFactor(policy, { name: asset.name, environment: given.environment ?? null, ...(given.environment !== undefined ? { source } : {}) }),
    critical,
    ...(critical ? { business: businessFactor(policy, { name: asset.name, criticality: given.criticality!, source }) } : {}),
    edrCovered: false, runtimeHosts: null, runtimeSeen: null, controls: [], evidence: {},
  };
}

/** What the request says, over what the platform knows: each attribute given replaces the platform's (worded as the request's). */
export function overrideContext(policy: Policy, known: GateAssetContext, given: RequestedContext): GateAssetContext {
  const asked = requestedAssetContext(policy, known, given);
  const out: GateAssetContext = { ...known };
  if (given.internetFacing !== undefined) Object.assign(out, { exposed: asked.exposed, exposure: asked.exposure });
  if (given.environment !== undefined) Object.assign(out, { nonProduction: asked.nonProduction, environment: asked.environment });
  if (given.criticality !== undefined) {
    out.critical = asked.critical;
    if (asked.business) out.business = asked.business;
    else delete out.business;
  }
  if (given.owner !== undefined) out.owner = given.owner;
  if (given.businessService !== undefined) out.businessService = given.businessService;
  return out;
}

/** The non-production modifier's evidence for an environment (asset-context.ts nonprod). */
function nonProductionOf(policy: Policy, environment: string | null): boolean {
  const m = policy.document.modifiers.nonProduction;
  if (!m) return false;
  if (environment === null || environment === '') return m.unknownMeans === 'non-production';
  return !m.productionEnvironments.map((e) => e.toLowerCase()).includes(environment.toLowerCase());
}

/** One finding of the report, decided. */
export interface GateFinding {
  issueId: string;
  kind: NormalizedFinding['kind'];
  component: string;
  version: string;
  fixedVersion: string | null;
  /** Where the component is (a jar's path, a manifest), '' when the report does not say. */
  path: string;
  title: string | null;
  severity: string;
  tier: Tier;
  score: number;
  /** The CVSS base score the decision read (the CVE record's or the scanner's). */
  cvss: number | null;
  dueDays: number;
  inKev: boolean;
  /** The block rules this finding meets (before exceptions). */
  matched: BlockRule[];
  blocking: boolean;
  exception?: GateException;
  explanation: ExplanationFactor[];
}

export interface GateResult {
  verdict: 'pass' | 'block';
  rule: GateRule;
  policy: string;
  feeds: FeedVersions;
  assets: Array<Pick<GateAssetContext, 'key' | 'name' | 'source' | 'owner' | 'businessService'>>;
  counts: Record<Tier, number> & { findings: number; blocking: number; excepted: number };
  /** Blocking first, then by tier and score. */
  findings: GateFinding[];
}

/** A finding's identity in the estate (discovery/store/ingest.ts fingerprint, without the asset id). */
const identity = (f: NormalizedFinding) => [f.asset.assetKey, f.kind, f.issueId, f.component, f.version, f.location].join('\u001f');

/**
 * The report's findings as the estate would hold them: one per identity, the one with the highest
 * CVSS score (then with a vector) when a report lists it twice, as ingest keeps it.
 */
export function distinctFindings(findings: Iterable<NormalizedFinding>): NormalizedFinding[] {
  const byId = new Map<string, NormalizedFinding>();
  const better = (a: NormalizedFinding, b: NormalizedFinding) =>
    (a.cvssScore ?? -Infinity) !== (b.cvssScore ?? -Infinity) ? (a.cvssScore ?? -Infinity) > (b.cvssScore ?? -Infinity) : a.cvssVector !== undefined && b.cvssVector === undefined;
  for (const f of findings) {
    const id = identity(f);
    const had = byId.get(id);
    if (!had || better(f, had)) byId.set(id, f);
  }
  return [...byId.values()];
}

/**
 * Decides one finding on its asset, as the scoring statement does (relation.ts): the finding's
 * evidence (EDR sighting of its component, the controls that cover it, its validation test, its
 * vendor status) into its cell, decide() and score(), and the explanation assembled from the
 * vulnerability's, the asset's and the decision's parts.
 */
export function decideFinding(policy: Policy, intel: GateIntel, asset: GateAssetContext, f: NormalizedFinding): Omit<GateFinding, 'matched' | 'blocking' | 'exception'> {
  const feeds = intel.versions;
  const record = feeds.cve ? intel.records.get(f.issueId) ?? null : null;
  const epss = feeds.epss ? intel.epss.get(f.issueId) : undefined;
  const kev = feeds.kev ? intel.kev.get(f.issueId) : undefined;
  const inputs = { inKev: kev !== undefined, epss: epss?.epss ?? null, cvss: f.cvssScore ?? null, vector: f.cvssVector ?? null, record };
  const d = decideVulnerability(policy, inputs);
  const component = f.component;
  const seen = asset.edrCovered
    ? asset.runtimeSeen?.[component.toLowerCase()] ?? (component.includes(':') ? asset.runtimeSeen?.[component.split(':')[1]!.toLowerCase()] : undefined)
    : undefined;
  // The platform keeps no CWE of a report's finding (findings.cwes stays empty), so controls match
  // by vulnerability, component and ports here as they do there.
  const portsCovered = (c: GateControl) => c.ports.length > 0 && asset.exposedPorts !== null && asset.exposedPorts.every((p) => c.ports.includes(p));
  const covering = asset.controls
    .filter((c) => c.issueIds.includes(f.issueId) || c.components.includes(component) || portsCovered(c))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const unexposedBy = covering.find((c) => c.effect === 'not_exposed');
  const notExploitable = covering.find((c) => c.effect === 'not_exploitable');
  const publiclyExposed = asset.exposed === 'yes' ? unexposedBy === undefined : asset.exposed === 'unknown' ? policy.document.decisionPoints.publiclyExposed.unknownMeans === 'yes' : false;
  const test = policy.document.modifiers.validation ? asset.evidence[f.issueId] : undefined;
  const provenResults: readonly string[] = policy.document.modifiers.validation?.proven?.results ?? [];
  const cell: Cell = {
    base: feeds.kev === null ? SEVERITY_BASE + TIER_RANK[severityTier(policy, d.cvss)] : decisionKey(d.exploited, publiclyExposed, d.automatable, d.totalImpact),
    publicExploit: d.publicExploit,
    publiclyExposed,
    likelyExploited: policy.document.modifiers.likelyExploited !== undefined && inputs.epss !== null && inputs.epss >= policy.document.modifiers.likelyExploited.epssAtLeast,
    edrCovered: asset.edrCovered,
    notSeenLoaded: seen === undefined,
    nonProduction: asset.nonProduction,
    notExploitableControl: notExploitable !== undefined,
    vendorStatus: f.vendorStatus !== undefined && (policy.document.modifiers.vendorStatus?.statuses ?? []).includes(f.vendorStatus),
    criticalAsset: asset.critical,
    proven: test !== undefined && provenResults.includes(test.result),
    notExploitable: test?.result === 'not_exploitable',
  };
  const outcome = decide(policy, cell);
  const value = score(policy, { inKev: d.exploited, publiclyExposed, automatable: d.automatable, totalImpact: d.totalImpact, epss: inputs.epss, cvss: d.cvss }, outcome.scoreFactor);
  const v = vulnerabilityFactors(policy, feeds, {
    ...inputs, kevDateAdded: kev?.dateAdded ?? null, knownRansomware: kev?.knownRansomware ?? false, percentile: epss?.percentile ?? null,
    ssvcAssessedOn: record?.ssvcAssessedOn ?? null,
  });
  if (feeds.kev === null) v.sev = severityFactor(policy, d.cvss, outcome.tableTier);
  const a: AssetPart = {
    exposure: asset.exposure, environment: asset.environment, runtimeHosts: asset.runtimeHosts, runtimeSeen: asset.edrCovered ? asset.runtimeSeen ?? {} : null,
    ...(asset.business ? { business: asset.business } : {}),
  };
  const c = decisionPart(policy, cellKey(cell), outcome, {
    unexposedBy: asset.exposed === 'yes' && unexposedBy ? unexposedBy.factor : null,
    control: notExploitable?.factor ?? null,
    validation: test?.factor ?? null,
    vendorStatus: cell.vendorStatus ? f.vendorStatus! : null,
  });
  return {
    issueId: f.issueId, kind: f.kind, component, version: f.version, fixedVersion: f.fixedVersion ?? null, path: f.location || f.manifest || '',
    title: f.title ?? null, severity: f.severity, tier: outcome.tier, score: value, cvss: d.cvss, dueDays: outcome.dueDays, inKev: inputs.inKev,
    explanation: assembleExplanation(v, a, c, component, value),
  };
}

/** The exception that covers a finding, if any is still running. */
export function exceptionFor(exceptions: readonly GateException[], f: { issueId: string; component: string }, now = new Date()): GateException | undefined {
  return exceptions.find((e) => e.issueId === f.issueId && (e.component === undefined || e.component === f.component) && new Date(e.expiresAt).getTime() > now.getTime());
}

/**
 * The gate: every distinct finding of the report decided on its asset's context, then the block
 * rule: a finding blocks when it meets a rule (its tier is one listed, or `kev` and it is in CISA
 * KEV) and, when exceptions are honoured, no running exception covers it.
 */
export function evaluateGate(
  policy: Policy,
  intel: GateIntel,
  findings: readonly NormalizedFinding[],
  contextOf: (assetKey: string) => GateAssetContext,
  rule: GateRule,
  exceptionsOf: (assetKey: string) => readonly GateException[] = () => [],
  now = new Date(),
): GateResult {
  const out: GateFinding[] = [];
  const assets = new Map<string, GateAssetContext>();
  for (const f of distinctFindings(findings)) {
    let asset = assets.get(f.asset.assetKey);
    if (!asset) assets.set(f.asset.assetKey, (asset = contextOf(f.asset.assetKey)));
    const decided = decideFinding(policy, intel, asset, f);
    const matched = rule.block.filter((r) => (r === 'kev' ? decided.inKev : decided.tier === r));
    const exception = matched.length && rule.honourExceptions ? exceptionFor(exceptionsOf(f.asset.assetKey), decided, now) : undefined;
    out.push({ ...decided, matched, blocking: matched.length > 0 && exception === undefined, ...(exception ? { exception } : {}) });
  }
  out.sort((a, b) => +b.blocking - +a.blocking || TIER_RANK[b.tier] - TIER_RANK[a.tier] || b.score - a.score || (a.issueId < b.issueId ? -1 : a.issueId > b.issueId ? 1 : 0));
  const counts = Object.fromEntries(TIERS.map((t) => [t, 0])) as Record<Tier, number>;
  for (const f of out) counts[f.tier]++;
  const blocking = out.filter((f) => f.blocking).length;
  return {
    verdict: blocking > 0 ? 'block' : 'pass',
    rule,
    policy: policy.version,
    feeds: intel.versions,
    assets: [...assets.values()].map((a) => ({ key: a.key, name: a.name, source: a.source, owner: a.owner, businessService: a.businessService })),
    counts: { ...counts, findings: out.length, blocking, excepted: out.filter((f) => f.exception).length },
    findings: out,
  };
}

/** The factors a person reads to see why a finding was decided so: all but the score line. */
export const decidingFactors = (f: GateFinding) => f.explanation.filter((x) => x.factor !== 'score');
