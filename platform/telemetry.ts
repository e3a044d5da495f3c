import type { Context as ActivityContext } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { tokensMatch } from '../api/auth.js';
import type { Database } from '../db/client.js';

// What an operator scrapes (Prometheus text on /metrics): this process's HTTP and activity timings,
// reports and findings ingested, and a few counts read from the store at scrape time (tickets by
// state, escalations, scans, feed ages). The Temporal SDK's own metrics (workflow task latency,
// poller and slot figures) come from the SDK's exporter and are appended to the same answer.
// Program metrics for people (backlog, MTTR) are another thing: metrics/.

export interface OperatorMetrics {
  registry: Registry;
  /** Hono middleware: request durations by method, route pattern and status. */
  http: MiddlewareHandler;
  /** Worker interceptor: activity durations by type and outcome; reports and findings ingested. */
  activities: ActivityInterceptorsFactory;
  /** The exposition text: this registry, then the SDK's metrics when its exporter runs here. */
  render(): Promise<string>;
}

/** Where the SDK's Prometheus exporter listens in this process (installWorkerRuntime sets it). */
let sdkMetricsUrl: string | undefined;
export function setSdkMetricsAddress(address: string | undefined): void {
  sdkMetricsUrl = address ? `http://${address}/metrics` : undefined;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ACTIVITY_SECONDS = [0.01, 0.05, 0.25, 1, 5, 15, 60, 300, 1800];

export function createOperatorMetrics({ database }: { database: Database }): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ctem_' });

  const httpDuration = new Histogram({
    name: 'ctem_http_request_duration_seconds',
    help: 'API and console requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS,
    registers: [registry],
  });
  const activityDuration = new Histogram({
    name: 'ctem_activity_duration_seconds',
    help: 'Activities run by this worker, by type and outcome (ingest, scoring, tickets, feeds)',
    labelNames: ['activity', 'outcome'] as const,
    buckets: ACTIVITY_SECONDS,
    registers: [registry],
  });
  const reportsIngested = new Counter({ name: 'ctem_reports_ingested_total', help: 'Scanner reports and context documents ingested by this worker', labelNames: ['kind'] as const, registers: [registry] });
  const findingsIngested = new Counter({ name: 'ctem_findings_ingested_total', help: 'Findings read from ingested reports (after in-report duplicates merge)', registers: [registry] });
  const findingsNew = new Counter({ name: 'ctem_findings_new_total', help: 'Findings seen for the first time', registers: [registry] });
  const collectErrors = new Counter({ name: 'ctem_metrics_store_errors_total', help: 'Scrapes whose store counts could not be read (the database did not answer)', registers: [registry] });

  // Store counts, read once per scrape from small tables and indexes: never the findings table.
  const tickets = new Gauge({ name: 'ctem_tickets', help: 'Golden tickets by state', labelNames: ['state'] as const, registers: [registry] });
  const escalations = new Gauge({ name: 'ctem_escalations', help: 'Escalations sent, by phase and level', labelNames: ['phase', 'level'] as const, registers: [registry] });
  const scans = new Gauge({ name: 'ctem_scans', help: 'Scans by status', labelNames: ['status'] as const, registers: [registry] });
  const feedAge = new Gauge({ name: 'ctem_feed_age_seconds', help: 'Age of the active threat-intel feed version (from its own date, else its import)', labelNames: ['feed'] as const, registers: [registry] });
  const storeUp = new Gauge({ name: 'ctem_store_up', help: '1 when the last scrape read the store, 0 when the database did not answer', registers: [registry] });

  async function readStore(): Promise<void> {
    const { sql } = database;
    const [ticketRows, escalationRows, scanRows, feedRows] = await Promise.all([
      sql<{ state: string; n: number }[]>`select state, count(*)::int as n from tickets group by state`,
      sql<{ phase: string; level: number; n: number }[]>`select phase, level, count(*)::int as n from escalations group by phase, level`,
      sql<{ status: string; n: number }[]>`select status, count(*)::int as n from scans group by status`,
      sql<{ kind: string; age: number }[]>`
        select kind, extract(epoch from now() - max(coalesce(published_at, imported_at)))::float8 as age
        from intel_feeds where status = 'active' group by kind`,
    ]);
    tickets.reset();
    for (const r of ticketRows) tickets.set({ state: r.state }, r.n);
    escalations.reset();
    for (const r of escalationRows) escalations.set({ phase: r.phase, level: String(r.level) }, r.n);
    scans.reset();
    for (const r of scanRows) scans.set({ status: r.status }, r.n);
    feedAge.reset();
    for (const r of feedRows) feedAge.set({ feed: r.kind }, Math.max(0, r.age));
  }

  const http: MiddlewareHandler = async (c, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // The route pattern, not the path: one series per route, whatever ids the paths carry.
      // A path no route answers matches only the catch-all middleware ('*', '/api/*').
      const matched = routePath(c, -1);
      const route = matched.endsWith('*') ? 'unmatched' : matched;
      httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };

  class ActivityTimings implements ActivityInboundCallsInterceptor {
    constructor(private readonly ctx: ActivityContext) {}
    async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
      const activity = this.ctx.info.activityType;
      const started = process.hrtime.bigint();
      let outcome = 'failed';
      try {
        const result = await next(input);
        outcome = 'completed';
        noteIngest(activity, result);
        return result;
      } finally {
        activityDuration.observe({ activity, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }
  }

  function noteIngest(activity: string, result: unknown): void {
    if (activity !== 'ingestReport' || !result || typeof result !== 'object') return;
    const { kind, counts } = result as { kind?: string; counts?: Record<string, number> };
    reportsIngested.inc({ kind: kind ?? 'report' });
    if (kind === 'report' && counts) {
      findingsIngested.inc(counts.findings ?? 0);
      findingsNew.inc(counts.newFindings ?? 0);
    }
  }

  async function render(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A database that does not answer must not hang the scrape: the gauges are left out instead.
      await Promise.race([readStore(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('store read timed out')), 3000)))]);
      storeUp.set(1);
    } catch {
      collectErrors.inc();
      storeUp.set(0);
    } finally {
      clearTimeout(timer);
    }
    const own = await registry.metrics();
    const sdk = sdkMetricsUrl ? await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) }).then((r) => (r.ok ? r.text() : ''), () => '') : '';
    return sdk ? `${own}\n${sdk}` : own;
  }

  return { registry, http, activities: (ctx) => ({ inbound: new ActivityTimings(ctx) }), render };
}

const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * GET /metrics for Prometheus, with a bearer token (CTEM_METRICS_TOKEN, which reads nothing else, or
 * the API token): the figures name routes, activities and ticket states, which is not for anyone.
 * The API serves it on its port; a worker-only process on CTEM_WORKER_METRICS_PORT.
 */
export function metricsEndpoint(metrics: OperatorMetrics, tokens: Array<string | undefined>): (request: Request) => Promise<Response> {
  const accepted = tokens.filter((t): t is string => !!t);
  return async (request) => {
    const given = /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization') ?? '')?.[1];
    if (!given || !accepted.some((token) => tokensMatch(given, token))) {
      // The API's error shape (api/problem.ts), also where no Hono app runs (a worker alone).
      return Response.json(
        { error: { code: 'unauthorized', message: 'a bearer token is required (CTEM_METRICS_TOKEN or the API token)' } },
        { status: 401, headers: { 'www-authenticate': 'Bearer realm="ctem-metrics"' } },
      );
    }
    return new Response(await metrics.render(), { headers: { 'content-type': METRICS_CONTENT_TYPE } });
  };
}
