import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditVerification } from '../../access/audit-trail.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';
import { remediationWorkflowId } from '../../mobilization/golden-tickets.js';

// Every mutating route of the OpenAPI document, called with the bootstrap token, leaves exactly one
// audit entry naming the action, the actor and the request id the API answered; reads leave none.

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

/** What each mutating route is recorded as; a new route fails the walk until it is named here. */
const EXPECTED_ACTIONS: Record<string, string> = {
  'POST /api/v1/backtests': 'backtests.create',
  'POST /api/v1/campaigns': 'campaigns.create',
  'POST /api/v1/context': 'context.create',
  'POST /api/v1/context/shadow': 'context.shadow.create',
  'POST /api/v1/events/deploy': 'events.deploy',
  'PUT /api/v1/scopes/{name}': 'scopes.put',
  'DELETE /api/v1/scopes/{name}': 'scopes.delete',
  'POST /api/v1/reports/noise/snapshots': 'reports.noise.snapshots.create',
  'POST /api/v1/gate': 'gate.check',
  'PUT /api/v1/hypotheses/{name}': 'hypotheses.put',
  'DELETE /api/v1/hypotheses/{name}': 'hypotheses.delete',
  'POST /api/v1/hypotheses/{name}/run': 'hypotheses.run',
  'POST /api/v1/hypotheses/{name}/campaign': 'hypotheses.campaign',
  'POST /api/v1/intel/{kind}': 'intel.import',
  'POST /api/v1/intel/feeds/{kind}/{version}/promote': 'intel.feeds.promote',
  'POST /api/v1/intel/feeds/{kind}/runs': 'intel.feeds.run',
  'POST /api/v1/metrics/snapshots': 'metrics.snapshots.create',
  'POST /api/v1/policies': 'policies.create',
  'POST /api/v1/policies/{version}/activate': 'policies.activate',
  'PUT /api/v1/controls/{name}': 'controls.put',
  'DELETE /api/v1/controls/{name}': 'controls.delete',
  'POST /api/v1/reports/orphan-assets': 'reports.orphan-assets.create',
  'POST /api/v1/scans': 'scans.create',
  'PUT /api/v1/sources/{name}': 'sources.put',
  'DELETE /api/v1/sources/{name}': 'sources.delete',
  'POST /api/v1/sources/{name}/runs': 'sources.run',
  'POST /api/v1/tickets/{key}/acknowledge': 'tickets.acknowledge',
  'POST /api/v1/tickets/{key}/resolve': 'tickets.resolve',
  'POST /api/v1/tickets/{key}/risk-acceptance': 'tickets.risk-acceptance',
  'POST /api/v1/validation/evidence': 'validation.evidence.create',
  'POST /api/v1/validations': 'validations.create',
  'POST /api/v1/identities': 'identities.create',
  'PATCH /api/v1/identities/{id}': 'identities.update',
  'POST /api/v1/identities/{id}/tokens': 'tokens.issue',
  'DELETE /api/v1/identities/{id}/tokens/{tokenId}': 'tokens.revoke',
  'POST /api/v1/assets/merges/{id}/undo': 'assets.merge.undo',
};

interface Call {
  path: string;
  body?: unknown;
  target: string | null;
}

