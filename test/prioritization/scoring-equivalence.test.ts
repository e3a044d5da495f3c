import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { decisionKey, defaultPolicy } from '../../prioritization/policy.js';
import { cellKey, decide, decideVulnerability, MODIFIER_SPAN, score, SEVERITY_BASE, severityTier, type Cell, type RecordFacts } from '../../prioritization/scoring/decision.js';
import {
  assembleExplanation, businessFactor, controlFactor, decisionPart, environmentFactor, exposureFactor, runtimeSeenText,
  severityFactor, validationFactor, vulnerabilityFactors, type AssetPart, type FeedVersions, type ValidationEvidence, type VulnerabilityPart,
} from '../../prioritization/scoring/explanation.js';
import { TIER_RANK } from '../../prioritization/policy.js';
import { rescoreFindings } from '../../prioritization/scoring/rescore.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// The set-based SQL and the TypeScript statement of the policy (decision.ts, explanation.ts) agree
// on every finding: findings are generated for every cell of the decision table crossed with every
// modifier (likely exploited, EDR coverage and sighting, environment, critical asset, a
// not-exploitable or not-exposed control, vendor status), scored by rescoreFindings on PostgreSQL,
// and each one's tier, score, due date and whole explanation is compared with what decide(),
// score() and assembleExplanation() give for the same facts, and validation evidence (exploited,
// confirmed, not exploitable, with newer tests that do not count or have expired) on every asset
// for a few vulnerabilities. Then again without a KEV catalog (the severity outcomes).

afterAll(closeTestDatabases);

const policy = defaultPolicy();
const FEEDS = { kev: 'eq-kev-1', epss: 'eq-epss-1', cve: 'eq-cve-1' };
const vector = (auto: boolean, total: boolean) => `CVSS:3.1/AV:${auto ? 'N' : 'L'}/AC:L/PR:N/UI:N/S:U/C:${total ? 'H' : 'L'}/I:${total ? 'H' : 'N'}/A:N`;

interface CveRecord extends RecordFacts { state: 'PUBLISHED' | 'REJECTED'; assessed: string | null }
interface Test extends Omit<ValidationEvidence, 'result'> { result: ValidationEvidence['result'] | 'reachable' | 'unreachable' }
interface Vuln {
  id: string; inKev: boolean; auto: boolean; total: boolean; likely: boolean; epss: number; percentile: number; cvss: number; added: string; ransomware: boolean; record?: CveRecord;
  /** Validation tests of this vulnerability, on every asset. */
  tests?: Test[];
}
interface Asset { id: number; name: string; key: string; exposed: boolean; edr: 'none' | 'unseen' | 'loaded'; environment: string; critical: boolean; control: 'none' | 'nx' | 'ne' }

const vulns: Vuln[] = [];
for (const inKev of [false, true]) for (const auto of [false, true]) for (const total of [false, true]) for (const likely of [false, true]) {
  const n = vulns.length;
  vulns.push({
    id: `CVE-2098-${String(1000 + n)}`, inKev, auto, total, likely,
    // Likely: at or above modifiers.likelyExploited.epssAtLeast; either way below the automatable
    // threshold's use (the vector decides automatable here).
    epss: likely ? [0.35, 0.12345, 0.9][n % 3]! : [0.02, 0.00042, 0.071][n % 3]!,
    percentile: [0.91234, 0.5, 0.99987][n % 3]!,
    cvss: [9.8, 7.5, 5.3][n % 3]!,
    added: `2098-01-${String(10 + n)}`, ransomware: n % 2 === 0,
  });
}

