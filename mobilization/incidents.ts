import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../db/client.js';
import type { EscalationNotice } from './notifier.js';
import { ticketDetail } from './plan.js';
import { endRiskAcceptance, markEscalationNoted, recordEscalation, recordRiskAcceptance, setTicketOpened, setTicketOwner } from './store.js';
import { escalationNotice, escalationReason, escalationWorkNote, incidentText, urgencyOf, type EscalationStep } from './ticket-text.js';
import type { Itsm, ItsmUser, TicketState, TicketUpdate, TicketUrgency } from './itsm/index.js';
import { ticketStateOf, type RemediationState, type TicketChange, type TicketEvent } from '../workflows/remediation/messages.js';

// A golden ticket's life in the ITSM (ServiceNow incident or Jira issue, through the neutral Itsm
// interface): open it, note escalations on it, write the workflow's changes to it and read it back.
// Every step is idempotent (tickets are found by our ticket key, escalations recorded once per
// ticket, phase, level and cycle), so a retried activity repeats nothing. Failures a retry cannot
// cure are non-retryable ApplicationFailures.

export interface IncidentDeps {
  database: Database;
  itsm: Itsm;
}

const person = (u: ItsmUser) => ({ userName: u.userName, name: u.name, ...(u.email ? { email: u.email } : {}) });

async function businessServiceOf(database: Database, ticketKey: string): Promise<string | null> {
  const [row] = await database.sql<Array<{ business_service: string | null }>>`
    select a.business_service from tickets t join assets a on a.id = t.asset_id where t.key = ${ticketKey}`;
  return row?.business_service ?? null;
}

async function openTicketDetail(database: Database, ticketKey: string) {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t?.externalSysId) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} is not open`, 'NotOpen');
  return { ...t, externalSysId: t.externalSysId };
}

/** Opens the ITSM ticket; keyed by the ticket key, so a retry finds the ticket instead of opening a second. */
export async function openIncident({ database, itsm }: IncidentDeps, ticketKey: string): Promise<{ sysId: string; number: string; assignedTo?: string }> {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} does not exist`, 'NotFound');
  if (!t.owner) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} has no owner`, 'NoOwner');
  const owner = await itsm.findUser(t.owner);
  const text = incidentText(t);
  const ticket = await itsm.createTicket({
    ticketKey,
    summary: text.short_description,
    description: text.description,
    ...(owner?.id ? { assigneeId: owner.id } : {}),
    urgency: urgencyOf(t.tier) as TicketUrgency,
    owner: t.owner,
    businessService: await businessServiceOf(database, ticketKey),
  });
  await setTicketOpened(database.db, ticketKey, ticket.id, ticket.number, { itsm: itsm.name, url: ticket.url });
  return { sysId: ticket.id, number: ticket.number, ...(ticket.assignedTo ? { assignedTo: ticket.assignedTo } : {}) };
}

/**
 * Escalates to the owner's `level`-th manager: the escalation recorded once, a work note on the
 * incident and the manager on its watch list (once). Returns the notice for the manager, for the
 * caller to deliver, or that the chain has no one left to notify.
 */
export async function escalateOnIncident(
  { database, itsm }: IncidentDeps,
  step: EscalationStep,
): Promise<{ notified: { userName: string; name: string } | null; topOfChainReached: boolean; notice?: EscalationNotice }> {
  const t = await openTicketDetail(database, step.ticketKey);
  if (!t.owner) throw ApplicationFailure.nonRetryable(`golden ticket ${step.ticketKey} is not open`, 'NotOpen');
  const chain = await itsm.managementChain(t.owner);
  const target = chain[step.level];
  if (!target) return { notified: null, topOfChainReached: true };
  const manager = person(target);
  const escalation = await recordEscalation(database.db, {
    ticketKey: step.ticketKey,
    phase: step.phase,
    level: step.level,
    cycle: step.cycle ?? 0,
    notifiedUser: target.userName,
    notifiedName: target.name,
    reason: escalationReason(step),
  });
  if (!escalation.ticketNotedAt) {
    await itsm.updateTicket(t.externalSysId, {
      workNote: escalationWorkNote(step, manager, t.owner),
      escalationLevel: step.level,
      ...(target.id ? { watchersAdd: [target.id] } : {}),
    });
    await markEscalationNoted(database.db, escalation.id);
  }
  return {
    notified: { userName: target.userName, name: target.name },
    topOfChainReached: step.level >= chain.length - 1,
    notice: escalationNotice(step, t, { owner: person(chain[0]!), manager }, itsm.ticketUrl({ id: t.externalSysId, number: t.externalNumber ?? '' })),
  };
}

/**
 * Writes a change made outside the ITSM (an acknowledgement or resolution from the API or Slack, a
 * risk acceptance, its expiry, a verification) to the incident: its state and a work note. Returns
 * the record's version, so the workflow can ignore the webhook of its own write.
 */
export async function syncIncident(
  { database, itsm }: IncidentDeps,
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
  const update: TicketUpdate = { workNote: input.change.workNote, ...(target ? { state: target } : {}) };
  if (input.change.kind === 'resolved' || input.change.kind === 'verified') update.closeNotes = input.change.workNote;
  const ticket = await itsm.updateTicket(t.externalSysId, update);
  return { sequence: ticket.sequence, ...(ticket.state ? { state: ticket.state } : {}), assignedTo: ticket.assignedTo };
}

/** The incident was reassigned in the ITSM: its assignee becomes the ticket's owner (and escalation chain). */
export async function adoptAssignee({ database, itsm }: IncidentDeps, ticketKey: string, assignedTo: string): Promise<{ owner: string | null }> {
  const user = await itsm.userById(assignedTo);
  if (!user?.userName) return { owner: null };
  await setTicketOwner(database.db, ticketKey, user.userName);
  return { owner: user.userName };
}

/**
 * The owner of an orphaned ticket is known now (a CMDB named them, the directory was fixed): the
 * ticket is reassigned to them in the ITSM, which tells the workflow as any reassignment does, and
 * leaves the orphan queue. Not yet opened, it opens in their name.
 */
export async function handOverIncident({ database, itsm }: IncidentDeps, ticketKey: string, owner: string): Promise<void> {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t?.orphanReason) return; // already handed over (a retried activity)
  if (t.externalSysId) {
    const user = await itsm.findUser(owner);
    if (!user) return;
    await itsm.updateTicket(t.externalSysId, {
      assigneeId: user.id,
      workNote: `Owner found: ${owner}. This ticket leaves the orphan queue (${t.orphanReason}) and is reassigned to them.`,
    });
  }
  await setTicketOwner(database.db, ticketKey, owner);
}

/** Reads the incident back: catches a state change whose webhook never arrived. */
export async function readIncidentBack({ database, itsm }: IncidentDeps, ticketKey: string): Promise<TicketEvent | null> {
  const t = await ticketDetail(database.sql, ticketKey);
  if (!t?.externalSysId) return null;
  const ticket = await itsm.getTicket(t.externalSysId);
  if (!ticket) return null;
  return {
    eventId: `reconcile:${ticket.id}:${ticket.sequence}`,
    ...(ticket.state ? { state: ticket.state } : {}),
    at: new Date().toISOString(),
    sequence: ticket.sequence,
    ...(ticket.assignedTo ? { assignedTo: ticket.assignedTo } : {}),
  };
}
