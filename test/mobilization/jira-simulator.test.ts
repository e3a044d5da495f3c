import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createJiraSimulator, type JiraSimulator } from '../../mobilization/itsm/jira/simulator.js';
import { adf, adfText, JiraClient, JiraError, jiraTimeMs } from '../../mobilization/itsm/jira/client.js';
import { jiraItsm, routeProject, ticketLabel } from '../../mobilization/itsm/jira/adapter.js';
import { DEFAULT_JIRA_STATUS_MAP, fromJiraStatus, parseJiraStatusMap } from '../../mobilization/itsm/jira/states.js';
import { signJiraWebhookBody, verifyJiraWebhookSignature } from '../../mobilization/itsm/jira/webhook-signature.js';
import { PeopleDirectory, parsePeople } from '../../mobilization/itsm/people.js';
import { demoPeople } from '../../platform/connect.js';
import { loadConfig } from '../../config/index.js';
import type { Itsm } from '../../mobilization/itsm/index.js';

// The Jira Cloud simulator over HTTP, held to the REST API v3 shapes the platform relies on (status
// codes, Jira's error bodies, transitions by id, ADF bodies, signed admin webhooks), and the Jira
// adapter on top of it: idempotent creation, routing, the people directory, escalation writes.

const creds = { email: 'ctem-automation@example.com', apiToken: 'api-token-for-tests' };
const SECRET = 'jira-webhook-secret';
const basic = (email: string, token: string) => `Basic ${Buffer.from(`${email}:${token}`).toString('base64')}`;

interface Delivery {
  body: string;
  payload: { webhookEvent: string; issue: { id: string; key: string; fields: { status: { name: string }; updated: string } }; changelog?: { id: string; items: Array<{ field: string; toString: string | null }> } };
  signature: string | undefined;
  identifier: string | undefined;
  answered: number;
}

