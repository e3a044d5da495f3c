import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../platform/ports.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';
import { runCtem } from '../support/scripts.js';

// The `ctem` command as a user runs it: a real process, real files, the real platform's API.

const root = resolve(import.meta.dirname, '..', '..');
const fixture = join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json');

const ctem = (args: string[], env: Record<string, string> = {}) => runCtem(args, env);

describe('ctem parse', () => {
  it('prints normalized findings as JSON lines', async () => {
    const { code, stdout } = await ctem(['parse', fixture, '--target', 'shop/cli:1']);
    expect(code).toBe(0);
    const findings = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(findings).toHaveLength(6);
    expect(findings[0]).toMatchObject({ asset: { assetKey: 'image:shop/cli:1', kind: 'container_image' }, kind: 'vulnerability', issueId: 'CVE-2021-3711', component: 'libssl1.1', fixedVersion: '1.1.1l-r0' });
  });

  it('fails with one line naming the file, the format and the reason', async () => {
    const wrong = await ctem(['parse', join(import.meta.dirname, '..', 'fixtures', 'kev-sample.json'), '--format', 'trivy-json']);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^kev-sample\.json: trivy-json: SchemaVersion: /)]);
    const unknown = await ctem(['parse', join(root, 'README.md')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^README\.md: unknown: format not recognised; supported: trivy-json, /);
    const missing = await ctem(['parse', 'no-such-file.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('no-such-file.json: unknown: file not found');
  });
});

