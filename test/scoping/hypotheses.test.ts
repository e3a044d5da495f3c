import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { listExposures } from '../../db/read-models/exposures.js';
import { defaultPolicy } from '../../prioritization/policy.js';
import { rescoreFindings } from '../../prioritization/scoring/rescore.js';
import {
  campaignRemoval,
  deleteHypothesis,
  describeQuery,
  getHypothesis,
  hypothesisCampaigns,
  HypothesisInvalidError,
  hypothesisTrend,
  listHypotheses,
  parseHypothesis,
  recordCampaignResult,
  runHypothesis,
  runScheduledHypotheses,
  saveHypothesis,
  type HypothesisQuery,
} from '../../scoping/hypotheses.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Hunting hypotheses on real PostgreSQL: a small estate scored by the real policy (exposure through
// the host an image runs on, EDR evidence of what is loaded, KEV), then each condition of a
// hypothesis selects exactly the findings it should; results are recorded over time, and what a
// campaign removed is counted finding by finding.

afterAll(closeTestDatabases);

let db: Database;
const f: Record<string, number> = {};

async function asset(name: string, kind: 'host' | 'container_image', internetFacing: boolean | null): Promise<number> {
  const [row] = await db.sql<{ id: number }[]>`
    insert into assets (asset_key, kind, name, internet_facing, environment, criticality, attribute_sources)
    values (${`${kind}:${name}`}, ${kind}, ${name}, ${internetFacing}, 'production', 'high',
            ${db.sql.json(internetFacing === null ? {} : { internet_facing: 'firewall' })})
    returning id`;
  return Number(row!.id);
}

async function finding(assetId: number, issueId: string, component: string, vendorStatus: string | null = null): Promise<number> {
  const scan = randomUUID();
  const [row] = await db.sql<{ id: number }[]>`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, vendor_status, first_scan_id, last_scan_id)
    values (${randomUUID()}, ${assetId}, 'vulnerability', ${issueId}, ${component}, '1.0', 'critical', 9.8, ${vendorStatus}, ${scan}, ${scan})
    returning id`;
  return Number(row!.id);
}

const save = (name: string, query: HypothesisQuery) => saveHypothesis(db.sql, { name, statement: `hypothesis ${name}`, query, createdBy: 'test' });

async function matching(query: HypothesisQuery): Promise<number[]> {
  const page = await listExposures(db.sql, { hypothesis: query, limit: 100, offset: 0 });
  return page.items.map((e) => e.id).sort((a, b) => a - b);
}

const ids = (...names: string[]) => names.map((n) => f[n]!).sort((a, b) => a - b);

beforeAll(async () => {
  db = await migratedTestDatabase();
  const web = await asset('web-01', 'host', true);
  const app = await asset('app-02', 'host', false);
  const image = await asset('shop/api:1', 'container_image', null);
  await db.sql`insert into asset_relations (asset_id, relation, target_id, source) values (${image}, 'runs_on', ${web}, 'cmdb')`;
  // EDR on web-01 saw log4j-core loaded; app-02 has no EDR.
  await db.sql`
    insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
    values (${web}, 'org.apache.logging.log4j:log4j-core', '2.14.1', 'java', 'edr', now())`;
  f.log4jExposed = await finding(image, 'CVE-2021-44228', 'org.apache.logging.log4j:log4j-core');
  f.log4jInternal = await finding(app, 'CVE-2021-44228', 'org.apache.logging.log4j:log4j-core');
  f.spring = await finding(image, 'CVE-2022-22965', 'org.springframework:spring-beans');
  f.kernel = await finding(web, 'CVE-2024-1086', 'linux-image-4.19.0-26-amd64', 'will_not_fix');
  f.closed = await finding(web, 'CVE-2021-44228', 'log4j-core-closed');
  await db.sql`update findings set status = 'closed', closed_at = now() where id = ${f.closed}`;
  await db.sql`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
    values ('kev', 'hunt-kev-1', 2, 'k', 'active', now()), ('epss', 'hunt-epss-1', 0, 'e', 'active', now())`;
  await db.sql`
    insert into kev_entries (feed_version, cve, date_added, known_ransomware)
    values ('hunt-kev-1', 'CVE-2021-44228', '2021-12-10', true), ('hunt-kev-1', 'CVE-2024-1086', '2024-05-30', false)`;
  await rescoreFindings(db.sql, defaultPolicy(), { all: true }, { reason: 'test' });
});

