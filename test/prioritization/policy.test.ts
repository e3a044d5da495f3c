import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importIntelFiles } from '../../prioritization/feeds/import.js';
import { connectorFor } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { ControlError, deleteControl, listControls, saveControl } from '../../prioritization/controls.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { activatePolicy, activePolicy, listPolicies, savePolicy, seedShippedPolicies } from '../../prioritization/policy-store.js';
import { pruneExplanationParts, rescoreFindings, shadowScore, shareBlocks } from '../../prioritization/scoring/rescore.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { bodPolicy, decisionKey, defaultPolicy, parsePolicy, PolicyError, SHIPPED_POLICIES, shippedPolicy, type PolicyDocument } from '../../prioritization/policy.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// The declarative policy (CISA BOD 26-04 with FIRST EPSS and local context) on real PostgreSQL:
// document validation, every cell of the decision table, the real EPSS and KEV files against
// exposure, controls and runtime evidence, two scanners' reports of one image, history and
// exposure events, and shadow scoring that changes nothing.

const DAY = 86_400_000;
const policy = bodPolicy();

afterAll(closeTestDatabases);

const doc = (): PolicyDocument => structuredClone(bodPolicy().document);

function policyError(mutate: (d: Record<string, any>) => void): PolicyError {
  const d = doc() as unknown as Record<string, any>;
  mutate(d);
  try {
    parsePolicy(d, 'test.json');
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

interface AssetInput {
  kind?: string;
  internetFacing?: boolean | null;
  publicIps?: string[];
  securityGroups?: string[];
  exposedPorts?: string[];
  environment?: string | null;
  criticality?: string | null;
  businessService?: string | null;
}

async function addAsset(db: Database, name: string, a: AssetInput = {}): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    insert into assets (asset_key, kind, name, internet_facing, public_ips, security_groups, exposed_ports, environment, criticality, business_service, attribute_sources)
    values (${`${a.kind === 'host' ? 'host' : 'image'}:${name}`}, ${a.kind ?? 'container_image'}, ${name}, ${a.internetFacing ?? null}, ${a.publicIps ?? null},
            ${a.securityGroups ?? null}, ${a.exposedPorts ?? null}, ${a.environment === undefined ? 'production' : a.environment},
            ${a.criticality === undefined ? 'high' : a.criticality}, ${a.businessService ?? null},
            ${db.sql.json(a.internetFacing === undefined || a.internetFacing === null ? {} : { internet_facing: 'firewall' })})
    returning id`;
  return Number(row!.id);
}

async function runsOn(db: Database, image: number, host: number) {
  await db.sql`insert into asset_relations (asset_id, relation, target_id, source) values (${image}, 'runs_on', ${host}, 'cmdb')`;
}

interface FindingInput {
  component?: string;
  cvss?: number | null;
  vector?: string | null;
  vendorStatus?: string | null;
}

async function addFinding(db: Database, assetId: number, issueId: string, f: FindingInput = {}): Promise<number> {
  const scan = randomUUID();
  const [row] = await db.sql<{ id: number }[]>`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, cvss_vector, vendor_status, first_scan_id, last_scan_id)
    values (${randomUUID()}, ${assetId}, 'vulnerability', ${issueId}, ${f.component ?? 'openssl'}, '1.0', 'high', ${f.cvss === undefined ? 9.8 : f.cvss},
            ${f.vector ?? null}, ${f.vendorStatus ?? null}, ${scan}, ${scan})
    returning id`;
  return Number(row!.id);
}

interface Scored {
  id: number;
  issue_id: string;
  tier: string;
  score: number;
  due_days: number;
  explanation: ExplanationFactor[];
}

async function scored(db: Database, id: number): Promise<Scored> {
  const [row] = await db.sql<Scored[]>`
    select id, issue_id, tier, score, extract(epoch from due_at - scored_at)::float8 / 86400 as due_days, f.explanation from findings f where id = ${id}`;
  return row!;
}

const factor = (s: Scored, name: string) => s.explanation.find((f) => f.factor === name);
const vector = (auto: boolean, total: boolean) => `CVSS:3.1/AV:${auto ? 'N' : 'L'}/AC:L/PR:N/UI:N/S:U/C:${total ? 'H' : 'L'}/I:${total ? 'H' : 'N'}/A:N`;

/** Synthetic feeds: one CVE in KEV, neither with an EPSS score (so no EPSS modifier applies). */
async function syntheticFeeds(db: Database) {
  await db.sql`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
    values ('kev', 'test-kev-1', 1, 'k1', 'active', now()), ('epss', 'test-epss-1', 1, 'e1', 'active', now())`;
  await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values ('test-kev-1', 'CVE-2099-0001', '2099-01-02', false)`;
  await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) values ('test-epss-1', 'CVE-2099-0009', 0.5, 0.99)`;
}

describe('policy documents', () => {
  it('the CISA BOD 26-04 document parses and its table is the 16-row BOD 26-04 table', () => {
    expect(policy.version).toBe('bod-26-04+epss-2');
    expect(policy.decisions).toHaveLength(16);
    expect(policy.decisions[decisionKey(true, true, true, true)]).toMatchObject({ row: 15, timeline: '3DF', tier: 'act', dueDays: 3 });
    expect(policy.decisions[decisionKey(false, false, false, false)]).toMatchObject({ row: 0, timeline: 'FSU', tier: 'track', dueDays: 180 });
  });

  it.skipIf(!hasCorpus)(`matches the published decision table row for row${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
    const names: Record<string, string> = {
      'fix on system upgrade': 'FSU', '60 days': '60D', '14 days': '14D', '3 days': '3D', '3 days & forensic investigation': '3DF',
    };
    const lines = readFileSync(corpusFile('intel', 'ssvc', 'cisa_bod_26_04_1_0_0.csv'), 'utf8').trim().split('\n').slice(1);
    expect(lines).toHaveLength(16);
    for (const line of lines) {
      const [row, kev, pe, a, ti, outcome] = line.split(',');
      const d = policy.decisions[decisionKey(kev === 'yes', pe === 'yes', a === 'yes', ti === 'total')]!;
      expect({ row: d.row, timeline: d.timeline }, line).toEqual({ row: Number(row), timeline: names[outcome!] });
    }
  });

  it('rejects a bad document naming the JSON path and the reason', () => {
    expect(policyError((d) => (d.modifiers.likelyExploited.epssAtLeast = 2)).message).toBe(
      'test.json: modifiers.likelyExploited.epssAtLeast: Too big: expected number to be <=1',
    );
    expect(policyError((d) => (d.table[3].timeline = '90D')).message).toBe('test.json: table[3].timeline: unknown timeline "90D"; defined: FSU, 60D, 14D, 3D, 3DF');
    const duplicate = policyError((d) => (d.table[3] = { ...d.table[0], row: 3 }));
    expect(duplicate.path).toBe('table[3]');
    expect(duplicate.reason).toBe('repeats the combination of row 0 (each combination must appear once)');
    expect(policyError((d) => d.table.pop()).message).toBe(
      'test.json: table: no row for inKev yes, publiclyExposed yes, automatable yes, technicalImpact total (16 combinations needed)',
    );
    expect(policyError((d) => (d.score.weights.cvss = 20)).message).toBe('test.json: score.weights: must add up to 100 so the score is 0-100 (they add up to 110)');
    expect(policyError((d) => (d.decisionPoints.publiclyExposed.unknownMeans = 'maybe')).path).toBe('decisionPoints.publiclyExposed.unknownMeans');
    expect(policyError((d) => (d.timelines['3D'].tier = 'urgent')).path).toBe('timelines.3D.tier');
    expect(policyError((d) => (d.modifiers.nonProduction.lowerBy = 0)).path).toBe('modifiers.nonProduction.lowerBy');
    expect(policyError((d) => (d.modifiers.surprise = {})).message).toBe('test.json: modifiers.surprise: unknown field');
    expect(policyError((d) => (d.version = 'has spaces')).path).toBe('version');
    expect(policyError((d) => (d.modifiers.likelyExploited.raise = ['attend'])).path).toBe('modifiers.likelyExploited.raise');
  });

  it('validates modifiers.validation, naming the field', () => {
    const proven = { results: ['exploited', 'confirmed'], to: 'act' };
    const notExploitable = { to: 'track', scoreFactor: 0.2 };
    const ok = doc() as unknown as Record<string, any>;
    ok.modifiers.validation = { proven, notExploitable, note: 'why' };
    expect(parsePolicy(ok, 'test.json').document.modifiers.validation).toEqual({ proven, notExploitable, note: 'why' });
    ok.modifiers.validation = { notExploitable };
    expect(parsePolicy(ok, 'test.json').document.modifiers.validation?.proven).toBeUndefined();
    expect(policyError((d) => (d.modifiers.validation = {})).message).toBe('test.json: modifiers.validation: name proven, notExploitable or both');
    expect(policyError((d) => (d.modifiers.validation = { proven: { ...proven, results: ['reachable'] } })).path).toBe('modifiers.validation.proven.results[0]');
    expect(policyError((d) => (d.modifiers.validation = { proven: { ...proven, results: [] } })).path).toBe('modifiers.validation.proven.results');
    expect(policyError((d) => (d.modifiers.validation = { proven: { ...proven, to: 'urgent' } })).path).toBe('modifiers.validation.proven.to');
    expect(policyError((d) => (d.modifiers.validation = { notExploitable: { ...notExploitable, scoreFactor: 1.5 } })).path).toBe('modifiers.validation.notExploitable.scoreFactor');
    expect(policyError((d) => (d.modifiers.validation = { notExploitable: { ...notExploitable, until: 'never' } })).message).toBe(
      'test.json: modifiers.validation.notExploitable.until: unknown field',
    );
  });

  it('ships exploitability-2 as the default: exploitability-1 with validation evidence, nothing else changed', () => {
    expect(SHIPPED_POLICIES[0]).toBe('exploitability-2.json');
    const two = defaultPolicy().document;
    const one = shippedPolicy('exploitability.json').document;
    expect([two.version, one.version]).toEqual(['exploitability-2', 'exploitability-1']);
    expect(two.modifiers.validation).toMatchObject({ proven: { results: ['exploited', 'confirmed'], to: 'act' }, notExploitable: { to: 'track', scoreFactor: 0.2 } });
    expect(one.modifiers.validation).toBeUndefined();
    const { version: _v2, description: _d2, modifiers: { validation: _m, ...mods2 }, ...rest2 } = two;
    const { version: _v1, description: _d1, modifiers: mods1, ...rest1 } = one;
    expect(rest2).toEqual(rest1);
    expect(mods2).toEqual(mods1);
  });
});

