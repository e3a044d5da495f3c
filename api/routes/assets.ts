import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getAsset, listAssets, listOwners } from '../../db/read-models/inventory.js';
import type { AppEnv } from '../context.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';
import { CursorError } from '../../db/read-models/keyset.js';
import { problem } from '../problem.js';
import { assetMergeHistory, MergeUndoError, undoMerge } from '../../discovery/store/merge.js';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

const AssetSchema = z
  .object({
    id: z.number().int(),
    key: z.string().openapi({ example: 'image:docker.io/shop/payments-api:1.4.2' }),
    kind: z.string(),
    name: z.string(),
    digest: z.string().nullable(),
    owner: z.string().nullable(),
    businessService: z.string().nullable(),
    criticality: z.string().nullable(),
    annualRevenue: z.number().nullable(),
    internetFacing: z.boolean().nullable(),
    openFindings: z.number().int(),
    actionFindings: z.number().int().openapi({ description: 'open findings in act or attend' }),
    firstSeenAt: z.string(),
    lastSeenAt: z.string(),
  })
  .openapi('Asset');

export const listAssetsRoute = createRoute({
  method: 'get',
  path: '/api/v1/assets',
  summary: 'The asset inventory: search by name, key or digest; filter by owner, kind, or orphans (no owner)',
  request: {
    query: KeysetQuery.extend({
      q: z.string().optional(),
      owner: z.string().optional(),
      orphaned: z.enum(['true', 'false']).optional(),
      kind: z.enum(['container_image', 'filesystem', 'repository', 'host', 'other']).optional(),
    }),
  },
  responses: {
    200: { description: 'A page of assets by name', content: { 'application/json': { schema: keysetPage(AssetSchema).openapi('AssetPage') } } },
    400: { description: 'Invalid filter or cursor (`after`)', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const listOwnersRoute = createRoute({
  method: 'get',
  path: '/api/v1/owners',
  summary: 'Owners with their number of assets and open findings; null is the orphan count',
  responses: {
    200: {
      description: 'Owners',
      content: {
        'application/json': {
          schema: z.object({
            items: z.array(z.object({ owner: z.string().nullable(), assets: z.number(), openFindings: z.number(), actionFindings: z.number() })),
          }),
        },
      },
    },
  },
});

const AssetIdParams = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: 'id', in: 'path' }, example: 42 }) });

const AssetDetailSchema = AssetSchema.extend({
  identifiers: z.array(z.object({ kind: z.string(), value: z.string(), source: z.string() })).openapi({ description: 'every name the asset is known by' }),
  mergedInto: z.number().int().nullable().openapi({ description: 'the asset this one was merged into (it then keeps no identifiers, findings or context); null when not merged' }),
}).openapi('AssetDetail');