describe('hypothesis conditions', () => {
  it('Log4Shell loaded at runtime on a publicly exposed asset is the image on the internet-facing host, not the internal one', async () => {
    expect(await matching({ issueIds: ['cve-2021-44228'], runtime: 'loaded', publiclyExposed: true })).toEqual(ids('log4jExposed'));
    expect(await matching({ issueIds: ['CVE-2021-44228'] })).toEqual(ids('log4jExposed', 'log4jInternal'));
    expect(await matching({ issueIds: ['CVE-2021-44228'], publiclyExposed: false })).toEqual(ids('log4jInternal'));
  });

  it('an issue id matches the findings reported under it as an alias, and those stored under the CVE it is an alias of', async () => {
    await db.sql`update findings set aliases = array['GHSA-jfh8-c2jp-5v3q'] where id = ${f.log4jExposed!}`;
    await db.sql`insert into vulnerability_aliases (alias, canonical, source) values ('GHSA-7rjr-3q55-vv33', 'CVE-2021-44228', 'test')`;
    try {
      // Reported by one source under the GHSA: only that finding carries it.
      expect(await matching({ issueIds: ['ghsa-JFH8-c2jp-5v3q'] })).toEqual(ids('log4jExposed'));
      // A known alias of the CVE finds every open finding stored under the CVE.
      expect(await matching({ issueIds: ['GHSA-7rjr-3q55-vv33'] })).toEqual(ids('log4jExposed', 'log4jInternal'));
    } finally {
      await db.sql`update findings set aliases = '{}' where id = ${f.log4jExposed!}`;
      await db.sql`delete from vulnerability_aliases where alias = 'GHSA-7rjr-3q55-vv33'`;
    }
  });

  it('EOL kernels on internet-facing hosts: a component pattern over the host scope', async () => {
    expect(await matching({ components: ['linux-image-4.*'], scope: { assetKinds: ['host'], internetFacing: true } })).toEqual(ids('kernel'));
    expect(await matching({ components: ['LINUX-IMAGE-*'], vendorStatuses: ['will_not_fix'] })).toEqual(ids('kernel'));
    expect(await matching({ components: ['linux-image-5.*'] })).toEqual([]);
    expect(await matching({ components: ['*log4j*'], versions: ['1.*'] })).toEqual(ids('log4jExposed', 'log4jInternal'));
    expect(await matching({ components: ['*log4j*'], versions: ['2.*'] })).toEqual([]);
    // LIKE's own wildcards are literal characters in a pattern.
    expect(await matching({ components: ['linux_image%'] })).toEqual([]);
  });

  it('runtime not_loaded is EDR coverage without the component seen; KEV and its negation split the rest', async () => {
    expect(await matching({ runtime: 'not_loaded' })).toEqual(ids('spring', 'kernel'));
    expect(await matching({ kev: true })).toEqual(ids('log4jExposed', 'log4jInternal', 'kernel'));
    expect(await matching({ kev: false })).toEqual(ids('spring'));
    expect(await matching({ severities: ['low'] })).toEqual([]);
  });

  it('tiers select on the tier the policy gave', async () => {
    const tiers = await db.sql<{ id: number; tier: string }[]>`select id, tier from findings where status = 'open'`;
    const urgent = tiers.filter((t) => t.tier === 'act' || t.tier === 'attend').map((t) => Number(t.id)).sort((a, b) => a - b);
    expect(urgent.length).toBeGreaterThan(0);
    expect(await matching({ tiers: ['act', 'attend'] })).toEqual(urgent);
  });

  it('says the query in words', () => {
    expect(describeQuery({ issueIds: ['CVE-2021-44228'], runtime: 'loaded', publiclyExposed: true, scope: { assetKinds: ['host'] } }))
      .toEqual(['issue CVE-2021-44228', 'publicly exposed', 'loaded at runtime (EDR)', 'on host assets']);
  });
});

describe('saving', () => {
  it('names every field at fault', () => {
    let error: HypothesisInvalidError | undefined;
    try {
      parseHypothesis({ name: 'bad name!', statement: '', query: { issueIds: ['CVE-21-1'], components: ['*'], runtime: 'yes', colour: 'red' }, createdBy: 'test' });
    } catch (err) {
      error = err as HypothesisInvalidError;
    }
    expect(error).toBeInstanceOf(HypothesisInvalidError);
    const fields = Object.fromEntries(error!.errors.map((e) => [e.field, e.message]));
    expect(Object.keys(fields).sort()).toEqual(['name', 'query', 'query.components.0', 'query.issueIds.0', 'query.runtime', 'statement']);
    expect(fields['query.issueIds.0']).toMatch(/CVE/);
    expect(fields.query).toBe('unknown field colour');
    expect(fields['query.components.0']).toMatch(/besides \*/);
  });

  it('upserts: a second save changes the statement and query and keeps the creator', async () => {
    await save('again', { kev: true });
    const changed = await saveHypothesis(db.sql, { name: 'again', statement: 'changed', query: { kev: false }, createdBy: 'someone-else' });
    expect(changed).toMatchObject({ name: 'again', statement: 'changed', query: { kev: false }, createdBy: 'test' });
    expect(await deleteHypothesis(db.sql, 'again')).toBe(true);
    expect(await getHypothesis(db.sql, 'again')).toBeUndefined();
  });
});

