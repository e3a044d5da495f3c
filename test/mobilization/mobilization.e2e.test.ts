import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSlaPolicy, slaFor } from '../../mobilization/sla.js';
import { loadConfig } from '../../config/index.js';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// Mobilization against the real Temporal server, real PostgreSQL and the ServiceNow simulator over
// HTTP: golden-ticket membership, acknowledgement and resolution as workflow Updates from the API,
// verification by a later scan, duplicate, out-of-order and reassigning webhooks, and a ServiceNow
// outage. What waits on SLA timers (the escalation ladder, risk-acceptance expiry, reconciliation)
// runs on the time-skipping server in remediation-timers.test.ts; loop.e2e.test.ts keeps one
// real-time run of the whole loop. Image names are unique to this file.

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const report = readFileSync(join(fixtures, 'trivy-payments-api.json'));

type Ticket = TicketRow;

interface WorkflowState {
  phase: string;
  escalationLevel: number;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  resolvedAt?: string;
  reopened: number;
  ackDueAt: string;
  dueAt: string;
  seenEvents: string[];
}

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform({
    // Hours, not seconds: no test here is about escalation, and no timer fires while they run.
    CTEM_SLA_ACK: '2h',
    CTEM_ESCALATION_INTERVAL: '1h',
    CTEM_TICKET_RECONCILE_INTERVAL: '0s',
    // attend tickets keep the default; act tickets get an hour to acknowledge (per-tier policy).
    CTEM_SLA_POLICY: JSON.stringify({ tiers: { act: { ack: '1h' } } }),
    ...SAMPLE_FEEDS_ENV,
  });
});

afterAll(async () => {
  await platform?.stop();
});

