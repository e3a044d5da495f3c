import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type Database, type Sql } from '../../db/client.js';
import { responseMetrics, ResponseQueryError, ticketResponse, type ResponseMetrics } from '../../validation/response.js';
import { closeTestDatabases, json, migratedTestDatabase, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// Response validation over golden tickets written straight into the tables with known instants:
// six tickets of three owners, two tiers and two business services (and one without), each one
// lifecycle the metrics must tell apart. Hours are counted from T0, 200 hours before `now`.

const HOUR = 3_600_000;

/** The estate, relative to t0; returns the instant the expected numbers hold for. */
async function seed(sql: Sql, t0: number): Promise<Date> {
  const at = (hours: number) => new Date(t0 + hours * HOUR);
  const scan = randomUUID();
  const asset = async (key: string, owner: string, service: string | null) => {
    const [row] = await sql<{ id: string }[]>`
      insert into assets (asset_key, kind, name, owner, business_service) values (${key}, 'host', ${key}, ${owner}, ${service}) returning id`;
    return Number(row!.id);
  };
  const ticket = async (
    key: string,
    assetId: number,
    t: { owner: string; tier: string; state: string; ackDue: number; due: number; ack?: number; resolved?: number; updated?: number },
  ) => {
    await sql`
      insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at,
                           acknowledged_at, resolved_at, created_at, updated_at)
      values (${key}, ${'remediation:' + key}, ${assetId}, 'openssl', '3.0.8', ${t.owner}, ${t.state}, ${t.tier}, ${at(t.ackDue)}, ${at(t.due)},
              ${t.ack === undefined ? null : at(t.ack)}, ${t.resolved === undefined ? null : at(t.resolved)}, ${at(0)}, ${at(t.updated ?? 0)})`;
  };
  /** A finding of the ticket, first seen at `seen`; `history` is its score changes, oldest first (the last one is kept on the finding). */
  const finding = async (ticketKey: string, assetId: number, seen: number, history: Array<{ tier: string; at: number }>) => {
    const last = history.at(-1);
    const [row] = await sql<{ id: string }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, first_seen_at, first_scan_id, last_scan_id,
                            tier, score, ticket_key, change_id, changed_at, change_reason, change_policy)
      values (${randomUUID()}, ${assetId}, 'vulnerability', 'CVE-2023-0286', 'openssl', '3.0.7', 'high', ${at(seen)}, ${scan}, ${scan},
              ${last?.tier ?? null}, ${last ? 50 : null}, ${ticketKey}, ${last ? sql`nextval('score_changes_id_seq')` : null},
              ${last ? at(last.at) : null}, ${last ? 'scored' : null}, ${last ? 'exploitability-1' : null})
      returning id`;
    for (const h of history.slice(0, -1)) {
      await sql`
        insert into score_changes (finding_id, asset_id, tier, score, policy_version, reason, at)
        values (${row!.id}, ${assetId}, ${h.tier}, 10, 'exploitability-1', 'scored', ${at(h.at)})`;
    }
  };

  const pay1 = await asset('host:pay-1', 'alice', 'payments');
  const pay2 = await asset('host:pay-2', 'alice', 'payments');
  const shop1 = await asset('host:shop-1', 'bob', 'shop');
  const shop2 = await asset('host:shop-2', 'bob', 'shop');
  const lab = await asset('host:lab-1', 'carol', null);
  const pay3 = await asset('host:pay-3', 'carol', 'payments');

  // A: acknowledged in 2 h, resolved in 20 h, verified after 30 h; both within SLA.
  await ticket('A', pay1, { owner: 'alice', tier: 'act', state: 'verified', ackDue: 24, due: 72, ack: 2, resolved: 20, updated: 30 });
  await finding('A', pay1, -48, [{ tier: 'act', at: 0 }]);
  // B: seen at 0 as track, urgent from 24 h (detection); acknowledged late (30 h after), fixed in time, verified 80 h after.
  await ticket('B', pay2, { owner: 'alice', tier: 'act', state: 'verified', ackDue: 48, due: 96, ack: 54, resolved: 84, updated: 104 });
  await finding('B', pay2, 0, [{ tier: 'track', at: 0 }, { tier: 'act', at: 24 }]);
  // C: acknowledged in 10 h, resolved, re-opened by a failed verification (a second escalation cycle); due later.
  await ticket('C', shop1, { owner: 'bob', tier: 'attend', state: 'in_progress', ackDue: 48, due: 240, ack: 10 });
  await finding('C', shop1, -5, [{ tier: 'attend', at: 0 }]);
  await sql`insert into escalations (ticket_key, phase, level, cycle, reason) values ('C', 'resolution', 1, 1, 'overdue after re-opening')`;
  // D: never scored into history (detected when first seen), never acknowledged, past both deadlines.
  await ticket('D', shop2, { owner: 'bob', tier: 'attend', state: 'new', ackDue: 48, due: 120 });
  await finding('D', shop2, 0, []);
  // E: acknowledged in 1 h, risk accepted from 5 h to 105 h (the SLA paused 100 h: due 72 -> 172), still open: overdue.
  // Its second escalation cycle comes from the expired acceptance, not from a failed verification.
  await ticket('E', lab, { owner: 'carol', tier: 'act', state: 'in_progress', ackDue: 24, due: 72, ack: 1 });
  await finding('E', lab, 0, [{ tier: 'act', at: 0 }]);
  await sql`insert into risk_acceptances (ticket_key, requester, approver, reason, accepted_at, expires_at, ended_at)
            values ('E', 'carol', 'dana', 'compensating WAF rule in place', ${at(5)}, ${at(105)}, ${at(105)})`;
  await sql`insert into escalations (ticket_key, phase, level, cycle, reason) values ('E', 'resolution', 1, 1, 'overdue after the acceptance expired')`;
  // F: resolved in 10 h without an explicit acknowledgement; waits for the verifying scan, in time so far.
  await ticket('F', pay3, { owner: 'carol', tier: 'attend', state: 'resolved', ackDue: 24, due: 100, resolved: 10 });
  await finding('F', pay3, 0, [{ tier: 'attend', at: 0 }]);
  return at(200);
}

const t0 = Math.floor(Date.now() / HOUR) * HOUR - 200 * HOUR;
const iso = (hours: number) => new Date(t0 + hours * HOUR).toISOString();

/** What the six tickets give for the whole estate at t0 + 200 h. */
const TOTAL: ResponseMetrics = {
  tickets: 6,
  // A 2, B 30, C 10, E 1, F 10 (its resolution acknowledges it).
  toAcknowledge: { count: 5, medianHours: 10, p90Hours: 22 },
  toFix: { count: 2, medianHours: 40, p90Hours: 56 },
  toVerify: { count: 2, medianHours: 55, p90Hours: 75 },
  // Acknowledgement decided for all but none pending: B and D missed. Fix decided for A, B (met), D, E (missed).
  sla: { acknowledged: { due: 6, met: 4, share: 4 / 6 }, fixed: { due: 4, met: 2, share: 0.5 } },
  open: 3,
  overdue: 2,
  unacknowledgedOverdue: 1,
  awaitingVerification: 1,
  adequacy: { resolved: 4, verified: 2, reopened: 1, failedShare: 0.25 },
};

const ZERO: ResponseMetrics = {
  tickets: 0,
  toAcknowledge: { count: 0, medianHours: null, p90Hours: null },
  toFix: { count: 0, medianHours: null, p90Hours: null },
  toVerify: { count: 0, medianHours: null, p90Hours: null },
  sla: { acknowledged: { due: 0, met: 0, share: null }, fixed: { due: 0, met: 0, share: null } },
  open: 0,
  overdue: 0,
  unacknowledgedOverdue: 0,
  awaitingVerification: 0,
  adequacy: { resolved: 0, verified: 0, reopened: 0, failedShare: null },
};

afterAll(closeTestDatabases);

describe('response metrics over golden tickets', () => {
  let db: Database;
  let now: Date;
  beforeAll(async () => {
    db = await migratedTestDatabase();
    now = await seed(db.sql, t0);
  });

  it('counts speed, SLA attainment, open work and failed verifications for the whole estate', async () => {
    const report = await responseMetrics(db.sql, { now });
    expect(report).toEqual({ asOf: now.toISOString(), groupBy: null, since: null, until: null, total: TOTAL, groups: [] });
  });

  it('groups by owner, tier and business service', async () => {
    const byOwner = await responseMetrics(db.sql, { now, groupBy: 'owner' });
    expect(byOwner.total).toEqual(TOTAL);
    const owner = Object.fromEntries(byOwner.groups.map((g) => [g.key, g]));
    expect(Object.keys(owner).sort()).toEqual(['alice', 'bob', 'carol']);
    expect(owner.alice).toMatchObject({
      tickets: 2,
      toAcknowledge: { count: 2, medianHours: 16 },
      toFix: { count: 2, medianHours: 40, p90Hours: 56 },
      sla: { acknowledged: { due: 2, met: 1, share: 0.5 }, fixed: { due: 2, met: 2, share: 1 } },
      open: 0,
      adequacy: { resolved: 2, verified: 2, reopened: 0, failedShare: 0 },
    });
    expect(owner.alice!.toAcknowledge.p90Hours).toBeCloseTo(27.2, 9);
    expect(owner.bob).toMatchObject({
      tickets: 2,
      toAcknowledge: { count: 1, medianHours: 10, p90Hours: 10 },
      toVerify: { count: 0, medianHours: null, p90Hours: null },
      sla: { acknowledged: { due: 2, met: 1, share: 0.5 }, fixed: { due: 1, met: 0, share: 0 } },
      open: 2,
      overdue: 1,
      unacknowledgedOverdue: 1,
      adequacy: { resolved: 1, verified: 0, reopened: 1, failedShare: 1 },
    });
    expect(owner.carol).toMatchObject({
      tickets: 2,
      toAcknowledge: { count: 2, medianHours: 5.5 },
      sla: { acknowledged: { due: 2, met: 2, share: 1 }, fixed: { due: 1, met: 0, share: 0 } },
      open: 1,
      overdue: 1,
      awaitingVerification: 1,
      adequacy: { resolved: 1, verified: 0, reopened: 0, failedShare: 0 },
    });
    expect(owner.carol!.toAcknowledge.p90Hours).toBeCloseTo(9.1, 9);

    const byTier = await responseMetrics(db.sql, { now, groupBy: 'tier' });
    expect(byTier.groups.map((g) => [g.key, g.tickets, g.sla.fixed.met, g.sla.fixed.due, g.overdue])).toEqual([
      ['act', 3, 2, 3, 1],
      ['attend', 3, 0, 1, 1],
    ]);

    const byService = await responseMetrics(db.sql, { now, groupBy: 'business_service' });
    // Largest first; the ticket whose asset has no business service is its own group, last.
    expect(byService.groups.map((g) => [g.key, g.tickets, g.toAcknowledge.medianHours, g.adequacy.reopened])).toEqual([
      ['payments', 3, 10, 0],
      ['shop', 2, 10, 1],
      [null, 1, 1, 0],
    ]);
  });

  it('limits the tickets to those detected in a window and to a scope', async () => {
    // Only B was detected after 12 h: it became urgent at 24 h, not when first seen.
    const late = await responseMetrics(db.sql, { now, since: new Date(iso(12)) });
    expect(late.total).toMatchObject({ tickets: 1, toAcknowledge: { count: 1, medianHours: 30, p90Hours: 30 }, toVerify: { medianHours: 80 } });
    expect(late.since).toBe(iso(12));
    const early = await responseMetrics(db.sql, { now, until: new Date(iso(12)), groupBy: 'owner' });
    expect(early.total.tickets).toBe(5);
    expect(early.groups.find((g) => g.key === 'alice')?.tickets).toBe(1);
    const shop = await responseMetrics(db.sql, { now, scope: { businessServices: ['shop'] } });
    expect(shop.total).toMatchObject({ tickets: 2, open: 2, adequacy: { reopened: 1 } });
    // Nothing in the window: zeros and nulls, never NaN.
    expect((await responseMetrics(db.sql, { now, since: new Date(iso(1000)), groupBy: 'tier' })).total).toEqual(ZERO);
  });

  it("gives one ticket's response with the same definitions", async () => {
    expect(await ticketResponse(db.sql, 'B', now)).toEqual({
      detectedAt: iso(24),
      detectedFrom: 'became-urgent',
      acknowledgedAt: iso(54),
      fixedAt: iso(84),
      verifiedAt: iso(104),
      hoursToAcknowledge: 30,
      hoursToFix: 60,
      hoursToVerify: 80,
      ackDueAt: iso(48),
      dueAt: iso(96),
      slaPausedHours: 0,
      acknowledgedWithinSla: false,
      fixedWithinSla: true,
      reopened: false,
      overdue: false,
    });
    expect(await ticketResponse(db.sql, 'D', now)).toMatchObject({
      detectedAt: iso(0),
      detectedFrom: 'first-seen',
      acknowledgedAt: null,
      hoursToAcknowledge: null,
      acknowledgedWithinSla: false,
      fixedWithinSla: false,
      overdue: true,
    });
    expect(await ticketResponse(db.sql, 'E', now)).toMatchObject({ slaPausedHours: 100, dueAt: iso(172), overdue: true, reopened: false, fixedWithinSla: false });
    expect(await ticketResponse(db.sql, 'C', now)).toMatchObject({ reopened: true, fixedAt: null, fixedWithinSla: null, acknowledgedWithinSla: true });
    // Resolved in time, waiting for the scan: undecided, not missed.
    expect(await ticketResponse(db.sql, 'F', now)).toMatchObject({ acknowledgedAt: iso(10), fixedAt: iso(10), verifiedAt: null, fixedWithinSla: null });
    expect(await ticketResponse(db.sql, 'nope', now)).toBeUndefined();
  });

  it('refuses a bad grouping or window, naming the field', async () => {
    await expect(responseMetrics(db.sql, { groupBy: 'team' as never })).rejects.toThrow(new ResponseQueryError('groupBy', 'must be one of tier, owner, business_service (got "team")'));
    await expect(responseMetrics(db.sql, { since: new Date('not a date') })).rejects.toThrow(/^since: is not a valid date-time$/);
    await expect(responseMetrics(db.sql, { since: new Date(iso(10)), until: new Date(iso(5)) })).rejects.toThrow(/^until: must be after since/);
  });

  it('has zeros and nulls, not NaN, when there are no tickets', async () => {
    const empty = await migratedTestDatabase();
    expect(await responseMetrics(empty.sql, { groupBy: 'owner' })).toMatchObject({ total: ZERO, groups: [] });
  });
});

describe('GET /api/v1/metrics/response and the response blocks, through the running API', () => {
  let platform: TestPlatform;
  let db: Database;
  beforeAll(async () => {
    platform = await startTestPlatform({}, { api: true, worker: false });
    db = connectDatabase(platform.databaseUrl, { max: 2 });
    await seed(db.sql, t0);
  });
  afterAll(async () => {
    await db?.close();
    await platform?.stop();
  });

  it('answers the metrics in the named schema the OpenAPI document gives', async () => {
    const report = await json<{ asOf: string; groupBy: string; total: ResponseMetrics; groups: Array<ResponseMetrics & { key: string | null }> }>(
      platform.api('/api/v1/metrics/response?groupBy=owner'),
    );
    expect(report.groupBy).toBe('owner');
    // The API counts at its own now, within the hour after t0 + 200 h: no deadline falls in between.
    expect(Date.parse(report.asOf) - (t0 + 200 * HOUR)).toBeLessThan(2 * HOUR);
    expect(report.total).toEqual(TOTAL);
    expect(report.groups.map((g) => [g.key, g.tickets, g.open, g.adequacy.reopened])).toEqual([
      ['alice', 2, 0, 0],
      ['bob', 2, 2, 1],
      ['carol', 2, 1, 0],
    ]);

    const doc = await json<{ paths: Record<string, any>; components: { schemas: Record<string, any> } }>(platform.api('/api/v1/openapi.json'));
    const ok = doc.paths['/api/v1/metrics/response'].get.responses['200'].content['application/json'].schema;
    expect(ok).toEqual({ $ref: '#/components/schemas/ResponseReport' });
    const schema = doc.components.schemas.ResponseReport;
    expect(Object.keys(report).sort()).toEqual(Object.keys(schema.properties).sort());
    expect(schema.properties.total).toEqual({ $ref: '#/components/schemas/ResponseMetrics' });
    expect(Object.keys(report.total).sort()).toEqual([...doc.components.schemas.ResponseMetrics.required].sort());
    // The ticket and exposure details extend their base schemas (allOf) with the same block.
    const extension = (name: string) => doc.components.schemas[name].allOf.find((s: { properties?: object }) => s.properties).properties;
    expect(extension('TicketDetail').response.allOf[0]).toEqual({ $ref: '#/components/schemas/TicketResponse' });
    expect(extension('ExposureDetail').response.anyOf).toEqual([{ $ref: '#/components/schemas/TicketResponse' }, { type: 'null' }]);
  });

  it("shows one ticket's response in the ticket and in its exposures", async () => {
    const ticket = await json<{ key: string; workflow: unknown; response: Record<string, unknown> }>(platform.api('/api/v1/tickets/B'));
    expect(ticket.workflow).toBeNull();
    expect(ticket.response).toMatchObject({
      detectedAt: iso(24),
      detectedFrom: 'became-urgent',
      hoursToAcknowledge: 30,
      hoursToFix: 60,
      hoursToVerify: 80,
      acknowledgedWithinSla: false,
      fixedWithinSla: true,
      reopened: false,
    });
    const [finding] = await db.sql<{ id: string }[]>`select id from findings where ticket_key = 'B'`;
    const exposure = await json<{ ticketKey: string; response: unknown }>(platform.api(`/api/v1/exposures/${finding!.id}`));
    expect(exposure.ticketKey).toBe('B');
    expect(exposure.response).toEqual(ticket.response);
    // A finding on no ticket has no response yet.
    const [loose] = await db.sql<{ id: string }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, first_scan_id, last_scan_id)
      select 'loose', asset_id, kind, issue_id, 'zlib', '1.2.11', 'low', first_scan_id, last_scan_id from findings where ticket_key = 'B'
      returning id`;
    expect(await json<{ response: unknown }>(platform.api(`/api/v1/exposures/${loose!.id}`))).toMatchObject({ ticketKey: null, response: null });
  });

  it('prints the table and the JSON through `ctem metrics response`', async () => {
    const ctem = (args: string[]) => runCtem(args, platformEnv(platform));
    const table = await ctem(['metrics', 'response', '--group-by', 'owner']);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[2]).toMatch(/^owner +tickets +ack h med\/p90 +fix h med\/p90 +verify h med\/p90 +ack in SLA +fix in SLA +open +overdue +unacked overdue +verifying +re-opened$/);
    const cells = (owner: string) => lines.find((l) => l.startsWith(owner))!.split(/ {2,}/);
    expect(cells('alice')).toEqual(['alice', '2', '16 / 27.2', '40 / 56', '55 / 75', '50% (1/2)', '100% (2/2)', '0', '0', '0', '0', '0/2 0%']);
    expect(cells('bob')).toEqual(['bob', '2', '10 / 10', '-', '-', '50% (1/2)', '0% (0/1)', '2', '1', '1', '0', '1/1 100%']);
    expect(cells('total')).toEqual(['total', '6', '10 / 22', '40 / 56', '55 / 75', '67% (4/6)', '50% (2/4)', '3', '2', '1', '1', '1/4 25%']);

    const asJson = await ctem(['metrics', 'response', '--json', '--since', iso(12)]);
    expect(asJson.code).toBe(0);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ groupBy: null, since: iso(12), total: { tickets: 1, toAcknowledge: { medianHours: 30 } } });

    const wrong = await ctem(['metrics', 'response', '--group-by', 'team']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^--group-by: must be one of tier, owner, business_service \(got team\)/);
    const badDate = await ctem(['metrics', 'response', '--since', 'yesterday']);
    expect(badDate.code).toBe(1);
    expect(badDate.stderr).toMatch(/^metrics failed: HTTP 400 .*since/);
  });

  it('refuses a bad window or scope with the field at fault', async () => {
    const garbage = await platform.api('/api/v1/metrics/response?since=yesterday');
    expect(garbage.status).toBe(400);
    expect(JSON.stringify(await garbage.json())).toContain('since');
    const backwards = await platform.api(`/api/v1/metrics/response?since=${iso(10)}&until=${iso(5)}`);
    expect(backwards.status).toBe(400);
    expect(await backwards.json()).toMatchObject({ error: { code: 'invalid_request', details: { field: 'until' } } });
    const team = await platform.api('/api/v1/metrics/response?groupBy=team');
    expect(team.status).toBe(400);
    // A date alone is midnight UTC: every ticket was detected before tomorrow.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(await json<{ since: string; total: { tickets: number } }>(platform.api(`/api/v1/metrics/response?until=${tomorrow}`))).toMatchObject({
      until: `${tomorrow}T00:00:00.000Z`,
      total: { tickets: 6 },
    });
    const scope = await platform.api('/api/v1/metrics/response?scope=nowhere');
    expect(scope.status).toBe(404);
  });
});
