import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplanationFactor } from '../../db/schema.js';
import type { GateResult } from '../../prioritization/gate.js';
import { activePolicy } from '../../prioritization/policy-store.js';
import { rescoreFindings } from '../../prioritization/scoring/rescore.js';
import { eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { runCtem } from '../support/scripts.js';

// The CI/CD gate as a pipeline uses it: the real `ctem gate` process on real report and feed files,
// standalone and against a real platform (PostgreSQL, Temporal, the API), whose own scoring of the
// same report after ingest is the reference the gate must agree with.

const root = resolve(import.meta.dirname, '..', '..');
const fixtures = join(import.meta.dirname, '..', 'fixtures');
const report = join(fixtures, 'trivy-payments-api.json');
const epss = join(fixtures, 'epss-sample.csv');
const kev = join(fixtures, 'kev-sample.json');
const tmp = mkdtempSync(join(tmpdir(), 'ctem-gate-'));
const cveDir = join(tmp, 'cve-records');

// A platform URL nothing answers on, unless a test gives one: standalone runs must not need it.
const ctem = (args: string[], env: Record<string, string> = {}) => runCtem(args, { CTEM_API_URL: 'http://127.0.0.1:9', ...env });

const FEEDS = ['--epss', epss, '--kev', kev, '--cve-records', cveDir];

/** A CVE record in the upstream layout, with CISA's SSVC in its ADP container. */
function record(cve: string, ssvc: { Exploitation: string; Automatable: string; 'Technical Impact': string }, cnaVector?: string) {
  const [, year, n] = /^CVE-(\d{4})-(\d+)$/.exec(cve)!;
  const file = join(cveDir, year!, `${n!.slice(0, -3)}xxx`, `${cve}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({
    dataType: 'CVE_RECORD', dataVersion: '5.1',
    cveMetadata: { cveId: cve, state: 'PUBLISHED', datePublished: '2026-10-01T08:00:00.000Z', dateUpdated: '2026-11-01T10:00:00.000Z' },
    containers: {
      cna: {
        providerMetadata: { orgId: '00000000-0000-4000-8000-000000000001', shortName: 'example' },
        ...(cnaVector ? { metrics: [{ cvssV3_1: { version: '3.1', vectorString: cnaVector, baseScore: 0 } }] } : {}),
      },
      adp: [{
        providerMetadata: { orgId: '134c704f-9b21-4f2e-91b3-4a467353bcc0', shortName: 'CISA-ADP' },
        metrics: [{ other: { type: 'ssvc', content: { id: cve, role: 'CISA Coordinator', version: '2.0.3', timestamp: '2026-10-02T12:00:00.000000Z', options: [{ Exploitation: ssvc.Exploitation }, { Automatable: ssvc.Automatable }, { 'Technical Impact': ssvc['Technical Impact'] }] } } }],
      }],
    },
  }));
}
// SSVC active makes musl's CVE exploited (the policy reads it like KEV); a public proof of concept and
// the CNA's vector over the scanner's decide OpenSSL's second CVE.
record('CVE-2020-28928', { Exploitation: 'active', Automatable: 'no', 'Technical Impact': 'partial' });
record('CVE-2021-3712', { Exploitation: 'poc', Automatable: 'yes', 'Technical Impact': 'total' }, 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N');

let platform: TestPlatform;
let env: Record<string, string>;
const TARGET = 'shop/payments-api:1.4.2';

beforeAll(async () => {
  platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV, CTEM_CVE_RECORDS: cveDir, CTEM_CVE_MIN_RECORDS: '1', CTEM_FEED_MAX_AGE_CVE: '3650d' });
  env = { CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! };
  const upload = await json<{ scanId: string }>(platform.api(`/api/v1/scans?owner=alex.romero&target=${encodeURIComponent(TARGET)}&filename=trivy-payments-api.json`, { method: 'POST', body: readFileSync(report) }));
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${upload.scanId}`))).status === 'completed' ? true : undefined), { what: 'the scan' });
});
afterAll(async () => {
  await platform?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const gateApi = async (query: string, body: Buffer | FormData = readFileSync(report)) =>
  json<GateResult>(platform.api(`/api/v1/gate?filename=trivy-payments-api.json&${query}`, { method: 'POST', body }));

interface Stored { issue_id: string; component: string; tier: string; score: number; due_days: number; explanation: ExplanationFactor[] }

async function storedFindings(): Promise<Stored[]> {
  return platform.database.sql<Stored[]>`
    select f.issue_id, f.component, f.tier, f.score, extract(epoch from f.due_at - f.changed_at)::float8 / 86400 as due_days, f.explanation
    from findings f join assets a on a.id = f.asset_id where a.name = ${TARGET} and f.status = 'open' order by f.issue_id`;
}

const sameAsScoring = (result: GateResult, stored: Stored[]) => {
  const gated = [...result.findings].sort((a, b) => (a.issueId < b.issueId ? -1 : 1))
    .map((f) => ({ issue_id: f.issueId, component: f.component, tier: f.tier, score: f.score, due_days: f.dueDays, explanation: f.explanation }));
  expect(gated).toEqual(stored);
};

describe('the gate against the platform', () => {
  it('decides each finding as the platform scored it after ingest, with the asset context the platform knows', async () => {
    const sql = platform.database.sql;
    const feeds = await sql<{ kind: string }[]>`select kind from intel_feeds where status = 'active' order by kind`;
    expect(feeds.map((f) => f.kind)).toEqual(['cve', 'epss', 'kev']);
    // Context the scoring statement's asset step derives: exposure, environment, criticality, a
    // not-exploitable control on one component, and validation evidence on one vulnerability.
    const [asset] = await sql<{ id: number }[]>`
      update assets set internet_facing = true, environment = 'staging', criticality = 'critical', business_service = 'payments'
      where name = ${TARGET} returning id`;
    await sql`
      insert into compensating_controls (name, kind, mitigates, applies_to, effect)
      values ('musl hardening', 'hardening', ${sql.json({ components: ['musl'] })}, ${sql.json({ assetKeys: [`image:${TARGET}`] })}, 'not_exploitable')`;
    await sql`
      insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, tested_at, expires_at)
      values ('gate-test-1', ${asset!.id}, 'CVE-2021-3711', 'exploited', 'pentest-kit', 'report Q4.pdf', now() - interval '1 day', now() + interval '30 days')`;
    // A due date stays while the tier does: cleared, every finding gets the one its tier gives now (as a new finding would).
    await sql`update findings set due_at = null where asset_id = ${asset!.id}`;
    await rescoreFindings(sql, await activePolicy(sql), { all: true }, { reason: 'gate test' });
    const stored = await storedFindings();
    expect(stored).toHaveLength(6);
    const [findingsBefore] = await sql<{ n: number }[]>`select count(*)::int as n from findings`;

    const result = await gateApi('block=act%2Battend');
    expect(result.assets).toEqual([expect.objectContaining({ name: TARGET, source: 'platform', businessService: 'payments' })]);
    sameAsScoring(result, stored);
    // The context took part: the control, the test and the environment each decided something.
    const factors = result.findings.flatMap((f) => f.explanation.map((x) => x.factor));
    expect(factors).toEqual(expect.arrayContaining(['control', 'validation', 'environment', 'business_impact', 'exploitation']));
    expect(result.counts.blocking).toBe(result.findings.filter((f) => f.tier === 'act' || f.tier === 'attend').length);
    expect(result.verdict).toBe(result.counts.blocking > 0 ? 'block' : 'pass');
    // A gate stores nothing.
    const [findingsAfter] = await sql<{ n: number }[]>`select count(*)::int as n from findings`;
    expect(findingsAfter!.n).toBe(findingsBefore!.n);

    // The same through the CLI, and through a multipart form.
    const cli = await ctem(['gate', report, '--target', TARGET, '--block', 'act+attend', '--json'], env);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(result.verdict === 'block' ? 1 : 0);
    expect(JSON.parse(cli.stdout)).toEqual(result);
    const form = new FormData();
    form.set('report', new Blob([readFileSync(report)]), 'trivy-payments-api.json');
    expect(await gateApi(`block=act%2Battend&target=${encodeURIComponent(TARGET)}`, form)).toEqual(result);
  });

  it('agrees with the standalone gate on an asset the platform does not know, with the context given', async () => {
    // The next build: another tag and digest, so no identifier of the deployed image matches it.
    const next = join(tmp, 'trivy-payments-api-1.5.0.json');
    writeFileSync(next, readFileSync(report, 'utf8').replaceAll('payments-api:1.4.2', 'payments-api:1.5.0').replace(/sha256:[0-9a-f]{64}/g, `sha256:${'a1'.repeat(32)}`));
    const target = 'registry.example.com/shop/payments-api:1.5.0';
    const viaApi = await gateApi('internetFacing=true&environment=production', readFileSync(next));
    expect(viaApi.assets).toEqual([expect.objectContaining({ name: target, source: 'request' })]);
    const standalone = await ctem(['gate', next, '--internet-facing', '--environment', 'production', '--json', ...FEEDS]);
    expect(standalone.stderr).toBe('');
    expect(JSON.parse(standalone.stdout)).toEqual(viaApi);
    expect(viaApi.feeds).toEqual({ epss: '2026-11-01', kev: '2026.11.01', cve: expect.stringMatching(/^2026-11-01T100000Z-[0-9a-f]{8}$/) });
    // Exposed: Log4Shell and Spring4Shell (KEV) and musl (SSVC active) act; the exposed poc raises OpenSSL's second CVE.
    const tiers = Object.fromEntries(viaApi.findings.map((f) => [f.issueId, f.tier]));
    expect(tiers).toMatchObject({ 'CVE-2021-44228': 'act', 'CVE-2022-22965': 'act' });
    expect(viaApi.findings.find((f) => f.issueId === 'CVE-2021-3712')!.explanation.map((x) => x.factor)).toContain('exploitation');
    const [asset] = await platform.database.sql`select 1 from assets where name = ${target}`;
    expect(asset).toBeUndefined();
  });

  it('lets a finding pass under a running risk acceptance on its ticket, only when exceptions are honoured', async () => {
    const sql = platform.database.sql;
    const ticket = await eventually(async () => {
      const [row] = await sql<{ ticket_key: string | null }[]>`
        select f.ticket_key from findings f join assets a on a.id = f.asset_id join tickets t on t.key = f.ticket_key
        where a.name = ${TARGET} and f.issue_id = 'CVE-2021-44228' and t.state not in ('opening', 'orphaned')`;
      return row?.ticket_key ?? undefined;
    }, { what: 'the Log4Shell ticket', timeoutMs: 90_000 });
    const expiresAt = new Date(Date.now() + 20 * 86_400_000).toISOString();
    const accepted = await platform.api(`/api/v1/tickets/${encodeURIComponent(ticket)}/risk-acceptance`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requester: 'alex.romero', approver: 'sam.lee', reason: 'WAF rule blocks JNDI lookups until the rebuild', expiresAt }),
    });
    expect(accepted.status).toBe(200);
    await eventually(async () => ((await sql`select 1 from risk_acceptances where ticket_key = ${ticket} and ended_at is null`).length ? true : undefined), { what: 'the acceptance row' });

    // The ticket's findings (one library directory: both jars) are what the acceptance covers.
    const covered = (await sql<{ issue_id: string }[]>`select issue_id from findings where ticket_key = ${ticket} order by issue_id`).map((r) => r.issue_id);
    expect(covered).toContain('CVE-2021-44228');
    const strict = await gateApi(`target=${encodeURIComponent(TARGET)}&block=act%2Battend%2Bkev`);
    const blockingStrict = strict.findings.filter((f) => f.blocking).map((f) => f.issueId).sort();
    expect(blockingStrict).toEqual(expect.arrayContaining(['CVE-2021-44228', 'CVE-2022-22965']));
    const honoured = await gateApi(`target=${encodeURIComponent(TARGET)}&block=act%2Battend%2Bkev&honourExceptions=true`);
    const log4j = honoured.findings.find((f) => f.issueId === 'CVE-2021-44228')!;
    expect(log4j).toMatchObject({ blocking: false, exception: { ticket, approver: 'sam.lee', reason: 'WAF rule blocks JNDI lookups until the rebuild' } });
    expect(honoured.findings.filter((f) => f.exception).map((f) => f.issueId).sort()).toEqual(covered.filter((id) => blockingStrict.includes(id)));
    expect(honoured.findings.filter((f) => f.blocking).map((f) => f.issueId).sort()).toEqual(blockingStrict.filter((id) => !covered.includes(id)));
    // An acceptance that ended no longer counts.
    await sql`update risk_acceptances set ended_at = now() where ticket_key = ${ticket}`;
    const ended = await gateApi(`target=${encodeURIComponent(TARGET)}&block=act%2Battend%2Bkev&honourExceptions=true`);
    expect(ended.findings.filter((f) => f.blocking).map((f) => f.issueId).sort()).toEqual(blockingStrict);
    await sql`update risk_acceptances set ended_at = null where ticket_key = ${ticket}`;
    const cli = await ctem(['gate', report, '--target', TARGET, '--block', 'kev', '--honour-exceptions'], env);
    expect(cli.stdout).toMatch(/^EXCEPTED CVE-2021-44228 .*\n {2}.*\n {2}exception on ticket .* until \d{4}-\d\d-\d\d, approved by sam\.lee: WAF rule/m);
    expect(cli.code).toBe(covered.includes('CVE-2022-22965') ? 0 : 1);
  });

  it('refuses bad input with the parameter and the reason, and a report it cannot read with the file', async () => {
    const bad = await platform.api('/api/v1/gate?block=critical', { method: 'POST', body: readFileSync(report) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^block: unknown block rule "critical"/);
    const unreadable = await platform.api('/api/v1/gate?filename=notes.txt', { method: 'POST', body: 'not a report' });
    expect(unreadable.status).toBe(400);
    expect(((await unreadable.json()) as { error: { message: string } }).error.message).toMatch(/^notes\.txt: unknown: format not recognised/);
    const noAsset = await platform.api('/api/v1/gate?asset=nowhere', { method: 'POST', body: readFileSync(report) });
    expect(noAsset.status).toBe(400);
    expect(((await noAsset.json()) as { error: { message: string } }).error.message).toBe('asset: no asset with key or name "nowhere" in the platform');
    const doc = await json<{ paths: Record<string, { post?: { responses: Record<string, { content: Record<string, { schema: { $ref?: string } }> }> } }> }>(platform.api('/api/v1/openapi.json'));
    expect(doc.paths['/api/v1/gate']!.post!.responses['200']!.content['application/json']!.schema.$ref).toBe('#/components/schemas/GateResult');
    const form = new FormData();
    form.set('notes', 'text only');
    const noFile = await platform.api('/api/v1/gate', { method: 'POST', body: form });
    expect(noFile.status).toBe(400);
  });
});

