import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { runCtem } from '../support/scripts.js';

// Silence is a bug: real reports altered the way a new scanner version or a misconfigured export
// alters them (an unknown version, vulnerabilities in a namespace nobody declared, records without
// the field that names their component) must say so, through `ctem parse`, `--strict` and the scan.

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const EXT_1_0 = 'http://cyclonedx.org/schema/ext/vulnerability/1.0';

const ctem = (args: string[], env: Record<string, string> = {}) => runCtem(args, env);

let dir: string;
/** A real fixture, rewritten, saved under `name`. */
function altered(from: string, name: string, rewrite: (text: string) => string): string {
  const text = readFileSync(from, 'utf8');
  const changed = rewrite(text);
  expect(changed).not.toBe(text);
  const file = join(dir, name);
  writeFileSync(file, changed);
  return file;
}

/** The Grype CycloneDX XML with every vulnerability element renamed into a namespace of its own. */
const advisoriesXml = () => altered(join(fixtures, 'cyclonedx', 'grype_dd_1_14_1.xml'), 'advisories.xml', (t) => t
  .replaceAll(EXT_1_0, 'http://example.org/ext/advisory/1.0').replaceAll('xmlns:v=', 'xmlns:x=')
  .replaceAll(/<(\/?)v:vulnerabilit(y|ies)\b/g, (_m, slash: string, end: string) => `<${slash}x:advisor${end}`));
const ZERO_LINE = 'advisories.xml: cyclonedx-xml: 0 findings, yet the document names 254 vulnerability ids (e.g. GHSA-xgxc-v2qg-chmh)';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctem-warnings-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ctem parse warnings', () => {
  it('warns when a document yields nothing yet names vulnerability ids, and --strict fails on it', async () => {
    const file = advisoriesXml();
    const loose = await ctem(['parse', file]);
    expect(loose).toEqual({ code: 0, stdout: '', stderr: `${ZERO_LINE}\n` });
    const strict = await ctem(['parse', file, '--strict']);
    expect(strict).toEqual({ code: 1, stdout: '', stderr: `${ZERO_LINE}\n` });
    // The unaltered report is read without a word.
    const real = await ctem(['parse', join(fixtures, 'cyclonedx', 'grype_dd_1_14_1.xml'), '--strict']);
    expect(real.code).toBe(0);
    expect(real.stderr).toBe('');
    expect(real.stdout.trim().split('\n')).toHaveLength(312);
  });

  it('warns when vulnerability elements sit in an undeclared namespace, and --strict prints no finding', async () => {
    const file = altered(join(fixtures, 'cyclonedx', 'spec1.xml'), 'spec1.xml', (t) => t.replaceAll(EXT_1_0, 'http://example.org/ext/vuln/9.9'));
    const line = `spec1.xml: cyclonedx-xml: vulnerability: vulnerability elements in an unknown namespace (declared: http://example.org/ext/vuln/9.9), read as the vulnerability extension 1.0 (${EXT_1_0})\n`;
    const loose = await ctem(['parse', file, '--target', 'acme/app']);
    expect(loose.code).toBe(0);
    expect(loose.stderr).toBe(line);
    expect(loose.stdout.trim().split('\n').map((l) => JSON.parse(l).issueId)).toEqual(['CVE-2018-7489']);
    expect(await ctem(['parse', file, '--target', 'acme/app', '--strict'])).toEqual({ code: 1, stdout: '', stderr: line });
  });

  it('warns on a GitLab report schema version it was not written for', async () => {
    const from = join(fixtures, 'gitlab-dependency-scanning', 'gl-dependency-scanning-report-many-vuln_v15.json');
    const file = altered(from, 'gl-report.json', (t) => t.replace(/^(\{\s*"version"\s*:\s*)"[^"]*"/, '$1"99.0.0"'));
    const line = 'gl-report.json: gitlab-dependency-scanning: version: unknown report schema version "99.0.0" (written for 2.x to 15.x); findings may be missing\n';
    const loose = await ctem(['parse', file, '--target', 'acme/app']);
    const real = await ctem(['parse', from, '--target', 'acme/app', '--strict']);
    expect(loose.stderr).toBe(line);
    expect(loose.code).toBe(0);
    expect(real.stderr).toBe('');
    expect(loose.stdout).toBe(real.stdout);
    expect(await ctem(['parse', file, '--target', 'acme/app', '--strict'])).toEqual({ code: 1, stdout: '', stderr: line });
  });

  it.skipIf(!hasCorpus)(`counts CycloneDX JSON records skipped for want of a ref, and an unknown specVersion (${hasCorpus ? 'corpus' : corpusSkipReason})`, async () => {
    const from = corpusFile('scanners', 'defectdojo', 'cyclonedx', 'log4j.json');
    let stripped = 0;
    const file = altered(from, 'log4j.json', (t) => t
      .replace('"specVersion": "1.4"', '"specVersion": "9.9"')
      // The first three affected refs lose their ref.
      .replace(/"ref": "pkg:maven\/org\.apache\.logging\.log4j\/log4j-core[^"]*"/g, (m) => (stripped++ < 3 ? '"note": "no ref"' : m)));
    const { code, stdout, stderr } = await ctem(['parse', file]);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(5);
    expect(stderr.trim().split('\n')).toEqual([
      'log4j.json: cyclonedx-json: specVersion: unknown version "9.9" (written for 1.2, 1.3, 1.4, 1.5, 1.6); findings may be missing',
      'log4j.json: cyclonedx-json: vulnerabilities[0].affects[0].ref: 3 skipped: an affects entry without ref names no component (first shown)',
    ]);
  });
});

describe('scan warnings', () => {
  let platform: TestPlatform;
  beforeAll(async () => {
    platform = await startTestPlatform();
  }, 180_000);
  afterAll(async () => platform?.stop());

  it('keeps warnings with the scan, prints them from ctem ingest, and fails a strict upload', async () => {
    const file = advisoriesXml();
    const env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
    const ingest = await ctem(['ingest', file, '--target', 'acme/advisories', '--no-progress'], env);
    expect(ingest.code).toBe(0);
    expect(ingest.stderr).toContain(`\n${ZERO_LINE}\n`);
    expect(JSON.parse(ingest.stdout)).toMatchObject({ findings: 0 });

    const upload = (strict: boolean) => json<{ scanId: string }>(platform.api(`/api/v1/scans?filename=advisories.xml&target=acme%2Fadvisories${strict ? '&strict=true' : ''}`, { method: 'POST', body: readFileSync(file) }));
    const done = async (scanId: string) => eventually(async () => {
      const scan = await json<{ status: string; counts: Record<string, number>; warnings: unknown[]; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return scan.status === 'running' ? undefined : scan;
    }, { what: `scan ${scanId}` });

    const loose = await done((await upload(false)).scanId);
    expect(loose.status).toBe('completed');
    expect(loose.warnings).toEqual([{ file: 'advisories.xml', format: 'cyclonedx-xml', reason: ZERO_LINE.split('cyclonedx-xml: ')[1] }]);
    expect(loose.counts).not.toHaveProperty('warnings');

    const strict = await done((await upload(true)).scanId);
    expect(strict.status).toBe('failed');
    expect(strict.error).toBe(ZERO_LINE);
    expect(strict.warnings).toEqual([]);
  }, 120_000);
});
