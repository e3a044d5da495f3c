import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import type { RemediationState } from '../../workflows/remediation/messages.js';
import { closeTestDatabases, eventually, json } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { preparedTestDatabase, startTimeSkippingPlatform, type TimeSkippingPlatform } from './support/time-skipping.js';

// The remediation workflow's timers with the SLAs of a real deployment (hours and days), on
// Temporal's time-skipping test server: the escalation ladder up the management chain, the
// resolution SLA after an acknowledgement, a missed webhook caught by the reconciliation read, and
// a risk acceptance that expires. Activities, PostgreSQL, the API and the ServiceNow simulator (over
// HTTP, with its webhooks) are all real; only the server's clock jumps.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ACK = 4 * HOUR;
const INTERVAL = 8 * HOUR;
const RECONCILE = 6 * HOUR;
const WINDOW = 5 * 60_000;

type Detail = TicketRow & {
  escalations: Array<{ phase: string; level: number; notifiedUser: string }>;
  riskAcceptances: Array<{ requester: string; approver: string; reason: string; acceptedAt: string; expiresAt: string; endedAt: string | null }>;
  lines: Array<{ package: string; packages: string[] }>;
  workflow: RemediationState;
};

let database: Database;
let platform: TimeSkippingPlatform;

beforeAll(async () => {
  database = await preparedTestDatabase();
});

afterAll(async () => {
  await closeTestDatabases();
});

/**
 * A server of its own per test (the database is shared; images differ): each test moves the clock
 * as far as its story needs, and no workflow of another test fires timers on the way. Reconciliation reads only where a test needs
 * them: over thirty days they would be a hundred activities per ticket.
 */
async function start(reconcileInterval = '0s'): Promise<void> {
  platform = await startTimeSkippingPlatform(database, {
    CTEM_SLA_ACK: '4h',
    CTEM_ESCALATION_INTERVAL: '8h',
    CTEM_TICKET_RECONCILE_INTERVAL: reconcileInterval,
    CTEM_ESCALATION_DIGEST_WINDOW: '5m',
  });
}

afterEach(async () => {
  const stopping = platform;
  platform = undefined!; // a test that fails before start() must not stop the previous one again
  await stopping?.stop();
});