describe('the BOD 26-04 table on constructed findings', () => {
  let db: Database;
  const ids: number[] = [];
  beforeAll(async () => {
    db = await migratedTestDatabase();
    await syntheticFeeds(db);
    const exposed = await addAsset(db, 'web-01', { kind: 'host', internetFacing: true, publicIps: ['203.0.113.10'], securityGroups: ['sg-web'], exposedPorts: ['443/tcp'] });
    const closed = await addAsset(db, 'db-01', { kind: 'host', internetFacing: false });
    await db.sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('aws', 'sg-web', 'tcp', 443, 443, '0.0.0.0/0')`;
    for (let k = 0; k < 16; k++) {
      const [kev, pe, auto, total] = [(k & 8) > 0, (k & 4) > 0, (k & 2) > 0, (k & 1) > 0];
      ids[k] = await addFinding(db, pe ? exposed : closed, kev ? 'CVE-2099-0001' : 'CVE-2099-0002', { component: `lib-${k}`, vector: vector(auto, total), cvss: 7 });
    }
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'test' })).toEqual({ scored: 16, changed: 16, events: 16 });
  });

  it('every one of the 16 rows yields its documented timeline, tier and due date', async () => {
    for (let k = 0; k < 16; k++) {
      const d = policy.decisions[k]!;
      const s = await scored(db, ids[k]!);
      expect(s.tier, `row ${d.row}`).toBe(d.tier);
      expect(s.due_days, `row ${d.row}`).toBeCloseTo(d.dueDays, 3);
      const decision = factor(s, 'decision')!;
      expect(decision.value).toBe(d.timeline);
      expect(decision.effect).toMatch(new RegExp(`^row ${d.row}: ${d.inKev ? 'in KEV' : 'not in KEV'}, ${d.publiclyExposed ? 'publicly exposed' : 'not exposed'}, `));
      expect(decision.effect.endsWith(`→ ${d.timelineName} → ${d.tier}`)).toBe(true);
      expect(factor(s, 'automatable')).toMatchObject({ value: d.automatable ? 'yes' : 'no', source: 'CVSS v3 vector (scanner)' });
      expect(factor(s, 'technical_impact')).toMatchObject({ value: d.totalImpact ? 'total' : 'partial', source: 'CVSS v3 vector (scanner)' });
    }
    const row13 = await scored(db, ids[decisionKey(true, false, true, true)]!);
    expect(factor(row13, 'decision')!.effect).toBe('row 13: in KEV, not exposed, automatable, total impact → 3 days & forensic investigation → act');
    expect(factor(row13, 'in_kev')).toEqual({ factor: 'in_kev', value: true, source: 'CISA KEV test-kev-1', effect: 'in CISA KEV test-kev-1 (added 2099-01-02)' });
    const row14 = await scored(db, ids[decisionKey(false, true, true, true)]!);
    expect(factor(row14, 'publicly_exposed')!.effect).toBe('internet-facing: web-01 has public IP 203.0.113.10 and security group sg-web open to 0.0.0.0/0 on 443/tcp');
  });

  it('a second rescore with nothing changed writes nothing, and only changed findings get history (their exposure events)', async () => {
    // One name for score history: the view that repeated it under other column names is gone.
    expect((await db.sql`select to_regclass('exposure_events') as r`)[0]!.r).toBeNull();
    const count = async () => (await db.sql<{ h: number }[]>`select count(*)::int as h from score_history`)[0]!;
    expect(await count()).toEqual({ h: 16 });
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'again' })).toEqual({ scored: 16, changed: 0, events: 0 });
    expect(await count()).toEqual({ h: 16 });

    // db-01 turns out to be internet-facing: its 8 findings move to the exposed rows of the table
    // (k -> k + 4); all 8 get a new score and explanation, those whose row has another tier a
    // history row and an exposure event.
    const movedRows = [0, 1, 2, 3, 8, 9, 10, 11].filter((k) => policy.decisions[k]!.tier !== policy.decisions[k + 4]!.tier);
    expect(movedRows).toHaveLength(6);
    const before = await db.sql<{ id: number; tier: string; due_at: Date }[]>`select id, tier, due_at from findings order by id`;
    await db.sql`update assets set internet_facing = true, public_ips = '{198.51.100.7}', security_groups = '{sg-web}', exposed_ports = '{443/tcp}' where name = 'db-01'`;
    const result = await rescoreFindings(db.sql, policy, { all: true }, { reason: 'db-01 exposed' });
    const after = await db.sql<{ id: number; tier: string; due_at: Date }[]>`select id, tier, due_at from findings order by id`;
    const moved = after.filter((f, i) => f.tier !== before[i]!.tier);
    expect(moved.map((m) => Number(m.id))).toEqual(movedRows.map((k) => ids[k]));
    expect(result).toEqual({ scored: 16, changed: 8, events: 6 });
    // Unchanged tiers keep their due dates.
    expect(after.filter((f, i) => f.tier === before[i]!.tier).every((f) => before.find((b) => b.id === f.id)!.due_at.getTime() === f.due_at.getTime())).toBe(true);
    const events = await db.sql`select finding_id, old_tier, tier from score_history where reason = 'db-01 exposed' order by finding_id`;
    expect(events.map((e) => Number(e.finding_id))).toEqual(moved.map((m) => Number(m.id)));
    expect(events.every((e) => e.old_tier !== e.tier)).toBe(true);
    expect(await count()).toEqual({ h: 16 + 6 });
    await db.sql`update assets set internet_facing = false, public_ips = null, security_groups = null, exposed_ports = null where name = 'db-01'`;
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'db-01 closed again' });
  });

  it('shadow scoring reports what another policy version or feed version would move, and changes nothing', async () => {
    const snapshot = async () => db.sql`select id, tier, score, due_at, f.explanation from findings f order by id`;
    const history = async () => (await db.sql`select count(*)::int as n from score_history`)[0]!.n;
    const before = await snapshot();
    const historyBefore = await history();

    // A stricter variant: not exposed + in KEV + automatable + total impact (row 13) only attends.
    const variant = doc();
    variant.version = 'bod-26-04+epss-test';
    variant.table.find((r) => r.row === 13)!.timeline = '14D';
    const byPolicy = await shadowScore(db.sql, parsePolicy(variant, 'variant'), { all: true });
    expect(byPolicy).toMatchObject({ policyVersion: 'bod-26-04+epss-test', scored: 16, unchanged: 15, movedUp: 0, movedDown: 1, transitions: { 'act→attend': 1 } });
    expect(byPolicy.samples).toEqual([
      expect.objectContaining({ findingId: ids[decisionKey(true, false, true, true)], asset: 'db-01', from: 'act', to: 'attend', reason: expect.stringContaining('row 13') }),
    ]);

    // A KEV version that adds CVE-2099-0002: its 8 findings become "in KEV".
    await db.sql`insert into intel_feeds (kind, version, rows, sha256, status) values ('kev', 'test-kev-2', 2, 'k2', 'staged')`;
    await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values ('test-kev-2', 'CVE-2099-0001', '2099-01-02', false), ('test-kev-2', 'CVE-2099-0002', '2099-02-03', true)`;
    const byFeed = await shadowScore(db.sql, policy, { all: true }, { feeds: { kev: 'test-kev-2' } });
    // Rows 0-7 become rows 8-15: FSU→14D twice, 60D→14D, 60D→3D... as the table says.
    const expectedUp = [0, 1, 2, 3, 4, 5, 6, 7].filter((k) => policy.decisions[k + 8]!.tier !== policy.decisions[k]!.tier).length;
    expect(byFeed).toMatchObject({ feeds: { kev: 'test-kev-2', epss: 'test-epss-1' }, scored: 16, movedUp: expectedUp, movedDown: 0, unchanged: 16 - expectedUp });
    expect(byFeed.samples.every((s) => s.reason.includes('in_kev false → true'))).toBe(true);
    expect(byFeed.samples[0]!.reason).toContain('in CISA KEV test-kev-2 (added 2099-02-03, used in ransomware)');

    expect(await snapshot()).toEqual(before);
    expect(await history()).toBe(historyBefore);
    await expect(shadowScore(db.sql, policy, { all: true }, { feeds: { epss: 'no-such-version' } })).rejects.toThrow('no EPSS feed version no-such-version');
  });
});

