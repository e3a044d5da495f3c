// The load of the console benchmark (bench-console.ts): virtual users, each signed in to the console
// with a cookie and calling the API with the bearer token, walking weighted journeys (a console page
// and the API calls that show the same thing) in a loop for a fixed time. At most one request per
// user is in flight, so `users` bounds the concurrency. Latency is recorded per route template; a
// 4xx/5xx (a page that does not exist yet answers 404) or a missing next-page cursor is an error,
// never a latency.

/**
 * Every route the benchmark calls, as journeys. Placeholders: `:id` a random exposure id, `:key` a
 * random ticket key, `:name` a random hypothesis, `<owner>` and `<scope>` a random owner and saved
 * scope, `<cursor>` the next-page cursor of the step before (from the JSON's `next` / `nextCursor`
 * field or the page's "next page" link). The template is the route's name in the report. The API calls
 * of a journey are those that show what its page shows: the Overview and Executive pages read the
 * daily snapshots (/api/v1/metrics/overview, /executive), not the live whole-estate computations
 * (/api/v1/reports/noise, /api/v1/metrics/response), which are reports, not console reads.
 */
export const JOURNEYS: ReadonlyArray<{ name: string; weight: number; steps: readonly string[] }> = [
  { name: 'overview', weight: 4, steps: ['/console', '/api/v1/metrics/overview'] },
  { name: 'urgent exposures, two pages', weight: 6, steps: ['/console/exposures?tier=act', '/api/v1/exposures?tier=act&limit=50', '/api/v1/exposures?tier=act&limit=50&after=<cursor>'] },
  { name: 'exposures, next page in the console', weight: 2, steps: ['/console/exposures', '/console/exposures?after=<cursor>'] },
  { name: "an owner's exposures", weight: 2, steps: ['/console/exposures?owner=<owner>', '/api/v1/exposures?owner=<owner>&limit=50'] },
  { name: 'KEV in a scope', weight: 2, steps: ['/console/exposures?scope=<scope>&kev=true', '/api/v1/exposures?scope=<scope>&kev=true&limit=50'] },
  { name: 'one exposure', weight: 6, steps: ['/console/exposures/:id', '/api/v1/exposures/:id'] },
  { name: 'tickets, two pages', weight: 3, steps: ['/console/tickets', '/api/v1/tickets?limit=50', '/api/v1/tickets?limit=50&after=<cursor>'] },
  { name: 'overdue tickets', weight: 1, steps: ['/console/tickets?overdue=true', '/api/v1/tickets?escalated=true&limit=50'] },
  { name: 'one ticket', weight: 4, steps: ['/console/tickets/:key', '/api/v1/tickets/:key'] },
  { name: 'executive', weight: 2, steps: ['/console/executive', '/api/v1/metrics/executive', '/api/v1/metrics/snapshots?scope=*'] },
  { name: 'hunting', weight: 2, steps: ['/console/hunting', '/api/v1/hypotheses'] },
  { name: 'one hypothesis', weight: 2, steps: ['/console/hunting/:name', '/api/v1/hypotheses/:name', '/api/v1/hypotheses/:name/results', '/api/v1/hypotheses/:name/exposures'] },
  { name: 'program', weight: 1, steps: ['/console/program', '/api/v1/scopes', '/api/v1/sources', '/api/v1/intel/feeds', '/api/v1/policies'] },
  { name: 'API reference', weight: 1, steps: ['/console/api', '/api/v1/openapi.json'] },
];

/** What the placeholders are filled from (read from the seeded database before the load). */
export interface LoadSample {
  maxExposureId: number;
  ticketKeys: string[];
  hypotheses: string[];
  owners: string[];
  scopes: string[];
}

export interface LoadOptions {
  /** The journeys walked (default: all of JOURNEYS). */
  journeys?: ReadonlyArray<(typeof JOURNEYS)[number]>;
  baseUrl: string;
  token: string;
  users: number;
  seconds: number;
  sample: LoadSample;
}

