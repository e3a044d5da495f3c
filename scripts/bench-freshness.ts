// Freshness benchmark: how soon tiers follow a change, on the scoring benchmark's estate (a million
// open findings on 5,000 assets with context, real FIRST EPSS and CISA KEV files when the corpus is
// at hand). After a first full scoring (which records what the estate was scored with):
//   unchanged  rescoreChanged when nothing changed: must read no finding;
//   kev        a new KEV version = the active one + 10 CVEs present in the estate, activated; timed
//              from the activation's commit to the affected findings re-tiered (rescoreChanged) and
//              their golden tickets re-planned and signalled (mobilize() for the assets with tier
//              moves, only the tickets of the findings that moved, as rescoreWorkflow's
//              mobilizeAssets runs it). The signals go to a stub Temporal
//              client that counts them: the figure includes planning and saving the tickets in
//              PostgreSQL, not the Temporal round trips (one signal-with-start per ticket changed).
//              Before each round the tickets of the assets concerned are planned untimed, as earlier
//              scans would have left them;
//   context    one host becomes internet-facing (a different one each round): timed like kev, to the
//              findings of the host and of the images on it re-tiered and their tickets re-planned;
//   epss       a new EPSS version in which every CVE's score changes, activated; timed to the end
//              of rescoreChanged (a full rescoring, in parallel shares), then the pruning of the
//              explanation parts no finding names any more (rescoreWorkflow's activity does both).
// Each is run --rounds times; the medians are reported, and every round.
//
//   npm run bench:freshness -- [--findings N] [--assets N] [--rounds N] [--parallel N] [--json] [--keep]
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards unless --keep); otherwise an
// embedded PostgreSQL in a temp dir. CTEM_CORPUS_DIR (default ../shared/corpus) supplies the feeds.
import type { Client } from '@temporalio/client';
import { loadConfig } from '../config/index.js';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { mobilize } from '../mobilization/mobilize.js';
import { defaultPolicy } from '../prioritization/policy.js';
import { rescoreChanged } from '../prioritization/scoring/incremental.js';
import { DEFAULT_PARALLEL, pruneExplanationParts } from '../prioritization/scoring/rescore.js';
import { parseBenchArgs } from './bench-args.js';
import { closeOnInterrupt, cvePool, generate, importFeeds, openDatabase, round, timed } from './bench-estate.js';

