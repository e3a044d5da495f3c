import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listAssets, listOwners } from '../../db/read-models/inventory.js';
import type { AppEnv } from '../context.js';
import { PageQuery } from './schemas.js';

export const listAssetsRoute = createRoute({
  method: 'get',
  path: '/api/v1/assets',
  summary: 'The asset inventory: search by name, key or digest; filter by owner, kind, or orphans (no owner)',
  request: {
    query: PageQuery.extend({
      q: z.string().optional(),
      owner: z.string().optional(),
      orphaned: z.enum(['true', 'false']).optional(),
      kind: z.enum(['container_image', 'filesystem', 'repository', 'host', 'other']).optional(),
    }),
  },
  responses: {
    200: { description: 'A page of assets', content: { 'application/json': { schema: z.object({ total: z.number(), items: z.array(z.any()) }) } } },
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
    return c.json(await listAssets(c.get('deps').database.sql, filter), 200);
  })
  .openapi(listOwnersRoute, async (c) => c.json({ items: await listOwners(c.get('deps').database.sql) }, 200));
