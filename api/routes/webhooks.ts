import { WorkflowNotFoundError } from '@temporalio/client';
import { Hono, type Context } from 'hono';
import { appendAudit } from '../../access/audit-trail.js';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { recordTicketEvent, ticketEventSeen, ticketKeyOfExternal } from '../../mobilization/ticket-events.js';
import { jiraTimeMs, type StatusCategoryKey } from '../../mobilization/itsm/jira/client.js';
import { fromJiraStatus } from '../../mobilization/itsm/jira/states.js';
import { verifyJiraWebhookSignature } from '../../mobilization/itsm/jira/webhook-signature.js';
import { remediationWorkflowId } from '../../mobilization/golden-tickets.js';
import { serviceNowStates } from '../../mobilization/itsm/index.js';
import { verifyWebhookSignature } from '../../mobilization/itsm/servicenow/webhook-signature.js';
import { TICKET_EVENT_LIMITS, ticketEventSignal } from '../../workflows/remediation/messages.js';
import { tokensMatch } from '../auth.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { itsmActorName } from '../../access/identities.js';

// The workflow refuses longer strings itself (a raw signal meets the same bounds): refused here first.
const MAX_STRING = TICKET_EVENT_LIMITS.maxStringLength;

const ServiceNowEvent = z.object({
  event_id: z.string().min(1).max(MAX_STRING),
  table: z.string().optional(),
  sys_id: z.string().optional(),
  number: z.string().optional(),
  state: z.string().min(1),
  correlation_id: z.string().optional().default(''),
  sys_updated_on: z.string().optional(),
  /**
   * The record's version: lets the workflow drop an event that arrives after a newer one. ServiceNow
   * counts updates in a 32-bit integer; anything else would make every later event look stale.
   */
  sys_mod_count: z
    .union([z.string().regex(/^\d{1,10}$/, 'a whole number of updates'), z.number().int().nonnegative()])
    .refine((v) => Number(v) <= 2 ** 31 - 1, 'at most 2147483647 (a 32-bit count of updates)')
    .optional()
    .or(z.literal('')),
  /** sys_id of the assignee: a change is a reassignment. */
  assigned_to: z.string().max(MAX_STRING).optional(),
  /** user_name of whoever made the change: recorded as the actor (the identity of that name when there is one). */
  sys_updated_by: z.string().max(200).optional(),
});

/**
 * Inbound ServiceNow business-rule webhook: authenticated by an HMAC-SHA256 signature of the body
 * (X-ServiceNow-Signature) or the API bearer token, deduplicated by event id, turned into a signal.
 */
export const webhookRoutes = new Hono<AppEnv>();

/** A ticket change the ITSM told us about, in the audit trail: the ITSM user as a service actor. */
async function auditItsmEvent(c: Context<AppEnv>, itsm: 'servicenow' | 'jira', user: string | undefined, ticketKey: string, after: Record<string, unknown>): Promise<void> {
  const name = user?.trim() || itsm;
  await appendAudit(c.get('deps').database.sql, {
    actor: { id: `${itsm}:${name}`, name, kind: 'service' },
    action: 'tickets.itsm-event',
    target: ticketKey,
    outcome: 'allowed',
    after: { itsm, ...after },
    requestId: c.get('requestId') ?? null,
    channel: 'webhook',
  });
}

