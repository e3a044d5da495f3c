import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { campaignWorkflow } from '../../workflows/campaign.js';
import { orphanReportWorkflow } from '../../workflows/orphan-report.js';
import { createSlackNotifier } from '../../slack/notifier.js';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';
import { startFakeSlack, type FakeSlack } from '../support/slack-fake.js';
import { buttonClick, signed, slashCommand, viewSubmission, type SignOptions } from '../support/slack-requests.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// The Slack bot against the real platform: signed requests to /slack/events on the API, the real
// Temporal server and PostgreSQL behind it, and a local fake of the Slack Web API (SLACK_API_URL)
// that records what the bot says. Images are named slack-bot/... so no other test file shares them.

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const SECRET = 'slack-signing-secret-for-tests';
const BOT_TOKEN = 'xoxb-ctem-test';
const CHANNEL = 'CSECOPS';
const SECOPS = 'USECOPS'; // authorized by list
const GROUPIE = 'UGROUPIE'; // authorized through the user group
const ALEX = 'UALEX'; // alex.romero, the owner in the ServiceNow simulator
const JONAS = 'UJONAS'; // jonas.weber, alex's manager
const BOB = 'UBOB'; // anybody
const UI = 'http://temporal-ui.test';
const ACK_SLA_S = 15;

let platform: TestPlatform;
let slack: FakeSlack;
let scanner: Server;
let scannerUrl: string;

async function post(body: string, options: SignOptions = {}) {
  const request = signed(body, SECRET, options);
  return fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', headers: request.headers, body: request.body });
}

/** Runs `/ctem <text>` and returns what the bot answered on the command's response URL. */
async function ctem(text: string, user = SECOPS, channel = CHANNEL) {
  const responseUrl = slack.responseUrl();
  const res = await post(slashCommand(text, { user, channel, responseUrl }));
  expect(res.status).toBe(200);
  const [reply] = await eventually(async () => {
    const posts = slack.responsesAt(responseUrl);
    return posts.length ? posts : undefined;
  }, { what: `the reply to /ctem ${text}` });
  return { ...reply!.body, responseUrl, all: JSON.stringify(reply!.body) } as Record<string, any> & { all: string; responseUrl: string };
}

async function click(actionId: string, value: string, user: string, messageTs = `${Date.now() / 1000}`, responseUrl = slack.responseUrl()) {
  const res = await post(buttonClick(actionId, value, { user, channel: CHANNEL, responseUrl, messageTs }));
  expect(res.status).toBe(200);
  return responseUrl;
}

async function replyOn(responseUrl: string, count = 1) {
  const posts = await eventually(async () => {
    const p = slack.responsesAt(responseUrl);
    return p.length >= count ? p : undefined;
  }, { what: `reply on ${responseUrl}` });
  return posts[count - 1]!.body as Record<string, any>;
}

type Ticket = TicketRow;

async function ticketsOn(asset: string, count: number): Promise<Ticket[]> {
  return eventually(async () => {
    const items = (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?limit=500'))).items.filter((t) => t.asset.name === asset);
    return items.length === count && items.every((t) => t.externalNumber) ? items : undefined;
  }, { what: `${count} opened tickets on ${asset}`, timeoutMs: 60_000 });
}

async function scan(target: string) {
  const res = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}&filename=trivy.json`, { method: 'POST', body: imageReport(target) });
  expect(res.status).toBe(202);
}

const live = (workflowId: string) => platform.temporalClient.workflow.getHandle(workflowId).query(statusQuery) as Promise<RemediationState>;

beforeAll(async () => {
  slack = await startFakeSlack({
    botToken: BOT_TOKEN,
    users: [
      { id: SECOPS, name: 'secops', email: 'secops@example.com' },
      { id: GROUPIE, name: 'groupie', email: 'groupie@example.com' },
      { id: ALEX, name: 'alex', email: 'alex.romero@example.com' },
      { id: JONAS, name: 'jonas', email: 'jonas.weber@example.com' },
      { id: BOB, name: 'bob', email: 'bob@example.com' },
    ],
    usergroups: { SSECOPS: [GROUPIE] },
  });
  // A scanner that publishes one report per image: the target of a campaign's rescans.
  scanner = createServer((req, res) => {
    if (req.url?.startsWith('/missing')) return void res.writeHead(404).end();
    const target = decodeURIComponent(new URL(req.url ?? '/', 'http://x').searchParams.get('image') ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(imageReport(target));
  });
  await new Promise<void>((r) => scanner.listen(0, '127.0.0.1', r));
  scannerUrl = `http://127.0.0.1:${(scanner.address() as AddressInfo).port}`;
  platform = await startTestPlatform({
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    SLACK_CHANNEL: CHANNEL,
    SLACK_AUTHORIZED_USERS: SECOPS,
    SLACK_AUTHORIZED_USERGROUP: 'SSECOPS',
    TEMPORAL_UI_URL: UI,
    CTEM_SLA_ACK: `${ACK_SLA_S}s`,
    CTEM_ESCALATION_INTERVAL: '3s',
    CTEM_ESCALATION_DIGEST_WINDOW: '2s',
    ...SAMPLE_FEEDS_ENV,
  });
});

