// The estate the scoring benchmarks run on (bench-score.ts, bench-freshness.ts): a fresh database,
// the FIRST EPSS and CISA KEV feeds (real files from the corpus when present), and generated open
// findings on hosts and images with context (internet exposure, runtime evidence, controls,
// environments), real CVE ids.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type postgres from 'postgres';
import { importIntelFiles } from '../prioritization/feeds/import.js';
import type { Database } from '../db/client.js';
import { openBenchDatabase } from './bench-database.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpusDir = resolve(process.env.CTEM_CORPUS_DIR ?? join(repoRoot, '..', 'shared', 'corpus'));
const EPSS_FILE = join(corpusDir, 'intel', 'epss', 'epss_scores-2026-01-30.csv.gz');
const KEV_FILE = join(corpusDir, 'intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json');

// Real CVE ids for when the corpus is absent (KEV-listed ones first).
const FALLBACK_KEV = ['CVE-2021-44228', 'CVE-2022-22965', 'CVE-2021-45046', 'CVE-2023-44487', 'CVE-2022-42889', 'CVE-2021-26084', 'CVE-2019-11510', 'CVE-2018-13379'];
const FALLBACK_OTHER = ['CVE-2021-3711', 'CVE-2021-3712', 'CVE-2020-28928', 'CVE-2022-28391', 'CVE-2022-0778', 'CVE-2023-0286', 'CVE-2022-37434', 'CVE-2023-5363', 'CVE-2022-1304', 'CVE-2023-4911', 'CVE-2022-40674', 'CVE-2021-33574'];

