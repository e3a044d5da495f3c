import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { connectorFor, ReportError } from '../../discovery/connectors/index.js';
import { getScan } from '../../discovery/store/scans.js';
import { acceptUpload, uploadResponse } from '../uploads.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';

const UploadQuery = z.object({
  format: z.string().optional().openapi({ description: 'Report format; detected from the content when omitted', example: 'trivy-json' }),
  source: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional().openapi({ description: 'Source name (scanner, pipeline); defaults to the format' }),
  target: z.string().max(512).optional().openapi({ description: 'Asset name to use instead of the one in the report' }),
  owner: z.string().max(256).optional().openapi({ description: 'ServiceNow user_name or e-mail of the asset owner' }),
  filename: z.string().max(256).optional().openapi({ description: 'Original file name, used in error messages' }),
  complete: z
    .enum(['true', 'false'])
    .optional()
    .openapi({ description: 'Whether the report lists everything its source sees on its assets (then findings it no longer lists are closed). Default: true unless the report is empty.' }),
  vantage: z
    .enum(['internet', 'internal'])
    .optional()
    .openapi({ description: 'Where a network scanner looked from: with `internet`, the ports its findings are reported on are evidence of internet exposure. Default: not declared (no such evidence).' }),
  strict: z.enum(['true', 'false']).optional().openapi({ description: 'With `true`, the first parse warning fails the scan instead of being stored with it.' }),
});

export const uploadScanRoute = createRoute({
  method: 'post',
  path: '/api/v1/scans',
  summary: 'Upload a scanner report; starts a discovery workflow',
  request: {
    query: UploadQuery,
  },
  description: 'The request body is the report file itself, in any content type (it is streamed to disk, not parsed here).',
  responses: {
    202: { description: 'Accepted', content: { 'application/json': { schema: z.object({ scanId: z.string().uuid(), workflowId: z.string() }) } } },
    400: { description: 'Unreadable report', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Report too large', content: { 'application/json': { schema: ErrorSchema } } },
    503: { description: 'Temporal unavailable', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const ScanSchema = z
  .object({
    id: z.string().uuid(),
    status: z.enum(['running', 'completed', 'failed']),
    source: z.string(),
    target: z.string().nullable(),
    format: z.string(),
    vantage: z.enum(['internet', 'internal']).nullable(),
    workflowId: z.string(),
    counts: z.record(z.string(), z.number()),
    warnings: z
      .array(z.object({ file: z.string(), format: z.string(), field: z.string().optional(), reason: z.string() }))
      .openapi({ description: 'What the connector skipped or did not understand in the report' }),
    error: z.string().optional(),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .openapi('Scan');

export const getScanRoute = createRoute({
  method: 'get',
  path: '/api/v1/scans/{id}',
  summary: 'A scan and what became of it',
  request: { params: z.object({ id: z.string().uuid() }) },
  responses: {
    200: { description: 'The scan', content: { 'application/json': { schema: ScanSchema } } },
    404: { description: 'Unknown scan', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const scanRoutes = new OpenAPIHono<AppEnv>()
  .openapi(uploadScanRoute, async (c) => {
    const query = c.req.valid('query');
    const result = await acceptUpload(
      c.get('deps'),
      c.req.raw.body,
      { ...query, complete: query.complete === undefined ? null : query.complete === 'true', strict: query.strict === 'true' },
      async (file, name) => (await connectorFor(file, name, query.format)).format,
      (err): err is ReportError => err instanceof ReportError,
    );
    return uploadResponse(c, result);
  })
  .openapi(getScanRoute, async (c) => {
    const scan = await getScan(c.get('deps').database.db, c.req.valid('param').id);
    if (!scan) return problem(c, 404, 'not_found', 'no such scan');
    return c.json(
      {
        id: scan.id,
        status: scan.status,
        source: scan.source,
        target: scan.target,
        format: scan.format,
        vantage: scan.vantage,
        workflowId: scan.workflowId,
        counts: scan.counts,
        warnings: scan.warnings,
        ...(scan.error ? { error: scan.error } : {}),
        createdAt: scan.createdAt.toISOString(),
        completedAt: scan.completedAt?.toISOString() ?? null,
      },
      200,
    );
  });
