import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Sql } from '../../db/client.js';
import { noiseCounts } from '../../db/read-models/exposures.js';
import { newestKevHits } from '../../metrics/executive.js';
import { resolveRange, snapshotSeries, latestSnapshot } from '../../metrics/read.js';
import { computeMetrics, MetricsQueryError, takeSnapshot } from '../../metrics/snapshot.js';
import { executiveView, overviewView } from '../../metrics/views.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Program metrics over an estate written straight into the tables, every number derived by hand
// from the rows below. The program's first finding is 2024-05-10 (MTTD counts CVEs from then on).
//
//   asset            service   owner  facing  findings (open unless said)
//   pay-1            payments  alice  yes     f1 CVE-2024-0001 act 9.8 (KEV) ; f6 CVE-2024-0003 closed
//   pay-2            payments  alice  no      f2 CVE-2024-0001 attend 9.8 (KEV)
//   shop-1           shop      bob    yes     f3 CVE-2024-0002 act 8.1 (KEV, ransomware) ; f4 CVE-2024-0003 track 7.5
//   lab-1            -         carol  no      f5 CVE-2020-0009 attend 9.0 (KEV, old) ; f7 GHSA-x track* 5.0
//   payments (a business service record with revenue 5,000,000); shop-1 carries shop's 1,200,000.
//   Tickets: T1 (pay-1, alice, act) verified 100 h after detection, in time; T2 (lab-1, carol) never
//   acknowledged and overdue, escalated to level 2; T3 (pay-2, alice) acknowledged, escalated to level 1.

const HOUR = 3_600_000;
const NOW = new Date('2026-12-02T12:00:00Z');
const ago = (h: number) => new Date(NOW.getTime() - h * HOUR);
const day = (d: string) => new Date(`${d}T00:00:00Z`);

interface Seeded {
  f: Record<string, number>;
}

