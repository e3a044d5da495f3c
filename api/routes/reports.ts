import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { latestReport, scanCoverage } from '../../discovery/store/sources.js';
import { orphanReportWorkflow } from '../../workflows/orphan-report.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';

const getOrphanReport = createRoute({
  method: 'get',
  path: '/api/v1/reports/orphan-assets',
  summary: 'The latest orphan-asset report (assets without an owner and what is open on them)',
  responses: {
    200: { description: 'The report', content: { 'application/json': { schema: z.any() } } },
    404: { description: 'No report yet', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const runOrphanReport = createRoute({
  method: 'post',
  path: '/api/v1/reports/orphan-assets',
  summary: 'Build the orphan-asset report now (it also runs weekly on a Temporal Schedule)',
  responses: { 201: { description: 'The new report', content: { 'application/json': { schema: z.any() } } } },
});
const coverage = createRoute({
  method: 'get',
  path: '/api/v1/metrics/scan-coverage',
  summary: 'Scan coverage KPI: share of assets scanned within their scan SLA, per criticality',
  responses: { 200: { description: 'Coverage', content: { 'application/json': { schema: z.any() } } } },
});

export const reportRoutes = new OpenAPIHono<AppEnv>()
  .openapi(getOrphanReport, async (c) => {
    const report = await latestReport(c.get('deps').database.db, 'orphan-assets');
    if (!report) return problem(c, 404, 'not_found', 'no orphan-asset report yet');
    return c.json({ id: report.id, ...(report.body as object) }, 200);
  })
  .openapi(runOrphanReport, async (c) => {
    const deps = c.get('deps');
    const { reportId } = await deps.temporal.client.workflow.execute(orphanReportWorkflow, {
      workflowId: `report:orphan-assets:manual:${Date.now()}`,
      taskQueue: deps.temporal.taskQueue,
    });
    const report = await latestReport(deps.database.db, 'orphan-assets');
    return c.json({ id: reportId, ...(report?.body as object) }, 201);
  })
  .openapi(coverage, async (c) => {
    const deps = c.get('deps');
    const byCriticality = await scanCoverage(deps.database.sql, deps.scanSlaMs);
    const critical = byCriticality.find((r) => r.criticality === 'critical');
    return c.json({ criticalScannedWithinSla: critical?.share ?? null, scanSla: deps.scanSlaMs, byCriticality }, 200);
  });
