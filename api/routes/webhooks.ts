import { WorkflowNotFoundError } from '@temporalio/client';
import { Hono } from 'hono';
import { z } from 'zod';
import { recordTicketEvent, ticketEventSeen } from '../../mobilization/ticket-events.js';
import { remediationWorkflowId } from '../../mobilization/golden-tickets.js';
import { serviceNowStates } from '../../mobilization/itsm/index.js';
import { verifyWebhookSignature } from '../../mobilization/itsm/servicenow/webhook-signature.js';
import { ticketEventSignal } from '../../workflows/remediation/messages.js';
import { tokensMatch } from '../auth.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';

const ServiceNowEvent = z.object({
  event_id: z.string().min(1),
  table: z.string().optional(),
  sys_id: z.string().optional(),
  number: z.string().optional(),
  state: z.string().min(1),
  correlation_id: z.string().optional().default(''),
  sys_updated_on: z.string().optional(),
  /** The record's version: lets the workflow drop an event that arrives after a newer one. */
  sys_mod_count: z.union([z.string(), z.number()]).optional(),
  /** sys_id of the assignee: a change is a reassignment. */
  assigned_to: z.string().optional(),
});

/**
 * Inbound ServiceNow business-rule webhook: authenticated by an HMAC-SHA256 signature of the body
 * (X-ServiceNow-Signature) or the API bearer token, deduplicated by event id, turned into a signal.
 */
export const webhookRoutes = new Hono<AppEnv>().post('/api/v1/webhooks/servicenow', async (c) => {
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
    await deps.temporal.client.workflow.getHandle(remediationWorkflowId(event.correlation_id)).signal(ticketEventSignal, {
      eventId: event.event_id,
      ...(state ? { state } : {}),
      at: new Date().toISOString(),
      ...(event.sys_mod_count !== undefined && event.sys_mod_count !== '' && Number.isFinite(Number(event.sys_mod_count))
        ? { sequence: Number(event.sys_mod_count) }
        : {}),
      ...(event.assigned_to ? { assignedTo: event.assigned_to } : {}),
    });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return c.json({ status: 'ignored', reason: 'no open remediation for this ticket' }, 200);
    throw err;
  }
  await recordTicketEvent(deps.database.db, { eventId: event.event_id, ticketKey: event.correlation_id, state: event.state, payload: event });
  return c.json({ status: 'accepted' }, 202);
});
