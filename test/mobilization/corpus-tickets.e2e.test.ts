import { execFile } from 'node:child_process';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MobilizationAudit } from '../../mobilization/audit.js';
import { highestVersion, targetVersion } from '../../mobilization/versions.js';
import { corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { loadCorpusEstate, type UploadOutcome } from '../support/corpus-estate.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// The promise of mobilization on the whole real corpus: every scanner report of ../shared/corpus
// through the running platform (real Temporal, PostgreSQL, the ServiceNow simulator), with the real
// FIRST EPSS and CISA KEV files, network scans taken from the internet's side, and owners as a real
// estate has them: most named, some assets with none, one team's owner misspelled. Every act/attend
// finding must reach a person, one ticket per remediation action.

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');

let platform: TestPlatform;
let audit: MobilizationAudit;
let outcomes: UploadOutcome[] = [];

describe.skipIf(!hasCorpus)(`mobilization on the whole corpus${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  beforeAll(async () => {
    platform = await startTestPlatform({ CTEM_TICKET_RECONCILE_INTERVAL: '0s' });
    outcomes = await loadCorpusEstate(platform);
    audit = await json<MobilizationAudit>(platform.api('/api/v1/metrics/mobilization'));
  }, 600_000);

  afterAll(async () => {
    await platform?.stop();
  });

  it('imports every report but the deliberately broken ones', () => {
    const failed = outcomes.filter((o) => o.status !== 'completed').map((o) => basename(o.file));
    // The corpus's edge cases: an empty OSV file, SARIF with no runs, an npm audit error object, a
    // VEX document without its BOM's subject.
    expect(failed.sort()).toEqual(['empty_with_error.json', 'no_findings.json', 'no_runs.sarif'].sort());
    expect(outcomes.length).toBeGreaterThan(70);
  });

  it('leaves no urgent finding without a person', () => {
    expect(audit.urgentFindings).toBeGreaterThan(100);
    expect(audit.unreachedSample).toEqual([]);
    expect(audit.unreached).toBe(0);
    expect(audit.onFixTicket + audit.onMitigationTicket + audit.inOrphanQueue).toBe(audit.urgentFindings);
    // Each path is really taken on real data.
    expect(audit.onFixTicket).toBeGreaterThan(0);
    expect(audit.onMitigationTicket).toBeGreaterThan(0);
    expect(audit.inOrphanQueue).toBeGreaterThan(0);
  });

  it('opens one ticket per image layer, per host product and per patch run', () => {
    expect(audit.tickets).toMatchObject({ maxPerImageLayer: 1, maxPerHostProduct: 1, legacyPerPackage: 0 });
    expect(audit.tickets.maxPerOwnerPatchRun).toBeLessThanOrEqual(1);
  });

  it('puts every open CISA KEV finding in act or attend on a ticket someone holds', async () => {
    const sql = platform.database.sql;
    const kev = await sql<{ issue_id: string; asset: string; owner: string | null; action: string | null }[]>`
      select f.issue_id, a.name as asset, t.owner, t.action
      from findings f join assets a on a.id = f.asset_id left join tickets t on t.key = f.ticket_key
      where f.status = 'open' and f.tier in ('act', 'attend')
        and f.issue_id in (select cve from kev_entries where feed_version = (select version from intel_feeds where kind = 'kev' and status = 'active'))`;
    expect(kev.length).toBeGreaterThan(10);
    expect(kev.filter((k) => !k.owner)).toEqual([]);
    // Log4Shell, Heartbleed, EternalBlue and BlueKeep among them.
    for (const cve of ['CVE-2021-44228', 'CVE-2014-0160', 'CVE-2017-0144', 'CVE-2019-0708']) {
      expect(kev.some((k) => k.issue_id === cve), cve).toBe(true);
    }
  });

  it('makes every PHP check on a host one upgrade, to the highest version any of them asks', async () => {
    const sql = platform.database.sql;
    const [php] = await sql<{ key: string; fixed_version: string; finding_count: number }[]>`
      select t.key, t.fixed_version, t.finding_count from tickets t join assets a on a.id = t.asset_id
      where a.name = 'testphp.vulnweb.com' and t.action = 'product' and lower(t.component) = 'php'`;
    const [{ n } = { n: 0 }] = await sql<{ n: number }[]>`
      select count(*)::int as n from findings f join assets a on a.id = f.asset_id
      where a.name = 'testphp.vulnweb.com' and f.status = 'open' and f.tier in ('act', 'attend') and f.source_package = 'php' and f.version <> ''`;
    expect(php!.finding_count).toBe(n);
    expect(n).toBeGreaterThan(10);
    const others = await sql`select 1 from tickets t join assets a on a.id = t.asset_id where a.name = 'testphp.vulnweb.com' and t.action = 'product' and t.key <> ${php!.key}`;
    expect(others).toHaveLength(0);
    const detail = await json<{ lines: Array<{ package: string; installed: string; target?: string }> }>(platform.api(`/api/v1/tickets/${encodeURIComponent(php!.key)}`));
    // The host runs two PHP builds: 5.1.6, which the urgent versioned checks ask to take to the
    // highest fixed version any of them names, and an unsupported 5.6 build with no version named,
    // on its own line.
    expect(detail.lines.every((l) => l.package === 'php')).toBe(true);
    const fixes = await sql<{ fixed_version: string }[]>`
      select f.fixed_version from findings f join assets a on a.id = f.asset_id
      where a.name = 'testphp.vulnweb.com' and f.status = 'open' and f.tier in ('act', 'attend') and f.source_package = 'php'
        and f.version = '5.1.6' and f.fixed_version is not null`;
    const highest = highestVersion(fixes.map((f) => targetVersion('5.1.6', f.fixed_version)).filter((t): t is string => !!t));
    expect(highest).toMatch(/^5\.3\./); // only the checks with evidence of exploitation are urgent
    expect(detail.lines.find((l) => l.installed === '5.1.6')).toMatchObject({ target: highest });
    expect(php!.fixed_version).toBe(highest);
  });

  it('sends the tickets of an owner the ITSM does not know to the orphan queue, with the reason', async () => {
    const queued = await json<{ items: Array<{ key: string; owner: string; orphanReason: string; asset: { key: string } }> }>(platform.api('/api/v1/tickets?orphaned=true&limit=500'));
    const reasons = new Set(queued.items.map((t) => t.orphanReason));
    expect(reasons).toContain('owner alex.romer0 not found in ServiceNow');
    expect(reasons).toContain('the asset has no owner');
    expect(queued.items.every((t) => t.owner === 'sam.okafor')).toBe(true);
    // The weekly orphan report lists the queue beside the assets nobody owns.
    const report = await json<{ orphanTickets: Array<{ key: string; reason: string; owner: string }> }>(
      platform.api('/api/v1/reports/orphan-assets', { method: 'POST' }),
    );
    expect(report.orphanTickets.map((t) => t.key).sort()).toEqual(queued.items.map((t) => t.key).sort());
  });

  it('prints the same audit with `ctem tickets audit`, exit 0 when nothing is unreached', async () => {
    const { stdout } = await run(process.execPath, [join(REPO, 'bin', 'ctem.js'), 'tickets', 'audit'], {
      env: { ...process.env, CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! },
    });
    // The figures docs/benchmarks.md quotes, printed for whoever runs this file.
    console.log(`ctem tickets audit on the whole corpus:\n${stdout}`);
    expect(stdout).toContain(`urgent (act/attend) findings   ${audit.urgentFindings}`);
    expect(stdout).toMatch(/reaching no one\s+0\n/);
    expect(stdout).toMatch(/most per image and layer\s+1\n/);
  });
});
