import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { urlProblem } from '../../discovery/streams/outbound.js';
import { deleteSource, getSource, listSources, upsertSource } from '../../discovery/store/sources.js';
import { deleteSourceSchedule, nextRuns, upsertSourceSchedule } from '../../platform/schedules.js';
import { sourceDiscoveryWorkflow } from '../../workflows/source-discovery.js';
import { CTEM_PHASE } from '../../workflows/search-attributes.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';
import { noteChange } from '../audit.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

const Name = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);

const SourceBody = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('report-url'),
    config: z.object({
      url: z.string().url().superRefine((url, ctx) => {
        const why = urlProblem(url.replace('{target}', 'target'));
        if (why) ctx.addIssue({ code: 'custom', message: why });
      }).openapi({ description: 'Where the report is published; may contain {target} for targeted rescans', example: 'https://scanner.example.com/reports/{target}.json' }),
      format: z.string().optional(),
      headers: z.record(z.string(), z.string()).optional().openapi({ description: 'Sent with every pull (credentials). Answers show each value as (hidden); a PUT that sends (hidden) back keeps the stored value' }),
      complete: z.boolean().optional(),
      owner: z.string().optional(),
      vantage: z.enum(['internet', 'internal']).optional().openapi({ description: 'internet: an external network scan; its open ports count as internet exposure' }),
    }),
    schedule: z.string().nullable().default('1d').openapi({ description: 'Interval (1d, 6h) or cron expression; null: no schedule' }),
  }),
  z.object({
    kind: z.literal('servicenow-cmdb'),
    config: z.object({ table: z.string().regex(/^[a-z0-9_]+$/).default('cmdb_ci_server') }),
    schedule: z.string().nullable().default('1d'),
  }),
]);

/** Header values are credentials: never shown back. */
const HIDDEN = '(hidden)';

function withHiddenHeaders<T extends { config: Record<string, unknown> }>(source: T): T {
  const headers = source.config.headers as Record<string, string> | undefined;
  if (!headers) return source;
  return { ...source, config: { ...source.config, headers: Object.fromEntries(Object.keys(headers).map((k) => [k, HIDDEN])) } };
}

/** A PUT that sends back the hidden placeholder keeps the stored value of that header. */
function keepHiddenHeaders(config: Record<string, unknown>, stored: Record<string, unknown> | undefined): Record<string, unknown> {
  const headers = config.headers as Record<string, string> | undefined;
  if (!headers) return config;
  const previous = (stored?.headers ?? {}) as Record<string, string>;
  return { ...config, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v === HIDDEN && previous[k] !== undefined ? previous[k] : v])) };
}

const SourceSchema = z.object({
  name: z.string(),
  kind: z.string(),
  config: z.record(z.string(), z.unknown()),
  schedule: z.string().nullable(),
  nextRuns: z.array(z.string()),
});

const putSource = createRoute({
  method: 'put',
  path: '/api/v1/sources/{name}',
  summary: 'Create or change a pulled discovery source and its Temporal Schedule (daily by default)',
  request: { params: z.object({ name: Name }), body: { content: { 'application/json': { schema: SourceBody } }, required: true } },
  responses: {
    200: { description: 'The source', content: { 'application/json': { schema: SourceSchema } } },
    400: { description: 'Invalid source', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const listSourcesRoute = createRoute({
  method: 'get',
  path: '/api/v1/sources',
  summary: 'Pulled discovery sources with their next scheduled runs',
  responses: { 200: { description: 'Sources', content: { 'application/json': { schema: z.object({ items: z.array(SourceSchema) }) } } } },
});
const deleteSourceRoute = createRoute({
  method: 'delete',
  path: '/api/v1/sources/{name}',
  summary: 'Remove a source and its schedule',
  request: { params: z.object({ name: Name }) },
  responses: { 204: { description: 'Removed' }, 404: { description: 'Unknown source', content: { 'application/json': { schema: ErrorSchema } } } },
});
const runSourceRoute = createRoute({
  method: 'post',
  path: '/api/v1/sources/{name}/runs',
  summary: 'Run a source now (optionally for one target)',
  request: {
    params: z.object({ name: Name }),
    body: { content: { 'application/json': { schema: z.object({ target: z.string().max(512).optional() }) } }, required: false },
  },
  responses: {
    202: { description: 'Started', content: { 'application/json': { schema: z.object({ workflowId: z.string() }) } } },
    404: { description: 'Unknown source', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export async function startSourceRun(deps: AppEnv['Variables']['deps'], source: string, workflowId: string, target?: string): Promise<'started' | 'duplicate'> {
  try {
    await deps.temporal.client.workflow.start(sourceDiscoveryWorkflow, {
      workflowId,
      taskQueue: taskQueueFor(deps.temporal.taskQueue, sourceDiscoveryWorkflow),
      args: [{ source, ...(target ? { target } : {}) }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'discovery' }],
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
    throw err;
  }
}

export const sourceRoutes = new OpenAPIHono<AppEnv>()
  .openapi(putSource, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    const body = c.req.valid('json');
    const stored = await getSource(deps.database.db, name);
    const config = keepHiddenHeaders(body.config, stored?.config as Record<string, unknown> | undefined);
    if (Object.values((config.headers ?? {}) as Record<string, string>).includes(HIDDEN)) {
      return problem(c, 400, 'invalid_request', `config.headers: ${HIDDEN} stands for a stored value, and this source has none for that header`);
    }
    const source = await upsertSource(deps.database.db, { name, kind: body.kind, config, schedule: body.schedule });
    noteChange(c, { before: stored ? withHiddenHeaders(stored) : null, after: withHiddenHeaders(source) });
    if (source.schedule) {
      try {
        await upsertSourceSchedule(deps.temporal.client, deps.temporal.taskQueue, name, source.schedule);
      } catch (err) {
        return problem(c, 400, 'invalid_schedule', `schedule ${JSON.stringify(source.schedule)}: ${(err as Error).message}`);
      }
    } else {
      await deleteSourceSchedule(deps.temporal.client, name);
    }
    return c.json({ ...withHiddenHeaders(source), nextRuns: await nextRuns(deps.temporal.client, name) }, 200);
  })
  .openapi(listSourcesRoute, async (c) => {
    const deps = c.get('deps');
    const sources = await listSources(deps.database.db);
    const items = await Promise.all(sources.map(async (s) => ({ ...withHiddenHeaders(s), nextRuns: await nextRuns(deps.temporal.client, s.name) })));
    return c.json({ items }, 200);
  })
  .openapi(deleteSourceRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    const stored = await getSource(deps.database.db, name);
    noteChange(c, { before: stored ? withHiddenHeaders(stored) : null });
    await deleteSourceSchedule(deps.temporal.client, name);
    if (!(await deleteSource(deps.database.db, name))) return problem(c, 404, 'not_found', 'no such source');
    return c.body(null, 204);
  })
  .openapi(runSourceRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    if (!(await getSource(deps.database.db, name))) return problem(c, 404, 'not_found', 'no such source');
    const body = c.req.header('content-type')?.includes('json') ? ((await c.req.json().catch(() => ({}))) as { target?: string }) : {};
    const workflowId = `discovery-source:${name}:manual:${Date.now()}`;
    await startSourceRun(deps, name, workflowId, body.target);
    return c.json({ workflowId }, 202);
  });
