// API load benchmark: a large estate (a million findings, scored, with golden tickets for the
// urgent ones) seeded the way the console benchmark seeds it (bench-console-seed.ts), the API role
// started on it as its own process (bench-api-process.ts), then autocannon keeping `--clients`
// connections busy for `--seconds` on loopback with the mix of authenticated requests a console, CI
// gates and pipelines make (MIX below), each with the API token of an identity of the role that
// makes it.
//   seed    counts and seconds per step;
//   load    per route and overall: requests, errors (non-2xx by status, timeouts, connection
//           errors), p50 / p95 / p99 / max in ms; throughput.
//
//   npm run bench:api -- [--findings 1000000] [--tickets 10000] [--days 365] [--assets N]
//                         [--clients 200] [--seconds 60] [--p99-ms 500] [--timeout-seconds 10] [--json]
//
// Target (exit 1 when missed, so it can gate): no errors and an overall p99 <= --p99-ms.
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards); otherwise an embedded
// PostgreSQL in a temp dir. TEMPORAL_ADDRESS set: that server (namespace `default`); otherwise a
// headless dev server for the run. CTEM_CORPUS_DIR as for bench:console.
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createIdentity } from '../access/identities.js';
import { BOOTSTRAP_PRINCIPAL, type Role } from '../access/principal.js';
import { issueToken } from '../access/tokens.js';
import { connectDatabase, migrateDatabase, type Database, type Sql } from '../db/client.js';
import { freePort } from '../platform/ports.js';
import { startDevServer, type DevServer } from '../platform/temporal.js';
import { benchApiEnv, peakRssMbOf, startApi, type ApiProcess } from './bench-api-process.js';
import { parseBenchArgs } from './bench-args.js';
import { Recorder, type RouteStats } from './bench-console-load.js';
import { seedConsoleEstate, type SeedReport } from './bench-console-seed.js';
import { closeOnInterrupt, openDatabase, round } from './bench-estate.js';

interface Options {
  findings: number;
  tickets: number;
  days: number;
  assets: number | undefined;
  clients: number;
  seconds: number;
  p99Ms: number;
  timeoutSeconds: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  return parseBenchArgs<Options>(
    argv,
    { findings: 'count', tickets: 'count', days: 'count', assets: 'count', clients: 'count', seconds: 'count', p99Ms: 'count', timeoutSeconds: 'count', json: 'flag' },
    { findings: 1_000_000, tickets: 10_000, days: 365, assets: undefined, clients: 200, seconds: 60, p99Ms: 500, timeoutSeconds: 10, json: false },
  );
}

/** The identities the load acts as: a person reading the console, the security team, an asset owner, a manager, a pipeline. */
const CALLERS = {
  analyst: { kind: 'user', name: 'analyst.bench', roles: ['read-only'] },
  secops: { kind: 'user', name: 'secops.bench', roles: ['secops'] },
  // Owner and manager names are those the seeded tickets and escalations carry.
  owner: { kind: 'user', name: 'owner.001', roles: ['owner'] },
  manager: { kind: 'user', name: 'manager.01', roles: ['manager'] },
  pipeline: { kind: 'service', name: 'pipeline.bench', roles: ['ci'] },
} as const satisfies Record<string, { kind: 'user' | 'service'; name: string; roles: Role[] }>;
type Caller = keyof typeof CALLERS;

/** What the requests are filled from (read from the seeded database and the API before the load). */
export interface LoadSample {
  maxExposureId: number;
  /** `q` values: issue ids the findings carry and component-name prefixes. */
  searches: string[];
  /** `next` cursors of the plain exposure list, pages 2 and on. */
  cursors: string[];
  /** Image names the platform knows, for the gate's `asset`. */
  images: string[];
  /** Small Trivy reports for the gate, one per image. */
  gateReports: string[];
}

export interface MixRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: string;
  contentType?: string;
}