afterAll(async () => {
  await platform?.stop();
  await slack?.close();
  await new Promise((r) => scanner?.close(r));
});

describe('requests to /slack/events', () => {
  it('checked the bot token with auth.test at start', () => {
    expect(slack.callsTo('auth.test').length).toBeGreaterThanOrEqual(1);
  });

  it('refuses a bad signature, a stale timestamp and a replay with 401, and does nothing for them', async () => {
    const badUrl = slack.responseUrl();
    const bad = await post(slashCommand('help', { user: SECOPS, channel: CHANNEL, responseUrl: badUrl }), { secret: 'not-the-secret' });
    expect(bad.status).toBe(401);
    const forged = await post(slashCommand('help', { user: SECOPS, channel: CHANNEL, responseUrl: badUrl }), { signature: 'v0=' + '0'.repeat(64) });
    expect(forged.status).toBe(401);
    const unsigned = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', body: slashCommand('help', { user: SECOPS, channel: CHANNEL, responseUrl: badUrl }) });
    expect(unsigned.status).toBe(401);

    const staleUrl = slack.responseUrl();
    const stale = await post(slashCommand('help', { user: SECOPS, channel: CHANNEL, responseUrl: staleUrl }), { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    expect(stale.status).toBe(401);
    expect(await stale.text()).toMatch(/stale/);

    const onceUrl = slack.responseUrl();
    const request = signed(slashCommand('help', { user: SECOPS, channel: CHANNEL, responseUrl: onceUrl }), SECRET);
    const first = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', headers: request.headers, body: request.body });
    expect(first.status).toBe(200);
    const replay = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', headers: request.headers, body: request.body });
    expect(replay.status).toBe(401);
    expect(await replay.text()).toMatch(/replayed/);

    await replyOn(onceUrl);
    await new Promise((r) => setTimeout(r, 500));
    expect(slack.responsesAt(onceUrl)).toHaveLength(1); // the replay did nothing
    expect(slack.responsesAt(badUrl)).toHaveLength(0);
    expect(slack.responsesAt(staleUrl)).toHaveLength(0);
  });

  it('answers Slack within its 3 seconds and replies on the response URL', async () => {
    const responseUrl = slack.responseUrl();
    const started = Date.now();
    const res = await post(slashCommand('scopes', { user: BOB, channel: CHANNEL, responseUrl }));
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await replyOn(responseUrl)).response_type).toBe('ephemeral');
  });
});

