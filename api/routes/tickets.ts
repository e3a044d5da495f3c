import { WorkflowNotFoundError } from '@temporalio/client';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getTicket, listTickets, ticketWithin } from '../../db/read-models/inventory.js';
import { ACTIONS } from '../../mobilization/actions.js';
import { ticketDetail } from '../../mobilization/plan.js';
import { acceptTicketRisk, acknowledgeTicket, resolveTicket } from '../../mobilization/ticket-actions.js';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { ITSM_NAMES } from '../../mobilization/itsm/index.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { noteChange } from '../audit.js';
import { ErrorSchema, KeysetQuery, keysetPage } from './schemas.js';
import { CursorError } from '../../db/read-models/keyset.js';
import { TicketResponseSchema } from './response-metrics.js';
import { ticketResponse } from '../../validation/response.js';
import { actorName } from '../../access/identities.js';
import { ticketReach } from '../../access/roles.js';

/** Owners and managers reach some tickets only; outside their reach a ticket is answered as unknown. */
async function withinReach(c: Context<AppEnv>, key: string, permission: 'tickets.read' | 'tickets.act'): Promise<boolean> {
  const reach = ticketReach(c.get('principal'), permission);
  return reach.kind === 'all' || ticketWithin(c.get('deps').database.sql, key, reach);
}

const TicketStateEnum = z.enum(['orphaned', 'opening', 'new', 'in_progress', 'on_hold', 'risk_accepted', 'resolved', 'closed', 'verified']);

