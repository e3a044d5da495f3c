import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listFindings } from '../../db/read-models/inventory.js';
import type { AppEnv } from '../context.js';
import { PageQuery } from './schemas.js';

const FindingQuery = PageQuery.extend({
  tier: z.enum(['act', 'attend', 'track*', 'track']).optional(),
  status: z.enum(['open', 'closed']).optional(),
  asset: z.string().optional().openapi({ description: 'Asset key or name' }),
  issueId: z.string().optional().openapi({ example: 'CVE-2021-44228' }),
  ticket: z.string().optional().openapi({ description: 'Golden ticket key' }),
});

export const listFindingsRoute = createRoute({
  method: 'get',
  path: '/api/v1/findings',
  summary: 'Findings with their tier, score, due date and explanation',
  request: { query: FindingQuery },
  responses: {
    200: { description: 'A page of findings', content: { 'application/json': { schema: z.object({ total: z.number(), items: z.array(z.any()) }) } } },
  },
});

export const findingRoutes = new OpenAPIHono<AppEnv>().openapi(listFindingsRoute, async (c) =>
  c.json(await listFindings(c.get('deps').database.sql, c.req.valid('query')), 200),
);
