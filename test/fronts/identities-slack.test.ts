import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { startFakeSlack, type FakeSlack } from '../support/slack-fake.js';
import { buttonClick, signed, slashCommand } from '../support/slack-requests.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// Slack users are platform identities when their profile e-mail is an identity's: they have its
// roles (even against the configured list of security operations) and act under its name. Users
// with no identity keep the configured rules.

const SECRET = 'slack-signing-secret-identities';
const BOT_TOKEN = 'xoxb-ctem-identities';
const CHANNEL = 'CSECOPS';
const RITA = 'URITA'; // read-only identity, though the Slack list names her security operations
const SAM = 'USAM'; // secops identity, not in the Slack list
const OFFBOARDED = 'UGONE'; // a disabled secops identity
const TARGET = 'identities-slack/payments:1.0';

let platform: TestPlatform;
let slack: FakeSlack;
let tickets: TicketRow[];
const live = (workflowId: string) => platform.temporalClient.workflow.getHandle(workflowId).query(statusQuery) as Promise<RemediationState>;

async function post(body: string) {
  const request = signed(body, SECRET);
  const res = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', headers: request.headers, body: request.body });
  expect(res.status).toBe(200);
}

async function replyOn(responseUrl: string): Promise<Record<string, string>> {
  const [reply] = await eventually(async () => {
    const posts = slack.responsesAt(responseUrl);
    return posts.length ? posts : undefined;
  }, { what: `the reply on ${responseUrl}` });
  return reply!.body as Record<string, string>;
}

async function ctem(text: string, user: string) {
  const responseUrl = slack.responseUrl();
  await post(slashCommand(text, { user, channel: CHANNEL, responseUrl }));
  return replyOn(responseUrl);
}

async function acknowledge(key: string, user: string) {
  const responseUrl = slack.responseUrl();
  await post(buttonClick('ticket_acknowledge', key, { user, channel: CHANNEL, responseUrl, messageTs: `${Date.now() / 1000}` }));
  return replyOn(responseUrl);
}

beforeAll(async () => {
  slack = await startFakeSlack({
    botToken: BOT_TOKEN,
    users: [
      { id: RITA, name: 'rita', email: 'Rita.Ng@example.com' },
      { id: SAM, name: 'sam', email: 'sam.lee@example.com' },
      { id: OFFBOARDED, name: 'gone', email: 'gone@example.com' },
    ],
    usergroups: {},
  });
  platform = await startTestPlatform({
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    SLACK_CHANNEL: CHANNEL,
    SLACK_AUTHORIZED_USERS: `${RITA},${OFFBOARDED}`,
    CTEM_SLA_ACK: '4h',
    CTEM_ESCALATION_INTERVAL: '4h',
    ...SAMPLE_FEEDS_ENV,
  });
  const create = (body: Record<string, unknown>) => json<{ id: string }>(platform.api('/api/v1/identities', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  await create({ name: 'rita.ng', email: 'rita.ng@example.com', roles: ['read-only'] });
  await create({ name: 'sam.lee', email: 'sam.lee@example.com', roles: ['secops'] });
  const gone = await create({ name: 'gone', email: 'gone@example.com', roles: ['secops'] });
  await json(platform.api(`/api/v1/identities/${gone.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) }));
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(TARGET)}&filename=trivy.json`, { method: 'POST', body: imageReport(TARGET) });
  expect(res.status).toBe(202);
  tickets = await eventually(
    async () => {
      const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=100'))).items.filter((t) => t.asset.name === TARGET);
      if (!items.length || !items.every((t) => t.externalNumber)) return undefined;
      const phases = await Promise.all(items.map((t) => live(t.workflowId)));
      return phases.every((s) => s.phase === 'awaiting-acknowledgement') ? items : undefined;
    },
    { what: 'opened golden tickets', timeoutMs: 90_000 },
  );
}, 180_000);

afterAll(async () => {
  await platform?.stop();
  await slack?.close();
});

describe('Slack users as identities', () => {
  it('gives a Slack user the roles of the identity with their e-mail, over the configured list', async () => {
    const refused = await ctem('scope create identities-slack prefix=identities-slack/', RITA);
    expect(refused.text).toMatch(/^Sorry, changing scopes is reserved for security operations/);
    const gone = await ctem('scope create identities-slack prefix=identities-slack/', OFFBOARDED);
    expect(gone.text).toMatch(/^Sorry, changing scopes is reserved for security operations/);
    const saved = await ctem('scope create identities-slack prefix=identities-slack/', SAM);
    expect(saved.text).toContain('saved scope *identities-slack*');
  });

  it('refuses an acknowledgement the role lacks, ephemerally, and records the identity of the one who may', async () => {
    const ticket = tickets[0]!;
    const refused = await acknowledge(ticket.key, RITA);
    expect(refused.response_type).toBe('ephemeral');
    expect(refused.text).toMatch(/^Sorry, only the owner of INC\d+ \(alex\.romero\) or security operations can acknowledge it/);
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');
    const done = await acknowledge(ticket.key, SAM);
    expect(done.text).toMatch(/acknowledged by sam\.lee/);
    expect(await live(ticket.workflowId)).toMatchObject({ phase: 'awaiting-resolution', acknowledgedBy: 'sam.lee' });
  });
});