export interface RouteStats {
  route: string;
  kind: 'page' | 'api' | 'sign-in';
  count: number;
  errors: number;
  /** Error causes and how often: an HTTP status (`404`), `redirected to sign-in`, `no cursor`, or a network error. */
  errorsBy: Record<string, number>;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export interface LoadReport {
  users: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  routes: RouteStats[];
  overall: Omit<RouteStats, 'route' | 'kind'>;
}

/** Nearest-rank percentile of sorted samples (exact). */
export const percentile = (sorted: number[], p: number): number | null =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : null;

const ms = (n: number) => Math.round(n * 10) / 10;

export class Recorder {
  private samples = new Map<string, number[]>();
  private errors = new Map<string, Map<string, number>>();
  private kinds = new Map<string, RouteStats['kind']>();
  /** Every route is listed, called or not, in journey order. */
  declare(route: string, kind: RouteStats['kind']) {
    this.kinds.set(route, kind);
    if (!this.samples.has(route)) this.samples.set(route, []);
  }
  latency(route: string, millis: number) {
    this.samples.get(route)!.push(millis);
  }
  error(route: string, cause: string) {
    const byCause = this.errors.get(route) ?? new Map<string, number>();
    byCause.set(cause, (byCause.get(cause) ?? 0) + 1);
    this.errors.set(route, byCause);
  }
  stats(): { routes: RouteStats[]; overall: LoadReport['overall'] } {
    const summarise = (values: number[], errorsBy: Record<string, number>) => {
      const sorted = [...values].sort((a, b) => a - b);
      const pct = (p: number) => {
        const v = percentile(sorted, p);
        return v === null ? null : ms(v);
      };
      const errors = Object.values(errorsBy).reduce((a, b) => a + b, 0);
      return { count: sorted.length + errors, errors, errorsBy, p50: pct(50), p95: pct(95), p99: pct(99), max: sorted.length ? ms(sorted.at(-1)!) : null };
    };
    const routes = [...this.samples].map(([route, values]) => ({
      route,
      kind: this.kinds.get(route)!,
      ...summarise(values, Object.fromEntries(this.errors.get(route) ?? [])),
    }));
    const allErrors: Record<string, number> = {};
    for (const byCause of this.errors.values()) for (const [cause, n] of byCause) allErrors[cause] = (allErrors[cause] ?? 0) + n;
    return { routes, overall: summarise([...this.samples.values()].flat(), allErrors) };
  }
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** The next page's cursor in a response: a JSON field, or the `after` of the page's "next page" link. */
function cursorIn(body: string, contentType: string): string | undefined {
  if (contentType.includes('json')) {
    try {
      const json = JSON.parse(body) as Record<string, unknown>;
      for (const field of ['next', 'nextCursor', 'cursor', 'after']) {
        const value = json[field] ?? (json.page as Record<string, unknown> | undefined)?.[field];
        if (typeof value === 'string' && value) return value.includes('after=') ? new URLSearchParams(value.slice(value.indexOf('?') + 1)).get('after') ?? undefined : value;
      }
    } catch {
      return undefined;
    }
    return undefined;
  }
  const link = /href="([^"]*[?&](?:amp;)?after=[^"]*)"/.exec(body)?.[1];
  if (!link) return undefined;
  const query = link.slice(link.indexOf('?') + 1).replaceAll('&amp;', '&');
  return new URLSearchParams(query).get('after') ?? undefined;
}

function fill(template: string, sample: LoadSample, cursor: string | undefined, previousFailed: boolean): string | { error: string } {
  let path = template;
  if (path.includes('<cursor>')) {
    if (!cursor) return { error: previousFailed ? 'no cursor (the page before failed)' : 'no cursor' };
    path = path.replace('<cursor>', encodeURIComponent(cursor));
  }
  return path
    .replace(':id', String(1 + Math.floor(Math.random() * sample.maxExposureId)))
    .replace(':key', encodeURIComponent(pick(sample.ticketKeys)))
    .replaceAll(':name', encodeURIComponent(pick(sample.hypotheses)))
    .replaceAll('<owner>', encodeURIComponent(pick(sample.owners)))
    .replaceAll('<scope>', encodeURIComponent(pick(sample.scopes)));
}

/** Signs in as a person does (the form post) and returns the session cookie. */
export async function signIn(baseUrl: string, token: string): Promise<string> {
  const response = await fetch(`${baseUrl}/console/sign-in`, {
    method: 'POST',
    body: new URLSearchParams({ token, next: '/console' }),
    redirect: 'manual',
  });
  await response.arrayBuffer();
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('ctem_session='));
  if (response.status !== 303 || !cookie) throw new Error(`console sign-in answered ${response.status} without a session cookie`);
  return cookie.slice(0, cookie.indexOf(';'));
}

export async function runLoad(options: LoadOptions, say: (line: string) => void): Promise<LoadReport> {
  const journeys = options.journeys ?? JOURNEYS;
  if (!journeys.length) throw new Error('no journey to walk');
  const recorder = new Recorder();
  recorder.declare('POST /console/sign-in', 'sign-in');
  for (const journey of journeys) for (const step of journey.steps) recorder.declare(step, step.startsWith('/api/') ? 'api' : 'page');
  const totalWeight = journeys.reduce((sum, j) => sum + j.weight, 0);
  const pickJourney = () => {
    let r = Math.random() * totalWeight;
    for (const journey of journeys) if ((r -= journey.weight) < 0) return journey;
    return journeys.at(-1)!;
  };

  const call = async (route: string, path: string, cookie: string, record: boolean): Promise<{ cursor?: string; failed: boolean }> => {
    const api = path.startsWith('/api/');
    const started = performance.now();
    try {
      const response = await fetch(`${options.baseUrl}${path}`, {
        headers: api ? { authorization: `Bearer ${options.token}`, accept: 'application/json' } : { cookie, accept: 'text/html' },
        redirect: 'manual',
      });
      const body = await response.text();
      const elapsed = performance.now() - started;
      const location = response.headers.get('location') ?? '';
      const failure = response.status >= 400 ? String(response.status) : location.startsWith('/console/sign-in') ? 'redirected to sign-in' : undefined;
      if (record) {
        if (failure) recorder.error(route, failure);
        else recorder.latency(route, elapsed);
      }
      if (failure) return { failed: true };
      const cursor = cursorIn(body, response.headers.get('content-type') ?? '');
      return cursor ? { cursor, failed: false } : { failed: false };
    } catch (err) {
      if (record) recorder.error(route, `network: ${(err as Error).message}`);
      return { failed: true };
    }
  };
  const walk = async (steps: readonly string[], cookie: string, record: boolean) => {
    let previous: { cursor?: string; failed: boolean } = { failed: false };
    for (const step of steps) {
      const path = fill(step, options.sample, previous.cursor, previous.failed);
      if (typeof path !== 'string') {
        if (record) recorder.error(step, path.error);
        previous = { failed: true };
        continue;
      }
      previous = await call(step, path, cookie, record);
    }
  };

  // Sign-in is timed once per user; a failed sign-in stops the run (every page would redirect).
  const cookies: string[] = [];
  for (let u = 0; u < options.users; u++) {
    const started = performance.now();
    cookies.push(await signIn(options.baseUrl, options.token));
    recorder.latency('POST /console/sign-in', performance.now() - started);
  }
  // One unrecorded pass over every journey first: the first call of a route pays for module
  // loading, JIT and cold caches, which a person meets once after a deploy, not per page view.
  say('warming up (every journey once, not recorded)...');
  for (const journey of journeys) await walk(journey.steps, cookies[0]!, false);

  say(`${options.users} users for ${options.seconds} s...`);
  const startedAt = performance.now();
  const deadline = startedAt + options.seconds * 1000;
  let walked = 0;
  const progress = setInterval(() => say(`  ${Math.round((performance.now() - startedAt) / 1000)} s, ${walked} journeys`), 10_000);
  await Promise.all(
    cookies.map(async (cookie) => {
      while (performance.now() < deadline) {
        await walk(pickJourney().steps, cookie, true);
        walked++;
      }
    }),
  );
  clearInterval(progress);
  const elapsed = (performance.now() - startedAt) / 1000;
  const { routes, overall } = recorder.stats();
  const total = overall.count - options.users; // sign-ins are not load
  return { users: options.users, seconds: ms(elapsed), requests: total, requestsPerSecond: ms(total / elapsed), routes, overall };
}