describe('/ctem', () => {
  it('shows help, and help again for input it does not understand (no stack trace)', async () => {
    const help = await ctem('help', BOB);
    expect(help.all).toContain('/ctem campaign start');
    expect(help.all).toContain('/ctem mine');
    const empty = await ctem('', BOB);
    expect(empty.all).toContain('/ctem campaign start');
    const unknown = await ctem('frobnicate the payments service', BOB);
    expect(unknown.text).toMatch(/I do not know `frobnicate the payments service`/);
    expect(unknown.all).toContain('/ctem campaign start');
    expect(unknown.all).not.toMatch(/Error|\bat \w+ \(/);
    const bad = await ctem('scope create x color=blue', SECOPS);
    expect(bad.all).toMatch(/unknown scope field color/);
  });

  it('creates and lists scopes for security operations, and refuses others politely', async () => {
    const refused = await ctem('scope create slack-bot prefix=slack-bot/', BOB);
    expect(refused.text).toMatch(/^Sorry, changing scopes is reserved for security operations/);
    expect((await ctem('scopes', BOB)).all).not.toContain('slack-bot');

    const saved = await ctem('scope create slack-bot prefix=slack-bot/ "images of the Slack tests"', SECOPS);
    expect(saved.response_type).toBe('in_channel');
    expect(saved.text).toContain('saved scope *slack-bot*');
    const viaGroup = await ctem('scope create slack-bot-prod prefix=slack-bot/ env=production', GROUPIE);
    expect(viaGroup.text).toContain('saved scope *slack-bot-prod*');
    expect(slack.callsTo('usergroups.users.list').length).toBeGreaterThanOrEqual(1);

    const scopes = await ctem('scopes', BOB);
    expect(scopes.all).toContain('slack-bot');
    expect(scopes.all).toContain('assetNamePrefix');
    expect(scopes.all).toContain('images of the Slack tests');
  });

  it('refuses to start a campaign for someone outside security operations', async () => {
    const refused = await ctem('campaign start slack-bot', BOB);
    expect(refused.text).toMatch(/^Sorry, starting a campaign is reserved for security operations/);
    const campaigns = await platform.database.sql`select id from campaigns where requested_by = ${`slack:${BOB}`}`;
    expect(campaigns).toHaveLength(0);
    const started = [];
    for await (const w of platform.temporalClient.workflow.list({ query: `WorkflowType = 'campaignWorkflow' AND TaskQueue = '${platform.env.CTEM_TASK_QUEUE}-bulk'` })) started.push(w);
    expect(started).toHaveLength(0);
  });
});

describe('campaigns, exposures and tickets', () => {
  const ackImage = 'slack-bot/ack-api:1.0';
  const exceptionImage = 'slack-bot/exception-api:1.0';
  const escalationImage = 'slack-bot/escalation-api:1.0';
  let ackTickets: Ticket[];
  let exceptionTickets: Ticket[];
  let escalationTickets: Ticket[];

  beforeAll(async () => {
    for (const image of [ackImage, exceptionImage, escalationImage]) await scan(image);
    [ackTickets, exceptionTickets, escalationTickets] = await Promise.all([ticketsOn(ackImage, 2), ticketsOn(exceptionImage, 2), ticketsOn(escalationImage, 2)]);
  });

  it('requests an exception in a modal; security approves it in the channel and the risk is accepted', async () => {
    const ticket = exceptionTickets.find((t) => t.key.startsWith('manifest~'))!;
    const status = await ctem(`status ${ticket.externalNumber}`, ALEX);
    expect(status.all).toContain('ticket_request_exception');

    const triggerId = `trigger-exception-${Date.now()}`;
    const res = await post(buttonClick('ticket_request_exception', ticket.key, { user: ALEX, channel: CHANNEL, responseUrl: slack.responseUrl(), messageTs: '1700000001.000100', triggerId }));
    expect(res.status).toBe(200);
    const opened = await eventually(async () => slack.callsTo('views.open').find((c) => c.args.trigger_id === triggerId), { what: 'the modal' });
    expect(opened.args.view.callback_id).toBe('exception_request');

    const expiry = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    const values = (reason: string, date: string) => ({ reason: { value: { type: 'plain_text_input', value: reason } }, expiry: { value: { type: 'datepicker', selected_date: date } } });
    // A date in the past is refused in the modal itself.
    const invalid = await post(viewSubmission('exception_request', opened.args.view.private_metadata, values('Compensating WAF rule in place until the upgrade.', '2020-01-01'), ALEX));
    expect(invalid.status).toBe(200);
    expect(await invalid.json()).toEqual({ response_action: 'errors', errors: { expiry: 'The expiry must be in the future.' } });
    // So is a requester who is neither the owner nor security operations.
    const stranger = await post(viewSubmission('exception_request', opened.args.view.private_metadata, values('Compensating WAF rule in place until the upgrade.', expiry), BOB));
    expect(((await stranger.json()) as { errors: { reason: string } }).errors.reason).toMatch(/Only the owner \(alex.romero\)/);

    const submitted = await post(viewSubmission('exception_request', opened.args.view.private_metadata, values('Compensating WAF rule in place until the upgrade.', expiry), ALEX));
    expect(submitted.status).toBe(200);
    expect(await submitted.text()).toBe('');
    const approval = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks ?? []).includes('exception_approve') && JSON.stringify(c.args.blocks).includes(ticket.externalNumber!)), { what: 'the approval request' });
    expect(JSON.stringify(approval.args.blocks)).toContain('Compensating WAF rule');
    const requestId = JSON.parse(JSON.stringify(approval.args.blocks)).find((b: any) => b.type === 'actions').elements[0].value as string;
    // While it waits, a second request for the same ticket is refused in the modal.
    const twice = await post(viewSubmission('exception_request', opened.args.view.private_metadata, values('Another reason, submitted twice.', expiry), ALEX));
    expect(await twice.json()).toEqual({ response_action: 'errors', errors: { reason: `Request ${requestId} for this ticket is already waiting for security operations.` } });
    await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === ALEX && String(c.args.text).startsWith('Your exception request')), { what: 'the requester told' });

    // Only approvers may decide.
    const refused = await replyOn(await click('exception_approve', requestId, ALEX));
    expect(refused.text).toMatch(/^Sorry, deciding exceptions is reserved for security operations/);
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');

    // A double click approves once.
    const [a, b] = await Promise.all([click('exception_approve', requestId, SECOPS, '1700000002.000100'), click('exception_approve', requestId, SECOPS, '1700000002.000100')]);
    const state = await eventually(async () => {
      const s = await live(ticket.workflowId);
      return s.phase === 'risk-accepted' ? s : undefined;
    }, { what: 'risk accepted' });
    expect(state.riskAcceptance).toMatchObject({ requester: 'alex.romero', approver: `slack:${SECOPS}`, reason: 'Compensating WAF rule in place until the upgrade.', expiresAt: `${expiry}T23:59:59.000Z` });
    const updated = await eventually(async () => {
      const calls = slack.callsTo('chat.update').filter((c) => c.args.ts === approval.result.ts && c.args.channel === approval.result.channel);
      return calls.length ? calls : undefined;
    }, { what: 'the approval message updated' });
    await new Promise((r) => setTimeout(r, 500));
    expect(slack.callsTo('chat.update').filter((c) => c.args.ts === approval.result.ts)).toHaveLength(1);
    expect(JSON.stringify(updated[0]!.args.blocks)).toContain('Approved by');
    expect(JSON.stringify(updated[0]!.args.blocks)).not.toContain('exception_approve');
    const told = slack.callsTo('chat.postMessage').filter((c) => c.args.channel === ALEX && String(c.args.text).includes('was approved'));
    expect(told).toHaveLength(1);
    const second = [...slack.responsesAt(a), ...slack.responsesAt(b)];
    expect(second.every((r) => !String(r.body.text).startsWith('Could not'))).toBe(true);
    const late = await replyOn(await click('exception_approve', requestId, SECOPS));
    expect(late.text).toMatch(new RegExp(`^Request ${requestId} was already approved by <@${SECOPS}>`));
  });

  it('rejects an exception in the channel: the requester is told and the SLA runs on', async () => {
    const ticket = exceptionTickets.find((t) => t.key.startsWith('os-layer~'))!;
    const expiry = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    const submitted = await post(
      viewSubmission('exception_request', JSON.stringify({ ticketKey: ticket.key }), { reason: { value: { type: 'plain_text_input', value: 'We would rather not patch this week.' } }, expiry: { value: { type: 'datepicker', selected_date: expiry } } }, ALEX),
    );
    expect(await submitted.text()).toBe('');
    const approval = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks ?? []).includes('rather not patch')), { what: 'the approval request' });
    const requestId = (approval.args.blocks as any[]).find((b) => b.type === 'actions').elements[1].value as string;
    await click('exception_reject', requestId, GROUPIE); // a member of the security user group
    const updated = await eventually(async () => slack.callsTo('chat.update').find((c) => c.args.ts === approval.result.ts), { what: 'the request marked rejected' });
    expect(JSON.stringify(updated.args.blocks)).toContain(`Rejected by <@${GROUPIE}>`);
    await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === ALEX && String(c.args.text).startsWith(`Your exception for ${ticket.externalNumber} was rejected`)), { what: 'the requester told' });
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');
    const [row] = await platform.database.sql`select status, decided_by from exception_requests where id = ${Number(requestId)}`;
    expect(row).toEqual({ status: 'rejected', decided_by: `slack:${GROUPIE}` });
  });

  it('acknowledges a ticket from the Acknowledge button: the Update stops its escalation', async () => {
    const mine = await ctem('mine', ALEX);
    expect(mine.text).toMatch(/Your open golden tickets, Alex Romero/);
    const ticket = ackTickets.find((t) => t.key.startsWith('manifest~'))!;
    expect(mine.all).toContain(ticket.externalNumber!);
    expect(mine.all).toContain('ticket_acknowledge');
    expect(mine.all).toContain('ticket_request_exception');

    // Somebody else may not.
    const bobReply = await replyOn(await click('ticket_acknowledge', ticket.key, BOB));
    expect(bobReply.text).toMatch(/^Sorry, only the owner of INC\d+ \(alex.romero\) or security operations can acknowledge it/);
    expect((await live(ticket.workflowId)).phase).toBe('awaiting-acknowledgement');

    // A double click on one message is one acknowledgement.
    const messageTs = '1700000000.000100';
    const [first, second] = await Promise.all([click('ticket_acknowledge', ticket.key, ALEX, messageTs), click('ticket_acknowledge', ticket.key, ALEX, messageTs)]);
    for (const url of [first, second]) expect((await replyOn(url)).text).toMatch(/acknowledged by alex\.romero/);
    const state = await live(ticket.workflowId);
    expect(state.phase).toBe('awaiting-resolution');
    expect(state.acknowledgedBy).toBe('alex.romero');

    // A click on another message changes nothing: the workflow keeps the first acknowledgement.
    const again = await replyOn(await click('ticket_acknowledge', ticket.key, ALEX));
    expect(again.text).toMatch(/acknowledged by alex\.romero/);
    expect((await live(ticket.workflowId)).acknowledgedAt).toBe(state.acknowledgedAt);

    // A refusal shows the workflow's reason: this ticket's risk was accepted in the previous test.
    const accepted = exceptionTickets.find((t) => t.key.startsWith('manifest~'))!;
    const refused = await replyOn(await click('ticket_acknowledge', accepted.key, ALEX));
    expect(refused.text).toMatch(new RegExp(`^Could not acknowledge ${accepted.externalNumber}: ${accepted.externalNumber} is risk-accepted until \\d{4}-`));
    // Every click that reached the workflow is in the audit trail, with the ITSM name of who clicked.
    const audited = await platform.database.sql`select target, actor_name, outcome from audit_log where channel = 'slack' and action = 'tickets.acknowledge' order by id`;
    expect(audited.map((r) => [r.target, r.actor_name, r.outcome])).toEqual([...Array(3).fill([ticket.key, 'alex.romero', 'allowed']), [accepted.key, 'alex.romero', 'failed']]);

  });

  it('after the acknowledgement deadline: the acknowledged and the risk-accepted tickets were not escalated, their siblings were', async () => {
    const acknowledged = ackTickets.find((t) => t.key.startsWith('manifest~'))!;
    const accepted = exceptionTickets.find((t) => t.key.startsWith('manifest~'))!;
    const deadline = Date.parse((await live(acknowledged.workflowId)).ackDueAt);
    const wait = deadline + 4_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await eventually(async () => {
      const siblings = await Promise.all([...ackTickets, ...exceptionTickets].filter((t) => t.key !== acknowledged.key && t.key !== accepted.key).map((t) => live(t.workflowId)));
      return siblings.every((s) => s.escalationLevel >= 1) ? true : undefined;
    }, { what: 'the siblings escalated', timeoutMs: 60_000 });
    const a = await live(acknowledged.workflowId);
    expect(a.phase).toBe('awaiting-resolution');
    expect(a.escalationLevel).toBe(0);
    const b = await live(accepted.workflowId);
    expect(b.phase).toBe('risk-accepted');
    expect(b.escalationLevel).toBe(0);
    expect(await platform.database.sql`select * from escalations where ticket_key in ${platform.database.sql([acknowledged.key, accepted.key])}`).toHaveLength(0);
  });

  it('sends each manager one escalation digest per round, found by e-mail, naming every overdue ticket', async () => {
    const ticket = escalationTickets.find((t) => t.key.startsWith('manifest~'))!;
    const names = (c: { args: Record<string, any> }, t: Ticket) => JSON.stringify(c.args.blocks).includes(`|${t.externalNumber}>`);
    const dm = await eventually(async () => {
      const posts = slack.callsTo('chat.postMessage').filter((c) => c.args.channel === `D${JONAS}` && names(c, ticket));
      return posts.length ? posts : undefined;
    }, { what: 'the escalation digest', timeoutMs: 60_000 });
    expect(slack.callsTo('users.lookupByEmail').some((c) => c.args.email === 'jonas.weber@example.com')).toBe(true);
    expect(slack.callsTo('conversations.open').some((c) => c.args.users === JONAS)).toBe(true);
    const message = dm[0]!.args;
    expect(message.text).toMatch(/^Escalation: \d+ overdue tickets? of your reports/);
    // The image's tickets breached together: one message names them all.
    for (const t of escalationTickets) expect(names(dm[0]!, t)).toBe(true);
    const body = JSON.stringify(message.blocks);
    expect(body).toContain('Alex Romero');
    expect(body).toContain('What is asked of you');
    expect(body).toContain('level 1');
    // Level 2 goes to priya.natarajan, who is not on Slack: security operations hear of it instead.
    await eventually(async () => ((await live(ticket.workflowId)).escalationLevel >= 2 ? true : undefined), { what: 'level 2', timeoutMs: 60_000 });
    const level1 = slack.callsTo('chat.postMessage').filter((c) => c.args.channel === `D${JONAS}` && names(c, ticket));
    expect(level1).toHaveLength(1);
    const fallback = await eventually(
      async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && String(c.args.text).startsWith('Priya Natarajan (priya.natarajan) is not on Slack') && names(c, ticket)),
      { what: 'level 2 in the channel' },
    );
    expect(fallback.args.text).toMatch(/overdue tickets? of your reports/);
  });

  it('starts a real campaign workflow from a slash command and posts its results', async () => {
    const put = await platform.api('/api/v1/sources/slack-bot-scanner', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'report-url', config: { url: `${scannerUrl}/report?image={target}`, format: 'trivy-json' }, schedule: null }),
    });
    expect(put.status).toBeLessThan(300);
    // A source that cannot serve the scope's images fails its runs; the campaign reports the rest.
    const missing = await platform.api('/api/v1/sources/slack-bot-missing', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'report-url', config: { url: `${scannerUrl}/missing?image={target}` }, schedule: null }),
    });
    expect(missing.status).toBeLessThan(300);
    const started = await ctem('campaign start slack-bot Log4Shell CVE-2021-44228 on the Slack test images', SECOPS);
    expect(started.response_type).toBe('in_channel');
    const id = /campaign:slack-bot:[0-9a-f]{8}/.exec(started.all)![0];
    const namespace = platform.env.TEMPORAL_NAMESPACE ?? 'default';
    expect(started.all).toContain(`${UI}/namespaces/${namespace}/workflows/${encodeURIComponent(id)}`);

    const result = await platform.temporalClient.workflow.getHandle(id).result();
    // The visibility query the refusal test relies on does find campaigns.
    await eventually(async () => {
      for await (const w of platform.temporalClient.workflow.list({ query: `WorkflowType = 'campaignWorkflow' AND TaskQueue = '${platform.env.CTEM_TASK_QUEUE}-bulk'` })) {
        if (w.workflowId === id) return true;
      }
      return undefined;
    }, { what: 'the campaign in the visibility store' });
    expect(result.phase).toBe('done');
    expect(result.discovery).toEqual({ runs: 6, completed: 3, failed: 3 }); // one rescan per image of the scope and source
    const scans = await platform.database.sql`select target from scans where source = 'slack-bot-scanner' and status = 'completed'`;
    expect(scans.map((s) => s.target)).toEqual(expect.arrayContaining(['slack-bot/ack-api:1.0', 'slack-bot/exception-api:1.0', 'slack-bot/escalation-api:1.0']));

    const posted = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && String(c.args.text).startsWith(`Campaign ${id}:`)), { what: 'the results message' });
    const blocks = JSON.stringify(posted.args.blocks);
    expect(blocks).toContain('Top exposures, and why');
    expect(blocks).toContain('CVE-2021-44228');
    expect(blocks).toContain('in CISA KEV');
    expect(blocks).toContain(`Workflow \`${id}\``);
    expect(blocks).toContain(encodeURIComponent(id));
    expect(blocks).toMatch(/Hypothesis: CVE-2021-44228 open on 3 exposures in scope/);
    expect(blocks).toContain('Discovery: 6 source runs, 3 failed');

    const status = await ctem(`status ${id}`, BOB);
    expect(status.all).toMatch(/completed, \d+ open exposures in scope/);

    // The campaign validated its scope after the rescoring; the results went to the same channel.
    expect(result.validation).toEqual({ workflowId: `validation:slack-bot:${id.split(':').pop()}`, failed: false });
    const validation = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && String(c.args.text).startsWith(`Validation validation:slack-bot:`)), { what: 'the validation results message' });
    expect(JSON.stringify(validation.args.blocks)).toContain('Safe checks: off (no allow-list configured)');
  });

  it('starts a validation from a slash command, for authorized people only', async () => {
    const refused = await ctem('validate estate', BOB);
    expect(refused.text).toMatch(/^Sorry, starting a validation is reserved for security operations/);
    expect(await platform.database.sql`select id from validation_runs where requested_by = ${`slack:${BOB}`}`).toHaveLength(0);
    const started = await ctem('validate estate', SECOPS);
    expect(started.response_type).toBe('in_channel');
    const id = /validation:estate:[0-9a-f]{8}/.exec(started.all)![0];
    await platform.temporalClient.workflow.getHandle(id).result();
    const posted = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.channel === CHANNEL && String(c.args.text).startsWith(`Validation ${id}:`)), { what: 'the validation results message' });
    expect(JSON.stringify(posted.args.blocks)).toContain('Attack paths to crown jewels');
    const unknown = await ctem('validate no-such-scope', SECOPS);
    expect(unknown.all).toContain('There is no scope called *no-such-scope*');
  });

  it('says so in the channel when a campaign fails', async () => {
    const id = 'campaign:slack-bot-gone:00000000';
    await expect(
      platform.temporalClient.workflow.execute(campaignWorkflow, { workflowId: id, taskQueue: platform.env.CTEM_TASK_QUEUE!, args: [{ scope: 'slack-bot-gone', requestedBy: 'test', channel: CHANNEL }] }),
    ).rejects.toThrow();
    const posted = await eventually(async () => slack.callsTo('chat.postMessage').find((c) => c.args.text === `Campaign ${id} failed: no scope named slack-bot-gone`), { what: 'the failure message' });
    expect(posted.args.channel).toBe(CHANNEL);
    const status = await ctem(`status ${id}`, BOB);
    expect(status.all).toContain('failed: no scope named slack-bot-gone');
  });

  it('lists the top exposures of a scope with their explanations', async () => {
    const top = await ctem('top slack-bot', BOB);
    expect(top.text).toMatch(/^Top exposures in slack-bot: \d+ open exposures, top CVE-/);
    expect(top.all).toContain('CVE-2021-44228');
    expect(top.all).toContain('in CISA KEV');
    // The feeds and the exposure, then the decision they led to.
    expect(top.all).toMatch(/9\d\.\d+% chance of exploitation activity in 30 days/);
    expect(top.all).toContain('row 13: exploited, not exposed, automatable, total impact');
    const unknown = await ctem('top no-such-scope', BOB);
    expect(unknown.text).toMatch(/There is no scope called \*no-such-scope\*/);
  });

  it('shows the status of a ticket with its live workflow state', async () => {
    const ticket = ackTickets[0]!;
    const byKey = await ctem(`status ${ticket.key}`, BOB);
    expect(byKey.all).toContain(ticket.externalNumber!);
    const byNumber = await ctem(`status ${ticket.externalNumber}`, BOB);
    expect(byNumber.all).toContain(ticket.key);
    const unknown = await ctem('status INC9999999', BOB);
    expect(unknown.text).toMatch(/I know no campaign or golden ticket called `INC9999999`/);
  });

  it('tells someone unknown to the ITSM that it cannot find their tickets', async () => {
    const mine = await ctem('mine', BOB);
    expect(mine.text).toMatch(/could not match your Slack e-mail/);
  });
});

