import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../platform/ports.js';
import { createTestDatabase } from '../support/platform.js';
import { runCtem } from '../support/scripts.js';

// No configured secret may reach a log line or an answer. `ctem start` runs as a real process with
// every secret set to a value that cannot appear by chance; a session exercises the API (every GET
// the OpenAPI document lists, with real ids), the console, bad credentials, a failing pull with
// header credentials and a failing scan; then its whole output and every answer are searched for
// each secret, whole or in part. Tracing is on, and the spans the process exports (OTLP/HTTP to a
// receiver here) are searched as well.

const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'ctem-secrets-'));
chmodSync(dir, 0o755);
let child: ChildProcess | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const secret = (name: string) => `${name}-${randomBytes(12).toString('hex')}`;

describe('secrets stay out of logs and answers', () => {
  it('a whole session leaks none of the configured secrets', { timeout: 180_000 }, async () => {
    const databaseUrl = await createTestDatabase();
    const port = await freePort();
    const secrets = {
      CTEM_API_TOKEN: secret('api'),
      SERVICENOW_WEBHOOK_SECRET: secret('webhook'),
      CTEM_METRICS_TOKEN: secret('metrics'),
      CTEM_OIDC_CLIENT_SECRET: secret('oidc'),
    };
    const sourceCredential = secret('registry');
    const collectorKey = secret('collector');
    // Every OTLP/HTTP export the process sends.
    const exported: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        exported.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const env = {
      ...process.env,
      ...secrets,
      CTEM_DATA_DIR: join(dir, 'data'),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: 'default',
      CTEM_TASK_QUEUE: `secrets-${randomBytes(4).toString('hex')}`,
      CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
      PORT: String(port),
      SERVICENOW_SIM_PORT: '0',
      CTEM_VALIDATION_SCHEDULE: 'off',
      CTEM_METRICS_SCHEDULE: 'off',
      CTEM_HUNTING_SCHEDULE: 'off',
      // Single sign-on configured with a provider that is down: sign-in says so, without the client secret.
      CTEM_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`,
      CTEM_OIDC_CLIENT_ID: 'ctem-console',
      // Every log line the API and the worker write, so a leak at a lower level is found too.
      CTEM_LOG_LEVEL: 'DEBUG',
      CTEM_WORKER_LOG_LEVEL: 'DEBUG',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
      OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${collectorKey}`,
    };
    let output = '';
    child = spawn(process.execPath, ['bin/ctem.js', 'start'], { cwd: root, env });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await new Promise<void>((res, rej) => {
      const timer = setInterval(() => {
        if (output.includes('CTEM platform is up')) {
          clearInterval(timer);
          res();
        }
      }, 100);
      child!.once('exit', (code) => {
        clearInterval(timer);
        rej(new Error(`ctem start exited with ${code}:\n${output}`));
      });
    });
    const base = `http://127.0.0.1:${port}`;
    const generated = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as Record<string, string>;
    const answers: string[] = [];
    const call = async (path: string, init: RequestInit = {}, token: string | null = secrets.CTEM_API_TOKEN) => {
      const response = await fetch(`${base}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) }, redirect: 'manual' });
      const body = await response.text();
      answers.push(`${init.method ?? 'GET'} ${path} ${response.status} ${JSON.stringify([...response.headers])}\n${body}`);
      return { status: response.status, body };
    };

    // A scan that succeeds and one that fails.
    const report = readFileSync(join(root, 'test', 'fixtures', 'trivy-payments-api.json'));
    const ok = JSON.parse((await call('/api/v1/scans?filename=trivy-payments-api.json&owner=alex.romero', { method: 'POST', body: report })).body) as { scanId: string };
    const bad = JSON.parse((await call('/api/v1/scans?filename=broken.json&format=trivy-json', { method: 'POST', body: '{"SchemaVersion": 2, "Results": [' })).body) as { scanId: string };
    for (const id of [ok.scanId, bad.scanId]) {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && JSON.parse((await call(`/api/v1/scans/${id}`)).body).status === 'running') await new Promise((r) => setTimeout(r, 300));
    }
    // A pulled source with header credentials whose pull fails (nothing listens there).
    const unreachable = `http://127.0.0.1:${await freePort()}/reports/{target}.json`;
    await call('/api/v1/sources/registry', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'report-url', schedule: null, config: { url: unreachable, headers: { authorization: `Bearer ${sourceCredential}` } } }) });
    await call('/api/v1/sources/registry/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'shop/web:1' }) });
    await new Promise((r) => setTimeout(r, 2000));
    // Bad credentials everywhere they are checked.
    await call('/api/v1/exposures', {}, 'wrong-token');
    await call('/metrics', {}, 'wrong-token');
    await call('/metrics', {}, secrets.CTEM_METRICS_TOKEN);
    const body = JSON.stringify({ sys_id: 'x', number: 'INC0', state: '6' });
    await call('/api/v1/webhooks/servicenow', { method: 'POST', headers: { 'content-type': 'application/json', 'x-ctem-signature': createHmac('sha256', 'not-the-secret').update(body).digest('hex') }, body }, null);
    // Every GET route the API documents, with ids from this session where a path needs one.
    const doc = JSON.parse((await call('/api/v1/openapi.json')).body) as { paths: Record<string, Record<string, unknown>> };
    const tickets = JSON.parse((await call('/api/v1/tickets')).body) as { items: Array<{ key: string }> };
    const ids: Record<string, string> = { id: ok.scanId, key: tickets.items[0]?.key ?? 'none', name: 'registry' };
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!methods.get) continue;
      const concrete = path.replace(/\{(\w+)\}/g, (_, p: string) => encodeURIComponent(ids[p] ?? '1'));
      await call(concrete);
    }
    // The console, signed in with the token.
    const signIn = await fetch(`${base}/console/sign-in`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' }, body: `token=${secrets.CTEM_API_TOKEN}&next=%2Fconsole`, redirect: 'manual' });
    const cookie = signIn.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect(cookie).toMatch(/^ctem_session=/);
    // Single sign-on: the button, the provider that is down, a callback no sign-in started.
    expect((await call('/console/sign-in', {}, null)).body).toContain('Sign in with single sign-on');
    expect((await call('/console/sign-in/oidc?next=%2Fconsole', {}, null)).status).toBe(503);
    expect((await call('/console/sign-in/oidc/callback?code=x&state=y', {}, null)).status).toBe(400);
    for (const page of ['/console', '/console/exposures', '/console/tickets', '/console/executive', '/console/program', '/console/hunting', '/console/api']) {
      await call(page, { headers: { cookie } }, null);
    }

    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    await new Promise<void>((r) => receiver.close(() => r()));
    expect(output).toContain('CTEM platform is up');
    // Stopping flushed the spans: the request spans of this session were exported and are searched.
    expect(exported.join('\n')).toContain('GET /api/v1/exposures');
    expect(answers.length).toBeGreaterThan(30);

    const everySecret: Record<string, string> = {
      ...secrets,
      'source header credential': sourceCredential,
      'OTLP collector key': collectorKey,
      'ServiceNow simulator password': generated.simulatorPassword!,
      'database password': decodeURIComponent(new URL(databaseUrl).password),
    };
    const seen = `${output}\n${answers.join('\n')}\n${exported.join('\n')}`;
    expect(output).toContain('API token        the one in CTEM_API_TOKEN');
    expect(output).toContain('password: `npx ctem token --simulator`');
    // The secrets are there when asked for, from the data dir or the environment.
    const asked = (args: string[], extra: Record<string, string> = {}) => runCtem(args, { CTEM_DATA_DIR: env.CTEM_DATA_DIR, CTEM_API_TOKEN: undefined, ...extra });
    expect((await asked(['token'])).stdout.trim()).toBe(generated.apiToken);
    expect((await asked(['token'], { CTEM_API_TOKEN: secrets.CTEM_API_TOKEN })).stdout.trim()).toBe(secrets.CTEM_API_TOKEN);
    expect((await asked(['token', '--simulator'])).stdout.trim()).toBe(generated.simulatorPassword);
    // `ctem cluster` keeps its own secrets beside its state.
    mkdirSync(join(dir, 'data', 'cluster'), { recursive: true });
    writeFileSync(join(dir, 'data', 'cluster', 'secrets.json'), JSON.stringify({ apiToken: 'cluster-token', simulatorPassword: 'cluster-sim' }));
    expect((await asked(['token', '--cluster'])).stdout.trim()).toBe('cluster-token');
    expect((await asked(['token', '--cluster', '--simulator'])).stdout.trim()).toBe('cluster-sim');
    for (const [name, value] of Object.entries(everySecret)) {
      expect(value.length, name).toBeGreaterThanOrEqual(8);
      // Whole, or its distinctive half (a truncated or split copy is still a leak).
      const at = seen.indexOf(value);
      expect(at < 0, `${name} appears in the output or an answer: …${seen.slice(Math.max(0, at - 300), at + 60)}`).toBe(true);
      expect(seen.includes(value.slice(Math.floor(value.length / 2))), `part of ${name} appears in the output or an answer`).toBe(false);
    }
  });
});