async function seed(sql: Sql): Promise<Seeded> {
  await sql`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('kev', 'kev-t', 3, 'k', 'active', now()), ('cve', 'cve-t', 4, 'c', 'active', now())`;
  await sql`insert into kev_entries (feed_version, cve, vendor, product, date_added, known_ransomware) values
    ('kev-t', 'CVE-2024-0001', 'Acme', 'Gateway', '2024-06-01', false),
    ('kev-t', 'CVE-2024-0002', 'Acme', 'Shop', '2024-07-15', true),
    ('kev-t', 'CVE-2020-0009', 'Old', 'Thing', '2021-01-01', false)`;
  await sql`insert into cve_records (feed_version, cve, state, date_published, sha256) values
    ('cve-t', 'CVE-2024-0001', 'PUBLISHED', '2024-05-20T00:00:00Z', 'a'),
    ('cve-t', 'CVE-2024-0002', 'PUBLISHED', '2024-07-01T00:00:00Z', 'b'),
    ('cve-t', 'CVE-2024-0003', 'PUBLISHED', '2024-05-15T00:00:00Z', 'c'),
    ('cve-t', 'CVE-2020-0009', 'PUBLISHED', '2020-06-01T00:00:00Z', 'd')`;
  const asset = async (name: string, a: { kind?: string; service?: string | null; owner?: string | null; facing?: boolean; revenue?: number }) => {
    const [row] = await sql<{ id: string }[]>`
      insert into assets (asset_key, kind, name, owner, business_service, internet_facing, annual_revenue)
      values (${`${a.kind ?? 'host'}:${name}`}, ${a.kind ?? 'host'}, ${name}, ${a.owner ?? null}, ${a.service ?? null}, ${a.facing ?? null}, ${a.revenue ?? null})
      returning id`;
    return Number(row!.id);
  };
  await asset('payments', { kind: 'business_service', revenue: 5_000_000 });
  const pay1 = await asset('pay-1', { service: 'payments', owner: 'alice', facing: true });
  const pay2 = await asset('pay-2', { service: 'payments', owner: 'alice', facing: false });
  const shop1 = await asset('shop-1', { service: 'shop', owner: 'bob', facing: true, revenue: 1_200_000 });
  const lab1 = await asset('lab-1', { owner: 'carol' });
  const scan = randomUUID();
  const finding = async (assetId: number, cve: string, f: { tier: string; cvss: number; seen: Date; score?: number; status?: string; ticket?: string }) => {
    const [row] = await sql<{ id: string }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, first_seen_at, first_scan_id, last_scan_id,
                            tier, score, status, ticket_key)
      values (${randomUUID()}, ${assetId}, 'vulnerability', ${cve}, 'pkg', '1.0', ${f.cvss >= 9 ? 'critical' : f.cvss >= 7 ? 'high' : 'medium'}, ${f.cvss},
              ${f.seen}, ${scan}, ${scan}, ${f.tier}, ${f.score ?? 10}, ${f.status ?? 'open'}, ${f.ticket ?? null})
      returning id`;
    return Number(row!.id);
  };
  const ticket = async (key: string, assetId: number, t: { owner: string; tier: string; state: string; ackDue: Date; due: Date; ack?: Date; resolved?: Date; verified?: Date; level?: number }) => {
    await sql`
      insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at, acknowledged_at, resolved_at, verified_at,
                           escalation_level, created_at)
      values (${key}, ${'remediation:' + key}, ${assetId}, 'pkg', '2.0', ${t.owner}, ${t.state}, ${t.tier}, ${t.ackDue}, ${t.due}, ${t.ack ?? null},
              ${t.resolved ?? null}, ${t.verified ?? null}, ${t.level ?? 0}, ${ago(200)})`;
  };
  await ticket('T1', pay1, { owner: 'alice', tier: 'act', state: 'verified', ackDue: ago(176), due: ago(50), ack: ago(190), resolved: ago(150), verified: ago(100) });
  await ticket('T2', lab1, { owner: 'carol', tier: 'attend', state: 'new', ackDue: ago(24), due: ago(10), level: 2 });
  await ticket('T3', pay2, { owner: 'alice', tier: 'attend', state: 'in_progress', ackDue: ago(-24), due: ago(-100), ack: ago(5), level: 1 });
  const f: Record<string, number> = {};
  f.f1 = await finding(pay1, 'CVE-2024-0001', { tier: 'act', cvss: 9.8, seen: day('2024-06-03'), score: 90 });
  f.f2 = await finding(pay2, 'CVE-2024-0001', { tier: 'attend', cvss: 9.8, seen: day('2024-06-10'), score: 60, ticket: 'T3' });
  f.f3 = await finding(shop1, 'CVE-2024-0002', { tier: 'act', cvss: 8.1, seen: day('2024-07-11'), score: 80 });
  f.f4 = await finding(shop1, 'CVE-2024-0003', { tier: 'track', cvss: 7.5, seen: day('2024-05-20') });
  f.f5 = await finding(lab1, 'CVE-2020-0009', { tier: 'attend', cvss: 9.0, seen: day('2024-05-10'), ticket: 'T2' });
  f.f6 = await finding(pay1, 'CVE-2024-0003', { tier: 'track', cvss: 7.5, seen: day('2024-05-25'), status: 'closed' });
  f.f7 = await finding(lab1, 'GHSA-xxxx-yyyy-zzzz', { tier: 'track*', cvss: 5.0, seen: day('2024-08-01') });
  // T1's finding: detected (first seen) 200 h before now, verified 100 h later.
  f.f8 = await finding(pay1, 'CVE-2023-1111', { tier: 'act', cvss: 9.1, seen: ago(200), status: 'closed', ticket: 'T1' });
  await sql`insert into scopes (name, selector) values ('payments', ${sql.json({ businessServices: ['payments'] })})`;
  return { f };
}

afterAll(closeTestDatabases);

describe('program metrics over a seeded estate', () => {
  let db: Database;
  let seeded: Seeded;
  beforeAll(async () => {
    db = await migratedTestDatabase();
    seeded = await seed(db.sql);
  });

  it('counts the exploitable backlog, KEV and internet-facing exposure', async () => {
    const m = await computeMetrics(db.sql, undefined, NOW);
    expect(m.asOf).toBe(NOW.toISOString());
    expect(m.backlog).toEqual({ open: 6, act: 2, attend: 2, actAttend: 4, kev: 4, kevActAttend: 4, internetFacing: 2 });
    // The noise report is the read model's, not a second derivation: 5 critical/high, 4 of them urgent.
    expect(m.noise).toEqual(await noiseCounts(db.sql));
    expect(m.noise).toMatchObject({ criticalHighByCvss: 5, criticalHighActAttend: 4, reduction: 0.2 });
    const scoped = await computeMetrics(db.sql, { businessServices: ['payments'] }, NOW);
    expect(scoped.backlog).toEqual({ open: 2, act: 1, attend: 1, actAttend: 2, kev: 2, kevActAttend: 2, internetFacing: 1 });
  });

  it('measures MTTD from publication and from the KEV listing, for CVEs since the first finding', async () => {
    const { mttd } = await computeMetrics(db.sql, undefined, NOW);
    // From publication: 0001 14 d, 0002 10 d, 0003 5 d (0009 was published before the program began).
    // From KEV: 0001 2 d, 0002 found 4 days before it was listed: 0.
    expect(mttd).toEqual({ fromPublished: { count: 3, medianDays: 10, p90Days: 13.2 }, fromKevAdded: { count: 2, medianDays: 1, p90Days: 1.8 } });
  });

  it('maps exposure to business services and their revenue', async () => {
    const { business } = await computeMetrics(db.sql, undefined, NOW);
    expect(business).toEqual({
      services: [
        { name: 'payments', annualRevenue: 5_000_000, urgent: 2, act: 1, kev: 2, internetFacing: 1, assets: 2, open: 2 },
        { name: 'shop', annualRevenue: 1_200_000, urgent: 1, act: 1, kev: 1, internetFacing: 1, assets: 1, open: 2 },
      ],
      servicesAtRisk: 2,
      revenueAtRisk: 6_200_000,
      unmappedUrgent: 1,
    });
  });

  it('takes MTTR, SLA attainment and overdue owners from the response metrics, and escalations from the tickets', async () => {
    const m = await computeMetrics(db.sql, undefined, NOW);
    expect(m.mttr.total).toEqual({ count: 1, medianHours: 100, p90Hours: 100 });
    expect(m.mttr.byOwner.map((r) => [r.key, r.tickets, r.toVerify.medianHours, r.overdue])).toEqual([
      ['alice', 2, 100, 0],
      ['carol', 1, null, 1],
    ]);
    expect(m.mttr.byTier.map((r) => r.key).sort()).toEqual(['act', 'attend']);
    expect(m.mttr.byBusinessService.find((r) => r.key === 'payments')).toMatchObject({ tickets: 2, fixedWithinSla: 1 });
    expect(m.sla).toEqual({
      acknowledged: { due: 3, met: 2, share: 2 / 3 },
      fixed: { due: 2, met: 1, share: 0.5 },
      tickets: 3,
      open: 2,
      overdue: 1,
      unacknowledgedOverdue: 1,
    });
    expect(m.topOverdueOwners).toEqual([{ owner: 'carol', overdue: 1, unacknowledgedOverdue: 1, open: 1 }]);
    expect(m.escalations).toEqual({ open: 2, byLevel: [{ level: 1, tickets: 1 }, { level: 2, tickets: 1 }] });
  });

  it('lists the newest KEV hits, newest listing first, most urgent first within a CVE', async () => {
    const hits = await newestKevHits(db.sql);
    expect(hits.map((h) => [h.cve, h.kevDateAdded, h.findingId])).toEqual([
      ['CVE-2024-0002', '2024-07-15', seeded.f.f3],
      ['CVE-2024-0001', '2024-06-01', seeded.f.f1],
      ['CVE-2024-0001', '2024-06-01', seeded.f.f2],
      ['CVE-2020-0009', '2021-01-01', seeded.f.f5],
    ]);
    expect(hits[0]).toMatchObject({ knownRansomware: true, assetName: 'shop-1', owner: 'bob', businessService: 'shop', internetFacing: true, tier: 'act' });
    expect((await newestKevHits(db.sql, { limit: 2, perCve: 1 })).map((h) => h.cve)).toEqual(['CVE-2024-0002', 'CVE-2024-0001']);
    expect((await newestKevHits(db.sql, { scope: { businessServices: ['payments'] } })).map((h) => h.findingId)).toEqual([seeded.f.f1, seeded.f.f2]);
  });

  it('keeps one row per day and scope however often a snapshot is taken', async () => {
    const first = await takeSnapshot(db.sql, '2026-12-01', ago(36));
    expect(first).toEqual({ day: '2026-12-01', scopes: ['*', 'payments'] });
    await takeSnapshot(db.sql, '2026-12-01', ago(30));
    const rows = await db.sql`select scope, taken_at from metric_snapshots where day = '2026-12-01' order by scope`;
    expect(rows.map((r) => [r.scope, (r.taken_at as Date).toISOString()])).toEqual([
      ['*', ago(30).toISOString()],
      ['payments', ago(30).toISOString()],
    ]);
    const latest = await latestSnapshot(db.sql, 'payments');
    expect(latest?.metrics.backlog.actAttend).toBe(2);
  });

  it('reads a trend back from the snapshots, and the overview and executive views from the latest', async () => {
    // The next day one urgent finding is fixed: the trend goes from 4 to 3.
    await db.sql`update findings set status = 'closed' where id = ${seeded.f.f2!}`;
    try {
      await takeSnapshot(db.sql, '2026-12-02', NOW);
      const trend = await snapshotSeries(db.sql, { from: '2026-11-01', to: '2026-12-02' });
      expect(trend.map((p) => [p.day, p.actAttend, p.kev, p.internetFacing, p.mttrMedianHours, p.mttdMedianDays])).toEqual([
        ['2026-12-01', 4, 4, 2, 100, 10],
        ['2026-12-02', 3, 3, 2, 100, 10],
      ]);
      const overview = await overviewView(db.sql, { riskAppetite: 3, now: NOW });
      expect(overview.snapshot?.day).toBe('2026-12-02');
      expect(overview.backlog?.actAttend).toBe(3);
      expect(overview.appetite).toEqual({ appetite: 3, current: 3, headroom: 0, status: 'within', daysAbove: 1, daysRecorded: 2 });
      expect(overview.escalations).toEqual([{ level: 1, tickets: 1 }, { level: 2, tickets: 1 }]);
      expect(overview.newestKevHits.map((h) => h.findingId)).toEqual([seeded.f.f3, seeded.f.f1, seeded.f.f5]);
      const executive = await executiveView(db.sql, { riskAppetite: 2, now: NOW });
      expect(executive.appetite).toMatchObject({ current: 3, headroom: -1, status: 'above', daysAbove: 2 });
      expect(executive.business?.services[0]).toMatchObject({ name: 'payments', urgent: 1 });
      expect(executive.trend).toHaveLength(2);
      const scoped = await overviewView(db.sql, { scope: { name: 'payments', selector: { businessServices: ['payments'] } }, riskAppetite: 3, now: NOW });
      expect(scoped.backlog?.actAttend).toBe(1);
      expect(scoped.escalations).toEqual([{ level: 1, tickets: 1 }]);
    } finally {
      await db.sql`update findings set status = 'open' where id = ${seeded.f.f2!}`;
    }
  });

  it('shows an empty view before the first snapshot of a scope', async () => {
    const view = await executiveView(db.sql, { scope: { name: 'nothing-yet' }, riskAppetite: 10, now: NOW });
    expect(view).toMatchObject({ snapshot: null, backlog: null, trend: [], topOverdueOwners: [], appetite: { status: 'unknown', current: null } });
  });

  it('refuses a day that is not a calendar day and a range too long or reversed, naming the field', async () => {
    await expect(takeSnapshot(db.sql, '2026-02-30')).rejects.toThrow(new MetricsQueryError('day', 'must be a calendar day as YYYY-MM-DD (got "2026-02-30")'));
    expect(() => resolveRange({ from: '2026-12-03', to: '2026-12-02' })).toThrow(/^from: must not be after to \(2026-12-02\)$/);
    expect(() => resolveRange({ from: '2025-01-01', to: '2026-12-02' })).toThrow(/^from: a range holds at most 366 days \(got 701\)$/);
    expect(resolveRange({ to: '2026-12-02' })).toEqual({ scope: '*', from: '2026-09-04', to: '2026-12-02' });
  });
});