describe('orphan assets', () => {
  it('answers /ctem orphans and posts the weekly report once per report', async () => {
    await platform.api(`/api/v1/scans?target=${encodeURIComponent('slack-bot/orphan:1.0')}&filename=trivy.json`, { method: 'POST', body: imageReport('slack-bot/orphan:1.0') });
    await eventually(async () => ((await platform.database.sql`select 1 from assets where name = 'slack-bot/orphan:1.0'`).length ? true : undefined), { what: 'the orphan asset' });
    const reply = await ctem('orphans', BOB);
    expect(reply.all).toMatch(/assets have no owner/);

    const run = await platform.temporalClient.workflow.execute(orphanReportWorkflow, { workflowId: `orphan-report:slack-test:${Date.now()}`, taskQueue: platform.env.CTEM_TASK_QUEUE! });
    expect(run.notified).toBe(true);
    const posted = slack.callsTo('chat.postMessage').filter((c) => c.args.channel === CHANNEL && String(c.args.text).includes('assets without an owner'));
    expect(posted.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(posted.at(-1)!.args.blocks)).toContain('slack-bot/orphan:1.0');
  });

  it('posts a notice at most once, however often it is retried', async () => {
    const notifier = createSlackNotifier(
      { botToken: BOT_TOKEN, apiUrl: slack.apiUrl, channel: CHANNEL, authorizedUsers: [] },
      platform.database,
    );
    const notice = {
      id: `orphan-report:test-${Date.now()}`,
      generatedAt: new Date().toISOString(),
      orphanedAssets: 1,
      openFindings: 2,
      sample: [{ assetKey: 'k', name: 'retried-notice-asset', openFindings: 2 }],
      orphanTickets: 1,
      ticketSample: [{ ticket: 'INC0010042', assetName: 'shop/typo:1', reason: 'owner alex.romer0 not found in ServiceNow', owner: 'sam.okafor' }],
    };
    await Promise.all([notifier.orphanReport(notice), notifier.orphanReport(notice)]);
    await notifier.orphanReport(notice);
    const posts = slack.callsTo('chat.postMessage').filter((c) => JSON.stringify(c.args).includes('retried-notice-asset'));
    expect(posts).toHaveLength(1);
    // The orphan queue is in the same report: which ticket, why, and who holds it meanwhile.
    expect(JSON.stringify(posts[0]!.args.blocks)).toContain('INC0010042 on shop/typo:1: owner alex.romer0 not found in ServiceNow (held by sam.okafor)');

    // A post Slack refused is not remembered as sent: the retry posts it.
    slack.notMemberOf.add('CGONE');
    const gone = createSlackNotifier({ botToken: BOT_TOKEN, apiUrl: slack.apiUrl, channel: 'CGONE', authorizedUsers: [] }, platform.database);
    const second = { ...notice, id: `${notice.id}-b`, sample: [{ assetKey: 'k', name: 'refused-notice-asset', openFindings: 2 }] };
    await expect(gone.orphanReport(second)).rejects.toThrow(/not_in_channel/);
    slack.notMemberOf.delete('CGONE');
    await gone.orphanReport(second);
    expect(slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'CGONE' && JSON.stringify(c.args).includes('refused-notice-asset'))).toHaveLength(2);
  });
});