async function startReceiver() {
  const deliveries: Delivery[] = [];
  const control = { failNext: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answered = control.failNext > 0 ? 500 : 200;
      if (control.failNext > 0) control.failNext--;
      deliveries.push({
        body,
        payload: JSON.parse(body) as Delivery['payload'],
        signature: req.headers['x-hub-signature'] as string | undefined,
        identifier: req.headers['x-atlassian-webhook-identifier'] as string | undefined,
        answered,
      });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/jira`;
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { deliveries, control, url, close };
}

let sim: JiraSimulator;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let client: JiraClient;
const call = (p: string, init: RequestInit = {}, auth = basic(creds.email, creds.apiToken)) =>
  fetch(`${sim.url}${p}`, { ...init, headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json', ...(init.headers ?? {}) } });

beforeAll(async () => {
  receiver = await startReceiver();
  sim = createJiraSimulator({
    credentials: creds,
    users: [
      { displayName: 'Alex Romero', emailAddress: 'alex.romero@example.com' },
      { displayName: 'Jonas Weber', emailAddress: 'jonas.weber@example.com' },
      { displayName: 'Priya Natarajan', emailAddress: 'priya.natarajan@example.com' },
      { displayName: 'Morgan Blake', emailAddress: 'morgan.blake@example.com' },
      { displayName: 'Dana Gone', emailAddress: 'dana.gone@example.com', active: false },
    ],
    webhook: { url: receiver.url, secret: SECRET },
  });
  await sim.listen(0);
  client = new JiraClient({ baseUrl: sim.url, ...creds, retryBaseMs: 5 });
});

afterAll(async () => {
  await sim?.close();
  await receiver?.close();
});

async function newIssue(fields: Record<string, unknown> = {}) {
  const res = await call('/rest/api/3/issue', {
    method: 'POST',
    body: JSON.stringify({ fields: { project: { key: 'CTEM' }, issuetype: { name: 'Task' }, summary: 'Upgrade log4j-core', description: adf('line one\nline two'), ...fields } }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string; self: string };
}

const waitFor = async <T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('Jira simulator over HTTP', () => {
  it('refuses a wrong API token with 401 and Jira error body', async () => {
    const res = await call('/rest/api/3/myself', {}, basic(creds.email, 'wrong'));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ errorMessages: ['Client must be authenticated to access this resource.'], errors: {} });
    const me = (await (await call('/rest/api/3/myself')).json()) as { emailAddress: string; accountId: string };
    expect(me.emailAddress).toBe(creds.email);
    expect(me.accountId).toMatch(/^[0-9a-f]{24}$/);
  });

  it('finds users by e-mail or name and by account id; an unknown account is 404', async () => {
    const [alex] = (await (await call('/rest/api/3/user/search?query=alex.romero@example.com')).json()) as Array<{ accountId: string; displayName: string; active: boolean }>;
    expect(alex).toMatchObject({ displayName: 'Alex Romero', active: true });
    expect(((await (await call('/rest/api/3/user/search?query=jonas')).json()) as unknown[]).length).toBe(1);
    expect(await (await call(`/rest/api/3/user?accountId=${alex!.accountId}`)).json()).toMatchObject({ emailAddress: 'alex.romero@example.com' });
    const missing = await call('/rest/api/3/user?accountId=000000000000000000000000');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { errorMessages: string[] }).errorMessages.length).toBe(1);
    expect((await call('/rest/api/3/user/search')).status).toBe(400);
  });

  it('creates issues with keys per project and answers field errors in `errors`', async () => {
    const first = await newIssue();
    const second = await newIssue();
    expect(first.key).toMatch(/^CTEM-\d+$/);
    expect(Number(second.key.split('-')[1])).toBe(Number(first.key.split('-')[1]) + 1);
    expect(first.self).toBe(`${sim.url}/rest/api/3/issue/${first.id}`);
    const bad = await call('/rest/api/3/issue', { method: 'POST', body: JSON.stringify({ fields: { project: { key: 'NOPE' }, summary: '' } }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ errorMessages: [], errors: { project: 'valid project is required', summary: 'You must specify a summary of the issue.' } });
    const type = await call('/rest/api/3/issue', { method: 'POST', body: JSON.stringify({ fields: { project: { key: 'PAY' }, issuetype: { name: 'Epic' }, summary: 's', labels: ['has space'], description: 'plain text' } }) });
    expect(((await type.json()) as { errors: Record<string, string> }).errors).toEqual({
      issuetype: 'Specify a valid issue type',
      labels: 'The label must not contain spaces.',
      description: 'Operation value must be an Atlassian Document (see the Atlassian Document Format)',
    });
    const notJson = await call('/rest/api/3/issue', { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
  });

  it('reads an issue with the requested fields, and 404s an unknown one', async () => {
    const { key } = await newIssue({ labels: ['ctem', 'ctem-abc'], priority: { name: 'High' } });
    const issue = (await (await call(`/rest/api/3/issue/${key}?fields=summary,status,priority,labels,updated`)).json()) as {
      fields: Record<string, unknown> & { status: { name: string; statusCategory: { key: string } }; updated: string };
    };
    expect(Object.keys(issue.fields).sort()).toEqual(['labels', 'priority', 'status', 'summary', 'updated']);
    expect(issue.fields.status).toMatchObject({ name: 'To Do', statusCategory: { key: 'new' } });
    expect(issue.fields.priority).toMatchObject({ name: 'High' });
    expect(issue.fields.updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
    const missing = await call('/rest/api/3/issue/CTEM-99999');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} });
  });

  it('moves an issue through its workflow by transition id only', async () => {
    const { key } = await newIssue();
    const { transitions } = (await (await call(`/rest/api/3/issue/${key}/transitions`)).json()) as { transitions: Array<{ id: string; name: string; to: { name: string } }> };
    expect(transitions.map((t) => t.to.name)).toEqual(['In Progress', 'On Hold', 'Resolved', 'Done']);
    const start = transitions.find((t) => t.to.name === 'In Progress')!;
    expect((await call(`/rest/api/3/issue/${key}/transitions`, { method: 'POST', body: JSON.stringify({ transition: { id: start.id } }) })).status).toBe(204);
    const again = await call(`/rest/api/3/issue/${key}/transitions`, { method: 'POST', body: JSON.stringify({ transition: { id: start.id } }) });
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({ errorMessages: [`Transition id '${start.id}' is not valid for this issue.`], errors: {} });
    const status = ((await client.getIssue(key))!).fields.status;
    expect(fromJiraStatus(status)).toBe('in_progress');
  });

  it('takes comments in ADF only, watchers by account id, and refuses fields it cannot set', async () => {
    const { key } = await newIssue();
    expect((await call(`/rest/api/3/issue/${key}/comment`, { method: 'POST', body: JSON.stringify({ body: 'plain' }) })).status).toBe(400);
    const comment = await call(`/rest/api/3/issue/${key}/comment`, { method: 'POST', body: JSON.stringify({ body: adf('Escalated to Jonas Weber') }) });
    expect(comment.status).toBe(201);
    const list = await client.comments(key);
    expect(list.map((c) => adfText(c.body))).toEqual(['Escalated to Jonas Weber']);
    const [jonas] = await client.searchUsers('jonas.weber@example.com');
    await client.addWatcher(key, jonas!.accountId);
    await client.addWatcher(key, jonas!.accountId);
    expect((await client.watchers(key)).map((w) => w.displayName).sort()).toEqual(['CTEM automation', 'Jonas Weber']);
    const unknownWatcher = await call(`/rest/api/3/issue/${key}/watchers`, { method: 'POST', body: JSON.stringify('nobody') });
    expect(unknownWatcher.status).toBe(404);
    const status = await call(`/rest/api/3/issue/${key}`, { method: 'PUT', body: JSON.stringify({ fields: { status: { name: 'Done' } } }) });
    expect(status.status).toBe(400);
    expect(((await status.json()) as { errors: Record<string, string> }).errors.status).toMatch(/cannot be set/);
  });

  it('searches by JQL with pages, and names an unknown field', async () => {
    for (let i = 0; i < 3; i++) await newIssue({ labels: ['paged-search'] });
    const page1 = (await (await call('/rest/api/3/search/jql?jql=labels%20%3D%20%22paged-search%22%20ORDER%20BY%20created%20ASC&maxResults=2&fields=summary')).json()) as {
      issues: Array<{ key: string }>;
      isLast: boolean;
      nextPageToken?: string;
    };
    expect(page1.issues).toHaveLength(2);
    expect(page1.isLast).toBe(false);
    const page2 = (await (await call(`/rest/api/3/search/jql?jql=labels%20%3D%20%22paged-search%22&maxResults=2&nextPageToken=${page1.nextPageToken}`)).json()) as { issues: unknown[]; isLast: boolean };
    expect(page2).toMatchObject({ isLast: true });
    expect(page2.issues).toHaveLength(1);
    expect(await client.searchJql('labels = "paged-search" AND project = CTEM', ['summary'], 10)).toHaveLength(3);
    const bad = await call('/rest/api/3/search/jql?jql=colour%20%3D%20red');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errorMessages: string[] }).errorMessages[0]).toBe("Field 'colour' does not exist or you do not have permission to view it.");
  });

  it('sends signed admin webhooks for changes, in order, redelivering with the same identifier', async () => {
    const { id, key } = await newIssue();
    const created = await waitFor(() => receiver.deliveries.find((d) => d.payload.issue?.key === key && d.payload.webhookEvent === 'jira:issue_created'));
    expect(created.signature).toBe(signJiraWebhookBody(created.body, SECRET));
    expect(verifyJiraWebhookSignature(created.body, created.signature, SECRET)).toBe(true);
    expect(verifyJiraWebhookSignature(created.body, created.signature, 'other')).toBe(false);
    receiver.control.failNext = 1;
    await client.transitionIssue(id, '21');
    await client.transitionIssue(id, '41');
    const updates = await waitFor(() => {
      const ok = receiver.deliveries.filter((d) => d.payload.issue?.key === key && d.payload.webhookEvent === 'jira:issue_updated' && d.answered === 200);
      return ok.length === 2 ? ok : undefined;
    });
    expect(updates.map((u) => u.payload.changelog!.items[0])).toMatchObject([
      { field: 'status', toString: 'In Progress' },
      { field: 'status', toString: 'Resolved' },
    ]);
    const first = receiver.deliveries.filter((d) => d.payload.issue?.key === key && d.payload.webhookEvent === 'jira:issue_updated');
    expect(first[0]!.answered).toBe(500);
    expect(first[1]!.identifier).toBe(first[0]!.identifier);
    expect(jiraTimeMs(updates[1]!.payload.issue.fields.updated)).toBeGreaterThan(jiraTimeMs(updates[0]!.payload.issue.fields.updated));
  });

  it('answers injected 429s with Retry-After, which the client waits out', async () => {
    sim.injectFault({ status: 429, count: 2, retryAfterSeconds: 0 });
    expect((await client.myself()).emailAddress).toBe(creds.email);
    sim.injectFault({ status: 503, count: 1, methods: ['GET'] });
    const once = new JiraClient({ baseUrl: sim.url, ...creds, maxRetries: 0 });
    await expect(once.myself()).rejects.toMatchObject({ status: 503, retryable: true });
    await expect(client.getUser('000000000000000000000000')).resolves.toBeNull();
    await expect(new JiraClient({ baseUrl: sim.url, email: creds.email, apiToken: 'nope' }).myself()).rejects.toBeInstanceOf(JiraError);
  });

  it('keeps its issues across restarts when given a state file', async () => {
    const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jira-sim-')), 'state.json');
    const a = createJiraSimulator({ credentials: creds, stateFile });
    await a.listen(0);
    const c1 = new JiraClient({ baseUrl: a.url, ...creds });
    const made = await c1.createIssue({ fields: { project: { key: 'PAY' }, issuetype: { name: 'Task' }, summary: 'kept' } });
    await a.close();
    const b = createJiraSimulator({ credentials: creds, stateFile });
    await b.listen(0);
    try {
      expect((await new JiraClient({ baseUrl: b.url, ...creds }).getIssue(made.key))?.fields.summary).toBe('kept');
    } finally {
      await b.close();
    }
  });
});

describe('the Jira adapter', () => {
  let itsm: Itsm;
  beforeAll(() => {
    itsm = jiraItsm({
      client,
      directory: new PeopleDirectory([...demoPeople, { user: 'dana.gone', email: 'dana.gone@example.com', name: 'Dana Gone', manager: 'jonas.weber', active: true }]),
      routing: { defaultProject: 'CTEM', byOwner: { 'sam.okafor': 'SEC' }, byBusinessService: { Payments: 'PAY' } },
      issueType: 'Task',
      statusMap: DEFAULT_JIRA_STATUS_MAP,
      priorities: ['Highest', 'High', 'Medium', 'Low', 'Lowest'],
    });
  });

  it('finds people through the directory and Jira, with whether they are active', async () => {
    const alex = await itsm.findUser('alex.romero');
    expect(alex).toMatchObject({ userName: 'alex.romero', name: 'Alex Romero', email: 'alex.romero@example.com', active: true });
    expect(alex!.id).toMatch(/^[0-9a-f]{24}$/);
    expect(await itsm.findUser('alex.romero@example.com')).toEqual(alex);
    expect(await itsm.findUser('dana.gone')).toMatchObject({ active: false });
    // In the directory but without a Jira account on this site: unknown to the ITSM.
    expect(await itsm.findUser('sam.okafor')).toBeNull();
    expect(await itsm.findUser('nobody.here')).toBeNull();
    expect(await itsm.userById(alex!.id)).toEqual(alex);
  });

  it('climbs the management chain of the people directory', async () => {
    const chain = await itsm.managementChain('alex.romero');
    expect(chain.map((p) => p.userName)).toEqual(['alex.romero', 'jonas.weber', 'priya.natarajan', 'morgan.blake']);
    expect(chain.every((p) => p.id !== '')).toBe(true);
  });

  it('routes by owner, then business service, then the default project', () => {
    const routing = { defaultProject: 'CTEM', byOwner: { 'sam.okafor': 'SEC' }, byBusinessService: { Payments: 'PAY' } };
    expect(routeProject(routing, undefined, 'sam.okafor', 'Payments')).toBe('SEC');
    expect(routeProject(routing, undefined, 'alex.romero', 'payments')).toBe('PAY');
    expect(routeProject(routing, undefined, 'alex.romero', null)).toBe('CTEM');
  });

  it('creates one issue per ticket key, however often it is asked', async () => {
    const alex = (await itsm.findUser('alex.romero'))!;
    const ticket = { ticketKey: 'img:payments-api|log4j-core|2.17.1', summary: 'Upgrade log4j-core', description: 'Findings:\n- CVE-2021-44228', assigneeId: alex.id, urgency: '1' as const, owner: 'alex.romero', businessService: 'Payments' };
    const [a, b] = await Promise.all([itsm.createTicket(ticket), itsm.createTicket(ticket)].map((p) => p.catch(() => null)));
    const again = await itsm.createTicket(ticket);
    expect(again.number).toMatch(/^PAY-\d+$/);
    expect([a?.id, b?.id].filter(Boolean)).toContain(again.id);
    const issues = sim.issues().filter((i) => i.labels.includes(ticketLabel(ticket.ticketKey)));
    // Concurrent first calls may race (as on Jira); sequential retries never duplicate.
    expect(issues.length).toBeLessThanOrEqual(2);
    expect(again).toMatchObject({ state: 'new', assignedTo: alex.id, url: `${sim.url}/browse/${again.number}` });
    const stored = sim.issues().find((i) => i.id === again.id)!;
    expect(stored).toMatchObject({ priority: 'High', issueType: 'Task', properties: { 'ctem.ticket': { ticketKey: ticket.ticketKey, urgency: '1' } } });
    expect(adfText(stored.description)).toBe('Findings:\n- CVE-2021-44228');
  });

  it('writes states by transition, work notes as comments, watchers and a raised priority', async () => {
    const alex = (await itsm.findUser('alex.romero'))!;
    const jonas = (await itsm.findUser('jonas.weber'))!;
    const t = await itsm.createTicket({ ticketKey: 'adapter-writes', summary: 's', description: 'd', assigneeId: alex.id, urgency: '3', owner: 'alex.romero' });
    const acked = await itsm.updateTicket(t.id, { state: 'in_progress', workNote: 'Acknowledged by alex.romero via api' });
    expect(acked.state).toBe('in_progress');
    expect(acked.sequence).toBeGreaterThan(t.sequence);
    await itsm.updateTicket(t.id, { workNote: 'Escalated', escalationLevel: 1, watchersAdd: [jonas.id] });
    await itsm.updateTicket(t.id, { workNote: 'Escalated again', escalationLevel: 1, watchersAdd: [jonas.id] });
    let stored = sim.issues().find((i) => i.id === t.id)!;
    // Opened Low (urgency 3): the first manager's escalation raises it one step.
    expect(stored.priority).toBe('Medium');
    expect(stored.watchers.filter((w) => w === jonas.id)).toHaveLength(1);
    await itsm.updateTicket(t.id, { escalationLevel: 3 });
    expect(sim.issues().find((i) => i.id === t.id)!.priority).toBe('Highest');
    // Never lowered.
    await itsm.updateTicket(t.id, { escalationLevel: 1 });
    const resolved = await itsm.updateTicket(t.id, { state: 'resolved', workNote: 'Resolved: upgraded', closeNotes: 'Resolved: upgraded' });
    stored = sim.issues().find((i) => i.id === t.id)!;
    expect(resolved.state).toBe('resolved');
    expect(stored.priority).toBe('Highest');
    expect(stored.comments.map((c) => adfText(c.body))).toEqual(['Acknowledged by alex.romero via api', 'Escalated', 'Escalated again', 'Resolved: upgraded']);
    expect(await itsm.getTicket(t.id)).toEqual(resolved);
    expect(await itsm.getTicket('99999999')).toBeNull();
  });

  it('names the transition it could not find when the status map does not fit the workflow', async () => {
    const odd = jiraItsm({
      client,
      directory: new PeopleDirectory(demoPeople),
      routing: { defaultProject: 'CTEM', byOwner: {}, byBusinessService: {} },
      issueType: 'Task',
      statusMap: parseJiraStatusMap('on_hold=Blocked'),
      priorities: [],
    });
    const t = await odd.createTicket({ ticketKey: 'odd-map', summary: 's', description: 'd', urgency: '2', owner: 'alex.romero' });
    await expect(odd.updateTicket(t.id, { state: 'on_hold' })).rejects.toThrow(/cannot move from "To Do" to "Blocked" \(JIRA_STATUS_MAP on_hold\)/);
  });
});

describe('Jira configuration', () => {
  it('reads the people directory from JSON or CSV and names what is wrong', async () => {
    const csv = parsePeople('user,email,name,manager,active\nboss,boss@example.com,The Boss,,true\nada,ada@example.com,"Lovelace, Ada",boss,false\n', 'people.csv');
    expect(csv).toEqual([
      { user: 'boss', email: 'boss@example.com', name: 'The Boss', active: true },
      { user: 'ada', email: 'ada@example.com', name: 'Lovelace, Ada', manager: 'boss', active: false },
    ]);
    expect((await new PeopleDirectory(csv).chain('ada@example.com')).map((p) => p.user)).toEqual(['ada', 'boss']);
    expect(() => parsePeople('[{"user":"a","manager":"ghost"}]', 'p.json')).toThrow("p.json: a's manager ghost is not in the file");
    expect(() => parsePeople('user,email\nb,not-an-email\n', 'p.csv')).toThrow('p.csv line 2: email "not-an-email" is not an e-mail address');
    expect(() => parsePeople('[{"user":"a","active":"maybe"}]', 'p.json')).toThrow('p.json[0]: active must be true or false');
  });

  it('refuses incomplete or malformed Jira settings, naming each', () => {
    expect(loadConfig({ CTEM_ITSM: 'jira' })).toMatchObject({ itsm: 'jira', jira: { routing: { defaultProject: 'CTEM' }, issueType: 'Task' } });
    expect(() => loadConfig({ CTEM_ITSM: 'remedy' })).toThrow(/CTEM_ITSM/);
    expect(() => loadConfig({ JIRA_BASE_URL: 'https://x.atlassian.net' })).toThrow('JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN go together');
    const site = { JIRA_BASE_URL: 'https://x.atlassian.net', JIRA_EMAIL: 'ctem@example.com', JIRA_API_TOKEN: 't' };
    expect(() => loadConfig({ CTEM_ITSM: 'jira', ...site })).toThrow('JIRA_WEBHOOK_SECRET: required with JIRA_BASE_URL');
    expect(loadConfig({ CTEM_ITSM: 'jira', ...site, JIRA_WEBHOOK_SECRET: 's' }).jira).toMatchObject({ url: site.JIRA_BASE_URL, webhookSecret: 's' });
    expect(() => loadConfig({ JIRA_PROJECT: 'lower' })).toThrow('JIRA_PROJECT: "lower" is not a Jira project key');
    expect(() => loadConfig({ JIRA_PROJECT_BY_SERVICE: 'Payments' })).toThrow('JIRA_PROJECT_BY_SERVICE: "Payments" is not name=PROJECTKEY');
    expect(() => loadConfig({ JIRA_STATUS_MAP: 'done=Done' })).toThrow('JIRA_STATUS_MAP: done is not a ticket state');
    expect(() => loadConfig({ CTEM_PEOPLE_FILE: '/nonexistent/people.csv' })).toThrow('CTEM_PEOPLE_FILE: /nonexistent/people.csv: cannot read (ENOENT)');
    const c = loadConfig({ JIRA_PROJECT_BY_OWNER: 'sam.okafor=SEC', JIRA_PROJECT_BY_SERVICE: 'Payments API=PAY', JIRA_PRIORITIES: '' });
    expect(c.jira.routing).toEqual({ defaultProject: 'CTEM', byOwner: { 'sam.okafor': 'SEC' }, byBusinessService: { 'Payments API': 'PAY' } });
    expect(c.jira.priorities).toEqual([]);
  });
});
