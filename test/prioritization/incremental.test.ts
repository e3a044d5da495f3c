import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../../config/index.js';
import type { Database } from '../../db/client.js';
import { mobilize } from '../../mobilization/mobilize.js';
import { saveControl } from '../../prioritization/controls.js';
import { defaultPolicy, defaultPolicyDocument, parsePolicy } from '../../prioritization/policy.js';
import { changedVulnerabilities, rescoreChanged } from '../../prioritization/scoring/incremental.js';
import { contextGeneration, recordedInputs } from '../../prioritization/scoring/inputs.js';
import { rescoreFindings, shadowScore } from '../../prioritization/scoring/rescore.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Incremental rescoring on real PostgreSQL: nothing changed reads no finding; a KEV, EPSS or context
// change rescores only what it touches; and every finding then carries what a full rescoring gives
// it (tier, score, due date, explanation but for the feed version it names).

const policy = defaultPolicy();
afterAll(closeTestDatabases);

const KEV = ['CVE-2021-44228', 'CVE-2022-22965'];
const OTHER = ['CVE-2023-0286', 'CVE-2022-37434', 'CVE-2023-4911', 'CVE-2022-0778', 'CVE-2021-3711', 'CVE-2023-5363'];
const VECTORS = ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', null];

let db: Database;
const assets: Record<string, number> = {};

async function addAsset(name: string, kind: string, facing: boolean | null, environment = 'production'): Promise<number> {
  const [row] = await db.sql<{ id: string }[]>`
    insert into assets (asset_key, kind, name, internet_facing, environment, criticality, attribute_sources)
    values (${`${kind}:${name}`}, ${kind}, ${name}, ${facing}, ${environment}, 'high', ${db.sql.json(facing === null ? {} : { internet_facing: 'firewall' })})
    returning id`;
  return (assets[name] = Number(row!.id));
}

async function activate(kind: 'kev' | 'epss', version: string) {
  await db.sql`update intel_feeds set status = 'retired' where kind = ${kind} and status = 'active'`;
  await db.sql`update intel_feeds set status = 'active', activated_at = now() where kind = ${kind} and version = ${version}`;
}

async function addFeed(kind: 'kev' | 'epss', version: string, rows: number) {
  await db.sql`insert into intel_feeds (kind, version, rows, sha256, status) values (${kind}, ${version}, ${rows}, 'test', 'staged')`;
}

/** Every open finding as it is stored, with the feed versions its explanation names made neutral. */
async function snapshot(): Promise<Map<number, unknown>> {
  const rows = await db.sql<{ id: string; tier: string; score: number; due_at: Date; explanation: unknown }[]>`
    select f.id, f.tier, f.score, f.due_at, f.explanation from findings f where f.status = 'open' order by f.id`;
  return new Map(
    rows.map((r) => [
      Number(r.id),
      { tier: r.tier, score: r.score, due: r.due_at.toISOString(), explanation: JSON.stringify(r.explanation).replace(/kev-\d/g, 'kev-N').replace(/epss-\d/g, 'epss-N').replace(/cve-\d/g, 'cve-N') },
    ]),
  );
}

/** A full rescoring after the incremental one moves nothing and gives every finding the same. */
async function expectSameAsFull() {
  const shadow = await shadowScore(db.sql, policy, { all: true });
  expect(shadow.unchanged).toBe(shadow.scored);
  expect(shadow.dueChanged).toBe(0);
  const before = await snapshot();
  const full = await rescoreFindings(db.sql, policy, { all: true }, { reason: 'full, to compare' });
  expect(full.events).toBe(0);
  expect(await snapshot()).toEqual(before);
}

