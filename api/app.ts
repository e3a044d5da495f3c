import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { requestId } from 'hono/request-id';
import { requirePermission, requireToken } from './auth.js';
import { recordApiMutations } from './audit.js';
import { authFailureLimit, identityRateLimit } from './rate-limits.js';
import { consoleRoutes } from '../console/app.js';
import { CONSOLE_PAGES } from '../console/pages/index.js';
import type { ApiDeps, AppEnv } from './context.js';
import { problem } from './problem.js';
import { isUploadPath, MAX_JSON_BODY_BYTES } from './uploads.js';
import { assetRoutes } from './routes/assets.js';
import { campaignRoutes } from './routes/campaigns.js';
import { contextRoutes } from './routes/context.js';
import { escalationDigestRoutes } from './routes/escalation-digests.js';
import { eventRoutes } from './routes/events.js';
import { exposureRoutes } from './routes/exposures.js';
import { hypothesisRoutes } from './routes/hypotheses.js';
import { reportRoutes } from './routes/reports.js';
import { responseRoutes } from './routes/response-metrics.js';
import { metricsRoutes } from './routes/metrics.js';
import { sourceRoutes } from './routes/sources.js';
import { healthRoutes } from './routes/health.js';
import { operatorMetricsRoutes } from './routes/operator-metrics.js';
import { policyRoutes } from './routes/policies.js';
import { backtestRoutes } from './routes/backtests.js';
import { intelRoutes } from './routes/intel.js';
import { scanRoutes } from './routes/scans.js';
import { ticketRoutes } from './routes/tickets.js';
import { webhookRoutes } from './routes/webhooks.js';
import { validationRoutes } from './routes/validation.js';
import { gateRoutes } from './routes/gate.js';
import { identityRoutes } from './routes/identities.js';
import { auditRoutes } from './routes/audit.js';

