import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { listExposures } from '../../db/read-models/exposures.js';
import { CursorError } from '../../db/read-models/keyset.js';
import { workflowUrl } from '../../scoping/campaigns.js';
import { startHypothesisCampaign } from '../../scoping/hypothesis-campaigns.js';
import {
  deleteHypothesis,
  describeQuery,
  fieldErrors,
  getHypothesis,
  HYPOTHESIS_NAME,
  hypothesisCampaigns,
  HypothesisInvalidError,
  HypothesisQuery,
  hypothesisTrend,
  listHypotheses,
  runHypothesis,
  saveHypothesis,
} from '../../scoping/hypotheses.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { noteChange } from '../audit.js';
import { ExposureListItemSchema } from './exposures.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';
import { actorName } from '../../access/identities.js';

// The hunting workbench: saved hypotheses (named queries over exposures), their results over time,
// the exposures they match, and campaigns started from them with what each removed.

const Name = z.string().regex(HYPOTHESIS_NAME).openapi({ example: 'log4shell-runtime-internet' });

const ResultSchema = z
  .object({
    id: z.number().int(),
    hypothesis: z.string(),
    matched: z.number().int().openapi({ description: 'open exposures matching' }),
    urgent: z.number().int().openapi({ description: 'of those, in act or attend: the residual exposure' }),
    counts: z.record(z.string(), z.number()).openapi({ description: 'by tier (act, attend, track*, track, unscored) and assets; after a campaign also urgentBefore, removedClosed, removedRescored, removed, leftHypothesis, added' }),
    trigger: z.string().openapi({ description: 'schedule, api, cli, console, campaign (before) or campaign-end (after)' }),
    campaignId: z.string().nullable(),
    at: z.string(),
  })
  .openapi('HypothesisResult');