/** Calls that succeed, in an order where each finds what it needs; other routes get `{}` and fail validation. */
async function plannedCalls(): Promise<Record<string, Call>> {
  const active = await json<Record<string, unknown>>(platform.api('/api/v1/policies/active'));
  const control = { kind: 'waf', mitigates: { issueIds: ['CVE-2021-44228'] }, appliesTo: { all: true }, effect: 'not_exposed' };
  return {
    'POST /api/v1/policies': { path: '/api/v1/policies', body: { ...active, version: 'audit-walk' }, target: 'audit-walk' },
    'POST /api/v1/policies/{version}/activate': { path: '/api/v1/policies/audit-walk/activate', target: 'audit-walk' },
    'PUT /api/v1/controls/{name}': { path: '/api/v1/controls/walk-waf', body: control, target: 'walk-waf' },
    'DELETE /api/v1/controls/{name}': { path: '/api/v1/controls/walk-waf', target: 'walk-waf' },
    'PUT /api/v1/scopes/{name}': { path: '/api/v1/scopes/walk', body: { selector: { environments: ['production'] } }, target: 'walk' },
    'DELETE /api/v1/scopes/{name}': { path: '/api/v1/scopes/walk', target: 'walk' },
    'PUT /api/v1/sources/{name}': {
      path: '/api/v1/sources/walk-registry',
      body: { kind: 'report-url', config: { url: 'http://127.0.0.1:9/report.json', headers: { Authorization: 'Bearer walk-secret-value' } } },
      target: 'walk-registry',
    },
    'POST /api/v1/sources/{name}/runs': { path: '/api/v1/sources/walk-registry/runs', target: 'walk-registry' },
    'DELETE /api/v1/sources/{name}': { path: '/api/v1/sources/walk-registry', target: 'walk-registry' },
    'POST /api/v1/metrics/snapshots': { path: '/api/v1/metrics/snapshots', target: null },
    'POST /api/v1/intel/feeds/{kind}/runs': { path: '/api/v1/intel/feeds/cve/runs', target: 'cve' },
    'POST /api/v1/intel/feeds/{kind}/{version}/promote': { path: '/api/v1/intel/feeds/kev/no-such-version/promote', target: 'kev/no-such-version' },
    'POST /api/v1/intel/{kind}': { path: '/api/v1/intel/epss', body: 'not,an,epss,file', target: 'epss' },
    'POST /api/v1/tickets/{key}/acknowledge': { path: '/api/v1/tickets/NO-SUCH/acknowledge', body: { by: 'alex' }, target: 'NO-SUCH' },
    'POST /api/v1/identities': { path: '/api/v1/identities', body: { kind: 'service', name: 'audit-walk-service', roles: ['read-only'] }, target: null },
  };
}


async function entriesFor(requestId: string): Promise<AuditEntry[]> {
  return (await json<{ items: AuditEntry[] }>(platform.api(`/api/v1/audit?limit=1000`))).items.filter((e) => e.requestId === requestId);
}