describe('modifiers and context on constructed findings', () => {
  let db: Database;
  beforeAll(async () => {
    db = await migratedTestDatabase();
    await syntheticFeeds(db);
  });

  it('states its exposure assumption, lowers non-production, shortens due dates of critical assets and tracks vendor statements', async () => {
    const unknown = await addAsset(db, 'shop/unknown:1', { criticality: 'critical' });
    const staging = await addAsset(db, 'shop/staging:1', { environment: 'staging' });
    const kevAuto = vector(true, true);
    const a = await addFinding(db, unknown, 'CVE-2099-0001', { vector: kevAuto });
    const b = await addFinding(db, staging, 'CVE-2099-0001', { vector: kevAuto });
    const c = await addFinding(db, unknown, 'CVE-2099-0001', { vector: kevAuto, vendorStatus: 'not_affected' });
    const d = await addFinding(db, unknown, 'CVE-2099-0009', { vector: vector(false, false), cvss: 5 });
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'test' });

    const sa = await scored(db, a);
    expect(factor(sa, 'publicly_exposed')).toEqual({
      factor: 'publicly_exposed',
      value: 'no',
      source: 'policy assumption (decisionPoints.publiclyExposed.unknownMeans)',
      effect: 'exposure unknown, assumed not exposed (no context on shop/unknown:1)',
    });
    // Row 13 (3 days), halved for a critical asset.
    expect(sa).toMatchObject({ tier: 'act' });
    expect(sa.due_days).toBeCloseTo(1.5, 3);
    expect(factor(sa, 'tier')!.effect).toBe('due in 1.5 days (3 days & forensic investigation, × 0.5 for a critical asset)');

    const sb = await scored(db, b);
    expect(sb.tier).toBe('attend');
    expect(sb.due_days).toBeCloseTo(14, 3);
    expect(factor(sb, 'environment')!.effect).toBe('shop/staging:1 runs in staging, not production: 1 tier lower (score × 0.7)');

    const sc = await scored(db, c);
    expect(sc).toMatchObject({ tier: 'track', score: 0 });
    expect(factor(sc, 'vendor_status')!.effect).toBe('the vendor or a VEX statement says this component is not affected: track (score × 0)');

    // EPSS 0.5 raises track (row 0) to attend: likely exploited within 30 days.
    const sd = await scored(db, d);
    expect(sd.tier).toBe('attend');
    expect(factor(sd, 'decision')!.value).toBe('FSU');
    expect(factor(sd, 'likely_exploited')!.effect).toBe('EPSS 0.5 ≥ 0.1: likely exploited within 30 days, raised to attend');
  });

  it('without any KEV catalog, severity decides and never reaches act', async () => {
    const bare = await migratedTestDatabase();
    const image = await addAsset(bare, 'shop/bare:1');
    const critical = await addFinding(bare, image, 'CVE-2021-44228', { cvss: 10 });
    const high = await addFinding(bare, image, 'CVE-2021-3712', { cvss: 7.4 });
    await rescoreFindings(bare.sql, policy, { all: true }, { reason: 'test' });
    const s = await scored(bare, critical);
    expect(s.tier).toBe('attend');
    expect(factor(s, 'in_kev')).toMatchObject({ value: null, effect: 'no CISA KEV catalog loaded: whether it is exploited is unknown' });
    expect(factor(s, 'decision')!.effect).toBe('no CISA KEV catalog loaded, so the BOD 26-04 table is not applied: CVSS 10 → attend until a catalog is imported');
    expect((await scored(bare, high)).tier).toBe('track*');
  });

  it('a scan scope also rescores the images that run on the scanned hosts', async () => {
    const host = await addAsset(db, 'app-09', { kind: 'host', internetFacing: false });
    const image = await addAsset(db, 'shop/on-app-09:1');
    await runsOn(db, image, host);
    const f = await addFinding(db, image, 'CVE-2099-0001', { vector: vector(true, false) });
    const scanId = randomUUID();
    await db.sql`insert into scan_assets (scan_id, asset_id) values (${scanId}, ${host})`;
    expect(await rescoreFindings(db.sql, policy, { scanId }, { reason: `scan ${scanId}` })).toEqual({ scored: 1, changed: 1, events: 1 });
    expect(factor(await scored(db, f), 'publicly_exposed')!.effect).toBe('runs only on app-09, none of them internet-facing');
  });
});