const post = (path: string, body: unknown) => platform.api(path, { method: 'POST', body: JSON.stringify(body) });
const detail = (key: string) => json<Detail>(platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`));
const incident = (sysId: string) => platform.simulator.records('incident').find((r) => r.sys_id === sysId)!;
const workNotes = (sysId: string) =>
  platform.simulator
    .records('sys_journal_field')
    .filter((r) => r.element === 'work_notes' && r.element_id === sysId)
    .map((r) => r.value ?? '');

/** Lets the server's clock run to `at` (workflow time), firing every timer due on the way. */
async function skipTo(at: number): Promise<void> {
  const now = await platform.env.currentTimeMs();
  if (at > now) await platform.env.sleep(at - now);
}

/** Scans an image through the API and waits for its golden ticket for `component` to be open and waiting. */
/** The opened ticket whose lines name the package. */
async function openedTicket(target: string, pkg: string): Promise<Detail> {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, {
    method: 'POST',
    body: imageReport(target),
  });
  expect(res.status).toBe(202);
  return eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=1000'))).items;
      for (const t of items.filter((x) => x.asset.name === target && x.externalSysId)) {
        const d = await detail(t.key);
        if (d.lines.some((l) => l.packages.includes(pkg))) return d.workflow?.phase === 'awaiting-acknowledgement' ? d : undefined;
      }
      return undefined;
    },
    { what: `opened ticket for ${pkg} on ${target}`, timeoutMs: 60_000 },
  );
}

describe('the escalation ladder', () => {
  it('climbs one manager per interval after the acknowledgement deadline, stops at the top, and stops at acknowledgement', async () => {
    await start();
    platform.notifier.failuresLeft = 2; // the notifier fails twice: the activity retries, nothing is noted twice
    const ticket = await openedTicket('ts/ladder:1', 'org.springframework:spring-beans');
    const key = ticket.key;
    const ackDueAt = Date.parse(ticket.workflow.ackDueAt);
    expect(ticket.tier).toBe('act');

    // Just before the deadline: nobody is escalated to.
    await skipTo(ackDueAt - 60_000);
    expect((await detail(key)).escalations).toEqual([]);

    // Level 1 at the deadline, then one level per interval up to the top of the chain.
    await skipTo(ackDueAt + 2 * INTERVAL + 60_000);
    const top = await eventually(
      async () => {
        const d = await detail(key);
        return d.workflow.topOfChainReached && d.escalations.length === 3 ? d : undefined;
      },
      { what: 'three escalations' },
    );
    expect(top.escalations.map((e) => [e.phase, e.level, e.notifiedUser])).toEqual([
      ['acknowledgement', 1, 'jonas.weber'],
      ['acknowledgement', 2, 'priya.natarajan'],
      ['acknowledgement', 3, 'morgan.blake'],
    ]);
    expect(top.workflow.escalationLevel).toBe(3);
    // Workflow time: the last escalation came two intervals after the deadline.
    expect(Date.parse(top.workflow.lastEscalationAt!)).toBeGreaterThanOrEqual(ackDueAt + 2 * INTERVAL);
    expect(top.escalationLevel).toBe(3);

    // Each manager hears of it once, in the digest of their round (a window after the escalation):
    // the notifier failed twice first, and the retried digest was delivered once.
    await skipTo(ackDueAt + 2 * INTERVAL + WINDOW + 2 * 60_000);
    const lines = await eventually(async () => (platform.notifier.linesFor(key).length === 3 ? platform.notifier.linesFor(key) : undefined), {
      what: 'three digests',
    });
    expect(lines.map(({ digest, line }) => [digest.manager.userName, line.phase, line.level])).toEqual([
      ['jonas.weber', 'acknowledgement', 1],
      ['priya.natarajan', 'acknowledgement', 2],
      ['morgan.blake', 'acknowledgement', 3],
    ]);
    expect(platform.notifier.deliveries).toBe(3);
    expect(lines[0]!.digest.manager).toMatchObject({ userName: 'jonas.weber', name: 'Jonas Weber' });
    expect(lines[0]!.line).toMatchObject({ ticketNumber: ticket.externalNumber, tier: 'act', owner: { userName: 'alex.romero', name: 'Alex Romero' } });
    expect(lines[0]!.line.ticketUrl).toContain(ticket.externalSysId);
    expect(Date.parse(lines[0]!.line.slaDeadline)).toBe(ackDueAt);
    const sysId = ticket.externalSysId!;
    expect(workNotes(sysId).filter((n) => n.startsWith('Escalation level'))).toHaveLength(3);
    expect(incident(sysId).escalation).toBe('3');
    expect(incident(sysId).watch_list!.split(',')).toHaveLength(3);

    // Nobody is left above the top: a day later, still three.
    await skipTo(ackDueAt + 2 * INTERVAL + DAY);
    expect((await detail(key)).escalations).toHaveLength(3);

    // The owner acknowledges from the API (as the Slack bot does): the acknowledgement breach ends, the incident is In Progress.
    const ack = await post(`/api/v1/tickets/${encodeURIComponent(key)}/acknowledge`, { by: 'alex.romero', note: 'on it' });
    expect(ack.status).toBe(200);
    const acknowledged = (await ack.json()) as RemediationState;
    expect(acknowledged).toMatchObject({ phase: 'awaiting-resolution', escalationLevel: 0, topOfChainReached: false, acknowledgedBy: 'alex.romero' });
    // A repeated acknowledgement is answered, not applied again.
    const again = (await (await post(`/api/v1/tickets/${encodeURIComponent(key)}/acknowledge`, { by: 'someone.else' })).json()) as RemediationState;
    expect(again).toMatchObject({ acknowledgedAt: acknowledged.acknowledgedAt, acknowledgedBy: 'alex.romero' });
    await eventually(async () => (incident(sysId).state === '2' ? true : undefined), { what: 'incident in progress' });
    await eventually(async () => ((await detail(key)).state === 'in_progress' ? true : undefined), { what: 'read model in progress' });
    expect(workNotes(sysId).filter((n) => n.startsWith('Acknowledged by alex.romero (api): on it'))).toHaveLength(1);
    // The ticket keeps its escalation history after the acknowledgement.
    const kept = await detail(key);
    expect(kept).toMatchObject({ escalationLevel: 0, escalationPeak: 3, escalationCount: 3, workflow: { escalationPeak: 3, escalationCount: 3 } });
    expect(kept.lastEscalatedAt).not.toBeNull();
    // An escalation interval later nobody new was told.
    await skipTo((await platform.env.currentTimeMs()) + INTERVAL + 60_000);
    expect((await detail(key)).escalations).toHaveLength(3);
    expect(platform.notifier.linesFor(key)).toHaveLength(3);
  });

  it('escalates again from the first manager when the due date passes unresolved', async () => {
    await start();
    const ticket = await openedTicket('ts/due:1', 'org.springframework:spring-beans');
    const key = ticket.key;
    expect((await post(`/api/v1/tickets/${encodeURIComponent(key)}/acknowledge`, { by: 'alex.romero' })).status).toBe(200);
    const dueAt = Date.parse(ticket.workflow.dueAt);
    expect(dueAt - Date.parse(ticket.workflow.ackDueAt)).toBeGreaterThan(DAY); // act: days to fix, hours to acknowledge

    // Acknowledged in time: the acknowledgement deadline passes without an escalation.
    await skipTo(dueAt - HOUR);
    expect((await detail(key)).escalations).toEqual([]);

    await skipTo(dueAt + INTERVAL + 60_000);
    const escalated = await eventually(
      async () => {
        const d = await detail(key);
        return d.escalations.length === 2 ? d : undefined;
      },
      { what: 'two resolution escalations' },
    );
    expect(escalated.escalations.map((e) => [e.phase, e.level, e.notifiedUser])).toEqual([
      ['resolution', 1, 'jonas.weber'],
      ['resolution', 2, 'priya.natarajan'],
    ]);
    const digested = platform.notifier.linesFor(key).find(({ line }) => line.phase === 'resolution' && line.level === 1);
    expect(digested?.digest.manager.userName).toBe('jonas.weber');
    expect(digested?.line).toMatchObject({ phase: 'resolution', slaDeadline: new Date(dueAt).toISOString() });

    // Resolved: no escalation after that, however long the scan takes to come.
    expect((await post(`/api/v1/tickets/${encodeURIComponent(key)}/resolve`, { by: 'alex.romero' })).status).toBe(200);
    await skipTo(dueAt + 4 * INTERVAL);
    expect((await detail(key)).escalations).toHaveLength(2);
    expect((await detail(key)).workflow.phase).toBe('verifying');
  });
});

describe('reconciliation', () => {
  it('catches a state change whose webhook never arrived at the next read of the incident', async () => {
    await start('6h');
    const ticket = await openedTicket('ts/missed:1', 'libssl1.1');
    platform.simulator.setWebhook(undefined); // the business rule is broken: nothing is sent
    const patch = await fetch(`${platform.simulator.url}/api/now/table/incident/${ticket.externalSysId}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: platform.simulatorAuthorization },
      body: JSON.stringify({ state: '2' }),
    });
    expect(patch.status).toBe(200);
    expect((await detail(ticket.key)).workflow.phase).toBe('awaiting-acknowledgement');
    // The acknowledgement deadline (4 h) comes before the first read (6 h): the missed
    // acknowledgement is escalated once, then the read finds it and the climb stops.
    await skipTo((await platform.env.currentTimeMs()) + RECONCILE + 60_000);
    const acked = await eventually(
      async () => {
        const d = await detail(ticket.key);
        return d.workflow.phase === 'awaiting-resolution' && d.state === 'in_progress' ? d : undefined;
      },
      { what: 'acknowledgement picked up by reconciliation' },
    );
    expect(acked.escalations.map((e) => [e.phase, e.level])).toEqual([['acknowledgement', 1]]);
    await skipTo((await platform.env.currentTimeMs()) + 2 * INTERVAL);
    expect((await detail(ticket.key)).escalations).toHaveLength(1);
    platform.restoreWebhook();
  });
});

