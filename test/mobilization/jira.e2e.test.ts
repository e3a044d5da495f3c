import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adfText } from '../../mobilization/itsm/jira/client.js';
import { ticketLabel } from '../../mobilization/itsm/jira/adapter.js';
import { signJiraWebhookBody } from '../../mobilization/itsm/jira/webhook-signature.js';
import type { RemediationState } from '../../workflows/remediation/messages.js';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// Jira Cloud as the ITSM, end to end: the real Temporal server, real PostgreSQL, the platform's
// API and worker, and the Jira simulator over HTTP sending signed webhooks. A test acts as a person
// in Jira by calling its REST API (transitions, assignee) and watches the platform react. Image
// names are unique to this file.

type Detail = TicketRow & {
  escalations: Array<{ phase: string; level: number; notifiedUser: string }>;
  lines: Array<{ package: string; packages: string[] }>;
  workflow: RemediationState;
};

interface Issue {
  id: string;
  key: string;
  fields: { status: { name: string }; assignee: { accountId: string } | null; priority: { name: string }; project: { key: string }; labels: string[] };
}

async function scan(platform: TestPlatform, target: string, body = imageReport(target)) {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body });
  expect(res.status).toBe(202);
  const { scanId } = (await res.json()) as { scanId: string };
  return eventually(
    async () => {
      const s = await json<{ status: string; counts: Record<string, number> }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    },
    { what: `scan of ${target}`, timeoutMs: 60_000 },
  );
}