/** A fresh database for the run; with an embedded server, its directory goes too unless kept. */
export async function openDatabase(keep: boolean, prefix = 'bench_score'): Promise<{ url: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `ctem-${prefix.replace(/_/g, '-')}-`));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user
  const database = await openBenchDatabase(dir, { prefix, keep });
  return {
    url: database.url,
    close: async () => {
      await database.stop();
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CVE ids for the findings: a sample of the EPSS file plus every KEV CVE, or the built-in lists. */
export function cvePool(): { kev: string[]; other: string[]; source: string } {
  if (!existsSync(EPSS_FILE) || !existsSync(KEV_FILE)) return { kev: FALLBACK_KEV, other: FALLBACK_OTHER, source: 'built-in list' };
  const kev = (JSON.parse(readFileSync(KEV_FILE, 'utf8')) as { vulnerabilities: Array<{ cveID: string }> }).vulnerabilities.map((v) => v.cveID);
  const kevSet = new Set(kev);
  const lines = gunzipSync(readFileSync(EPSS_FILE)).toString('utf8').split('\n');
  // Every 8th id after 2015: ~30k CVEs, roughly the spread of a large estate.
  const other: string[] = [];
  for (let i = 2; i < lines.length; i++) {
    const cve = lines[i]!.slice(0, lines[i]!.indexOf(','));
    if (i % 8 === 0 && cve >= 'CVE-2015' && !kevSet.has(cve)) other.push(cve);
  }
  return { kev, other, source: 'FIRST EPSS 2026-01-30 sample and CISA KEV 2026.01.29' };
}

export async function importFeeds(database: Database): Promise<string> {
  if (existsSync(EPSS_FILE) && existsSync(KEV_FILE)) {
    const year = 365 * 86_400_000;
    // Old files on purpose: judge freshness at their own date.
    await importIntelFiles(database, { epssFile: EPSS_FILE, kevFile: KEV_FILE }, { maxAgeMs: { epss: 10 * year, kev: 10 * year }, asOf: new Date('2026-01-31T00:00:00Z') });
    const active = await database.sql`select kind, version from intel_feeds where status = 'active' order by kind`;
    if (active.length === 2) return 'corpus (imported through importIntelFiles)';
    throw new Error(`the corpus feeds did not become active: ${JSON.stringify(active)}`);
  }
  await database.sql`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
    values ('epss', '2026-01-30', 0, 'synthetic', 'active', now()), ('kev', '2026.01.29', 0, 'synthetic', 'active', now())`;
  return 'synthetic';
}

export async function generate(sql: postgres.Sql, findings: number, assets: number, pool: { kev: string[]; other: string[] }) {
  await sql`select setseed(0.42)`;
  const hosts = Math.max(1, Math.round(assets * 0.4));
  const images = Math.max(1, assets - hosts);
  // Hosts: a quarter internet-facing (public IP + security group open to the world), most closed, some unknown.
  await sql`
    insert into assets (asset_key, kind, name, environment, criticality, internet_facing, public_ips, security_groups, exposed_ports, attribute_sources)
    select 'host:bench-' || g, 'host', 'host-' || g,
      (array['production', 'production', 'production', 'production', 'staging', 'dev'])[1 + (g % 6)],
      (array['critical', 'high', 'high', 'medium', 'medium', 'medium', 'low', null])[1 + (g % 8)],
      case when g % 4 = 0 then true when g % 7 = 0 then null else false end,
      case when g % 4 = 0 then array['198.51.100.' || (g % 250)] end,
      case when g % 4 = 0 then array['sg-public-' || (g % 20)] else array['sg-private-' || (g % 20)] end,
      case when g % 4 = 0 then array['443/tcp'] end,
      case when g % 7 = 0 and g % 4 <> 0 then '{}'::jsonb else '{"internet_facing": "firewall"}'::jsonb end
    from generate_series(1, ${hosts}) g`;
  await sql`
    insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr)
    select 'bench', 'sg-public-' || g, 'tcp', 443, 443, '0.0.0.0/0' from generate_series(0, 19) g`;
  await sql`
    insert into assets (asset_key, kind, name, environment, criticality, business_service)
    select 'image:bench/app-' || g || ':1', 'container_image', 'bench/app-' || g || ':1',
      (array['production', 'production', 'production', 'staging', 'dev', null])[1 + (g % 6)],
      (array['critical', 'high', 'medium', 'medium', 'low', null])[1 + (g % 6)],
      'service-' || (g % 50)
    from generate_series(1, ${images}) g`;
  // Images run on one or two hosts.
  await sql`
    insert into asset_relations (asset_id, relation, target_id, source)
    select i.id, 'runs_on', 1 + t.n, 'bench'
    from assets i cross join lateral (values (i.id % ${hosts}), ((i.id * 7) % ${hosts})) t(n)
    where i.kind = 'container_image' and (t.n = i.id % ${hosts} or i.id % 3 = 0)
    on conflict do nothing`;
  // EDR on a third of the hosts, seeing some of the packages findings are on.
  await sql`
    insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
    select h.id, p.name, '1.0', 'java', 'bench', now()
    from assets h cross join (select 'component-' || g as name from generate_series(0, 199, 3) g) p
    where h.kind = 'host' and h.id % 3 = 0`;
  await sql`
    insert into compensating_controls (name, kind, mitigates, applies_to, effect, description, expires_at) values
      ('WAF virtual patch', 'waf', ${sql.json({ issueIds: pool.kev.slice(0, 50) })}, ${sql.json({ businessServices: ['service-1', 'service-2'] })}, 'not_exposed', 'bench', null),
      ('Feature flag off', 'feature_disabled', ${sql.json({ components: ['component-7'] })}, ${sql.json({ environments: ['production'] })}, 'not_exploitable', 'bench', null),
      ('Segmented PCI zone', 'segmentation', ${sql.json({ ports: ['443/tcp'] })}, ${sql.json({ businessServices: ['service-3'] })}, 'not_exposed', 'bench', null),
      ('Expired WAF rule', 'waf', ${sql.json({ issueIds: pool.kev.slice(0, 200) })}, ${sql.json({ all: true })}, 'not_exposed', 'bench', now() - interval '1 day')`;
  // CVE pools as tables: subscripting a 30k-element array parameter walks it element by element.
  await sql`create temp table bench_kev as select row_number() over () - 1 as i, cve from unnest(${pool.kev}::text[]) as cve`;
  await sql`create temp table bench_other as select row_number() over () - 1 as i, cve from unnest(${pool.other}::text[]) as cve`;
  await sql`create unique index on bench_kev (i)`;
  await sql`create unique index on bench_other (i)`;
  await sql`analyze bench_kev`;
  await sql`analyze bench_other`;
  // Findings: 2% KEV CVEs, the rest skewed toward a head of common CVEs. CVSS score and vector
  // belong to the CVE (as in NVD), so they are derived from its id; half the CVEs carry a v3 vector.
  await sql`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version, severity, cvss_score, cvss_vector,
                          vendor_status, first_scan_id, last_scan_id)
    select md5('bench-' || r.n), 1 + floor(r.a * ${hosts + images})::bigint, 'vulnerability', c.cve,
      'component-' || floor(r.p * 200)::int, '1.' || (r.n % 17), case when r.n % 5 = 0 then 'app/lib/' || r.n || '.jar' else '' end,
      case when r.s < 0.85 then '2.' || (r.n % 9) end,
      case when v.v >= 9 then 'critical' when v.v >= 7 then 'high' when v.v >= 4 then 'medium' else 'low' end,
      v.v,
      case when v.h % 2 = 0 then (array['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N',
                                      'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H',
                                      'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
                                      'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:L/A:N', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N'])[1 + (v.h / 2) % 8] end,
      case when r.s > 0.97 then 'not_affected' when r.s > 0.15 then 'fix_available' else 'affected' end,
      '00000000-0000-4000-8000-000000000000'::uuid, '00000000-0000-4000-8000-000000000000'::uuid
    from (
      select n, random() as a, random() < 0.02 as kev, random() as c, random() as p, random() as s
      from generate_series(1, ${findings}) n
    ) r
    left join bench_kev k on r.kev and k.i = floor(r.c * ${pool.kev.length})::int
    left join bench_other o on not r.kev and o.i = floor(power(r.c, 2) * ${pool.other.length})::int
    cross join lateral (select coalesce(k.cve, o.cve) as cve) c
    cross join lateral (
      select abs(hashtext(c.cve)) as h,
             round((case when abs(hashtext(c.cve)) % 10 < (case when r.kev then 8 else 3 end) then 7 + (abs(hashtext(c.cve || 's')) % 31) / 10.0
                         else 2 + (abs(hashtext(c.cve || 's')) % 61) / 10.0 end)::numeric, 1)::real as v
    ) v`;
  await sql`vacuum analyze`;
}

export async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await run();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

export const round = (n: number) => Math.round(n * 100) / 100;

/**
 * Ctrl-C (or a kill) must not leave an embedded server or a bench database behind: closes what
 * `open` returns at that moment (the connection pool, then the database), then exits 130.
 */
export function closeOnInterrupt(open: () => Array<{ close(): Promise<unknown> } | undefined>): void {
  const interrupted = () => {
    void (async () => {
      for (const thing of open()) await thing?.close().catch(() => {});
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
}
