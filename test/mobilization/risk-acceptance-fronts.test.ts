import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { riskAcceptanceRefusal } from '../../mobilization/risk-acceptance.js';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';
import { startFakeSlack, type FakeSlack } from '../support/slack-fake.js';
import { buttonClick, signed, viewSubmission } from '../support/slack-requests.js';

// One set of risk-acceptance rules (mobilization/risk-acceptance.ts), two fronts: the Slack modal
// refuses with the rules' own sentences, a refusal by the workflow's validator at approval reaches
// the Slack user as it reaches an API caller, and the API names the field in a 422.

const SECRET = 'slack-signing-secret-for-risk-tests';
const BOT_TOKEN = 'xoxb-ctem-risk-test';
const CHANNEL = 'CSECOPS';
const SECOPS = 'USECOPS';
const ALEX = 'UALEX'; // alex.romero, the owner, and (here) also an approver
const DAY = 86_400_000;

let platform: TestPlatform;
let slack: FakeSlack;
let tickets: TicketRow[];

async function post(body: string) {
  const request = signed(body, SECRET);
  return fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', headers: request.headers, body: request.body });
}

const modalValues = (reason: string, date: string) => ({
  reason: { value: { type: 'plain_text_input', value: reason } },
  expiry: { value: { type: 'datepicker', selected_date: date } },
});
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const submit = async (ticketKey: string, reason: string, date: string) => {
  const res = await post(viewSubmission('exception_request', JSON.stringify({ ticketKey }), modalValues(reason, date), ALEX));
  expect(res.status).toBe(200);
  const text = await res.text();
  return text ? (JSON.parse(text) as { response_action: string; errors: Record<string, string> }) : undefined;
};
const live = (workflowId: string) => platform.temporalClient.workflow.getHandle(workflowId).query(statusQuery) as Promise<RemediationState>;

beforeAll(async () => {
  slack = await startFakeSlack({
    botToken: BOT_TOKEN,
    users: [
      { id: SECOPS, name: 'secops', email: 'secops@example.com' },
      { id: ALEX, name: 'alex', email: 'alex.romero@example.com' },
    ],
    usergroups: {},
  });
  platform = await startTestPlatform({
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    SLACK_CHANNEL: CHANNEL,
    SLACK_AUTHORIZED_USERS: `${SECOPS},${ALEX}`,
    CTEM_SLA_ACK: '1h',
    CTEM_ESCALATION_INTERVAL: '1h',
    CTEM_TICKET_RECONCILE_INTERVAL: '0s',
    ...SAMPLE_FEEDS_ENV,
  });
  const target = 'risk-fronts/api:1.0';
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) });
  expect(res.status).toBe(202);
  tickets = await eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=500'))).items.filter((t) => t.asset.name === target);
      if (items.length !== 2 || !items.every((t) => t.externalNumber)) return undefined;
      const phases = await Promise.all(items.map((t) => live(t.workflowId)));
      return phases.every((s) => s.phase === 'awaiting-acknowledgement') ? items : undefined;
    },
    { what: 'two opened tickets (OS layer, Java libraries)', timeoutMs: 60_000 },
  );
});

afterAll(async () => {
  await platform?.stop();
  await slack?.close();
});

describe('the Slack exception modal', () => {
  it("refuses with the rules' own sentences, on the field's block", async () => {
    const ticket = tickets[0]!;
    const rule = (draft: { reason: string; expiresAt: string }, field: 'reason' | 'expiresAt') => riskAcceptanceRefusal(draft, Date.now(), [field])!.message;
    const inAYear = Date.now() + 400 * DAY;
    expect(await submit(ticket.key, 'patch later', day(inAYear))).toEqual({
      response_action: 'errors',
      errors: { expiry: rule({ reason: '', expiresAt: `${day(inAYear)}T23:59:59.000Z` }, 'expiresAt') },
    });
    expect((await submit(ticket.key, 'patch later', day(inAYear)))!.errors.expiry).toBe('A risk acceptance lasts 365 days at most.');
    expect(await submit(ticket.key, 'soon', day(Date.now() + 30 * DAY))).toEqual({
      response_action: 'errors',
      errors: { reason: 'Say why the risk is accepted, in 10 characters or more.' },
    });
    expect((await submit(ticket.key, 'soon', '2020-01-01'))!.errors).toEqual({
      reason: 'Say why the risk is accepted, in 10 characters or more.',
      expiry: 'The expiry must be in the future.',
    });
    const [row] = await platform.database.sql`select count(*)::int as n from exception_requests where ticket_key = ${ticket.key}`;
    expect(row!.n).toBe(0);
  });
});

describe("the workflow's refusal at approval", () => {
  it('reaches the Slack approver and the API caller in the same words', async () => {
    const ticket = tickets[1]!;
    const expiry = day(Date.now() + 30 * DAY);
    expect(await submit(ticket.key, 'Compensating WAF rule in place until the upgrade.', expiry)).toBeUndefined();
    const approval = await eventually(
      async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks ?? []).includes(ticket.externalNumber!)),
      { what: 'the approval request' },
    );
    const requestId = JSON.parse(JSON.stringify(approval.args.blocks)).find((b: { type: string }) => b.type === 'actions').elements[0].value as string;

    // Alex may approve exceptions, but not his own: the workflow's validator says so.
    const responseUrl = slack.responseUrl();
    const click = await post(buttonClick('exception_approve', requestId, { user: ALEX, channel: CHANNEL, responseUrl, messageTs: '1700000003.000100' }));
    expect(click.status).toBe(200);
    const [reply] = await eventually(async () => {
      const posts = slack.responsesAt(responseUrl);
      return posts.length ? posts : undefined;
    }, { what: 'the reply to the approval' });
    const message = 'The approver must be someone other than the requester.';
    expect(reply!.body.text).toBe(`Could not accept the risk of ${ticket.externalNumber}: ${message}`);
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');
    const [request] = await platform.database.sql`select status from exception_requests where id = ${Number(requestId)}`;
    expect(request!.status).toBe('pending'); // still waiting for someone else

    const api = await platform.api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}/risk-acceptance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requester: 'alex.romero', approver: 'alex.romero', reason: 'Compensating WAF rule in place until the upgrade.', expiresAt: `${expiry}T23:59:59.000Z` }),
    });
    expect(api.status).toBe(422);
    expect(await api.json()).toEqual({ error: { code: 'invalid_risk_acceptance', message, details: { field: 'approver' } } });

    // Someone else approves: accepted.
    await post(buttonClick('exception_approve', requestId, { user: SECOPS, channel: CHANNEL, responseUrl: slack.responseUrl(), messageTs: '1700000004.000100' }));
    const accepted = await eventually(async () => {
      const s = await live(ticket.workflowId);
      return s.phase === 'risk-accepted' ? s : undefined;
    }, { what: 'risk accepted' });
    expect(accepted.riskAcceptance).toMatchObject({ requester: 'alex.romero', approver: `slack:${SECOPS}` });
  });
});