const detail = (platform: TestPlatform, key: string) => json<Detail>(platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`));

/** The opened ticket whose lines name the package. */
async function openedTicket(platform: TestPlatform, target: string, pkg: string): Promise<TicketRow> {
  return eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=1000'))).items;
      for (const t of items.filter((x) => x.asset.name === target && x.externalSysId)) {
        const d = await detail(platform, t.key);
        if (d.lines.some((l) => l.packages.includes(pkg))) return d.workflow?.phase && d.workflow.phase !== 'opening' ? t : undefined;
      }
      return undefined;
    },
    { what: `opened ticket for ${pkg} on ${target}`, timeoutMs: 60_000 },
  );
}

const issue = (platform: TestPlatform, id: string) => json<Issue>(platform.jira(`/rest/api/3/issue/${id}?fields=status,assignee,priority,project,labels`));

/** Moves the issue as a person would: the transition leading to `status`. */
async function transition(platform: TestPlatform, id: string, status: string): Promise<void> {
  const { transitions } = await json<{ transitions: Array<{ id: string; to: { name: string } }> }>(platform.jira(`/rest/api/3/issue/${id}/transitions`));
  const move = transitions.find((t) => t.to.name === status);
  expect(move, `a transition to ${status}`).toBeDefined();
  const res = await platform.jira(`/rest/api/3/issue/${id}/transitions`, { method: 'POST', body: JSON.stringify({ transition: { id: move!.id } }) });
  expect(res.status).toBe(204);
}

const accountOf = (platform: TestPlatform, email: string) => platform.jiraSimulator!.instance.users().find((u) => u.emailAddress === email)!.accountId;
const comments = (platform: TestPlatform, id: string) => platform.jiraSimulator!.instance.issues().find((i) => i.id === id)!.comments.map((c) => adfText(c.body));

async function webhookEventsOf(platform: TestPlatform, ticketKey: string): Promise<Array<{ event_id: string; state: string }>> {
  return platform.database.sql<Array<{ event_id: string; state: string }>>`select event_id, state from ticket_events where ticket_key = ${ticketKey} order by received_at`;
}

describe('Jira as the ITSM', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await startTestPlatform({
      CTEM_ITSM: 'jira',
      JIRA_PROJECT_BY_OWNER: 'alex.romero=PAY',
      // attend tickets have hours to acknowledge; act tickets seconds, for the escalation test.
      CTEM_SLA_ACK: '2h',
      CTEM_ESCALATION_INTERVAL: '1h',
      CTEM_SLA_POLICY: JSON.stringify({ tiers: { act: { ack: '4s' } } }),
      CTEM_TICKET_RECONCILE_INTERVAL: '0s',
      ...SAMPLE_FEEDS_ENV,
    });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('opens the golden ticket as a Jira issue in the routed project, assigned to the owner', async () => {
    const target = 'jira/open:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    expect(ticket.externalNumber).toMatch(/^PAY-\d+$/);
    const opened = await issue(platform, ticket.externalSysId!);
    expect(opened.key).toBe(ticket.externalNumber);
    expect(opened.fields).toMatchObject({ status: { name: 'To Do' }, project: { key: 'PAY' }, priority: { name: 'Medium' } });
    expect(opened.fields.assignee?.accountId).toBe(accountOf(platform, 'alex.romero@example.com'));
    expect(opened.fields.labels).toContain(ticketLabel(ticket.key));
    expect(await detail(platform, ticket.key)).toMatchObject({ itsm: 'jira', externalUrl: `${platform.jiraUrl}/browse/${ticket.externalNumber}` });
    // One issue per golden ticket, however many activities ran.
    expect(platform.jiraSimulator!.instance.issues().filter((i) => i.labels.includes(ticketLabel(ticket.key)))).toHaveLength(1);
  });

  it('refuses a webhook with a bad signature or an oversized body, and changes nothing', async () => {
    const target = 'jira/forged:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    await platform.jiraSimulator!.instance.webhooksIdle();
    const before = await webhookEventsOf(platform, ticket.key);
    const body = JSON.stringify({
      timestamp: Date.now(),
      webhookEvent: 'jira:issue_updated',
      issue: { id: ticket.externalSysId, key: ticket.externalNumber, fields: { status: { name: 'Resolved', statusCategory: { key: 'done' } }, updated: new Date().toISOString() } },
      changelog: { id: '1', items: [{ field: 'status', toString: 'Resolved' }] },
    });
    const send = (headers: Record<string, string>, payload = body) =>
      fetch(`${platform.apiUrl}/api/v1/webhooks/jira`, { method: 'POST', body: payload, headers: { 'content-type': 'application/json', ...headers } });
    const forged = await send({ 'x-hub-signature': signJiraWebhookBody(body, 'not-the-secret') });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: { message: string } }).error.message).toBe('missing or invalid X-Hub-Signature');
    expect((await send({})).status).toBe(401);
    // The API token is no substitute for Jira's signature.
    expect((await send({ authorization: `Bearer ${platform.env.CTEM_API_TOKEN}` })).status).toBe(401);
    const huge = JSON.stringify({ webhookEvent: 'jira:issue_updated', padding: 'x'.repeat(1024 * 1024) });
    expect((await send({ 'x-hub-signature': 'sha256=00' }, huge)).status).toBe(413);
    const after = await detail(platform, ticket.key);
    expect(after.workflow.phase).toBe('awaiting-acknowledgement');
    expect(after.state).toBe('new');
    expect(await webhookEventsOf(platform, ticket.key)).toEqual(before);
  });

  it('hears a redelivered webhook once, and ignores events that are not ticket changes', async () => {
    const target = 'jira/redelivered:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    // What Jira said of the issue's opening (delivered late on a busy machine) is not this test's.
    await platform.jiraSimulator!.instance.webhooksIdle();
    const before = (await webhookEventsOf(platform, ticket.key)).map((e) => e.event_id);
    const secret = (JSON.parse(readFileSync(join(platform.env.CTEM_DATA_DIR!, 'secrets.json'), 'utf8')) as { webhookSecret: string }).webhookSecret;
    const send = (payload: unknown, identifier: string) => {
      const body = JSON.stringify(payload);
      return fetch(`${platform.apiUrl}/api/v1/webhooks/jira`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'x-hub-signature': signJiraWebhookBody(body, secret), 'x-atlassian-webhook-identifier': identifier },
      });
    };
    const fields = { status: { name: 'In Progress', statusCategory: { key: 'indeterminate' } }, assignee: null, updated: new Date(Date.now() + 1000).toISOString().replace('Z', '+0000') };
    const update = { timestamp: Date.now(), webhookEvent: 'jira:issue_updated', issue: { id: ticket.externalSysId, key: ticket.externalNumber, fields }, changelog: { id: '99', items: [{ field: 'status' }] } };
    const first = await send(update, 'redelivery-1');
    expect(first.status).toBe(202);
    const again = await send(update, 'redelivery-1');
    expect(await again.json()).toEqual({ status: 'duplicate' });
    expect(await (await send({ ...update, changelog: { id: '100', items: [{ field: 'labels' }] } }, 'labels-1')).json()).toMatchObject({ status: 'ignored' });
    expect(await (await send({ webhookEvent: 'comment_created', comment: { id: '1' }, issue: update.issue }, 'comment-1')).json()).toMatchObject({ status: 'ignored' });
    expect(await (await send({ ...update, issue: { ...update.issue, id: '1' } }, 'other-issue')).json()).toEqual({ status: 'ignored', reason: 'not a CTEM ticket' });
    // An update time years ahead would hide every later change: refused, as the workflow would refuse it.
    const future = await send({ ...update, issue: { ...update.issue, fields: { ...fields, updated: '2030-01-01T00:00:00.000+0000' } } }, 'future-1');
    expect(future.status).toBe(400);
    expect(((await future.json()) as { error: { message: string } }).error.message).toMatch(/issue.fields.updated .* more than a day ahead/);
    await eventually(async () => ((await detail(platform, ticket.key)).workflow.phase === 'awaiting-resolution' ? true : undefined), { what: 'acknowledged once' });
    expect((await webhookEventsOf(platform, ticket.key)).map((e) => e.event_id)).toEqual([...before, 'jira:redelivery-1']);
  });

  it('follows the issue through Jira: In Progress acknowledges, Resolved verifies, a clean scan closes it', async () => {
    const target = 'jira/roundtrip:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    const id = ticket.externalSysId!;

    await transition(platform, id, 'In Progress');
    const acked = await eventually(
      async () => {
        const d = await detail(platform, ticket.key);
        return d.workflow.phase === 'awaiting-resolution' && d.state === 'in_progress' ? d : undefined;
      },
      { what: 'acknowledged by the Jira transition' },
    );
    expect(acked.workflow.acknowledgedAt).toBeDefined();
    const events = await webhookEventsOf(platform, ticket.key);
    expect(events.map((e) => e.state)).toContain('In Progress');
    expect(events.every((e) => e.event_id.startsWith('jira:'))).toBe(true);

    await transition(platform, id, 'Resolved');
    await eventually(
      async () => {
        const d = await detail(platform, ticket.key);
        return d.workflow.phase === 'verifying' && d.state === 'resolved' ? d : undefined;
      },
      { what: 'resolved in Jira, waiting for verification' },
    );

    const fixed = await scan(platform, target, imageReport(target, { withoutPackages: ['libssl1.1'] }));
    expect(fixed.status).toBe('completed');
    await eventually(async () => ((await detail(platform, ticket.key)).state === 'verified' ? true : undefined), { what: 'verified ticket' });
    await eventually(async () => ((await issue(platform, id)).fields.status.name === 'Done' ? true : undefined), { what: 'issue closed in Jira' });
    expect(comments(platform, id).some((c) => c.startsWith('Verified: scan'))).toBe(true);
  });

  it('writes an acknowledgement from the API to Jira as a transition and a comment', async () => {
    const target = 'jira/api-ack:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    const res = await platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}/acknowledge`, {
      method: 'POST',
      body: JSON.stringify({ by: 'alex.romero', note: 'on it' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    await eventually(async () => ((await issue(platform, ticket.externalSysId!)).fields.status.name === 'In Progress' ? true : undefined), { what: 'issue In Progress' });
    await eventually(async () => (comments(platform, ticket.externalSysId!).some((c) => c.includes('alex.romero')) ? true : undefined), { what: 'acknowledgement comment' });
  });

  it('escalates a breached acknowledgement: the manager watches the issue, its priority rises, a comment says why', async () => {
    const target = 'jira/escalate:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'org.apache.logging.log4j:log4j-core');
    expect(ticket.tier).toBe('act');
    expect((await issue(platform, ticket.externalSysId!)).fields.priority.name).toBe('High');
    const escalated = await eventually(
      async () => {
        const d = await detail(platform, ticket.key);
        return d.escalations.some((e) => e.level === 1) ? d : undefined;
      },
      { what: 'first escalation', timeoutMs: 60_000 },
    );
    expect(escalated.escalations.find((e) => e.level === 1)).toMatchObject({ phase: 'acknowledgement', notifiedUser: 'jonas.weber' });
    const jonas = accountOf(platform, 'jonas.weber@example.com');
    await eventually(
      async () => {
        const stored = platform.jiraSimulator!.instance.issues().find((i) => i.id === ticket.externalSysId)!;
        return stored.watchers.includes(jonas) && stored.priority === 'Highest' ? true : undefined;
      },
      { what: 'manager watching, priority raised' },
    );
    expect(comments(platform, ticket.externalSysId!).find((c) => c.startsWith('Escalation level 1'))).toMatch(/Jonas Weber \(jonas\.weber\)/);
  });

  it('moves the ticket to the new assignee when the issue is reassigned in Jira', async () => {
    const target = 'jira/reassign:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    const sam = accountOf(platform, 'sam.okafor@example.com');
    const res = await platform.jira(`/rest/api/3/issue/${ticket.externalSysId}/assignee`, { method: 'PUT', body: JSON.stringify({ accountId: sam }) });
    expect(res.status).toBe(204);
    await eventually(async () => ((await detail(platform, ticket.key)).owner === 'sam.okafor' ? true : undefined), { what: 'owner taken from Jira' });
  });
});

