import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplanationFactor } from '../../db/schema.js';
import { packDirectory } from '../../prioritization/feeds/archive.js';
import type { GateResult } from '../../prioritization/gate.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { importFeed } from '../support/corpus-estate.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { runCtem } from '../support/scripts.js';

// The gate on real reports and real feeds (January 2026 FIRST EPSS and CISA KEV, CISA's Vulnrichment
// CVE records): after the platform ingested and scored each report, its gate must give every finding
// the platform's own tier, score, due days and explanation, and the standalone gate on the same files
// must give the same findings.

const REPORTS = [
  corpusFile('scanners', 'defectdojo', 'anchore_grype', 'many_vulns3.json'),
  corpusFile('scanners', 'more', 'trivy-grype-same-image', 'trivy-results.json'),
];
const EPSS = corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz');
const KEV = corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json');
const RECORDS = corpusFile('intel', 'cve-records', 'vulnrichment-sample');

let platform: TestPlatform;

const ctem = (args: string[]) => runCtem(args);

describe.skipIf(!hasCorpus)(`the gate on real reports and feeds${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  beforeAll(async () => {
    platform = await startTestPlatform();
    for (const [kind, file] of [['epss', EPSS], ['kev', KEV]] as const) expect((await importFeed(platform, kind, file)).status).toBe(200);
    const scratch = mkdtempSync(join(tmpdir(), 'ctem-gate-cve-'));
    const packed = join(scratch, 'vulnrichment-sample.tar.gz');
    await pipeline(packDirectory(RECORDS, () => true), createWriteStream(packed));
    const cve = await platform.api('/api/v1/intel/cve?asOf=2024-10-25&filename=vulnrichment-sample.tar.gz', { method: 'POST', body: readFileSync(packed) });
    rmSync(scratch, { recursive: true, force: true });
    expect(cve.status).toBe(200);
    for (const file of REPORTS) {
      const { scanId } = await json<{ scanId: string }>(platform.api(`/api/v1/scans?owner=alex.romero&filename=${basename(file)}`, { method: 'POST', body: readFileSync(file) }));
      const scan = await eventually(async () => {
        const s = await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`));
        return s.status === 'running' ? undefined : s;
      }, { what: basename(file), timeoutMs: 120_000 });
      expect(scan.status).toBe('completed');
    }
  }, 300_000);
  afterAll(async () => platform?.stop());

  it.each(REPORTS.map((f) => [basename(f), f]))('decides %s as the platform scored it, and standalone the same', async (_, file) => {
    const started = Date.now();
    const result = await json<GateResult>(platform.api(`/api/v1/gate?block=act%2Battend&filename=${basename(file)}`, { method: 'POST', body: readFileSync(file) }));
    const ms = Date.now() - started;
    expect(result.assets.every((a) => a.source === 'platform')).toBe(true);
    const stored = await platform.database.sql<{ key: string; issue_id: string; component: string; version: string; path: string; tier: string; score: number; due_days: number; explanation: ExplanationFactor[] }[]>`
      select a.asset_key as key, f.issue_id, f.component, f.version, coalesce(nullif(f.location, ''), f.manifest) as path, f.tier, f.score, extract(epoch from f.due_at - f.changed_at)::float8 / 86400 as due_days, f.explanation
      from findings f join assets a on a.id = f.asset_id
      where a.asset_key = any(${result.assets.map((a) => a.key)}::text[]) and f.status = 'open'`;
    const key = (x: { issue_id: string; component: string; version: string; path: string }) => `${x.issue_id} ${x.component} ${x.version} ${x.path}`;
    const byKey = new Map(stored.map((s) => [key(s), s]));
    expect(result.findings.length).toBeGreaterThan(0);
    expect(result.findings).toHaveLength(stored.length);
    // Where a finding differs, the first factor that does, for a readable failure.
    const differ = result.findings.flatMap((f): unknown[] => {
      const s = byKey.get(key({ issue_id: f.issueId, component: f.component, version: f.version, path: f.path }));
      if (!s) return [{ missing: key({ issue_id: f.issueId, component: f.component, version: f.version, path: f.path }) }];
      if (s.tier === f.tier && s.score === f.score && s.due_days === f.dueDays && isDeepStrictEqual(s.explanation, f.explanation)) return [];
      const i = f.explanation.findIndex((x, n) => !isDeepStrictEqual(x, s.explanation[n]));
      return [{ id: f.issueId, component: f.component, gate: { tier: f.tier, score: f.score, dueDays: f.dueDays, factor: f.explanation[i] }, platform: { tier: s.tier, score: s.score, dueDays: s.due_days, factor: s.explanation[i] } }];
    });
    expect(differ.slice(0, 2)).toEqual([]);
    expect(result.counts.blocking).toBe(result.counts.act + result.counts.attend);
    console.log(`${basename(file)}: ${result.findings.length} findings, ${result.counts.blocking} blocking, gate answered in ${ms} ms`);

    const standalone = await ctem(['gate', file, '--block', 'act+attend', '--json', '--epss', EPSS, '--kev', KEV, '--cve-records', RECORDS]);
    expect(standalone.stderr).toBe('');
    expect(standalone.code).toBe(result.verdict === 'block' ? 1 : 0);
    const alone = JSON.parse(standalone.stdout) as GateResult;
    expect(alone.feeds).toEqual(result.feeds);
    expect(alone.findings).toEqual(result.findings);
  });
});
