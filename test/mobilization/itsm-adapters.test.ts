import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceNowSimulator, type ServiceNowSimulator } from '../../mobilization/itsm/servicenow/simulator.js';
import { ServiceNowClient } from '../../mobilization/itsm/servicenow/client.js';
import { serviceNowItsm, serviceNowPeople } from '../../mobilization/itsm/servicenow/adapter.js';
import { createJiraSimulator } from '../../mobilization/itsm/jira/simulator.js';
import { JiraClient } from '../../mobilization/itsm/jira/client.js';
import { jiraItsm } from '../../mobilization/itsm/jira/adapter.js';
import { DEFAULT_JIRA_STATUS_MAP, fromJiraStatus } from '../../mobilization/itsm/jira/states.js';
import type { Itsm } from '../../mobilization/itsm/index.js';

// The ServiceNow side of the neutral Itsm interface, over the simulator: people with whether they
// are active (owner checks send unknown or inactive owners to the orphan queue), keyed creation,
// and the update fields the golden tickets write.

const creds = { user: 'admin', password: 'adapter-test-password' };
let sim: ServiceNowSimulator;
let client: ServiceNowClient;
let itsm: Itsm;

beforeAll(async () => {
  sim = createServiceNowSimulator({ credentials: creds });
  await sim.listen(0);
  client = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 5 });
  itsm = serviceNowItsm(client);
});

afterAll(async () => {
  await sim?.close();
});

describe('the ServiceNow adapter', () => {
  it('finds people by user name, e-mail or sys_id, with whether they are active', async () => {
    const alex = await itsm.findUser('alex.romero');
    expect(alex).toMatchObject({ userName: 'alex.romero', name: 'Alex Romero', email: 'alex.romero@example.com', active: true });
    expect(await itsm.findUser('alex.romero@example.com')).toEqual(alex);
    expect(await itsm.userById(alex!.id)).toEqual(alex);
    expect(await itsm.findUser('nobody.here')).toBeNull();
    const sam = (await itsm.findUser('sam.okafor'))!;
    const res = await fetch(`${sim.url}/api/now/table/sys_user/${sam.id}`, {
      method: 'PATCH',
      headers: { authorization: `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ active: 'false' }),
    });
    expect(res.status).toBe(200);
    expect(await itsm.findUser('sam.okafor')).toMatchObject({ userName: 'sam.okafor', active: false });
    expect((await itsm.managementChain('alex.romero')).map((u) => u.userName)).toEqual(['alex.romero', 'jonas.weber', 'priya.natarajan', 'morgan.blake']);
  });

  it('opens one incident per ticket key and writes state, notes, watchers and escalation', async () => {
    const alex = (await itsm.findUser('alex.romero'))!;
    const jonas = (await itsm.findUser('jonas.weber'))!;
    const t = { ticketKey: 'adapter:sn:1', summary: 'Upgrade log4j-core', description: 'd', assigneeId: alex.id, urgency: '1' as const, owner: 'alex.romero' };
    const opened = await itsm.createTicket(t);
    expect(await itsm.createTicket(t)).toEqual(opened);
    expect(opened).toMatchObject({ number: expect.stringMatching(/^INC\d+$/), state: 'new', assignedTo: alex.id, url: client.incidentUrl(opened.id) });
    const escalated = await itsm.updateTicket(opened.id, { workNote: 'Escalation level 1', escalationLevel: 1, watchersAdd: [jonas.id] });
    await itsm.updateTicket(opened.id, { watchersAdd: [jonas.id] });
    expect(escalated.sequence).toBeGreaterThan(opened.sequence);
    const incident = (await client.getIncident(opened.id))!;
    expect(incident).toMatchObject({ escalation: '1', watch_list: jonas.id });
    const resolved = await itsm.updateTicket(opened.id, { state: 'resolved', workNote: 'fixed', closeNotes: 'fixed' });
    expect(resolved.state).toBe('resolved');
    expect(await client.getIncident(opened.id)).toMatchObject({ state: '6', close_code: 'Solved (Permanently)', close_notes: 'fixed' });
    expect(await itsm.getTicket(opened.id)).toEqual(resolved);
    expect(itsm.ticketUrl({ id: opened.id, number: opened.number })).toBe(opened.url);
  });
});

describe('ServiceNow as the people directory of Jira', () => {
  it('climbs the sys_user manager chain and finds each manager in Jira by e-mail', async () => {
    const jiraCreds = { email: 'ctem-automation@example.com', apiToken: 'people-test-token' };
    const jira = createJiraSimulator({ credentials: jiraCreds });
    await jira.listen(0);
    try {
      const people = serviceNowPeople(client);
      expect(await people.find('alex.romero@example.com')).toEqual({ user: 'alex.romero', name: 'Alex Romero', email: 'alex.romero@example.com', manager: 'jonas.weber', active: true });
      const itsmJira = jiraItsm({
        client: new JiraClient({ baseUrl: jira.url, ...jiraCreds }),
        directory: people,
        routing: { defaultProject: 'CTEM', byOwner: {}, byBusinessService: {} },
        issueType: 'Task',
        statusMap: DEFAULT_JIRA_STATUS_MAP,
        priorities: [],
      });
      const chain = await itsmJira.managementChain('alex.romero');
      expect(chain.map((p) => [p.userName, p.id !== ''])).toEqual([
        ['alex.romero', true],
        ['jonas.weber', true],
        ['priya.natarajan', true],
        ['morgan.blake', true],
      ]);
      expect(chain[1]!.id).toBe(jira.users().find((u) => u.emailAddress === 'jonas.weber@example.com')!.accountId);
    } finally {
      await jira.close();
    }
  });
});

describe('Jira statuses', () => {
  it('maps by name first, then by category; a status without category has no neutral state', () => {
    expect(fromJiraStatus({ name: 'on hold', statusCategory: { key: 'indeterminate', name: 'In Progress' } })).toBe('on_hold');
    expect(fromJiraStatus({ name: 'In Review', statusCategory: { key: 'indeterminate', name: 'In Progress' } })).toBe('in_progress');
    expect(fromJiraStatus({ name: "Won't Do", statusCategory: { key: 'done', name: 'Done' } })).toBe('resolved');
    expect(fromJiraStatus({ name: 'Limbo', statusCategory: { key: 'undefined' as never, name: 'No Category' } })).toBeUndefined();
  });
});
