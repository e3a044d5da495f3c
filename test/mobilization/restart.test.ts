import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { startPlatform, type Platform } from '../../platform/start.js';
import { startDevServer, type DevServer } from '../../platform/temporal.js';
import { createTestDatabase, eventually } from '../support/platform.js';
import { freePort } from '../../platform/ports.js';
import { imageReport, type TicketRow } from '../support/reports.js';

// The Temporal server AND the worker stopped while remediation workflows wait on their
// acknowledgement timers, and started again after the deadline passed: the timers fire once,
// every ticket escalates exactly once, nothing is opened twice. This file runs its own Temporal dev
// server (on a SQLite file, so it survives the restart) instead of the shared one.

const cleanup: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const undo of cleanup.reverse()) await undo().catch(() => {});
});

type Ticket = TicketRow;

describe('the Temporal server and the worker restarted mid-wait', () => {
  it('fires the acknowledgement timers that expired while both were down, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctem-mob-restart-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const temporalPort = await freePort();
    const serverOptions = { port: temporalPort, namespace: 'default', dbFile: join(dir, 'temporal.sqlite') };
    let server: DevServer = await startDevServer(serverOptions);
    cleanup.push(() => server.stop());

    const env = {
      PORT: '0',
      SERVICENOW_SIM_PORT: '0',
      CTEM_DATA_DIR: join(dir, 'data'),
      DATABASE_URL: await createTestDatabase(),
      TEMPORAL_ADDRESS: server.address,
      CTEM_TASK_QUEUE: `test-${randomUUID()}`,
      CTEM_API_TOKEN: `token-${randomUUID()}`,
      // Long enough to open three tickets before everything goes down, even on a busy machine.
      CTEM_SLA_ACK: '6s',
      CTEM_ESCALATION_INTERVAL: '1h',
      CTEM_TICKET_RECONCILE_INTERVAL: '0s',
      // Both workers run the bundle test/global-setup.ts built once for the run.
      CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
    };
    let platform: Platform = await startPlatform(loadConfig(env));
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${env.CTEM_API_TOKEN}`, 'content-type': 'application/json' } });
    const listTickets = async (asset: string) =>
      ((await (await api('/api/v1/tickets?limit=1000')).json()) as { items: Ticket[] }).items.filter((t) => t.asset.name === asset);

    const target = 'mobr/restart:1';
    const upload = await api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}`, { method: 'POST', body: imageReport(target) });
    expect(upload.status).toBe(202);
    const opened = await eventually(
      async () => {
        const mine = await listTickets(target);
        return mine.length === 2 && mine.every((t) => t.externalNumber) ? mine : undefined;
      },
      { what: 'two opened tickets (OS layer, Java libraries)', timeoutMs: 60_000 },
    );
    for (const t of opened) {
      await eventually(
        async () => {
          const detail = (await (await api(`/api/v1/tickets/${encodeURIComponent(t.key)}`)).json()) as { workflow?: { phase?: string } };
          return detail.workflow?.phase === 'awaiting-acknowledgement' ? true : undefined;
        },
        { what: `workflow of ${t.key} waiting` },
      );
    }
    const deadline = Math.max(...opened.map((t) => Date.parse(t.ackDueAt)));
    expect(deadline).toBeGreaterThan(Date.now()); // still waiting when everything goes down

    await platform.stop();
    await server.stop();
    // Both are down while the acknowledgement deadlines pass.
    await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 1000));

    server = await startDevServer(serverOptions);
    platform = await startPlatform(loadConfig(env));
    cleanup.push(() => platform.stop());

    const after = await eventually(
      async () => {
        const mine = await listTickets(target);
        return mine.every((t) => t.escalationLevel === 1) ? mine : undefined;
      },
      { what: 'one escalation per ticket after the restart', timeoutMs: 90_000 },
    );
    expect(after.map((t) => t.externalNumber).sort()).toEqual(opened.map((t) => t.externalNumber).sort());
    const incidents = platform.simulator!.instance.records('incident').filter((r) => opened.some((t) => t.key === r.correlation_id));
    expect(incidents).toHaveLength(2);
    for (const t of opened) {
      const detail = (await (await api(`/api/v1/tickets/${encodeURIComponent(t.key)}`)).json()) as {
        escalations: Array<{ level: number; notifiedUser: string; at: string }>;
      };
      expect(detail.escalations.map((e) => [e.level, e.notifiedUser])).toEqual([[1, 'jonas.weber']]);
      expect(Date.parse(detail.escalations[0]!.at)).toBeGreaterThanOrEqual(Date.parse(t.ackDueAt));
    }
    // Let any duplicate show itself, then count the notes: one per ticket.
    await new Promise((r) => setTimeout(r, 2000));
    const notes = platform.simulator!.instance
      .records('sys_journal_field')
      .filter((r) => r.element === 'work_notes' && r.value?.startsWith('Escalation level 1') && opened.some((t) => t.externalSysId === r.element_id));
    expect(notes).toHaveLength(2);

    // The restarted workflows still answer Updates.
    const ack = await api(`/api/v1/tickets/${encodeURIComponent(opened[0]!.key)}/acknowledge`, { method: 'POST', body: JSON.stringify({ by: 'alex.romero' }) });
    expect(ack.status).toBe(200);
    expect(((await ack.json()) as { phase: string }).phase).toBe('awaiting-resolution');
  });
});