async function scan(target: string, body = imageReport(target)) {
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

async function tickets(assetName: string): Promise<Ticket[]> {
  return (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?limit=1000'))).items.filter((t) => t.asset.name === assetName);
}

/** The opened ticket whose lines name the package (one ticket covers every package of its action). */
async function openedTicket(assetName: string, pkg: string): Promise<Ticket> {
  return eventually(
    async () => {
      for (const t of await tickets(assetName)) {
        if (!t.externalSysId) continue;
        const detail = await ticketDetail(t.key);
        if (!detail.lines.some((l) => l.packages.includes(pkg))) continue;
        return detail.workflow?.phase && detail.workflow.phase !== 'opening' ? t : undefined;
      }
      return undefined;
    },
    { what: `opened ticket for ${pkg} on ${assetName}`, timeoutMs: 60_000 },
  );
}

async function ticketDetail(key: string) {
  return json<
    Ticket & {
      escalations: Array<{ phase: string; level: number; notifiedUser: string }>;
      riskAcceptances: unknown[];
      lines: Array<{ package: string; packages: string[]; installed: string; target?: string }>;
      workflow: WorkflowState;
    }
  >(
    platform.api(`/api/v1/tickets/${encodeURIComponent(key)}`),
  );
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  platform.api(path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

function workNotes(sysId: string): string[] {
  return platform
    .simulator!.instance.records('sys_journal_field')
    .filter((r) => r.element === 'work_notes' && r.element_id === sysId)
    .map((r) => r.value ?? '');
}

function incident(sysId: string) {
  return platform.simulator!.instance.records('incident').find((r) => r.sys_id === sysId)!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SLA policy', () => {
  it('reads acknowledgement times and escalation intervals per tier and criticality; the stricter wins', () => {
    const policy = parseSlaPolicy('{"tiers":{"act":{"ack":"1d","escalationInterval":"2d"}},"criticality":{"critical":{"ack":"4h"}}}');
    const defaults = { ackMs: 2 * 86_400_000, escalationIntervalMs: 5 * 86_400_000 };
    expect(slaFor(policy, defaults, { tier: 'act', criticality: 'critical' })).toEqual({ ackMs: 4 * 3_600_000, escalationIntervalMs: 2 * 86_400_000 });
    expect(slaFor(policy, defaults, { tier: 'act', criticality: null })).toEqual({ ackMs: 86_400_000, escalationIntervalMs: 2 * 86_400_000 });
    expect(slaFor(policy, defaults, { tier: 'attend', criticality: 'low' })).toEqual(defaults);
    expect(() => parseSlaPolicy('{"tiers":{"urgent":{"ack":"1d"}}}')).toThrow('tiers.urgent: unknown');
    expect(() => parseSlaPolicy('{"criticality":{"high":{"ack":"soon"}}}')).toThrow('criticality.high.ack: "soon" is not a duration');
    expect(() => loadConfig({ CTEM_SLA_POLICY: '{"tiers":{"act":{"escalation":"1d"}}}' })).toThrow(/CTEM_SLA_POLICY: tiers\.act\.escalation: unknown/);
  });

  it('gives each ticket the acknowledgement time of its tier', async () => {
    const target = 'mob/policy:1';
    await scan(target);
    const act = await openedTicket(target, 'org.apache.logging.log4j:log4j-core');
    const attend = await openedTicket(target, 'libssl1.1');
    expect(act.tier).toBe('act');
    expect(attend.tier).toBe('attend');
    const gap = Date.parse(attend.ackDueAt) - Date.parse(act.ackDueAt);
    expect(gap).toBeGreaterThan(3_600_000 - 60_000);
    expect(gap).toBeLessThan(3_600_000 + 60_000);
  });
});

describe('golden-ticket membership', () => {
  it('updates the existing ticket with a work note when a later scan adds findings to the same fix', async () => {
    const target = 'mob/members:1';
    await scan(target);
    const ticket = await openedTicket(target, 'org.apache.logging.log4j:log4j-core');
    // The next scan also finds Spring4Shell in spring-webmvc, in the same library directory: the same
    // bump of the application's dependencies, one more finding.
    const r = JSON.parse(imageReport(target));
    const java = r.Results.find((x: { Target: string }) => x.Target === 'Java');
    const spring = java.Vulnerabilities.find((v: { PkgName: string }) => v.PkgName === 'org.springframework:spring-beans');
    java.Vulnerabilities.push({ ...spring, PkgName: 'org.springframework:spring-webmvc', PkgPath: 'app/lib/spring-webmvc-5.3.17.jar' });
    await scan(target, JSON.stringify(r));
    const before = ticket.findingCount;
    await eventually(
      async () =>
        workNotes(ticket.externalSysId!).some((n) => n.startsWith(`Findings changed: this fix now covers ${before + 1} findings (was ${before})`)) ? true : undefined,
      { what: 'membership work note' },
    );
    // Still one ticket for the image's dependencies (no sibling), and one incident.
    const mine = (await tickets(target)).filter((t) => t.action === 'manifest');
    expect(mine.map((t) => t.key)).toEqual([ticket.key]);
    expect(platform.simulator!.instance.records('incident').filter((i) => i.correlation_id === ticket.key)).toHaveLength(1);
    const detail = await ticketDetail(ticket.key);
    expect(detail.workflow).toMatchObject({ findingCount: before + 1 });
    expect(detail.lines.map((l) => [l.package, l.installed, l.target])).toEqual([
      ['org.apache.logging.log4j:log4j-core', '2.14.1', '2.15.0'],
      ['org.springframework:spring-beans', '5.3.17', '5.3.18'],
      ['org.springframework:spring-webmvc', '5.3.17', '5.3.18'],
    ]);
  });
});

describe('one action per owner', () => {
  it("makes the OS patching of an owner's hosts one golden ticket", async () => {
    const hostReport = (name: string) => {
      const r = JSON.parse(report.toString());
      r.ArtifactName = name;
      r.ArtifactType = 'vm';
      delete r.Metadata.ImageID;
      delete r.Metadata.RepoDigests;
      return JSON.stringify(r);
    };
    const forOwner = async () =>
      (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?action=os-patch&limit=1000'))).items.filter((t) => t.key.includes('~hosts-of-alex.romero~'));
    await scan('mob-host-a', hostReport('mob-host-a'));
    const [alone] = await eventually(async () => ((await forOwner()).length === 1 ? forOwner() : undefined), { what: 'the patch run of host a' });
    await scan('mob-host-b', hostReport('mob-host-b'));
    // The same packages on the second host join the same patch run: twice the findings, one ticket.
    const [ticket] = await eventually(
      async () => {
        const mine = await forOwner();
        return mine.length === 1 && mine[0]!.findingCount === 2 * alone!.findingCount && mine[0]!.externalSysId ? mine : undefined;
      },
      { what: 'one patch run covering both hosts', timeoutMs: 60_000 },
    );
    expect(ticket!.key).toBe(alone!.key);
    expect(ticket!.asset.name).toMatch(/^mob-host-[ab]$/);
    const incidents = platform.simulator!.instance.records('incident').filter((i) => i.correlation_id === ticket!.key);
    expect(incidents).toHaveLength(1);
    expect((await ticketDetail(ticket!.key)).lines.some((l) => l.packages.includes('libssl1.1'))).toBe(true);
    // Rescanning one host does not shrink the ticket to that host.
    await scan('mob-host-a', hostReport('mob-host-a'));
    await sleep(500);
    expect((await forOwner()).map((t) => t.findingCount)).toEqual([2 * alone!.findingCount]);
    await eventually(
      async () =>
        workNotes(ticket!.externalSysId!).some((n) => n.includes(`covers ${2 * alone!.findingCount} findings (was ${alone!.findingCount})`)) ||
        incidents[0]!.description?.includes('mob-host-b')
          ? true
          : undefined,
      { what: 'the ticket names both hosts' },
    );
  });
});

describe('resolution and verification', () => {
  it('re-opens a resolved ticket when a later scan still finds the vulnerability, and closes it when a scan confirms the fix', async () => {
    const target = 'mob/verify:1';
    await scan(target);
    const ticket = await openedTicket(target, 'org.apache.logging.log4j:log4j-core');
    const key = encodeURIComponent(ticket.key);

    const resolved = await post(`/api/v1/tickets/${key}/resolve`, { by: 'alex.romero', note: 'upgraded' });
    expect(resolved.status).toBe(200);
    expect(((await resolved.json()) as WorkflowState).phase).toBe('verifying');
    const twice = await post(`/api/v1/tickets/${key}/resolve`, { by: 'alex.romero' });
    expect(twice.status).toBe(409);
    expect(((await twice.json()) as { error: { message: string } }).error.message).toBe(
      `${ticket.externalNumber} is already resolved (waiting for a scan to verify the fix)`,
    );
    const lateAck = await post(`/api/v1/tickets/${key}/acknowledge`, { by: 'alex.romero' });
    expect(lateAck.status).toBe(409);
    expect(((await lateAck.json()) as { error: { message: string } }).error.message).toBe(`${ticket.externalNumber} is already resolved`);
    await eventually(async () => (incident(ticket.externalSysId!).state === '6' ? true : undefined), { what: 'incident resolved' });
    await eventually(async () => ((await ticketDetail(ticket.key)).state === 'resolved' ? true : undefined), { what: 'read model resolved' });

    // The next scan still finds log4j-core 2.14.1: the ticket re-opens with a work note.
    const rescan = await scan(target);
    expect(rescan.counts.ticketsVerified).toBe(1);
    const reopened = await eventually(
      async () => {
        const d = await ticketDetail(ticket.key);
        return d.workflow.phase === 'awaiting-resolution' && d.state === 'in_progress' ? d : undefined;
      },
      { what: 're-opened ticket' },
    );
    expect(reopened.workflow.reopened).toBe(1);
    await eventually(async () => (incident(ticket.externalSysId!).state === '2' ? true : undefined), { what: 'incident re-opened' });
    expect(workNotes(ticket.externalSysId!).find((n) => n.startsWith('Verification failed'))).toContain(`still finds ${ticket.findingCount} of the vulnerabilities`);

    // Resolved again, and this time the scan no longer reports the package: verified and closed.
    expect((await post(`/api/v1/tickets/${key}/resolve`, { by: 'alex.romero' })).status).toBe(200);
    await eventually(async () => ((await ticketDetail(ticket.key)).state === 'resolved' ? true : undefined), { what: 'resolved again' });
    // The ticket bumps the image's Java dependencies: log4j-core and spring-beans both.
    const fixed = await scan(target, imageReport(target, { withoutPackages: ['org.apache.logging.log4j:log4j-core', 'org.springframework:spring-beans'] }));
    expect(fixed.status).toBe('completed');
    const verified = await eventually(
      async () => {
        const d = await ticketDetail(ticket.key);
        return d.state === 'verified' ? d : undefined;
      },
      { what: 'verified ticket' },
    );
    expect(verified.workflow.phase).toBe('resolved');
    await eventually(async () => (incident(ticket.externalSysId!).state === '7' ? true : undefined), { what: 'incident closed' });
    expect(workNotes(ticket.externalSysId!).some((n) => n.startsWith('Verified: scan'))).toBe(true);
    const closed = await post(`/api/v1/tickets/${key}/resolve`, { by: 'alex.romero' });
    expect(closed.status).toBe(409);
  });
});

describe('ServiceNow events', () => {
  it('drops duplicates and events older than one already applied', async () => {
    const target = 'mob/events:1';
    await scan(target);
    const ticket = await openedTicket(target, 'org.springframework:spring-beans');
    const send = (event: Record<string, unknown>) =>
      post('/api/v1/webhooks/servicenow', { correlation_id: ticket.key, sys_id: ticket.externalSysId, ...event });
    // Version 41 put the incident back to New; the "In Progress" of version 40 arrives after it.
    expect((await send({ event_id: 'mob-evt-41', state: '1', sys_mod_count: '41' })).status).toBe(202);
    expect((await send({ event_id: 'mob-evt-40', state: '2', sys_mod_count: '40' })).status).toBe(202);
    // Once the workflow has seen the older event, it has had its chance to apply it.
    let d = await eventually(
      async () => {
        const x = await ticketDetail(ticket.key);
        return x.workflow.seenEvents.includes('mob-evt-40') ? x : undefined;
      },
      { what: 'both events seen' },
    );
    expect(d.workflow.phase).toBe('awaiting-acknowledgement');
    expect(d.workflow.acknowledgedAt).toBeUndefined();
    expect(d.state).toBe('new');
    // A newer one applies, once.
    expect((await send({ event_id: 'mob-evt-42', state: '2', sys_mod_count: '42' })).status).toBe(202);
    expect(await (await send({ event_id: 'mob-evt-42', state: '2', sys_mod_count: '42' })).json()).toEqual({ status: 'duplicate' });
    d = await eventually(
      async () => {
        const x = await ticketDetail(ticket.key);
        return x.state === 'in_progress' ? x : undefined;
      },
      { what: 'acknowledged by version 42' },
    );
    expect(d.workflow.phase).toBe('awaiting-resolution');
  });

  it('moves the ticket to the new assignee when it is reassigned in ServiceNow', async () => {
    const target = 'mob/reassigned:1';
    await scan(target);
    const ticket = await openedTicket(target, 'libssl1.1');
    expect(ticket.owner).toBe('alex.romero');
    const patch = await platform.serviceNow(`/api/now/table/incident/${ticket.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ assigned_to: 'sam.okafor' }) });
    expect(patch.status).toBe(200);
    const moved = await eventually(
      async () => (await json<{ items: Ticket[] }>(platform.api('/api/v1/tickets?owner=sam.okafor&limit=1000'))).items.find((t) => t.key === ticket.key),
      { what: 'ticket owned by the new assignee' },
    );
    expect(moved.state).toBe('new'); // a reassignment is not an acknowledgement
    expect((await ticketDetail(ticket.key)).workflow.phase).toBe('awaiting-acknowledgement');
  });
});

describe('a ServiceNow outage', () => {
  it('loses no ticket and opens none twice through a storm of 429 and 5xx', async () => {
    // Creations (POST) fail first with 503, then 500; lookups and creations are throttled with Retry-After.
    for (const fault of [
      { status: 503, count: 6, methods: ['POST'] },
      { status: 429, count: 6, retryAfterSeconds: 1, methods: ['POST', 'GET'] },
      { status: 500, count: 6, methods: ['POST'] },
    ]) {
      expect((await platform.serviceNow('/__simulator/faults', { method: 'POST', body: JSON.stringify(fault) })).ok).toBe(true);
    }
    const target = 'mob/storm:1';
    // The image's OS layer and its Java dependencies: one ticket each.
    const planned = (await scan(target)).counts.goldenTickets!;
    expect(planned).toBe(2);
    const opened = await eventually(
      async () => {
        const mine = await tickets(target);
        return mine.length === planned && mine.every((t) => t.externalNumber) ? mine : undefined;
      },
      { what: 'every ticket opened through the storm', timeoutMs: 90_000 },
    );
    const incidents = platform.simulator!.instance.records('incident').filter((r) => opened.some((t) => t.key === r.correlation_id));
    expect(incidents).toHaveLength(planned);
    expect(new Set(incidents.map((i) => i.number)).size).toBe(planned);
    expect(incidents.map((i) => i.number).sort()).toEqual(opened.map((t) => t.externalNumber).sort());
    // Every injected failure was really served.
    const pending = (await (await platform.serviceNow('/__simulator/faults', { method: 'POST', body: JSON.stringify({ status: 418, count: 1, methods: ['TRACE'] }) })).json()) as {
      pending: Array<{ status: number; remaining: number }>;
    };
    expect(pending.pending.filter((f) => f.status !== 418)).toEqual([]);
  });
});