webhookRoutes.post('/api/v1/webhooks/servicenow', async (c) => {
  const deps = c.get('deps');
  const body = await c.req.text();
  const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  const signed = deps.serviceNowWebhookSecret
    ? verifyWebhookSignature(body, c.req.header('x-servicenow-signature'), deps.serviceNowWebhookSecret)
    : false;
  if (!signed && !(bearer && tokensMatch(bearer, deps.apiToken))) {
    return problem(c, 401, 'unauthorized', 'missing or invalid X-ServiceNow-Signature');
  }
  let parsed;
  try {
    parsed = ServiceNowEvent.safeParse(JSON.parse(body));
  } catch {
    return problem(c, 400, 'invalid_json', 'the body is not JSON');
  }
  if (!parsed.success) return problem(c, 400, 'invalid_event', 'not a ticket event', parsed.error.issues);
  const event = parsed.data;
  if (!event.correlation_id) return c.json({ status: 'ignored', reason: 'not a CTEM ticket' }, 200);
  if (await ticketEventSeen(deps.database.db, event.event_id)) return c.json({ status: 'duplicate' }, 200);
  try {
    // Signal first, record after: a failed signal leaves the event unrecorded, so ServiceNow's retry is not lost.
    // The workflow hears the neutral state; a code without one (Canceled) still carries version and assignee.
    const state = serviceNowStates.fromItsm(event.state);
    const actor = event.sys_updated_by ? await itsmActorName(deps.database.sql, { userName: event.sys_updated_by }) : undefined;
    await deps.temporal.client.workflow.getHandle(remediationWorkflowId(event.correlation_id)).signal(ticketEventSignal, {
      eventId: event.event_id,
      ...(state ? { state } : {}),
      at: new Date().toISOString(),
      ...(event.sys_mod_count !== undefined && event.sys_mod_count !== '' ? { sequence: Number(event.sys_mod_count) } : {}),
      ...(event.assigned_to ? { assignedTo: event.assigned_to } : {}),
      ...(actor ? { actor } : {}),
    });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return c.json({ status: 'ignored', reason: 'no open remediation for this ticket' }, 200);
    throw err;
  }
  // Before the event is marked seen: if the audit append fails, ServiceNow's retry records it.
  await auditItsmEvent(c, 'servicenow', event.sys_updated_by, event.correlation_id, { eventId: event.event_id, state: event.state, assignedTo: event.assigned_to ?? null });
  await recordTicketEvent(deps.database.db, { eventId: event.event_id, ticketKey: event.correlation_id, state: event.state, payload: event });
  return c.json({ status: 'accepted' }, 202);
});

/** Jira sends whole issues; a webhook body beyond this is not one of ours. */
const JIRA_WEBHOOK_MAX_BYTES = 1024 * 1024;

const JiraIssueEvent = z.object({
  webhookEvent: z.string().min(1),
  timestamp: z.number().optional(),
  issue: z
    .object({
      id: z.string().min(1),
      key: z.string().min(1),
      fields: z.object({
        // Category keys are new, indeterminate and done; a status without a category says "undefined".
        status: z.object({ name: z.string(), statusCategory: z.object({ key: z.string().optional() }).passthrough().optional() }),
        assignee: z.object({ accountId: z.string() }).passthrough().nullable().optional(),
        updated: z.string().optional(),
      }).passthrough(),
    })
    .passthrough()
    .optional(),
  changelog: z.object({ id: z.string().optional(), items: z.array(z.object({ field: z.string() }).passthrough()) }).optional(),
  /** Who made the change (e-mail only when the account shares it). */
  user: z.object({ accountId: z.string().optional(), emailAddress: z.string().optional(), displayName: z.string().optional() }).passthrough().optional(),
});

/** The issue changes the remediation workflow hears about; comments, links and the rest are not ticket events. */
const TICKET_FIELDS = new Set(['status', 'assignee']);

/**
 * Inbound Jira Cloud admin webhook: the raw body is checked against X-Hub-Signature (HMAC-SHA256
 * keyed on the webhook's secret) before it is parsed, deduplicated by X-Atlassian-Webhook-Identifier,
 * and a status or assignee change becomes the same ticket event signal ServiceNow's webhook sends.
 */