// CVE records: each rule of precedence (SSVC over the vector, the record's vector over the
// scanner's, the CNA's over the ADP's, SSVC active as exploited, poc as a public exploit; a rejected
// record is ignored). The scanner's vector disagrees with the record on purpose.
const rec = (r: Partial<CveRecord>): CveRecord => ({
  state: 'PUBLISHED', assessed: '2024-07-23', cnaVector: null, cnaScore: null, adpVector: null, adpScore: null,
  ssvcExploitation: null, ssvcAutomatable: null, ssvcTechnicalImpact: null, ...r,
});
const recordCases: Array<Pick<Vuln, 'inKev' | 'auto' | 'total' | 'likely'> & { record: CveRecord }> = [
  { inKev: false, auto: false, total: false, likely: false, record: rec({ ssvcExploitation: 'active', ssvcAutomatable: 'yes', ssvcTechnicalImpact: 'total' }) },
  { inKev: false, auto: true, total: true, likely: false, record: rec({ ssvcExploitation: 'poc', ssvcAutomatable: 'yes', ssvcTechnicalImpact: 'partial' }) },
  { inKev: false, auto: true, total: false, likely: false, record: rec({ ssvcExploitation: 'poc', ssvcAutomatable: 'no', ssvcTechnicalImpact: 'total' }) },
  { inKev: false, auto: true, total: false, likely: true, record: rec({ ssvcExploitation: 'none', ssvcAutomatable: 'no', ssvcTechnicalImpact: 'total', assessed: null }) },
  { inKev: false, auto: false, total: false, likely: false, record: rec({ cnaVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', cnaScore: 9.8 }) },
  { inKev: false, auto: false, total: true, likely: false, record: rec({ adpVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N', adpScore: 5.3, cnaScore: 4.1 }) },
  { inKev: true, auto: false, total: false, likely: false, record: rec({ ssvcExploitation: 'poc', cnaScore: 9.5 }) },
  { inKev: false, auto: true, total: true, likely: false, record: rec({ state: 'REJECTED', ssvcExploitation: 'active', cnaVector: 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L' }) },
];
for (const r of recordCases) {
  const n = vulns.length;
  vulns.push({
    id: `CVE-2098-${String(1000 + n)}`, ...r,
    epss: r.likely ? 0.35 : [0.02, 0.00042, 0.071][n % 3]!, percentile: [0.91234, 0.5, 0.99987][n % 3]!,
    cvss: [9.8, 7.5, 5.3][n % 3]!, added: `2098-01-${String(10 + n)}`, ransomware: false,
  });
}

// Validation evidence: each scenario on every asset, for a few table rows (track, attend, act, and
// track* that EPSS raises). The latest unexpired exploited / confirmed / not_exploitable test decides.
const day = (d: string) => new Date(`${d}T10:00:00Z`);
const FAR = day('2099-02-28');
const scenarios: Test[][] = [
  [{ result: 'exploited', tool: 'pentest-kit', source: 'report Q4.pdf', target: 'https://shop.example/login', port: '443/tcp', testedAt: day('2026-11-30'), expiresAt: FAR }],
  [{ result: 'not_exploitable', tool: 'zap', source: 'zap-old.json', testedAt: day('2026-10-01'), expiresAt: FAR },
   { result: 'confirmed', tool: 'nuclei', source: 'nuclei.jsonl', testedAt: day('2026-11-02'), expiresAt: FAR }],
  [{ result: 'not_exploitable', tool: 'bas-sim', source: 'validation:run-7', port: '8443/tcp', testedAt: day('2026-11-03'), expiresAt: FAR },
   { result: 'reachable', tool: 'probe', source: 'validation:run-8', testedAt: day('2026-11-20'), expiresAt: FAR }],
  [{ result: 'not_exploitable', tool: 'zap', source: 'zap.json', target: 'shop:8080', testedAt: day('2026-09-09'), expiresAt: FAR },
   { result: 'exploited', tool: 'pentest-kit', source: 'old report', testedAt: day('2026-11-10'), expiresAt: day('2026-11-11') }],
];
for (const [inKev, auto, total, likely] of [[false, false, false, false], [true, false, false, false], [true, true, true, false], [false, true, false, true]] as const) {
  for (const tests of scenarios) {
    const n = vulns.length;
    vulns.push({
      id: `CVE-2098-${String(1000 + n)}`, inKev, auto, total, likely, tests,
      epss: likely ? 0.35 : 0.02, percentile: 0.5, cvss: [9.8, 7.5, 5.3][n % 3]!, added: `2098-02-${String(10 + (n % 18))}`, ransomware: false,
    });
  }
}

/** The test that decides: the latest unexpired exploited, confirmed or not_exploitable one. */
function effectiveTest(tests: Test[] | undefined): ValidationEvidence | null {
  const counted = (tests ?? []).filter((t): t is ValidationEvidence => t.result !== 'reachable' && t.result !== 'unreachable' && t.expiresAt.getTime() > Date.now());
  return counted.sort((a, b) => b.testedAt.getTime() - a.testedAt.getTime())[0] ?? null;
}

const NX = { name: 'Feature flag off', kind: 'feature_disabled', effect: 'not_exploitable' } as const;
const NE = { name: "Edge 'WAF'", kind: 'waf', effect: 'not_exposed' } as const;

let db: Database;
const assets: Asset[] = [];
const findingFacts = new Map<number, { vuln: Vuln; asset: Asset; vendor: string | null }>();

beforeAll(async () => {
  db = await migratedTestDatabase();
  await db.sql`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
    values ('kev', ${FEEDS.kev}, 1, 'k', 'active', now()), ('epss', ${FEEDS.epss}, 1, 'e', 'active', now()), ('cve', ${FEEDS.cve}, 1, 'c', 'active', now())`;
  for (const v of vulns) {
    await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) values (${FEEDS.epss}, ${v.id}, ${v.epss}, ${v.percentile})`;
    if (v.inKev) await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values (${FEEDS.kev}, ${v.id}, ${v.added}, ${v.ransomware})`;
    const r = v.record;
    if (r) {
      await db.sql`
        insert into cve_records (feed_version, cve, state, cna_vector, cna_score, adp_vector, adp_score, ssvc_exploitation, ssvc_automatable, ssvc_technical_impact, ssvc_assessed_at, sha256)
        values (${FEEDS.cve}, ${v.id}, ${r.state}, ${r.cnaVector}, ${r.cnaScore}, ${r.adpVector}, ${r.adpScore}, ${r.ssvcExploitation}, ${r.ssvcAutomatable}, ${r.ssvcTechnicalImpact},
                ${r.assessed === null ? null : `${r.assessed}T20:34:21Z`}, 'x')`;
    }
  }
  for (const exposed of [false, true]) for (const edr of ['none', 'unseen', 'loaded'] as const) for (const environment of ['production', 'staging'])
    for (const critical of [false, true]) for (const control of ['none', 'nx', 'ne'] as const) {
      const name = `eq-${assets.length}-${exposed ? 'web' : 'int'}`;
      const key = `host:${name}`;
      const [row] = await db.sql<{ id: number }[]>`
        insert into assets (asset_key, kind, name, environment, criticality, internet_facing)
        values (${key}, 'host', ${name}, ${environment}, ${critical ? 'critical' : 'medium'}, ${exposed})
        returning id`;
      const asset: Asset = { id: Number(row!.id), name, key, exposed, edr, environment, critical, control };
      assets.push(asset);
      if (edr !== 'none') {
        await db.sql`
          insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
          values (${asset.id}, ${edr === 'loaded' ? 'OpenSSL' : 'zlib'}, '3.0.1', 'nginx', 'edr', now())`;
      }
    }
  for (const c of [NX, NE]) {
    const keys = assets.filter((a) => a.control === (c === NX ? 'nx' : 'ne')).map((a) => a.key);
    await db.sql`
      insert into compensating_controls (name, kind, mitigates, applies_to, effect)
      values (${c.name}, ${c.kind}, ${db.sql.json({ components: ['openssl'] })}, ${db.sql.json({ assetKeys: keys })}, ${c.effect})`;
  }
  const tests = assets.flatMap((a) => vulns.flatMap((v) => (v.tests ?? []).map((t) => ({ a, v, t }))));
  await db.sql`
    insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, target, port, tested_at, expires_at)
    select * from unnest(${tests.map((_, i) => `eq-${i}`)}::text[], ${tests.map((x) => x.a.id)}::bigint[], ${tests.map((x) => x.v.id)}::text[],
                         ${tests.map((x) => x.t.result)}::text[], ${tests.map((x) => x.t.tool)}::text[], ${tests.map((x) => x.t.source)}::text[],
                         ${tests.map((x) => x.t.target ?? null)}::text[], ${tests.map((x) => x.t.port ?? null)}::text[],
                         ${tests.map((x) => x.t.testedAt.toISOString())}::timestamptz[], ${tests.map((x) => x.t.expiresAt.toISOString())}::timestamptz[])`;
  const scan = randomUUID();
  for (const asset of assets) for (const vuln of vulns) for (const vendor of [null, 'not_affected']) {
    const [row] = await db.sql<{ id: number }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, cvss_vector, vendor_status, first_scan_id, last_scan_id)
      values (${randomUUID()}, ${asset.id}, 'vulnerability', ${vuln.id}, 'openssl', '3.0.1', 'high', ${vuln.cvss}, ${vector(vuln.auto, vuln.total)}, ${vendor}, ${scan}, ${scan})
      returning id`;
    findingFacts.set(Number(row!.id), { vuln, asset, vendor });
  }
});

/** What decision.ts and explanation.ts say about one generated finding. */
function expected(facts: { vuln: Vuln; asset: Asset; vendor: string | null }, feeds: FeedVersions) {
  const { vuln, asset, vendor } = facts;
  const publiclyExposed = asset.exposed && asset.control !== 'ne';
  const record = feeds.cve && vuln.record?.state === 'PUBLISHED' ? vuln.record : null;
  const inKev = feeds.kev !== null && vuln.inKev;
  const inputs = { inKev, epss: vuln.epss, cvss: vuln.cvss, vector: vector(vuln.auto, vuln.total), record };
  const d = decideVulnerability(policy, inputs);
  const cell: Cell = {
    base: feeds.kev === null ? SEVERITY_BASE + TIER_RANK[severityTier(policy, d.cvss)] : decisionKey(d.exploited, publiclyExposed, d.automatable, d.totalImpact),
    publicExploit: d.publicExploit,
    publiclyExposed,
    likelyExploited: vuln.epss >= policy.document.modifiers.likelyExploited!.epssAtLeast,
    edrCovered: asset.edr !== 'none',
    notSeenLoaded: asset.edr !== 'loaded',
    nonProduction: asset.environment !== 'production',
    notExploitableControl: asset.control === 'nx',
    vendorStatus: vendor !== null,
    criticalAsset: asset.critical,
    proven: false,
    notExploitable: false,
  };
  const test = effectiveTest(vuln.tests);
  cell.proven = test !== null && (policy.document.modifiers.validation?.proven?.results as string[]).includes(test.result);
  cell.notExploitable = test?.result === 'not_exploitable';
  const outcome = decide(policy, cell);
  const value = score(policy, { inKev: d.exploited, publiclyExposed, automatable: d.automatable, totalImpact: d.totalImpact, epss: vuln.epss, cvss: d.cvss }, outcome.scoreFactor);
  const v: VulnerabilityPart = vulnerabilityFactors(policy, feeds, {
    ...inputs, kevDateAdded: vuln.added, knownRansomware: vuln.ransomware, percentile: vuln.percentile, ssvcAssessedOn: record?.assessed ?? null,
  });
  if (feeds.kev === null) v.sev = severityFactor(policy, d.cvss, outcome.tableTier);
  const a: AssetPart = {
    exposure: exposureFactor(policy, { name: asset.name, internetFacing: asset.exposed }),
    environment: environmentFactor(policy, { name: asset.name, environment: asset.environment }),
    runtimeHosts: asset.edr === 'none' ? null : asset.name,
    runtimeSeen: asset.edr === 'loaded' ? { openssl: runtimeSeenText(asset.name, 'OpenSSL', '3.0.1', 'nginx') } : asset.edr === 'unseen' ? { zlib: runtimeSeenText(asset.name, 'zlib', '3.0.1', 'nginx') } : null,
    ...(asset.critical ? { business: businessFactor(policy, { name: asset.name, criticality: 'critical' }) } : {}),
  };
  const c = decisionPart(policy, cellKey(cell), outcome, {
    unexposedBy: asset.control === 'ne' && asset.exposed ? controlFactor(policy, NE) : null,
    control: asset.control === 'nx' ? controlFactor(policy, NX) : null,
    validation: test ? validationFactor(policy, test) : null,
    vendorStatus: vendor,
  });
  return { cell: cellKey(cell), tier: outcome.tier, score: value, dueDays: outcome.dueDays, explanation: assembleExplanation(v, a, c, 'openssl', value) };
}

/** Where a finding's SQL result and the TypeScript one first differ, for a readable failure. */
function firstDifference(id: number, got: Record<string, unknown>, wanted: Record<string, unknown>) {
  for (const key of ['tier', 'score', 'dueDays'] as const) {
    if (got[key] !== wanted[key]) return { id, [key]: { sql: got[key], ts: wanted[key] } };
  }
  const g = got.explanation as ExplanationFactor[];
  const w = wanted.explanation as ExplanationFactor[];
  const i = g.findIndex((f, n) => !isDeepStrictEqual(f, w[n]));
  return { id, factor: i < 0 ? g.length : i, sql: g[i] ?? g.map((f) => f.factor), ts: w[i] ?? w.map((f) => f.factor) };
}

/** The cells decision.ts gives the listed findings (under the active feeds). */
async function cellsOf(ids: Set<number>) {
  return [...ids].map((id) => expected(findingFacts.get(id)!, FEEDS).cell);
}

/** Due days count from the finding's latest change of tier (a due date stays while the tier does). */
async function compareAll(feeds: FeedVersions) {
  const rows = await db.sql<{ id: number; tier: string; score: number; due_days: number; explanation: ExplanationFactor[] }[]>`
    select id, tier, score, extract(epoch from due_at - changed_at)::float8 / 86400 as due_days, f.explanation from findings f order by id`;
  expect(rows).toHaveLength(findingFacts.size);
  const cells = new Set<number>();
  const mismatches: unknown[] = [];
  for (const r of rows) {
    const want = expected(findingFacts.get(Number(r.id))!, feeds);
    cells.add(want.cell);
    const got = { tier: r.tier, score: r.score, dueDays: r.due_days, explanation: r.explanation };
    const { cell: _, ...wanted } = want;
    if (!isDeepStrictEqual(got, wanted)) mismatches.push(firstDifference(Number(r.id), got, wanted));
  }
  expect(mismatches.slice(0, 3)).toEqual([]);
  return cells;
}

describe('SQL scoring and the TypeScript policy agree', () => {
  it('on every cell of the decision table crossed with every modifier', async () => {
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'equivalence' })).toMatchObject({ scored: findingFacts.size, events: findingFacts.size });
    const cells = await compareAll(FEEDS);
    // 16 rows x likely x EDR (none, unseen, loaded: 3 cells) x environment x critical x control (none,
    // not-exploitable; not-exposed moves the row) x vendor status.
    const bases = new Set([...cells].map((k) => Math.floor(k / MODIFIER_SPAN)));
    expect(bases.size).toBe(16);
    const scannerOnly = new Set([...findingFacts].filter(([, f]) => !f.vuln.record && !f.vuln.tests).map(([id]) => id));
    const plainCells = new Set((await cellsOf(scannerOnly)));
    expect(plainCells.size).toBe(16 * 2 * 3 * 2 * 2 * 2 * 2);
    // A public exploit raised some findings, and SSVC active made one unlisted CVE exploited.
    expect([...cells].some((k) => (k & 256) === 256)).toBe(true);
    // Validation: proven and not exploitable, each on every asset (exposure, EDR, environment,
    // criticality, control) and vendor status; the expired and the reachable tests counted for nothing.
    const tested = new Set([...findingFacts].filter(([, f]) => f.vuln.tests).map(([id]) => id));
    const testedCells = await cellsOf(tested);
    expect(testedCells.filter((k) => (k & 512) === 512).length).toBe(2 * 4 * assets.length * 2);
    expect(testedCells.filter((k) => (k & 1024) === 1024).length).toBe(2 * 4 * assets.length * 2);
    const [moved] = await db.sql<{ act: number; track: number }[]>`
      select count(*) filter (where f.tier = 'act')::int as act, count(*) filter (where f.tier = 'track')::int as track
      from findings f where f.issue_id = ${vulns.find((v) => v.tests === scenarios[0] && !v.inKev)!.id} and f.vendor_status is null`;
    // Exploited on a track row: act wherever the environment is production (non-production lowers one tier).
    expect(moved!.act).toBe(assets.filter((a) => a.environment === 'production').length);
  });

  it('without a KEV catalog, on every severity outcome crossed with every modifier', async () => {
    await db.sql`update intel_feeds set status = 'retired' where kind = 'kev'`;
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'no catalog' });
    const cells = await compareAll({ kev: null, epss: FEEDS.epss, cve: FEEDS.cve });
    expect(new Set([...cells].map((k) => Math.floor(k / MODIFIER_SPAN)))).toEqual(new Set([SEVERITY_BASE, SEVERITY_BASE + 1, SEVERITY_BASE + 2]));
  });
});
