import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  acceptRiskUpdate,
  acknowledgeUpdate,
  resolveUpdate,
  RISK_ACCEPTANCE_REFUSED,
  type RemediationState,
  type RiskAcceptance,
  type RiskAcceptanceRefusalDetails,
  type TicketActor,
} from '../workflows/remediation/messages.js';
import type { RiskAcceptanceField } from './risk-acceptance.js';
import { remediationWorkflowId } from './golden-tickets.js';

// What the API and the Slack bot do to a golden ticket: a workflow Update that validates first and
// answers with the new state, or says in one sentence why it was refused.

export type TicketActionResult =
  | { ok: true; state: RemediationState }
  | { ok: false; reason: 'refused' | 'not-running'; message: string; /** The input field at fault (a risk acceptance's rules). */ field?: RiskAcceptanceField };

/** The field a refusal names, when the workflow's validator said which one was wrong. */
function refusedField(cause: unknown): RiskAcceptanceField | undefined {
  if (!(cause instanceof ApplicationFailure) || cause.type !== RISK_ACCEPTANCE_REFUSED) return undefined;
  return (cause.details?.[0] as RiskAcceptanceRefusalDetails | undefined)?.field;
}

type Action = { kind: 'acknowledge'; actor: TicketActor } | { kind: 'resolve'; actor: TicketActor } | { kind: 'acceptRisk'; acceptance: RiskAcceptance };

/** `updateId` makes a retried request one Update (e.g. an Idempotency-Key header or a Slack action id). */
export async function runTicketAction(client: Client, ticketKey: string, action: Action, updateId?: string): Promise<TicketActionResult> {
  const handle = client.workflow.getHandle(remediationWorkflowId(ticketKey));
  const options = updateId ? { updateId } : {};
  try {
    const state =
      action.kind === 'acknowledge'
        ? await handle.executeUpdate(acknowledgeUpdate, { args: [action.actor], ...options })
        : action.kind === 'resolve'
          ? await handle.executeUpdate(resolveUpdate, { args: [action.actor], ...options })
          : await handle.executeUpdate(acceptRiskUpdate, { args: [action.acceptance], ...options });
    return { ok: true, state };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const field = refusedField(err.cause);
      return { ok: false, reason: 'refused', message: err.cause?.message ?? err.message, ...(field ? { field } : {}) };
    }
    if (err instanceof WorkflowNotFoundError) return { ok: false, reason: 'not-running', message: `${ticketKey} has no running remediation (already verified and closed)` };
    throw err;
  }
}

export const acknowledgeTicket = (client: Client, ticketKey: string, actor: TicketActor, updateId?: string) =>
  runTicketAction(client, ticketKey, { kind: 'acknowledge', actor }, updateId);
export const resolveTicket = (client: Client, ticketKey: string, actor: TicketActor, updateId?: string) =>
  runTicketAction(client, ticketKey, { kind: 'resolve', actor }, updateId);
export const acceptTicketRisk = (client: Client, ticketKey: string, acceptance: RiskAcceptance, updateId?: string) =>
  runTicketAction(client, ticketKey, { kind: 'acceptRisk', acceptance }, updateId);
