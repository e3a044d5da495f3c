// Console benchmark: a large estate (a million findings, ten thousand golden tickets, a year of
// daily metric snapshots) seeded with set-based SQL (bench-console-seed.ts), the platform's API
// role started on it as its own process (`ctem api`, as deployed: console and API on one port),
// then virtual users walking the console's pages and the API calls behind them
// (bench-console-load.ts, where the route list is).
//   seed    counts, seconds per step, peak RSS of this process;
//   load    per route template and overall: requests, errors (by status), p50 / p95 / p99 / max in ms.
//
//   npm run bench:console -- [--findings 1000000] [--tickets 10000] [--days 365] [--assets N]
//                            [--users 20] [--seconds 30] [--journeys REGEX] [--json] [--no-check] [--keep]
//   npm run bench:console -- --database URL [--users 20] [--seconds 30] ...   (the load alone, on a
//                            database an earlier run seeded and kept with --keep and DATABASE_URL)
//
// Target (checked unless --no-check; exit 1 when missed): every route at p95 <= 150 ms and
// p99 <= 400 ms, and no errors (a route that answers 404 is missing, not fast).
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards unless --keep); otherwise an
// embedded PostgreSQL in a temp dir. TEMPORAL_ADDRESS set: that server (namespace `default`);
// otherwise a headless dev server for the run. CTEM_CORPUS_DIR (default ../shared/corpus): the real
// EPSS and KEV files when present, else synthetic feed rows for the CVEs used.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { freePort } from '../platform/ports.js';
import { startDevServer, type DevServer } from '../platform/temporal.js';
import { parseBenchArgs } from './bench-args.js';
import { closeOnInterrupt, openDatabase, round } from './bench-estate.js';
import { JOURNEYS, runLoad, type LoadReport, type LoadSample, type RouteStats } from './bench-console-load.js';
import { seedConsoleEstate, seedCounts, type SeedReport } from './bench-console-seed.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const TARGET = { p95Ms: 150, p99Ms: 400 };

interface Options {
  findings: number;
  tickets: number;
  days: number;
  assets: number | undefined;
  /** An already seeded database: no seed, the load alone. */
  database: string | undefined;
  users: number;
  seconds: number;
  /** Only the journeys whose name matches (case-insensitive), e.g. `exposure|ticket`. */
  journeys: string | undefined;
  json: boolean;
  noCheck: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  return parseBenchArgs<Options>(
    argv,
    { findings: 'count', tickets: 'count', days: 'count', assets: 'count', database: 'text', users: 'count', seconds: 'count', journeys: 'text', json: 'flag', noCheck: 'flag', keep: 'flag' },
    { findings: 1_000_000, tickets: 10_000, days: 365, assets: undefined, database: undefined, users: 20, seconds: 30, journeys: undefined, json: false, noCheck: false, keep: false },
  );
}

/** Why the run misses the target, route by route (empty: met). */
export function misses(routes: RouteStats[]): string[] {
  const out: string[] = [];
  for (const r of routes) {
    if (r.errors) out.push(`${r.route}: ${Object.entries(r.errorsBy).map(([cause, n]) => `${n} x ${cause}`).join(', ')}`);
    if (r.p95 !== null && r.p95 > TARGET.p95Ms) out.push(`${r.route}: p95 ${r.p95} ms > ${TARGET.p95Ms} ms`);
    if (r.p99 !== null && r.p99 > TARGET.p99Ms) out.push(`${r.route}: p99 ${r.p99} ms > ${TARGET.p99Ms} ms`);
  }
  return out;
}