const TicketSchema = z
  .object({
    key: z.string(),
    workflowId: z.string(),
    externalNumber: z.string().nullable(),
    externalSysId: z.string().nullable(),
    itsm: z.enum(ITSM_NAMES).openapi({ description: 'the ITSM holding the ticket' }),
    externalUrl: z.string().nullable().openapi({ description: 'where a person opens the ticket in its ITSM (set when it opens)' }),
    state: z.string().openapi({ description: 'one of the `state` filter values' }),
    owner: z.string().nullable(),
    tier: z.string(),
    asset: z.object({ key: z.string(), name: z.string() }),
    fix: z.object({ component: z.string(), fixedVersion: z.string() }).openapi({ description: "the action's subject (a package, `OS packages`, a manifest, a product) and the one version asked for ('' when lines differ)" }),
    action: z.enum(ACTIONS).openapi({ description: 'the remediation action: one ticket per thing an owner does' }),
    orphanReason: z.string().nullable().openapi({ description: 'why the ticket is in the orphan queue (no owner, owner unknown or inactive in the ITSM); null when owned' }),
    dueAt: z.string(),
    ackDueAt: z.string(),
    escalationLevel: z.number().int().openapi({ description: 'the current climb: 0 once acknowledged or resolved' }),
    escalationPeak: z.number().int().openapi({ description: 'the highest level ever escalated to; kept after acknowledgement' }),
    escalationCount: z.number().int().openapi({ description: 'escalations in all, every phase and re-opening' }),
    lastEscalatedAt: z.string().nullable(),
    findingCount: z.number().int(),
    acknowledgedAt: z.string().nullable(),
    resolvedAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Ticket');

const NeutralState = z.enum(['new', 'in_progress', 'on_hold', 'resolved', 'closed']);

/** The remediation workflow's state, as its `status` query and its Updates answer it. */
const RemediationStateSchema = z
  .object({
    phase: z.enum(['opening', 'awaiting-acknowledgement', 'awaiting-resolution', 'risk-accepted', 'verifying', 'resolved']),
    ticket: z.object({ sysId: z.string(), number: z.string() }).optional(),
    assignee: z.string().optional(),
    reassignTo: z.string().optional(),
    tier: z.string(),
    findingCount: z.number().int(),
    ackDueAt: z.string(),
    dueAt: z.string(),
    escalationLevel: z.number().int(),
    lastEscalationAt: z.string().optional(),
    topOfChainReached: z.boolean(),
    escalationPeak: z.number().int(),
    escalationCount: z.number().int(),
    acknowledgedAt: z.string().optional(),
    acknowledgedBy: z.string().optional(),
    resolvedAt: z.string().optional(),
    resolvedBy: z.string().optional(),
    verifiedAt: z.string().optional(),
    reopened: z.number().int(),
    cycle: z.number().int(),
    riskAcceptance: z
      .object({
        requester: z.string(),
        approver: z.string(),
        reason: z.string(),
        expiresAt: z.string(),
        acceptedAt: z.string(),
        resumePhase: z.enum(['awaiting-acknowledgement', 'awaiting-resolution']),
      })
      .optional(),
    lastSequence: z.number().int(),
    outbox: z.array(z.object({ kind: z.string(), state: z.union([NeutralState, z.literal('')]), workNote: z.string(), at: z.string() })),
    seenEvents: z.array(z.string()),
    droppedEvents: z
      .array(z.object({ eventId: z.string(), kind: z.enum(['invalid', 'stale']), reason: z.string(), droppedAt: z.string() }))
      .optional()
      .openapi({ description: 'the latest ticket events not applied: invalid (no webhook would send them) or stale (not newer than the version applied)' }),
  })
  .openapi('RemediationState');

const TicketDetailSchema = TicketSchema.extend({
  lines: z
    .array(z.object({ package: z.string(), packages: z.array(z.string()), installed: z.string(), target: z.string().optional(), issueIds: z.array(z.string()) }))
    .openapi({ description: 'what to change: one line per package (or source package, product) and installed version, with the version that fits it' }),
  riskAcceptances: z.array(
    z.object({ requester: z.string(), approver: z.string(), reason: z.string(), acceptedAt: z.string(), expiresAt: z.string(), endedAt: z.string().nullable() }),
  ),
  escalations: z.array(
    z.object({ phase: z.string(), level: z.number().int(), notifiedUser: z.string().nullable(), notifiedName: z.string().nullable(), reason: z.string(), at: z.string() }),
  ),
  workflow: z
    .union([RemediationStateSchema, z.object({ unavailable: z.string() })])
    .nullable()
    .openapi({ description: 'the live state of its workflow (null when the workflow no longer exists)' }),
  response: TicketResponseSchema.openapi({ description: 'how fast and how well the response went, against the SLA' }),
}).openapi('TicketDetail');

export const listTicketsRoute = createRoute({
  method: 'get',
  path: '/api/v1/tickets',
  summary: 'Golden tickets: key, ITSM number, state, owner, due date, escalation level and history, number of findings',
  request: {
    query: KeysetQuery.extend({
      state: TicketStateEnum.optional(),
      owner: z.string().optional(),
      action: z.enum(ACTIONS).optional(),
      orphaned: z.enum(['true', 'false']).optional().openapi({ description: 'true: the orphan queue only' }),
      escalated: z.enum(['true', 'false']).optional().openapi({ description: 'true: every ticket ever escalated, acknowledged or not; false: never escalated' }),
      minPeak: z.coerce.number().int().min(1).optional().openapi({ description: 'tickets once escalated to this level or higher' }),
      overdue: z.enum(['true', 'false']).optional().openapi({ description: 'true: past the due date and not resolved, closed or verified' }),
    }),
  },
  responses: {
    200: { description: 'A page of golden tickets, earliest due first', content: { 'application/json': { schema: keysetPage(TicketSchema).openapi('TicketPage') } } },
    400: { description: 'Invalid filter or cursor (`after`)', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const getTicketRoute = createRoute({
  method: 'get',
  path: '/api/v1/tickets/{key}',
  summary: 'One golden ticket with its escalations, its risk acceptances and the live state of its remediation workflow',
  request: { params: z.object({ key: z.string().min(1) }) },
  responses: {
    200: { description: 'The ticket', content: { 'application/json': { schema: TicketDetailSchema } } },
    404: { description: 'Unknown ticket', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const KeyParam = z.object({ key: z.string().min(1) });
const IdempotencyHeader = z.object({ 'idempotency-key': z.string().min(1).max(200).optional() });
const ActorBody = z.object({
  by: z
    .string()
    .min(1)
    .optional()
    .describe("Who acts, as a display name: kept only with the bootstrap token (CTEM_API_TOKEN); an issued token records its identity's name"),
  note: z.string().max(2000).optional(),
});
const RiskAcceptanceBody = z.object({
  requester: z.string().min(1).optional().describe("Who asked for it (default: the ticket's owner)"),
  approver: z
    .string()
    .min(1)
    .optional()
    .describe('The approver is the caller: an issued token may omit this or name its own identity; the bootstrap token names the approver here'),
  reason: z.string().min(1).max(4000),
  expiresAt: z.string().datetime({ offset: true }).describe('ISO date-time; the ticket re-opens then'),
});
const actionResponses = {
  200: { description: 'The new state of the remediation workflow', content: { 'application/json': { schema: RemediationStateSchema } } },
  404: { description: 'Unknown ticket', content: { 'application/json': { schema: ErrorSchema } } },
  409: { description: 'Refused: the message says why (already resolved, risk-accepted...)', content: { 'application/json': { schema: ErrorSchema } } },
};
const riskAcceptanceResponses = {
  ...actionResponses,
  422: {
    description: 'The risk acceptance breaks a rule (reason of 10+ characters, expiry in the future and at most 365 days ahead, approver other than the requester); details.field names the field',
    content: { 'application/json': { schema: ErrorSchema } },
  },
};
const actionRoute = <R extends typeof actionResponses>(path: string, summary: string, body: z.ZodTypeAny, responses: R) =>
  createRoute({
    method: 'post',
    path: `/api/v1/tickets/{key}/${path}`,
    summary,
    request: { params: KeyParam, headers: IdempotencyHeader, body: { content: { 'application/json': { schema: body } }, required: true } },
    responses,
  });

export const acknowledgeTicketRoute = actionRoute('acknowledge', 'Acknowledge a golden ticket (stops the acknowledgement escalation)', ActorBody, actionResponses);
export const resolveTicketRoute = actionRoute('resolve', 'Resolve a golden ticket; a later scan of the asset verifies the fix', ActorBody, actionResponses);
export const riskAcceptanceRoute = actionRoute(
  'risk-acceptance',
  'Accept the risk until an expiry: the SLA pauses, the expiry re-opens the ticket',
  RiskAcceptanceBody,
  riskAcceptanceResponses,
);

/** A ticket action as the audit trail records it: the stored state before, the workflow's answer after. */
const ticketChange = (t: { state: string; acknowledgedAt: string | null; resolvedAt: string | null }, after: RemediationState) => ({
  before: { state: t.state, acknowledgedAt: t.acknowledgedAt, resolvedAt: t.resolvedAt },
  after: { phase: after.phase, acknowledgedBy: after.acknowledgedBy ?? null, resolvedBy: after.resolvedBy ?? null, riskAcceptance: after.riskAcceptance ?? null },
});

export const ticketRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listTicketsRoute, async (c) => {
    const { orphaned, escalated, overdue, ...query } = c.req.valid('query');
    const flags = {
      ...(orphaned ? { orphaned: orphaned === 'true' } : {}),
      ...(escalated ? { escalated: escalated === 'true' } : {}),
      ...(overdue ? { overdue: overdue === 'true' } : {}),
    };
    try {
      const reach = ticketReach(c.get('principal'));
      return c.json(await listTickets(c.get('deps').database.sql, { ...query, ...flags, ...(reach.kind === 'some' ? { reach } : {}) }), 200);
    } catch (err) {
      if (err instanceof CursorError) return problem(c, 400, 'invalid_request', `after: ${err.message}`, { field: 'after' });
      throw err;
    }
  })
  .openapi(getTicketRoute, async (c) => {
    const deps = c.get('deps');
    const ticket = await getTicket(deps.database.sql, c.req.valid('param').key);
    if (!ticket || !(await withinReach(c, ticket.key, 'tickets.read'))) return problem(c, 404, 'not_found', 'no such golden ticket');
    let workflow: RemediationState | { unavailable: string } | null = null;
    try {
      workflow = await deps.temporal.client.workflow.getHandle(ticket.workflowId).query(statusQuery);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) workflow = { unavailable: (err as Error).message };
    }
    const lines = (await ticketDetail(deps.database.sql, ticket.key))?.lines ?? [];
    const response = (await ticketResponse(deps.database.sql, ticket.key))!;
    return c.json({ ...ticket, lines, workflow, response }, 200);
  })
  .openapi(acknowledgeTicketRoute, async (c) => {
    const deps = c.get('deps');
    const { key } = c.req.valid('param');
    const ticket = await getTicket(deps.database.sql, key);
    if (!ticket || !(await withinReach(c, key, 'tickets.act'))) return problem(c, 404, 'not_found', 'no such golden ticket');
    const body = c.req.valid('json') as z.infer<typeof ActorBody>;
    const by = actorName(c.get('principal'), body.by);
    const result = await acknowledgeTicket(deps.temporal.client, key, { by, via: 'api', ...(body.note ? { note: body.note } : {}) }, c.req.valid('header')['idempotency-key']);
    if (result.ok) noteChange(c, ticketChange(ticket, result.state));
    return result.ok ? c.json(result.state, 200) : problem(c, 409, result.reason === 'refused' ? 'refused' : 'not_running', result.message);
  })
  .openapi(resolveTicketRoute, async (c) => {
    const deps = c.get('deps');
    const { key } = c.req.valid('param');
    const ticket = await getTicket(deps.database.sql, key);
    if (!ticket || !(await withinReach(c, key, 'tickets.act'))) return problem(c, 404, 'not_found', 'no such golden ticket');
    const body = c.req.valid('json') as z.infer<typeof ActorBody>;
    const by = actorName(c.get('principal'), body.by);
    const result = await resolveTicket(deps.temporal.client, key, { by, via: 'api', ...(body.note ? { note: body.note } : {}) }, c.req.valid('header')['idempotency-key']);
    if (result.ok) noteChange(c, ticketChange(ticket, result.state));
    return result.ok ? c.json(result.state, 200) : problem(c, 409, result.reason === 'refused' ? 'refused' : 'not_running', result.message);
  })
  .openapi(riskAcceptanceRoute, async (c) => {
    const deps = c.get('deps');
    const { key } = c.req.valid('param');
    const ticket = await getTicket(deps.database.sql, key);
    if (!ticket) return problem(c, 404, 'not_found', 'no such golden ticket');
    const body = c.req.valid('json') as z.infer<typeof RiskAcceptanceBody>;
    const principal = c.get('principal');
    // The approver is whoever holds risk.accept and calls; naming someone else is refused, not ignored.
    const approver = actorName(principal, body.approver);
    if (body.approver && body.approver.trim().toLowerCase() !== approver.toLowerCase() && body.approver.trim().toLowerCase() !== principal.email?.toLowerCase()) {
      return problem(c, 422, 'invalid_risk_acceptance', `The approver is the authenticated identity (${approver}); omit approver or name yourself.`, { field: 'approver' });
    }
    const requester = body.requester ?? ticket.owner ?? '';
    const acceptance = { requester, approver, reason: body.reason, expiresAt: body.expiresAt };
    const result = await acceptTicketRisk(deps.temporal.client, key, acceptance, c.req.valid('header')['idempotency-key']);
    if (result.ok) noteChange(c, ticketChange(ticket, result.state));
    if (result.ok) return c.json(result.state, 200);
    // The workflow's validator is the authority on the rules: its refusal, with the field, is the answer.
    if (result.field) return problem(c, 422, 'invalid_risk_acceptance', result.message, { field: result.field });
    return problem(c, 409, result.reason === 'refused' ? 'refused' : 'not_running', result.message);
  });
