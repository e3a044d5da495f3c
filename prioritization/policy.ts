import { readFileSync } from 'node:fs';
import { z } from 'zod';

// Prioritization policies are data: a versioned JSON document (prioritization/policies/*.json, or a
// row of the policies table) validated here. prioritization/scoring/decision.ts states what it
// decides; prioritization/scoring/rescore.ts applies it set-based. Tiers follow SSVC's CISA vocabulary (act / attend / track* / track).

export type Tier = 'act' | 'attend' | 'track*' | 'track';

export const TIERS: readonly Tier[] = ['act', 'attend', 'track*', 'track'];

/** Tiers that open golden tickets; the rest stay on the exposure list. */
export const ACTION_TIERS: readonly Tier[] = ['act', 'attend'];

/** Lowest first: the SQL works on these ranks (0 track ... 3 act). */
export const TIER_RANK: Record<Tier, number> = { track: 0, 'track*': 1, attend: 2, act: 3 };
export const TIER_BY_RANK: readonly Tier[] = ['track', 'track*', 'attend', 'act'];

const tier = z.enum(['act', 'attend', 'track*', 'track']);
const yesNo = z.enum(['yes', 'no']);
const note = z.string().optional();
const probability = z.number().min(0).max(1);
const cvss = z.number().min(0).max(10);
const days = z.number().positive().max(3650);
const factor = z.number().min(0).max(1);

export const PolicyDocument = z.strictObject({
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, 'letters, digits and . _ + - (at most 64), starting with a letter or digit'),
  name: z.string().min(1),
  description: z.string().optional(),
  attribution: z.string().optional(),
  decisionPoints: z.strictObject({
    inKev: z.strictObject({
      /** No active KEV catalog at all: severity decides, never act. */
      withoutCatalog: z.strictObject({ attendAtCvss: cvss, trackStarAtCvss: cvss }),
      note,
    }),
    publiclyExposed: z.strictObject({
      /** What a finding on an asset with no exposure context is taken to be. */
      unknownMeans: yesNo,
      /** Relations through which a host's internet exposure reaches the asset (image runs_on host). */
      throughRelations: z.array(z.enum(['runs_on', 'instance_of', 'part_of'])),
      note,
    }),
    /**
     * Where "exploited" comes from besides KEV: with `ssvcActive`, CISA's SSVC assessment
     * "Exploitation: active" in a CVE record counts as in KEV for the table (its first column then
     * reads "exploitation active"). Absent: KEV alone.
     */
    exploitation: z.strictObject({ ssvcActive: z.boolean(), note }).optional(),
    /**
     * Which CVSS vector and score the decision reads. With `cveRecordFirst`, the CVE record's (the
     * CNA's, else an ADP's such as CISA's) over the scanner's: one rating per CVE, whatever scanner
     * reported it. Absent: the scanner's.
     */
    cvss: z.strictObject({ cveRecordFirst: z.boolean(), note }).optional(),
    automatable: z.strictObject({ fromSsvc: z.boolean().optional(), fromCvssVector: z.boolean(), epssAtLeast: probability, note }),
    technicalImpact: z.strictObject({ fromSsvc: z.boolean().optional(), fromCvssVector: z.boolean(), totalAtCvss: cvss, note }),
  }),
  timelines: z.record(
    z.string().regex(/^[A-Za-z0-9*+-]{1,16}$/, 'a short key like 3D or FSU'),
    z.strictObject({ name: z.string().min(1), tier, dueDays: days, forensics: z.boolean().optional(), note }),
  ),
  table: z.array(
    z.strictObject({
      row: z.number().int().min(0),
      inKev: yesNo,
      publiclyExposed: yesNo,
      automatable: yesNo,
      technicalImpact: z.enum(['partial', 'total']),
      timeline: z.string(),
    }),
  ),
  tiers: z.strictObject({
    act: z.strictObject({ dueDays: days }),
    attend: z.strictObject({ dueDays: days }),
    'track*': z.strictObject({ dueDays: days }),
    track: z.strictObject({ dueDays: days }),
  }),
  modifiers: z.strictObject({
    likelyExploited: z.strictObject({ epssAtLeast: probability, raise: z.array(tier).min(1), to: tier, note }).optional(),
    /**
     * CISA's SSVC assessment "Exploitation: poc" (a public proof of concept) raises the listed tiers
     * to `to`; with `whenExposed`, only where the finding is publicly exposed (exploit code an
     * attacker cannot reach is not urgent).
     */
    publicExploit: z.strictObject({ raise: z.array(tier).min(1), to: tier, whenExposed: z.boolean().optional(), note }).optional(),
    notLoadedAtRuntime: z.strictObject({ lowerBy: z.number().int().min(1).max(3), scoreFactor: factor, note }).optional(),
    nonProduction: z
      .strictObject({
        productionEnvironments: z.array(z.string().min(1)).min(1),
        unknownMeans: z.enum(['production', 'non-production']),
        lowerBy: z.number().int().min(1).max(3),
        scoreFactor: factor,
        note,
      })
      .optional(),
    notExploitableControl: z.strictObject({ to: tier, scoreFactor: factor, note }).optional(),
    vendorStatus: z.strictObject({ statuses: z.array(z.string().min(1)).min(1), to: tier, scoreFactor: factor, note }).optional(),
    /**
     * Validation evidence (table validation_evidence) on the finding's asset and vulnerability: the
     * latest unexpired test whose result is exploited, confirmed or not_exploitable. `proven` (a
     * result it lists) raises to at least `to`, and a not-exploitable control or an EDR that never saw
     * the component loaded no longer lowers it (the test exercised the running code); non-production
     * still lowers and a vendor status still caps. `notExploitable` caps at `to` until the test expires.
     */
    validation: z
      .strictObject({
        proven: z.strictObject({ results: z.array(z.enum(['exploited', 'confirmed'])).min(1), to: tier, note }).optional(),
        notExploitable: z.strictObject({ to: tier, scoreFactor: factor, note }).optional(),
        note,
      })
      .optional(),
    criticalAsset: z
      .strictObject({
        criticalities: z.array(z.enum(['critical', 'high', 'medium', 'low'])).min(1),
        /** An asset whose business service carries at least this yearly revenue counts as critical too. */
        revenueAtLeast: z.number().positive().optional(),
        dueFactor: z.number().gt(0).max(1),
        note,
      })
      .optional(),
  }),
  score: z.strictObject({
    weights: z.strictObject({
      inKev: z.number().min(0),
      publiclyExposed: z.number().min(0),
      automatable: z.number().min(0),
      technicalImpact: z.number().min(0),
      epss: z.number().min(0),
      cvss: z.number().min(0),
    }),
    note,
  }),
});
export type PolicyDocument = z.infer<typeof PolicyDocument>;

