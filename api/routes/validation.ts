import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { workflowUrl } from '../../scoping/campaigns.js';
import { getScope } from '../../scoping/scopes.js';
import { EvidenceError } from '../../validation/evidence/model.js';
import { evidenceParsers, parseEvidence } from '../../validation/evidence/index.js';
import { importEvidence, listEvidence } from '../../validation/evidence/store.js';
import { attackPathOf, chokePoints, fixesByPathsCut, graphSummary } from '../../validation/graph/index.js';
import { ESTATE_SCOPE, getRun, listRuns, startValidation, type RunRow } from '../../validation/runs.js';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import type { ApiDeps, AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { withUploadedFile } from '../uploads.js';
import { ErrorSchema } from './schemas.js';
import { actorName } from '../../access/identities.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

// Validation from the API: evidence from the tools teams run (Nuclei, OWASP ZAP, pentest and BAS
// results), validation runs, and what they found.

const ScopeName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);
const Result = z.enum(['exploited', 'confirmed', 'not_exploitable', 'reachable', 'unreachable']);

const Samples = z.object({ count: z.number().int(), samples: z.array(z.object({ asset: z.string(), vulnerability: z.string() })) });

const EvidenceImportSchema = z
  .object({
    format: z.string(),
    records: z.number().int().openapi({ description: 'records the file held' }),
    stored: z.number().int().openapi({ description: 'evidence rows written now (a record lands on the host and on each image running there that has the vulnerability)' }),
    duplicates: z.number().int().openapi({ description: 'rows an earlier import of the same results already stored' }),
    findings: z.number().int().openapi({ description: 'open findings the new evidence applies to' }),
    byResult: z.record(z.string(), z.number().int()),
    expired: z.number().int().openapi({ description: 'records whose test is older than evidence lasts: stored, they move nothing' }),
    skipped: z.record(z.string(), z.number().int()).openapi({ description: 'what the file held that is not evidence (informational alerts, false positives...), by reason' }),
    unknownAssets: Samples.openapi({ description: 'records naming an asset the inventory does not know: not stored' }),
    withoutFinding: Samples.openapi({ description: 'records stored on a known asset where no open finding has their vulnerability' }),
    rescoreWorkflowId: z.string().nullable().openapi({ description: 'the rescoring that moves tiers with the new evidence' }),
  })
  .openapi('EvidenceImport');

const EvidenceSchema = z
  .object({
    id: z.number().int(),
    assetId: z.number().int(),
    assetKey: z.string(),
    vulnerability: z.string(),
    result: Result,
    tool: z.string(),
    source: z.string(),
    target: z.string().nullable(),
    port: z.string().nullable(),
    testedAt: z.string(),
    expiresAt: z.string(),
    active: z.boolean(),
    detail: z.record(z.string(), z.unknown()),
    openFindings: z.number().int(),
  })
  .openapi('ValidationEvidence');

