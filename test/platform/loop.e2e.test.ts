import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// The whole loop against the real Temporal server, real PostgreSQL and the ServiceNow simulator over
// HTTP: a Trivy report becomes scored findings, golden tickets and incidents; acknowledgement in
// ServiceNow stops escalation; silence climbs the management chain (alex.romero -> jonas.weber ->
// priya.natarajan -> morgan.blake in the simulator's demo organisation).

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const report = readFileSync(join(fixtures, 'trivy-payments-api.json'));

const ACK_SLA_S = 6;
const ESCALATION_INTERVAL_S = 2;

type Ticket = TicketRow;

let platform: TestPlatform;

async function uploadScan(target: string, body: Buffer | string = imageReport(target), owner = 'alex.romero') {
  const res = await platform.api(`/api/v1/scans?owner=${owner}&target=${encodeURIComponent(target)}&filename=trivy-payments-api.json`, {
    method: 'POST',
    body,
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { scanId: string; workflowId: string };
}

async function scanDone(scanId: string) {
  return eventually(
    async () => {
      const scan = await json<{ status: string; counts: Record<string, number>; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return scan.status === 'running' ? undefined : scan;
    },
    { what: `scan ${scanId}` },
  );
}

async function tickets(owner?: string): Promise<Ticket[]> {
  return (await json<{ items: Ticket[] }>(platform.api(`/api/v1/tickets${owner ? `?owner=${owner}` : ''}`))).items;
}

async function openedTicketsFor(assetName: string, count: number): Promise<Ticket[]> {
  return eventually(
    async () => {
      const mine = (await tickets()).filter((t) => t.asset.name === assetName);
      return mine.length === count && mine.every((t) => t.externalNumber) ? mine : undefined;
    },
    { what: `${count} opened tickets on ${assetName}` },
  );
}

async function snTable<T>(path: string): Promise<T[]> {
  return (await json<{ result: T[] }>(platform.serviceNow(path))).result;
}

async function userSysId(userName: string): Promise<string> {
  const [user] = await snTable<{ sys_id: string }>(`/api/now/table/sys_user?sysparm_query=user_name=${userName}`);
  return user!.sys_id;
}

beforeAll(async () => {
  platform = await startTestPlatform({
    CTEM_SLA_ACK: `${ACK_SLA_S}s`,
    CTEM_ESCALATION_INTERVAL: `${ESCALATION_INTERVAL_S}s`,
    ...SAMPLE_FEEDS_ENV,
  });
});

afterAll(async () => {
  await platform?.stop();
});

describe('the API front', () => {
  it('reports the database and Temporal as healthy', async () => {
    const res = await fetch(`${platform.apiUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', database: { ok: true }, temporal: { ok: true } });
  });

  it('refuses every /api route without the bearer token', async () => {
    for (const path of ['/api/v1/exposures', '/api/v1/tickets', '/api/v1/scans/00000000-0000-0000-0000-000000000000', '/api/v1/openapi.json']) {
      const res = await fetch(`${platform.apiUrl}${path}`);
      expect(res.status, path).toBe(401);
    }
    const upload = await fetch(`${platform.apiUrl}/api/v1/scans`, { method: 'POST', body: report });
    expect(upload.status).toBe(401);
    const wrong = await fetch(`${platform.apiUrl}/api/v1/tickets`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('rejects an unsigned ServiceNow webhook', async () => {
    const res = await fetch(`${platform.apiUrl}/api/v1/webhooks/servicenow`, {
      method: 'POST',
      body: JSON.stringify({ event_id: 'x', state: '2', correlation_id: 'anything' }),
      headers: { 'x-servicenow-signature': 'sha256=00' },
    });
    expect(res.status).toBe(401);
  });

  it('serves an OpenAPI document generated from the route definitions', async () => {
    const doc = await json<{ paths: Record<string, unknown> }>(platform.api('/api/v1/openapi.json'));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/scans', '/api/v1/scans/{id}', '/api/v1/exposures', '/api/v1/tickets']));
    expect(Object.keys(doc.paths)).not.toContain('/api/v1/findings');
    // Every JSON answer is described: a named schema or a typed one, never an untyped `{}`.
    type Operation = { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> };
    const untyped = Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) =>
        Object.entries(op.responses)
          .filter(([, r]) => {
            const schema = r.content?.['application/json']?.schema;
            return schema && !['$ref', 'type', 'allOf', 'anyOf', 'oneOf'].some((k) => k in schema);
          })
          .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect(untyped).toEqual([]);
  });
});

describe('discovery and prioritization', () => {
  it('stores the report as scored findings with explanations, and groups the fixes into golden tickets', async () => {
    const { scanId, workflowId } = await uploadScan('shop/payments-api:1.4.2');
    expect(workflowId).toBe(`discovery:trivy-json:${scanId}`);
    const scan = await scanDone(scanId);
    expect(scan.status).toBe('completed');
    expect(scan.counts).toMatchObject({ findings: 6, newFindings: 6, assets: 1, goldenTickets: 2, orphanedTickets: 0 });

    const findings = await json<{ estimate: { count: number }; items: Array<Record<string, any>> }>(platform.api('/api/v1/exposures?asset=shop/payments-api:1.4.2'));
    expect(findings.estimate.count).toBe(6);
    const byId = Object.fromEntries(findings.items.map((f) => [f.issueId, f]));
    // BOD 26-04 policy; the image has no exposure context (assumed not exposed).
    // In KEV, automatable and total impact by its vector (AV:N/AC:L/PR:N/UI:N, C:H/I:H): row 13,
    // 3 days & forensics → act.
    expect(byId['CVE-2021-44228']).toMatchObject({ tier: 'act', component: 'org.apache.logging.log4j:log4j-core', fixedVersion: '2.15.0', location: 'app/lib/log4j-core-2.14.1.jar' });
    expect(byId['CVE-2022-22965']!.tier).toBe('act');
    expect(byId['CVE-2021-3711']!.tier).toBe('attend'); // row 10 gives 60 days (track*); EPSS 0.12 >= 0.1 raises it to attend
    // Not in KEV, not exposed, EPSS < 0.1, and not automatable by their vectors (AC:H, UI:R, AV:L):
    // row 0, or row 4 for busybox's C:H/I:H, both fix on system upgrade → track.
    for (const cve of ['CVE-2021-3712', 'CVE-2022-28391', 'CVE-2020-28928']) expect(byId[cve]!.tier, cve).toBe('track');
    expect(byId['CVE-2022-28391']!.ticketKey).toBeNull(); // no fix yet: no ticket

    const explanation = (cve: string) => byId[cve]!.explanation as Array<{ factor: string; value: unknown; source: string; effect: string }>;
    expect(explanation('CVE-2022-28391').find((f) => f.factor === 'decision')!.effect).toMatch(/^row 4: not exploited, not exposed, /);
    const kev = explanation('CVE-2021-44228').find((f) => f.factor === 'in_kev')!;
    expect(kev.source).toBe('CISA KEV 2026.11.01');
    expect(kev.effect).toBe('in CISA KEV 2026.11.01 (added 2021-12-10, used in ransomware)');
    const epss = explanation('CVE-2021-44228').find((f) => f.factor === 'epss')!;
    expect(epss).toMatchObject({ source: 'FIRST EPSS 2026-11-01', value: 0.94358 });
    expect(explanation('CVE-2021-44228').find((f) => f.factor === 'publicly_exposed')!.effect).toMatch(/^exposure unknown, assumed not exposed/);
    expect(explanation('CVE-2021-3711').find((f) => f.factor === 'likely_exploited')!.effect).toBe('EPSS 0.12051 ≥ 0.1: likely exploited within 30 days, raised to attend');

    const act = Date.parse(byId['CVE-2021-44228']!.dueAt);
    const attend = Date.parse(byId['CVE-2021-3711']!.dueAt);
    expect(attend - act).toBeGreaterThan(10 * 86_400_000); // 3 days (BOD 26-04 3DF) versus 14 days for attend

    // One ticket per thing the owner does: rebuild the image's OS layer (libssl1.1), bump the
    // application's Java libraries in app/lib (log4j-core and spring-beans, to different versions).
    const mine = await openedTicketsFor('shop/payments-api:1.4.2', 2);
    expect(mine.map((t) => `${t.action}: ${t.fix.component}@${t.fix.fixedVersion}`).sort()).toEqual(['manifest: app/lib@', 'os-layer: OS packages@1.1.1l-r0']);
    // The exposures a golden ticket carries, and one issue, by filter.
    const javaTicket = mine.find((t) => t.action === 'manifest')!;
    const onTicket = await json<{ items: Array<{ issueId: string; ticketKey: string }> }>(platform.api(`/api/v1/exposures?ticket=${encodeURIComponent(javaTicket.key)}`));
    expect(onTicket.items.map((f) => [f.issueId, f.ticketKey]).sort()).toEqual([
      ['CVE-2021-44228', javaTicket.key],
      ['CVE-2022-22965', javaTicket.key],
    ]);
    const oneIssue = await json<{ estimate: { count: number }; items: Array<{ asset: { name: string } }> }>(platform.api('/api/v1/exposures?asset=shop/payments-api:1.4.2&issueId=CVE-2021-3711'));
    expect(oneIssue.estimate.count).toBe(1);
    for (const t of mine) {
      expect(t.workflowId).toBe(`remediation:${t.key}`);
      expect(t.owner).toBe('alex.romero');
      expect(t.externalNumber).toMatch(/^INC\d{7}$/);
    }
    const incidents = await snTable<{ correlation_id: string; assigned_to: { value: string }; short_description: string; urgency: string }>(
      `/api/now/table/incident?sysparm_query=correlation_idIN${mine.map((t) => t.key).join(',')}`,
    );
    expect(incidents).toHaveLength(2);
    const owner = await userSysId('alex.romero');
    for (const incident of incidents) expect(incident.assigned_to.value).toBe(owner);
    const java = incidents.find((i) => i.correlation_id === javaTicket.key)!;
    expect(java.short_description).toBe('Bump 2 packages in app/lib on shop/payments-api:1.4.2 (2 vulnerabilities, act)');
    expect(java.urgency).toBe('1');
  });

  it('changes nothing when the same report is ingested twice', async () => {
    const target = 'shop/payments-api:twice';
    const first = await scanDone((await uploadScan(target)).scanId);
    expect(first.status).toBe('completed');
    const ticketsBefore = await openedTicketsFor(target, 2);
    const findingsBefore = await json<{ items: Array<Record<string, unknown>> }>(platform.api(`/api/v1/exposures?asset=${target}`));

    const second = await scanDone((await uploadScan(target)).scanId);
    expect(second.status).toBe('completed');
    expect(second.counts).toMatchObject({ findings: 6, newFindings: 0, rescored: 0, goldenTickets: 2, ticketsSignalled: 0 });

    const findingsAfter = await json<{ items: Array<Record<string, unknown>> }>(platform.api(`/api/v1/exposures?asset=${target}`));
    const stable = (items: Array<Record<string, unknown>>) =>
      items.map(({ lastSeenAt: _seen, ...rest }) => rest).sort((a, b) => String(a.issueId).localeCompare(String(b.issueId)));
    expect(stable(findingsAfter.items)).toEqual(stable(findingsBefore.items));
    const ticketsAfter = (await tickets()).filter((t) => t.asset.name === target);
    expect(ticketsAfter.map((t) => [t.key, t.externalNumber, t.findingCount])).toEqual(ticketsBefore.map((t) => [t.key, t.externalNumber, t.findingCount]));
    const incidents = await snTable(`/api/now/table/incident?sysparm_query=correlation_idIN${ticketsBefore.map((t) => t.key).join(',')}`);
    expect(incidents).toHaveLength(2);
  });

  it('rejects a malformed report with a clear error and stores nothing', async () => {
    const target = 'shop/broken:1';
    const truncated = report.subarray(0, Math.floor(report.length / 2));
    const { scanId } = await uploadScan(target, truncated);
    const scan = await scanDone(scanId);
    expect(scan.status).toBe('failed');
    expect(scan.error).toMatch(/^trivy-payments-api\.json: trivy-json: not valid JSON/);
    const findings = await json<{ estimate: { count: number } }>(platform.api(`/api/v1/exposures?asset=${target}`));
    expect(findings.estimate.count).toBe(0);

    const bad = JSON.parse(report.toString());
    bad.Results[1].Vulnerabilities[0].InstalledVersion = 42;
    const second = await scanDone((await uploadScan('shop/broken:2', JSON.stringify(bad))).scanId);
    expect(second.status).toBe('failed');
    expect(second.error).toContain('Results[1].Vulnerabilities[0].InstalledVersion: expected a non-empty string');
    // One bad record fails the whole report: the earlier, valid records of the same file are not kept either.
    expect((await json<{ estimate: { count: number } }>(platform.api('/api/v1/exposures?asset=shop/broken:2'))).estimate.count).toBe(0);

    const unknown = await platform.api('/api/v1/scans?filename=notes.txt', { method: 'POST', body: 'hello, this is not a scanner report' });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(/^notes\.txt: unknown: format not recognised; supported: .*trivy-json/);
  });
});

// The two tests that wait on the real SLA clock run side by side: the wait is the clock's, not the CPU's.
describe.concurrent('mobilization on the real clock', () => {
  it('stops escalation when the owner acknowledges the ticket in ServiceNow', async () => {
    const target = 'shop/acknowledged:1';
    await scanDone((await uploadScan(target)).scanId);
    const [ticket] = (await openedTicketsFor(target, 2)).filter((t) => t.action === 'os-layer');
    // The owner moves the incident to In Progress through the Table API, as on a real instance.
    const patched = await platform.serviceNow(`/api/now/table/incident/${ticket!.externalSysId}`, {
      method: 'PATCH',
      body: JSON.stringify({ state: '2', work_notes: 'Taking this one.' }),
    });
    expect(patched.status).toBe(200);
    const acknowledged = await eventually(
      async () => (await tickets()).find((t) => t.key === ticket!.key && t.state === 'in_progress'),
      { what: 'ticket in progress' },
    );
    expect(acknowledged.escalationLevel).toBe(0);
    // Wait past the acknowledgement SLA and one escalation interval: nobody was escalated to.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(ticket!.ackDueAt) - Date.now()) + (ESCALATION_INTERVAL_S + 1) * 1000));
    const detail = await json<{ escalationLevel: number; escalations: unknown[]; workflow: { phase: string } }>(
      platform.api(`/api/v1/tickets/${encodeURIComponent(ticket!.key)}`),
    );
    expect(detail.escalations).toEqual([]);
    expect(detail.escalationLevel).toBe(0);
    expect(detail.workflow.phase).toBe('awaiting-resolution');
    // Its unacknowledged siblings on the same asset did escalate in that time: the timer was real.
    const siblings = (await tickets()).filter((t) => t.asset.name === target && t.key !== ticket!.key);
    expect(siblings.every((t) => t.escalationLevel >= 1)).toBe(true);
  });

  it('escalates an unacknowledged ticket up the management chain until acknowledged', async () => {
    const target = 'shop/silent:1';
    await scanDone((await uploadScan(target)).scanId);
    const [ticket] = (await openedTicketsFor(target, 2)).filter((t) => t.action === 'manifest');
    const key = ticket!.key;
    type Detail = { escalationLevel: number; escalations: Array<{ level: number; notifiedUser: string; phase: string }>; workflow: { topOfChainReached: boolean } };
    const top = await eventually(
      async () => {
        const d = await json<Detail>(platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`));
        return d.workflow.topOfChainReached ? d : undefined;
      },
      { what: 'escalation to the top of the chain', timeoutMs: 60_000 },
    );
    expect(top.escalations.map((e) => [e.phase, e.level, e.notifiedUser])).toEqual([
      ['acknowledgement', 1, 'jonas.weber'],
      ['acknowledgement', 2, 'priya.natarajan'],
      ['acknowledgement', 3, 'morgan.blake'],
    ]);
    expect(top.escalationLevel).toBe(3);
    // The first escalation came no earlier than the acknowledgement deadline.
    const escalations = await json<{ escalations: Array<{ at: string }> }>(platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`));
    expect(Date.parse(escalations.escalations[0]!.at)).toBeGreaterThanOrEqual(Date.parse(ticket!.ackDueAt));

    const notes = await snTable<{ value: string }>(`/api/now/table/sys_journal_field?sysparm_query=element_id=${ticket!.externalSysId}^element=work_notes`);
    expect(notes).toHaveLength(3);
    expect(notes[0]!.value).toContain('Escalated to Jonas Weber (jonas.weber)');
    const [incident] = await snTable<{ escalation: string; watch_list: string }>(`/api/now/table/incident?sysparm_query=sys_id=${ticket!.externalSysId}`);
    expect(incident!.escalation).toBe('3');
    expect(incident!.watch_list.split(',')).toEqual([await userSysId('jonas.weber'), await userSysId('priya.natarajan'), await userSysId('morgan.blake')]);

    // Acknowledgement, even late, ends the acknowledgement breach.
    await platform.serviceNow(`/api/now/table/incident/${ticket!.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '2' }) });
    const acked = await eventually(async () => (await tickets()).find((t) => t.key === key && t.state === 'in_progress'), { what: 'acknowledged' });
    expect(acked.escalationLevel).toBe(0);

    // Resolution completes the remediation workflow.
    await platform.serviceNow(`/api/now/table/incident/${ticket!.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '6', close_code: 'Solved (Permanently)', close_notes: 'Upgraded' }) });
    const resolved = await eventually(async () => (await tickets()).find((t) => t.key === key && t.state === 'resolved'), { what: 'resolved' });
    expect(resolved.state).toBe('resolved');
  });
});

describe('mobilization', () => {
  it('accepts each ServiceNow event once', async () => {
    const target = 'shop/events:1';
    await scanDone((await uploadScan(target)).scanId);
    const [ticket] = (await openedTicketsFor(target, 2)).filter((t) => t.action === 'os-layer');
    const event = JSON.stringify({ event_id: `evt-${ticket!.key}`, state: '2', correlation_id: ticket!.key, sys_id: ticket!.externalSysId });
    const send = () => platform.api('/api/v1/webhooks/servicenow', { method: 'POST', body: event });
    expect((await send()).status).toBe(202);
    expect(await (await send()).json()).toEqual({ status: 'duplicate' });
    await eventually(async () => (await tickets()).find((t) => t.key === ticket!.key && t.state === 'in_progress'), { what: 'acknowledged' });
  });

  it('counts an acknowledgement that arrives while the ticket is still being opened', async () => {
    // ServiceNow throttles ticket creation for a few seconds; the owner acknowledges meanwhile.
    const fault = await platform.serviceNow('/__simulator/faults', {
      method: 'POST',
      body: JSON.stringify({ status: 429, count: 9, retryAfterSeconds: 1, methods: ['POST'] }),
    });
    expect(fault.ok).toBe(true);
    const target = 'shop/early-ack:1';
    await uploadScan(target);
    const opening = await eventually(
      async () => (await tickets()).find((t) => t.asset.name === target && t.action === 'os-layer' && t.state === 'opening'),
      { what: 'a ticket being opened' },
    );
    const event = JSON.stringify({ event_id: `early-${opening.key}`, state: '2', correlation_id: opening.key });
    // The ticket's row is written just before its workflow starts, so the event may find no workflow
    // yet (200, ignored: not recorded, so it can be sent again); ServiceNow itself could not send one
    // that early, as the incident does not exist before the workflow creates it.
    await eventually(async () => ((await platform.api('/api/v1/webhooks/servicenow', { method: 'POST', body: event })).status === 202 ? true : undefined), {
      what: 'the acknowledgement accepted by the ticket workflow',
    });
    // Accepted while ServiceNow still throttles the incident's creation.
    expect((await tickets()).find((t) => t.key === opening.key)?.state).toBe('opening');
    const acked = await eventually(async () => (await tickets()).find((t) => t.key === opening.key && t.state === 'in_progress' && t.externalNumber), {
      what: 'acknowledged and opened',
    });
    expect(acked.escalationLevel).toBe(0);
  });

  it('puts fixes on assets without an owner in the orphan queue, assigned to the fallback owner', async () => {
    const target = 'shop/unowned:1';
    const res = await platform.api(`/api/v1/scans?target=${encodeURIComponent(target)}`, { method: 'POST', body: imageReport(target) });
    const scan = await scanDone(((await res.json()) as { scanId: string }).scanId);
    expect(scan.counts).toMatchObject({ goldenTickets: 2, orphanedTickets: 2 });
    const orphans = await eventually(
      async () => {
        const queue = (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?orphaned=true'))).items.filter((t) => t.asset.name === target);
        return queue.length === 2 && queue.every((t) => t.externalNumber) ? queue : undefined;
      },
      { what: 'two orphaned tickets opened for the fallback owner' },
    );
    // Security operations (the embedded default's fallback owner) holds them, and the ticket says why.
    expect(orphans.map((t) => [t.owner, t.orphanReason])).toEqual([
      ['sam.okafor', 'the asset has no owner'],
      ['sam.okafor', 'the asset has no owner'],
    ]);
    const [incident] = await snTable<{ assigned_to: { value: string }; description: string }>(`/api/now/table/incident?sysparm_query=correlation_id=${orphans[0]!.key}`);
    expect(incident!.assigned_to.value).toBe(await userSysId('sam.okafor'));
    expect(incident!.description).toMatch(/^Orphan queue: the asset has no owner\. Find the owner and reassign this ticket/);
  });

  it('checks the owner in the ITSM directory: an unknown one sends the tickets to the orphan queue', async () => {
    const target = 'shop/typo:1';
    const res = await platform.api(`/api/v1/scans?owner=alex.romer0&target=${encodeURIComponent(target)}`, { method: 'POST', body: imageReport(target) });
    const scan = await scanDone(((await res.json()) as { scanId: string }).scanId);
    expect(scan.counts).toMatchObject({ goldenTickets: 2, orphanedTickets: 2, ownersNotFound: 1 });
    const queued = (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?orphaned=true'))).items.filter((t) => t.asset.name === target);
    expect(queued.map((t) => [t.owner, t.orphanReason])).toEqual([
      ['sam.okafor', 'owner alex.romer0 not found in ServiceNow'],
      ['sam.okafor', 'owner alex.romer0 not found in ServiceNow'],
    ]);
    // Nothing urgent reaches no one.
    const audit = await json<{ unreached: number; inOrphanQueue: number }>(platform.api('/api/v1/metrics/mobilization'));
    expect(audit.unreached).toBe(0);
    expect(audit.inOrphanQueue).toBeGreaterThanOrEqual(4);
  });

});
