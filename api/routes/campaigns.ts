import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startCampaign, workflowUrl } from '../../scoping/campaigns.js';
import { getCampaign, listCampaigns, type CampaignRecord } from '../../scoping/campaign-store.js';
import { getScope } from '../../scoping/scopes.js';
import { campaignStatusQuery } from '../../workflows/campaign.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';
import { actorName } from '../../access/identities.js';

// Campaigns from the API, as from Slack's `/ctem campaign start`: discovery of one scope,
// re-scoring, then its results (posted to the security channel when the Slack bot is configured).

const ScopeName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);

const CampaignSchema = z
  .object({
    id: z.string(),
    scope: z.string(),
    hypothesis: z.string().nullable(),
    requestedBy: z.string(),
    status: z.enum(['running', 'completed', 'failed']),
    results: z.record(z.string(), z.unknown()).nullable(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    workflowUrl: z.string().optional(),
  })
  .openapi('Campaign');

const startCampaignRoute = createRoute({
  method: 'post',
  path: '/api/v1/campaigns',
  summary: 'Start a campaign over a saved scope: discovery of its assets, re-scoring, then the top exposures',
  request: {
    body: {
      content: {
        'application/json': {
          schema: z.object({
            scope: ScopeName.openapi({ description: 'A saved scope (`PUT /api/v1/scopes/{name}`)' }),
            hypothesis: z.string().max(500).optional().openapi({ description: 'What the campaign sets out to check; CVE ids in it are counted in the results' }),
            requestedBy: z.string().max(200).optional().openapi({ description: "Who asked, as a display name: kept only with the bootstrap token (default: api); an issued token records its identity's name" }),
          }),
        },
      },
    },
  },
  responses: {
    202: {
      description: 'Started',
      content: { 'application/json': { schema: z.object({ campaignId: z.string(), workflowId: z.string(), workflowUrl: z.string().optional() }) } },
    },
    404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const listCampaignsRoute = createRoute({
  method: 'get',
  path: '/api/v1/campaigns',
  summary: 'Recent campaigns, newest first',
  request: { query: z.object({ scope: ScopeName.optional(), limit: z.coerce.number().int().min(1).max(200).default(20) }) },
  responses: { 200: { description: 'Campaigns', content: { 'application/json': { schema: z.object({ items: z.array(CampaignSchema) }) } } } },
});

const getCampaignRoute = createRoute({
  method: 'get',
  path: '/api/v1/campaigns/{id}',
  summary: 'One campaign: its record and, while it runs, the live state of its workflow',
  request: { params: z.object({ id: z.string().min(1) }) },
  responses: {
    200: {
      description: 'The campaign',
      content: { 'application/json': { schema: CampaignSchema.extend({ live: z.record(z.string(), z.unknown()).nullable() }) } },
    },
    404: { description: 'Unknown campaign', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const campaignRoutes = new OpenAPIHono<AppEnv>()
  .openapi(startCampaignRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    if (!(await getScope(deps.database.sql, body.scope))) return problem(c, 404, 'not_found', `no scope named ${body.scope}`);
    const { workflowId } = await startCampaign(deps.temporal, {
      scope: body.scope,
      requestedBy: actorName(c.get('principal'), body.requestedBy ?? 'api'),
      ...(body.hypothesis ? { hypothesis: body.hypothesis } : {}),
    });
    const url = workflowUrl(deps.temporal, workflowId);
    return c.json({ campaignId: workflowId, workflowId, ...(url ? { workflowUrl: url } : {}) }, 202);
  })
  .openapi(listCampaignsRoute, async (c) => {
    const deps = c.get('deps');
    const { scope, limit } = c.req.valid('query');
    const items = await listCampaigns(deps.database.sql, { ...(scope ? { scope } : {}), limit });
    return c.json({ items: items.map((r) => withUrl(deps.temporal, r)) }, 200);
  })
  .openapi(getCampaignRoute, async (c) => {
    const deps = c.get('deps');
    const id = c.req.valid('param').id;
    const record = await getCampaign(deps.database.sql, id);
    if (!record) return problem(c, 404, 'not_found', `no campaign ${id}`);
    let live: Record<string, unknown> | null = null;
    if (record.status === 'running') {
      try {
        live = { ...(await deps.temporal.client.workflow.getHandle(id).query(campaignStatusQuery)) };
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) live = { unavailable: (err as Error).message };
      }
    }
    return c.json({ ...withUrl(deps.temporal, record), live }, 200);
  });

function withUrl(temporal: { namespace: string; uiUrl?: string }, record: CampaignRecord) {
  const url = workflowUrl(temporal, record.id);
  return { ...record, ...(url ? { workflowUrl: url } : {}) };
}
