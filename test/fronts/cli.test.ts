import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

// The `ctem` command as a user runs it: a real process, real files, the real platform's API.

const root = resolve(import.meta.dirname, '..', '..');
const fixture = join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json');

function ctem(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['bin/ctem.js', ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => res({ code, stdout, stderr }));
  });
}

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
    const orphans = (await (await platform.api('/api/v1/assets?orphaned=true')).json()) as { total: number };
    expect(orphans.total).toBe(1);
    const owners = (await (await platform.api('/api/v1/owners')).json()) as { items: Array<{ owner: string | null; assets: number }> };
    expect(owners.items).toEqual([expect.objectContaining({ owner: null, assets: 1, openFindings: 6 })]);
  });

  it('reports a bad report as the platform explains it', async () => {
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const { code, stderr } = await ctem(['ingest', join(root, 'README.md')], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(/README\.md: unknown: format not recognised/);
  });
});
