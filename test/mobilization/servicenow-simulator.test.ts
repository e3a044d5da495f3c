import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import {
  createServiceNowSimulator,
  defaultDemoOrganisation,
  signWebhookBody,
  verifyWebhookSignature,
  type ServiceNowSimulator,
  type WebhookPayload,
} from '../../mobilization/itsm/servicenow/simulator.js';
import { ServiceNowClient, ServiceNowError, encodeQuery, IncidentState } from '../../mobilization/itsm/servicenow/client.js';

const creds = { user: 'ctem.integration', password: 'correct horse battery staple' };
const SECRET = 'webhook-secret-for-tests';
const SYS_ID = /^[0-9a-f]{32}$/;
const GLIDE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface Delivery {
  body: string;
  payload: WebhookPayload;
  signature: string | undefined;
  eventIdHeader: string | undefined;
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
        payload: JSON.parse(body) as WebhookPayload,
        signature: req.headers['x-servicenow-signature'] as string | undefined,
        eventIdHeader: req.headers['x-servicenow-event-id'] as string | undefined,
        answered,
      });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/servicenow`;
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { deliveries, control, url, close };
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function countingFetch() {
  const calls: string[] = [];
  const f: typeof fetch = (input, init) => {
    calls.push(`${init?.method ?? 'GET'} ${String(input)}`);
    return fetch(input, init);
  };
  return { calls, fetch: f };
}

describe('ServiceNow simulator over HTTP', () => {
  let dir: string;
  let sim: ServiceNowSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let client: ServiceNowClient;
  let api: (p: string, init?: RequestInit) => Promise<Response>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-sim-'));
    receiver = await startReceiver();
    sim = createServiceNowSimulator({
      credentials: creds,
      stateFile: path.join(dir, 'state.json'),
      webhook: { url: receiver.url, secret: SECRET },
    });
    await sim.listen(0);
    client = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 10 });
    api = (p, init = {}) =>
      fetch(sim.url + p, {
        ...init,
        headers: { Authorization: basic(creds.user, creds.password), 'Content-Type': 'application/json', ...init.headers },
      });
  });

  afterAll(async () => {
    await sim?.close();
    await receiver?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers the health check without credentials', async () => {
    const res = await fetch(`${sim.url}/__simulator/healthz`);
    expect(res.status).toBe(200);
  });

  it('rejects missing and wrong credentials with 401 like ServiceNow', async () => {
    for (const headers of [{} as Record<string, string>, { Authorization: basic(creds.user, 'wrong') }, { Authorization: basic('nobody', creds.password) }]) {
      const res = await fetch(`${sim.url}/api/now/table/incident`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="Service-now"');
      const body = (await res.json()) as { status: string; error: { message: string } };
      expect(body.status).toBe('failure');
      expect(body.error.message).toBe('User Not Authenticated');
    }
  });

  it('creates an incident with ServiceNow numbering, system fields and reference shapes', async () => {
    const res = await api('/api/now/table/incident', {
      method: 'POST',
      body: JSON.stringify({ short_description: 'CVE-2024-0001 on payments-api', assigned_to: 'alex.romero', urgency: 2, impact: '1' }),
    });
    expect(res.status).toBe(201);
    const { result } = (await res.json()) as { result: Record<string, unknown> };
    expect(result.number).toBe('INC0010001');
    expect(result.sys_id).toMatch(SYS_ID);
    expect(result.state).toBe('1');
    expect(result.urgency).toBe('2'); // numbers are stored and returned as strings
    expect(result.priority).toBe('2'); // impact 1 x urgency 2
    expect(result.sys_mod_count).toBe('0');
    expect(result.sys_created_on).toMatch(GLIDE_TIME);
    expect(result.sys_created_by).toBe(creds.user);
    expect(result.caller_id).toBe('');
    const alex = sim.records('sys_user').find((u) => u.user_name === 'alex.romero')!;
    expect(result.assigned_to).toEqual({ link: `${sim.url}/api/now/table/sys_user/${alex.sys_id}`, value: alex.sys_id });
    const apiUser = sim.records('sys_user').find((u) => u.user_name === creds.user)!;
    expect((result.opened_by as { value: string }).value).toBe(apiUser.sys_id);
    for (const [k, v] of Object.entries(result)) {
      if (['assigned_to', 'opened_by'].includes(k)) continue;
      expect(typeof v, k).toBe('string');
    }

    const insert = await waitFor(() => receiver.deliveries.find((d) => d.payload.sys_id === result.sys_id));
    expect(insert.payload).toMatchObject({
      table: 'incident',
      operation: 'insert',
      number: 'INC0010001',
      state: '1',
      previous_state: '',
      assigned_to: alex.sys_id,
    });
    expect(insert.signature).toBe(signWebhookBody(insert.body, SECRET));
    expect(verifyWebhookSignature(insert.body, insert.signature, SECRET)).toBe(true);
    expect(verifyWebhookSignature(insert.body, insert.signature, 'other-secret')).toBe(false);
    expect(verifyWebhookSignature(insert.body, undefined, SECRET)).toBe(false);
    expect(insert.eventIdHeader).toBe(insert.payload.event_id);
  });

  it('sends the webhook on a state change with previous_state, and not for a work note alone', async () => {
    const inc = await client.createIncident({ correlation_id: 'ctem:wh-1', short_description: 'webhook test' });
    await waitFor(() => receiver.deliveries.find((d) => d.payload.sys_id === inc.sys_id));
    const updated = await client.updateIncident(inc.sys_id, { state: IncidentState.InProgress });
    expect(updated.state).toBe('2');
    expect(updated.sys_mod_count).toBe('1');
    const change = await waitFor(() =>
      receiver.deliveries.find((d) => d.payload.sys_id === inc.sys_id && d.payload.operation === 'update'),
    );
    // The record's version travels with the event, so a receiver can drop one that arrives late.
    expect(change.payload).toMatchObject({ state: '2', previous_state: '1', correlation_id: 'ctem:wh-1', sys_mod_count: '1' });
    expect(change.payload.changed_fields).toContain('state');
    expect(verifyWebhookSignature(change.body, change.signature, SECRET)).toBe(true);

    await client.addWorkNote(inc.sys_id, 'only a note');
    await sim.webhooksIdle();
    expect(receiver.deliveries.filter((d) => d.payload.sys_id === inc.sys_id)).toHaveLength(2);

    const resolved = await client.updateIncident(inc.sys_id, { state: IncidentState.Resolved, close_code: 'Solved (Permanently)' });
    expect(resolved.resolved_at).toMatch(GLIDE_TIME);
    const again = await waitFor(() =>
      receiver.deliveries.find((d) => d.payload.sys_id === inc.sys_id && d.payload.state === '6'),
    );
    expect(again.payload.previous_state).toBe('2');
    expect(Number(again.payload.sys_mod_count)).toBeGreaterThan(Number(change.payload.sys_mod_count));
  });

  it('re-delivers a webhook after the receiver answered 500', async () => {
    receiver.control.failNext = 1;
    const inc = await client.createIncident({ correlation_id: 'ctem:wh-retry', short_description: 'retry me' });
    const attempts = await waitFor(() => {
      const mine = receiver.deliveries.filter((d) => d.payload.sys_id === inc.sys_id);
      return mine.length >= 2 ? mine : undefined;
    });
    expect(attempts.map((a) => a.answered)).toEqual([500, 200]);
    expect(attempts[0]!.payload.event_id).toBe(attempts[1]!.payload.event_id);
    expect(verifyWebhookSignature(attempts[1]!.body, attempts[1]!.signature, SECRET)).toBe(true);
  });

  it('keeps createIncident idempotent on correlation_id', async () => {
    const a = await client.createIncident({ correlation_id: 'ctem:finding:42', short_description: 'first' });
    const b = await client.createIncident({ correlation_id: 'ctem:finding:42', short_description: 'second' });
    expect(b.sys_id).toBe(a.sys_id);
    expect(b.short_description).toBe('first');
    expect(sim.records('incident').filter((r) => r.correlation_id === 'ctem:finding:42')).toHaveLength(1);
    expect((await client.findIncidentByCorrelationId('ctem:finding:42'))?.number).toBe(a.number);
    expect(await client.findIncidentByCorrelationId('ctem:finding:none')).toBeNull();
    await expect(client.createIncident({ correlation_id: 'x^ORactive=true' })).rejects.toThrow(RangeError);
  });

  it('stores work notes as sys_journal_field rows and reads work_notes back as ""', async () => {
    const inc = await client.createIncident({ correlation_id: 'ctem:notes', short_description: 'notes' });
    const after = await client.addWorkNote(inc.sys_id, 'Exploit observed in the wild; raising urgency.');
    expect(after.work_notes).toBe('');
    expect((await client.getIncident(inc.sys_id))?.work_notes).toBe('');
    const q = encodeURIComponent(`element_id=${inc.sys_id}^element=work_notes`);
    const res = await api(`/api/now/table/sys_journal_field?sysparm_query=${q}`);
    const { result } = (await res.json()) as { result: Array<Record<string, string>> };
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({
      element: 'work_notes',
      element_id: inc.sys_id,
      name: 'incident',
      value: 'Exploit observed in the wild; raising urgency.',
      sys_created_by: creds.user,
    });
    expect(result[0]!.sys_created_on).toMatch(GLIDE_TIME);

    const sam = (await client.getUser('sam.okafor'))!;
    const escalated = await client.updateIncident(inc.sys_id, { escalation: '1', watch_list: sam.sys_id });
    expect(escalated).toMatchObject({ escalation: '1', watch_list: sam.sys_id });
  });

  describe('encoded queries and paging', () => {
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      const rows = [
        { correlation_id: 'q-1', short_description: 'SQL injection in login', urgency: '1' },
        { correlation_id: 'q-2', short_description: 'Outdated OpenSSL', urgency: '2' },
        { correlation_id: 'q-3', short_description: 'Open S3 bucket', urgency: '3' },
        { correlation_id: 'q-4', short_description: 'Weak TLS cipher', urgency: '1', assigned_to: 'jonas.weber' },
      ];
      for (const r of rows) ids[r.correlation_id] = (await client.createIncident(r)).sys_id;
    });

    const corr = async (query: string) => {
      const res = await api(`/api/now/table/incident?sysparm_query=${encodeURIComponent(query)}`);
      expect(res.status).toBe(200);
      const { result } = (await res.json()) as { result: Array<{ correlation_id: string }> };
      return result.map((r) => r.correlation_id);
    };

    it('supports ^, ^OR, ^NQ and the comparison operators', async () => {
      expect(await corr('correlation_idSTARTSWITHq-^urgency=1')).toEqual(['q-1', 'q-4']);
      expect(await corr('correlation_idSTARTSWITHq-^urgency=1^ORurgency=3')).toEqual(['q-1', 'q-3', 'q-4']);
      expect(await corr('correlation_idSTARTSWITHq-^urgency!=1')).toEqual(['q-2', 'q-3']);
      expect(await corr('correlation_idSTARTSWITHq-^short_descriptionLIKEopen')).toEqual(['q-2', 'q-3']);
      expect(await corr('correlation_idSTARTSWITHq-^short_descriptionENDSWITHbucket')).toEqual(['q-3']);
      expect(await corr('correlation_idINq-1,q-3')).toEqual(['q-1', 'q-3']);
      expect(await corr('correlation_id=q-1^NQcorrelation_id=q-2')).toEqual(['q-1', 'q-2']);
      expect(await corr('correlation_idSTARTSWITHq-^urgency>=2')).toEqual(['q-2', 'q-3']);
      expect(await corr('correlation_idSTARTSWITHq-^urgency<2')).toEqual(['q-1', 'q-4']);
      expect(await corr('correlation_idSTARTSWITHq-^assigned_toISNOTEMPTY')).toEqual(['q-4']);
      expect(await corr('correlation_idSTARTSWITHq-^assigned_toISEMPTY')).toEqual(['q-1', 'q-2', 'q-3']);
    });

    it('orders with ORDERBY / ORDERBYDESC and compares references by sys_id', async () => {
      expect(await corr('correlation_idSTARTSWITHq-^ORDERBYDESCnumber')).toEqual(['q-4', 'q-3', 'q-2', 'q-1']);
      expect(await corr('correlation_idSTARTSWITHq-^ORDERBYDESCurgency^ORDERBYnumber')).toEqual(['q-3', 'q-2', 'q-1', 'q-4']);
      const jonas = (await client.getUser('jonas.weber'))!;
      expect(await corr(`assigned_to=${jonas.sys_id}`)).toEqual(['q-4']);
      expect(await corr('assigned_to.user_name=jonas.weber')).toEqual(['q-4']);
    });

    it('queries through the client with encodeQuery', async () => {
      const q = encodeQuery([['correlation_id', 'IN', ['q-1', 'q-2', 'q-4']], ['urgency', '=', 1]], { orderByDesc: 'number' });
      expect(q).toBe('correlation_idINq-1,q-2,q-4^urgency=1^ORDERBYDESCnumber');
      const rows = await client.queryIncidents(q);
      expect(rows.map((r) => r.correlation_id)).toEqual(['q-4', 'q-1']);
      expect(rows[0]!.assigned_to).toMatch(SYS_ID); // flattened reference
      const slim = await client.queryIncidents(q, { fields: ['number', 'correlation_id'], limit: 1 });
      expect(slim).toEqual([{ number: expect.stringMatching(/^INC\d{7}$/), correlation_id: 'q-4' }]);
      expect(() => encodeQuery([['short_description', '=', 'a^b']])).toThrow(RangeError);
      expect(() => encodeQuery([['state', 'IN', ['1,2']]])).toThrow(RangeError);
      expect(() => encodeQuery([['state', '=', 'javascript:gs.getUserID()']])).toThrow(RangeError);
      expect(() => encodeQuery([['State', '=', '1']])).toThrow(RangeError);
    });

    it('returns only sysparm_fields', async () => {
      const res = await api(`/api/now/table/incident/${ids['q-4']}?sysparm_fields=number,state,assigned_to`);
      const { result } = (await res.json()) as { result: Record<string, unknown> };
      expect(Object.keys(result).sort()).toEqual(['assigned_to', 'number', 'state']);
      expect(result.assigned_to).toMatchObject({ value: expect.stringMatching(SYS_ID) });
    });

    it('pages with sysparm_limit / sysparm_offset, X-Total-Count and Link', async () => {
      const q = encodeURIComponent('correlation_idSTARTSWITHq-^ORDERBYnumber');
      const first = await api(`/api/now/table/incident?sysparm_query=${q}&sysparm_limit=3&sysparm_fields=correlation_id`);
      expect(first.headers.get('x-total-count')).toBe('4');
      const link = first.headers.get('link')!;
      expect(link).toContain('rel="first"');
      expect(link).toContain('rel="last"');
      expect(link).toMatch(/sysparm_offset=3>;rel="next"/);
      expect(link).not.toContain('rel="prev"');
      expect(((await first.json()) as { result: unknown[] }).result).toHaveLength(3);

      const second = await api(`/api/now/table/incident?sysparm_query=${q}&sysparm_limit=3&sysparm_offset=3`);
      expect(second.headers.get('x-total-count')).toBe('4');
      expect(second.headers.get('link')).toContain('rel="prev"');
      expect(second.headers.get('link')).not.toContain('rel="next"');
      const { result } = (await second.json()) as { result: Array<{ correlation_id: string }> };
      expect(result.map((r) => r.correlation_id)).toEqual(['q-4']);

      const paged = await client.queryIncidents('correlation_idSTARTSWITHq-^ORDERBYnumber', { limit: 2, offset: 1 });
      expect(paged.map((r) => r.correlation_id)).toEqual(['q-2', 'q-3']);
    });
  });

  it('answers 404 for an unknown sys_id, 400 for an unknown table and for invalid JSON', async () => {
    const missing = await api(`/api/now/table/incident/${'0'.repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { message: 'No Record found' }, status: 'failure' });
    expect(await client.getIncident('0'.repeat(32))).toBeNull();

    // A real instance answers 400, not 404, for a table that does not exist.
    const table = await api('/api/now/table/u_no_such_table');
    expect(table.status).toBe(400);
    expect(await table.json()).toEqual({ error: { message: 'Invalid table u_no_such_table', detail: null }, status: 'failure' });

    const bad = await api('/api/now/table/incident', { method: 'POST', body: '{"short_description": ' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { status: string }).status).toBe('failure');
  });

  it('walks the management chain through sys_user.manager', async () => {
    const chain = await client.managementChain('alex.romero');
    expect(chain.map((u) => u.user_name)).toEqual(['alex.romero', 'jonas.weber', 'priya.natarajan', 'morgan.blake']);
    expect(chain[0]!.manager).toBe(chain[1]!.sys_id);
    expect(chain[3]!.manager).toBe('');
    const bySysId = await client.managementChain(chain[1]!.sys_id);
    expect(bySysId.map((u) => u.user_name)).toEqual(['jonas.weber', 'priya.natarajan', 'morgan.blake']);
    const byEmail = await client.getUser('sam.okafor@example.com');
    expect(byEmail?.title).toBe('Security Operations Analyst');
    expect(await client.managementChain('no.such.user')).toEqual([]);
    expect(defaultDemoOrganisation.map((u) => u.user_name)).toContain('sam.okafor');
  });

  describe('fault injection and client retries', () => {
    it('survives 3 x 429 (Retry-After: 0) and 2 x 503 and creates exactly one incident', async () => {
      let res = await fetch(`${sim.url}/__simulator/faults`, {
        method: 'POST',
        body: JSON.stringify({ status: 429, count: 3, retryAfterSeconds: 0 }),
      });
      expect(res.status).toBe(200);
      res = await fetch(`${sim.url}/__simulator/faults`, { method: 'POST', body: JSON.stringify({ status: 503, count: 2 }) });
      expect(res.status).toBe(200);

      const counted = countingFetch();
      const c = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 10, fetch: counted.fetch });
      const inc = await c.createIncident({ correlation_id: 'ctem:faults', short_description: 'flaky instance' });
      expect(inc.number).toMatch(/^INC\d{7}$/);
      expect(sim.records('incident').filter((r) => r.correlation_id === 'ctem:faults')).toHaveLength(1);
      // 3 x 429 + 2 x 503 failed lookups, then one lookup and one POST
      expect(counted.calls.filter((x) => x.startsWith('GET'))).toHaveLength(6);
      expect(counted.calls.filter((x) => x.startsWith('POST'))).toHaveLength(1);
    });

    it('answers an injected 429 with Retry-After and the ServiceNow error body', async () => {
      sim.injectFault({ status: 429, count: 1, retryAfterSeconds: 2 });
      const raw = await api('/api/now/table/incident?sysparm_limit=1');
      expect(raw.status).toBe(429);
      expect(raw.headers.get('retry-after')).toBe('2');
      expect(((await raw.json()) as { status: string }).status).toBe('failure');
      expect((await api('/api/now/table/incident?sysparm_limit=1')).status).toBe(200);
    });

    it('looks again before re-posting when the POST itself failed', async () => {
      sim.injectFault({ status: 500, count: 2, methods: ['POST'] });
      const counted = countingFetch();
      const c = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 10, fetch: counted.fetch });
      await c.createIncident({ correlation_id: 'ctem:post-faults', short_description: 'post fails twice' });
      expect(sim.records('incident').filter((r) => r.correlation_id === 'ctem:post-faults')).toHaveLength(1);
      expect(counted.calls.map((x) => x.split(' ')[0])).toEqual(['GET', 'POST', 'GET', 'POST', 'GET', 'POST']);
    });

    it('gives up after maxRetries with a retryable ServiceNowError', async () => {
      sim.injectFault({ status: 503, count: 3 });
      const c = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 5, maxRetries: 1 });
      const err = await c.getIncident('1'.repeat(32)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceNowError);
      expect(err).toMatchObject({ status: 503, method: 'GET', retryable: true, path: `/api/now/table/incident/${'1'.repeat(32)}` });
      await fetch(`${sim.url}/__simulator/faults`, { method: 'DELETE' });
    });

    it('does not retry 404 or 400', async () => {
      const counted = countingFetch();
      const c = new ServiceNowClient({ baseUrl: sim.url, ...creds, retryBaseMs: 5, fetch: counted.fetch });
      const notFound = await c.updateIncident('2'.repeat(32), { state: '2' }).catch((e: unknown) => e);
      expect(notFound).toMatchObject({ status: 404, retryable: false, serviceNowMessage: 'No Record found' });
      expect(counted.calls).toHaveLength(1);

      const wrongTable = new ServiceNowClient({
        baseUrl: sim.url,
        ...creds,
        incidentTable: 'u_missing',
        fetch: counted.fetch,
      });
      const invalid = await wrongTable.queryIncidents('active=true').catch((e: unknown) => e);
      expect(invalid).toBeInstanceOf(ServiceNowError);
      expect(invalid).toMatchObject({ status: 400, retryable: false, serviceNowMessage: 'Invalid table u_missing' });
      expect(counted.calls).toHaveLength(2);

      const badAuth = new ServiceNowClient({ baseUrl: sim.url, user: creds.user, password: 'nope', fetch: counted.fetch });
      await expect(badAuth.getUser('alex.romero')).rejects.toMatchObject({ status: 401, retryable: false });
      expect(counted.calls).toHaveLength(3);
    });
  });
});