interface Options {
  findings: number;
  assets: number | undefined;
  rounds: number;
  parallel: number | undefined;
  json: boolean;
  keep: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<number> {
  const options = parseBenchArgs<Options>(
    process.argv.slice(2),
    { findings: 'count', assets: 'count', rounds: 'count', parallel: 'count', json: 'flag', keep: 'flag' },
    { findings: 1_000_000, assets: undefined, rounds: 3, parallel: undefined, json: false, keep: false },
  );
  const assets = options.assets ?? Math.max(10, Math.min(5_000, Math.round(options.findings / 200)));
  const parallel = options.parallel ?? DEFAULT_PARALLEL;
  const say = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const target = await openDatabase(options.keep, 'bench_freshness');
  let database: Database | undefined;
  closeOnInterrupt(() => [database, target]);
  try {
    await migrateDatabase(target.url);
    database = connectDatabase(target.url, { max: Math.max(2, parallel) + 2 });
    const sql = database.sql;
    const policy = defaultPolicy();
    say('importing feeds...');
    const intel = await importFeeds(database);
    const pool = cvePool();
    say(`generating ${options.findings} findings on ${assets} assets (${pool.source})...`);
    await generate(sql, options.findings, assets, pool);
    // Owners, so that golden tickets are routed and signalled.
    await sql`update assets set owner = 'owner-' || (id % 50) where kind <> 'business_service'`;

    const settle = async () => {
      await sql`checkpoint`.catch((err: { code?: string }) => {
        if (err.code !== '42501') throw err;
      });
    };
    say('first scoring (full, records the inputs)...');
    const first = await timed(() => rescoreChanged(sql, policy, { reason: 'benchmark, first', parallel }));
    say(`  ${round(first.seconds)} s: ${first.value.mode}, ${first.value.scored} scored`);
    if (first.value.mode !== 'full') throw new Error(`the first scoring was ${first.value.mode}, not full`);
    await sql`vacuum analyze findings`;

    // Signals go nowhere: counted, so the figure says how many a real run would send.
    let signals = 0;
    const temporal = {
      client: { workflow: { signalWithStart: async () => void signals++, getHandle: () => ({ signal: async () => {} }) } } as unknown as Client,
      taskQueue: 'bench',
    };
    const planning = { database, temporal, sla: loadConfig({}).sla, fallbackOwner: 'secops' };

    const unchanged: { seconds: number; mode: string; changed: number }[] = [];
    for (let r = 1; r <= options.rounds; r++) {
      await settle();
      const run = await timed(() => rescoreChanged(sql, policy, { reason: 'benchmark, unchanged', parallel }));
      say(`unchanged, round ${r}: ${Math.round(run.seconds * 1000) / 1000} s (${run.value.mode}, ${run.value.changed} written)`);
      // Milliseconds: a small estate's unchanged run takes a few.
      unchanged.push({ seconds: Math.round(run.seconds * 1000) / 1000, mode: run.value.mode, changed: run.value.changed });
    }

    // Ten CVEs of the estate not in KEV, a different ten each round (seeded).
    await sql`select setseed(0.17)`;
    const candidates = (
      await sql<{ issue_id: string }[]>`
        select issue_id from (select distinct issue_id from findings where status = 'open') f
        where not exists (select 1 from kev_entries k join intel_feeds i on i.kind = 'kev' and i.version = k.feed_version and i.status = 'active' where k.cve = f.issue_id)
        order by random() limit ${10 * options.rounds}`
    ).map((r) => r.issue_id);
    const kev: { seconds: number; scoringSeconds: number; mobilizationSeconds: number; mode: string; findings: number; events: number; assets: number; ticketsSignalled: number; goldenTickets: number }[] = [];
    for (let r = 1; r <= options.rounds; r++) {
      const added = candidates.slice((r - 1) * 10, r * 10);
      const [active] = await sql<{ version: string }[]>`select version from intel_feeds where kind = 'kev' and status = 'active'`;
      const next = `${active!.version}+bench${r}`;
      // Untimed: the tickets of the assets concerned exist already, as earlier scans left them.
      const concerned = (await sql<{ asset_id: string }[]>`select distinct asset_id from findings where issue_id = any(${added}::text[]) and status = 'open'`).map((x) =>
        Number(x.asset_id),
      );
      say(`kev, round ${r}: planning the tickets of the ${concerned.length} assets concerned (untimed)...`);
      for (let i = 0; i < concerned.length; i += 500) await mobilize(planning, { assetIds: concerned.slice(i, i + 500) });
      await sql.begin(async (tx) => {
        await tx`insert into kev_entries (feed_version, cve, vendor, product, date_added, due_date, known_ransomware)
                 select ${next}, cve, vendor, product, date_added, due_date, known_ransomware from kev_entries where feed_version = ${active!.version}`;
        await tx`insert into kev_entries (feed_version, cve, vendor, product, date_added, known_ransomware)
                 select ${next}, cve, 'bench', 'bench', '2026-02-01', false from unnest(${added}::text[]) cve`;
        await tx`update intel_feeds set status = 'retired' where kind = 'kev' and status = 'active'`;
        await tx`insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
                 select 'kev', ${next}, count(*)::int, 'bench', 'active', now() from kev_entries where feed_version = ${next}`;
      });
      await settle();
      signals = 0;
      const started = process.hrtime.bigint();
      const scored = await timed(() => rescoreChanged(sql, policy, { reason: `benchmark, ${next} activated`, parallel }));
      const assetIds = scored.value.eventAssetIds ?? [];
      const since = scored.value.eventsSince ? { changedSince: scored.value.eventsSince } : {};
      const mobilized = await timed(async () => {
        let goldenTickets = 0;
        for (let i = 0; i < assetIds.length; i += 500) goldenTickets += (await mobilize(planning, { assetIds: assetIds.slice(i, i + 500) }, since)).goldenTickets ?? 0;
        return goldenTickets;
      });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const row = {
        seconds: round(seconds),
        scoringSeconds: round(scored.seconds),
        mobilizationSeconds: round(mobilized.seconds),
        mode: scored.value.mode,
        findings: scored.value.scored,
        events: scored.value.events,
        assets: assetIds.length,
        ticketsSignalled: signals,
        goldenTickets: mobilized.value,
      };
      say(`kev, round ${r}: ${JSON.stringify(row)}`);
      kev.push(row);
    }

    // A context change: one host's firewall opens to the internet (a different host each round).
    const hosts = (await sql<{ id: string }[]>`select id from assets where kind = 'host' and internet_facing is false order by id limit ${options.rounds}`).map((h) => Number(h.id));
    const context: { seconds: number; scoringSeconds: number; mobilizationSeconds: number; mode: string; assetsRescored: number; findings: number; events: number; ticketsSignalled: number }[] = [];
    for (const [r, host] of hosts.entries()) {
      await sql`update assets set internet_facing = true, public_ips = array['203.0.113.' || ${r + 1}::int], exposed_ports = array['443/tcp'] where id = ${host}`;
      await settle();
      signals = 0;
      const started = process.hrtime.bigint();
      const scored = await timed(() => rescoreChanged(sql, policy, { reason: `benchmark, host ${host} exposed`, parallel }));
      const assetIds = scored.value.eventAssetIds ?? [];
      const since = scored.value.eventsSince ? { changedSince: scored.value.eventsSince } : {};
      const mobilized = await timed(async () => {
        for (let i = 0; i < assetIds.length; i += 500) await mobilize(planning, { assetIds: assetIds.slice(i, i + 500) }, since);
      });
      const row = {
        seconds: round(Number(process.hrtime.bigint() - started) / 1e9),
        scoringSeconds: round(scored.seconds),
        mobilizationSeconds: round(mobilized.seconds),
        mode: scored.value.mode,
        assetsRescored: scored.value.assetIds,
        findings: scored.value.scored,
        events: scored.value.events,
        ticketsSignalled: signals,
      };
      say(`context, round ${r + 1}: ${JSON.stringify(row)}`);
      context.push(row);
    }

    const epss: { seconds: number; pruneSeconds: number; mode: string; changed: number; events: number }[] = [];
    for (let r = 1; r <= options.rounds; r++) {
      const [active] = await sql<{ version: string }[]>`select version from intel_feeds where kind = 'epss' and status = 'active'`;
      const next = `${active!.version}+bench${r}`;
      // Every score moves a little (the cap at 1 aside), as a new day's file does.
      await sql.begin(async (tx) => {
        await tx`insert into epss_scores (feed_version, cve, epss, percentile)
                 select ${next}, cve, least(1, epss * 1.05 + 0.00001), percentile from epss_scores where feed_version = ${active!.version}`;
        await tx`update intel_feeds set status = 'retired' where kind = 'epss' and status = 'active'`;
        await tx`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('epss', ${next}, 0, 'bench', 'active', now())`;
      });
      await sql`vacuum analyze epss_scores`;
      await settle();
      const scored = await timed(() => rescoreChanged(sql, policy, { reason: `benchmark, ${next} activated`, parallel }));
      const pruned = await timed(() => pruneExplanationParts(sql));
      const row = { seconds: round(scored.seconds), pruneSeconds: round(pruned.seconds), mode: scored.value.mode, changed: scored.value.changed, events: scored.value.events };
      say(`epss, round ${r}: ${JSON.stringify(row)}`);
      epss.push(row);
      await sql`vacuum analyze findings`;
    }

    const result = {
      findings: options.findings,
      assets,
      parallel,
      intel,
      firstSeconds: round(first.seconds),
      unchangedSeconds: median(unchanged.map((u) => u.seconds)),
      kevSeconds: median(kev.map((k) => k.seconds)),
      epssSeconds: median(epss.map((e) => e.seconds)),
      contextSeconds: context.length ? median(context.map((c) => c.seconds)) : null,
      rounds: { unchanged, kev, context, epss },
      includes: {
        kev: 'from the commit of the new KEV version to the end of rescoreChanged (re-tiering the findings of the CVEs that changed) and of mobilize() for the assets with tier moves (the tickets of the findings that moved planned and saved in PostgreSQL); signals counted by a stub Temporal client',
        context: 'from the commit of one host becoming internet-facing to the end of rescoreChanged (the per-asset hashes computed, the findings of the assets whose hash changed re-tiered) and of mobilize() as for kev; no target',
        epss: 'from the commit of the new EPSS version to the end of rescoreChanged (a full rescoring in parallel shares); pruning of unnamed explanation parts reported apart (pruneSeconds)',
      },
      targets: { unchangedSeconds: 0.5, kevSeconds: 5, epssSeconds: 15 },
      targetMet: median(unchanged.map((u) => u.seconds)) <= 0.5 && median(kev.map((k) => k.seconds)) <= 5 && median(epss.map((e) => e.seconds)) <= 15,
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
    process.stderr.write(`bench-freshness: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
