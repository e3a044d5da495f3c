import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getReport, latestReport, scanCoverage } from '../../discovery/store/sources.js';
import { mobilizationAudit } from '../../mobilization/audit.js';
import { orphanReportWorkflow } from '../../workflows/orphan-report.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

const OrphanReportSchema = z
  .object({
    id: z.number().int(),
    generatedAt: z.string(),
    orphanAssets: z.number().int(),
    actionFindings: z.number().int().openapi({ description: 'act/attend findings on them, waiting in the orphan queue' }),
    orphanTickets: z
      .array(
        z.object({
          key: z.string(),
          externalNumber: z.string().nullable(),
          owner: z.string().nullable().openapi({ description: 'the fallback owner holding it; null when none is configured' }),
          reason: z.string(),
          tier: z.string(),
          findingCount: z.number().int(),
          assetKey: z.string(),
          assetName: z.string(),
        }),
      )
      .optional()
      .openapi({ description: 'tickets in the orphan queue (no owner, or one the ITSM does not know); absent in reports stored before it was listed' }),
    assets: z.array(
      z.object({
        id: z.number().int(),
        name: z.string(),
        key: z.string(),
        kind: z.string(),
        businessService: z.string().nullable(),
        criticality: z.string().nullable(),
        internetFacing: z.boolean().nullable(),
        openFindings: z.number().int(),
        actionFindings: z.number().int(),
        lastSeenAt: z.string(),
      }),
    ),
  })
  .openapi('OrphanReport');

const Sla = z.object({ critical: z.number(), high: z.number(), medium: z.number(), low: z.number() }).openapi({ description: 'milliseconds per criticality' });
const CoverageSchema = z
  .object({
    criticalScannedWithinSla: z.number().nullable().openapi({ description: 'share (0..1) of critical assets scanned within their SLA' }),
    scanSla: Sla,
    byCriticality: z.array(z.object({ criticality: z.string(), assets: z.number().int(), scannedWithinSla: z.number().int(), share: z.number().nullable() })),
  })
  .openapi('ScanCoverage');

/** The stored report body (JSON) with its id. */
const withId = (id: number, body: unknown) => ({ id, ...(body as Omit<z.infer<typeof OrphanReportSchema>, 'id'>) });

const getOrphanReport = createRoute({
  method: 'get',
  path: '/api/v1/reports/orphan-assets',
  summary: 'The latest orphan-asset report (assets without an owner and what is open on them)',
  responses: {
    200: { description: 'The report', content: { 'application/json': { schema: OrphanReportSchema } } },
    404: { description: 'No report yet', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const runOrphanReport = createRoute({
  method: 'post',
  path: '/api/v1/reports/orphan-assets',
  summary: 'Build the orphan-asset report now (it also runs weekly on a Temporal Schedule)',
  responses: { 201: { description: 'The new report', content: { 'application/json': { schema: OrphanReportSchema } } } },
});
const coverage = createRoute({
  method: 'get',
  path: '/api/v1/metrics/scan-coverage',
  summary: 'Scan coverage KPI: share of assets scanned within their scan SLA, per criticality',
  responses: { 200: { description: 'Coverage', content: { 'application/json': { schema: CoverageSchema } } } },
});

const MobilizationAuditSchema = z
  .object({
    urgentFindings: z.number().int().openapi({ description: 'open act/attend findings' }),
    onFixTicket: z.number().int(),
    onMitigationTicket: z.number().int(),
    inOrphanQueue: z.number().int().openapi({ description: 'on a ticket in the orphan queue, assigned to the fallback owner' }),
    unreached: z.number().int().openapi({ description: 'urgent findings no person holds (no ticket, or orphaned with no fallback owner): must be 0' }),
    unreachedSample: z.array(z.object({ findingId: z.number().int(), issueId: z.string(), tier: z.string(), assetKey: z.string(), why: z.string() })),
    tickets: z.object({
      open: z.number().int(),
      byAction: z.record(z.string(), z.number().int()),
      maxPerImageLayer: z.number().int().openapi({ description: 'most open tickets of one image for one layer (OS layer, one manifest)' }),
      maxPerHostProduct: z.number().int().openapi({ description: 'most open tickets of one host for one product upgrade' }),
      maxPerOwnerPatchRun: z.number().int(),
      legacyPerPackage: z.number().int().openapi({ description: 'open tickets planned per package before remediation actions existed' }),
    }),
  })
  .openapi('MobilizationAudit');

const audit = createRoute({
  method: 'get',
  path: '/api/v1/metrics/mobilization',
  summary: 'Does every urgent exposure reach a person, in one ticket per fix? Fix, mitigation and orphan-queue counts; unreached must be 0',
  responses: { 200: { description: 'The audit', content: { 'application/json': { schema: MobilizationAuditSchema } } } },
});

export const reportRoutes = new OpenAPIHono<AppEnv>()
  .openapi(audit, async (c) => c.json(await mobilizationAudit(c.get('deps').database.sql), 200))
  .openapi(getOrphanReport, async (c) => {
    const report = await latestReport(c.get('deps').database.db, 'orphan-assets');
    if (!report) return problem(c, 404, 'not_found', 'no orphan-asset report yet');
    return c.json(withId(report.id, report.body), 200);
  })
  .openapi(runOrphanReport, async (c) => {
    const deps = c.get('deps');
    const { reportId } = await deps.temporal.client.workflow.execute(orphanReportWorkflow, {
      workflowId: `report:orphan-assets:manual:${Date.now()}`,
      taskQueue: taskQueueFor(deps.temporal.taskQueue, orphanReportWorkflow),
    });
    const report = await getReport(deps.database.db, reportId, 'orphan-assets');
    return c.json(withId(reportId, report?.body), 201);
  })
  .openapi(coverage, async (c) => {
    const deps = c.get('deps');
    const byCriticality = await scanCoverage(deps.database.sql, deps.scanSlaMs);
    const critical = byCriticality.find((r) => r.criticality === 'critical');
    return c.json({ criticalScannedWithinSla: critical?.share ?? null, scanSla: deps.scanSlaMs, byCriticality }, 200);
  });
