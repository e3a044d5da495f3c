import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NoiseCounts } from '../../db/read-models/exposures.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { formatBacktest } from '../../cli/commands/backtest.js';
import { laterKevCves, type BacktestResult } from '../../prioritization/backtest.js';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { loadCorpusEstate } from '../support/corpus-estate.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// The promise of prioritization on real data: the whole corpus (every scanner report, the January
// 2026 FIRST EPSS and CISA KEV files, CISA's Vulnrichment CVE records) through the running platform,
// with the context the project ships for it (examples/context/corpus-estate*.json: an edge host
// serving three of the images to the internet) and network scans seen from the internet's side.
// The default policy must keep at least 90% of the critical/high findings that carry no evidence of
// exploitation out of act/attend, and miss no exploited finding on a publicly exposed asset.
// CISA BOD 26-04 on the same estate is printed beside it for comparison.

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples', 'context');

let platform: TestPlatform;
let exploitability: NoiseCounts;
let bod: NoiseCounts;

async function noise(): Promise<NoiseCounts> {
  return (await json<{ now: NoiseCounts }>(platform.api('/api/v1/reports/noise'))).now;
}

async function context(file: string, source: string): Promise<void> {
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/context?source=${source}&name=${file.replace(/\.(json|csv)$/, '')}&filename=${file}`, { method: 'POST', body: readFileSync(join(EXAMPLES, file)) }),
  );
  const scan = await eventually(
    async () => {
      const s = await json<{ status: string; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    },
    { what: `context ${file}`, timeoutMs: 120_000 },
  );
  expect(scan, file).toMatchObject({ status: 'completed' });
}

async function activate(version: string): Promise<void> {
  const { workflowId } = await json<{ workflowId: string }>(platform.api(`/api/v1/policies/${version}/activate`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }));
  await platform.temporalClient.workflow.getHandle(workflowId).result();
}

type Row = { issue_id: string; tier: string; asset: string; explanation: ExplanationFactor[] };
const factor = (r: Row, name: string) => r.explanation.find((f) => f.factor === name);

describe.skipIf(!hasCorpus)(`prioritization on the whole corpus${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  beforeAll(async () => {
    platform = await startTestPlatform({ CTEM_TICKET_RECONCILE_INTERVAL: '0s' });
    await loadCorpusEstate(platform);
    await context('corpus-estate.json', 'cloud-inventory');
    await context('corpus-estate-security-groups.json', 'security-groups');
    exploitability = await noise();
  }, 900_000);

  afterAll(async () => {
    await platform?.stop();
  });

  it('keeps at least 90% of the critical/high findings without evidence of exploitation out of act/attend', () => {
    expect(exploitability.criticalHighWithoutEvidence).toBeGreaterThan(200);
    expect(exploitability.reductionWithoutEvidence).toBeGreaterThanOrEqual(0.9);
    // The overall cut is bounded by the evidence: this corpus is rich in famous exploited CVEs, and
    // the critical/high findings the policy keeps are those with evidence (nothing else).
    const withEvidence = exploitability.criticalHighByCvss - exploitability.criticalHighWithoutEvidence;
    expect(exploitability.criticalHighActAttend).toBeLessThanOrEqual(withEvidence);
  });

  it('misses no exploited finding on a publicly exposed asset', () => {
    expect(exploitability.exploitedExposed).toBeGreaterThan(10);
    expect(exploitability.exploitedExposedMissed).toBe(0);
  });

  it('exposes the images the edge host serves, through the shipped context', async () => {
    const rows = await platform.database.sql<Row[]>`
      select f.issue_id, f.tier, a.name as asset, f.explanation from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' and a.name in ('teamdojo:latest', 'my-app:latest', 'defectdojo/defectdojo-django:1.13.1')`;
    expect(rows.length).toBeGreaterThan(100);
    expect(rows.every((r) => factor(r, 'publicly_exposed')?.value === 'yes')).toBe(true);
    expect(factor(rows[0]!, 'publicly_exposed')!.effect).toMatch(/^internet-facing: runs on edge-01; edge-01 has public IP 198\.51\.100\.21 and security group sg-0e57a7e0000000001 open to/);
  });

  it('decides one CVE alike whichever scanner reported it: SSVC and the record first', async () => {
    const rows = await platform.database.sql<Row[]>`
      select f.issue_id, f.tier, a.name as asset, f.explanation from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' and f.issue_id in (select cve from cve_records where feed_version = (select version from intel_feeds where kind = 'cve' and status = 'active'))`;
    expect(rows.length).toBeGreaterThan(40);
    const byCve = new Map<string, Set<string>>();
    for (const r of rows) {
      const key = `${factor(r, 'automatable')!.value}/${factor(r, 'technical_impact')!.value}/${factor(r, 'automatable')!.source}`;
      byCve.set(r.issue_id, (byCve.get(r.issue_id) ?? new Set()).add(key));
    }
    const split = [...byCve].filter(([, keys]) => keys.size > 1).map(([cve, keys]) => `${cve}: ${[...keys].join(' | ')}`);
    expect(split).toEqual([]);
    // Where CISA assessed the CVE, its SSVC decides, on every asset and from every scanner.
    const assessed = rows.filter((r) => factor(r, 'exploitation'));
    expect(assessed.length).toBeGreaterThan(10);
    for (const r of assessed) {
      expect(factor(r, 'automatable')!.effect, r.issue_id).toMatch(/^CISA assessed Automatable: (yes|no)$/);
      expect(factor(r, 'technical_impact')!.effect, r.issue_id).toMatch(/^CISA assessed Technical Impact: (partial|total)$/);
    }
  });

  it('decides without a CVSS vector from EPSS and the score, and says so', async () => {
    const [row] = await platform.database.sql<Row[]>`
      select f.issue_id, f.tier, a.name as asset, f.explanation from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' and f.cvss_vector is null and f.cvss_score is null order by f.id limit 1`;
    expect(factor(row!, 'technical_impact')).toMatchObject({ value: 'partial', effect: 'no CVSS data: assumed partial' });
    const score = factor(row!, 'score')!;
    expect(score.effect).not.toMatch(/exploited|KEV/);
  });

  it('backtests the estate against the later KEV: the default catches what EPSS alone catches at its effort', async () => {
    const later = laterKevCves(readFileSync(corpusFile('intel', 'joined', 'epss_kev_nvd_2026-08-22.csv'), 'utf8'), 'epss_kev_nvd_2026-08-22.csv');
    const result = await json<BacktestResult>(platform.api('/api/v1/backtests', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ universe: 'estate', policies: ['active', 'bod-26-04+epss-2'], laterKev: { cves: later } }),
    }));
    console.log(`Backtest of the corpus estate:\n${formatBacktest(result)}`);
    expect(result.population).toBeGreaterThan(1000);
    const policy = result.rows.find((r) => r.name === 'policy exploitability-2')!;
    const epssAlone = result.rows.find((r) => r.name === 'EPSS alone at the effort of exploitability-2')!;
    expect(policy.coverage).toBeGreaterThanOrEqual(epssAlone.coverage);
  });

  it('puts CISA BOD 26-04 beside it on the same estate', async () => {
    await activate('bod-26-04+epss-2');
    bod = await noise();
    const table = [
      ['', 'exploitability-2 (default)', 'bod-26-04+epss-2'],
      ['critical/high findings', exploitability.criticalHighByCvss, bod.criticalHighByCvss],
      ['  of them in act/attend', exploitability.criticalHighActAttend, bod.criticalHighActAttend],
      ['  cut of critical/high', exploitability.reduction, bod.reduction],
      ['critical/high without evidence', exploitability.criticalHighWithoutEvidence, bod.criticalHighWithoutEvidence],
      ['  cut of those', exploitability.reductionWithoutEvidence, bod.reductionWithoutEvidence],
      ['exploited on exposed assets', exploitability.exploitedExposed, bod.exploitedExposed],
      ['  missed (not act/attend)', exploitability.exploitedExposedMissed, bod.exploitedExposedMissed],
      ['act / act+attend (all findings)', `${exploitability.act} / ${exploitability.actAttend}`, `${bod.act} / ${bod.actAttend}`],
    ];
    // The figures docs/benchmarks.md quotes, printed for whoever runs this file.
    console.log(`Noise report on the whole corpus:\n${table.map((r) => r.map((c, i) => String(c).padEnd(i === 0 ? 34 : 28)).join('')).join('\n')}`);
    // BOD 26-04 lets exposure and a CVSS vector alone make unexploited findings urgent.
    expect(bod.reductionWithoutEvidence!).toBeLessThan(exploitability.reductionWithoutEvidence!);
    expect(bod.reduction!).toBeLessThan(exploitability.reduction!);
    // And it catches no exploited finding on an exposed asset that the default misses.
    expect(exploitability.exploitedExposedMissed).toBeLessThanOrEqual(bod.exploitedExposedMissed);
  });

  it('finds the attack paths to the crown jewels the CMDB names, the choke points, and the fixes that cut the most', async () => {
    await activate('exploitability-2');
    // The edge host's images serve the customer portal (25 million a year), the batch host's the reporting (4 million).
    await context('corpus-estate-cmdb.csv', 'cmdb-csv');
    await platform.temporalClient.workflow.execute(rescoreWorkflow, { taskQueue: platform.env.CTEM_TASK_QUEUE!, workflowId: 'rescore:corpus-cmdb', args: [{ reason: 'corpus CMDB' }] });
    const { workflowId } = await json<{ workflowId: string }>(platform.api('/api/v1/validations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'estate' }) }));
    await platform.temporalClient.workflow.getHandle(workflowId).result();
    const { summary, chokePoints, fixes } = await json<AttackPaths>(platform.api('/api/v1/attack-paths?limit=5&examples=1'));
    const step = (s: AttackPaths['fixes'][number]['assets'][number]['examplePath'][number]) => `${s.name}${s.issueId ? ` [${s.issueId}${s.techniques.length ? ` ${s.techniques.map((t) => t.id).join('+')}` : ''}]` : ''}`;
    // The figures docs/validation.md quotes, printed for whoever runs this file.
    console.log([
      `Attack paths on the corpus estate: ${summary.paths} paths, ${summary.jewelsReached} of ${summary.jewels} crown jewels reached, ${summary.compromisable} compromisable assets`,
      'Choke points:', ...chokePoints.map((c) => `  ${c.name}: ${c.pathsThrough} paths (${(c.share * 100).toFixed(0)}%)${c.chokePoint ? ' choke point' : ''}`),
      'Top golden tickets by paths cut:', ...fixes.map((f) => `  ${f.ticketKey}: ${f.pathsCut} paths${f.assets[0]?.examplePath.length ? `, e.g. internet -> ${f.assets[0].examplePath.map(step).join(' -> ')}` : ''}`),
    ].join('\n'));
    // The portal is reached from the internet through each of the three images the edge host serves;
    // the reporting service behind it is reached by no path of urgent (act/attend) exposures.
    expect(summary).toMatchObject({ paths: 3, jewels: 2, jewelsReached: 1 });
    expect(chokePoints.filter((c) => c.chokePoint).map((c) => c.name).sort()).toEqual(['defectdojo/defectdojo-django:1.13.1', 'my-app:latest', 'teamdojo:latest']);
    // One golden ticket alone cuts a path: rebuilding teamdojo's OS layer removes its only urgent
    // exposure (freetype's CVE-2020-15999, in KEV). The other two images need more than one fix.
    expect(fixes.map((f) => [f.ticketKey.split('~')[0], f.pathsCut])).toEqual([['os-layer', 1]]);
    const path = fixes[0]!.assets[0]!.examplePath;
    expect(path.map(step)).toEqual(['teamdojo:latest [CVE-2020-15999 T1190]', 'Customer portal']);
    expect(path.map((p) => p.edgeKind)).toEqual(['internet', 'part_of']);
  });
});

type AttackPaths = {
  summary: { paths: number; jewels: number; jewelsReached: number; compromisable: number };
  chokePoints: Array<{ name: string; pathsThrough: number; share: number; chokePoint: boolean }>;
  fixes: Array<{ ticketKey: string; pathsCut: number; assets: Array<{ name: string; examplePath: Array<{ name: string; edgeKind: string; issueId: string | null; techniques: Array<{ id: string }> }> }> }>;
};