describe('ServiceNow simulator persistence and seeds', () => {
  it('keeps records and numbering across a restart on the same state file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-sim-state-'));
    const stateFile = path.join(dir, 'nested', 'servicenow.json');
    try {
      const first = createServiceNowSimulator({ credentials: creds, stateFile });
      await first.listen(0);
      const c1 = new ServiceNowClient({ baseUrl: first.url, ...creds });
      const a = await c1.createIncident({ correlation_id: 'persist-1', short_description: 'before restart' });
      expect(a.number).toBe('INC0010001');
      await c1.addWorkNote(a.sys_id, 'note before restart');
      const users = first.records('sys_user').length;
      await first.close();

      expect(fs.readdirSync(path.dirname(stateFile))).toEqual(['servicenow.json']); // no tmp file left
      const second = createServiceNowSimulator({ credentials: creds, stateFile });
      await second.listen(0);
      try {
        expect(second.records('sys_user')).toHaveLength(users); // not seeded twice
        expect(second.records('sys_journal_field')).toHaveLength(1);
        const c2 = new ServiceNowClient({ baseUrl: second.url, ...creds });
        expect((await c2.findIncidentByCorrelationId('persist-1'))?.sys_id).toBe(a.sys_id);
        const b = await c2.createIncident({ correlation_id: 'persist-2', short_description: 'after restart' });
        expect(b.number).toBe('INC0010002');
      } finally {
        await second.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses the given user seed and stops the management chain at a cycle', async () => {
    const sim = createServiceNowSimulator({
      credentials: creds,
      users: [
        { user_name: 'a.one', name: 'A One', email: 'a@example.com', manager: 'b.two' },
        { user_name: 'b.two', name: 'B Two', email: 'b@example.com', manager: 'a.one' },
      ],
    });
    await sim.listen(0);
    try {
      const c = new ServiceNowClient({ baseUrl: sim.url, ...creds });
      expect((await c.managementChain('a.one')).map((u) => u.user_name)).toEqual(['a.one', 'b.two']);
      expect(sim.records('sys_user').map((u) => u.user_name).sort()).toEqual(['a.one', 'b.two', creds.user]);
    } finally {
      await sim.close();
    }
  });
});