webhookRoutes.post(
  '/api/v1/webhooks/jira',
  bodyLimit({
    maxSize: JIRA_WEBHOOK_MAX_BYTES,
    onError: (c) => {
      // Refused before the body is read: the rest of it must not be taken for the next request.
      c.header('Connection', 'close');
      return problem(c, 413, 'too_large', `webhook bodies are limited to ${JIRA_WEBHOOK_MAX_BYTES} bytes`);
    },
  }),
  async (c) => {
    const deps = c.get('deps');
    if (!deps.jira) return problem(c, 404, 'not_found', 'Jira is not the ITSM here (CTEM_ITSM=jira)');
    const body = await c.req.text();
    if (!verifyJiraWebhookSignature(body, c.req.header('x-hub-signature'), deps.jira.webhookSecret)) {
      return problem(c, 401, 'unauthorized', 'missing or invalid X-Hub-Signature');
    }
    let parsed;
    try {
      parsed = JiraIssueEvent.safeParse(JSON.parse(body));
    } catch {
      return problem(c, 400, 'invalid_json', 'the body is not JSON');
    }
    if (!parsed.success) return problem(c, 400, 'invalid_event', 'not a Jira webhook event', parsed.error.issues);
    const event = parsed.data;
    const issue = event.issue;
    if (!issue || (event.webhookEvent !== 'jira:issue_updated' && event.webhookEvent !== 'jira:issue_created')) {
      return c.json({ status: 'ignored', reason: `${event.webhookEvent} is not a ticket change` }, 200);
    }
    if (event.webhookEvent === 'jira:issue_updated' && !event.changelog?.items.some((i) => TICKET_FIELDS.has(i.field))) {
      return c.json({ status: 'ignored', reason: 'no status or assignee change' }, 200);
    }
    // Jira redelivers with the same identifier; without one, the changelog entry names the change.
    const identifier = c.req.header('x-atlassian-webhook-identifier');
    const eventId = `jira:${identifier ?? `${issue.id}:${event.changelog?.id ?? event.timestamp ?? issue.fields.updated ?? ''}`}`;
    const ticketKey = await ticketKeyOfExternal(deps.database.db, 'jira', issue.id);
    if (!ticketKey) return c.json({ status: 'ignored', reason: 'not a CTEM ticket' }, 200);
    if (await ticketEventSeen(deps.database.db, eventId)) return c.json({ status: 'duplicate' }, 200);
    const status = issue.fields.status;
    const state = fromJiraStatus({ name: status.name, statusCategory: { key: (status.statusCategory?.key ?? '') as StatusCategoryKey, name: '' } }, deps.jira.statusMap);
    const sequence = issue.fields.updated ? jiraTimeMs(issue.fields.updated) : 0;
    // The update time orders events: one far ahead would hide every later change (the workflow refuses it too).
    if (sequence > Date.now() + TICKET_EVENT_LIMITS.maxClockSkewMs) {
      return problem(c, 400, 'invalid_event', `issue.fields.updated ${issue.fields.updated} is more than a day ahead of this server's clock`);
    }
    const assignedTo = issue.fields.assignee?.accountId;
    const actor = event.user ? await itsmActorName(deps.database.sql, { email: event.user.emailAddress, displayName: event.user.displayName ?? event.user.accountId }) : undefined;
    try {
      // Signal first, record after, as for ServiceNow: a failed signal leaves Jira's retry to be heard.
      await deps.temporal.client.workflow.getHandle(remediationWorkflowId(ticketKey)).signal(ticketEventSignal, {
        eventId,
        ...(state ? { state } : {}),
        at: new Date().toISOString(),
        ...(sequence ? { sequence } : {}),
        ...(assignedTo ? { assignedTo } : {}),
        ...(actor ? { actor } : {}),
      });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return c.json({ status: 'ignored', reason: 'no open remediation for this ticket' }, 200);
      throw err;
    }
    await auditItsmEvent(c, 'jira', event.user?.emailAddress ?? event.user?.displayName ?? event.user?.accountId, ticketKey, { eventId, state: status.name, assignedTo: assignedTo ?? null });
    await recordTicketEvent(deps.database.db, {
      eventId,
      ticketKey,
      state: issue.fields.status.name,
      payload: { webhookEvent: event.webhookEvent, issue: { id: issue.id, key: issue.key }, status: issue.fields.status.name, assignee: assignedTo ?? null, updated: issue.fields.updated ?? null, changelog: event.changelog ?? null },
    });
    return c.json({ status: 'accepted' }, 202);
  },
);
