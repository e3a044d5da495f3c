// Hunting benchmark: the scoring benchmark's estate (a million open findings on a few thousand
// assets with internet exposure, runtime evidence and controls, real CVE ids and feeds when the
// corpus is at hand), scored once, then per hypothesis shape:
//   run        runHypothesis: the one set-based query that counts matched / urgent / tiers / assets
//              and records the result (median of --rounds);
//   exposures  the first page (50) of the matching exposures, ordered like /api/v1/exposures (a keyset
//              page); count: the matching rows counted exactly (what the API adds);
//   start      a campaign's result before (the same query, keeping the urgent findings' ids);
//   removal    campaignRemoval across a rescoring that moved findings (half the internet-facing hosts
//              lose their exposure, as a campaign's control or firewall change would): the tier at
//              the start are looked up by id, the hypothesis asked again.
//
//   npm run bench:hunting -- [--findings N] [--assets N] [--rounds N] [--json] [--keep]
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards unless --keep); otherwise an
// embedded PostgreSQL in a temp dir. CTEM_CORPUS_DIR (default ../shared/corpus) supplies the feeds.
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { listExposures } from '../db/read-models/exposures.js';
import { defaultPolicy } from '../prioritization/policy.js';
import { rescoreFindings } from '../prioritization/scoring/rescore.js';
import { campaignRemoval, countMatching, recordCampaignResult, runHypothesis, saveHypothesis, type HypothesisQuery } from '../scoping/hypotheses.js';
import { parseBenchArgs } from './bench-args.js';
import { closeOnInterrupt, cvePool, generate, importFeeds, openDatabase, round, timed } from './bench-estate.js';

interface Options {
  findings: number;
  assets: number | undefined;
  rounds: number;
  json: boolean;
  keep: boolean;
}

// The shapes of the two documented examples (a component pattern on internet-facing hosts; an
// exploited issue loaded at runtime and publicly exposed) and the broadest one (every open finding).
const SHAPES: Record<string, HypothesisQuery> = {
  'pattern-on-internet-hosts': { components: ['component-1*'], scope: { assetKinds: ['host'], internetFacing: true } },
  'kev-runtime-exposed': { kev: true, runtime: 'loaded', publiclyExposed: true },
  everything: {},
};

async function main(): Promise<number> {
  const options = parseBenchArgs<Options>(process.argv.slice(2), { findings: 'count', assets: 'count', rounds: 'count', json: 'flag', keep: 'flag' }, { findings: 1_000_000, assets: undefined, rounds: 3, json: false, keep: false });
  const assets = options.assets ?? Math.max(10, Math.min(5_000, Math.round(options.findings / 200)));
  const say = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const target = await openDatabase(options.keep, 'bench_hunting');
  let database: Database | undefined;
  closeOnInterrupt(() => [database, target]);
  try {
    await migrateDatabase(target.url);
    database = connectDatabase(target.url, { max: 4 });
    const sql = database.sql;
    say('importing feeds...');
    await importFeeds(database);
    const pool = cvePool();
    say(`generating ${options.findings} findings on ${assets} assets (${pool.source})...`);
    await generate(sql, options.findings, assets, pool);
    say('scoring...');
    const scoring = await timed(() => rescoreFindings(sql, defaultPolicy(), { all: true }, { reason: 'bench' }));
    say(`  ${round(scoring.seconds)} s`);
    await sql`vacuum analyze`;
    const shapes: Record<string, Record<string, unknown>> = {};
    for (const [name, query] of Object.entries(SHAPES)) {
      await saveHypothesis(sql, { name, statement: `bench ${name}`, query, createdBy: 'bench' });
      const runs: number[] = [];
      let result: Awaited<ReturnType<typeof runHypothesis>> | undefined;
      for (let r = 0; r < options.rounds; r++) {
        const t = await timed(() => runHypothesis(sql, name, 'bench'));
        runs.push(t.seconds);
        result = t.value;
      }
      runs.sort((a, b) => a - b);
      const page = await timed(() => listExposures(sql, { hypothesis: query, limit: 50 }));
      const counted = await timed(() => countMatching(sql, query));
      shapes[name] = {
        matched: result!.matched,
        urgent: result!.urgent,
        runSeconds: round(runs[Math.floor(runs.length / 2)]!),
        runSecondsAll: runs.map(round),
        exposuresPageSeconds: round(page.seconds),
        countSeconds: round(counted.seconds),
      };
      say(`${name}: ${JSON.stringify(shapes[name])}`);
    }

    const campaign = 'campaign:bench:00000001';
    for (const n of Object.keys(SHAPES)) shapes[n]!.campaignStartSeconds = round((await timed(() => recordCampaignResult(sql, n, campaign, 'before'))).seconds);
    say('a rescoring after half the internet-facing hosts lose their exposure...');
    await sql`update assets set internet_facing = false where id in (select id from assets where kind = 'host' and internet_facing order by id limit (select count(*) / 2 from assets where kind = 'host' and internet_facing))`;
    const campaignRescore = await timed(() => rescoreFindings(sql, defaultPolicy(), { all: true }, { reason: 'bench' }));
    say(`  ${round(campaignRescore.seconds)} s, ${campaignRescore.value.changed} findings changed`);
    for (const n of Object.keys(SHAPES)) {
      const removal = await timed(async () => (await campaignRemoval(sql, n, campaign))!);
      Object.assign(shapes[n]!, { removalSeconds: round(removal.seconds), removal: removal.value });
    }
    const result = { findings: options.findings, assets, scoringSeconds: round(scoring.seconds), rescoringSeconds: round(campaignRescore.seconds), rescoringChanged: campaignRescore.value.changed, shapes };
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
    process.stderr.write(`bench-hunting: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