describe('a full rescoring in shares', () => {
  it('gives every finding the same tier, score, due date, explanation and event as one statement', async () => {
    const db = await migratedTestDatabase();
    await syntheticFeeds(db);
    await db.sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('aws', 'sg-web', 'tcp', 443, 443, '0.0.0.0/0')`;
    // 24 assets with mixed context, 8 findings each across the decision table.
    for (let a = 0; a < 24; a++) {
      const host = a % 3 === 0;
      const id = await addAsset(db, `asset-${a}`, {
        kind: host ? 'host' : 'container_image',
        internetFacing: a % 4 === 0 ? true : a % 4 === 1 ? false : null,
        ...(a % 4 === 0 ? { publicIps: [`203.0.113.${a}`], securityGroups: ['sg-web'], exposedPorts: ['443/tcp'] } : {}),
        environment: a % 5 === 0 ? 'staging' : 'production',
        criticality: a % 6 === 0 ? 'critical' : 'medium',
      });
      for (let k = 0; k < 8; k++) {
        await addFinding(db, id, k % 2 === 0 ? 'CVE-2099-0001' : `CVE-2099-00${10 + k}`, {
          component: `lib-${k}`, vector: vector(k % 3 === 0, k % 4 < 2), cvss: 4 + k * 0.7, vendorStatus: k === 7 ? 'not_affected' : null,
        });
      }
    }
    const snapshot = () => db.sql`
      select id, tier, score, extract(epoch from due_at - scored_at)::int as due_seconds, explanation_vuln, explanation_asset, explanation_context,
             change_id is not null as has_event, previous_tier from findings order by id`;
    const clear = () => db.sql`
      update findings set tier = null, score = null, due_at = null, scored_at = null, explanation_vuln = null, explanation_asset = null,
        explanation_context = null, change_id = null, changed_at = null, change_reason = null, change_policy = null, previous_tier = null, previous_due_at = null`;

    const whole = await rescoreFindings(db.sql, policy, { all: true }, { reason: 'one statement', parallel: 1 });
    const expected = await snapshot();
    await clear();
    // Three shares of the table's blocks, each with some of the findings.
    const shares = await shareBlocks(db.sql, 3);
    expect(shares).toHaveLength(3);
    for (const { from, to } of shares) {
      const [share] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from findings
        where ctid >= ${`(${from},0)`}::tid and (${to === null} or ctid < ${`(${to ?? 0},0)`}::tid)`;
      expect(share?.n).toBeGreaterThan(30);
    }
    const shared = await rescoreFindings(db.sql, policy, { all: true }, { reason: 'three shares', parallel: 3 });
    expect(shared).toEqual(whole);
    expect(whole).toEqual({ scored: 192, changed: 192, events: 192 });
    expect(await snapshot()).toEqual(expected);
    expect(new Set(expected.map((r) => r.tier)).size).toBeGreaterThan(2);
    // Nothing changed: the shares write nothing either.
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'again', parallel: 3 })).toEqual({ scored: 192, changed: 0, events: 0 });
  });
});