export const getAssetRoute = createRoute({
  method: 'get',
  path: '/api/v1/assets/{id}',
  summary: 'One asset by id, with its identifiers; a merged asset still answers, naming the asset it was merged into',
  request: { params: AssetIdParams },
  responses: {
    200: { description: 'The asset', content: { 'application/json': { schema: AssetDetailSchema } } },
    404: { description: 'Unknown asset', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const MergeCountsSchema = z.object({
  identifiers: z.number().int(), findings: z.number().int().openapi({ description: 'findings moved as they are' }),
  folded: z.number().int().openapi({ description: "findings folded into the survivor's finding of the same identity" }),
  tickets: z.number().int(), evidence: z.number().int(), rows: z.number().int().openapi({ description: 'coverage, scans, runtime evidence, observed ports and relations moved' }),
});

const MergeEventSchema = z
  .object({
    id: z.number().int(),
    direction: z.enum(['into', 'out']).openapi({ description: 'into: another asset was merged into this one; out: this asset was merged into another' }),
    survivorId: z.number().int(),
    mergedId: z.number().int(),
    reason: z.record(z.string(), z.unknown()).openapi({ description: 'the source (and scan) of the record that linked the two, and its identifiers' }),
    counts: MergeCountsSchema,
    mergedAt: z.string(),
    undoneAt: z.string().nullable(),
    undoneBy: z.string().nullable(),
  })
  .openapi('AssetMerge');

export const assetHistoryRoute = createRoute({
  method: 'get',
  path: '/api/v1/assets/{id}/history',
  summary: "An asset's merges, into it and out of it, newest first",
  request: { params: AssetIdParams },
  responses: {
    200: { description: 'The merges', content: { 'application/json': { schema: z.object({ items: z.array(MergeEventSchema) }) } } },
    404: { description: 'Unknown asset', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const undoMergeRoute = createRoute({
  method: 'post',
  path: '/api/v1/assets/merges/{id}/undo',
  summary: 'Undoes an asset merge (admin): identifiers, findings, sources, context and tickets go back, in one transaction',
  description:
    'Merges into one asset are undone newest first. A merge already undone answers 409 (nothing changes). The same linking record arriving again merges the assets again.',
  request: { params: z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: {
      description: 'Undone; a rescoring of both assets is started',
      content: {
        'application/json': {
          schema: z.object({
            mergeId: z.number().int(), survivorId: z.number().int(), mergedId: z.number().int(), undoneAt: z.string(), undoneBy: z.string(),
            counts: MergeCountsSchema, rescoreWorkflowId: z.string(),
          }).openapi('MergeUndo'),
        },
      },
    },
    403: { description: 'Not an admin', content: { 'application/json': { schema: ErrorSchema } } },
    404: { description: 'Unknown merge', content: { 'application/json': { schema: ErrorSchema } } },
    409: { description: 'Already undone, or a newer merge of the same asset must be undone first', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const assetRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listAssetsRoute, async (c) => {
    const { orphaned, ...query } = c.req.valid('query');
    const filter = { ...query, ...(orphaned ? { orphaned: orphaned === 'true' } : {}) };
    try {
      return c.json(await listAssets(c.get('deps').database.sql, filter), 200);
    } catch (err) {
      if (err instanceof CursorError) return problem(c, 400, 'invalid_request', `after: ${err.message}`, { field: 'after' });
      throw err;
    }
  })
  .openapi(listOwnersRoute, async (c) => c.json({ items: await listOwners(c.get('deps').database.sql) }, 200))
  .openapi(getAssetRoute, async (c) => {
    const asset = await getAsset(c.get('deps').database.sql, c.req.valid('param').id);
    if (!asset) return problem(c, 404, 'not_found', `asset ${c.req.valid('param').id} does not exist`);
    return c.json(asset, 200);
  })
  .openapi(assetHistoryRoute, async (c) => {
    const { id } = c.req.valid('param');
    const sql = c.get('deps').database.sql;
    if (!(await getAsset(sql, id))) return problem(c, 404, 'not_found', `asset ${id} does not exist`);
    return c.json({ items: await assetMergeHistory(sql, id) }, 200);
  })
  .openapi(undoMergeRoute, async (c) => {
    const principal = c.get('principal');
    if (!principal.roles.includes('admin')) return problem(c, 403, 'forbidden', 'undoing an asset merge takes the admin role');
    const { id } = c.req.valid('param');
    const deps = c.get('deps');
    try {
      const undone = await undoMerge(deps.database.sql, id, principal.name);
      // Both assets' findings are rescored through the incremental path (undoMerge forgot their recorded context).
      const workflowId = `rescore:merge-undo:${id}`;
      await deps.temporal.client.workflow
        .start(rescoreWorkflow, { workflowId, taskQueue: taskQueueFor(deps.temporal.taskQueue, rescoreWorkflow), args: [{ reason: `asset merge ${id} undone` }] })
        .catch((err: Error) => {
          if (err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
        });
      return c.json({ ...undone, rescoreWorkflowId: workflowId }, 200);
    } catch (err) {
      if (err instanceof MergeUndoError) return problem(c, err.status, err.status === 404 ? 'not_found' : 'conflict', err.message);
      throw err;
    }
  });