describe('results over time', () => {
  it('records matched, urgent, tiers and assets; the trend reads them in order within the range', async () => {
    await save('log4shell', { issueIds: ['CVE-2021-44228'] });
    const [expected] = await db.sql<{ urgent: number }[]>`
      select count(*) filter (where tier in ('act', 'attend'))::int as urgent from findings where id in ${db.sql([f.log4jExposed!, f.log4jInternal!])}`;
    const first = await runHypothesis(db.sql, 'log4shell', 'api');
    expect(first).toMatchObject({ matched: 2, urgent: expected!.urgent, trigger: 'api', campaignId: null });
    expect(first.counts.assets).toBe(2);
    expect(first.counts.act! + first.counts.attend! + first.counts['track*']! + first.counts.track! + first.counts.unscored!).toBe(2);

    await db.sql`update findings set status = 'closed', closed_at = now() where id = ${f.log4jInternal!}`;
    const second = await runHypothesis(db.sql, 'log4shell', 'cli');
    expect(second.matched).toBe(1);
    const trend = await hypothesisTrend(db.sql, 'log4shell', new Date(Date.parse(first.at) - 1000), new Date());
    expect(trend.map((r) => [r.matched, r.trigger])).toEqual([[2, 'api'], [1, 'cli']]);
    expect(await hypothesisTrend(db.sql, 'log4shell', new Date(Date.parse(second.at) + 1), new Date(Date.now() + 60_000))).toEqual([]);
    const listed = (await listHypotheses(db.sql)).find((h) => h.name === 'log4shell')!;
    expect(listed.latest).toMatchObject({ id: second.id, matched: 1 });
    expect(listed.recentUrgent).toEqual([first.urgent, second.urgent]);
    await db.sql`update findings set status = 'open', closed_at = null where id = ${f.log4jInternal!}`;
  });

  it('a scheduled run records each hypothesis once since its start; a retry records nothing more', async () => {
    const since = new Date();
    const first = await runScheduledHypotheses(db.sql, since);
    const count = (await listHypotheses(db.sql)).length;
    expect(first).toEqual({ hypotheses: count, recorded: count });
    expect(await runScheduledHypotheses(db.sql, since)).toEqual({ hypotheses: count, recorded: 0 });
  });
});

