import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getExposure, listExposures, noiseCounts, noiseHistory, snapshotNoise } from '../../db/read-models/exposures.js';
import { deleteScope, getScope, listScopes, saveScope, ScopeSelector } from '../../scoping/scopes.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';
import { CursorError } from '../../db/read-models/keyset.js';
import { TicketResponseSchema } from './response-metrics.js';
import { ticketResponse } from '../../validation/response.js';
import { noteChange } from '../audit.js';

const ScopeName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);
const ScopeSchema = z.object({ name: z.string(), selector: ScopeSelector, description: z.string().nullable() }).openapi('Scope');
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const Tier = z.enum(['act', 'attend', 'track*', 'track']);

/** One explanation factor: what was looked at, its value, where it came from, and what it did. */
const FactorSchema = z
  .object({ factor: z.string(), value: z.union([z.string(), z.number(), z.boolean()]).nullable(), source: z.string(), effect: z.string() })
  .openapi('ExplanationFactor');

const ExposureSchema = z
  .object({
    id: z.number().int(),
    issueId: z.string().openapi({ example: 'CVE-2021-44228' }),
    aliases: z.array(z.string()).openapi({ description: 'the other ids the sources name this vulnerability by (GHSA, OSV, distro advisories)', example: ['GHSA-jfh8-c2jp-5v3q'] }),
    kind: z.string(),
    asset: z.object({
      id: z.number().int(),
      key: z.string(),
      name: z.string(),
      owner: z.string().nullable(),
      businessService: z.string().nullable(),
      criticality: z.string().nullable(),
      environment: z.string().nullable(),
      internetFacing: z.boolean().nullable().openapi({ description: "the asset's own context: a firewall rule or an internet-side scan (null: nobody said)" }),
    }),
    publiclyExposed: z.boolean().nullable().openapi({ description: 'exposure as the policy decided it for this finding: the asset or a host it runs on is internet-facing, and no control blocks the path (null: not scored)' }),
    component: z.string(),
    version: z.string(),
    location: z.string().openapi({ description: "where the component lives when one asset can hold it twice (a jar's path); '' otherwise" }),
    fixedVersion: z.string().nullable(),
    title: z.string().nullable(),
    status: z.enum(['open', 'closed']),
    vendorStatus: z.string().nullable(),
    closedAt: z.string().nullable(),
    closedReason: z.string().nullable(),
    severity: z.string(),
    cvssScore: z.number().nullable(),
    kev: z.boolean().openapi({ description: 'in the active CISA KEV catalog' }),
    epss: z.number().nullable().openapi({ description: 'score in the active FIRST EPSS version' }),
    tier: Tier.nullable(),
    score: z.number().nullable(),
    dueAt: z.string().nullable(),
    explanation: z.array(FactorSchema).nullable(),
    ticketKey: z.string().nullable().openapi({ description: 'the golden ticket that carries its fix' }),
    firstSeenAt: z.string(),
    lastSeenAt: z.string(),
  })
  .openapi('Exposure');

export const ExposureListItemSchema = ExposureSchema.extend({
  sources: z.array(z.string()).openapi({ description: 'the sources that still report it' }),
}).openapi('ExposureListItem');

const ExposureDetailSchema = ExposureSchema.extend({
  sources: z.array(
    z.object({
      source: z.string(),
      present: z.boolean(),
      vendorStatus: z.string().nullable(),
      severity: z.string().nullable().openapi({ description: "this source's own severity (null: not reported since ratings are kept per source)" }),
      cvssScore: z.number().nullable().openapi({ description: "this source's own CVSS base score" }),
      cvssVector: z.string().nullable().openapi({ description: "this source's own CVSS v3.x base vector" }),
      firstSeenAt: z.string(),
      lastSeenAt: z.string(),
    }).openapi('ExposureSource', { description: "One source's view of the exposure: the exposure's own severity and CVSS derive from those of the sources still reporting it" }),
  ),
  history: z.array(
    z.object({
      at: z.string(),
      tier: Tier,
      score: z.number(),
      dueAt: z.string().nullable(),
      policyVersion: z.string(),
      reason: z.string(),
      explanation: z.array(FactorSchema).nullable(),
    }),
  ),
  response: z.union([TicketResponseSchema, z.null()]).openapi({ description: "its golden ticket's response against the SLA (null: on no ticket)" }),
}).openapi('ExposureDetail');

