// Scoring benchmark: a million open findings on a few thousand assets with context (internet
// exposure, runtime evidence, controls, environments), real CVE ids and real FIRST EPSS / CISA KEV
// feeds when the corpus is at hand, then:
//   baseline   one plain full-table UPDATE of the same rows (`set score = score + 0`), the floor
//              of any statement that rewrites every finding;
//   rescore    rescoreFindings(policy, { all: true }) from unscored findings (every row gets a tier,
//              its explanation parts and a score history entry, which is its exposure event);
//   (rescore and baseline run as a pair --rounds times, the scoring reset in between; the reported
//   pair is the one with the median ratio, and every pair is printed: on a shared host one sample
//   of a two-core statement against a one-core one swings by a fifth either way)
//   unchanged  the same again, when nothing changed (nothing is written);
//   feed       after a new EPSS version is activated (every explanation names it, so every row is
//              rewritten; only real tier moves make events);
//   shadow     shadowScore with that new EPSS version before the rescore applies it (read only).
//
//   npm run bench:score -- [--findings N] [--assets N] [--parallel N] [--rounds N] [--json] [--keep]
//
// --parallel: how many shares of the findings table's blocks rescoring runs at once (default: one per core, up to 4).
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards unless --keep); otherwise an
// embedded PostgreSQL in a temp dir. CTEM_CORPUS_DIR (default ../shared/corpus) supplies the feeds.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import postgres from 'postgres';
import { importIntelFiles } from '../prioritization/feeds/import.js';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { DEFAULT_PARALLEL, rescoreFindings, shadowScore } from '../prioritization/scoring/rescore.js';
import { defaultPolicy } from '../prioritization/policy.js';
import { parseBenchArgs } from './bench-args.js';
import { openBenchDatabase } from './bench-database.js';

