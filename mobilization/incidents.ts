import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../db/client.js';
import type { EscalationNotice } from './notifier.js';
import { ticketDetail } from './plan.js';
import { endRiskAcceptance, markEscalationNoted, recordEscalation, recordRiskAcceptance, setTicketOpened, setTicketOwner } from './store.js';
import { escalationNotice, escalationReason, escalationWorkNote, incidentText, urgencyOf, type EscalationStep } from './ticket-text.js';
import { serviceNowStates, type TicketState } from './itsm/index.js';
import type { IncidentFields, ServiceNowClient } from './itsm/servicenow/client.js';
import { ticketStateOf, type RemediationState, type TicketChange, type TicketEvent } from '../workflows/remediation/messages.js';

// A golden ticket's life in the ITSM: open its incident, note escalations on it, write the
// workflow's changes to it and read it back. Every step is idempotent (incidents are found by
// correlation id, escalations recorded once per ticket, phase, level and cycle), so a retried
// activity repeats nothing. Failures a retry cannot cure are non-retryable ApplicationFailures.

export interface IncidentDeps {
  database: Database;
  serviceNow: ServiceNowClient;
}

const person = (u: { user_name: string; name: string; email: string }) => ({ userName: u.user_name, name: u.name, ...(u.email ? { email: u.email } : {}) });

async function openTicketDetail(database: Database, ticketKey: string) {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t?.externalSysId) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} is not open`, 'NotOpen');
  return { ...t, externalSysId: t.externalSysId };
}

/** Opens the incident; keyed by correlation_id, so a retry finds the incident instead of opening a second. */
export async function openIncident({ database, serviceNow }: IncidentDeps, ticketKey: string): Promise<{ sysId: string; number: string; assignedTo?: string }> {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} does not exist`, 'NotFound');
  if (!t.owner) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} has no owner`, 'NoOwner');
  const owner = await serviceNow.getUser(t.owner);
  const incident = await serviceNow.createIncident({
    correlation_id: ticketKey,
    correlation_display: 'CTEM golden ticket',
    ...incidentText(t),
    ...(owner ? { assigned_to: owner.sys_id } : {}),
    urgency: urgencyOf(t.tier),
    impact: urgencyOf(t.tier),
    category: 'security',
  });
  await setTicketOpened(database.db, ticketKey, incident.sys_id, incident.number);
  return { sysId: incident.sys_id, number: incident.number, ...(incident.assigned_to ? { assignedTo: incident.assigned_to } : {}) };
}

/**
 * Escalates to the owner's `level`-th manager: the escalation recorded once, a work note on the
 * incident and the manager on its watch list (once). Returns the notice for the manager, for the
 * caller to deliver, or that the chain has no one left to notify.
 */
export async function escalateOnIncident(
  { database, serviceNow }: IncidentDeps,
  step: EscalationStep,
): Promise<{ notified: { userName: string; name: string } | null; topOfChainReached: boolean; notice?: EscalationNotice }> {
  const t = await openTicketDetail(database, step.ticketKey);
  if (!t.owner) throw ApplicationFailure.nonRetryable(`golden ticket ${step.ticketKey} is not open`, 'NotOpen');
  const chain = await serviceNow.managementChain(t.owner);
  const target = chain[step.level];
  if (!target) return { notified: null, topOfChainReached: true };
  const manager = person(target);
  const escalation = await recordEscalation(database.db, {
    ticketKey: step.ticketKey,
    phase: step.phase,
    level: step.level,
    cycle: step.cycle ?? 0,
    notifiedUser: target.user_name,
    notifiedName: target.name,
    reason: escalationReason(step),
  });
  if (!escalation.ticketNotedAt) {
    const incident = await serviceNow.getIncident(t.externalSysId);
    const watchers = (incident?.watch_list ?? '').split(',').filter(Boolean);
    await serviceNow.updateIncident(t.externalSysId, {
      work_notes: escalationWorkNote(step, manager, t.owner),
      escalation: String(Math.min(step.level, 3)),
      watch_list: [...new Set([...watchers, target.sys_id])].join(','),
    });
    await markEscalationNoted(database.db, escalation.id);
  }
  return {
    notified: { userName: target.user_name, name: target.name },
    topOfChainReached: step.level >= chain.length - 1,
    notice: escalationNotice(step, t, { owner: person(chain[0]!), manager }, serviceNow.incidentUrl(t.externalSysId)),
  };
}

/**
 * Writes a change made outside the ITSM (an acknowledgement or resolution from the API or Slack, a
 * risk acceptance, its expiry, a verification) to the incident: its state and a work note. Returns
 * the record's version, so the workflow can ignore the webhook of its own write.
 */
export async function syncIncident(
  { database, serviceNow }: IncidentDeps,
  input: { ticketKey: string; change: TicketChange; riskAcceptance?: RemediationState['riskAcceptance'] },
): Promise<{ sequence: number; state?: TicketState; assignedTo: string }> {
  const t = await openTicketDetail(database, input.ticketKey);
  const at = new Date(input.change.at);
  if (input.change.kind === 'risk-accepted' && input.riskAcceptance) {
    const r = input.riskAcceptance;
    // A renewal replaces the acceptance it extends.
    await endRiskAcceptance(database.db, input.ticketKey, at, new Date(r.expiresAt));
    await recordRiskAcceptance(database.db, {
      ticketKey: input.ticketKey,
      requester: r.requester,
      approver: r.approver,
      reason: r.reason,
      acceptedAt: new Date(r.acceptedAt),
      expiresAt: new Date(r.expiresAt),
    });
  } else if (input.change.kind !== 'acknowledged' && input.change.kind !== 'membership') {
    await endRiskAcceptance(database.db, input.ticketKey, at);
  }
  // Changes queued by older runs carry a ServiceNow code instead of a neutral state.
  const target = ticketStateOf(input.change.state);
  const fields: IncidentFields = { work_notes: input.change.workNote, ...(target ? { state: serviceNowStates.toItsm(target) } : {}) };
  if (input.change.kind === 'resolved' || input.change.kind === 'verified') {
    fields.close_code = 'Solved (Permanently)';
    fields.close_notes = input.change.workNote;
  }
  const incident = await serviceNow.updateIncident(t.externalSysId, fields);
  const state = serviceNowStates.fromItsm(incident.state);
  return { sequence: Number(incident.sys_mod_count) || 0, ...(state ? { state } : {}), assignedTo: incident.assigned_to };
}

/** The incident was reassigned in the ITSM: its assignee becomes the ticket's owner (and escalation chain). */
export async function adoptAssignee({ database, serviceNow }: IncidentDeps, ticketKey: string, assignedTo: string): Promise<{ owner: string | null }> {
  const user = await serviceNow.getUser(assignedTo);
  if (!user?.user_name) return { owner: null };
  await setTicketOwner(database.db, ticketKey, user.user_name);
  return { owner: user.user_name };
}

/** Reads the incident back: catches a state change whose webhook never arrived. */
export async function readIncidentBack({ database, serviceNow }: IncidentDeps, ticketKey: string): Promise<TicketEvent | null> {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t?.externalSysId) return null;
  const incident = await serviceNow.getIncident(t.externalSysId);
  if (!incident) return null;
  const sequence = Number(incident.sys_mod_count) || 0;
  const state = serviceNowStates.fromItsm(incident.state);
  return {
    eventId: `reconcile:${incident.sys_id}:${sequence}`,
    ...(state ? { state } : {}),
    at: new Date().toISOString(),
    sequence,
    ...(incident.assigned_to ? { assignedTo: incident.assigned_to } : {}),
  };
}
