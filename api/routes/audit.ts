import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getAuditEntry, listAudit, verifyAuditChain } from '../../access/audit-trail.js';
import { CursorError } from '../../db/read-models/keyset.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';

const Outcome = z.enum(['allowed', 'denied', 'failed']);

const AuditEntrySchema = z
  .object({
    id: z.number().int(),
    at: z.string(),
    actorId: z.string(),
    actorName: z.string(),
    actorKind: z.string().openapi({ description: 'user, service, bootstrap, system, or anonymous (refused credentials)' }),
    action: z.string().openapi({ example: 'policies.activate' }),
    target: z.string().nullable(),
    outcome: Outcome,
    before: z.unknown().openapi({ description: 'the state before the change, where the handler says' }),
    after: z.unknown(),
    requestId: z.string().nullable().openapi({ description: 'the X-Request-Id the API answered' }),
    channel: z.string().openapi({ description: 'api, console, slack, webhook, system' }),
    prevHash: z.string(),
    hash: z.string().openapi({ description: 'SHA-256 of prevHash and the entry (access/audit-trail.ts)' }),
  })
  .openapi('AuditEntry');

const VerificationSchema = z
  .object({
    ok: z.boolean(),
    checked: z.number().int(),
    firstId: z.number().int().nullable(),
    lastId: z.number().int().nullable(),
    anchor: z.string().openapi({ description: '64 zeros, or the last pruned hash after retention' }),
    broken: z.object({ id: z.number().int(), reason: z.string() }).optional(),
  })
  .openapi('AuditVerification');

const Timestamp = z.iso.datetime({ offset: true });

export const listAuditRoute = createRoute({
  method: 'get',
  path: '/api/v1/audit',
  summary: 'The audit trail, newest first: who changed what, when, from which request',
  request: {
    query: KeysetQuery.extend({
      actor: z.string().max(200).optional().openapi({ description: "an actor's id or name" }),
      action: z.string().max(200).optional().openapi({ description: 'an action or its prefix: `policies` matches policies.create and policies.activate' }),
      target: z.string().max(1000).optional(),
      outcome: Outcome.optional(),
      channel: z.string().max(20).optional(),
      since: Timestamp.optional().openapi({ description: 'ISO 8601, inclusive' }),
      until: Timestamp.optional().openapi({ description: 'ISO 8601, exclusive' }),
    }),
  },
  responses: {
    200: { description: 'A page of entries', content: { 'application/json': { schema: keysetPage(AuditEntrySchema).openapi('AuditPage') } } },
    400: { description: 'Invalid filter or cursor (`after`)', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const verifyAuditRoute = createRoute({
  method: 'get',
  path: '/api/v1/audit/verify',
  summary: 'Walk the whole hash chain: ok, or the first entry that was changed or removed and why',
  responses: { 200: { description: 'The chain status', content: { 'application/json': { schema: VerificationSchema } } } },
});

export const getAuditRoute = createRoute({
  method: 'get',
  path: '/api/v1/audit/{id}',
  summary: 'One audit entry with its before and after',
  request: { params: z.object({ id: z.coerce.number().int().min(1) }) },
  responses: {
    200: { description: 'The entry', content: { 'application/json': { schema: AuditEntrySchema } } },
    404: { description: 'No such entry (or pruned)', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const auditRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listAuditRoute, async (c) => {
    try {
      return c.json(await listAudit(c.get('deps').database.sql, c.req.valid('query')), 200);
    } catch (err) {
      if (err instanceof CursorError) return problem(c, 400, 'invalid_request', `after: ${err.message}`, { field: 'after' });
      throw err;
    }
  })
  .openapi(verifyAuditRoute, async (c) => c.json(await verifyAuditChain(c.get('deps').database.sql), 200))
  .openapi(getAuditRoute, async (c) => {
    const entry = await getAuditEntry(c.get('deps').database.sql, c.req.valid('param').id);
    return entry ? c.json(entry, 200) : problem(c, 404, 'not_found', 'no such audit entry (it may have been pruned)');
  });