const ValidationRunSchema = z
  .object({
    id: z.string(),
    scope: z.string(),
    trigger: z.string(),
    requestedBy: z.string().nullable(),
    status: z.enum(['running', 'completed', 'failed']),
    results: z.record(z.string(), z.unknown()).nullable(),
    error: z.string().nullable(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    workflowUrl: z.string().optional(),
  })
  .openapi('ValidationRun');

const importEvidenceRoute = createRoute({
  method: 'post',
  path: '/api/v1/validation/evidence',
  summary: 'Import validation evidence (Nuclei JSON lines, OWASP ZAP JSON or XML report, pentest / BAS results in the generic CSV or JSON format)',
  description:
    'The request body is the file itself. Each record is resolved onto a known asset (by host name, FQDN or IP) and stored on (asset, vulnerability); a rescoring then moves tiers with the evidence. Nothing is dropped in silence: unknown assets, records without an open finding and skipped entries are counted in the answer.',
  request: {
    query: z.object({
      format: z.string().optional().openapi({ description: `Evidence format; detected when omitted. One of: ${evidenceParsers.map((p) => p.format).join(', ')}` }),
      filename: z.string().max(256).optional(),
    }),
  },
  responses: {
    200: { description: 'What was stored', content: { 'application/json': { schema: EvidenceImportSchema } } },
    400: { description: 'Unreadable file', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Too large', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const listEvidenceRoute = createRoute({
  method: 'get',
  path: '/api/v1/validation/evidence',
  summary: 'Validation evidence, newest test first',
  request: {
    query: z.object({
      assetId: z.coerce.number().int().positive().optional(),
      vulnerability: z.string().max(200).optional(),
      result: Result.optional(),
      active: z.enum(['true', 'false']).optional().openapi({ description: 'true: only evidence that has not expired' }),
      withoutFinding: z.enum(['true', 'false']).optional().openapi({ description: 'true: only evidence no open finding carries' }),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
    }),
  },
  responses: { 200: { description: 'Evidence', content: { 'application/json': { schema: z.object({ items: z.array(EvidenceSchema) }) } } } },
});

const startRunRoute = createRoute({
  method: 'post',
  path: '/api/v1/validations',
  summary: 'Start a validation run over a saved scope (or `estate`): attack graph, safe active checks (allow-listed targets only), control verification',
  request: {
    body: {
      content: {
        'application/json': {
          schema: z.object({
            scope: ScopeName.openapi({ description: 'A saved scope, or `estate` for the whole inventory' }),
            requestedBy: z.string().max(200).optional(),
          }),
        },
      },
    },
  },
  responses: {
    202: { description: 'Started', content: { 'application/json': { schema: z.object({ workflowId: z.string(), workflowUrl: z.string().optional() }) } } },
    404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const listRunsRoute = createRoute({
  method: 'get',
  path: '/api/v1/validations',
  summary: 'Recent validation runs, newest first',
  request: { query: z.object({ scope: ScopeName.optional(), limit: z.coerce.number().int().min(1).max(200).default(20) }) },
  responses: { 200: { description: 'Runs', content: { 'application/json': { schema: z.object({ items: z.array(ValidationRunSchema) }) } } } },
});

const getRunRoute = createRoute({
  method: 'get',
  path: '/api/v1/validations/{id}',
  summary: 'One validation run: what it checked and found, and its workflow while it runs',
  request: { params: z.object({ id: z.string().min(1).max(200) }) },
  responses: {
    200: { description: 'The run', content: { 'application/json': { schema: ValidationRunSchema.extend({ live: z.record(z.string(), z.unknown()).nullable() }) } } },
    404: { description: 'Unknown run', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const TechniqueSchema = z.object({ id: z.string(), name: z.string(), tactic: z.string().optional() }).passthrough();

const PathStepSchema = z
  .object({
    assetId: z.number().int(),
    assetKey: z.string(),
    name: z.string(),
    edgeKind: z.string().openapi({ description: 'how the step enters the asset: internet, network (lateral), hosted (host to container), part_of (impact on a business service)' }),
    ports: z.array(z.string()).nullable(),
    via: z.string().openapi({ description: 'the rule or observation behind the edge' }),
    findingId: z.number().int().nullable().openapi({ description: 'the exposure the step exploits' }),
    issueId: z.string().nullable(),
    techniques: z.array(TechniqueSchema).openapi({ description: 'MITRE ATT&CK techniques of the step; empty when none is known' }),
    confidence: z.string(),
  })
  .openapi('AttackPathStep');

const AttackPathSchema = z
  .object({
    findingId: z.number().int(),
    assetId: z.number().int(),
    onPath: z.boolean().openapi({ description: 'the asset is compromisable from the internet and a crown jewel lies at or beyond it' }),
    reachable: z.boolean().openapi({ description: 'compromisable from the internet at all' }),
    hopsFromInternet: z.number().int().nullable(),
    hopsToJewel: z.number().int().nullable(),
    pathsThrough: z.number().openapi({ description: 'shortest attack paths to crown jewels through the asset' }),
    confidence: z.string().nullable().openapi({ description: 'the weakest step: confirmed (exploit evidence), plausible (rules and observations), theoretical' }),
    steps: z.array(PathStepSchema).openapi({ description: 'internet -> ... -> the asset -> ... -> the nearest crown jewel' }),
  })
  .openapi('AttackPath');

const AttackPathsSchema = z
  .object({
    summary: z.object({
      paths: z.number(),
      jewels: z.number().int(),
      jewelsReached: z.number().int(),
      compromisable: z.number().int(),
      edges: z.number().int(),
      computedAt: z.string().nullable(),
      durationMs: z.number().int().nullable(),
      unusableRules: z.array(z.object({ securityGroup: z.string(), source: z.string(), reason: z.string() })),
    }),
    chokePoints: z.array(z.object({ assetId: z.number().int(), assetKey: z.string(), name: z.string(), pathsThrough: z.number(), share: z.number(), chokePoint: z.boolean(), depth: z.number().int() })),
    fixes: z.array(
      z.object({
        ticketKey: z.string(),
        pathsCut: z.number(),
        exact: z.boolean(),
        assets: z.array(z.object({ assetId: z.number().int(), assetKey: z.string(), name: z.string(), pathsThrough: z.number(), examplePath: z.array(PathStepSchema) })),
      }),
    ),
  })
  .openapi('AttackPaths');

const attackPathsRoute = createRoute({
  method: 'get',
  path: '/api/v1/attack-paths',
  summary: 'Attack paths from the internet to crown jewels: totals, choke points, and golden tickets ranked by the paths their fix cuts',
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(10), examples: z.coerce.number().int().min(0).max(10).default(3) }) },
  responses: { 200: { description: 'The latest computation (a validation run refreshes it)', content: { 'application/json': { schema: AttackPathsSchema } } } },
});

const exposurePathRoute = createRoute({
  method: 'get',
  path: '/api/v1/exposures/{id}/attack-path',
  summary: "An exposure's attack path: whether its asset is on a path from the internet to a crown jewel, in how many hops, through which exposures",
  request: { params: z.object({ id: z.coerce.number().int().positive() }) },
  responses: {
    200: { description: 'The path read back from the latest computation', content: { 'application/json': { schema: AttackPathSchema } } },
    404: { description: 'Unknown exposure', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

/** One rescoring per evidence file: the same file twice starts it once. */
async function startRescore(deps: ApiDeps, sha256: string): Promise<string> {
  const workflowId = `rescore:evidence:${sha256.slice(0, 16)}`;
  await deps.temporal.client.workflow
    .start(rescoreWorkflow, { workflowId, taskQueue: taskQueueFor(deps.temporal.taskQueue, rescoreWorkflow), args: [{ reason: `validation evidence ${sha256.slice(0, 16)}` }] })
    .catch((err: Error) => {
      if (err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    });
  return workflowId;
}

const withUrl = (temporal: { namespace: string; uiUrl?: string }, run: RunRow) => {
  const url = workflowUrl(temporal, run.id);
  return { ...run, results: run.results as Record<string, unknown> | null, ...(url ? { workflowUrl: url } : {}) };
};

export const validationRoutes = new OpenAPIHono<AppEnv>()
  .openapi(importEvidenceRoute, async (c) => {
    const deps = c.get('deps');
    const query = c.req.valid('query');
    const name = query.filename ?? 'uploaded file';
    const result = await withUploadedFile(deps, c.req.raw.body, async (file, saved) => {
      try {
        const parsed = await parseEvidence(file, { displayName: name, testedAt: new Date().toISOString(), ...(query.format ? { format: query.format } : {}) });
        const stored = await importEvidence(deps.database.sql, parsed.records, { source: name });
        const skipped = Object.fromEntries(Object.entries(parsed.skipped).filter(([, n]) => n > 0));
        return { format: parsed.format, sha256: saved.sha256, skipped, ...stored };
      } catch (err) {
        if (err instanceof EvidenceError || err instanceof RangeError) return err;
        throw err;
      }
    });
    if (!result.ok) return problem(c, result.status, result.code, result.message);
    if (result.value instanceof Error) return problem(c, 400, 'invalid_input', result.value.message);
    const { sha256, assetIds, ...counts } = result.value;
    const rescoreWorkflowId = assetIds.length > 0 ? await startRescore(deps, sha256) : null;
    return c.json({ ...counts, rescoreWorkflowId }, 200);
  })
  .openapi(listEvidenceRoute, async (c) => {
    const q = c.req.valid('query');
    const items = await listEvidence(c.get('deps').database.sql, {
      ...(q.assetId !== undefined ? { assetId: q.assetId } : {}),
      ...(q.vulnerability ? { vulnerability: q.vulnerability } : {}),
      ...(q.result ? { result: q.result } : {}),
      active: q.active === 'true',
      withoutFinding: q.withoutFinding === 'true',
      limit: q.limit,
      offset: q.offset,
    });
    return c.json({ items }, 200);
  })
  .openapi(attackPathsRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const { limit, examples } = c.req.valid('query');
    return c.json({ summary: await graphSummary(sql), chokePoints: await chokePoints(sql, { limit }), fixes: await fixesByPathsCut(sql, { limit, examples }) }, 200);
  })
  .openapi(exposurePathRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const id = c.req.valid('param').id;
    const [exists] = await sql`select 1 from findings where id = ${id}`;
    if (!exists) return problem(c, 404, 'not_found', `no exposure ${id}`);
    return c.json(await attackPathOf(sql, id), 200);
  })
  .openapi(startRunRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    if (body.scope !== ESTATE_SCOPE && !(await getScope(deps.database.sql, body.scope))) return problem(c, 404, 'not_found', `no scope named ${body.scope}`);
    const { workflowId } = await startValidation(deps.temporal, { scope: body.scope, trigger: 'api', requestedBy: actorName(c.get('principal'), body.requestedBy ?? 'api') });
    const url = workflowUrl(deps.temporal, workflowId);
    return c.json({ workflowId, ...(url ? { workflowUrl: url } : {}) }, 202);
  })
  .openapi(listRunsRoute, async (c) => {
    const deps = c.get('deps');
    const { scope, limit } = c.req.valid('query');
    const items = await listRuns(deps.database.sql, { ...(scope ? { scope } : {}), limit });
    return c.json({ items: items.map((r) => withUrl(deps.temporal, r)) }, 200);
  })
  .openapi(getRunRoute, async (c) => {
    const deps = c.get('deps');
    const id = c.req.valid('param').id;
    const run = await getRun(deps.database.sql, id);
    if (!run) return problem(c, 404, 'not_found', `no validation run ${id}`);
    let live: Record<string, unknown> | null = null;
    if (run.status === 'running') {
      try {
        const d = await deps.temporal.client.workflow.getHandle(id).describe();
        live = { status: d.status.name, historyLength: d.historyLength };
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) live = { unavailable: (err as Error).message };
      }
    }
    return c.json({ ...withUrl(deps.temporal, run), live }, 200);
  });