describe('the audit trail over the API', () => {
  it('records every mutating route once, with action, actor, target, outcome and the answered request id', async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(platform.api('/api/v1/openapi.json'));
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.length).toBeGreaterThan(25);
    expect(routes.filter((r) => !EXPECTED_ACTIONS[r]), 'mutating routes without an expected audit action').toEqual([]);
    const planned = await plannedCalls();
    const order = [...Object.keys(planned), ...routes.filter((r) => !planned[r])];
    let succeeded = 0;
    for (const route of order) {
      const [method, pattern] = route.split(' ') as [string, string];
      const call = planned[route] ?? { path: pattern.replace(/\{[^}]+\}/g, 'walk-x'), body: {}, target: (pattern.match(/\{[^}]+\}/g) ?? []).map(() => 'walk-x').join('/') || null };
      const requestId = `walk-${randomUUID()}`;
      const body = call.body === undefined ? undefined : typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
      const res = await platform.api(call.path, {
        method,
        headers: { 'x-request-id': requestId, ...(body && typeof call.body !== 'string' ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer();
      expect(res.headers.get('x-request-id'), route).toBe(requestId);
      const entries = await entriesFor(requestId);
      expect(entries.length, `${route} -> ${res.status}`).toBe(1);
      const [e] = entries as [AuditEntry];
      expect(e.action, route).toBe(EXPECTED_ACTIONS[route]);
      expect([e.actorId, e.actorKind, e.actorName, e.channel]).toEqual(['bootstrap', 'bootstrap', 'api-token', 'api']);
      expect(e.target, route).toBe(call.target);
      expect(e.outcome, `${route} -> ${res.status}`).toBe(res.status < 400 ? 'allowed' : res.status === 401 || res.status === 403 ? 'denied' : 'failed');
      if (planned[route] && !/NO-SUCH|no-such|cve\/runs|intel\/epss/.test(call.path)) {
        expect(res.status, `${route} should succeed`).toBeLessThan(300);
        succeeded += 1;
      }
    }
    expect(succeeded).toBe(11);
    // Reads are not recorded.
    const before = (await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?limit=1'))).items[0]!.id;
    await platform.api('/api/v1/policies');
    expect((await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?limit=1'))).items[0]!.id).toBe(before);
  });

  it('keeps before and after of a policy activation, a control update and a source (credentials hidden)', async () => {
    const [activation] = (await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?action=policies.activate&outcome=allowed'))).items;
    expect(activation).toMatchObject({ target: 'audit-walk', before: { active: 'exploitability-2' }, after: { active: 'audit-walk' } });

    const control = { kind: 'waf', mitigates: { issueIds: ['CVE-2021-44228'] }, appliesTo: { all: true }, effect: 'not_exposed', description: 'first' };
    const put = (body: unknown) => platform.api('/api/v1/controls/edge-waf', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await put(control)).status).toBe(200);
    const update = await put({ ...control, description: 'second', effect: 'not_exploitable' });
    expect(update.status).toBe(200);
    const [entry] = (await json<{ items: AuditEntry[] }>(platform.api(`/api/v1/audit?action=controls&target=edge-waf&limit=1`))).items;
    expect(entry!.requestId).toBe(update.headers.get('x-request-id'));
    expect(entry!.before).toMatchObject({ name: 'edge-waf', description: 'first', effect: 'not_exposed' });
    expect(entry!.after).toMatchObject({ name: 'edge-waf', description: 'second', effect: 'not_exploitable' });

    const source = (await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?action=sources.put&target=walk-registry'))).items[0]!;
    expect(source.after).toMatchObject({ config: { headers: { Authorization: '(hidden)' } } });
    const everything = await (await platform.api('/api/v1/audit?limit=1000')).text();
    expect(everything).not.toContain('walk-secret-value');
  });

  it('records a refused token as denied and ignores requests without credentials', async () => {
    const url = `${platform.apiUrl}/api/v1/scopes/denied`;
    const init = (auth?: string): RequestInit => ({
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}), 'x-request-id': `deny-${auth ? 'token' : 'none'}` },
      body: JSON.stringify({ selector: {} }),
    });
    expect((await fetch(url, init('Bearer not-the-token'))).status).toBe(401);
    expect((await fetch(url, init())).status).toBe(401);
    const denied = await entriesFor('deny-token');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ outcome: 'denied', actorId: 'anonymous', actorKind: 'anonymous', action: 'scopes.put', target: 'denied', before: null, after: null });
    expect(await entriesFor('deny-none')).toHaveLength(0);
  });

  it('answers 503 when the change cannot be recorded, and the chain verifies', async () => {
    const sql = platform.database!.sql;
    await sql`alter table audit_log rename to audit_log_away`;
    let res: Response;
    try {
      res = await platform.api('/api/v1/scopes/unrecorded', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ selector: {} }) });
    } finally {
      await sql`alter table audit_log_away rename to audit_log`;
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('audit_unavailable');

    const verified = await json<AuditVerification>(platform.api('/api/v1/audit/verify'));
    expect(verified.ok).toBe(true);
    expect(verified.checked).toBeGreaterThan(30);
  });

  it('filters and pages: action prefix, outcome, actor, time window, keyset cursor', async () => {
    const page1 = await json<{ items: AuditEntry[]; next: string | null; estimate: { count: number; exact: boolean } }>(platform.api('/api/v1/audit?limit=5'));
    expect(page1.items).toHaveLength(5);
    expect(page1.estimate.exact).toBe(true);
    const page2 = await json<{ items: AuditEntry[] }>(platform.api(`/api/v1/audit?limit=5&after=${page1.next}`));
    expect(page2.items[0]!.id).toBeLessThan(page1.items[4]!.id);
    const policies = await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?action=policies'));
    expect(new Set(policies.items.map((e) => e.action))).toEqual(new Set(['policies.create', 'policies.activate']));
    const failed = await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?outcome=failed&limit=1000'));
    expect(failed.items.length).toBeGreaterThan(5);
    expect(failed.items.every((e) => e.outcome === 'failed')).toBe(true);
    const anonymous = await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?actor=anonymous'));
    expect(anonymous.items).toHaveLength(1);
    const future = await json<{ items: AuditEntry[] }>(platform.api(`/api/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`));
    expect(future.items).toEqual([]);
    const one = await json<AuditEntry>(platform.api(`/api/v1/audit/${policies.items[0]!.id}`));
    expect(one.hash).toBe(policies.items[0]!.hash);
    expect((await platform.api('/api/v1/audit?since=yesterday')).status).toBe(400);
    expect((await platform.api('/api/v1/audit?after=%21%21')).status).toBe(400);
  });
});

