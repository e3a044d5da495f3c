import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ControlError, deleteControl, getControl, listControls, saveControl } from '../../prioritization/controls.js';
import { activatePolicy, activePolicy, getPolicy, listPolicies, savePolicy } from '../../prioritization/policy-store.js';
import { backtest, BacktestError, laterKevVersion } from '../../prioritization/backtest.js';
import { shadowScore } from '../../prioritization/scoring/rescore.js';
import { PolicyDocument, PolicyError } from '../../prioritization/policy.js';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import type { ApiDeps, AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema, ShadowDiffSchema } from './schemas.js';
import { noteChange } from '../audit.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

const PolicyVersionSchema = z
  .object({
    version: z.string(),
    name: z.string(),
    status: z.enum(['active', 'shadow', 'retired']),
    createdAt: z.string(),
    activatedAt: z.string().nullable(),
  })
  .openapi('PolicyVersion');

const ControlSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(['waf', 'segmentation', 'edr', 'feature_disabled', 'other']),
    mitigates: z.object({
      issueIds: z.array(z.string()).optional(),
      cwes: z.array(z.string()).optional(),
      components: z.array(z.string()).optional(),
      ports: z.array(z.string()).optional(),
    }),
    appliesTo: z.object({
      assetKeys: z.array(z.string()).optional(),
      businessServices: z.array(z.string()).optional(),
      environments: z.array(z.string()).optional(),
      all: z.boolean().optional(),
    }),
    effect: z.enum(['not_exposed', 'not_exploitable']),
    description: z.string().optional(),
    expiresAt: z.string().nullable(),
    createdAt: z.string(),
    active: z.boolean().openapi({ description: 'false once expiresAt has passed: scoring no longer counts it' }),
    verification: z.enum(['verified', 'failed', 'unverified']).openapi({ description: 'what a validation probe found of the claim; failed: scoring ignores the control' }),
    verifiedAt: z.string().nullable(),
    verificationDetail: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi('Control');

// Prioritization is data: policies and compensating controls change through these routes, are
// evaluated in shadow mode first, and any change that goes live re-scores through a workflow.

const Version = z.string().min(1).max(100);
const ControlName = z.string().min(1).max(200);