const HypothesisSchema = z
  .object({
    name: z.string(),
    statement: z.string(),
    query: HypothesisQuery,
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Hypothesis');

const SummarySchema = HypothesisSchema.extend({
  latest: ResultSchema.nullable(),
  recentUrgent: z.array(z.number().int()).openapi({ description: 'urgent counts of the latest results, oldest first' }),
}).openapi('HypothesisSummary');

const RemovalSchema = z
  .object({
    urgentBefore: z.number().int().openapi({ description: 'matching findings in act/attend and open when the campaign started (their ids are kept with the result before)' }),
    removedClosed: z.number().int().openapi({ description: 'of those, closed since' }),
    removedRescored: z.number().int().openapi({ description: 'of those, still open but out of act/attend' }),
    removed: z.number().int().openapi({ description: 'removedClosed + removedRescored' }),
    leftHypothesis: z.number().int().openapi({ description: 'still urgent but no longer matching the hypothesis (not removed)' }),
    added: z.number().int().openapi({ description: 'urgent at the end but not at the start' }),
  })
  .openapi('HypothesisRemoval');

const CampaignSchema = z
  .object({
    campaignId: z.string(),
    status: z.string().nullable(),
    startedAt: z.string().nullable(),
    before: ResultSchema,
    after: ResultSchema.nullable(),
    removal: RemovalSchema.nullable(),
    workflowUrl: z.string().optional(),
  })
  .openapi('HypothesisCampaign');

const SaveBody = z.object({
  statement: z.string().openapi({ description: 'the hypothesis in words' }),
  query: HypothesisQuery,
  createdBy: z.string().optional().openapi({ description: "who saved it, as a display name: kept only with the bootstrap token (default: api); an issued token records its identity's name" }),
});

const notFound = { description: 'Unknown hypothesis', content: { 'application/json': { schema: ErrorSchema } } };
const invalid = { description: 'Invalid hypothesis: details name each field and why', content: { 'application/json': { schema: ErrorSchema } } };

const listRoute = createRoute({
  method: 'get',
  path: '/api/v1/hypotheses',
  summary: 'Saved hunting hypotheses with their latest result and recent urgent counts',
  responses: { 200: { description: 'Hypotheses', content: { 'application/json': { schema: z.object({ items: z.array(SummarySchema) }) } } } },
});
const getRoute = createRoute({
  method: 'get',
  path: '/api/v1/hypotheses/{name}',
  summary: 'One hypothesis: its query in words, its latest result and the campaigns started from it',
  request: { params: z.object({ name: Name }) },
  responses: {
    200: {
      description: 'The hypothesis',
      content: { 'application/json': { schema: SummarySchema.extend({ words: z.array(z.string()), campaigns: z.array(CampaignSchema) }) } },
    },
    404: notFound,
  },
});
const putRoute = createRoute({
  method: 'put',
  path: '/api/v1/hypotheses/{name}',
  summary: 'Create or change a hypothesis: a statement and a query (a scope selector plus exposure conditions)',
  request: { params: z.object({ name: Name }), body: { content: { 'application/json': { schema: SaveBody } }, required: true } },
  responses: { 200: { description: 'Saved', content: { 'application/json': { schema: HypothesisSchema } } }, 400: invalid },
});
const deleteRoute = createRoute({
  method: 'delete',
  path: '/api/v1/hypotheses/{name}',
  summary: 'Remove a hypothesis and its results',
  request: { params: z.object({ name: Name }) },
  responses: { 204: { description: 'Removed' }, 404: notFound },
});
const runRoute = createRoute({
  method: 'post',
  path: '/api/v1/hypotheses/{name}/run',
  summary: 'Ask the hypothesis now and record the result',
  request: {
    params: z.object({ name: Name }),
    body: { content: { 'application/json': { schema: z.object({ trigger: z.enum(['api', 'cli', 'console']).default('api') }) } }, required: false },
  },
  responses: { 201: { description: 'The result', content: { 'application/json': { schema: ResultSchema } } }, 404: notFound },
});
const resultsRoute = createRoute({
  method: 'get',
  path: '/api/v1/hypotheses/{name}/results',
  summary: 'The results between two instants (default: the last 90 days), oldest first: the residual exposure over time',
  request: {
    params: z.object({ name: Name }),
    query: z.object({ from: z.iso.datetime({ offset: true }).optional(), to: z.iso.datetime({ offset: true }).optional() }),
  },
  responses: { 200: { description: 'Results', content: { 'application/json': { schema: z.object({ items: z.array(ResultSchema) }) } } }, 404: notFound },
});
const exposuresRoute = createRoute({
  method: 'get',
  path: '/api/v1/hypotheses/{name}/exposures',
  summary: 'Open exposures matching the hypothesis, ordered like /api/v1/exposures',
  request: { params: z.object({ name: Name }), query: KeysetQuery.extend({ limit: z.coerce.number().int().min(1).max(500).default(50) }) },
  responses: {
    200: { description: 'A page of exposures (keyset: pass `next` as `after`); the count is exact up to 1,000, then estimated', content: { 'application/json': { schema: keysetPage(ExposureListItemSchema).openapi('HypothesisExposurePage') } } },
    400: { description: 'Invalid cursor (`after`)', content: { 'application/json': { schema: ErrorSchema } } },
    404: notFound,
  },
});
const campaignsRoute = createRoute({
  method: 'get',
  path: '/api/v1/hypotheses/{name}/campaigns',
  summary: 'Campaigns started from the hypothesis, newest first, with what each removed from the urgent backlog',
  request: { params: z.object({ name: Name }) },
  responses: { 200: { description: 'Campaigns', content: { 'application/json': { schema: z.object({ items: z.array(CampaignSchema) }) } } }, 404: notFound },
});
const campaignRoute = createRoute({
  method: 'post',
  path: '/api/v1/hypotheses/{name}/campaign',
  summary: "Start a campaign over the hypothesis's assets; its result is recorded before and after",
  request: {
    params: z.object({ name: Name }),
    body: { content: { 'application/json': { schema: z.object({ requestedBy: z.string().max(200).optional() }) } }, required: false },
  },
  responses: {
    202: { description: 'Started', content: { 'application/json': { schema: z.object({ campaignId: z.string(), workflowId: z.string(), scope: z.string(), workflowUrl: z.string().optional() }) } } },
    404: notFound,
  },
});

/** The request's fields at fault, each named (`query.issueIds.0`). */
const fieldHook = (result: { success: boolean; error?: { issues: unknown[] } }, c: Context) => {
  if (!result.success) {
    const fields = fieldErrors(result.error!.issues as never);
    return problem(c, 400, 'invalid_request', fields.map((f) => `${f.field}: ${f.message}`).join('; '), fields);
  }
};

export const hypothesisRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listRoute, async (c) => c.json({ items: await listHypotheses(c.get('deps').database.sql) }, 200))
  .openapi(getRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    const [summary] = await listHypotheses(deps.database.sql, { name });
    if (!summary) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    const campaigns = (await hypothesisCampaigns(deps.database.sql, name)).map((k) => withUrl(deps.temporal, k));
    return c.json({ ...summary, words: describeQuery(summary.query), campaigns }, 200);
  })
  .openapi(
    putRoute,
    async (c) => {
      const body = c.req.valid('json');
      try {
        noteChange(c, { before: (await getHypothesis(c.get('deps').database.sql, c.req.valid('param').name)) ?? null });
        const saved = await saveHypothesis(c.get('deps').database.sql, { name: c.req.valid('param').name, statement: body.statement, query: body.query, createdBy: actorName(c.get('principal'), body.createdBy ?? 'api') });
        noteChange(c, { after: saved });
        return c.json(saved, 200);
      } catch (err) {
        if (!(err instanceof HypothesisInvalidError)) throw err;
        return problem(c, 400, 'invalid_request', err.message, err.errors);
      }
    },
    fieldHook,
  )
  .openapi(deleteRoute, async (c) => {
    const name = c.req.valid('param').name;
    noteChange(c, { before: (await getHypothesis(c.get('deps').database.sql, name)) ?? null });
    if (!(await deleteHypothesis(c.get('deps').database.sql, name))) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    return c.body(null, 204);
  })
  .openapi(runRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const name = c.req.valid('param').name;
    if (!(await getHypothesis(sql, name))) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    const body = (c.req.header('content-type')?.includes('json') ? c.req.valid('json') : undefined) ?? { trigger: 'api' as const };
    return c.json(await runHypothesis(sql, name, body.trigger), 201);
  })
  .openapi(resultsRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const name = c.req.valid('param').name;
    if (!(await getHypothesis(sql, name))) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    const { from, to } = c.req.valid('query');
    const until = to ? new Date(to) : new Date();
    const since = from ? new Date(from) : new Date(until.getTime() - 90 * 86_400_000);
    return c.json({ items: await hypothesisTrend(sql, name, since, until) }, 200);
  })
  .openapi(exposuresRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const name = c.req.valid('param').name;
    const h = await getHypothesis(sql, name);
    if (!h) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    const { limit, offset, after } = c.req.valid('query');
    // The exact number matching is the hypothesis's recorded result; a page counts only to 1,000.
    try {
      return c.json(await listExposures(sql, { hypothesis: h.query, limit, ...(offset !== undefined ? { offset } : {}), ...(after ? { after } : {}) }), 200);
    } catch (err) {
      if (err instanceof CursorError) return problem(c, 400, 'invalid_request', `after: ${err.message}`, { field: 'after' });
      throw err;
    }
  })
  .openapi(campaignsRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    if (!(await getHypothesis(deps.database.sql, name))) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    return c.json({ items: (await hypothesisCampaigns(deps.database.sql, name)).map((k) => withUrl(deps.temporal, k)) }, 200);
  })
  .openapi(campaignRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    if (!(await getHypothesis(deps.database.sql, name))) return problem(c, 404, 'not_found', `no hypothesis named ${name}`);
    const body = c.req.header('content-type')?.includes('json') ? c.req.valid('json') : undefined;
    const { workflowId, scope } = await startHypothesisCampaign(deps.database.sql, deps.temporal, { hypothesis: name, requestedBy: actorName(c.get('principal'), body?.requestedBy ?? 'api') });
    const url = workflowUrl(deps.temporal, workflowId);
    return c.json({ campaignId: workflowId, workflowId, scope, ...(url ? { workflowUrl: url } : {}) }, 202);
  });

function withUrl<T extends { campaignId: string }>(temporal: { namespace: string; uiUrl?: string }, k: T): T & { workflowUrl?: string } {
  const url = workflowUrl(temporal, k.campaignId);
  return { ...k, ...(url ? { workflowUrl: url } : {}) };
}