export const NoiseCountsSchema = z.object({
  openFindings: z.number().int(),
  criticalHighByCvss: z.number().int().openapi({ description: 'open findings rated critical or high: CVSS >= 7, or the scanner severity when there is no score' }),
  criticalHighActAttend: z.number().int().openapi({ description: 'of those, in act or attend' }),
  actAttend: z.number().int(),
  act: z.number().int(),
  reduction: z.number().nullable().openapi({ description: '1 - criticalHighActAttend / criticalHighByCvss: the share of critical/high findings kept out of act/attend' }),
  criticalHighWithoutEvidence: z.number().int().openapi({ description: "critical/high findings with no evidence of exploitation: not in KEV, no CISA SSVC active or poc, EPSS below the active policy's likely-exploited threshold (0.1 by default)" }),
  reductionWithoutEvidence: z.number().nullable().openapi({ description: 'the share of those kept out of act/attend' }),
  exploitedExposed: z.number().int().openapi({ description: 'findings in KEV or SSVC active on publicly exposed assets, not declared not_affected or fixed' }),
  exploitedExposedMissed: z.number().int().openapi({ description: 'of those, how many are not in act/attend (0 is the goal)' }),
  exploitableBacklogPct: z.number().nullable().openapi({ description: 'open findings in KEV or with EPSS >= 0.1, not declared not_affected or fixed (VEX), as % of open findings' }),
});

const NoiseReportSchema = z
  .object({
    scope: z.string().openapi({ description: '`*` for the whole estate' }),
    now: NoiseCountsSchema,
    // Snapshots recorded before a count existed lack it.
    history: z.array(NoiseCountsSchema.partial().extend({ at: z.string() })),
    credit: z.string(),
  })
  .openapi('NoiseReport');

