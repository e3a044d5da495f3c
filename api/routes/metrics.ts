import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { DEFAULT_RISK_APPETITE } from '../../metrics/executive.js';
import { MAX_DAYS, resolveRange, snapshotSeries } from '../../metrics/read.js';
import { dayOf, MetricsQueryError, takeSnapshot } from '../../metrics/snapshot.js';
import { executiveView, overviewView, resolveViewScope } from '../../metrics/views.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { NoiseCountsSchema } from './exposures.js';
import { AttainmentSchema, DurationsSchema } from './response-metrics.js';
import { ErrorSchema } from './schemas.js';

// Program metrics (metrics/): the overview and the executive summary read the daily snapshots, so
// they cost the same at any estate size; POST takes today's snapshot now.

const ScopeName = z.string().regex(/^(\*|[A-Za-z0-9._-]{1,64})$/).openapi({ description: 'a saved scope; `*` (the default) for the whole estate' });
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

const TrendPointSchema = z
  .object({
    day: z.string(),
    act: z.number().int().nullable(),
    attend: z.number().int().nullable(),
    actAttend: z.number().int().nullable(),
    kev: z.number().int().nullable(),
    internetFacing: z.number().int().nullable(),
    noiseReduction: z.number().nullable(),
    slaFixedShare: z.number().nullable(),
    slaAcknowledgedShare: z.number().nullable(),
    overdue: z.number().int().nullable(),
    escalated: z.number().int().nullable(),
    mttrMedianHours: z.number().nullable(),
    mttdMedianDays: z.number().nullable(),
  })
  .openapi('MetricTrendPoint');

const BacklogSchema = z
  .object({
    open: z.number().int(),
    act: z.number().int(),
    attend: z.number().int(),
    actAttend: z.number().int().openapi({ description: 'the exploitable backlog: open act + attend findings' }),
    kev: z.number().int().openapi({ description: 'open findings of CVEs in the active CISA KEV' }),
    kevActAttend: z.number().int(),
    internetFacing: z.number().int().openapi({ description: 'open act/attend findings on internet-facing assets' }),
  })
  .openapi('Backlog');

const SlaSchema = z
  .object({
    acknowledged: AttainmentSchema,
    fixed: AttainmentSchema,
    tickets: z.number().int(),
    open: z.number().int(),
    overdue: z.number().int(),
    unacknowledgedOverdue: z.number().int(),
  })
  .openapi('SlaSummary');

const AppetiteSchema = z
  .object({
    appetite: z.number().int().openapi({ description: 'open act + attend exposures the program accepts (CTEM_RISK_APPETITE)' }),
    current: z.number().int().nullable(),
    headroom: z.number().int().nullable().openapi({ description: 'appetite - current; negative above the appetite' }),
    status: z.enum(['within', 'above', 'unknown']),
    daysAbove: z.number().int(),
    daysRecorded: z.number().int(),
  })
  .openapi('RiskAppetite');

const SnapshotInfoSchema = z.object({ day: z.string(), takenAt: z.string() }).nullable().openapi({ description: 'the snapshot the figures come from; null before the first' });

const KevHitSchema = z
  .object({
    findingId: z.number().int(),
    cve: z.string(),
    kevDateAdded: z.string().nullable(),
    knownRansomware: z.boolean(),
    vendor: z.string().nullable(),
    product: z.string().nullable(),
    tier: z.string().nullable(),
    assetName: z.string(),
    owner: z.string().nullable(),
    businessService: z.string().nullable(),
    internetFacing: z.boolean(),
    firstSeenAt: z.string(),
  })
  .openapi('KevHit');

const EscalationLevelSchema = z.object({ level: z.number().int(), tickets: z.number().int() }).openapi('EscalationLevel');

const OverviewSchema = z
  .object({
    scope: z.string(),
    snapshot: SnapshotInfoSchema,
    backlog: BacklogSchema.nullable(),
    noise: NoiseCountsSchema.nullable(),
    sla: SlaSchema.nullable(),
    appetite: AppetiteSchema,
    escalations: z.array(EscalationLevelSchema).openapi({ description: 'open tickets escalated now, per level (live)' }),
    newestKevHits: z.array(KevHitSchema).openapi({ description: 'open findings of the CVEs added to KEV most recently (live)' }),
    trend: z.array(TrendPointSchema).openapi({ description: 'the last 90 days of snapshots' }),
  })
  .openapi('MetricsOverview');

const DaysSchema = z.object({ count: z.number().int(), medianDays: z.number().nullable(), p90Days: z.number().nullable() }).openapi('DaysDistribution');
const MttrRowSchema = z
  .object({
    key: z.string().nullable(),
    tickets: z.number().int(),
    toVerify: DurationsSchema,
    fixedWithinSla: z.number().nullable(),
    open: z.number().int(),
    overdue: z.number().int(),
  })
  .openapi('MttrRow');

