import { Hono } from 'hono';
import { metricsEndpoint } from '../../platform/telemetry.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';

/** Prometheus's scrape of this process (platform/telemetry.ts says what and who may read it). */
export const operatorMetricsRoutes = new Hono<AppEnv>().get('/metrics', (c) => {
  const { operatorMetrics, apiToken, metricsToken } = c.get('deps');
  if (!operatorMetrics) return problem(c, 404, 'not_found', 'operator metrics are not collected by this process');
  return metricsEndpoint(operatorMetrics, [apiToken, metricsToken])(c.req.raw);
});