const listExposuresRoute = createRoute({
  method: 'get',
  path: '/api/v1/exposures',
  summary: 'Findings with tier, score, due date and explanation (FIRST EPSS, CISA KEV and context); open ones unless asked otherwise',
  request: {
    query: KeysetQuery.extend({
      status: z.enum(['open', 'closed', 'all']).default('open'),
      issueId: z.string().optional().openapi({ description: 'the id the finding is stored under or any of its aliases (GHSA-jfh8-c2jp-5v3q finds CVE-2021-44228)', example: 'CVE-2021-44228' }),
      ticket: z.string().optional().openapi({ description: 'Golden ticket key' }),
      tier: Tier.optional(),
      scope: ScopeName.optional().openapi({ description: 'A saved scope' }),
      asset: z.string().optional().openapi({ description: 'Asset key or name' }),
      owner: z.string().optional(),
      businessService: z.string().optional(),
      kev: bool.optional(),
      internetFacing: bool.optional(),
      q: z.string().max(200).optional().openapi({ description: 'an issue id or alias (CVE in any case, GHSA, OSV, distro advisory) or the start of a component name' }),
    }),
  },
  responses: {
    200: { description: 'A page of exposures, highest score first (then due date, then id)', content: { 'application/json': { schema: keysetPage(ExposureListItemSchema).openapi('ExposurePage') } } },
    400: { description: 'Invalid filter or cursor (`after`)', content: { 'application/json': { schema: ErrorSchema } } },
    404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const getExposureRoute = createRoute({
  method: 'get',
  path: '/api/v1/exposures/{id}',
  summary: 'One exposure (open or closed): the full explanation, its sources and the history of its score',
  request: { params: z.object({ id: z.coerce.number().int().positive() }) },
  responses: {
    200: { description: 'The exposure', content: { 'application/json': { schema: ExposureDetailSchema } } },
    404: { description: 'Unknown exposure', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const putScopeRoute = createRoute({
  method: 'put',
  path: '/api/v1/scopes/{name}',
  summary: 'Create or change a scope: a saved selector over the asset inventory',
  request: {
    params: z.object({ name: ScopeName }),
    body: { content: { 'application/json': { schema: z.object({ selector: ScopeSelector, description: z.string().max(500).optional() }) } }, required: true },
  },
  responses: { 200: { description: 'The scope', content: { 'application/json': { schema: ScopeSchema } } } },
});
const listScopesRoute = createRoute({
  method: 'get',
  path: '/api/v1/scopes',
  summary: 'Saved scopes',
  responses: { 200: { description: 'Scopes', content: { 'application/json': { schema: z.object({ items: z.array(ScopeSchema) }) } } } },
});
const deleteScopeRoute = createRoute({
  method: 'delete',
  path: '/api/v1/scopes/{name}',
  summary: 'Remove a scope',
  request: { params: z.object({ name: ScopeName }) },
  responses: { 204: { description: 'Removed' }, 404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } } },
});
const noiseRoute = createRoute({
  method: 'get',
  path: '/api/v1/reports/noise',
  summary: 'Noise report of a scope: critical/high by CVSS against act/attend, the reduction, the exploitable backlog %, and their trend',
  request: { query: z.object({ scope: ScopeName.optional() }) },
  responses: {
    200: { description: 'The report', content: { 'application/json': { schema: NoiseReportSchema } } },
    404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
  },
});
const noiseSnapshotRoute = createRoute({
  method: 'post',
  path: '/api/v1/reports/noise/snapshots',
  summary: 'Record the noise report of every scope now (re-scoring does this too)',
  responses: { 201: { description: 'Recorded', content: { 'application/json': { schema: z.object({ scopes: z.number() }) } } } },
});

export const exposureRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listExposuresRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const { scope: scopeName, ...query } = c.req.valid('query');
    const scope = scopeName ? await getScope(sql, scopeName) : undefined;
    if (scopeName && !scope) return problem(c, 404, 'not_found', `no scope named ${scopeName}`);
    try {
      return c.json(await listExposures(sql, { ...query, ...(scope ? { scope: scope.selector } : {}) }), 200);
    } catch (err) {
      if (err instanceof CursorError) return problem(c, 400, 'invalid_request', `after: ${err.message}`, { field: 'after' });
      throw err;
    }
  })
  .openapi(getExposureRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const exposure = await getExposure(sql, c.req.valid('param').id);
    if (!exposure) return problem(c, 404, 'not_found', 'no such exposure');
    const response = exposure.ticketKey ? ((await ticketResponse(sql, exposure.ticketKey)) ?? null) : null;
    return c.json({ ...exposure, response }, 200);
  })
  .openapi(putScopeRoute, async (c) => {
    const body = c.req.valid('json');
    noteChange(c, { before: (await getScope(c.get('deps').database.sql, c.req.valid('param').name)) ?? null });
    const scope = await saveScope(c.get('deps').database.sql, { name: c.req.valid('param').name, selector: body.selector, description: body.description ?? null });
    noteChange(c, { after: scope });
    return c.json(scope, 200);
  })
  .openapi(listScopesRoute, async (c) => c.json({ items: await listScopes(c.get('deps').database.sql) }, 200))
  .openapi(deleteScopeRoute, async (c) => {
    noteChange(c, { before: (await getScope(c.get('deps').database.sql, c.req.valid('param').name)) ?? null });
    if (!(await deleteScope(c.get('deps').database.sql, c.req.valid('param').name))) return problem(c, 404, 'not_found', 'no such scope');
    return c.body(null, 204);
  })
  .openapi(noiseRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const name = c.req.valid('query').scope;
    const scope = name ? await getScope(sql, name) : undefined;
    if (name && !scope) return problem(c, 404, 'not_found', `no scope named ${name}`);
    return c.json({ scope: name ?? '*', now: await noiseCounts(sql, scope?.selector), history: await noiseHistory(sql, name ?? '*'), credit: 'FIRST EPSS, CISA KEV' }, 200);
  })
  .openapi(noiseSnapshotRoute, async (c) => c.json({ scopes: await snapshotNoise(c.get('deps').database.sql) }, 201));
