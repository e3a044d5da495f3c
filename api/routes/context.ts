import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ContextError, contextSourceFor, contextSources } from '../../context/index.js';
import type { AppEnv } from '../context.js';
import { acceptUpload, uploadResponse } from '../uploads.js';
import { ErrorSchema } from './schemas.js';

export const uploadContextRoute = createRoute({
  method: 'post',
  path: '/api/v1/context',
  summary: 'Upload a context document (CMDB export, cloud inventory, security groups, EDR runtime evidence)',
  description:
    'The request body is the file itself. It is identity-resolved onto the asset inventory by a discovery workflow; see context/README.md for the formats.',
  request: {
    query: z.object({
      source: z
        .string()
        .optional()
        .openapi({ description: `Context source; detected when omitted. One of: ${contextSources.map((s) => s.source).join(', ')}` }),
      name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional().openapi({ description: 'Name of this feed (defaults to the source id); security-group rules are replaced per name' }),
      filename: z.string().max(256).optional(),
    }),
  },
  responses: {
    202: { description: 'Accepted', content: { 'application/json': { schema: z.object({ scanId: z.string().uuid(), workflowId: z.string() }) } } },
    400: { description: 'Unreadable document', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Too large', content: { 'application/json': { schema: ErrorSchema } } },
    503: { description: 'Temporal unavailable', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const contextRoutes = new OpenAPIHono<AppEnv>().openapi(uploadContextRoute, async (c) => {
  const query = c.req.valid('query');
  const result = await acceptUpload(
    c.get('deps'),
    c.req.raw.body,
    { source: query.name, filename: query.filename },
    async (file, name) => (await contextSourceFor(file, name, query.source)).source,
    (err): err is ContextError => err instanceof ContextError,
  );
  return uploadResponse(c, result);
});