interface Options {
  findings: number;
  assets: number | undefined;
  parallel: number | undefined;
  rounds: number;
  json: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  return parseBenchArgs<Options>(argv, { findings: 'count', assets: 'count', parallel: 'count', rounds: 'count', json: 'flag', keep: 'flag' }, { findings: 1_000_000, assets: undefined, parallel: undefined, rounds: 3, json: false, keep: false });
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpusDir = resolve(process.env.CTEM_CORPUS_DIR ?? join(repoRoot, '..', 'shared', 'corpus'));
const EPSS_FILE = join(corpusDir, 'intel', 'epss', 'epss_scores-2026-01-30.csv.gz');
const KEV_FILE = join(corpusDir, 'intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json');

// Real CVE ids for when the corpus is absent (KEV-listed ones first).
const FALLBACK_KEV = ['CVE-2021-44228', 'CVE-2022-22965', 'CVE-2021-45046', 'CVE-2023-44487', 'CVE-2022-42889', 'CVE-2021-26084', 'CVE-2019-11510', 'CVE-2018-13379'];
const FALLBACK_OTHER = ['CVE-2021-3711', 'CVE-2021-3712', 'CVE-2020-28928', 'CVE-2022-28391', 'CVE-2022-0778', 'CVE-2023-0286', 'CVE-2022-37434', 'CVE-2023-5363', 'CVE-2022-1304', 'CVE-2023-4911', 'CVE-2022-40674', 'CVE-2021-33574'];

/** A fresh database for the run; with an embedded server, its directory goes too unless kept. */
async function openDatabase(keep: boolean): Promise<{ url: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ctem-bench-score-'));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user
  const database = await openBenchDatabase(dir, { prefix: 'bench_score', keep });
  return {
    url: database.url,
    close: async () => {
      await database.stop();
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CVE ids for the findings: a sample of the EPSS file plus every KEV CVE, or the built-in lists. */
function cvePool(): { kev: string[]; other: string[]; source: string } {
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

async function importFeeds(database: Database): Promise<string> {
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

async function generate(sql: postgres.Sql, findings: number, assets: number, pool: { kev: string[]; other: string[] }) {
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

async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await run();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

const round = (n: number) => Math.round(n * 100) / 100;

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const assets = options.assets ?? Math.max(10, Math.min(5_000, Math.round(options.findings / 200)));
  const say = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const target = await openDatabase(options.keep);
  let database: Database | undefined;
  // Ctrl-C must not leave an embedded server (or a bench database) behind.
  const interrupted = () => {
    void (async () => {
      await database?.close().catch(() => {});
      await target.close().catch(() => {});
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await migrateDatabase(target.url);
    const parallel = options.parallel ?? DEFAULT_PARALLEL;
    database = connectDatabase(target.url, { max: Math.max(2, parallel) });
    const sql = database.sql;
    say('importing feeds...');
    const intel = await importFeeds(database);
    const pool = cvePool();
    say(`generating ${options.findings} findings on ${assets} assets (${pool.source})...`);
    const generation = await timed(() => generate(sql, options.findings, assets, pool));
    say(`  ${round(generation.seconds)} s`);
    const policy = defaultPolicy();

    const baselineSql = () => sql`update findings set score = score + 0 where status = 'open'`;
    // Each timed step starts from a checkpoint, so none pays for flushing the pages the step before
    // it dirtied. CHECKPOINT needs a superuser or pg_checkpoint: a role with neither (42501) runs
    // without it, and any other failure stops the run.
    const settle = async () => {
      await sql`checkpoint`.catch((err: { code?: string }) => {
        if (err.code !== '42501') throw err;
      });
    };
    await settle();
    say('baseline on the unscored rows: update findings set score = score + 0...');
    const baselineUnscored = await timed(baselineSql);
    await sql`vacuum analyze findings`;
    say(`  ${round(baselineUnscored.seconds)} s`);

    // Pairs of (first scoring, baseline on the scored rows), the scoring undone in between.
    const pairs: { seconds: number; baselineSeconds: number; ratio: number; value: Awaited<ReturnType<typeof rescoreFindings>> }[] = [];
    for (let r = 1; r <= options.rounds; r++) {
      if (r > 1) {
        say(`round ${r}: undoing the scoring...`);
        await sql`
          update findings set tier = null, score = null, due_at = null, scored_at = null, explanation_vuln = null, explanation_asset = null,
            explanation_context = null, change_id = null, changed_at = null, change_reason = null, change_policy = null, previous_tier = null, previous_due_at = null`;
        await sql`delete from score_changes`;
        await sql`delete from explanation_parts`;
        await sql`vacuum analyze findings`;
      }
      await settle();
      say(`round ${r}: rescoreFindings({ all: true }) on unscored findings...`);
      const first = await timed(() => rescoreFindings(sql, policy, { all: true }, { reason: 'benchmark', parallel }));
      say(`  ${round(first.seconds)} s: ${JSON.stringify(first.value)}`);
      await sql`vacuum analyze findings`;
      // The like-for-like yardstick: the same rows as they are stored once scored (with their tier,
      // explanation part ids and latest score change).
      await settle();
      say(`round ${r}: baseline on the scored rows: update findings set score = score + 0...`);
      const baseline = await timed(baselineSql);
      await sql`vacuum findings`;
      say(`  ${round(baseline.seconds)} s (ratio ${round(first.seconds / baseline.seconds)})`);
      pairs.push({ seconds: first.seconds, baselineSeconds: baseline.seconds, ratio: first.seconds / baseline.seconds, value: first.value });
    }
    const median = [...pairs].sort((a, b) => a.ratio - b.ratio)[Math.floor(pairs.length / 2)]!;

    await settle();
    say('rescoreFindings again, nothing changed...');
    const unchanged = await timed(() => rescoreFindings(sql, policy, { all: true }, { reason: 'benchmark, unchanged', parallel }));
    say(`  ${round(unchanged.seconds)} s: ${JSON.stringify(unchanged.value)}`);

    // A new EPSS day: the same scores a little higher, activated as the next version.
    const [epss] = await sql<{ version: string }[]>`select version from intel_feeds where kind = 'epss' and status = 'active'`;
    const nextVersion = `${epss!.version}-next`;
    await sql`insert into epss_scores (feed_version, cve, epss, percentile) select ${nextVersion}, cve, least(1, epss * 1.3), percentile from epss_scores where feed_version = ${epss!.version}`;
    await sql`update intel_feeds set status = 'retired' where kind = 'epss' and status = 'active'`;
    await sql`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('epss', ${nextVersion}, 0, 'bench', 'active', now())`;
    say('shadowScore with the new EPSS version, before it is applied...');
    const shadow = await timed(() => shadowScore(sql, policy, { all: true }, { feeds: { epss: nextVersion } }));
    say(`  ${round(shadow.seconds)} s: unchanged ${shadow.value.unchanged}, up ${shadow.value.movedUp}, down ${shadow.value.movedDown}`);
    await settle();
    say('rescoreFindings after a new EPSS version...');
    const feed = await timed(() => rescoreFindings(sql, policy, { all: true }, { reason: 'benchmark, new EPSS version', parallel }));
    say(`  ${round(feed.seconds)} s: ${JSON.stringify(feed.value)}`);

    const tiers = Object.fromEntries(
      (await sql<{ tier: string; n: number }[]>`select tier, count(*)::int as n from findings where status = 'open' group by tier order by tier`).map((r) => [r.tier, r.n]),
    );
    const [size] = await sql<{ bytes: number }[]>`select avg(pg_column_size(explanation))::int as bytes from (select f.explanation from findings f limit 10000) s`;
    const result = {
      findings: options.findings,
      assets,
      parallel,
      intel,
      seconds: round(median.seconds),
      baselineSeconds: round(median.baselineSeconds),
      ratio: round(median.ratio),
      rounds: pairs.map((p) => ({ seconds: round(p.seconds), baselineSeconds: round(p.baselineSeconds), ratio: round(p.ratio) })),
      unchangedSeconds: round(unchanged.seconds),
      events: median.value.events,
      changed: median.value.changed,
      baselineUnscoredSeconds: round(baselineUnscored.seconds),
      ratioToUnscoredBaseline: round(median.seconds / baselineUnscored.seconds),
      unchangedWrites: unchanged.value.changed,
      feedChangeSeconds: round(feed.seconds),
      feedChangeChanged: feed.value.changed,
      feedChangeEvents: feed.value.events,
      shadowSeconds: round(shadow.seconds),
      shadow: { unchanged: shadow.value.unchanged, movedUp: shadow.value.movedUp, movedDown: shadow.value.movedDown },
      tiers,
      explanationBytes: size?.bytes ?? 0,
      baseline:
        "update findings set score = score + 0 where status = 'open': one statement rewriting every open finding once, run on the rows as stored after scoring (baselineSeconds) and on the freshly generated, unscored rows (baselineUnscoredSeconds)",
      targetMet: median.seconds <= 15 && median.ratio <= 2,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else say(JSON.stringify(result, null, 2));
    return 0;
  } finally {
    await database?.close();
    await target.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench-score: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
