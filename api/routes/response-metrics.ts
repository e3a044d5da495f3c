import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getScope } from '../../scoping/scopes.js';
import { RESPONSE_GROUPS, responseMetrics, ResponseQueryError } from '../../validation/response.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';

// Was the response fast and adequate (validation/response.ts): the estate's numbers here, one
// ticket's in its detail and in the detail of each exposure it carries.

export const DurationsSchema = z
  .object({
    count: z.number().int().openapi({ description: 'tickets that reached this point' }),
    medianHours: z.number().nullable(),
    p90Hours: z.number().nullable(),
  })
  .openapi('ResponseDurations');

export const AttainmentSchema = z
  .object({
    due: z.number().int().openapi({ description: 'tickets whose deadline has passed or that met it already' }),
    met: z.number().int(),
    share: z.number().nullable().openapi({ description: 'met / due (null: nothing due)' }),
  })
  .openapi('SlaAttainment');

const ResponseMetricsSchema = z
  .object({
    tickets: z.number().int(),
    toAcknowledge: DurationsSchema.openapi({ description: 'from detection (when a finding of the ticket became act/attend) to acknowledgement (or resolution)' }),
    toFix: DurationsSchema.openapi({ description: 'from detection to the resolution that verification confirmed' }),
    toVerify: DurationsSchema.openapi({ description: 'from detection to verification by a later scan' }),
    sla: z.object({
      acknowledged: AttainmentSchema.openapi({ description: 'acknowledged by ack_due_at' }),
      fixed: AttainmentSchema.openapi({ description: 'resolved, and verified, by the due date (moved by risk-acceptance pauses)' }),
    }),
    open: z.number().int().openapi({ description: 'not resolved yet' }),
    overdue: z.number().int().openapi({ description: 'open and past the due date' }),
    unacknowledgedOverdue: z.number().int().openapi({ description: 'open, unacknowledged and past the acknowledgement deadline' }),
    awaitingVerification: z.number().int().openapi({ description: 'resolved, waiting for the next scan' }),
    adequacy: z.object({
      resolved: z.number().int().openapi({ description: 'tickets ever resolved (awaiting verification, verified, or re-opened)' }),
      verified: z.number().int(),
      reopened: z.number().int().openapi({ description: 're-opened after a failed verification (a lower bound: seen through a later escalation cycle)' }),
      failedShare: z.number().nullable().openapi({ description: 'reopened / resolved (null: nothing resolved)' }),
    }),
  })
  .openapi('ResponseMetrics');

const ResponseReportSchema = z
  .object({
    asOf: z.string(),
    groupBy: z.enum(RESPONSE_GROUPS).nullable(),
    since: z.string().nullable(),
    until: z.string().nullable(),
    total: ResponseMetricsSchema,
    groups: z.array(ResponseMetricsSchema.extend({ key: z.string().nullable().openapi({ description: 'null: no owner, no business service' }) })),
  })
  .openapi('ResponseReport');

/** One ticket's response, the same definitions as the metrics. */
export const TicketResponseSchema = z
  .object({
    detectedAt: z.string(),
    detectedFrom: z.enum(['became-urgent', 'first-seen', 'ticket-created']).openapi({ description: 'a score change into act/attend; else a finding first seen; else the ticket created' }),
    acknowledgedAt: z.string().nullable(),
    fixedAt: z.string().nullable().openapi({ description: "the owner's resolution" }),
    verifiedAt: z.string().nullable().openapi({ description: 'when the read model recorded the verification (seconds after the verifying scan)' }),
    hoursToAcknowledge: z.number().nullable(),
    hoursToFix: z.number().nullable(),
    hoursToVerify: z.number().nullable(),
    ackDueAt: z.string(),
    dueAt: z.string().openapi({ description: 'the due date moved by the time risk acceptances paused the SLA' }),
    slaPausedHours: z.number(),
    acknowledgedWithinSla: z.boolean().nullable().openapi({ description: 'null: not decided yet' }),
    fixedWithinSla: z.boolean().nullable().openapi({ description: 'null: not decided yet (deadline ahead, or resolved in time and waiting for verification)' }),
    reopened: z.boolean().openapi({ description: 're-opened after a failed verification' }),
    overdue: z.boolean(),
  })
  .openapi('TicketResponse');

const ScopeName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);
// A date alone is midnight UTC.
const DateTime = z.union([z.string().date(), z.string().datetime({ offset: true })]);

const responseRoute = createRoute({
  method: 'get',
  path: '/api/v1/metrics/response',
  summary: 'Was the response fast and adequate? Detection to acknowledgement, fix and verification (median, p90), SLA attainment, overdue work and failed verifications',
  request: {
    query: z.object({
      groupBy: z.enum(RESPONSE_GROUPS).optional(),
      since: DateTime.optional().openapi({ description: 'tickets detected at or after this instant (ISO 8601; a date alone is midnight UTC)' }),
      until: DateTime.optional().openapi({ description: 'tickets detected before this instant' }),
      scope: ScopeName.optional().openapi({ description: "a saved scope, applied to each ticket's asset" }),
    }),
  },
  responses: {
    200: { description: 'The metrics', content: { 'application/json': { schema: ResponseReportSchema } } },
    400: { description: 'A bad window or grouping; details.field names it', content: { 'application/json': { schema: ErrorSchema } } },
    404: { description: 'Unknown scope', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const responseRoutes = new OpenAPIHono<AppEnv>().openapi(responseRoute, async (c) => {
  const sql = c.get('deps').database.sql;
  const { scope: scopeName, since, until, groupBy } = c.req.valid('query');
  const scope = scopeName ? await getScope(sql, scopeName) : undefined;
  if (scopeName && !scope) return problem(c, 404, 'not_found', `no scope named ${scopeName}`);
  try {
    const report = await responseMetrics(sql, {
      ...(groupBy ? { groupBy } : {}),
      ...(since ? { since: new Date(since) } : {}),
      ...(until ? { until: new Date(until) } : {}),
      ...(scope ? { scope: scope.selector } : {}),
    });
    return c.json(report, 200);
  } catch (err) {
    if (err instanceof ResponseQueryError) return problem(c, 400, 'invalid_request', err.message, { field: err.field });
    throw err;
  }
});