/** One line of a mix: the route's name in the report, its share, who calls it (a key of the tokens) and how a request is made. */
export interface MixEntry<S, C extends string = string> {
  route: string;
  weight: number;
  caller: C;
  request: (sample: S) => MixRequest;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const TIERS = ['act', 'attend', 'track*'] as const;

/**
 * The request mix: route (the report's name for it), share of requests (weights sum to 100, so
 * each is a percentage), who calls it, and how a request is made from the sample. Reads are what
 * the console and its API users call most; the gate is a pipeline's; the one write is idempotent
 * (a scope saved with the same selector every time; it is audited like any write).
 */
export const MIX: ReadonlyArray<MixEntry<LoadSample, Caller>> = [
  { route: 'GET /api/v1/exposures?limit=50', weight: 14, caller: 'analyst', request: () => ({ method: 'GET', path: '/api/v1/exposures?limit=50' }) },
  { route: 'GET /api/v1/exposures?tier=<tier>&limit=50', weight: 12, caller: 'secops', request: () => ({ method: 'GET', path: `/api/v1/exposures?tier=${encodeURIComponent(pick(TIERS))}&limit=50` }) },
  { route: 'GET /api/v1/exposures?q=<q>&limit=50', weight: 8, caller: 'analyst', request: (s) => ({ method: 'GET', path: `/api/v1/exposures?q=${encodeURIComponent(pick(s.searches))}&limit=50` }) },
  { route: 'GET /api/v1/exposures?limit=50&after=<cursor>', weight: 8, caller: 'analyst', request: (s) => ({ method: 'GET', path: `/api/v1/exposures?limit=50&after=${encodeURIComponent(pick(s.cursors))}` }) },
  { route: 'GET /api/v1/exposures/:id', weight: 16, caller: 'analyst', request: (s) => ({ method: 'GET', path: `/api/v1/exposures/${1 + Math.floor(Math.random() * s.maxExposureId)}` }) },
  { route: 'GET /api/v1/assets?limit=50', weight: 6, caller: 'secops', request: () => ({ method: 'GET', path: '/api/v1/assets?limit=50' }) },
  { route: 'GET /api/v1/tickets?limit=50', weight: 6, caller: 'secops', request: () => ({ method: 'GET', path: '/api/v1/tickets?limit=50' }) },
  { route: "GET /api/v1/tickets?limit=50 (an owner's)", weight: 5, caller: 'owner', request: () => ({ method: 'GET', path: '/api/v1/tickets?limit=50' }) },
  { route: "GET /api/v1/tickets?escalated=true&limit=50 (a manager's)", weight: 3, caller: 'manager', request: () => ({ method: 'GET', path: '/api/v1/tickets?escalated=true&limit=50' }) },
  { route: 'GET /api/v1/metrics/overview', weight: 10, caller: 'analyst', request: () => ({ method: 'GET', path: '/api/v1/metrics/overview' }) },
  {
    route: 'POST /api/v1/gate?asset=<image>',
    weight: 10,
    caller: 'pipeline',
    request: (s) => {
      const i = Math.floor(Math.random() * s.images.length);
      return { method: 'POST', path: `/api/v1/gate?asset=${encodeURIComponent(s.images[i]!)}&filename=trivy.json`, body: s.gateReports[i]!, contentType: 'application/json' };
    },
  },
  {
    route: 'PUT /api/v1/scopes/bench-load',
    weight: 2,
    caller: 'secops',
    request: () => ({ method: 'PUT', path: '/api/v1/scopes/bench-load', body: JSON.stringify({ selector: { environments: ['production'], internetFacing: true }, description: 'Saved by the API load benchmark' }), contentType: 'application/json' }),
  },
];

/** Creates the callers' identities and issues each an API token, as an administrator would. */
async function issueCallerTokens(sql: Sql): Promise<Record<Caller, string>> {
  const tokens = {} as Record<Caller, string>;
  for (const [caller, identity] of Object.entries(CALLERS) as Array<[Caller, (typeof CALLERS)[Caller]]>) {
    const created = await createIdentity(sql, { kind: identity.kind, name: identity.name, roles: [...identity.roles] }, BOOTSTRAP_PRINCIPAL);
    tokens[caller] = (await issueToken(sql, created.id, { name: 'API load benchmark' })).token;
  }
  return tokens;
}

/** A Trivy report of an image with a few of the estate's vulnerabilities: what a pipeline sends the gate. */
function trivyReport(image: string, issues: Array<{ issueId: string; component: string; version: string; severity: string }>): string {
  return JSON.stringify({
    SchemaVersion: 2,
    ArtifactName: image,
    ArtifactType: 'container_image',
    Results: [
      {
        Target: `${image} (debian 12)`,
        Class: 'os-pkgs',
        Type: 'debian',
        Vulnerabilities: issues.map((v) => ({ VulnerabilityID: v.issueId, PkgName: v.component, InstalledVersion: v.version, Severity: v.severity.toUpperCase(), Status: 'affected' })),
      },
    ],
  });
}

async function getJson(url: string, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  const body = await response.text();
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${body.slice(0, 300)}`);
  return JSON.parse(body) as Record<string, unknown>;
}

async function loadSample(sql: Sql, baseUrl: string, token: string): Promise<LoadSample> {
  const [{ max } = { max: 0 }] = await sql<{ max: number }[]>`select coalesce(max(id), 0)::int as max from findings`;
  const issues = await sql<{ issue_id: string }[]>`select distinct issue_id from findings where id % 97 = 0 limit 40`;
  const images = await sql<{ id: number; name: string }[]>`select id, name from assets where kind = 'container_image' order by md5(name) limit 20`;
  const searches = [...issues.map((r) => r.issue_id), 'component-1', 'component-42', 'component-7'];
  const gateReports: string[] = [];
  for (const image of images) {
    const found = await sql<{ issue_id: string; component: string; version: string; severity: string }[]>`
      select issue_id, component, version, severity from findings where asset_id = ${image.id} order by id limit 8`;
    gateReports.push(trivyReport(image.name, found.map((f) => ({ issueId: f.issue_id, component: f.component, version: f.version, severity: f.severity }))));
  }
  // Later pages as a person paging the list reaches them: pages 2 to 21 of the open exposures.
  const cursors: string[] = [];
  let next: string | null = null;
  for (let page = 0; page < 20; page++) {
    const body = await getJson(`${baseUrl}/api/v1/exposures?limit=50${next ? `&after=${encodeURIComponent(next)}` : ''}`, token);
    next = body.next as string | null;
    if (!next) break;
    cursors.push(next);
  }
  const sample = { maxExposureId: max, searches, cursors, images: images.map((i) => i.name), gateReports };
  for (const [what, value] of Object.entries(sample)) {
    if (Array.isArray(value) ? !value.length : !value) throw new Error(`the seeded estate gives no ${what} for the load (seed more findings)`);
  }
  return sample;
}

/** Each route of the mix once, answered 2xx, before the load: a route that fails fails alone, with its answer. */
async function preflight(baseUrl: string, tokens: Record<Caller, string>, sample: LoadSample): Promise<void> {
  for (const entry of MIX) {
    const r = entry.request(sample);
    const response = await fetch(`${baseUrl}${r.path}`, {
      method: r.method,
      headers: { authorization: `Bearer ${tokens[entry.caller]}`, accept: 'application/json', ...(r.contentType ? { 'content-type': r.contentType } : {}) },
      ...(r.body !== undefined ? { body: r.body } : {}),
    });
    const body = await response.text();
    if (!response.ok) throw new Error(`${entry.route} as ${CALLERS[entry.caller].name} answered ${response.status} before the load: ${body.slice(0, 300)}`);
  }
}

export interface ApiLoadReport {
  clients: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  /** autocannon's own totals, for cross-checking the per-route figures. */
  autocannon: { requests: number; non2xx: number; errors: number; timeouts: number };
  routes: RouteStats[];
  overall: Omit<RouteStats, 'route' | 'kind'>;
}

/**
 * autocannon with one request template per connection that picks the next request from the mix;
 * the route chosen is kept in the connection's context, so each answer, timeout or connection
 * error is counted against the route it belongs to.
 */
export async function runLoad<S>(
  options: { mix: ReadonlyArray<MixEntry<S>>; sample: S; tokens: Record<string, string>; baseUrl: string; clients: number; seconds: number; timeoutSeconds: number },
  say: (line: string) => void,
): Promise<ApiLoadReport> {
  const mix = options.mix;
  const bad = mix.find((e) => !Number.isInteger(e.weight) || e.weight < 1);
  if (!mix.length || bad) throw new Error(bad ? `mix route ${bad.route}: the weight must be a positive integer, not ${bad.weight}` : 'the mix has no route');
  const recorder = new Recorder();
  for (const entry of mix) recorder.declare(entry.route, 'api');
  // An error no route can be named for (a connection that failed before its first request).
  recorder.declare('unknown', 'api');
  // Requests are dealt from a shuffled deck holding each route `weight` times, shared by every
  // connection: the shares are exact over each deck, and every route is called once a deck is dealt.
  const deck = mix.flatMap((entry) => Array.from({ length: entry.weight }, () => entry));
  let dealt = deck.length;
  const pickEntry = () => {
    if (dealt === deck.length) {
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
      dealt = 0;
    }
    return deck[dealt++]!;
  };
  type Context = { route?: string };
  const contextOf = (client: autocannon.Client) => (client as unknown as { requestIterator: { context: Context } }).requestIterator.context;

  const settings: autocannon.Options = {
    url: options.baseUrl,
    connections: options.clients,
    duration: options.seconds,
    timeout: options.timeoutSeconds,
    requests: [
      {
        setupRequest: (request, context) => {
          const entry = pickEntry();
          const r = entry.request(options.sample);
          (context as Context).route = entry.route;
          return {
            ...request,
            method: r.method,
            path: r.path,
            headers: { authorization: `Bearer ${options.tokens[entry.caller]}`, accept: 'application/json', ...(r.contentType ? { 'content-type': r.contentType } : {}) },
            ...(r.body !== undefined ? { body: r.body } : {}),
          };
        },
      },
    ],
    setupClient: (client) => {
      const events = client as unknown as EventEmitter;
      // `request` fires before the next request is chosen, so this is the route of the request
      // before it; on a timeout autocannon reconnects and sends the next request before it
      // reports the timeout, so then this is the route of the request that timed out.
      let previous: string | undefined;
      events.on('request', () => (previous = contextOf(client).route));
      events.on('timeout', () => recorder.error(previous ?? 'unknown', 'timeout'));
      // Reported before the connection is made again: the route in flight is still the context's.
      events.on('connError', (err: NodeJS.ErrnoException) => recorder.error(contextOf(client).route ?? 'unknown', `connection: ${err.code ?? err.message}`));
    },
  };
  let instance!: autocannon.Instance;
  const done = new Promise<autocannon.Result>((res, rej) => (instance = autocannon(settings, (err, result) => (err ? rej(err) : res(result)))));
  instance.on('response', (client, statusCode, _bytes, responseTime) => {
    const route = contextOf(client).route ?? 'unknown';
    if (statusCode >= 200 && statusCode < 300) recorder.latency(route, responseTime);
    else recorder.error(route, String(statusCode));
  });
  say(`${options.clients} clients for ${options.seconds} s...`);
  const startedAt = performance.now();
  const progress = setInterval(() => say(`  ${Math.round((performance.now() - startedAt) / 1000)} s`), 10_000);
  const result = await done;
  clearInterval(progress);
  const { routes, overall } = recorder.stats();
  const seconds = round(result.duration);
  return {
    clients: options.clients,
    seconds,
    requests: overall.count,
    requestsPerSecond: round(overall.count / seconds),
    autocannon: { requests: result.requests.total, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts },
    routes: routes.filter((r) => r.route !== 'unknown' || r.count > 0),
    overall,
  };
}

/** Why the run misses the target (empty: met): any error, or the overall p99 over the bound. */
export function misses(load: ApiLoadReport, p99Ms: number): string[] {
  const out: string[] = [];
  for (const r of load.routes) if (r.errors) out.push(`${r.route}: ${Object.entries(r.errorsBy).map(([cause, n]) => `${n} x ${cause}`).join(', ')}`);
  if (load.overall.p99 !== null && load.overall.p99 > p99Ms) out.push(`overall p99 ${load.overall.p99} ms > ${p99Ms} ms`);
  if (!load.requests) out.push('no request was answered');
  return out;
}

function table(seed: SeedReport, load: ApiLoadReport, p99Ms: number, missed: string[]): string {
  const cell = (v: number | null) => (v === null ? '-' : String(v));
  const share = new Map(MIX.map((e) => [e.route, e.weight]));
  const rows = [...load.routes, { route: 'overall', ...load.overall }].map((r) => [
    r.route,
    share.has(r.route) ? `${share.get(r.route)}%` : '',
    String(r.count),
    String(r.errors),
    cell(r.p50),
    cell(r.p95),
    cell(r.p99),
    cell(r.max),
    r.errors ? Object.entries(r.errorsBy).map(([cause, n]) => `${n} x ${cause}`).join(', ') : '',
  ]);
  const head = ['route', 'share', 'requests', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors by'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 1 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const c = seed.counts;
  const slow = load.routes.filter((r) => r.p99 !== null && r.p99 > p99Ms).map((r) => r.route);
  return [
    `seed: ${c.findings} findings (${c.openFindings} open: ${Object.entries(c.tiers).map(([t, n]) => `${t} ${n}`).join(', ')}), ${c.assets} assets, ${c.tickets} tickets; ${seed.seconds} s`,
    `load: ${load.clients} clients, ${load.seconds} s, ${load.requests} requests (${load.requestsPerSecond}/s)`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    ...(slow.length ? [`routes with p99 over ${p99Ms} ms: ${slow.join('; ')}`] : []),
    missed.length ? `target no errors, overall p99 <= ${p99Ms} ms: MISSED\n  ${missed.join('\n  ')}` : `target no errors, overall p99 <= ${p99Ms} ms: met`,
  ].join('\n');
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const assets = options.assets ?? Math.max(20, Math.min(20_000, Math.round(options.findings / 50)));
  // Progress goes to stderr, with --json too: the JSON alone is on stdout.
  const say = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const target = await openDatabase(false, 'bench_api');
  let database: Database | undefined;
  let server: DevServer | undefined;
  let api: ApiProcess | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'ctem-bench-api-'));
  const removeDataDir = async () => rmSync(dataDir, { recursive: true, force: true });
  closeOnInterrupt(() => [api && { close: api.stop }, server && { close: server.stop }, database, target, { close: removeDataDir }]);
  try {
    await migrateDatabase(target.url);
    database = connectDatabase(target.url, { max: 4 });
    say(`seeding ${options.findings} findings, ${options.tickets} tickets, ${options.days} days of snapshots on ${assets} assets...`);
    const seed = await seedConsoleEstate(database, { findings: options.findings, tickets: options.tickets, days: options.days, assets }, say);
    say(`  seeded in ${seed.seconds} s`);
    if (seed.counts.findings !== options.findings || seed.counts.tickets !== options.tickets) {
      throw new Error(`the seed holds ${seed.counts.findings} findings and ${seed.counts.tickets} tickets; asked for ${options.findings} and ${options.tickets}`);
    }
    const tokens = await issueCallerTokens(database.sql);

    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      say('starting a headless Temporal dev server...');
      server = await startDevServer({ port: await freePort(), namespace: 'default' });
      temporalAddress = server.address;
    }
    const port = await freePort();
    say('starting ctem api on the seeded database...');
    api = await startApi(benchApiEnv({ port, databaseUrl: target.url, temporalAddress, token: randomBytes(24).toString('base64url'), dataDir, name: 'bench-api' }), port);
    const sample = await loadSample(database.sql, api.url, tokens.analyst);
    // Also the warm-up: the first call of a route pays for module loading and cold caches once.
    await preflight(api.url, tokens, sample);
    const load = await runLoad({ mix: MIX, baseUrl: api.url, tokens, clients: options.clients, seconds: options.seconds, timeoutSeconds: options.timeoutSeconds, sample }, say);
    const apiPeakRssMb = peakRssMbOf(api.child.pid);
    const missed = misses(load, options.p99Ms);
    const result = {
      database: process.env.DATABASE_URL ? "a fresh database on DATABASE_URL's server" : 'embedded PostgreSQL (default settings)',
      options: { findings: options.findings, tickets: options.tickets, days: options.days, assets, clients: options.clients, seconds: options.seconds, timeoutSeconds: options.timeoutSeconds },
      mix: MIX.map((e) => ({ route: e.route, weight: e.weight, caller: CALLERS[e.caller].name, roles: CALLERS[e.caller].roles })),
      seed,
      load,
      peakRssMb: { api: apiPeakRssMb },
      target: { p99Ms: options.p99Ms, noErrors: true, met: missed.length === 0, misses: missed },
    };
    process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${table(seed, load, options.p99Ms, missed)}\n`);
    return missed.length === 0 ? 0 : 1;
  } finally {
    await api?.stop();
    await server?.stop();
    await database?.close();
    await target.close();
    await removeDataDir();
  }
}

// Run when started as a script; importing it (for its load runner) runs nothing.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err.stack ?? err.message);
      process.exit(1);
    },
  );
}
