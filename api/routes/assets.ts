import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listAssets, listOwners } from '../../db/read-models/inventory.js';
import type { AppEnv } from '../context.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';
import { CursorError } from '../../db/read-models/keyset.js';
import { problem } from '../problem.js';

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
  .openapi(listOwnersRoute, async (c) => c.json({ items: await listOwners(c.get('deps').database.sql) }, 200));
