import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { importFeedFile, shadowFeedVersion, startRescoreAfterFeedChange, type RescoreStart } from '../../prioritization/feeds/import.js';
import {
  FEED_CHECKS,
  FeedStateError,
  getFeedVersion,
  listFeedVersions,
  parseForce,
  promoteFeed,
  UnknownCheckError,
  type FeedImport,
} from '../../prioritization/feeds/store.js';
import { parseDuration } from '../../config/duration.js';
import { FEED_LABEL, FEED_MAX_AGE_DEFAULTS, FeedError, feedMaxAge, type FeedMaxAge } from '../../prioritization/feeds/parse.js';
import { intelFeedWorkflow } from '../../workflows/intel-feed.js';
import { CTEM_PHASE } from '../../workflows/search-attributes.js';
import type { ApiDeps, AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { withUploadedFile } from '../uploads.js';
import { ErrorSchema, ShadowDiffSchema } from './schemas.js';
import { noteChange } from '../audit.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

// Threat-intel feeds (FIRST EPSS, CISA KEV, CVE records): import a file, list versions, promote a
// staged one, compare one with the active version in shadow mode, fetch now.

const Kind = z.enum(['epss', 'kev', 'cve']).openapi({
  description:
    'epss: FIRST EPSS daily CSV (gzipped or not); kev: CISA KEV JSON catalog; cve: CVE records in the CVE JSON 5 format (the CVE Program\'s cvelistV5 or CISA Vulnrichment), a .zip or .tar.gz of the list',
});
const Version = z.string().regex(/^[\w.-]{1,64}$/);

const CheckSchema = z
  .object({ check: z.enum(FEED_CHECKS), ok: z.boolean(), detail: z.string(), overridden: z.boolean().optional() })
  .openapi('FeedCheck');

const FeedImportSchema = z
  .object({
    kind: Kind,
    version: z.string(),
    rows: z.number().int(),
    status: z.enum(['active', 'staged', 'rejected', 'retired']),
    validation: z.array(CheckSchema),
    publishedAt: z.string().nullable(),
    origin: z.string().nullable(),
    imported: z.boolean().openapi({ description: 'false when this version was already known (nothing changed)' }),
    activated: z.boolean().openapi({ description: 'true when this request made it the active version' }),
    rescore: z.object({ started: z.boolean(), workflowId: z.string().optional(), reason: z.string().optional() }).optional(),
    changes: z
      .object({
        new: z.number().int(),
        changed: z.number().int(),
        unchanged: z.number().int().openapi({ description: 'records whose file is identical to the active version\'s: copied, not parsed again' }),
        removed: z.number().int().openapi({ description: 'records of the active version absent from this list' }),
        against: z.string().nullable().openapi({ description: 'the active version compared with; null when there was none' }),
      })
      .optional()
      .openapi({ description: 'CVE records imported now: how the list differs from the active version, by record file hash' }),
    warnings: z.array(z.string()).optional().openapi({ description: 'e.g. a known version offered again from a different file (not read; the stored version stays)' }),
  })
  .openapi('FeedImport');

const RejectedSchema = FeedImportSchema.extend({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('FeedRejected');

const FeedVersionSchema = z
  .object({
    kind: Kind,
    version: z.string(),
    status: z.enum(['active', 'staged', 'rejected', 'retired']),
    rows: z.number().int(),
    sha256: z.string(),
    publishedAt: z.string().nullable(),
    origin: z.string().nullable(),
    validation: z.array(CheckSchema),
    importedAt: z.string(),
    activatedAt: z.string().nullable(),
    stored: z.boolean().openapi({ description: 'whether its rows are still stored (retention keeps the last 3 retired versions)' }),
  })
  .openapi('FeedVersion');

const checkList = `comma-separated checks whose failure is overridden (recorded as such): ${FEED_CHECKS.join(', ')}`;
const ValidationQuery = {
  force: z.string().optional().openapi({ description: checkList, example: 'freshness,not-older' }),
  asOf: z.string().optional().openapi({ description: 'judge freshness at this ISO date instead of now (importing an old file on purpose)' }),
};

const importRoute = createRoute({
  method: 'post',
  path: '/api/v1/intel/{kind}',
  summary: 'Import a FIRST EPSS or CISA KEV file, or a list of CVE records: staged, checked, then activated or rejected',
  description:
    'The request body is the feed file: EPSS CSV gzipped or not, KEV JSON, or for `cve` a .zip or .tar.gz of CVE JSON 5 record files ' +
    '(`CVE-YYYY-NNNN.json` at any depth; other files are ignored). A CVE records version is named for its newest `dateUpdated` and a ' +
    'hash of its records; records unchanged since the active version are copied, not parsed again (`changes`). ' +
    '200 when activated, staged or already known; 400 when malformed (a CVE record names its file and JSON path; nothing stored); ' +
    '422 when a check failed (the active version stays).',
  request: {
    params: z.object({ kind: Kind }),
    query: z.object({
      stage: z.enum(['true', 'false']).optional().openapi({ description: 'true: stage and check only; promote later' }),
      filename: z.string().max(256).optional().openapi({ description: 'original file name, for messages and the recorded origin' }),
      gzip: z.enum(['true', 'false']).optional().openapi({ description: 'ignored: gzip is recognised from the content' }),
      ...ValidationQuery,
    }),
  },
  responses: {
    200: { description: 'Activated, staged, or already known', content: { 'application/json': { schema: FeedImportSchema } } },
    400: { description: 'Malformed feed (nothing stored) or bad parameters', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Too large', content: { 'application/json': { schema: ErrorSchema } } },
    422: { description: 'Rejected by a check; the active version stays', content: { 'application/json': { schema: RejectedSchema } } },
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/api/v1/intel/feeds',
  summary: 'Every feed version with its status, checks, publication date, rows and origin',
  request: { query: z.object({ kind: Kind.optional(), status: z.enum(['active', 'staged', 'rejected', 'retired']).optional() }) },
  responses: {
    200: {
      description: 'Versions, newest first per kind',
      content: { 'application/json': { schema: z.object({ items: z.array(FeedVersionSchema), attribution: z.string() }) } },
    },
  },
});

const promoteRoute = createRoute({
  method: 'post',
  path: '/api/v1/intel/feeds/{kind}/{version}/promote',
  summary: 'Activate a staged (or retained retired) version after checking it again against the active one',
  request: { params: z.object({ kind: Kind, version: Version }), query: z.object(ValidationQuery) },
  responses: {
    200: { description: 'Active', content: { 'application/json': { schema: FeedImportSchema } } },
    400: { description: 'Bad parameters', content: { 'application/json': { schema: ErrorSchema } } },
    404: { description: 'Unknown version', content: { 'application/json': { schema: ErrorSchema } } },
    409: { description: 'Not promotable (rejected, or its rows were deleted)', content: { 'application/json': { schema: ErrorSchema } } },
    422: { description: 'A check failed; the status is unchanged', content: { 'application/json': { schema: RejectedSchema } } },
  },
});

const shadowRoute = createRoute({
  method: 'get',
  path: '/api/v1/intel/feeds/{kind}/{version}/shadow',
  summary: 'What scoring would change with this feed version instead of the active one (active policy)',
  request: {
    params: z.object({ kind: Kind, version: Version }),
    query: z.object({ samples: z.coerce.number().int().min(0).max(200).default(20).openapi({ description: 'how many moved findings to list' }) }),
  },
  responses: {
    200: {
      description: 'Counts of findings whose tier would move, tier transitions, and samples with the reason',
      content: { 'application/json': { schema: ShadowDiffSchema.extend({ kind: Kind, version: z.string(), status: z.enum(['active', 'staged', 'rejected', 'retired']) }) } },
    },
    404: { description: 'Unknown version', content: { 'application/json': { schema: ErrorSchema } } },
    409: { description: 'Its rows are not stored', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const runRoute = createRoute({
  method: 'post',
  path: '/api/v1/intel/feeds/{kind}/runs',
  summary: 'Fetch a feed from its configured URL now (what its schedule does)',
  request: { params: z.object({ kind: Kind }) },
  responses: {
    202: { description: 'Started', content: { 'application/json': { schema: z.object({ workflowId: z.string() }) } } },
    409: { description: 'No URL configured for this feed', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

function maxAgeOf(deps: ApiDeps): FeedMaxAge {
  return deps.intel?.maxAgeMs ?? { epss: parseDuration(FEED_MAX_AGE_DEFAULTS.epss), kev: parseDuration(FEED_MAX_AGE_DEFAULTS.kev), cve: parseDuration(FEED_MAX_AGE_DEFAULTS.cve) };
}

type Checked = { ok: true; force: string[]; asOf?: Date } | { ok: false; message: string };

function validationParams(query: { force?: string | undefined; asOf?: string | undefined }): Checked {
  let force: string[];
  try {
    force = parseForce(query.force);
  } catch (err) {
    if (err instanceof UnknownCheckError) return { ok: false, message: err.message };
    throw err;
  }
  if (query.asOf === undefined) return { ok: true, force };
  const asOf = new Date(query.asOf);
  if (!/^\d{4}-\d{2}-\d{2}/.test(query.asOf) || Number.isNaN(asOf.getTime())) return { ok: false, message: `asOf: not an ISO date: ${query.asOf}` };
  return { ok: true, force, asOf };
}

/**
 * 200 with the version; 422 with the same body plus the error when an import was rejected or a
 * promotion failed its checks. A newly active version starts the re-score.
 */
async function answer(c: Context<AppEnv>, result: FeedImport, mode: 'import' | 'promote') {
  const deps = c.get('deps');
  let rescore: RescoreStart | undefined;
  if (result.activated) rescore = await startRescoreAfterFeedChange(deps.temporal.client, deps.temporal.taskQueue, result.kind, result.version);
  const body = { ...result, ...(rescore ? { rescore } : {}) };
  const refused = mode === 'import' ? result.status === 'rejected' : result.status !== 'active';
  if (!refused) return c.json(body, 200);
  const failed = result.validation.filter((v) => !v.ok && !v.overridden);
  const message = `${FEED_LABEL[result.kind]} ${result.version} ${mode === 'import' ? 'rejected' : 'not promoted'}: ${failed.map((f) => `${f.check}: ${f.detail}`).join('; ')}`;
  return c.json({ ...body, error: { code: mode === 'import' ? 'feed_rejected' : 'checks_failed', message } }, 422);
}

export const intelRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const items = await listFeedVersions(c.get('deps').database.sql, { ...(query.kind ? { kind: query.kind } : {}), ...(query.status ? { status: query.status } : {}) });
    const attribution =
      'FIRST EPSS (https://www.first.org/epss), CISA KEV (https://www.cisa.gov/known-exploited-vulnerabilities-catalog), ' +
      'CVE records (CVE Program, https://www.cve.org; CISA Vulnrichment, https://github.com/cisagov/vulnrichment)';
    return c.json({ items, attribution }, 200);
  })
  .openapi(importRoute, async (c) => {
    const deps = c.get('deps');
    const { kind } = c.req.valid('param');
    const query = c.req.valid('query');
    const params = validationParams(query);
    if (!params.ok) return problem(c, 400, 'invalid_request', params.message);
    const name = query.filename ?? `uploaded ${kind} feed`;
    const saved = await withUploadedFile(deps, c.req.raw.body, async (file) => {
      try {
        return await importFeedFile(deps.database, kind, file, {
          name,
          origin: `file:${query.filename ?? 'upload'}`,
          maxAgeMs: maxAgeOf(deps),
          ...(deps.intel?.cveMinRecords !== undefined ? { minRecords: deps.intel.cveMinRecords } : {}),
          activate: query.stage === 'true' ? 'never' : 'if-valid',
          force: params.force,
          ...(params.asOf ? { asOf: params.asOf } : {}),
        });
      } catch (err) {
        if (err instanceof FeedError) return err;
        throw err;
      }
    });
    if (!saved.ok) return problem(c, saved.status, saved.code, saved.message);
    if (saved.value instanceof FeedError) return problem(c, 400, 'invalid_feed', saved.value.message);
    return answer(c, saved.value, 'import');
  })
  .openapi(promoteRoute, async (c) => {
    const deps = c.get('deps');
    const { kind, version } = c.req.valid('param');
    const params = validationParams(c.req.valid('query'));
    if (!params.ok) return problem(c, 400, 'invalid_request', params.message);
    const active = (await listFeedVersions(deps.database.sql, { kind, status: 'active' }))[0]?.version ?? null;
    noteChange(c, { before: { active } });
    try {
      const result = await promoteFeed(deps.database.sql, kind, version, {
        maxAgeMs: feedMaxAge(kind, maxAgeOf(deps)),
        force: params.force,
        ...(params.asOf ? { asOf: params.asOf } : {}),
      });
      noteChange(c, { after: { active: result.activated ? version : active } });
      return answer(c, result, 'promote');
    } catch (err) {
      if (err instanceof FeedStateError) return err.reason === 'not_found' ? problem(c, 404, 'not_found', err.message) : problem(c, 409, 'not_promotable', err.message);
      throw err;
    }
  })
  .openapi(shadowRoute, async (c) => {
    const deps = c.get('deps');
    const { kind, version } = c.req.valid('param');
    const feed = await getFeedVersion(deps.database.sql, kind, version);
    if (!feed) return problem(c, 404, 'not_found', `no ${FEED_LABEL[kind]} version ${version}`);
    if (!feed.stored) return problem(c, 409, 'not_stored', `${FEED_LABEL[kind]} ${version} (${feed.status}) has no stored rows to score with`);
    const diff = await shadowFeedVersion(deps.database, kind, version, c.req.valid('query').samples);
    return c.json({ kind, version, status: feed.status, ...diff }, 200);
  })
  .openapi(runRoute, async (c) => {
    const deps = c.get('deps');
    const { kind } = c.req.valid('param');
    // CVE records are imported from a checkout or an archive; they have no download of their own yet.
    if (kind === 'cve') return problem(c, 409, 'feed_disabled', `${FEED_LABEL[kind]} are not fetched: import a checkout or an archive (POST /api/v1/intel/cve, CTEM_CVE_RECORDS)`);
    if (deps.intel && !deps.intel.urls[kind]) return problem(c, 409, 'feed_disabled', `no URL is configured for ${FEED_LABEL[kind]} (CTEM_${kind.toUpperCase()}_URL)`);
    const workflowId = `intel-feed:${kind}:manual:${Date.now()}`;
    try {
      await deps.temporal.client.workflow.start(intelFeedWorkflow, {
        workflowId,
        taskQueue: taskQueueFor(deps.temporal.taskQueue, intelFeedWorkflow),
        args: [{ kind }],
        typedSearchAttributes: [{ key: CTEM_PHASE, value: 'prioritization' }],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return c.json({ workflowId }, 202);
  });