describe('risk acceptance', () => {
  it('is refused by the workflow with the field at fault, against workflow time', async () => {
    await start();
    const ticket = await openedTicket('ts/risk-rules:1', 'org.springframework:spring-beans');
    const now = await platform.env.currentTimeMs();
    const base = { requester: 'alex.romero', approver: 'sam.okafor', reason: 'compensating WAF rule in place', expiresAt: new Date(now + 30 * DAY).toISOString() };
    const refusal = async (patch: Record<string, string>) => {
      const res = await post(`/api/v1/tickets/${encodeURIComponent(ticket.key)}/risk-acceptance`, { ...base, ...patch });
      expect(res.status).toBe(422);
      return ((await res.json()) as { error: { code: string; message: string; details: { field: string } } }).error;
    };
    expect(await refusal({ reason: 'because' })).toEqual({
      code: 'invalid_risk_acceptance',
      message: 'Say why the risk is accepted, in 10 characters or more.',
      details: { field: 'reason' },
    });
    expect(await refusal({ expiresAt: new Date(now + 366 * DAY).toISOString() })).toMatchObject({ details: { field: 'expiresAt' }, message: 'A risk acceptance lasts 365 days at most.' });
    expect(await refusal({ approver: 'alex.romero' })).toMatchObject({ details: { field: 'approver' } });
    // A week of workflow time later, a date six days after the start is in the past, whatever the caller's clock says.
    await skipTo(now + 7 * DAY);
    expect(await refusal({ expiresAt: new Date(now + 6 * DAY).toISOString() })).toMatchObject({ details: { field: 'expiresAt' }, message: 'The expiry must be in the future.' });
    expect((await detail(ticket.key)).workflow.riskAcceptance).toBeUndefined();
  });

  it('pauses the SLA while it lasts, re-opens the ticket when it expires, and escalation resumes', async () => {
    await start();
    const ticket = await openedTicket('ts/risk:1', 'org.springframework:spring-beans');
    const key = ticket.key;
    const sysId = ticket.externalSysId!;
    const acceptedFrom = await platform.env.currentTimeMs();
    const expiresAt = new Date(acceptedFrom + 30 * DAY).toISOString();
    const accepted = await post(`/api/v1/tickets/${encodeURIComponent(key)}/risk-acceptance`, {
      requester: 'alex.romero',
      approver: 'sam.okafor',
      reason: 'compensating WAF rule in place',
      expiresAt,
    });
    expect(accepted.status).toBe(200);
    const state = (await accepted.json()) as RemediationState;
    expect(state).toMatchObject({ phase: 'risk-accepted', riskAcceptance: { approver: 'sam.okafor', expiresAt } });
    const body = { requester: 'alex.romero', approver: 'sam.okafor', reason: 'compensating WAF rule in place', expiresAt };
    // The same acceptance again is answered, not recorded twice; an acknowledgement meanwhile is refused.
    expect((await post(`/api/v1/tickets/${encodeURIComponent(key)}/risk-acceptance`, body)).status).toBe(200);
    const ack = await post(`/api/v1/tickets/${encodeURIComponent(key)}/acknowledge`, { by: 'alex.romero' });
    expect(ack.status).toBe(409);
    expect(((await ack.json()) as { error: { message: string } }).error.message).toBe(`${ticket.externalNumber} is risk-accepted until ${expiresAt}`);
    await eventually(async () => (incident(sysId).state === '3' ? true : undefined), { what: 'incident on hold' });
    const onHold = await eventually(async () => {
      const d = await detail(key);
      return d.state === 'risk_accepted' && d.riskAcceptances.length ? d : undefined;
    }, { what: 'read model risk_accepted' });
    expect(onHold.riskAcceptances).toEqual([
      { requester: 'alex.romero', approver: 'sam.okafor', reason: body.reason, acceptedAt: state.riskAcceptance!.acceptedAt, expiresAt, endedAt: null },
    ]);
    expect(workNotes(sysId).filter((n) => n.startsWith('Risk accepted by sam.okafor at the request of alex.romero'))).toHaveLength(1);

    // The acknowledgement deadline and the due date pass during the acceptance: nobody is escalated to.
    await skipTo(Date.parse(expiresAt) - HOUR);
    const paused = await detail(key);
    expect(paused.escalations).toEqual([]);
    expect(paused.workflow.phase).toBe('risk-accepted');

    // Expiry: New again in ServiceNow, a fresh acknowledgement deadline, the due date moved by the pause.
    await skipTo(Date.parse(expiresAt) + 60_000);
    const reopened = await eventually(
      async () => {
        const d = await detail(key);
        return d.workflow.phase === 'awaiting-acknowledgement' && d.state === 'new' ? d : undefined;
      },
      { what: 're-opened after expiry' },
    );
    // The timer fires at the expiry (a few milliseconds of workflow time after it, at most).
    const reopenedAt = Date.parse(reopened.workflow.ackDueAt) - ACK;
    expect(reopenedAt - Date.parse(expiresAt)).toBeGreaterThanOrEqual(0);
    expect(reopenedAt - Date.parse(expiresAt)).toBeLessThan(1000);
    const pause = reopenedAt - Date.parse(state.riskAcceptance!.acceptedAt);
    expect(Date.parse(reopened.workflow.dueAt)).toBe(Date.parse(ticket.workflow.dueAt) + pause);
    expect(reopened.workflow.cycle).toBe(1);
    await eventually(async () => (incident(sysId).state === '1' ? true : undefined), { what: 'incident new again' });
    expect(workNotes(sysId).some((n) => n.startsWith('Risk acceptance by sam.okafor expired'))).toBe(true);
    await eventually(async () => ((await detail(key)).riskAcceptances[0]?.endedAt ? true : undefined), { what: 'acceptance ended' });

    // Unacknowledged again: escalation starts afresh at level 1, as a new cycle.
    await skipTo(Date.parse(reopened.workflow.ackDueAt) + 60_000);
    const escalated = await eventually(
      async () => {
        const d = await detail(key);
        return d.escalations.length > 0 ? d : undefined;
      },
      { what: 'escalation after the re-opened ticket went unacknowledged' },
    );
    expect(escalated.escalations.map((e) => [e.phase, e.level, e.notifiedUser])).toEqual([['acknowledgement', 1, 'jonas.weber']]);
    expect(Date.parse(escalated.workflow.lastEscalationAt!)).toBeGreaterThanOrEqual(Date.parse(reopened.workflow.ackDueAt));
    // The manager hears of the new cycle's escalation in their next round.
    await skipTo(Date.parse(reopened.workflow.ackDueAt) + WINDOW + 2 * 60_000);
    const told = await eventually(async () => platform.notifier.linesFor(key)[0], { what: 'digest of the re-opened ticket' });
    expect([told.digest.manager.userName, told.line.phase, told.line.level]).toEqual(['jonas.weber', 'acknowledgement', 1]);
    expect(escalated.escalationCount).toBe(1);
  });
});