describe('Jira reconciliation', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await startTestPlatform({
      CTEM_ITSM: 'jira',
      CTEM_SLA_ACK: '2h',
      CTEM_ESCALATION_INTERVAL: '1h',
      CTEM_TICKET_RECONCILE_INTERVAL: '2s',
      ...SAMPLE_FEEDS_ENV,
    });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('catches a transition whose webhook never arrived by reading the issue back', async () => {
    const target = 'jira/reconcile:1';
    await scan(platform, target);
    const ticket = await openedTicket(platform, target, 'libssl1.1');
    expect(ticket.externalNumber).toMatch(/^CTEM-\d+$/);
    const sim = platform.jiraSimulator!.instance;
    await sim.webhooksIdle();
    const before = await webhookEventsOf(platform, ticket.key);
    // Jira's delivery fails for good (the platform was unreachable): only the read-back can tell.
    sim.setWebhook(undefined);
    await transition(platform, ticket.externalSysId!, 'In Progress');
    const d = await eventually(
      async () => {
        const x = await detail(platform, ticket.key);
        return x.workflow.phase === 'awaiting-resolution' ? x : undefined;
      },
      { what: 'acknowledged by reconciliation', timeoutMs: 30_000 },
    );
    expect(d.workflow.seenEvents.some((e) => e.startsWith(`reconcile:${ticket.externalSysId}:`))).toBe(true);
    expect(await webhookEventsOf(platform, ticket.key)).toEqual(before);
  });
});