/** A policy document that cannot be used: where it came from, the JSON path, and why. */
export class PolicyError extends Error {
  constructor(
    readonly where: string,
    readonly path: string,
    readonly reason: string,
    readonly code: 'invalid' | 'conflict' | 'not_found' = 'invalid',
  ) {
    super(`${where}: ${path || '(document)'}: ${reason}`);
    this.name = 'PolicyError';
  }
}

/** One cell of the decision table, indexed by inKev*8 + exposed*4 + automatable*2 + totalImpact. */
export interface DecisionRow {
  row: number;
  inKev: boolean;
  publiclyExposed: boolean;
  automatable: boolean;
  totalImpact: boolean;
  timeline: string;
  timelineName: string;
  tier: Tier;
  dueDays: number;
  forensics: boolean;
}

export interface Policy {
  version: string;
  document: PolicyDocument;
  /** 16 entries, by decision key. */
  decisions: DecisionRow[];
}

export const decisionKey = (inKev: boolean, exposed: boolean, automatable: boolean, total: boolean): number =>
  (inKev ? 8 : 0) + (exposed ? 4 : 0) + (automatable ? 2 : 0) + (total ? 1 : 0);

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** Validates a policy document (zod shape, then the cross-field rules) and compiles its table. */
export function parsePolicy(input: unknown, where: string): Policy {
  const parsed = PolicyDocument.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? formatPath([...issue.path, issue.keys[0]!]) : formatPath(issue.path);
    const reason = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message;
    throw new PolicyError(where, path, reason);
  }
  const doc = parsed.data;
  const fail = (path: string, reason: string): never => {
    throw new PolicyError(where, path, reason);
  };

  const decisions: Array<DecisionRow | undefined> = new Array(16).fill(undefined);
  const rowNumbers = new Map<number, number>();
  doc.table.forEach((r, i) => {
    const same = rowNumbers.get(r.row);
    if (same !== undefined) fail(`table[${i}].row`, `row number ${r.row} is already used by table[${same}]`);
    rowNumbers.set(r.row, i);
    const timeline = doc.timelines[r.timeline] ?? fail(`table[${i}].timeline`, `unknown timeline ${JSON.stringify(r.timeline)}; defined: ${Object.keys(doc.timelines).join(', ')}`);
    const key = decisionKey(r.inKev === 'yes', r.publiclyExposed === 'yes', r.automatable === 'yes', r.technicalImpact === 'total');
    const earlier = decisions[key];
    if (earlier) fail(`table[${i}]`, `repeats the combination of row ${earlier.row} (each combination must appear once)`);
    decisions[key] = {
      row: r.row,
      inKev: r.inKev === 'yes',
      publiclyExposed: r.publiclyExposed === 'yes',
      automatable: r.automatable === 'yes',
      totalImpact: r.technicalImpact === 'total',
      timeline: r.timeline,
      timelineName: timeline.name,
      tier: timeline.tier,
      dueDays: timeline.dueDays,
      forensics: timeline.forensics ?? false,
    };
  });
  const missing = decisions.findIndex((d) => d === undefined);
  if (missing >= 0) {
    const has = (bit: number) => ((missing & bit) !== 0 ? 'yes' : 'no');
    fail('table', `no row for inKev ${has(8)}, publiclyExposed ${has(4)}, automatable ${has(2)}, technicalImpact ${missing & 1 ? 'total' : 'partial'} (16 combinations needed)`);
  }
  const weights = doc.score.weights;
  const sum = weights.inKev + weights.publiclyExposed + weights.automatable + weights.technicalImpact + weights.epss + weights.cvss;
  if (Math.abs(sum - 100) > 1e-9) fail('score.weights', `must add up to 100 so the score is 0-100 (they add up to ${sum})`);
  const without = doc.decisionPoints.inKev.withoutCatalog;
  if (without.trackStarAtCvss > without.attendAtCvss) fail('decisionPoints.inKev.withoutCatalog.trackStarAtCvss', 'must not be above attendAtCvss');
  for (const name of ['likelyExploited', 'publicExploit'] as const) {
    const raise = doc.modifiers[name];
    if (raise && raise.raise.some((t) => TIER_RANK[t] >= TIER_RANK[raise.to])) {
      fail(`modifiers.${name}.raise`, `lists a tier at or above "to" (${raise.to}): it can only raise`);
    }
  }
  const validation = doc.modifiers.validation;
  if (validation && !validation.proven && !validation.notExploitable) fail('modifiers.validation', 'name proven, notExploitable or both');
  return { version: doc.version, document: doc, decisions: decisions as DecisionRow[] };
}