describe('ctem gate standalone', () => {
  it('exits 1 when the block rule blocks, 0 when it does not, and says why per blocking finding', async () => {
    const blocked = await ctem(['gate', report, ...FEEDS]);
    expect(blocked.code).toBe(1);
    const lines = blocked.stdout.split('\n');
    expect(lines[0]).toMatch(/^BLOCKED: 2 of 6 findings block \(block rule: act\)$/);
    expect(lines[1]).toMatch(/^policy exploitability-2; FIRST EPSS 2026-11-01; CISA KEV 2026\.11\.01; CVE records 2026-11-01T100000Z-/);
    expect(blocked.stdout).toContain('BLOCKS CVE-2021-44228  org.apache.logging.log4j:log4j-core 2.14.1 -> 2.15.0 (app/lib/log4j-core-2.14.1.jar)');
    expect(blocked.stdout).toContain('  - in_kev: in CISA KEV 2026.11.01 (added 2021-12-10, used in ransomware)');
    expect(blocked.stdout).toContain('BLOCKS CVE-2022-22965  org.springframework:spring-beans 5.3.17 -> 5.3.18 (app/lib/spring-beans-5.3.17.jar)');
    expect(blocked.stdout).not.toContain('CVE-2020-28928');
    // Non-production lowers every act one tier: nothing is act any more.
    const staging = await ctem(['gate', report, '--environment', 'staging', ...FEEDS]);
    expect(staging.stdout).toMatch(/^PASSED: no finding blocks \(block rule: act; 6 findings\)\n/);
    expect(staging.code).toBe(0);
    const attend = await ctem(['gate', report, '--environment', 'staging', '--block', 'act+attend', '--json', ...FEEDS]);
    expect(attend.code).toBe(1);
    const r = JSON.parse(attend.stdout) as GateResult;
    expect(r.findings.filter((f) => f.blocking).every((f) => f.tier === 'attend' && f.matched.includes('attend'))).toBe(true);
    expect(r.counts.blocking).toBe(r.counts.attend);
    expect(r.counts.attend).toBeGreaterThan(0);
    // musl's CVE is not in KEV, but CISA's SSVC says it is exploited: the policy reads that like KEV.
    const musl = r.findings.find((f) => f.issueId === 'CVE-2020-28928')!;
    expect(musl.inKev).toBe(false);
    expect(musl.explanation.find((x) => x.factor === 'exploitation')).toMatchObject({ value: 'active', effect: 'CISA assessed Exploitation: active: exploited in the wild' });
    expect(musl.explanation.find((x) => x.factor === 'decision')!.effect).toMatch(/^row \d+: exploited, /);
  });

  it('honours an exceptions file only with --honour-exceptions, and not once it expired', async () => {
    const file = join(tmp, 'exceptions.json');
    const future = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    writeFileSync(file, JSON.stringify([
      { id: 'CVE-2021-44228', reason: 'rebuilt image ships on Friday', expires: future, approver: 'sam.lee' },
      { id: 'CVE-2022-22965', component: 'org.springframework:spring-beans', reason: 'no data binding on this service', expires: future },
      { id: 'CVE-2020-28928', reason: 'accepted once, long ago', expires: '2020-01-01' },
    ]));
    const ignored = await ctem(['gate', report, '--block', 'kev', '--exceptions', file, ...FEEDS]);
    expect(ignored.code).toBe(1);
    const honoured = await ctem(['gate', report, '--block', 'kev', '--exceptions', file, '--honour-exceptions', '--json', ...FEEDS]);
    expect(honoured.code).toBe(0);
    const r = JSON.parse(honoured.stdout) as GateResult;
    expect(r.counts).toMatchObject({ blocking: 0, excepted: 2 });
    const attend = await ctem(['gate', report, '--block', 'act+attend', '--exceptions', file, '--honour-exceptions', '--json', ...FEEDS]);
    // musl's exception expired: it still blocks by its tier (attend: SSVC says exploited), as does OpenSSL's (EPSS).
    expect(attend.code).toBe(1);
    expect((JSON.parse(attend.stdout) as GateResult).findings.filter((f) => f.blocking).map((f) => f.issueId).sort()).toEqual(['CVE-2020-28928', 'CVE-2021-3711']);
  });

  it('writes SARIF 2.1.0 that code scanning accepts and the platform reads back', async () => {
    const out = join(tmp, 'gate.sarif');
    const run = await ctem(['gate', report, '--sarif', out, '--json', ...FEEDS]);
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as GateResult;
    const sarif = JSON.parse(readFileSync(out, 'utf8'));
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.$schema).toMatch(/sarif-2\.1\.0/);
    expect(sarif.runs).toHaveLength(1);
    const { driver } = sarif.runs[0].tool;
    expect(driver.name).toBe('ctem gate');
    const ruleIds = driver.rules.map((r: { id: string }) => r.id);
    expect(ruleIds).toEqual([...new Set(result.findings.map((f) => f.issueId))].sort());
    for (const rule of driver.rules) expect(rule.shortDescription.text.length).toBeGreaterThan(0);
    const results = sarif.runs[0].results as Array<{ ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: Array<{ physicalLocation: { artifactLocation: { uri: string } } }> }>;
    expect(results).toHaveLength(result.findings.length);
    for (const [i, res] of results.entries()) {
      const f = result.findings[i]!;
      expect(res.ruleId).toBe(f.issueId);
      expect(driver.rules[res.ruleIndex].id).toBe(res.ruleId);
      expect(res.level).toBe(f.blocking ? 'error' : 'warning');
      expect(res.message.text).toContain(`tier ${f.tier}`);
      expect(res.locations[0]!.physicalLocation.artifactLocation.uri).toBe(f.path || 'registry.example.com/shop/payments-api%3A1.4.2');
    }
    expect(results.filter((r) => r.level === 'error')).toHaveLength(2);
    // The platform's own SARIF connector reads it as the same six vulnerabilities.
    const parsed = await ctem(['parse', out]);
    expect(parsed.code).toBe(0);
    expect(parsed.stdout.trim().split('\n').map((l) => JSON.parse(l).issueId).sort()).toEqual(result.findings.map((f) => f.issueId).sort());
  });

  it('exits 2 on bad input, naming the file and the field', async () => {
    const missing = await ctem(['gate', 'no-such-report.json', ...FEEDS]);
    expect(missing).toMatchObject({ code: 2, stdout: '', stderr: 'no-such-report.json: file not found\n' });
    const rule = await ctem(['gate', report, '--block', 'act+urgent', ...FEEDS]);
    expect(rule.code).toBe(2);
    expect(rule.stderr).toMatch(/^--block: unknown block rule "urgent"; use act, attend or kev/);
    const badKev = join(tmp, 'kev-bad.json');
    writeFileSync(badKev, JSON.stringify({ catalogVersion: '2026.11.02', vulnerabilities: [{ cveID: 'CVE-21-1' }] }));
    const kevError = await ctem(['gate', report, '--epss', epss, '--kev', badKev]);
    expect(kevError).toMatchObject({ code: 2, stdout: '' });
    expect(kevError.stderr.trim()).toBe('kev-bad.json: KEV: vulnerabilities[0].cveID: invalid CVE id');
    const exceptions = join(tmp, 'exceptions-bad.json');
    writeFileSync(exceptions, JSON.stringify([{ id: 'CVE-2021-44228', reason: 'short', expires: '2099-01-01' }]));
    const excError = await ctem(['gate', report, '--exceptions', exceptions, ...FEEDS]);
    expect(excError.code).toBe(2);
    expect(excError.stderr.trim()).toBe('exceptions-bad.json: [0].reason: give a reason of at least ten characters');
    const notReport = await ctem(['gate', join(root, 'README.md'), ...FEEDS]);
    expect(notReport.code).toBe(2);
    expect(notReport.stderr).toMatch(/^README\.md: unknown: format not recognised/);
    const policy = await ctem(['gate', report, '--policy', 'exploitability-9', ...FEEDS]);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/^--policy: "exploitability-9" is neither a file nor a shipped policy/);
    // Without feed files the platform decides: one that does not answer is no verdict either.
    const down = await ctem(['gate', report], { CTEM_API_TOKEN: 'x' });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/the platform at http:\/\/127\.0\.0\.1:9 did not answer/);
  });
});
