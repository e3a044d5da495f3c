import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { MobilizationActivities } from '../activities/mobilization.js';
import { CTEM_ESCALATION_LEVEL, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from './search-attributes.js';

// One long-running workflow per golden ticket (id `remediation:<fix key>`): open the ticket, wait
// for the owner to acknowledge and then resolve it, and while an SLA is breached climb the
// management chain one level per escalation interval. Deadlines are absolute times carried in
// state, so restarts of the worker or the server never move them.

/** A ticket state change reported by the ITSM (the ServiceNow webhook), deduplicated by eventId. */
export interface TicketEvent {
  eventId: string;
  /** ServiceNow incident state code: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed. */
  state: string;
  at: string;
}

/** Discovery found the ticket's membership changed (new findings, an earlier due date, a new tier). */
export interface FindingsChange {
  findingCount: number;
  tier: string;
  dueAt: string;
}

export const ticketEventSignal = defineSignal<[TicketEvent]>('ticketEvent');
export const findingsChangedSignal = defineSignal<[FindingsChange]>('findingsChanged');
export const statusQuery = defineQuery<RemediationState>('status');

export type RemediationPhase = 'opening' | 'awaiting-acknowledgement' | 'awaiting-resolution' | 'resolved';

export interface RemediationState {
  phase: RemediationPhase;
  ticket?: { sysId: string; number: string };
  tier: string;
  findingCount: number;
  ackDueAt: string;
  dueAt: string;
  /** 0: nobody escalated to in the current phase; n: the owner's n-th manager was notified. */
  escalationLevel: number;
  lastEscalationAt?: string;
  topOfChainReached: boolean;
  acknowledgedAt?: string;
  resolvedAt?: string;
  /** Recent event ids, for deduplication of redelivered webhooks (bounded). */
  seenEvents: string[];
}

export interface RemediationInput {
  ticketKey: string;
  owner: string;
  tier: string;
  findingCount: number;
  ackDueAt: string;
  dueAt: string;
  escalationIntervalMs: number;
  /** Carried across continue-as-new. */
  state?: RemediationState;
}

const { openTicket, escalate, recordTicketState } = proxyActivities<MobilizationActivities>({
  startToCloseTimeout: '1 minute',
  // ServiceNow outages are waited out rather than failed: the ticket must not be lost.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const ACKNOWLEDGED_STATES = new Set(['2', '3']);
const RESOLVED_STATES = new Set(['6', '7']);
const MAX_SEEN_EVENTS = 100;

const iso = (ms: number) => new Date(ms).toISOString();

export async function remediationWorkflow(input: RemediationInput): Promise<RemediationState> {
  const state: RemediationState = input.state ?? {
    phase: 'opening',
    tier: input.tier,
    findingCount: input.findingCount,
    ackDueAt: input.ackDueAt,
    dueAt: input.dueAt,
    escalationLevel: 0,
    topOfChainReached: false,
    seenEvents: [],
  };
  let revision = 0;
  let stateToRecord: string | undefined;

  setHandler(statusQuery, () => state);
  setHandler(findingsChangedSignal, (change) => {
    state.findingCount = change.findingCount;
    state.tier = change.tier;
    if (Date.parse(change.dueAt) < Date.parse(state.dueAt)) state.dueAt = change.dueAt;
    revision++;
  });
  setHandler(ticketEventSignal, (event) => {
    if (state.seenEvents.includes(event.eventId)) return;
    state.seenEvents = [...state.seenEvents, event.eventId].slice(-MAX_SEEN_EVENTS);
    if (RESOLVED_STATES.has(event.state) && state.phase !== 'resolved') {
      state.phase = 'resolved';
      state.resolvedAt = event.at;
      stateToRecord = event.state === '7' ? 'closed' : 'resolved';
    } else if (ACKNOWLEDGED_STATES.has(event.state) && (state.phase === 'awaiting-acknowledgement' || state.phase === 'opening')) {
      // An owner may act on the incident before the workflow has seen it created: that counts too.
      // Acknowledgement ends the acknowledgement breach; the climb restarts if the due date is missed.
      state.phase = 'awaiting-resolution';
      state.acknowledgedAt = event.at;
      state.escalationLevel = 0;
      state.topOfChainReached = false;
      delete state.lastEscalationAt;
      stateToRecord = event.state === '3' ? 'on_hold' : 'in_progress';
    }
    revision++;
  });

  upsertSearchAttributes([
    { key: CTEM_PHASE, value: 'mobilization' },
    { key: CTEM_TIER, value: state.tier },
    { key: CTEM_OWNER, value: input.owner },
    { key: CTEM_ESCALATION_LEVEL, value: state.escalationLevel },
  ]);

  if (!state.ticket) {
    state.ticket = await openTicket({ ticketKey: input.ticketKey });
    if (state.phase === 'opening') state.phase = 'awaiting-acknowledgement';
    log.info('golden ticket opened', { number: state.ticket.number });
  }

  while (state.phase !== 'resolved') {
    if (stateToRecord) {
      const recording = stateToRecord;
      stateToRecord = undefined;
      await recordTicketState({ ticketKey: input.ticketKey, state: recording, at: iso(Date.now()), escalationLevel: state.escalationLevel });
      continue;
    }
    // Keep history bounded on tickets that live for months; the state carries everything.
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof remediationWorkflow>({ ...input, state });
    }
    const acknowledging = state.phase === 'awaiting-acknowledgement';
    const slaDeadline = acknowledging ? Math.min(Date.parse(state.ackDueAt), Date.parse(state.dueAt)) : Date.parse(state.dueAt);
    const nextEscalationAt =
      state.escalationLevel === 0 ? slaDeadline : Date.parse(state.lastEscalationAt!) + input.escalationIntervalMs;
    upsertSearchAttributes([
      { key: CTEM_TIER, value: state.tier },
      { key: CTEM_ESCALATION_LEVEL, value: state.escalationLevel },
      { key: CTEM_SLA_DEADLINE, value: new Date(slaDeadline) },
    ]);

    const seen = revision;
    const woken = () => revision !== seen || state.phase === 'resolved';
    if (state.topOfChainReached) {
      await condition(woken);
      continue;
    }
    const what = acknowledging ? 'acknowledgement' : 'resolution';
    const summary = `${what} SLA: escalate to level ${state.escalationLevel + 1} at ${iso(nextEscalationAt)}`;
    if (await condition(woken, Math.max(1, nextEscalationAt - Date.now()), { summary })) continue;

    const level = state.escalationLevel + 1;
    const result = await escalate({
      ticketKey: input.ticketKey,
      phase: acknowledging ? 'acknowledgement' : 'resolution',
      level,
      slaDeadline: iso(slaDeadline),
    });
    if (result.notified) {
      state.escalationLevel = level;
      state.lastEscalationAt = iso(Date.now());
    }
    state.topOfChainReached = result.topOfChainReached;
  }

  if (stateToRecord) {
    await recordTicketState({ ticketKey: input.ticketKey, state: stateToRecord, at: state.resolvedAt ?? iso(Date.now()), escalationLevel: state.escalationLevel });
  }
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'resolved' }]);
  return state;
}