beforeAll(async () => {
  db = await migratedTestDatabase();
  await addFeed('kev', 'kev-1', KEV.length);
  await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) select 'kev-1', unnest(${KEV}::text[]), '2021-12-10', false`;
  await addFeed('epss', 'epss-1', KEV.length + OTHER.length);
  await db.sql`
    insert into epss_scores (feed_version, cve, epss, percentile)
    select 'epss-1', cve, 0.001 * n, 0.1 * (n % 10) from unnest(${[...KEV, ...OTHER]}::text[]) with ordinality as x(cve, n)`;
  await activate('kev', 'kev-1');
  await activate('epss', 'epss-1');
  const host = await addAsset('web-01', 'host', true);
  const closed = await addAsset('db-01', 'host', false);
  const unknown = await addAsset('batch-01', 'host', null, 'staging');
  for (const [i, target] of [host, closed, unknown].entries()) {
    const image = await addAsset(`shop/app-${i}:1`, 'container_image', null);
    await db.sql`insert into asset_relations (asset_id, relation, target_id, source) values (${image}, 'runs_on', ${target}, 'cmdb')`;
  }
  let n = 0;
  for (const assetId of Object.values(assets)) {
    for (const cve of [...KEV, ...OTHER]) {
      n++;
      const scan = randomUUID();
      await db.sql`
        insert into findings (fingerprint, asset_id, kind, issue_id, component, version, fixed_version, package_class, severity, cvss_score, cvss_vector, first_scan_id, last_scan_id)
        values (${randomUUID()}, ${assetId}, 'vulnerability', ${cve}, ${`component-${n % 4}`}, '1.0', ${n % 2 === 0 ? '2.0' : null}, ${n % 2 === 0 ? 'os' : null},
                'high', ${5 + (n % 5)}, ${VECTORS[n % 3]!}, ${scan}, ${scan})`;
    }
  }
});

describe('incremental rescoring', () => {
  it('scores everything the first time, then records what it scored with', async () => {
    const first = await rescoreChanged(db.sql, policy, { reason: 'first' });
    expect(first).toMatchObject({ mode: 'full', changes: ['no record of what the estate was last scored with'], scored: 48, events: 48 });
    const { estate, assets: hashes } = await recordedInputs(db.sql);
    // Every kind feedVersions() names (a `cve` kind too, once CVE records score), none active here but these two.
    expect(estate).toEqual({ policy: policy.version, feeds: expect.objectContaining({ epss: 'epss-1', kev: 'kev-1' }), context: await contextGeneration(db.sql) });
    expect(Object.entries(estate!.feeds).filter(([kind, version]) => version !== null && !['epss', 'kev'].includes(kind))).toEqual([]);
    expect(Object.keys(hashes!).sort()).toEqual(Object.values(assets).map(String).sort());
  });

  it('reads no finding when nothing changed', async () => {
    // Every statement the run sends, seen from the client: none may name the findings table.
    const [{ name }] = (await db.sql`select current_database() as name`) as unknown as [{ name: string }];
    const statements: string[] = [];
    const watched = postgres(inject('postgresUrl').replace(/\/[^/]*$/, `/${name}`), { max: 2, onnotice: () => {}, debug: (_c, query) => statements.push(query) });
    try {
      expect(await rescoreChanged(watched, policy, { reason: 'nothing' })).toEqual({ mode: 'unchanged', changes: [], scored: 0, changed: 0, events: 0, issueIds: 0, assetIds: 0 });
    } finally {
      await watched.end();
    }
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.filter((q) => /\bfindings\b/.test(q))).toEqual([]);
  });

  it('rescores only the findings of the CVEs a new KEV version adds, and names their assets', async () => {
    await addFeed('kev', 'kev-2', 3);
    await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) select 'kev-2', cve, date_added, known_ransomware from kev_entries where feed_version = 'kev-1'`;
    await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values ('kev-2', ${OTHER[0]!}, '2026-02-01', true)`;
    expect(await changedVulnerabilities(db.sql, 'kev', 'kev-1', 'kev-2')).toEqual([OTHER[0]]);
    await activate('kev', 'kev-2');
    const result = await rescoreChanged(db.sql, policy, { reason: 'kev-2 activated' });
    expect(result).toMatchObject({ mode: 'partial', changes: ['kev kev-1 → kev-2: 1 CVEs changed'], issueIds: 1, assetIds: 0, scored: 6, changed: 6 });
    expect(result.events).toBeGreaterThan(0);
    const moved = await db.sql<{ asset_id: string }[]>`
      select distinct asset_id from findings where issue_id = ${OTHER[0]!} and change_reason = 'kev-2 activated' order by asset_id`;
    expect(result.eventAssetIds).toEqual(moved.map((r) => Number(r.asset_id)));
    // The other findings still name kev-1; they are otherwise what a full rescoring gives.
    const [other] = await db.sql<{ n: number }[]>`select count(*)::int as n from findings f where f.issue_id <> ${OTHER[0]!} and f.explanation::text like '%kev-2%'`;
    expect(other!.n).toBe(0);
    await expectSameAsFull();
  });

  it('rescores only the CVEs whose EPSS score or percentile changed', async () => {
    await addFeed('epss', 'epss-2', KEV.length + OTHER.length);
    await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) select 'epss-2', cve, epss, percentile from epss_scores where feed_version = 'epss-1'`;
    await db.sql`update epss_scores set epss = 0.5 where feed_version = 'epss-2' and cve = ${OTHER[1]!}`;
    await db.sql`update epss_scores set percentile = 0.99 where feed_version = 'epss-2' and cve = ${OTHER[2]!}`;
    await activate('epss', 'epss-2');
    const result = await rescoreChanged(db.sql, policy, { reason: 'epss-2 activated' });
    expect(result).toMatchObject({ mode: 'partial', issueIds: 2, scored: 12 });
    await expectSameAsFull();
  });

  it('rescores the assets whose context changed, and what runs on them', async () => {
    await db.sql`update assets set internet_facing = true, attribute_sources = '{"internet_facing": "firewall"}' where id = ${assets['db-01']!}`;
    const result = await rescoreChanged(db.sql, policy, { reason: 'db-01 exposed' });
    expect(result).toMatchObject({ mode: 'partial', changes: ['context: 2 assets changed'], assetIds: 2, scored: 16 });
    expect(result.events).toBeGreaterThan(0);
    expect(result.eventAssetIds!.every((id) => [assets['db-01'], assets['shop/app-1:1']].includes(id))).toBe(true);
    await expectSameAsFull();
  });

  it('rescores the assets a new control applies to', async () => {
    await saveControl(db.sql, { name: 'WAF', kind: 'waf', mitigates: { issueIds: [KEV[0]!] }, appliesTo: { assetKeys: ['host:web-01'] }, effect: 'not_exposed' });
    const result = await rescoreChanged(db.sql, policy, { reason: 'control' });
    expect(result).toMatchObject({ mode: 'partial', assetIds: 1, scored: 8 });
    await expectSameAsFull();
  });

  it('has mobilization re-plan only the tickets of the findings that moved', async () => {
    let signals = 0;
    const temporal = { client: { workflow: { signalWithStart: async () => void signals++ } } as unknown as Client, taskQueue: 'test' };
    const planning = { database: db, temporal, sla: loadConfig({}).sla, fallbackOwner: 'secops' };
    await db.sql`update assets set owner = 'alex.romero'`;
    const all = Object.values(assets);
    const before = await mobilize(planning, { assetIds: all });
    expect(before.goldenTickets).toBeGreaterThan(0);
    await addFeed('kev', 'kev-3', 4);
    await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) select 'kev-3', cve, date_added, known_ransomware from kev_entries where feed_version = 'kev-2'`;
    await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values ('kev-3', ${OTHER[3]!}, '2026-02-02', false)`;
    await activate('kev', 'kev-3');
    const result = await rescoreChanged(db.sql, policy, { reason: 'kev-3 activated' });
    expect(result).toMatchObject({ mode: 'partial', issueIds: 1 });
    expect(result.eventAssetIds!.length).toBeGreaterThan(0);
    // Among the findings that moved, OS packages on hosts: their owner's patch run must follow.
    const [hostOs] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from findings f join assets a on a.id = f.asset_id
      where f.change_reason = 'kev-3 activated' and a.kind = 'host' and f.package_class = 'os' and f.tier in ('act', 'attend')`;
    expect(hostOs!.n).toBeGreaterThan(0);
    signals = 0;
    const after = await mobilize(planning, { assetIds: result.eventAssetIds! }, { changedSince: result.eventsSince! });
    expect(after.goldenTickets).toBeLessThan(before.goldenTickets!);
    // The hosts' OS findings make one patch run for their owner, across hosts the change did not touch.
    const [patchRun] = await db.sql<{ finding_count: number }[]>`select finding_count from tickets where action = 'os-patch'`;
    expect(patchRun!.finding_count).toBeGreaterThan(0);
    expect(signals).toBeGreaterThan(0);
    // Nothing was left behind: planning every asset again changes no ticket.
    signals = 0;
    expect(await mobilize(planning, { assetIds: all })).toMatchObject({ ticketsSignalled: 0 });
    expect(signals).toBe(0);
  });

  it('rescores only the CVEs whose CVE record changed', async (context) => {
    // CVE records are a feed of their own where the schema has them (cve_records).
    const [table] = await db.sql<{ t: string | null }[]>`select to_regclass('cve_records')::text as t`;
    if (!table?.t) return context.skip();
    const cves = [...KEV, ...OTHER];
    await db.sql`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('cve', 'cve-1', ${cves.length}, 'test', 'active', now())`;
    await db.sql`insert into cve_records (feed_version, cve, state, sha256) select 'cve-1', cve, 'PUBLISHED', md5(cve) from unnest(${cves}::text[]) cve`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'cve-1' })).toMatchObject({ mode: 'full', changes: ['cve none → cve-1'] });
    await db.sql`insert into intel_feeds (kind, version, rows, sha256, status) values ('cve', 'cve-2', ${cves.length}, 'test', 'staged')`;
    await db.sql`insert into cve_records (feed_version, cve, state, sha256) select 'cve-2', cve, state, sha256 from cve_records where feed_version = 'cve-1'`;
    // The CNA rates OTHER[4] critical, over the network: a new record, a new hash.
    await db.sql`update cve_records set cna_vector = ${VECTORS[0]!}, cna_score = 9.8, sha256 = 'changed' where feed_version = 'cve-2' and cve = ${OTHER[4]!}`;
    expect(await changedVulnerabilities(db.sql, 'cve', 'cve-1', 'cve-2')).toEqual([OTHER[4]]);
    await db.sql`update intel_feeds set status = 'retired' where kind = 'cve' and version = 'cve-1'`;
    await db.sql`update intel_feeds set status = 'active', activated_at = now() where kind = 'cve' and version = 'cve-2'`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'cve-2' })).toMatchObject({ mode: 'partial', issueIds: 1, scored: 6 });
    await expectSameAsFull();
  });

  it('rescores the assets whose validation evidence is new, changed or expired, and only them', async () => {
    const web = assets['web-01']!;
    const tierOf = async () => (await db.sql<{ tier: string }[]>`select tier from findings where asset_id = ${web} and issue_id = ${OTHER[5]!}`)[0]!.tier;
    const before = await tierOf();
    const add = async (result: string, testedAt: string, expiresAt: string) =>
      Number((await db.sql<{ id: string }[]>`
        insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, tested_at, expires_at)
        values (${randomUUID()}, ${web}, ${OTHER[5]!}, ${result}, 'pentest-kit', 'report.pdf', ${testedAt}, ${expiresAt}) returning id`)[0]!.id);
    const exploit = await add('exploited', '2026-11-30T09:00:00Z', '2099-01-01T00:00:00Z');
    const generation = await contextGeneration(db.sql);
    const result = await rescoreChanged(db.sql, policy, { reason: 'pentest' });
    expect(result).toMatchObject({ mode: 'partial', changes: ['context: 1 assets changed'], issueIds: 0, assetIds: 1, scored: 8, events: 1 });
    expect(result.eventAssetIds).toEqual([web]);
    expect(await tierOf()).toBe('act');
    await expectSameAsFull();
    // A changed row (a later test date) is a change too.
    await db.sql`update validation_evidence set tested_at = '2026-12-01T09:00:00Z' where id = ${exploit}`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'retested' })).toMatchObject({ mode: 'partial', assetIds: 1, scored: 8, events: 0 });
    // Expiry is a change of the context generation without any write: the hash reads what is unexpired now.
    // Five seconds of life: what runs before the expiry must finish first, also on a loaded machine.
    const [{ expires }] = await db.sql<[{ expires: Date }]>`update validation_evidence set expires_at = now() + interval '5 seconds' where id = ${exploit} returning expires_at as expires`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'expiring' })).toMatchObject({ mode: 'partial', assetIds: 1, events: 0 });
    const live = await contextGeneration(db.sql);
    expect(live).not.toBe(generation);
    expect(Date.now(), 'the evidence expired before its live generation was read').toBeLessThan(expires.getTime());
    await new Promise((resolve) => setTimeout(resolve, expires.getTime() - Date.now() + 200));
    expect(await contextGeneration(db.sql)).not.toBe(live);
    expect(await rescoreChanged(db.sql, policy, { reason: 'pentest expired' })).toMatchObject({ mode: 'partial', assetIds: 1, scored: 8, events: 1 });
    expect(await tierOf()).toBe(before);
    await expectSameAsFull();
  });

  it('rescores everything with another policy', async () => {
    const document = structuredClone(defaultPolicyDocument()) as { version: string };
    document.version = 'incremental-test';
    const other = parsePolicy(document, 'test');
    const result = await rescoreChanged(db.sql, other, { reason: 'policy' });
    expect(result).toMatchObject({ mode: 'full', changes: [`policy ${policy.version} → incremental-test`], scored: 48 });
    expect(await rescoreChanged(db.sql, other, { reason: 'again' })).toMatchObject({ mode: 'unchanged' });
  });
});
