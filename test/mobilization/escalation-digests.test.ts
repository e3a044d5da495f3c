import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEscalationDigestActivities } from '../../activities/escalation-digest.js';
import type { Database } from '../../db/client.js';
import type { EscalationDigestNotice } from '../../mobilization/notifier.js';
import { createSlackNotifier } from '../../slack/notifier.js';
import { CTEM_ESCALATION_PEAK } from '../../workflows/search-attributes.js';
import type { RemediationState } from '../../workflows/remediation/messages.js';
import { closeTestDatabases, eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { startFakeSlack } from '../support/slack-fake.js';
import { preparedTestDatabase, startTimeSkippingPlatform, type TimeSkippingPlatform } from './support/time-skipping.js';

// Managers hear of escalations once per round: one digest per manager naming every overdue ticket
// of their reports, however many tickets breached together. On Temporal's time-skipping server with
// real activities, PostgreSQL, the API and the ServiceNow simulator; the Slack notifier against the
// local fake Slack API.

const HOUR = 3_600_000;
const MINUTE = 60_000;
const INTERVAL = 8 * HOUR;
const WINDOW = 5 * MINUTE;

interface Digest {
  key: string;
  manager: string;
  roundAt: string;
  ticketKeys: string[];
  sentAt: string | null;
}

let database: Database;
let platform: TimeSkippingPlatform;

beforeAll(async () => {
  database = await preparedTestDatabase();
});

afterAll(async () => {
  await closeTestDatabases();
});

afterEach(async () => {
  const stopping = platform;
  platform = undefined!;
  await stopping?.stop();
});

const post = (path: string, body: unknown) => platform.api(path, { method: 'POST', body: JSON.stringify(body) });
const tickets = async (query: string) => (await json<{ items: TicketRow[] }>(platform.api(`/api/v1/tickets?limit=1000&${query}`))).items;
const digests = async (manager: string) => (await json<{ total: number; items: Digest[] }>(platform.api(`/api/v1/escalation-digests?manager=${manager}`))).items;

/** Skips the server's clock to `at` (workflow time), firing every timer due on the way. */
async function skipTo(at: number): Promise<void> {
  const now = await platform.env.currentTimeMs();
  if (at > now) await platform.env.sleep(at - now);
}

/** Scans images of `owner` until at least `atLeast` of their golden tickets are open; returns them all. */
async function openTickets(owner: string, prefix: string, atLeast: number, withoutPackages: string[] = []): Promise<TicketRow[]> {
  for (let i = 1; ; i++) {
    const target = `${prefix}:${i}`;
    const res = await platform.api(`/api/v1/scans?owner=${owner}&target=${encodeURIComponent(target)}&filename=trivy.json`, {
      method: 'POST',
      body: imageReport(target, { withoutPackages }),
    });
    expect(res.status).toBe(202);
    const opened = await eventually(
      async () => {
        const mine = (await tickets(`owner=${owner}`)).filter((t) => t.asset.name.startsWith(`${prefix}:`));
        const ofImage = mine.filter((t) => t.asset.name === target);
        return ofImage.length > 0 && ofImage.every((t) => t.externalSysId && t.state === 'new') ? mine : undefined;
      },
      { what: `open tickets of ${target}`, timeoutMs: 60_000 },
    );
    if (opened.length >= atLeast) return opened;
  }
}

const keysOf = (rows: Array<{ key: string }>) => rows.map((r) => r.key).sort();

/** Waits (in real time, the server's clock held) until every ticket has escalated to `level`. */
async function escalatedAtLeast(rows: TicketRow[], level: number): Promise<void> {
  const keys = new Set(rows.map((r) => r.key));
  await eventually(
    async () => {
      const peaks = (await tickets(`minPeak=${level}`)).filter((t) => keys.has(t.key));
      return peaks.length === keys.size ? true : undefined;
    },
    { what: `${keys.size} tickets escalated to level ${level}`, timeoutMs: 60_000 },
  );
}
const latestAckDue = (rows: TicketRow[]) => Math.max(...rows.map((t) => Date.parse(t.ackDueAt)));

describe('escalation digests', () => {
  // Retried: on a loaded machine Temporal's time-skipping test server sometimes stalls its clock in
  // this scenario ("invalid history builder state for action" from the server, then no timer fires);
  // the same flow on the dev server's real clock never did. A stall is a timeout, never a wrong count.
  it('tells each manager once per round of every overdue ticket of their reports, and keeps the tickets escalation history', { retry: 2 }, async () => {
    // A database of its own, so a retried attempt starts clean.
    const database = await preparedTestDatabase();
    platform = await startTimeSkippingPlatform(database, {
      CTEM_SLA_ACK: '4h',
      CTEM_ESCALATION_INTERVAL: '8h',
      CTEM_TICKET_RECONCILE_INTERVAL: '0s',
      CTEM_ESCALATION_DIGEST_WINDOW: '5m',
    });
    platform.notifier.failuresLeft = 2; // the digest activity retries; nothing is sent twice

    // One owner with 17 tickets or more (Jonas Weber's report), another with a different manager (Morgan Blake's).
    const alex = await openTickets('alex.romero', 'digest/alex', 17);
    const sam = await openTickets('sam.okafor', 'digest/sam', 1);
    expect(alex.length).toBeGreaterThanOrEqual(17);
    const firstRound = latestAckDue([...alex, ...sam]);

    // Their acknowledgement SLAs breach together: one round, one digest per manager.
    // Past every acknowledgement deadline, within the round's window: the escalations are recorded
    // (and their digest workflow told) before the window closes, as a real clock leaves them minutes to.
    await skipTo(firstRound + MINUTE);
    await escalatedAtLeast([...alex, ...sam], 1);
    await skipTo(firstRound + WINDOW + 2 * MINUTE);
    const jonas = await eventually(async () => ((await digests('jonas.weber'))[0]?.sentAt ? digests('jonas.weber') : undefined), { what: "Jonas's digest" });
    expect(jonas).toHaveLength(1);
    expect(jonas[0]!.ticketKeys).toEqual(keysOf(alex));
    const morgan = await eventually(async () => ((await digests('morgan.blake'))[0]?.sentAt ? digests('morgan.blake') : undefined), { what: "Morgan's digest" });
    expect(morgan).toHaveLength(1);
    expect(morgan[0]!.ticketKeys).toEqual(keysOf(sam));
    expect(platform.notifier.digests.map((d) => d.manager.userName).sort()).toEqual(['jonas.weber', 'morgan.blake']);
    expect(platform.notifier.deliveries).toBe(2);
    const told = platform.notifier.digests.find((d) => d.manager.userName === 'jonas.weber')!;
    expect(told.id).toBe(jonas[0]!.key);
    expect(told.manager).toMatchObject({ name: 'Jonas Weber', email: 'jonas.weber@example.com' });
    expect(told.escalations.map((e) => e.ticketKey).sort()).toEqual(keysOf(alex));
    for (const line of told.escalations) {
      const t = alex.find((x) => x.key === line.ticketKey)!;
      expect(line).toMatchObject({ ticketNumber: t.externalNumber, tier: t.tier, owner: { userName: 'alex.romero', name: 'Alex Romero' }, phase: 'acknowledgement', level: 1 });
      expect(line.ticketUrl).toContain(t.externalSysId);
      expect(line.daysOverdue).toBeGreaterThanOrEqual(0);
    }
    // Every ticket still carries its own work note in the ITSM.
    for (const t of alex) {
      const notes = platform.simulator.records('sys_journal_field').filter((r) => r.element_id === t.externalSysId && (r.value ?? '').startsWith('Escalation level 1'));
      expect(notes).toHaveLength(1);
    }

    // The digest activity run again for the same round finds it composed and delivered: nothing is sent.
    const again = await new MockActivityEnvironment().run(createEscalationDigestActivities({ database, notifier: platform.notifier }).sendEscalationDigest, {
      manager: told.manager,
      roundAt: told.roundAt,
      at: told.roundAt,
      tickets: {},
    });
    expect(again).toEqual({ key: told.id, tickets: alex.length, delivered: true });
    expect(platform.notifier.deliveries).toBe(2);

    // A ticket that escalates after the round closed starts the manager's next round. (Planned on the
    // activities' clock, which the server's skipped past, it is overdue at once.)
    const later = await openTickets('alex.romero', 'digest/alex-later', 1, ['org.apache.logging.log4j:log4j-core', 'org.springframework:spring-beans']);
    expect(later).toHaveLength(1);
    // Level 2 of the first tickets (Priya Natarajan) comes one interval after their level 1, and a
    // minute before the later ticket's.
    await skipTo(firstRound + INTERVAL + MINUTE / 2);
    await escalatedAtLeast(alex, 2);
    await skipTo(firstRound + INTERVAL + WINDOW + MINUTE);
    const jonasLater = await eventually(async () => ((await digests('jonas.weber')).filter((d) => d.sentAt).length === 2 ? digests('jonas.weber') : undefined), {
      what: "Jonas's second round",
    });
    expect(jonasLater.map((d) => d.ticketKeys)).toEqual([keysOf(later), keysOf(alex)]); // newest round first
    const priya = await eventually(async () => ((await digests('priya.natarajan'))[0]?.sentAt ? digests('priya.natarajan') : undefined), { what: "Priya's digest" });
    expect(priya).toHaveLength(1);
    expect(priya[0]!.ticketKeys).toEqual(keysOf(alex));
    expect(await digests('morgan.blake')).toHaveLength(1); // Sam's chain ends at Morgan
    expect(platform.notifier.deliveries).toBe(4);

    // Acknowledged, a ticket's current level goes back to 0; its peak, count and latest escalation stay.
    const acked = alex[0]!;
    const res = await post(`/api/v1/tickets/${encodeURIComponent(acked.key)}/acknowledge`, { by: 'alex.romero' });
    expect(res.status).toBe(200);
    expect((await res.json()) as RemediationState).toMatchObject({ escalationLevel: 0, escalationPeak: 2, escalationCount: 2 });
    const row = await eventually(async () => (await tickets('owner=alex.romero')).find((t) => t.key === acked.key && t.state === 'in_progress'), {
      what: 'acknowledged in the read model',
    });
    expect(row).toMatchObject({ escalationLevel: 0, escalationPeak: 2, escalationCount: 2 });
    expect(row.lastEscalatedAt).not.toBeNull();
    // The filters list every ticket ever escalated, acknowledged or not.
    expect(keysOf(await tickets('owner=alex.romero&escalated=true'))).toEqual(keysOf([...alex, ...later]));
    expect(keysOf(await tickets('owner=alex.romero&minPeak=2'))).toEqual(keysOf(alex));
    expect(await tickets('owner=alex.romero&escalated=false')).toEqual([]);
    // And so does Temporal: the search attribute keeps the peak after the acknowledgement.
    const described = await platform.env.client.workflow.getHandle(acked.workflowId).describe();
    expect(described.typedSearchAttributes.get(CTEM_ESCALATION_PEAK)).toBe(2);
  });
});

describe('on the dev server, in real time', () => {
  // The time-skipping server answers no visibility query: the search attribute is listed here, on the
  // real clock with an SLA of seconds, and with no notifier the digest is only recorded.
  it('lists every ticket ever escalated by CtemEscalationPeak, and records the digest without a notifier', async () => {
    const live = await startTestPlatform({ CTEM_SLA_ACK: '3s', CTEM_ESCALATION_INTERVAL: '1h', CTEM_ESCALATION_DIGEST_WINDOW: '2s', CTEM_TICKET_RECONCILE_INTERVAL: '0s', ...SAMPLE_FEEDS_ENV });
    try {
      const res = await live.api('/api/v1/scans?owner=alex.romero&target=live/digest:1&filename=trivy.json', { method: 'POST', body: imageReport('live/digest:1') });
      expect(res.status).toBe(202);
      const escalated = await eventually(
        async () => {
          const rows = (await json<{ items: TicketRow[] }>(live.api('/api/v1/tickets?escalated=true'))).items;
          // The image's OS layer and its Java libraries: two tickets, both left unacknowledged.
          return rows.length === 2 ? rows : undefined;
        },
        { what: 'two escalated tickets', timeoutMs: 60_000 },
      );
      const acked = escalated[0]!;
      const ack = await live.api(`/api/v1/tickets/${encodeURIComponent(acked.key)}/acknowledge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ by: 'alex.romero' }),
      });
      expect(ack.status).toBe(200);
      // Acknowledged, its level is 0 again, and visibility still lists it among the escalated.
      const listed = await eventually(
        async () => {
          const ids: string[] = [];
          for await (const w of live.temporalClient.workflow.list({ query: 'CtemEscalationPeak > 0 AND CtemEscalationLevel = 0' })) ids.push(w.workflowId);
          return ids.includes(acked.workflowId) ? ids : undefined;
        },
        { what: 'the acknowledged ticket in visibility' },
      );
      expect(listed).toContain(acked.workflowId);
      const peaked: string[] = [];
      for await (const w of live.temporalClient.workflow.list({ query: 'CtemEscalationPeak > 0' })) peaked.push(w.workflowId);
      expect(peaked.sort()).toEqual(escalated.map((t) => t.workflowId).sort());

      const digest = await eventually(
        async () => (await json<{ items: Digest[] }>(live.api('/api/v1/escalation-digests?manager=jonas.weber'))).items[0],
        { what: "Jonas's digest", timeoutMs: 30_000 },
      );
      expect(digest.ticketKeys).toEqual(keysOf(escalated));
      expect(digest.sentAt).toBeNull(); // recorded, delivered by no one
      expect((await json<{ total: number }>(live.api('/api/v1/escalation-digests'))).total).toBe(1);
    } finally {
      await live.stop();
    }
  });
});

describe('the Slack digest', () => {
  it('is one DM to the manager naming every ticket, sent once however often it is delivered', async () => {
    const slack = await startFakeSlack({ botToken: 'xoxb-digest', users: [{ id: 'U_JONAS', name: 'jonas', email: 'jonas.weber@example.com' }] });
    try {
      const notifier = createSlackNotifier({ botToken: 'xoxb-digest', apiUrl: slack.apiUrl, channel: 'CSECOPS', authorizedUsers: [] }, database);
      const escalations = Array.from({ length: 17 }, (_, i) => ({
        ticketKey: `pkg@1.0.${i}~img`,
        ticketNumber: `INC00100${String(i).padStart(2, '0')}`,
        ticketUrl: `https://itsm.example.com/incident/${i}`,
        fix: `pkg-${i} to 1.0.${i} on payments-api:${i}`,
        tier: i % 2 ? 'attend' : 'act',
        owner: { userName: 'alex.romero', name: 'Alex Romero' },
        phase: 'acknowledgement' as const,
        level: 1,
        slaDeadline: '2026-12-07T13:00:00.000Z',
        daysOverdue: 0.5,
      }));
      const notice: EscalationDigestNotice = {
        id: `jonas.weber:2026-12-07T13:00:00.000Z-${Date.now()}`,
        manager: { userName: 'jonas.weber', name: 'Jonas Weber', email: 'jonas.weber@example.com' },
        roundAt: '2026-12-07T13:00:00.000Z',
        escalations,
      };
      await Promise.all([notifier.escalationDigest(notice), notifier.escalationDigest(notice)]);
      await notifier.escalationDigest(notice);
      const posts = slack.callsTo('chat.postMessage');
      expect(posts).toHaveLength(1);
      expect(slack.callsTo('conversations.open')[0]!.args.users).toBe('U_JONAS');
      const body = JSON.stringify(posts[0]!.args.blocks);
      for (const e of escalations) expect(body).toContain(`<${e.ticketUrl}|${e.ticketNumber}>`);
      expect(body).toContain('17 overdue tickets of Alex Romero');
      expect(body).toContain('level 1');
      expect(String(posts[0]!.args.text)).toContain('17 overdue tickets');
    } finally {
      await slack.close();
    }
  });
});