describe('a full rescoring that fails in one share', () => {
  it('keeps what the other shares committed, and a retry scores the rest with one event per finding', async () => {
    const db = await migratedTestDatabase();
    await syntheticFeeds(db);
    for (let a = 0; a < 12; a++) {
      const id = await addAsset(db, `asset-${a}`, { internetFacing: a % 2 === 0, criticality: a % 3 === 0 ? 'critical' : 'medium' });
      for (let k = 0; k < 8; k++) {
        await addFinding(db, id, k % 2 === 0 ? 'CVE-2099-0001' : `CVE-2099-00${10 + k}`, { component: `lib-${k}`, vector: vector(k % 3 === 0, k % 4 < 2), cvss: 4 + k * 0.7 });
      }
    }
    const shares = await shareBlocks(db.sql, 2);
    expect(shares).toHaveLength(2);
    // Another transaction holds a row of the second share, so that share's UPDATE waits on it and
    // is cancelled there, after the first share has had every chance to commit.
    const locker = await db.sql.reserve();
    try {
      await locker`begin`;
      const [me] = await locker<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const [held] = await locker<{ id: string }[]>`select id from findings where ctid >= ${`(${shares[1]!.from},0)`}::tid order by ctid desc limit 1 for update`;
      expect(held).toBeDefined();
      const run = rescoreFindings(db.sql, policy, { all: true }, { reason: 'interrupted', parallel: 2 });
      run.catch(() => {});
      let cancelled = false;
      for (let i = 0; i < 200 && !cancelled; i++) {
        const [w] = await db.sql<{ pid: number }[]>`
          select pid from pg_stat_activity where pg_backend_pid() <> pid and ${me!.pid}::int = any(pg_blocking_pids(pid))`;
        if (w) cancelled = (await db.sql`select pg_cancel_backend(${w.pid})`)[0]!.pg_cancel_backend as boolean;
        else await new Promise((r) => setTimeout(r, 25));
      }
      expect(cancelled).toBe(true);
      await expect(run).rejects.toThrow(/cancel/i);
      await locker`rollback`;
    } finally {
      locker.release();
    }
    const state = async () => (await db.sql<{ scored: number; unscored: number; events: number }[]>`
      select count(*) filter (where tier is not null)::int as scored, count(*) filter (where tier is null)::int as unscored,
             (select count(*)::int from score_history) as events from findings`)[0]!;
    const partial = await state();
    expect(partial.scored).toBeGreaterThan(0);
    expect(partial.unscored).toBeGreaterThan(0);
    expect(partial.events).toBe(partial.scored);

    const retry = await rescoreFindings(db.sql, policy, { all: true }, { reason: 'retry', parallel: 2 });
    expect(retry).toEqual({ scored: 96, changed: partial.unscored, events: partial.unscored });
    expect(await state()).toEqual({ scored: 96, unscored: 0, events: 96 });
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'again', parallel: 2 })).toEqual({ scored: 96, changed: 0, events: 0 });
  });
});

