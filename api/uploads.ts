import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createScan, failScan } from '../discovery/store/scans.js';
import { fileIn, saveToFile, TooLargeError, withSavedFile, type SavedFile } from '../discovery/streams/to-file.js';
import { discoveryWorkflow } from '../workflows/discovery.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';
import type { Context } from 'hono';
import type { ApiDeps } from './context.js';
import { problem } from './problem.js';
import { taskQueueFor } from '../workflows/task-queues.js';

const EMPTY = { ok: false, status: 400, code: 'empty_upload', message: 'the request body must be the file itself' } as const;
const tooLarge = (err: TooLargeError) => ({ ok: false, status: 413, code: 'too_large', message: err.message }) as const;

export interface UploadMeta {
  source?: string | undefined;
  target?: string | undefined;
  owner?: string | undefined;
  filename?: string | undefined;
  complete?: boolean | null;
  vantage?: 'internet' | 'internal' | undefined;
  /** Fail the scan on the first parse warning (read by the ingest). */
  strict?: boolean;
}

export type UploadResult =
  | { ok: true; scanId: string; workflowId: string }
  | { ok: false; status: 400; code: string; message: string }
  | { ok: false; status: 413; code: string; message: string }
  | { ok: false; status: 503; code: string; message: string; scanId: string };

/**
 * The one way an uploaded file becomes a discovery run: store it, let `identify` name its format
 * (it throws on unreadable input, which becomes a 400), record the scan, start the workflow.
 */
export async function acceptUpload(
  deps: ApiDeps,
  body: ReadableStream<Uint8Array> | null,
  meta: UploadMeta,
  identify: (file: string, displayName: string) => Promise<string>,
  isInputError: (err: unknown) => err is Error,
): Promise<UploadResult> {
  if (!body) return EMPTY;
  const scanId = randomUUID();
  const file = await fileIn(deps.reportsDir, `${scanId}.upload`);
  const reportName = meta.filename ?? 'uploaded file';
  let saved: SavedFile;
  let format: string;
  try {
    saved = await saveToFile(body, file, { maxBytes: deps.maxUploadBytes, what: 'the upload' });
    format = await identify(file, reportName);
  } catch (err) {
    await rm(file, { force: true });
    if (err instanceof TooLargeError) return tooLarge(err);
    if (isInputError(err)) return { ok: false, status: 400, code: 'invalid_input', message: err.message };
    throw err;
  }
  const source = meta.source ?? format;
  const workflowId = `discovery:${source}:${scanId}`;
  await createScan(deps.database.db, {
    id: scanId,
    source,
    target: meta.target ?? null,
    format,
    reportName,
    status: 'running',
    workflowId,
    reportPath: file,
    reportSha256: saved.sha256,
    reportBytes: saved.bytes,
    owner: meta.owner ?? null,
    complete: meta.complete ?? null,
    vantage: meta.vantage ?? null,
    strict: meta.strict ?? false,
  });
  try {
    await deps.temporal.client.workflow.start(discoveryWorkflow, {
      workflowId,
      taskQueue: taskQueueFor(deps.temporal.taskQueue, discoveryWorkflow),
      args: [{ scanId }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'discovery' }],
    });
  } catch (err) {
    // Never leave a scan "running" that no workflow will finish.
    await failScan(deps.database.db, scanId, `could not start discovery: ${(err as Error).message}`);
    return { ok: false, status: 503, code: 'temporal_unavailable', message: 'the workflow engine did not accept the upload; retry later', scanId };
  }
  return { ok: true, scanId, workflowId };
}

/**
 * A request body on disk for the length of `use` (then removed): for what reads a file without
 * becoming a discovery run, e.g. a shadow evaluation or a feed import.
 */
export async function withUploadedFile<T>(
  deps: ApiDeps,
  body: ReadableStream<Uint8Array> | null,
  use: (file: string, saved: SavedFile) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; status: 400 | 413; code: string; message: string }> {
  if (!body) return EMPTY;
  try {
    return { ok: true, value: await withSavedFile(body, deps.reportsDir, { maxBytes: deps.maxUploadBytes, what: 'the upload', suffix: '.upload' }, (saved) => use(saved.file, saved)) };
  } catch (err) {
    if (err instanceof TooLargeError) return tooLarge(err);
    throw err;
  }
}

/** The HTTP answer to an upload: 202 with the scan, or the problem that stopped it. */
export function uploadResponse(c: Context, result: UploadResult) {
  if (result.ok) return c.json({ scanId: result.scanId, workflowId: result.workflowId }, 202);
  if (result.status === 400) return problem(c, 400, result.code, result.message);
  if (result.status === 413) return problem(c, 413, result.code, result.message);
  return problem(c, 503, result.code, result.message, { scanId: result.scanId });
}

/**
 * Routes whose body is a file streamed to disk under CTEM_MAX_UPLOAD_MB (scanner reports, context
 * documents, feeds, evidence, gate reports); every other /api body is a small JSON document.
 */
const UPLOAD_PATHS = [/^\/api\/v1\/scans$/, /^\/api\/v1\/context(\/shadow)?$/, /^\/api\/v1\/intel\/(epss|kev|cve)$/, /^\/api\/v1\/validation\/evidence$/, /^\/api\/v1\/gate$/];

export const isUploadPath = (method: string, path: string) => method === 'POST' && UPLOAD_PATHS.some((p) => p.test(path));

/** JSON bodies (policies, scopes, sources, tickets, webhooks) are refused beyond this, before they are read whole. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;