// A dependency that is down is a 503 the caller can retry, not a 500. postgres.js names lost
// connections by code; PostgreSQL's class 08 and 57P0x say the server went away or is starting.
const DB_DOWN = new Set(['ECONNREFUSED', 'ECONNRESET', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', '57P01', '57P02', '57P03']);

export function unavailableDependency(err: unknown): 'database' | 'temporal' | undefined {
  const e = err as { code?: unknown; name?: string; cause?: unknown };
  if (typeof e?.code === 'string' && (DB_DOWN.has(e.code) || e.code.startsWith('08'))) return 'database';
  // gRPC status 14 (UNAVAILABLE) from the Temporal client, directly or as the cause.
  const grpc = (e?.code === 14 ? e : (e?.cause as { code?: unknown } | undefined)) as { code?: unknown } | undefined;
  if (grpc?.code === 14) return 'temporal';
  return undefined;
}

const OPENAPI_INFO = { openapi: '3.1.0', info: { title: 'CTEM orchestrator API', version: '1' } };

/** The HTTP front: thin handlers that validate, authorise, then start, signal or query workflows or read PostgreSQL. */
export function createApp(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return problem(c, 400, 'invalid_request', 'the request is invalid', result.error.issues);
    },
  });
  const withDocument: ApiDeps = { ...deps, openApiDocument: () => app.getOpenAPI31Document(OPENAPI_INFO) };
  app.use('*', async (c, next) => {
    c.set('deps', withDocument);
    await next();
  });
  // The request id before the span and the log line, which both carry it.
  app.use('*', requestId());
  for (const middleware of deps.observe ?? []) app.use('*', middleware);
  if (deps.operatorMetrics) app.use('*', deps.operatorMetrics.http);
  app.use('*', secureHeaders());
  // PostgreSQL text cannot hold a NUL: a filter with one is the caller's mistake, not a 500.
  app.use('/api/*', async (c, next) => {
    const url = new URL(c.req.url);
    if (/%00/.test(url.pathname)) return problem(c, 400, 'invalid_request', 'the path contains a NUL byte');
    for (const [name, value] of url.searchParams) {
      if (value.includes('\0') || name.includes('\0')) return problem(c, 400, 'invalid_request', `query parameter ${name.replaceAll('\0', '\\0')} contains a NUL byte`);
    }
    await next();
  });
  // Every body but an upload is small: refuse a large one as it streams in (chunked ones too), before
  // any signature check or parse holds it in memory.
  const smallBody = bodyLimit({
    maxSize: MAX_JSON_BODY_BYTES,
    onError: (c) => {
      c.header('Connection', 'close');
      return problem(c, 413, 'too_large', `request bodies here are limited to ${MAX_JSON_BODY_BYTES} bytes`);
    },
  });
  app.use('/api/*', (c, next) => (isUploadPath(c.req.method, c.req.path) ? next() : smallBody(c, next)));
  app.use('/slack/events', smallBody);
  app.use('/console/*', smallBody);
  // Failed authentications are limited per client address, before the token or form is checked.
  const authLimit = authFailureLimit();
  app.use('/api/*', (c, next) => (c.req.path.startsWith('/api/v1/webhooks/') ? next() : authLimit(c, next)));
  app.post('/console/sign-in', authLimit);
  app.use('/metrics', authLimit);
  app.route('/', healthRoutes);
  app.route('/', operatorMetricsRoutes);
  // The web console signs people in with a cookie of its own; /api keeps the bearer token.
  app.route('/', consoleRoutes(CONSOLE_PAGES));
  app.route('/', webhookRoutes);
  // Slack signs its requests; the bot verifies them (no bearer token, like the ServiceNow webhook).
  app.post('/slack/events', (c) => {
    const slack = c.get('deps').slack;
    return slack ? slack.handle(c.req.raw) : problem(c, 404, 'not_found', 'no Slack bot in HTTP mode here (not configured, or in Socket Mode)');
  });
  const signedWebhook = (path: string) => path === '/api/v1/webhooks/servicenow' || path === '/api/v1/webhooks/jira';
  // The audit trail wraps authentication, so a refused token is recorded as denied too, and a
  // refused permission with the principal it refused.
  app.use('/api/*', async (c, next) => (c.req.path.startsWith('/api/v1/webhooks/') ? next() : recordApiMutations(c, next)));
  app.use('/api/*', async (c, next) => (signedWebhook(c.req.path) ? next() : requireToken(c, next)));
  // Each identity's budget, once it is known (the signed webhooks are not an identity's calls).
  const identityLimit = deps.rateLimit ? identityRateLimit(deps.rateLimit) : undefined;
  if (identityLimit) app.use('/api/*', async (c, next) => (signedWebhook(c.req.path) ? next() : identityLimit(c, next)));
  app.use('/api/*', async (c, next) => (signedWebhook(c.req.path) ? next() : requirePermission(c, next)));
  app.route('/', scanRoutes);
  app.route('/', assetRoutes);
  app.route('/', contextRoutes);
  app.route('/', sourceRoutes);
  app.route('/', eventRoutes);
  app.route('/', reportRoutes);
  app.route('/', responseRoutes);
  app.route('/', metricsRoutes);
  app.route('/', exposureRoutes);
  app.route('/', campaignRoutes);
  app.route('/', policyRoutes);
  app.route('/', backtestRoutes);
  app.route('/', ticketRoutes);
  app.route('/', escalationDigestRoutes);
  app.route('/', intelRoutes);
  app.route('/', validationRoutes);
  app.route('/', gateRoutes);
  app.route('/', hypothesisRoutes);
  app.route('/', identityRoutes);
  app.route('/', auditRoutes);
  app.doc31('/api/v1/openapi.json', OPENAPI_INFO);
  app.notFound((c) => problem(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    if (err instanceof HTTPException) return problem(c, err.status, 'http_error', err.message);
    const down = unavailableDependency(err);
    if (down) {
      // The request's log line (platform/logging.ts requestLog) names the error: one line per failure.
      if (!deps.observe) console.error(`api: ${down} unavailable: ${(err as Error).message}`);
      c.header('Retry-After', '5');
      return problem(c, 503, `${down}_unavailable`, `the ${down === 'database' ? 'database' : 'workflow engine'} is not answering; retry shortly`);
    }
    if (!deps.observe) console.error('api error', err);
    return problem(c, 500, 'internal_error', 'internal error; see the server log');
  });
  return app;
}

