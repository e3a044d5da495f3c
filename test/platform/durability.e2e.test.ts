import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { startPlatform, type Platform } from '../../platform/start.js';
import { eventually, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { freePort } from '../../platform/ports.js';
import { type TicketRow } from '../support/reports.js';

// Durability: a worker killed mid-wait loses nothing and duplicates nothing; the whole embedded
// platform (Temporal dev server on SQLite, embedded PostgreSQL, simulator state) resumes after a restart.

const root = resolve(import.meta.dirname, '..', '..');
const report = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));
const cleanup: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const undo of cleanup.reverse()) await undo().catch(() => {});
});

type Ticket = TicketRow;

/** `ctem worker` as a separate OS process, so it can really be killed. */
async function spawnWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['bin/ctem.js', 'worker'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`worker did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('CTEM platform is up')) {
        clearTimeout(timer);
        res();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => rej(new Error(`worker exited with ${code}:\n${output}`)));
  });
  cleanup.push(async () => {
    child.kill('SIGKILL');
  });
  return child;
}

async function listTickets(api: (path: string) => Promise<Response>, asset: string): Promise<Ticket[]> {
  const res = await api('/api/v1/tickets?limit=1000');
  return ((await res.json()) as { items: Ticket[] }).items.filter((t) => t.asset.name === asset);
}

// Both scenarios mostly wait (on timers, on processes starting): they run side by side.
describe.concurrent('durability', () => {
  describe('a worker killed while remediation workflows wait', () => {
    it('loses no ticket, opens none twice, and fires the timers that expired while it was down', async () => {
      const platform: TestPlatform = await startTestPlatform({ CTEM_SLA_ACK: '10s', CTEM_ESCALATION_INTERVAL: '1h' }, { api: true, worker: false });
      cleanup.push(() => platform.stop());
      const workerEnv = {
        ...platform.env,
        SERVICENOW_URL: platform.serviceNowUrl,
        SERVICENOW_USER: platform.simulator!.user,
        SERVICENOW_PASSWORD: platform.simulator!.password,
      };
      const first = await spawnWorker(workerEnv);

      const target = 'shop/restart:1';
      const upload = await platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}`, { method: 'POST', body: report });
      expect(upload.status).toBe(202);
      const opened = await eventually(
        async () => {
          const mine = await listTickets(platform.api, target);
          return mine.length === 2 && mine.every((t) => t.externalNumber) ? mine : undefined;
        },
        { what: 'two opened tickets (OS layer, Java libraries)', timeoutMs: 60_000 },
      );

      // Kill it while every workflow waits on its timer (the query answers from the worker's state,
      // so the ticket-opening activities have been reported complete).
      for (const t of opened) {
        await eventually(
          async () => {
            const res = await platform.api(`/api/v1/tickets/${encodeURIComponent(t.key)}`);
            const detail = (await res.json()) as { workflow?: { phase?: string } };
            return detail.workflow?.phase === 'awaiting-acknowledgement' ? true : undefined;
          },
          { what: `workflow of ${t.key} waiting` },
        );
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));

      // While no worker runs: the owner acknowledges one ticket (the server keeps the signal)...
      const acked = opened.find((t) => t.action === 'os-layer')!;
      const patch = await platform.serviceNow(`/api/now/table/incident/${acked.externalSysId}`, { method: 'PATCH', body: JSON.stringify({ state: '2' }) });
      expect(patch.status).toBe(200);
      await platform.simulator!.instance.webhooksIdle();
      // With no worker, nothing moves yet: the acknowledgement waits in the workflow's history.
      await new Promise((r) => setTimeout(r, 1000));
      expect((await listTickets(platform.api, target)).find((t) => t.key === acked.key)!.state).toBe('new');
      // ...and the acknowledgement deadline of the other passes.
      const deadline = Math.max(...opened.map((t) => Date.parse(t.ackDueAt)));
      await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 500));

      await spawnWorker(workerEnv);
      const after = await eventually(
        async () => {
          const mine = await listTickets(platform.api, target);
          const escalated = mine.filter((t) => t.escalationLevel === 1);
          const inProgress = mine.find((t) => t.key === acked.key && t.state === 'in_progress');
          return escalated.length === 1 && inProgress ? mine : undefined;
        },
        { what: 'acknowledgement applied and the escalation after the restart', timeoutMs: 60_000 },
      );
      expect(after.find((t) => t.key === acked.key)!.escalationLevel).toBe(0);
      expect(after.map((t) => t.externalNumber).sort()).toEqual(opened.map((t) => t.externalNumber).sort());

      const incidents = platform.simulator!.instance.records('incident').filter((r) => opened.some((t) => t.key === r.correlation_id));
      expect(incidents).toHaveLength(2);
      const notes = () =>
        platform
          .simulator!.instance.records('sys_journal_field')
          .filter((r) => r.element === 'work_notes' && r.value?.startsWith('Escalation level 1') && opened.some((t) => t.externalSysId === r.element_id));
      // The escalation is recorded before its work note is written: wait for the note, then for any duplicate.
      await eventually(async () => (notes().length > 0 ? true : undefined), { what: 'the escalation work note' });
      await new Promise((r) => setTimeout(r, 2000));
      expect(notes()).toHaveLength(1);
    });
  });

  describe('the embedded platform stopped and started again', () => {
    it('resumes waiting workflows and keeps every ticket', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ctem-restart-'));
      chmodSync(dataDir, 0o755); // embedded PostgreSQL runs as its own user
      const env = {
        CTEM_DATA_DIR: dataDir,
        PORT: String(await freePort()),
        CTEM_PG_PORT: String(await freePort()),
        CTEM_TEMPORAL_PORT: String(await freePort()),
        TEMPORAL_UI_PORT: String(await freePort()),
        SERVICENOW_SIM_PORT: String(await freePort()),
        CTEM_SLA_ACK: '1h',
      };
      const start = () => startPlatform(loadConfig(env));
      let platform: Platform = await start();
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${platform.apiToken}` } });

      const target = 'shop/embedded:1';
      const upload = await api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(target)}`, { method: 'POST', body: report });
      expect(upload.status).toBe(202);
      const before = await eventually(
        async () => {
          const mine = await listTickets(api, target);
          return mine.length === 2 && mine.every((t) => t.externalNumber) ? mine : undefined;
        },
        { what: 'two opened tickets (OS layer, Java libraries)', timeoutMs: 60_000 },
      );
      const token = platform.apiToken;
      await platform.stop();

      platform = await start();
      cleanup.push(() => platform.stop());
      expect(platform.apiToken).toBe(token);
      const after = await listTickets(api, target);
      expect(after.map((t) => [t.key, t.externalNumber, t.state])).toEqual(before.map((t) => [t.key, t.externalNumber, t.state]));

      // The workflow is still waiting and still listens: acknowledging in the simulator reaches it.
      const ticket = before[0]!;
      const detail = (await (await api(`/api/v1/tickets/${encodeURIComponent(ticket.key)}`)).json()) as { workflow: { phase: string } };
      expect(detail.workflow.phase).toBe('awaiting-acknowledgement');
      const basic = Buffer.from(`${platform.simulator!.user}:${platform.simulator!.password}`).toString('base64');
      const patch = await fetch(`${platform.serviceNowUrl}/api/now/table/incident/${ticket.externalSysId}`, {
        method: 'PATCH',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/json' },
        body: JSON.stringify({ state: '2' }),
      });
      expect(patch.status).toBe(200);
      await eventually(async () => (await listTickets(api, target)).find((t) => t.key === ticket.key && t.state === 'in_progress'), {
        what: 'acknowledgement after restart',
      });
      // The simulator kept its records: the next incident number continues, nothing was re-created.
      expect(platform.simulator!.instance.records('incident')).toHaveLength(2);
    });
  });
});