describe('ITSM webhooks in the audit trail', () => {
  it('records a ServiceNow change with its user as a service actor, once per event', async () => {
    const key = 'audit-webhook-ticket';
    // A running workflow under the ticket's remediation id takes the signal; no worker polls its queue.
    const handle = await platform.temporalClient.workflow.start('metricsSnapshotWorkflow', { workflowId: remediationWorkflowId(key), taskQueue: `nobody-${randomUUID()}`, args: [{}] });
    try {
      const event = JSON.stringify({ event_id: 'evt-audit-1', state: '2', correlation_id: key, sys_updated_by: 'jonas.weber', assigned_to: 'sys-42' });
      const res = await platform.api('/api/v1/webhooks/servicenow', { method: 'POST', body: event });
      expect(res.status).toBe(202);
      const entries = await entriesFor(res.headers.get('x-request-id')!);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        actorId: 'servicenow:jonas.weber',
        actorName: 'jonas.weber',
        actorKind: 'service',
        action: 'tickets.itsm-event',
        target: key,
        outcome: 'allowed',
        channel: 'webhook',
        after: { itsm: 'servicenow', eventId: 'evt-audit-1', state: '2', assignedTo: 'sys-42' },
      });
      const again = await platform.api('/api/v1/webhooks/servicenow', { method: 'POST', body: event });
      expect(await again.json()).toEqual({ status: 'duplicate' });
      expect(await entriesFor(again.headers.get('x-request-id')!)).toHaveLength(0);
    } finally {
      await handle.terminate();
    }
  });
});

describe('ctem audit', () => {
  it('lists the trail and verifies the chain; a row edited behind the trigger is caught', async () => {
    const list = await runCtem(['audit', 'list', '--action', 'policies', '--outcome', 'allowed'], platformEnv(platform));
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/allowed\s+api\s+api-token {2}policies\.activate {2}audit-walk {2}walk-/);
    expect(list.stdout).toMatch(/^2 of 2 entries$/m);
    const ok = await runCtem(['audit', 'verify'], platformEnv(platform));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^audit trail intact: \d+ entries checked/);

    const sql = platform.database!.sql;
    const [victim] = await sql<{ id: string }[]>`select id from audit_log where action = 'policies.activate'`;
    await sql.begin(async (tx) => {
      await tx`alter table audit_log disable trigger audit_log_append_only`;
      await tx`update audit_log set actor_name = 'someone-else' where id = ${victim!.id}`;
      await tx`alter table audit_log enable trigger audit_log_append_only`;
    });
    const broken = await runCtem(['audit', 'verify'], platformEnv(platform));
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`audit trail BROKEN at entry ${victim!.id}: its content does not match its hash`);
    expect((await json<AuditVerification>(platform.api('/api/v1/audit/verify'))).broken?.id).toBe(Number(victim!.id));
    expect((await runCtem(['audit', 'nonsense'], platformEnv(platform))).code).toBe(2);
  });
});
