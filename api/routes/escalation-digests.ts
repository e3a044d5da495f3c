import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listEscalationDigests } from '../../mobilization/escalation-digests.js';
import type { AppEnv } from '../context.js';
import { PageQuery } from './schemas.js';

const EscalationDigestSchema = z
  .object({
    key: z.string().openapi({ description: '`<manager>:<round start>`' }),
    manager: z.string(),
    roundAt: z.string(),
    ticketKeys: z.array(z.string()).openapi({ description: 'the golden tickets it named' }),
    sentAt: z.string().nullable().openapi({ description: 'when the notifier delivered it; null without a notifier or when delivery failed' }),
    createdAt: z.string(),
  })
  .openapi('EscalationDigest');

export const listEscalationDigestsRoute = createRoute({
  method: 'get',
  path: '/api/v1/escalation-digests',
  summary: 'Escalation digests: one per manager per escalation round, naming every overdue ticket of their reports',
  request: { query: PageQuery.extend({ manager: z.string().optional() }) },
  responses: {
    200: {
      description: 'A page of digests, newest round first',
      content: { 'application/json': { schema: z.object({ total: z.number().int(), items: z.array(EscalationDigestSchema) }) } },
    },
  },
});

export const escalationDigestRoutes = new OpenAPIHono<AppEnv>().openapi(listEscalationDigestsRoute, async (c) =>
  c.json(await listEscalationDigests(c.get('deps').database.sql, c.req.valid('query')), 200),
);
