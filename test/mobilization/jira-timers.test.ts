import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { adfText } from '../../mobilization/itsm/jira/client.js';
import type { RemediationState } from '../../workflows/remediation/messages.js';
import { closeTestDatabases, eventually, json } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { preparedTestDatabase, startTimeSkippingPlatform, type TimeSkippingPlatform } from './support/time-skipping.js';

// The escalation ladder with Jira as the ITSM, on Temporal's time-skipping server with SLAs of
// hours: each manager of the people directory watches the issue, its priority climbs, a comment
// says why; an acknowledgement made in Jira stops the climb. Activities, PostgreSQL, the API and
// the Jira simulator (over HTTP, with its signed webhooks) are real; only the server's clock jumps.

const HOUR = 3_600_000;
const INTERVAL = 8 * HOUR;

type Detail = TicketRow & {
  escalations: Array<{ phase: string; level: number; notifiedUser: string }>;
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

async function start(): Promise<void> {
  platform = await startTimeSkippingPlatform(database, { CTEM_ITSM: 'jira', CTEM_SLA_ACK: '4h', CTEM_ESCALATION_INTERVAL: '8h', CTEM_TICKET_RECONCILE_INTERVAL: '0s' });
}

afterEach(async () => {
  const stopping = platform;
  platform = undefined!;
  await stopping?.stop();
});

const detail = (key: string) => json<Detail>(platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`));
const jiraSim = () => platform.jira!.simulator;
const stored = (id: string) => jiraSim().issues().find((i) => i.id === id)!;
const accountOf = (email: string) => jiraSim().users().find((u) => u.emailAddress === email)!.accountId;

async function skipTo(at: number): Promise<void> {
  const now = await platform.env.currentTimeMs();
  if (at > now) await platform.env.sleep(at - now);
}

/** The opened ticket whose lines name the package. */
async function openedTicket(target: string, pkg: string): Promise<Detail> {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) });
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

/** A person moves the issue in Jira (over its REST API): the transition leading to `status`. */
async function transition(id: string, status: string): Promise<void> {
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${jiraSim().url}${path}`, { ...init, headers: { authorization: platform.jira!.authorization, 'content-type': 'application/json' } });
  const { transitions } = (await (await call(`/rest/api/3/issue/${id}/transitions`)).json()) as { transitions: Array<{ id: string; to: { name: string } }> };
  const move = transitions.find((t) => t.to.name === status)!;
  expect((await call(`/rest/api/3/issue/${id}/transitions`, { method: 'POST', body: JSON.stringify({ transition: { id: move.id } }) })).status).toBe(204);
}

describe('the escalation ladder in Jira', () => {
  it('adds each manager as watcher, raises the priority to the top and comments, level by level', async () => {
    await start();
    const ticket = await openedTicket('tsj/ladder:1', 'org.springframework:spring-beans');
    const id = ticket.externalSysId!;
    const ackDueAt = Date.parse(ticket.workflow.ackDueAt);
    expect(ticket.tier).toBe('act');
    expect(stored(id).priority).toBe('High');

    await skipTo(ackDueAt + 2 * INTERVAL + 60_000);
    const top = await eventually(
      async () => {
        const d = await detail(ticket.key);
        return d.workflow.topOfChainReached && d.escalations.length === 3 ? d : undefined;
      },
      { what: 'three escalations' },
    );
    expect(top.escalations.map((e) => [e.level, e.notifiedUser])).toEqual([
      [1, 'jonas.weber'],
      [2, 'priya.natarajan'],
      [3, 'morgan.blake'],
    ]);
    const issue = stored(id);
    for (const manager of ['jonas.weber', 'priya.natarajan', 'morgan.blake']) expect(issue.watchers).toContain(accountOf(`${manager}@example.com`));
    expect(issue.priority).toBe('Highest');
    expect(issue.comments.map((c) => adfText(c.body)).filter((c) => c.startsWith('Escalation level'))).toHaveLength(3);
    // The first manager's digest names the Jira issue and links to it.
    const told = await eventually(async () => platform.notifier.linesFor(ticket.key).find((l) => l.line.level === 1), { what: 'the digest to jonas.weber' });
    expect(told.digest.manager).toMatchObject({ userName: 'jonas.weber', name: 'Jonas Weber' });
    expect(told.line).toMatchObject({ ticketNumber: issue.key, ticketUrl: `${jiraSim().url}/browse/${issue.key}` });
  });

  it('stops climbing once the owner acknowledges in Jira, and resolving there waits for verification', async () => {
    await start();
    const ticket = await openedTicket('tsj/ack:1', 'org.springframework:spring-beans');
    const id = ticket.externalSysId!;
    const ackDueAt = Date.parse(ticket.workflow.ackDueAt);
    await skipTo(ackDueAt + 60_000);
    await eventually(async () => ((await detail(ticket.key)).escalations.length === 1 ? true : undefined), { what: 'first escalation' });

    await transition(id, 'In Progress');
    await eventually(async () => ((await detail(ticket.key)).workflow.phase === 'awaiting-resolution' ? true : undefined), { what: 'acknowledged in Jira' });
    const dueAt = Date.parse((await detail(ticket.key)).workflow.dueAt);
    await skipTo(Math.min(ackDueAt + 3 * INTERVAL, dueAt - 60_000));
    expect((await detail(ticket.key)).escalations.map((e) => [e.phase, e.level])).toEqual([['acknowledgement', 1]]);

    await transition(id, 'Resolved');
    await eventually(
      async () => {
        const d = await detail(ticket.key);
        return d.workflow.phase === 'verifying' && d.state === 'resolved' ? d : undefined;
      },
      { what: 'resolved in Jira, waiting for verification' },
    );
  });
});