const ExecutiveSchema = z
  .object({
    scope: z.string(),
    snapshot: SnapshotInfoSchema,
    appetite: AppetiteSchema,
    backlog: BacklogSchema.nullable(),
    mttd: z
      .object({
        fromPublished: DaysSchema.openapi({ description: "CVE record's publication to the first finding of the CVE in the estate" }),
        fromKevAdded: DaysSchema.openapi({ description: 'addition to CISA KEV to the first finding in the estate (0 when found before)' }),
      })
      .nullable(),
    mttr: z
      .object({
        total: DurationsSchema.openapi({ description: 'detection to verified fix, hours' }),
        byTier: z.array(MttrRowSchema),
        byOwner: z.array(MttrRowSchema),
        byBusinessService: z.array(MttrRowSchema),
      })
      .nullable(),
    sla: SlaSchema.nullable(),
    business: z
      .object({
        services: z.array(
          z.object({
            name: z.string(),
            annualRevenue: z.number().nullable(),
            urgent: z.number().int(),
            act: z.number().int(),
            kev: z.number().int(),
            internetFacing: z.number().int(),
            assets: z.number().int(),
            open: z.number().int(),
          }),
        ),
        servicesAtRisk: z.number().int(),
        revenueAtRisk: z.number(),
        unmappedUrgent: z.number().int(),
      })
      .nullable(),
    topOverdueOwners: z.array(z.object({ owner: z.string().nullable(), overdue: z.number().int(), unacknowledgedOverdue: z.number().int(), open: z.number().int() })),
    trend: z.array(TrendPointSchema).openapi({ description: 'the last 365 days of snapshots' }),
  })
  .openapi('MetricsExecutive');

const SeriesSchema = z.object({ scope: z.string(), from: z.string(), to: z.string(), points: z.array(TrendPointSchema) }).openapi('MetricSeries');
const TakenSchema = z.object({ day: z.string(), scopes: z.array(z.string()) }).openapi('MetricSnapshotTaken');

const errors = {
  400: { description: 'A bad day or range; details.field names it', content: { 'application/json': { schema: ErrorSchema } } },
  404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
} as const;

const overviewRoute = createRoute({
  method: 'get',
  path: '/api/v1/metrics/overview',
  summary: 'The exploitable backlog (act/attend, KEV, internet-facing) and its trend, the noise cut, SLA attainment, open escalations by level, newest KEV hits',
  request: { query: z.object({ scope: ScopeName.optional() }) },
  responses: { 200: { description: 'The overview', content: { 'application/json': { schema: OverviewSchema } } }, 404: errors[404] },
});

const executiveRoute = createRoute({
  method: 'get',
  path: '/api/v1/metrics/executive',
  summary: 'Exposure per business service and revenue, the risk trend against the appetite, MTTD, MTTR per tier / owner / business service, SLA attainment, top owners by overdue',
  request: { query: z.object({ scope: ScopeName.optional() }) },
  responses: { 200: { description: 'The executive summary', content: { 'application/json': { schema: ExecutiveSchema } } }, 404: errors[404] },
});

const seriesRoute = createRoute({
  method: 'get',
  path: '/api/v1/metrics/snapshots',
  summary: `The daily snapshots of a scope as a trend (at most ${MAX_DAYS} days; by default the last 90)`,
  request: {
    query: z.object({
      scope: ScopeName.optional(),
      from: Day.optional().openapi({ description: 'first day, YYYY-MM-DD' }),
      to: Day.optional().openapi({ description: 'last day, YYYY-MM-DD (default today, UTC)' }),
    }),
  },
  responses: { 200: { description: 'One point per day a snapshot was taken, oldest first', content: { 'application/json': { schema: SeriesSchema } } }, 400: errors[400], 404: errors[404] },
});

const takeRoute = createRoute({
  method: 'post',
  path: '/api/v1/metrics/snapshots',
  summary: "Takes today's snapshot now (of the estate and every saved scope); taken again the same day, it replaces that day's",
  responses: { 200: { description: 'The day and scopes written', content: { 'application/json': { schema: TakenSchema } } } },
});

const appetiteOf = (c: { get(k: 'deps'): { riskAppetite?: number } }) => c.get('deps').riskAppetite ?? DEFAULT_RISK_APPETITE;

export const metricsRoutes = new OpenAPIHono<AppEnv>()
  .openapi(overviewRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const scope = await resolveViewScope(sql, c.req.valid('query').scope);
    if (!scope) return problem(c, 404, 'not_found', `no scope named ${c.req.valid('query').scope}`);
    return c.json(await overviewView(sql, { scope, riskAppetite: appetiteOf(c) }), 200);
  })
  .openapi(executiveRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const scope = await resolveViewScope(sql, c.req.valid('query').scope);
    if (!scope) return problem(c, 404, 'not_found', `no scope named ${c.req.valid('query').scope}`);
    return c.json(await executiveView(sql, { scope, riskAppetite: appetiteOf(c) }), 200);
  })
  .openapi(seriesRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const { scope: name, from, to } = c.req.valid('query');
    const scope = await resolveViewScope(sql, name);
    if (!scope) return problem(c, 404, 'not_found', `no scope named ${name}`);
    try {
      const range = resolveRange({ scope: scope.name, ...(from ? { from } : {}), ...(to ? { to } : {}) });
      return c.json({ ...range, points: await snapshotSeries(sql, range) }, 200);
    } catch (err) {
      if (err instanceof MetricsQueryError) return problem(c, 400, 'invalid_request', err.message, { field: err.field });
      throw err;
    }
  })
  .openapi(takeRoute, async (c) => c.json(await takeSnapshot(c.get('deps').database.sql, dayOf(new Date())), 200));