describe('explanation parts', () => {
  it('a part no finding and no history entry names any more is pruned; every explanation still reads whole', async () => {
    const db = await migratedTestDatabase();
    await syntheticFeeds(db);
    const web = await addAsset(db, 'web-01', { internetFacing: true, publicIps: ['203.0.113.9'] });
    const drifting = await addFinding(db, web, 'CVE-2099-0009', { vector: vector(false, true) });
    await addFinding(db, web, 'CVE-2099-0001', { vector: vector(true, true) });
    await addFinding(db, web, 'CVE-2099-0002', { component: 'zlib', vector: vector(false, false) });
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'first' });
    const unnamed = async () => (await db.sql<{ n: number }[]>`
      select count(*)::int as n from explanation_parts p
      where not exists (select 1 from findings f where p.id in (f.explanation_vuln, f.explanation_asset, f.explanation_context))
        and not exists (select 1 from score_changes c where p.id in (c.explanation_vuln, c.explanation_asset, c.explanation_context))`)[0]!.n;
    expect(await unnamed()).toBe(0);
    expect(await pruneExplanationParts(db.sql)).toBe(0);

    // A new EPSS version moves CVE-2099-0009's score, not its tier, and every vulnerability part
    // names the new version: the three old ones are history of nothing.
    const tiers = await db.sql`select id, tier from findings order by id`;
    await db.sql`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('epss', 'test-epss-2', 1, 'e2', 'active', now() + interval '1 second')`;
    await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) values ('test-epss-2', 'CVE-2099-0009', 0.6, 0.995)`;
    const before = await scored(db, drifting);
    expect(await rescoreFindings(db.sql, policy, { all: true }, { reason: 'epss 2' })).toMatchObject({ changed: 3, events: 0 });
    expect(await db.sql`select id, tier from findings order by id`).toEqual(tiers);
    expect(await unnamed()).toBe(3);
    const parts = (await db.sql<{ n: number }[]>`select count(*)::int as n from explanation_parts`)[0]!.n;

    expect(await pruneExplanationParts(db.sql)).toBe(3);
    expect((await db.sql<{ n: number }[]>`select count(*)::int as n from explanation_parts`)[0]!.n).toBe(parts - 3);
    expect(await unnamed()).toBe(0);
    const after = await scored(db, drifting);
    expect(factor(before, 'epss')?.value).toBe(0.5);
    expect(factor(after, 'epss')?.value).toBe(0.6);
    expect(after.explanation.map((f) => f.factor)).toEqual(before.explanation.map((f) => f.factor));
    // Every finding's explanation and every history entry's still has all three parts.
    const whole = await db.sql<{ n: number; whole: number }[]>`
      select count(*)::int as n, count(*) filter (where v.id is not null and a.id is not null and c.id is not null)::int as whole
      from score_history h
      left join explanation_parts v on v.id = h.explanation_vuln left join explanation_parts a on a.id = h.explanation_asset
      left join explanation_parts c on c.id = h.explanation_context`;
    expect(whole[0]!.n).toBeGreaterThanOrEqual(3);
    expect(whole[0]!.whole).toBe(whole[0]!.n);
    expect(await pruneExplanationParts(db.sql)).toBe(0);
  });
});

describe('policies and controls in the database', () => {
  let db: Database;
  beforeAll(async () => {
    db = await migratedTestDatabase();
  });

  it('seeds the default policy as active, keeps versions immutable and retires the previous active one', async () => {
    expect((await activePolicy(db.sql)).version).toBe(defaultPolicy().version);
    expect((await activePolicy(db.sql)).version).toBe('exploitability-2');
    const variant = doc();
    variant.version = 'bod-26-04+epss-3';
    variant.modifiers.likelyExploited!.epssAtLeast = 0.2;
    expect((await savePolicy(db.sql, variant, 'shadow')).created).toBe(true);
    expect((await savePolicy(db.sql, variant, 'shadow')).created).toBe(false);
    variant.modifiers.likelyExploited!.epssAtLeast = 0.3;
    const conflict = await savePolicy(db.sql, variant, 'shadow').catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(PolicyError);
    expect(conflict).toMatchObject({ code: 'conflict', path: 'version' });
    expect((conflict as Error).message).toBe(
      'policy bod-26-04+epss-3: version: already saved with a different document; versions are immutable, save the change under a new version',
    );
    const invalid = await savePolicy(db.sql, { ...variant, version: 'bod-26-04+epss-4', table: [] }).catch((e: unknown) => e);
    expect((invalid as PolicyError).message).toMatch(/^policy bod-26-04\+epss-4: table: no row for/);

    expect((await activatePolicy(db.sql, 'bod-26-04+epss-3')).version).toBe('bod-26-04+epss-3');
    expect((await activePolicy(db.sql)).document.modifiers.likelyExploited!.epssAtLeast).toBe(0.2);
    expect((await listPolicies(db.sql)).map((p) => [p.version, p.status])).toEqual([
      ['bod-26-04+epss-3', 'active'],
      ['bod-26-04+epss-2', 'shadow'],
      ['exploitability-1', 'shadow'],
      ['exploitability-2', 'retired'],
    ]);
    await expect(activatePolicy(db.sql, 'nope')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('an estate that runs exploitability-1 keeps it after an upgrade; exploitability-2 arrives as shadow', async () => {
    const estate = await migratedTestDatabase();
    await savePolicy(estate.sql, shippedPolicy('exploitability.json').document, 'active');
    expect(await seedShippedPolicies(estate.sql)).toEqual(['exploitability-2', 'bod-26-04+epss-2']);
    expect(await seedShippedPolicies(estate.sql)).toEqual([]);
    expect((await activePolicy(estate.sql)).version).toBe('exploitability-1');
    expect((await listPolicies(estate.sql)).map((p) => [p.version, p.status]).sort()).toEqual([
      ['bod-26-04+epss-2', 'shadow'],
      ['exploitability-1', 'active'],
      ['exploitability-2', 'shadow'],
    ]);
  });

  it('validates compensating controls, naming the field', async () => {
    const good = { name: 'WAF rule 942', kind: 'waf', mitigates: { issueIds: ['CVE-2021-44228'] }, appliesTo: { all: true }, effect: 'not_exposed' };
    expect(await saveControl(db.sql, good)).toMatchObject({ name: 'WAF rule 942', active: true, expiresAt: null });
    expect(await saveControl(db.sql, { ...good, expiresAt: new Date(Date.now() - DAY).toISOString() })).toMatchObject({ active: false });
    expect((await listControls(db.sql, { activeOnly: true })).map((c) => c.name)).toEqual([]);
    const bad = await saveControl(db.sql, { ...good, mitigates: { cwes: ['79'] } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ControlError);
    expect((bad as Error).message).toBe('compensating control: mitigates.cwes[0]: expected CWE-<number>');
    expect(((await saveControl(db.sql, { ...good, mitigates: {} }).catch((e: unknown) => e)) as Error).message).toBe(
      'compensating control: mitigates: name at least one of issueIds, cwes, components, ports',
    );
    expect(((await saveControl(db.sql, { ...good, effect: 'magic' }).catch((e: unknown) => e)) as ControlError).path).toBe('effect');
    expect(await deleteControl(db.sql, 'WAF rule 942')).toBe(true);
    expect(await deleteControl(db.sql, 'WAF rule 942')).toBe(false);
  });
});

describe.skipIf(!hasCorpus)(`real FIRST EPSS and CISA KEV${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  let db: Database;
  const HTTP2 = 'CVE-2023-44487'; // in KEV (added 2023-10-10); NVD: 7.5, network, no privileges, availability only
  const HTTP2_VECTOR = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H';
  beforeAll(async () => {
    db = await migratedTestDatabase();
    const year = 365 * DAY;
    const feeds = await importIntelFiles(
      db,
      { epssFile: corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz'), kevFile: corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json') },
      { maxAgeMs: { epss: year, kev: year }, asOf: new Date('2026-01-31T00:00:00Z') },
    );
    expect(feeds.map((f) => [f.version, f.status])).toEqual([['2026-01-30', 'active'], ['2026.01.29', 'active']]);
    const web = await addAsset(db, 'web-01', { kind: 'host', internetFacing: true, publicIps: ['203.0.113.10'], securityGroups: ['sg-0a1b2c3d4e5f00001'], exposedPorts: ['443/tcp'] });
    await db.sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('aws', 'sg-0a1b2c3d4e5f00001', 'tcp', 443, 443, '0.0.0.0/0')`;
    const isolated = await addAsset(db, 'db-01', { kind: 'host', internetFacing: false });
    for (const [image, host] of [['shop/edge:1', web], ['shop/edge-waf:1', web], ['shop/edge-off:1', web], ['shop/edge-expired:1', web], ['shop/internal:1', isolated]] as const) {
      await runsOn(db, await addAsset(db, image), host);
    }
  });

  async function image(name: string) {
    return Number((await db.sql`select id from assets where name = ${name}`)[0]!.id);
  }

  it('a KEV-listed CVE on an internet-facing asset lands in act, with the feeds and the exposure in its explanation', async () => {
    const log4j = await addFinding(db, await image('shop/edge:1'), 'CVE-2021-44228', { component: 'org.apache.logging.log4j:log4j-core', cvss: 10 });
    const http2 = await addFinding(db, await image('shop/edge:1'), HTTP2, { component: 'golang.org/x/net', cvss: 7.5, vector: HTTP2_VECTOR });
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'test' });
    const l = await scored(db, log4j);
    expect(l.tier).toBe('act');
    expect(factor(l, 'in_kev')).toEqual({ factor: 'in_kev', value: true, source: 'CISA KEV 2026.01.29', effect: 'in CISA KEV 2026.01.29 (added 2021-12-10, used in ransomware)' });
    expect(factor(l, 'publicly_exposed')!.effect).toBe(
      'internet-facing: runs on web-01; web-01 has public IP 203.0.113.10 and security group sg-0a1b2c3d4e5f00001 open to 0.0.0.0/0 on 443/tcp',
    );
    expect(factor(l, 'epss')).toMatchObject({ value: 0.94358, source: 'FIRST EPSS 2026-01-30' });
    expect(factor(l, 'decision')!.effect).toBe('row 15: in KEV, publicly exposed, automatable, total impact → 3 days & forensic investigation → act');
    const h = await scored(db, http2);
    expect(h.tier).toBe('act');
    expect(factor(h, 'decision')!.effect).toBe('row 11: in KEV, publicly exposed, automatable, partial impact → 3 days → act');
    expect(h.due_days).toBeCloseTo(3, 3);
  });

  it('the same KEV CVE behind a blocking control or on an isolated asset does not land in act', async () => {
    await saveControl(db.sql, { name: 'WAF virtual patch', kind: 'waf', mitigates: { issueIds: [HTTP2] }, appliesTo: { assetKeys: ['image:shop/edge-waf:1'] }, effect: 'not_exposed' });
    await saveControl(db.sql, { name: 'HTTP/2 disabled', kind: 'feature_disabled', mitigates: { components: ['golang.org/x/net'] }, appliesTo: { assetKeys: ['image:shop/edge-off:1'] }, effect: 'not_exploitable' });
    await saveControl(db.sql, { name: 'Old WAF rule', kind: 'waf', mitigates: { issueIds: [HTTP2] }, appliesTo: { assetKeys: ['image:shop/edge-expired:1'] }, effect: 'not_exposed', expiresAt: new Date(Date.now() - DAY).toISOString() });
    const waf = await addFinding(db, await image('shop/edge-waf:1'), HTTP2, { component: 'golang.org/x/net', cvss: 7.5, vector: HTTP2_VECTOR });
    const off = await addFinding(db, await image('shop/edge-off:1'), HTTP2, { component: 'golang.org/x/net', cvss: 7.5, vector: HTTP2_VECTOR });
    const expired = await addFinding(db, await image('shop/edge-expired:1'), HTTP2, { component: 'golang.org/x/net', cvss: 7.5, vector: HTTP2_VECTOR });
    const internal = await addFinding(db, await image('shop/internal:1'), HTTP2, { component: 'golang.org/x/net', cvss: 7.5, vector: HTTP2_VECTOR });
    const internalLog4j = await addFinding(db, await image('shop/internal:1'), 'CVE-2021-44228', { component: 'org.apache.logging.log4j:log4j-core', cvss: 10 });
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'test' });

    // Behind the WAF the path from the internet is blocked: row 6 (in KEV, not exposed, automatable,
    // partial impact) → 14 days → attend.
    const w = await scored(db, waf);
    expect(w.tier).toBe('attend');
    expect(w.due_days).toBeCloseTo(14, 3);
    expect(factor(w, 'publicly_exposed')!.value).toBe('no');
    expect(factor(w, 'publicly_exposed')!.effect).toContain("but control 'WAF virtual patch' blocks the path from the internet");
    expect(factor(w, 'decision')!.effect).toMatch(/^row 6: /);
    // Exploitation blocked outright: the table still says act (row 11), the control lowers it to track.
    const o = await scored(db, off);
    expect(o.tier).toBe('track');
    expect(factor(o, 'decision')!.effect).toMatch(/^row 11: /);
    expect(factor(o, 'control')!.effect).toBe("control 'HTTP/2 disabled' blocks exploitation: track (score × 0.2)");
    // An expired control counts for nothing.
    expect((await scored(db, expired)).tier).toBe('act');
    // On the isolated host (db-01 is not internet-facing): row 6 as well → attend.
    const i = await scored(db, internal);
    expect(i.tier).toBe('attend');
    expect(factor(i, 'publicly_exposed')!.effect).toBe('runs only on db-01, none of them internet-facing');
    // Log4Shell stays act even there: in KEV, automatable and total impact is row 13 (3 days & forensics) without exposure.
    const il = await scored(db, internalLog4j);
    expect(il.tier).toBe('act');
    expect(factor(il, 'decision')!.effect).toMatch(/^row 13: /);
  });

  it('runtime evidence lowers a component EDR never saw loaded, and says what it saw', async () => {
    const host = await addAsset(db, 'app-01', { kind: 'host', internetFacing: false });
    const app = await addAsset(db, 'shop/app:1');
    await runsOn(db, app, host);
    await db.sql`
      insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
      values (${host}, 'org.springframework:spring-beans', '5.3.17', 'java', 'edr', now()), (${host}, 'libssl1.1', '1.1.1k-r0', 'java', 'edr', now())`;
    const log4j = await addFinding(db, app, 'CVE-2021-44228', { component: 'org.apache.logging.log4j:log4j-core', cvss: 10 });
    const spring = await addFinding(db, app, 'CVE-2022-22965', { component: 'org.springframework:spring-beans', cvss: 9.8 });
    await rescoreFindings(db.sql, policy, { assetIds: [app] }, { reason: 'test' });
    const l = await scored(db, log4j);
    // Row 13 gives act; EDR covers app-01 and never saw log4j-core: one tier lower.
    expect(l.tier).toBe('attend');
    expect(factor(l, 'runtime')).toEqual({
      factor: 'runtime',
      value: 'not loaded',
      source: 'EDR runtime evidence',
      effect: 'runtime: EDR covers app-01 and never saw org.apache.logging.log4j:log4j-core loaded: 1 tier lower (score × 0.5)',
    });
    const s = await scored(db, spring);
    expect(s.tier).toBe('act');
    expect(factor(s, 'runtime')!.effect).toBe('runtime: EDR on app-01 saw org.springframework:spring-beans 5.3.17 loaded by java');
  });

  it('an image on two EDR-covered hosts: what either saw counts, and the first host by name speaks for a package both saw', async () => {
    const hostB = await addAsset(db, 'node-b', { kind: 'host', internetFacing: false });
    const hostA = await addAsset(db, 'node-a', { kind: 'host', internetFacing: false });
    const app = await addAsset(db, 'shop/api:2');
    await runsOn(db, app, hostB);
    await runsOn(db, app, hostA);
    await db.sql`
      insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
      values (${hostB}, 'org.springframework:spring-beans', '5.3.18', 'tomcat', 'edr', now()),
             (${hostB}, 'Libssl1.1', '1.1.1k-r0', 'nginx', 'edr', now()),
             (${hostA}, 'org.springframework:spring-beans', '5.3.17', 'java', 'edr', now() - interval '1 day'),
             (${hostA}, 'org.springframework:spring-beans', '5.3.16', 'java', 'edr', now() - interval '2 days')`;
    const spring = await addFinding(db, app, 'CVE-2022-22965', { component: 'org.springframework:spring-beans', cvss: 9.8 });
    const ssl = await addFinding(db, app, 'CVE-2022-0778', { component: 'libssl1.1', cvss: 7.5 });
    const log4j = await addFinding(db, app, 'CVE-2021-44228', { component: 'org.apache.logging.log4j:log4j-core', cvss: 10 });
    await rescoreFindings(db.sql, policy, { assetIds: [app] }, { reason: 'test' });
    // node-a's latest sighting, though node-b's is newer: hosts are taken in name order.
    expect(factor(await scored(db, spring), 'runtime')!.effect).toBe('runtime: EDR on node-a saw org.springframework:spring-beans 5.3.17 loaded by java');
    // Only node-b saw libssl, under another case.
    expect(factor(await scored(db, ssl), 'runtime')!.effect).toBe('runtime: EDR on node-b saw Libssl1.1 1.1.1k-r0 loaded by nginx');
    expect(factor(await scored(db, log4j), 'runtime')!.effect).toBe(
      'runtime: EDR covers node-a, node-b and never saw org.apache.logging.log4j:log4j-core loaded: 1 tier lower (score × 0.5)',
    );
  });

  it('a host whose EDR reports processes but no packages is covered: nothing it runs counts as loaded', async () => {
    const host = await addAsset(db, 'batch-01', { kind: 'host', internetFacing: false });
    await db.sql`insert into runtime_evidence (asset_id, package, version, process, source, observed_at) values (${host}, '', '', 'cron', 'edr', now())`;
    const log4j = await addFinding(db, host, 'CVE-2021-44228', { component: 'org.apache.logging.log4j:log4j-core', cvss: 10 });
    await rescoreFindings(db.sql, policy, { assetIds: [host] }, { reason: 'test' });
    const l = await scored(db, log4j);
    expect(factor(l, 'runtime')!.effect).toBe('runtime: EDR covers batch-01 and never saw org.apache.logging.log4j:log4j-core loaded: 1 tier lower (score × 0.5)');
  });

  it('Trivy and Grype reports of one image: tiers follow the CVSS v3 vectors and the exposure, not the severities', async () => {
    const target = 'my-app:latest';
    for (const [source, file] of [['trivy', 'trivy-results.json'], ['grype', 'grype-results.json']] as const) {
      const path = corpusFile('scanners', 'more', 'trivy-grype-same-image', file);
      const connector = await connectorFor(path, file);
      await ingestFindings(db.sql, { id: randomUUID(), source, target }, connector.parse(path, { target }));
    }
    const assetId = Number((await db.sql`select id from assets where name = ${target}`)[0]!.id);
    const tiersOf = async () => {
      const rows = await db.sql<{ issue_id: string; severity: string; tier: string; explanation: ExplanationFactor[] }[]>`
        select issue_id, severity, tier, f.explanation from findings f where asset_id = ${assetId} and status = 'open' order by issue_id, component`;
      const byTier = (t: string) => rows.filter((r) => r.tier === t).length;
      return { rows, tiers: { act: byTier('act'), attend: byTier('attend'), 'track*': byTier('track*'), track: byTier('track') } };
    };

    const result = await rescoreFindings(db.sql, policy, { assetIds: [assetId] }, { reason: 'test' });
    const { rows, tiers } = await tiersOf();
    const bySeverity = (s: string) => rows.filter((r) => r.severity === s).length;
    expect(result.scored).toBe(rows.length);
    expect({ findings: rows.length, critical: bySeverity('critical'), high: bySeverity('high') }).toEqual(SAME_IMAGE.severities);
    // Nothing on this image is in KEV and its highest EPSS is 0.065 (no likely-exploited raise).
    // Without exposure context, the 56 findings whose vector is AV:N/AC:L/PR:N/UI:N are automatable:
    // rows 3 and 10 (60 days → track*); the rest stay on row 0 or 4 (fix on system upgrade → track).
    expect(tiers).toEqual(SAME_IMAGE.withoutContext);

    // Served from an internet-facing host: automatable ones reach row 7 (14 days → attend) or, with
    // C:H and I:H, row 14 (3 days → act); total impact alone (C:H/I:H but local, user interaction or
    // privileges; or no vector and CVSS >= 9) is row 9 (14 days → attend). Severity does not decide:
    // 31 of the 32 critical/high findings are among them (not CVE-2022-40897, AC:H), and so are 39
    // rated medium or low (Debian's "negligible"), e.g. glibc's CVE-2019-1010022 (AV:N/AC:L/PR:N/UI:N, C:H/I:H: act).
    const edge = await addAsset(db, 'edge-01', { kind: 'host', internetFacing: true, publicIps: ['203.0.113.20'], securityGroups: ['sg-0a1b2c3d4e5f00001'], exposedPorts: ['443/tcp'] });
    await runsOn(db, assetId, edge);
    await rescoreFindings(db.sql, policy, { assetIds: [assetId] }, { reason: 'exposed' });
    const exposed = await tiersOf();
    expect(exposed.tiers).toEqual(SAME_IMAGE.exposed);
    const actionable = exposed.rows.filter((x) => x.tier === 'act' || x.tier === 'attend');
    expect({ actionable: actionable.length, criticalOrHigh: bySeverity('critical') + bySeverity('high') }).toEqual({ actionable: 70, criticalOrHigh: 32 });
    expect(actionable.filter((r) => r.severity === 'critical' || r.severity === 'high').length).toBe(31);
    const explained = (r: (typeof rows)[number], name: string) => r.explanation.find((f) => f.factor === name)!;
    for (const r of actionable) {
      // The deciding factor is named: the table row that gave the tier (nothing is raised by EPSS here).
      expect(explained(r, 'decision').effect, r.issue_id).toMatch(
        /^row (7: not in KEV, publicly exposed, automatable, partial impact → 14 days → attend|9: not in KEV, publicly exposed, not automatable, total impact → 14 days → attend|14: not in KEV, publicly exposed, automatable, total impact → 3 days → act)$/,
      );
      expect(explained(r, 'publicly_exposed').effect).toMatch(/^internet-facing: runs on edge-01; /);
      expect(r.explanation.find((f) => f.factor === 'likely_exploited')).toBeUndefined();
    }
    // Every actionable finding but one was decided by its CVSS v3 vector; CVE-2005-2541 (tar) has no
    // v3 rating in either report, so its CVSS 10 (v2) decides total impact.
    const byVector = actionable.filter((r) => explained(r, 'automatable').source === 'CVSS v3 vector (scanner)');
    expect(byVector.length).toBe(69);
    expect(byVector.every((r) => explained(r, 'technical_impact').source === 'CVSS v3 vector (scanner)')).toBe(true);
    const tar = actionable.find((r) => r.issue_id === 'CVE-2005-2541')!;
    expect(tar.tier).toBe('attend');
    expect(explained(tar, 'technical_impact')).toMatchObject({ value: 'total', source: 'CVSS score', effect: 'no CVSS v3 vector; CVSS 10 ≥ 9' });

    // CVE-2025-6965 (SQLite): CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H, row 14 → act.
    const sqlite = actionable.find((r) => r.issue_id === 'CVE-2025-6965')!;
    expect(sqlite.tier).toBe('act');
    expect(explained(sqlite, 'automatable')).toEqual({
      factor: 'automatable', value: 'yes', source: 'CVSS v3 vector (scanner)',
      effect: 'CVSS v3 AV:N/AC:L/PR:N/UI:N: over the network, no privileges, no user interaction',
    });
    expect(explained(sqlite, 'technical_impact')).toEqual({ factor: 'technical_impact', value: 'total', source: 'CVSS v3 vector (scanner)', effect: 'CVSS v3 C:H/I:H/S:U' });
    // CVE-2025-0395 (glibc): Trivy carries Red Hat's AV:L/AC:H/PR:L/UI:R vector, Grype NVD's (CISA
    // ADP) AV:N/AC:L/PR:N/UI:N. Grype reported last, so its vector is stored: automatable, row 7.
    const glibc = actionable.filter((r) => r.issue_id === 'CVE-2025-0395');
    expect(glibc).toHaveLength(2); // libc-bin and libc6
    for (const r of glibc) {
      expect(explained(r, 'automatable')).toMatchObject({ value: 'yes', source: 'CVSS v3 vector (scanner)' });
      expect(explained(r, 'decision').effect).toMatch(/^row 7: /);
    }
  });
});

// What the two real reports of my-app:latest become (the asset has no exposure or runtime context,
// so the decision rests on KEV, EPSS and the CVSS v3 vectors, or the CVSS score where a finding has
// none). Derived by hand from the two reports, the EPSS and KEV files and the policy's table.
const SAME_IMAGE = {
  severities: { findings: 160, critical: 5, high: 27 },
  withoutContext: { act: 0, attend: 0, 'track*': 56, track: 104 },
  exposed: { act: 4, attend: 66, 'track*': 90, track: 0 },
};
