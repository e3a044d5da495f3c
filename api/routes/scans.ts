import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { connectorFor, ReportError } from '../../connectors/index.js';
import { createScan, failScan, getScan } from '../../db/queries/scans.js';
import { discoveryWorkflow } from '../../workflows/discovery.js';
import { CTEM_PHASE } from '../../workflows/search-attributes.js';
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
    workflowId: z.string(),
    counts: z.record(z.string(), z.number()),
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

class TooLarge extends Error {}

/** Streams the request body to disk (never into memory), hashing it on the way. */
async function saveBody(body: ReadableStream<Uint8Array>, file: string, maxBytes: number) {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) return done(new TooLarge());
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(body as never), meter, createWriteStream(file));
  return { bytes, sha256: hash.digest('hex') };
}

export const scanRoutes = new OpenAPIHono<AppEnv>()
  .openapi(uploadScanRoute, async (c) => {
    const deps = c.get('deps');
    const query = c.req.valid('query');
    const body = c.req.raw.body;
    if (!body) return problem(c, 400, 'empty_report', 'the request body must be the report file');
    const scanId = randomUUID();
    await mkdir(deps.reportsDir, { recursive: true });
    const file = join(deps.reportsDir, `${scanId}.report`);
    const reportName = query.filename ?? 'uploaded report';
    let saved: { bytes: number; sha256: string };
    let format: string;
    try {
      saved = await saveBody(body, file, deps.maxUploadBytes);
      format = (await connectorFor(file, reportName, query.format)).format;
    } catch (err) {
      await rm(file, { force: true });
      if (err instanceof TooLarge) return problem(c, 413, 'report_too_large', `the report exceeds ${deps.maxUploadBytes} bytes`);
      if (err instanceof ReportError) return problem(c, 400, 'invalid_report', err.message, { file: err.file, format: err.format, field: err.field });
      throw err;
    }
    const source = query.source ?? format;
    const workflowId = `discovery:${source}:${scanId}`;
    await createScan(deps.database.db, {
      id: scanId,
      source,
      target: query.target ?? null,
      format,
      reportName,
      status: 'running',
      workflowId,
      reportPath: file,
      reportSha256: saved.sha256,
      reportBytes: saved.bytes,
      owner: query.owner ?? null,
      complete: query.complete === undefined ? null : query.complete === 'true',
    });
    try {
      await deps.temporal.client.workflow.start(discoveryWorkflow, {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        args: [{ scanId }],
        typedSearchAttributes: [{ key: CTEM_PHASE, value: 'discovery' }],
      });
    } catch (err) {
      // Never leave a scan "running" that no workflow will finish.
      await failScan(deps.database.db, scanId, `could not start discovery: ${(err as Error).message}`);
      return problem(c, 503, 'temporal_unavailable', 'the workflow engine did not accept the scan; retry later', { scanId });
    }
    return c.json({ scanId, workflowId }, 202);
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
        workflowId: scan.workflowId,
        counts: scan.counts,
        ...(scan.error ? { error: scan.error } : {}),
        createdAt: scan.createdAt.toISOString(),
        completedAt: scan.completedAt?.toISOString() ?? null,
      },
      200,
    );
  });