/**
 * The policies the platform ships, by file name; the first is the default. A shipped version never
 * changes meaning: a change ships as a new file and version (exploitability-2 is exploitability-1
 * with validation evidence), and the older ones stay so that estates running them keep them.
 */
export const SHIPPED_POLICIES = ['exploitability-2.json', 'exploitability.json', 'bod-26-04-epss.json'] as const;
export type ShippedPolicy = (typeof SHIPPED_POLICIES)[number];

/** A shipped document, as JSON. */
export function shippedPolicyDocument(file: ShippedPolicy = SHIPPED_POLICIES[0]): unknown {
  return JSON.parse(readFileSync(new URL(`./policies/${file}`, import.meta.url), 'utf8'));
}

/** A shipped policy, parsed. */
export function shippedPolicy(file: ShippedPolicy): Policy {
  return parsePolicy(shippedPolicyDocument(file), `prioritization/policies/${file}`);
}

/** The shipped default document ("most likely to be exploited here"), as JSON. */
export function defaultPolicyDocument(): unknown {
  return shippedPolicyDocument(SHIPPED_POLICIES[0]);
}

/** The shipped default policy, parsed. The active one lives in the database (prioritization/policy-store.ts). */
export function defaultPolicy(): Policy {
  return shippedPolicy(SHIPPED_POLICIES[0]);
}

/** CISA BOD 26-04 with FIRST EPSS, shipped beside the default for those who follow the directive. */
export function bodPolicy(): Policy {
  return shippedPolicy('bod-26-04-epss.json');
}
