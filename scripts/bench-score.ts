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
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { DEFAULT_PARALLEL, rescoreFindings, shadowScore } from '../prioritization/scoring/rescore.js';
import { defaultPolicy } from '../prioritization/policy.js';
import { parseBenchArgs } from './bench-args.js';
import { closeOnInterrupt, cvePool, generate, importFeeds, openDatabase, round, timed } from './bench-estate.js';

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

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const assets = options.assets ?? Math.max(10, Math.min(5_000, Math.round(options.findings / 200)));
  const say = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const target = await openDatabase(options.keep);
  let database: Database | undefined;
  closeOnInterrupt(() => [database, target]);
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
