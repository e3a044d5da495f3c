import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { remediationWorkflowId } from '../../mobilization/golden-tickets.js';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { closeTestDatabases, eventually, json } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { preparedTestDatabase, startTimeSkippingPlatform, type TimeSkippingPlatform } from './support/time-skipping.js';

// The Temporal side door: anyone who reaches Temporal's frontend can send `ticketEvent` to a
// remediation workflow without going through the webhook's signature and checks. Here raw signals
// go straight to a real workflow (time-skipping server, real activities, PostgreSQL, API and the
// ServiceNow simulator), and the workflow itself refuses what the webhook would refuse.

let database: Database;
let platform: TimeSkippingPlatform;

beforeAll(async () => {
  database = await preparedTestDatabase();
});

afterAll(async () => {
  await closeTestDatabases();
});

afterEach(async () => {
  await platform?.stop();
});

async function openedTicket(target: string, pkg: string): Promise<TicketRow> {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) });
  expect(res.status).toBe(202);
  return eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=1000'))).items;
      for (const t of items.filter((x) => x.asset.name === target && x.externalSysId)) {
        const d = await json<TicketRow & { lines: Array<{ packages: string[] }>; workflow: RemediationState }>(platform.api(`/api/v1/tickets/${encodeURIComponent(t.key)}`));
        if (d.lines.some((l) => l.packages.includes(pkg)) && d.workflow?.phase === 'awaiting-acknowledgement') return d;
      }
      return undefined;
    },
    { what: `opened ticket for ${pkg} on ${target}`, timeoutMs: 60_000 },
  );
}

describe('raw ticketEvent signals', () => {
  it('are checked by the workflow: bogus ones are dropped and recorded, a replayed lower version is ignored, a valid one applies', async () => {
    platform = await startTimeSkippingPlatform(database, { CTEM_SLA_ACK: '4h', CTEM_ESCALATION_INTERVAL: '8h', CTEM_TICKET_RECONCILE_INTERVAL: '0s' });
    const ticket = await openedTicket('ts/raw-signals:1', 'org.springframework:spring-beans');
    const handle = platform.env.client.workflow.getHandle(remediationWorkflowId(ticket.key));
    const at = new Date().toISOString();
    const status = () => handle.query(statusQuery);
    const afterDrops = async (n: number) =>
      eventually(async () => {
        const s = await status();
        return s.droppedEvents.length >= n ? s : undefined;
      }, { what: `${n} dropped events` });

    // A state outside the known set, a version of 1e300 that would freeze every later event, and a
    // payload that is not an event at all: none applies, none throws out of the handler.
    await handle.signal('ticketEvent', { eventId: 'raw-bogus-state', state: 'pwned', at, sequence: 100 });
    await handle.signal('ticketEvent', { eventId: 'raw-huge-sequence', state: 'resolved', at, sequence: 1e300 });
    await handle.signal('ticketEvent', null);
    const refused = await afterDrops(3);
    expect(refused.phase).toBe('awaiting-acknowledgement');
    expect(refused.lastSequence).toBeLessThan(100);
    expect(refused.droppedEvents.map((d) => [d.eventId, d.kind])).toEqual([
      ['raw-bogus-state', 'invalid'],
      ['raw-huge-sequence', 'invalid'],
      ['(none)', 'invalid'],
    ]);
    expect(refused.droppedEvents[0]!.reason).toMatch(/^state "pwned" is not a ticket state/);
    expect(refused.droppedEvents[1]!.reason).toMatch(/^sequence 1e\+300 is neither a count of updates/);
    expect(refused.seenEvents).not.toContain('raw-huge-sequence');

    // A valid event applies: the owner started work in the ITSM at version 100.
    await handle.signal('ticketEvent', { eventId: 'raw-valid', state: 'in_progress', at, sequence: 100, actor: 'alex.romero' });
    const acknowledged = await eventually(async () => {
      const s = await status();
      return s.phase === 'awaiting-resolution' ? s : undefined;
    }, { what: 'acknowledged by the valid event' });
    expect(acknowledged).toMatchObject({ lastSequence: 100, acknowledgedBy: 'alex.romero' });

    // A resolution replayed at a lower version is ignored and recorded as stale; the ticket stays open.
    await handle.signal('ticketEvent', { eventId: 'raw-replayed', state: 'resolved', at, sequence: 99 });
    const stale = await afterDrops(4);
    expect(stale.phase).toBe('awaiting-resolution');
    expect(stale.droppedEvents.at(-1)).toMatchObject({ eventId: 'raw-replayed', kind: 'stale', reason: 'version 99 is not newer than version 100 already applied' });

    // The read model took the valid event only.
    const row = await eventually(async () => {
      const r = await json<TicketRow & { state: string }>(platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}`));
      return r.state === 'in_progress' ? r : undefined;
    }, { what: 'in_progress in the read model' });
    expect(row.state).toBe('in_progress');

    // The workflow never failed a task, and new runs carry the patch marker that turns the checks on.
    const { events } = await handle.fetchHistory();
    expect((events ?? []).filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
    const markers = (events ?? []).flatMap((e) =>
      Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((p) => (p.payloads ?? []).map((x) => Buffer.from(x.data ?? new Uint8Array()).toString('utf8'))),
    );
    expect(markers.some((m) => m.includes('validated-ticket-events'))).toBe(true);
    expect((await handle.describe()).status.name).toBe('RUNNING');
  }, 180_000);
});