describe('what a campaign removed', () => {
  it('counts the urgent findings that closed or left act/attend, not a difference of totals', async () => {
    await save('kev-everywhere', { kev: true });
    const campaignId = 'campaign:test:0001';
    const urgentIds = (await db.sql<{ id: number }[]>`
      select id from findings where status = 'open' and tier in ('act', 'attend') and issue_id in ('CVE-2021-44228', 'CVE-2024-1086') order by id`).map((r) => Number(r.id));
    expect(urgentIds.length).toBeGreaterThanOrEqual(2);
    const before = await recordCampaignResult(db.sql, 'kev-everywhere', campaignId, 'before');
    expect(before).toMatchObject({ trigger: 'campaign', campaignId, urgent: urgentIds.length });
    // A retried activity finds the result already recorded.
    expect((await recordCampaignResult(db.sql, 'kev-everywhere', campaignId, 'before')).id).toBe(before.id);

    // One urgent finding closes (a rescan no longer found it); a control takes the exposure of the
    // internet-facing host away and the rescoring moves findings out of act/attend; a new urgent finding appears.
    await db.sql`update findings set status = 'closed', closed_at = now() where id = ${f.log4jInternal!}`;
    await db.sql`update assets set internet_facing = false where name = 'web-01'`;
    await rescoreFindings(db.sql, defaultPolicy(), { all: true }, { reason: 'campaign' });
    const app = (await db.sql<{ id: number }[]>`select id from assets where name = 'app-02'`)[0]!.id;
    const fresh = await finding(Number(app), 'CVE-2024-1086', 'linux-image-4.19.0-27-amd64');
    await rescoreFindings(db.sql, defaultPolicy(), { all: true }, { reason: 'campaign' });

    const rows = await db.sql<{ id: number; status: string; tier: string }[]>`select id, status, tier from findings where id in ${db.sql([...urgentIds, fresh])}`;
    const stillUrgent = (id: number) => rows.some((r) => Number(r.id) === id && r.status === 'open' && (r.tier === 'act' || r.tier === 'attend'));
    const rescoredOut = urgentIds.filter((id) => id !== f.log4jInternal && !stillUrgent(id)).length;
    expect(rescoredOut).toBeGreaterThan(0);

    const after = await recordCampaignResult(db.sql, 'kev-everywhere', campaignId, 'after');
    expect(after.trigger).toBe('campaign-end');
    expect(after.counts).toMatchObject({
      urgentBefore: urgentIds.length,
      removedClosed: urgentIds.includes(f.log4jInternal!) ? 1 : 0,
      removedRescored: rescoredOut,
      removed: (urgentIds.includes(f.log4jInternal!) ? 1 : 0) + rescoredOut,
      leftHypothesis: 0,
      added: stillUrgent(fresh) ? 1 : 0,
    });
    // Urgent before, minus what left, plus what came, is urgent after.
    expect(before.urgent - after.counts.removed! - after.counts.leftHypothesis! + after.counts.added!).toBe(after.urgent);
    expect(await campaignRemoval(db.sql, 'kev-everywhere', campaignId)).toMatchObject({ removed: after.counts.removed });
    // The urgent ids stay in the database; the API's counts are numbers only.
    expect(before.counts.urgentIds).toBeUndefined();
    const [kept] = await db.sql`select counts -> 'urgentIds' as ids from hypothesis_results where id = ${before.id}`;
    expect(kept!.ids).toEqual(urgentIds);
    // A retry finds the result after; one recorded before its removal was added (a crash in between) is completed.
    await db.sql`update hypothesis_results set counts = counts - array['urgentBefore', 'removedClosed', 'removedRescored', 'removed', 'leftHypothesis', 'added'] where id = ${after.id}`;
    const retried = await recordCampaignResult(db.sql, 'kev-everywhere', campaignId, 'after');
    expect(retried).toMatchObject({ id: after.id, counts: after.counts });
    expect((await db.sql`select count(*)::int as n from hypothesis_results where campaign_id = ${campaignId}`)[0]!.n).toBe(2);

    const campaigns = await hypothesisCampaigns(db.sql, 'kev-everywhere');
    expect(campaigns).toHaveLength(1);
    expect(campaigns[0]).toMatchObject({ campaignId, before: { id: before.id }, after: { id: after.id }, removal: { removed: after.counts.removed } });
  });

  it('counts findings the campaign took out of the hypothesis (the exposure went) from the ids kept at its start', async () => {
    await db.sql`update assets set internet_facing = true where name = 'web-01'`;
    await rescoreFindings(db.sql, defaultPolicy(), { all: true }, { reason: 'test' });
    await save('kev-exposed', { kev: true, publiclyExposed: true });
    const campaignId = 'campaign:test:0002';
    const before = await recordCampaignResult(db.sql, 'kev-exposed', campaignId, 'before');
    expect(before.urgent).toBeGreaterThan(0);
    const [kept] = await db.sql<{ ids: number[] }[]>`select counts -> 'urgentIds' as ids from hypothesis_results where id = ${before.id}`;

    // The firewall closes: nothing is exposed any more, so nothing matches at the end; every
    // finding urgent at the start either left act/attend or is still urgent outside the hypothesis.
    await db.sql`update assets set internet_facing = false where name = 'web-01'`;
    await rescoreFindings(db.sql, defaultPolicy(), { all: true }, { reason: 'campaign' });
    const after = await recordCampaignResult(db.sql, 'kev-exposed', campaignId, 'after');
    expect(after.matched).toBe(0);
    const tiers = await db.sql<{ tier: string }[]>`select tier from findings where id in ${db.sql(kept!.ids)}`;
    const stillUrgent = tiers.filter((t) => t.tier === 'act' || t.tier === 'attend').length;
    expect(after.counts).toMatchObject({
      urgentBefore: before.urgent,
      removedClosed: 0,
      removedRescored: before.urgent - stillUrgent,
      leftHypothesis: stillUrgent,
      added: 0,
    });
    expect(before.urgent - after.counts.removed! - after.counts.leftHypothesis! + after.counts.added!).toBe(after.urgent);
  });
});