describe('ctem ingest', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform();
  });
  afterAll(async () => platform?.stop());

  it('uploads a report to the running platform and prints the scan counts', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const { code, stdout, stderr } = await ctem(['ingest', fixture, '--target', 'shop/cli-ingest:1', '--source', 'ci'], env);
    expect(stderr).toMatch(/^scan [0-9a-f-]{36} accepted \(workflow discovery:ci:[0-9a-f-]{36}\)/);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ findings: 6, newFindings: 6, assets: 1 });
    const assets = (await (await platform.api('/api/v1/assets?q=cli-ingest')).json()) as { items: Array<{ name: string; openFindings: number; owner: string | null }> };
    expect(assets.items).toEqual([expect.objectContaining({ name: 'shop/cli-ingest:1', openFindings: 6, owner: null })]);
    const orphans = (await (await platform.api('/api/v1/assets?orphaned=true')).json()) as { estimate: { count: number } };
    expect(orphans.estimate.count).toBe(1);
    const owners = (await (await platform.api('/api/v1/owners')).json()) as { items: Array<{ owner: string | null; assets: number }> };
    expect(owners.items).toEqual([expect.objectContaining({ owner: null, assets: 1, openFindings: 6 })]);
  });

  it('draws upload and ingest progress on stderr when asked, and keeps stdout the result', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const size = readFileSync(fixture).length;
    const shown = await ctem(['ingest', fixture, '--target', 'shop/cli-progress:1', '--progress'], env);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ findings: 6 });
    const lines = shown.stderr.split('\n');
    const sizeShown = `${(size / 1_048_576).toFixed(1)} MiB`;
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^uploading trivy-payments-api\\.json \\[.+\\] 100% \\| ${sizeShown.replace('.', '\\.')} of ${sizeShown.replace('.', '\\.')} \\|`)));
    expect(lines).toContainEqual(expect.stringMatching(/^ingesting scan [0-9a-f-]{36} \| (running|completed) \| \d+s$/));
    const quiet = await ctem(['ingest', fixture, '--target', 'shop/cli-progress:2', '--no-progress'], env);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/uploading|ingesting/);
  });

  it('lists and shows exposures and tickets, as tables or the API\'s JSON', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const listed = await ctem(['exposures', 'list', '--asset', 'shop/cli-ingest:1', '--json'], env);
    expect(listed.code).toBe(0);
    const page = JSON.parse(listed.stdout) as { estimate: { count: number }; items: Array<{ id: number; issueId: string }> };
    expect(page.estimate).toEqual({ count: 6, exact: true });
    const table = await ctem(['findings', 'list', '--asset', 'shop/cli-ingest:1', '--limit', '2'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID +TIER +SCORE +DUE +ISSUE +COMPONENT +ASSET +TICKET$/);
    expect(table.stdout.trim().split('\n').at(-1)).toMatch(/^2 of 6 \(next page: --after [A-Za-z0-9_-]+\)$/);
    const shown = await ctem(['exposures', 'show', String(page.items[0]!.id)], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`${page.items[0]!.issueId} on shop/cli-ingest:1`);
    expect(shown.stdout).toMatch(/\nwhy:\n {2}\w+: /);
    const tickets = await ctem(['tickets', 'list', '--json'], env);
    expect(tickets.code).toBe(0);
    expect(JSON.parse(tickets.stdout)).toMatchObject({ next: null, estimate: { exact: true } });
    const unknown = await ctem(['exposures', 'show', '999999'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^exposure 999999 failed: HTTP 404: /);
    const noBy = await ctem(['ticket', 'ack', 'some-key'], env);
    expect(noBy.code).toBe(2);
    expect(noBy.stderr).toMatch(/^ctem ticket ack: missing --by/);
  });

  it('imports validation evidence, runs a validation and reads the attack paths', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const dir = mkdtempSync(join(tmpdir(), 'ctem-cli-'));
    const csv = join(dir, 'pentest.csv');
    writeFileSync(csv, `asset,vulnerability,result,tested_at\nnobody.example.com,CVE-2021-44228,exploited,${new Date().toISOString()}\n`);
    const evidence = await ctem(['validate', 'evidence', csv], env);
    rmSync(dir, { recursive: true, force: true });
    expect(evidence.code).toBe(0);
    // The host is not in the inventory: said, with the record, not dropped in silence.
    expect(evidence.stdout).toMatch(/pentest\.csv \(generic-csv\): 1 records/);
    expect(evidence.stdout).toMatch(/unknown assets +1\n +CVE-2021-44228 on host:nobody\.example\.com/);
    const run = await ctem(['validate', 'run', 'estate', '--json'], env);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed', scope: 'estate', trigger: 'api', results: { probes: { enabled: false } } });
    const paths = await ctem(['validate', 'paths'], env);
    expect(paths.code).toBe(0);
    expect(paths.stdout).toMatch(/^attack paths to crown jewels +0 /);
    const unknownScope = await ctem(['validate', 'run', 'no-such-scope'], env);
    expect(unknownScope.code).toBe(1);
    expect(unknownScope.stderr).toMatch(/validation of no-such-scope failed: HTTP 404: no scope named no-such-scope/);
  });

  it('reports a bad report as the platform explains it', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const { code, stderr } = await ctem(['ingest', join(root, 'README.md')], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(/README\.md: unknown: format not recognised/);
  });
});

describe('ctem as a command line', () => {
  it('prints its version', async () => {
    const { code, stdout } = await ctem(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('stops quietly when the reader closes the pipe (ctem parse big.json | head)', async () => {
    const report = JSON.parse(readFileSync(fixture, 'utf8')) as { Results: Array<{ Vulnerabilities: Array<Record<string, unknown>> }> };
    const one = report.Results[0]!.Vulnerabilities[0]!;
    report.Results[0]!.Vulnerabilities = Array.from({ length: 5_000 }, (_, i) => ({ ...one, VulnerabilityID: `CVE-2099-${10_000 + i}` }));
    const dir = mkdtempSync(join(tmpdir(), 'ctem-cli-'));
    const big = join(dir, 'big.json');
    writeFileSync(big, JSON.stringify(report));
    const result = await new Promise<{ code: number | null; stderr: string }>((res) => {
      const child = spawn(process.execPath, ['bin/ctem.js', 'parse', big], { cwd: root });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      // Like `head -1`: read the first chunk, then close the pipe.
      child.stdout.once('data', () => child.stdout.destroy());
      child.on('exit', (code) => res({ code, stderr }));
    });
    rmSync(dir, { recursive: true, force: true });
    expect(result).toEqual({ code: 0, stderr: '' });
  });

  it('says when the platform does not answer, and where it looked', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { code, stderr } = await ctem(['exposures', 'list'], { CTEM_API_URL: url, CTEM_API_TOKEN: 'token' });
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`ctem: the platform at ${url} did not answer (ECONNREFUSED): start it with \`npm start\`, or point CTEM_API_URL at it`);
  });
});
