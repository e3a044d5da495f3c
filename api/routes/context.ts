import { randomUUID } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ContextError, contextSourceFor, contextSources } from '../../discovery/context/index.js';
import type { AppEnv } from '../context.js';
import { activePolicy } from '../../prioritization/policy-store.js';
import { readContext, shadowContext } from '../../discovery/store/context.js';
import { problem } from '../problem.js';
import { acceptUpload, uploadResponse, withUploadedFile } from '../uploads.js';
import { ErrorSchema, ShadowDiffSchema } from './schemas.js';

const ContextShadowSchema = z
  .object({
    source: z.string().openapi({ description: 'the context source the document was read as' }),
    counts: z.object({
      assets: z.number().int(),
      relations: z.number().int(),
      exposureRules: z.number().int(),
      internetFacingAssets: z.number().int(),
      runtimeEvidence: z.number().int(),
      networkFlows: z.number().int(),
    }).openapi({ description: 'what the document holds, as an import would merge it' }),
    diff: ShadowDiffSchema,
  })
  .openapi('ContextShadow');

export const uploadContextRoute = createRoute({
  method: 'post',
  path: '/api/v1/context',
  summary: 'Upload a context document (CMDB export, cloud inventory, security groups, network segments, EDR runtime evidence)',
  description:
    'The request body is the file itself. It is identity-resolved onto the asset inventory by a discovery workflow; see context/README.md for the formats.',
  request: {
    query: z.object({
      source: z
        .string()
        .optional()
        .openapi({ description: `Context source; detected when omitted. One of: ${contextSources.map((s) => s.source).join(', ')}` }),
      name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional().openapi({ description: 'Name of this feed (defaults to the source id)' }),
      filename: z.string().max(256).optional(),
      complete: z
        .enum(['true', 'false'])
        .optional()
        .openapi({ description: 'Security groups: whether the document lists every group this feed (name) describes; then the rules of groups it reported before and no longer lists are removed. Default: partial (each group described replaces only its own rules).' }),
    }),
  },
  responses: {
    202: { description: 'Accepted', content: { 'application/json': { schema: z.object({ scanId: z.string().uuid(), workflowId: z.string() }) } } },
    400: { description: 'Unreadable document', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Too large', content: { 'application/json': { schema: ErrorSchema } } },
    503: { description: 'Temporal unavailable', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const shadowContextRoute = createRoute({
  method: 'post',
  path: '/api/v1/context/shadow',
  summary: 'What a context document would change before it is imported: tiers that would move up or down, and why (nothing is kept)',
  description:
    'The request body is the file itself, as for POST /api/v1/context. It is merged in a transaction that is rolled back, and every open finding is scored against it with the active policy and feeds and compared with its live tier.',
  request: {
    query: z.object({
      source: z.string().optional().openapi({ description: 'Context source; detected when omitted' }),
      name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional().openapi({ description: 'Name of the feed the document would be imported as (security-group rules are replaced per name)' }),
      filename: z.string().max(256).optional(),
      samples: z.coerce.number().int().min(0).max(200).default(20).openapi({ description: 'How many moved findings to explain' }),
    }),
  },
  responses: {
    200: { description: 'What the document holds and the diff it would make', content: { 'application/json': { schema: ContextShadowSchema } } },
    400: { description: 'Unreadable document', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Too large', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const contextRoutes = new OpenAPIHono<AppEnv>()
  .openapi(shadowContextRoute, async (c) => {
    const query = c.req.valid('query');
    const { database } = c.get('deps');
    const reportName = query.filename ?? 'uploaded file';
    const result = await withUploadedFile(c.get('deps'), c.req.raw.body, async (file) => {
      try {
        const source = await contextSourceFor(file, reportName, query.source);
        const document = await readContext(source.parse(file));
        const scan = { id: randomUUID(), source: query.name ?? source.source, format: source.source };
        return { source: source.source, ...(await shadowContext(database.sql, await activePolicy(database.sql), scan, document, { samples: query.samples })) };
      } catch (err) {
        // Parsers name the stored file; the user knows it by the name it was sent under.
        if (err instanceof ContextError) return new ContextError(reportName, err.source, err.where, err.reason);
        throw err;
      }
    });
    if (!result.ok) return problem(c, result.status, result.code, result.message);
    if (result.value instanceof ContextError) return problem(c, 400, 'invalid_input', result.value.message);
    return c.json(result.value, 200);
  })
  .openapi(uploadContextRoute, async (c) => {
    const query = c.req.valid('query');
    const result = await acceptUpload(
      c.get('deps'),
      c.req.raw.body,
      { source: query.name, filename: query.filename, complete: query.complete === undefined ? null : query.complete === 'true' },
      async (file, name) => (await contextSourceFor(file, name, query.source)).source,
      (err): err is ContextError => err instanceof ContextError,
    );
    return uploadResponse(c, result);
  });