/** Starts the re-score for a change; the same change twice starts it once. */
async function startRescore(deps: ApiDeps, key: string, reason: string): Promise<string> {
  const workflowId = `rescore:${key}`;
  await deps.temporal.client.workflow
    .start(rescoreWorkflow, { workflowId, taskQueue: taskQueueFor(deps.temporal.taskQueue, rescoreWorkflow), args: [{ reason }] })
    .catch((err: Error) => {
      if (err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    });
  return workflowId;
}

const listPoliciesRoute = createRoute({
  method: 'get',
  path: '/api/v1/policies',
  summary: 'Prioritization policy versions (one active, others shadow or retired)',
  responses: { 200: { description: 'Policies', content: { 'application/json': { schema: z.object({ items: z.array(PolicyVersionSchema) }) } } } },
});
const getPolicyRoute = createRoute({
  method: 'get',
  path: '/api/v1/policies/{version}',
  summary: 'A policy document (`active` names the live one)',
  request: { params: z.object({ version: Version }) },
  responses: {
    200: { description: 'The policy document', content: { 'application/json': { schema: PolicyDocument } } },
    404: { description: 'Unknown version', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const postPolicyRoute = createRoute({
  method: 'post',
  path: '/api/v1/policies',
  summary: 'Save a new policy version in shadow mode (versions are immutable); see prioritization/README.md',
  request: { body: { content: { 'application/json': { schema: z.any() } }, required: true } },
  responses: {
    201: { description: 'Saved', content: { 'application/json': { schema: z.object({ version: z.string(), status: z.string() }) } } },
    400: { description: 'Invalid policy', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const shadowPolicyRoute = createRoute({
  method: 'get',
  path: '/api/v1/policies/{version}/shadow',
  summary: 'What this policy would change against the live tiers: moved up, moved down, and why (nothing is written)',
  request: {
    params: z.object({ version: Version }),
    query: z.object({ laterKev: Version.optional().openapi({ description: 'a later CISA KEV version: also backtest the active and this policy on the estate against it' }) }),
  },
  responses: {
    200: { description: 'The diff', content: { 'application/json': { schema: ShadowDiffSchema } } },
    404: { description: 'Unknown version', content: { 'application/json': { schema: ErrorSchema } } },
    422: { description: 'Unknown later KEV version', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const activatePolicyRoute = createRoute({
  method: 'post',
  path: '/api/v1/policies/{version}/activate',
  summary: 'Promote a policy version to live; starts the re-score workflow',
  request: { params: z.object({ version: Version }) },
  responses: {
    202: { description: 'Active; re-scoring', content: { 'application/json': { schema: z.object({ version: z.string(), workflowId: z.string() }) } } },
    404: { description: 'Unknown version', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const listControlsRoute = createRoute({
  method: 'get',
  path: '/api/v1/controls',
  summary: 'Compensating controls (WAF, segmentation, EDR, disabled feature...): what they mitigate and where',
  responses: { 200: { description: 'Controls', content: { 'application/json': { schema: z.object({ items: z.array(ControlSchema) }) } } } },
});
const putControlRoute = createRoute({
  method: 'put',
  path: '/api/v1/controls/{name}',
  summary: 'Create or change a compensating control; starts the re-score workflow',
  request: { params: z.object({ name: ControlName }), body: { content: { 'application/json': { schema: z.any() } }, required: true } },
  responses: {
    200: { description: 'Saved; re-scoring', content: { 'application/json': { schema: ControlSchema.extend({ workflowId: z.string() }) } } },
    400: { description: 'Invalid control', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const deleteControlRoute = createRoute({
  method: 'delete',
  path: '/api/v1/controls/{name}',
  summary: 'Remove a compensating control; starts the re-score workflow',
  request: { params: z.object({ name: ControlName }) },
  responses: {
    202: { description: 'Removed; re-scoring', content: { 'application/json': { schema: z.object({ workflowId: z.string() }) } } },
    404: { description: 'Unknown control', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const policyRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listPoliciesRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    await activePolicy(sql); // seeds the shipped default on a fresh database
    return c.json({ items: await listPolicies(sql) }, 200);
  })
  .openapi(getPolicyRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const version = c.req.valid('param').version;
    const policy = version === 'active' ? await activePolicy(sql) : await getPolicy(sql, version);
    if (!policy) return problem(c, 404, 'not_found', `no policy version ${version}`);
    return c.json(policy.document, 200);
  })
  .openapi(postPolicyRoute, async (c) => {
    try {
      const { policy, created } = await savePolicy(c.get('deps').database.sql, await c.req.json(), 'shadow');
      noteChange(c, { target: policy.version, after: { version: policy.version, status: 'shadow', created } });
      return c.json({ version: policy.version, status: 'shadow' }, 201);
    } catch (err) {
      if (err instanceof PolicyError || err instanceof SyntaxError) return problem(c, 400, 'invalid_policy', err.message);
      throw err;
    }
  })
  .openapi(shadowPolicyRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const policy = await getPolicy(sql, c.req.valid('param').version);
    if (!policy) return problem(c, 404, 'not_found', 'no such policy version');
    const diff = await shadowScore(sql, policy, { all: true }, {});
    const { laterKev } = c.req.valid('query');
    if (!laterKev) return c.json(diff, 200);
    const active = await activePolicy(sql);
    const policies = active.version === policy.version ? [policy] : [active, policy];
    try {
      const result = await backtest(sql, { policies, laterKev: await laterKevVersion(sql, laterKev), universe: 'estate' });
      return c.json({ ...diff, backtest: { ...result, credit: 'FIRST EPSS, CISA KEV, CISA Vulnrichment' } }, 200);
    } catch (err) {
      if (err instanceof BacktestError) return problem(c, 422, 'invalid_backtest', err.message);
      throw err;
    }
  })
  .openapi(activatePolicyRoute, async (c) => {
    const deps = c.get('deps');
    const version = c.req.valid('param').version;
    if (!(await getPolicy(deps.database.sql, version))) return problem(c, 404, 'not_found', 'no such policy version');
    noteChange(c, { before: { active: (await activePolicy(deps.database.sql)).version } });
    await activatePolicy(deps.database.sql, version);
    noteChange(c, { after: { active: version } });
    const workflowId = await startRescore(deps, `policy:${version}`, `policy ${version} activated`);
    return c.json({ version, workflowId }, 202);
  })
  .openapi(listControlsRoute, async (c) => c.json({ items: await listControls(c.get('deps').database.sql) }, 200))
  .openapi(putControlRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    try {
      const body = (await c.req.json()) as Record<string, unknown>;
      noteChange(c, { before: (await getControl(deps.database.sql, name)) ?? null });
      const control = await saveControl(deps.database.sql, { ...body, name });
      noteChange(c, { after: control });
      const workflowId = await startRescore(deps, `control:${name}:${Date.now()}`, `compensating control ${name} saved`);
      return c.json({ ...control, workflowId }, 200);
    } catch (err) {
      if (err instanceof ControlError || err instanceof SyntaxError) return problem(c, 400, 'invalid_control', err.message);
      throw err;
    }
  })
  .openapi(deleteControlRoute, async (c) => {
    const deps = c.get('deps');
    const name = c.req.valid('param').name;
    noteChange(c, { before: (await getControl(deps.database.sql, name)) ?? null });
    if (!(await deleteControl(deps.database.sql, name))) return problem(c, 404, 'not_found', 'no such control');
    const workflowId = await startRescore(deps, `control:${name}:${Date.now()}`, `compensating control ${name} removed`);
    return c.json({ workflowId }, 202);
  });