/** `ctem api` as its own process on the seeded database; resolves once /healthz answers. */
async function startApi(env: Record<string, string>, port: number): Promise<{ child: ChildProcess; url: string; output: () => string; stop: () => Promise<void> }> {
  const childEnv: NodeJS.ProcessEnv = {};
  // Only the basics of this environment: the platform's own settings come from `env` alone.
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(CTEM_|DATABASE_URL|TEMPORAL_|SERVICENOW_|JIRA_|SLACK_|PORT$)/.test(key)) childEnv[key] = value;
  }
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ctem.js'), 'api'], { cwd: repoRoot, env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timeout);
  };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ctem api exited with ${child.exitCode}:\n${output}`);
    try {
      const health = await fetch(`${url}/healthz`);
      await health.arrayBuffer();
      if (health.ok) return { child, url, output: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`ctem api did not answer /healthz within 120 s:\n${output}`);
}

/** Peak resident memory of a process (Linux), in MB; null where /proc is not there. */
function peakRssMbOf(pid: number | undefined): number | null {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? round(Number(kb) / 1024) : null;
  } catch {
    return null;
  }
}

async function loadSample(database: Database): Promise<LoadSample> {
  const sql = database.sql;
  const [{ max } = { max: 0 }] = await sql<{ max: number }[]>`select coalesce(max(id), 0)::int as max from findings`;
  const keys = await sql<{ key: string }[]>`select key from tickets order by md5(key) limit 2000`;
  const hypotheses = await sql<{ name: string }[]>`select name from hypotheses order by name`;
  const owners = await sql<{ owner: string }[]>`select distinct owner from assets where owner is not null order by owner`;
  const scopes = await sql<{ name: string }[]>`select name from scopes order by name`;
  const sample = { maxExposureId: max, ticketKeys: keys.map((k) => k.key), hypotheses: hypotheses.map((h) => h.name), owners: owners.map((o) => o.owner), scopes: scopes.map((s) => s.name) };
  for (const [what, values] of Object.entries(sample)) {
    if (Array.isArray(values) ? !values.length : !values) throw new Error(`the seeded database has no ${what}: the journeys need some`);
  }
  return sample;
}

function table(seed: SeedReport, load: LoadReport, missed: string[], check: boolean): string {
  const cell = (v: number | null) => (v === null ? '-' : String(v));
  const rows = [...load.routes, { route: 'overall', kind: '', ...load.overall }].map((r) => [
    r.route,
    r.kind,
    String(r.count),
    String(r.errors),
    cell(r.p50),
    cell(r.p95),
    cell(r.p99),
    cell(r.max),
    r.errors ? Object.keys(r.errorsBy).join(', ') : '',
  ]);
  const head = ['route', 'kind', 'requests', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors by'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const c = seed.counts;
  return [
    `seed: ${c.findings} findings (${c.openFindings} open: ${Object.entries(c.tiers).map(([t, n]) => `${t} ${n}`).join(', ')}), ${c.assets} assets, ` +
      `${c.owners} owners, ${c.businessServices} business services, ${c.tickets} tickets, ${c.escalations} escalations, ` +
      `${c.metricSnapshots} metric snapshots over ${c.snapshotDays} days, ${c.hypotheses} hypotheses; ` +
      (Object.keys(seed.steps).length ? `${seed.seconds} s` : 'seeded by an earlier run'),
    ...(Object.keys(seed.steps).length ? [`  ${Object.entries(seed.steps).map(([s, n]) => `${s} ${n} s`).join(', ')}`] : []),
    `load: ${load.users} users, ${load.seconds} s, ${load.requests} requests (${load.requestsPerSecond}/s)`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    check
      ? missed.length
        ? `target p95 <= ${TARGET.p95Ms} ms, p99 <= ${TARGET.p99Ms} ms, no errors: MISSED\n  ${missed.join('\n  ')}`
        : `target p95 <= ${TARGET.p95Ms} ms, p99 <= ${TARGET.p99Ms} ms, no errors: met`
      : `target not checked (--no-check)${missed.length ? `; ${missed.length} misses` : ''}`,
  ].join('\n');
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const assets = options.assets ?? Math.max(20, Math.min(20_000, Math.round(options.findings / 50)));
  const journeys = options.journeys ? JOURNEYS.filter((j) => new RegExp(options.journeys!, 'i').test(j.name)) : JOURNEYS;
  if (!journeys.length) throw new Error(`--journeys ${options.journeys} matches no journey (journeys: ${JOURNEYS.map((j) => j.name).join('; ')})`);
  // Progress goes to stderr, with --json too: the JSON alone is on stdout.
  const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  const target = options.database ? { url: options.database, close: async () => {} } : await openDatabase(options.keep, 'bench_console');
  let database: Database | undefined;
  let server: DevServer | undefined;
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'ctem-bench-console-'));
  const removeDataDir = async () => rmSync(dataDir, { recursive: true, force: true });
  closeOnInterrupt(() => [api && { close: api.stop }, server && { close: server.stop }, database, target, { close: removeDataDir }]);
  try {
    await migrateDatabase(target.url);
    database = connectDatabase(target.url, { max: 4 });
    let seed: SeedReport;
    if (options.database) {
      say('the database is seeded already: the load alone');
      seed = { seconds: 0, steps: {}, intel: 'seeded by an earlier run', cves: 'seeded by an earlier run', counts: await seedCounts(database.sql) };
    } else {
      say(`seeding ${options.findings} findings, ${options.tickets} tickets, ${options.days} days of snapshots on ${assets} assets...`);
      seed = await seedConsoleEstate(database, { findings: options.findings, tickets: options.tickets, days: options.days, assets }, say);
      say(`  seeded in ${seed.seconds} s`);
    }
    const seedRssMb = round(peakRss / 1024 / 1024);
    const wrong = options.database ? [] : [
      seed.counts.findings !== options.findings && `${seed.counts.findings} findings`,
      seed.counts.tickets !== options.tickets && `${seed.counts.tickets} tickets`,
      seed.counts.snapshotDays !== options.days && `${seed.counts.snapshotDays} days of snapshots`,
    ].filter(Boolean);
    if (wrong.length) throw new Error(`the seed holds ${wrong.join(', ')}; asked for ${options.findings} findings, ${options.tickets} tickets, ${options.days} days`);
    const sample = await loadSample(database);

    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      say('starting a headless Temporal dev server...');
      server = await startDevServer({ port: await freePort(), namespace: 'default' });
      temporalAddress = server.address;
    }
    const token = randomBytes(24).toString('base64url');
    const port = await freePort();
    say('starting ctem api on the seeded database...');
    api = await startApi(
      {
        PORT: String(port),
        CTEM_HOST: '127.0.0.1',
        DATABASE_URL: target.url,
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: 'default',
        CTEM_TASK_QUEUE: `bench-console-${randomUUID()}`,
        CTEM_API_TOKEN: token,
        CTEM_DATA_DIR: dataDir,
        SERVICENOW_SIM_PORT: '0',
        JIRA_SIM_PORT: '0',
        // Nothing runs in the background during the load: no worker, no schedules.
        CTEM_VALIDATION_SCHEDULE: 'off',
        CTEM_VALIDATION_AFTER_RESCORE: 'false',
        CTEM_METRICS_SCHEDULE: 'off',
        CTEM_HUNTING_SCHEDULE: 'off',
        // Every virtual user calls the API with the one token: a per-identity budget would measure the limiter.
        CTEM_RATE_LIMIT: 'off',
      },
      port,
    );
    const load = await runLoad({ journeys, baseUrl: api.url, token, users: options.users, seconds: options.seconds, sample }, say);
    const apiPeakRssMb = peakRssMbOf(api.child.pid);
    clearInterval(sampler);
    const missed = misses(load.routes);
    const result = {
      database: options.database ? 'a database seeded by an earlier run' : process.env.DATABASE_URL ? "a fresh database on DATABASE_URL's server" : 'embedded PostgreSQL (default settings)',
      options: options.database
        ? { seeded: true, users: options.users, seconds: options.seconds, ...(options.journeys ? { journeys: options.journeys } : {}) }
        : { findings: options.findings, tickets: options.tickets, days: options.days, assets, users: options.users, seconds: options.seconds, ...(options.journeys ? { journeys: options.journeys } : {}) },
      seed: { ...seed, peakRssMb: seedRssMb },
      load,
      peakRssMb: { bench: round(peakRss / 1024 / 1024), api: apiPeakRssMb },
      target: { ...TARGET, noErrors: true, checked: !options.noCheck, met: missed.length === 0, misses: missed },
      // Kept on DATABASE_URL's server: `--database` with this name runs the load again without seeding.
      ...(options.keep && process.env.DATABASE_URL && !options.database ? { keptDatabase: new URL(target.url).pathname.slice(1) } : {}),
    };
    process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${table(seed, load, missed, !options.noCheck)}\n`);
    return options.noCheck || missed.length === 0 ? 0 : 1;
  } finally {
    clearInterval(sampler);
    await api?.stop();
    await server?.stop();
    await database?.close();
    await target.close();
    await removeDataDir();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  },
);
