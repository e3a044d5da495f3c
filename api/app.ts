import { OpenAPIHono } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { requireToken } from './auth.js';
import { consoleRoutes } from '../console/app.js';
import { CONSOLE_PAGES } from '../console/pages/index.js';
import type { ApiDeps, AppEnv } from './context.js';
import { problem } from './problem.js';
import { assetRoutes } from './routes/assets.js';
import { campaignRoutes } from './routes/campaigns.js';
import { contextRoutes } from './routes/context.js';
import { escalationDigestRoutes } from './routes/escalation-digests.js';
import { eventRoutes } from './routes/events.js';
import { exposureRoutes } from './routes/exposures.js';
import { hypothesisRoutes } from './routes/hypotheses.js';
import { reportRoutes } from './routes/reports.js';
import { responseRoutes } from './routes/response-metrics.js';
import { sourceRoutes } from './routes/sources.js';
import { healthRoutes } from './routes/health.js';
import { policyRoutes } from './routes/policies.js';
import { backtestRoutes } from './routes/backtests.js';
import { intelRoutes } from './routes/intel.js';
import { scanRoutes } from './routes/scans.js';
import { ticketRoutes } from './routes/tickets.js';
import { webhookRoutes } from './routes/webhooks.js';
import { validationRoutes } from './routes/validation.js';

/** The HTTP front: thin handlers that validate, authorise, then start, signal or query workflows or read PostgreSQL. */
export function createApp(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return problem(c, 400, 'invalid_request', 'the request is invalid', result.error.issues);
    },
  });
  app.use('*', async (c, next) => {
    c.set('deps', deps);
    await next();
  });
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
  app.route('/', healthRoutes);
  // The web console signs people in with a cookie of its own; /api keeps the bearer token.
  app.route('/', consoleRoutes(CONSOLE_PAGES));
  app.route('/', webhookRoutes);
  // Slack signs its requests; the bot verifies them (no bearer token, like the ServiceNow webhook).
  app.post('/slack/events', (c) => {
    const slack = c.get('deps').slack;
    return slack ? slack.handle(c.req.raw) : problem(c, 404, 'not_found', 'no Slack bot in HTTP mode here (not configured, or in Socket Mode)');
  });
  app.use('/api/*', async (c, next) => (c.req.path === '/api/v1/webhooks/servicenow' || c.req.path === '/api/v1/webhooks/jira' ? next() : requireToken(c, next)));
  app.route('/', scanRoutes);
  app.route('/', assetRoutes);
  app.route('/', contextRoutes);
  app.route('/', sourceRoutes);
  app.route('/', eventRoutes);
  app.route('/', reportRoutes);
  app.route('/', responseRoutes);
  app.route('/', exposureRoutes);
  app.route('/', campaignRoutes);
  app.route('/', policyRoutes);
  app.route('/', backtestRoutes);
  app.route('/', ticketRoutes);
  app.route('/', escalationDigestRoutes);
  app.route('/', intelRoutes);
  app.route('/', validationRoutes);
  app.route('/', hypothesisRoutes);
  app.doc31('/api/v1/openapi.json', { openapi: '3.1.0', info: { title: 'CTEM orchestrator API', version: '1' } });
  app.notFound((c) => problem(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    if (err instanceof HTTPException) return problem(c, err.status, 'http_error', err.message);
    console.error('api error', err);
    return problem(c, 500, 'internal_error', 'internal error; see the server log');
  });
  return app;
}

