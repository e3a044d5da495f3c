import { riskAcceptanceRefusal, type RiskAcceptanceField } from '../../mobilization/risk-acceptance.js';
import {
  TICKET_EVENT_LIMITS,
  ticketStateOf,
  type DroppedTicketEvent,
  type FindingsChange,
  type RecordedTicketState,
  type RemediationInput,
  type RemediationPhase,
  type RemediationState,
  type RiskAcceptance,
  type TicketActor,
  type TicketChange,
  type TicketEvent,
  type TicketState,
  type VerificationScan,
} from './messages.js';

// The remediation workflow's transitions as pure functions: each takes the state and what happened
// (with the workflow's clock), and returns the new state and the effects to run (a row of the read
// model to write, a change to tell the ITSM). No Temporal here, so every rule is unit-tested alone.

export type Effect = { type: 'record'; state: RecordedTicketState } | { type: 'tell'; change: TicketChange };

export interface Step {
  state: RemediationState;
  effects: Effect[];
  /** False when the input was ignored (duplicate, out of order, not applicable): the workflow's wait goes on. */
  wake: boolean;
}

/** A refused Update: the sentence the caller sees, and the field at fault when one is. */
export interface Refusal {
  message: string;
  field?: RiskAcceptanceField;
}

/** A ticket event as it may arrive: from older runs, `state` may be a legacy ServiceNow code. */
export type IncomingTicketEvent = Omit<TicketEvent, 'state'> & { state?: string };

const MAX_SEEN_EVENTS = 100;
const MAX_DROPPED_EVENTS = 20;
const iso = (ms: number) => new Date(ms).toISOString();
const ignored = (state: RemediationState): Step => ({ state, effects: [], wake: false });
const record = (state: RecordedTicketState): Effect => ({ type: 'record', state });
const tell = (kind: TicketChange['kind'], state: TicketChange['state'], workNote: string, now: number): Effect => ({
  type: 'tell',
  change: { kind, state, workNote, at: iso(now) },
});
const by = (actor: TicketActor) => `${actor.by} (${actor.via})${actor.note ? `: ${actor.note}` : ''}`;
const fromOutsideItsm = (actor?: TicketActor): actor is TicketActor => !!actor && actor.via !== 'servicenow';

export const ticketName = (state: RemediationState, ticketKey: string) => state.ticket?.number ?? ticketKey;

export function initialState(input: RemediationInput): RemediationState {
  return {
    phase: 'opening',
    tier: input.tier,
    findingCount: input.findingCount,
    ackDueAt: input.ackDueAt,
    dueAt: input.dueAt,
    escalationLevel: 0,
    topOfChainReached: false,
    escalationPeak: 0,
    escalationCount: 0,
    reopened: 0,
    cycle: 0,
    lastSequence: -1,
    outbox: [],
    seenEvents: [],
    droppedEvents: [],
  };
}

/** State carried over from older runs lacks later fields. */
export function withDefaults(state: RemediationState): RemediationState {
  return {
    ...state,
    outbox: state.outbox ?? [],
    reopened: state.reopened ?? 0,
    cycle: state.cycle ?? 0,
    lastSequence: state.lastSequence ?? -1,
    droppedEvents: state.droppedEvents ?? [],
    // Runs from before the history was kept know only the current climb: levels 1..n were each escalated once.
    escalationPeak: state.escalationPeak ?? state.escalationLevel ?? 0,
    escalationCount: state.escalationCount ?? state.escalationLevel ?? 0,
  };
}

/** The ITSM's outbox with one more change: a newer change of a kind replaces the older one. */
export function enqueue(outbox: TicketChange[], change: TicketChange): TicketChange[] {
  return [...outbox.filter((c) => c.kind !== change.kind), change];
}

/** The outbox once `change` (the very object) was written; a newer change of its kind stays. */
export function sent(state: RemediationState, change: TicketChange): RemediationState {
  return { ...state, outbox: state.outbox.filter((c) => c !== change) };
}

function withoutEscalation(state: RemediationState): RemediationState {
  const { lastEscalationAt: _, ...rest } = state;
  return { ...rest, escalationLevel: 0, topOfChainReached: false };
}

// ---- the ticket opened --------------------------------------------------------------------------

export function ticketOpened(state: RemediationState, opened: { sysId: string; number: string; assignedTo?: string }): RemediationState {
  return {
    ...state,
    ticket: { sysId: opened.sysId, number: opened.number },
    ...(state.assignee ?? opened.assignedTo ? { assignee: state.assignee ?? opened.assignedTo } : {}),
    phase: state.phase === 'opening' ? 'awaiting-acknowledgement' : state.phase,
  };
}

// ---- acknowledgement and resolution ---------------------------------------------------------------

function acknowledged(state: RemediationState, at: string, now: number, actor?: TicketActor, itsmState?: TicketState): Step {
  // Acknowledgement ends the acknowledgement breach; the climb restarts if the due date is missed.
  return {
    state: { ...withoutEscalation(state), phase: 'awaiting-resolution', acknowledgedAt: at, ...(actor ? { acknowledgedBy: actor.by } : {}) },
    effects: [
      record(itsmState === 'on_hold' ? 'on_hold' : 'in_progress'),
      ...(fromOutsideItsm(actor) ? [tell('acknowledged', 'in_progress', `Acknowledged by ${by(actor)}.`, now)] : []),
    ],
    wake: true,
  };
}

function resolved(state: RemediationState, at: string, now: number, actor?: TicketActor, itsmState?: TicketState): Step {
  // A resolution is a claim: a later scan of the asset must confirm the fix before the ticket closes.
  const { riskAcceptance: _, ...rest } = withoutEscalation(state);
  return {
    state: { ...rest, phase: 'verifying', resolvedAt: at, ...(actor ? { resolvedBy: actor.by } : {}) },
    effects: [
      record(itsmState === 'closed' ? 'closed' : 'resolved'),
      ...(fromOutsideItsm(actor)
        ? [tell('resolved', 'resolved', `Resolved by ${by(actor)}. The fix will be verified by the next scan of the asset.`, now)]
        : []),
    ],
    wake: true,
  };
}

function actorRefusal(actor: TicketActor): Refusal | undefined {
  if (typeof actor?.by !== 'string' || actor.by.trim() === '') return { message: 'by is required' };
  if (!['api', 'slack', 'servicenow'].includes(actor.via)) return { message: 'via must be api, slack or servicenow' };
  return undefined;
}

export function acknowledgeRefusal(state: RemediationState, actor: TicketActor, name: string): Refusal | undefined {
  const wrongActor = actorRefusal(actor);
  if (wrongActor) return wrongActor;
  if (state.phase === 'verifying' || state.phase === 'resolved') return { message: `${name} is already resolved` };
  if (state.phase === 'risk-accepted') return { message: `${name} is risk-accepted until ${state.riskAcceptance?.expiresAt}` };
  return undefined;
}

/** An acknowledgement from the API or Slack; a repeated one is answered with the state, not applied again. */
export function acknowledge(state: RemediationState, actor: TicketActor, now: number): Step {
  if (state.phase === 'awaiting-resolution' || state.acknowledgedAt) return ignored(state);
  return acknowledged(state, iso(now), now, actor);
}

export function resolveRefusal(state: RemediationState, actor: TicketActor, name: string): Refusal | undefined {
  const wrongActor = actorRefusal(actor);
  if (wrongActor) return wrongActor;
  if (state.phase === 'verifying') return { message: `${name} is already resolved (waiting for a scan to verify the fix)` };
  if (state.phase === 'resolved') return { message: `${name} is already resolved` };
  return undefined;
}

export function resolve(state: RemediationState, actor: TicketActor, now: number): Step {
  return resolved(state, iso(now), now, actor);
}

// ---- the ITSM's own changes --------------------------------------------------------------------------

// ServiceNow's codes, which signals of older runs carry (8, Canceled, has no neutral state).
const LEGACY_STATE_CODES = ['1', '2', '3', '6', '7', '8'];
const shown = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value).slice(0, 40));

/**
 * Why a ticket event is not one a webhook could have sent, or undefined when it is. Anyone who
 * reaches Temporal's frontend can signal the workflow directly, so the workflow checks what the
 * webhook routes check: the shape, the known states, bounded strings, and a record version that is
 * a 32-bit count of updates (ServiceNow) or an update time not in the future (Jira). Never throws:
 * a throw in a signal handler would fail the workflow task.
 */
export function ticketEventRefusal(event: unknown, now: number): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return `a ticket event must be an object (got ${Array.isArray(event) ? 'an array' : shown(event)})`;
  const e = event as Record<string, unknown>;
  const { maxStringLength, maxUpdateCount, maxClockSkewMs } = TICKET_EVENT_LIMITS;
  if (typeof e.eventId !== 'string' || e.eventId.length === 0 || e.eventId.length > maxStringLength) {
    return `eventId must be a string of 1 to ${maxStringLength} characters`;
  }
  if (e.state !== undefined && !(ticketStateOf(e.state) || LEGACY_STATE_CODES.includes(e.state as string))) {
    return `state ${shown(e.state)} is not a ticket state (new, in_progress, on_hold, resolved, closed)`;
  }
  if (typeof e.at !== 'string' || e.at.length > 64 || Number.isNaN(Date.parse(e.at))) return `at must be an ISO 8601 time (got ${shown(e.at)})`;
  if (Date.parse(e.at) > now + maxClockSkewMs) return `at ${shown(e.at)} is more than a day past workflow time`;
  if (e.sequence !== undefined) {
    const n = e.sequence;
    const count = typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= maxUpdateCount;
    const updateTime = typeof n === 'number' && Number.isSafeInteger(n) && n > maxUpdateCount && n <= now + maxClockSkewMs;
    if (!count && !updateTime) {
      return `sequence ${shown(n)} is neither a count of updates (a whole number from 0 to ${maxUpdateCount}) nor an update time in epoch milliseconds at most a day past workflow time`;
    }
  }
  for (const field of ['assignedTo', 'actor'] as const) {
    const value = e[field];
    if (value !== undefined && (typeof value !== 'string' || value.length > maxStringLength)) return `${field} must be a string of at most ${maxStringLength} characters`;
  }
  return undefined;
}

/** An event not applied, kept with its reason for the status query; the wait goes on. */
function dropped(state: RemediationState, event: unknown, kind: DroppedTicketEvent['kind'], reason: string, now: number): Step {
  const id = (event as { eventId?: unknown } | null)?.eventId;
  const entry: DroppedTicketEvent = { eventId: typeof id === 'string' && id ? id.slice(0, 100) : '(none)', kind, reason, droppedAt: iso(now) };
  return ignored({ ...state, droppedEvents: [...(state.droppedEvents ?? []), entry].slice(-MAX_DROPPED_EVENTS) });
}

/**
 * A webhook, a reconciliation read or the record as our own write left it. `validate: false` only
 * for histories recorded before events were checked (the workflow's patch decides).
 */
export function ticketEvent(current: RemediationState, event: IncomingTicketEvent, now: number, options: { validate?: boolean } = {}): Step {
  if (options.validate ?? true) {
    const refusal = ticketEventRefusal(event, now);
    // Not remembered as seen: a forged event must not shadow the real one of the same id.
    if (refusal) return dropped(current, event, 'invalid', refusal, now);
  }
  if (current.seenEvents.includes(event.eventId)) return ignored(current);
  const state: RemediationState = { ...current, seenEvents: [...current.seenEvents, event.eventId].slice(-MAX_SEEN_EVENTS) };
  // Out of order: a change older than one already applied (or written by us) says nothing new.
  if (event.sequence !== undefined) {
    if (event.sequence <= state.lastSequence) {
      return dropped(state, event, 'stale', `version ${event.sequence} is not newer than version ${state.lastSequence} already applied`, now);
    }
    state.lastSequence = event.sequence;
  }
  if (event.assignedTo && state.assignee && event.assignedTo !== state.assignee) state.reassignTo = event.assignedTo;
  if (event.assignedTo) state.assignee = event.assignedTo;
  const itsmState = ticketStateOf(event.state);
  // Who acted in the ITSM is recorded; `via: servicenow` means "in the ITSM" (Jira too) and tells it nothing back.
  const actor: TicketActor | undefined = event.actor ? { by: event.actor, via: 'servicenow' } : undefined;
  const open = state.phase === 'opening' || state.phase === 'awaiting-acknowledgement' || state.phase === 'awaiting-resolution';
  // Only an event that passed the checks above reaches here: nothing else resolves a ticket.
  if ((itsmState === 'resolved' || itsmState === 'closed') && open) return resolved(state, event.at, now, actor, itsmState);
  // An owner may act on the incident before the workflow has seen it created: that counts too.
  if ((itsmState === 'in_progress' || itsmState === 'on_hold') && (state.phase === 'awaiting-acknowledgement' || state.phase === 'opening')) {
    return acknowledged(state, event.at, now, actor, itsmState);
  }
  return { state, effects: [], wake: true };
}

/** Reassigned in the ITSM: the read model and the escalation chain took the new owner. */
export function reassigned(state: RemediationState, target: string): RemediationState {
  if (state.reassignTo !== target) return state; // reassigned again meanwhile: that one is still to do
  const { reassignTo: _, ...rest } = state;
  return rest;
}

// ---- discovery -----------------------------------------------------------------------------------

/** The same ticket absorbs new findings (never a duplicate); its owner reads what changed in a work note. */
export function findingsChanged(state: RemediationState, change: FindingsChange, now: number): Step {
  const earlier = Date.parse(change.dueAt) < Date.parse(state.dueAt);
  const due = earlier ? change.dueAt : state.dueAt;
  const news = change.findingCount !== state.findingCount || change.tier !== state.tier || earlier;
  const plural = change.findingCount === 1 ? '' : 's';
  return {
    state: { ...state, findingCount: change.findingCount, tier: change.tier, dueAt: due },
    effects: news
      ? [tell('membership', '', `Findings changed: this fix now covers ${change.findingCount} finding${plural} (was ${state.findingCount}); tier ${change.tier}; due ${due}.`, now)]
      : [],
    wake: true,
  };
}

/** A scan of the asset received after the resolution confirms the fix, or re-opens the ticket. */
export function verificationScan(state: RemediationState, scan: VerificationScan, now: number): Step {
  if (state.phase !== 'verifying' || !state.resolvedAt || Date.parse(scan.scannedAt) < Date.parse(state.resolvedAt)) return ignored(state);
  if (scan.openFindings === 0) {
    return {
      state: { ...state, phase: 'resolved', verifiedAt: scan.scannedAt },
      effects: [
        record('verified'),
        tell('verified', 'closed', `Verified: scan ${scan.scanId} of ${scan.scannedAt} no longer finds the vulnerabilities this ticket covers. Closed.`, now),
      ],
      wake: true,
    };
  }
  const { resolvedAt: _at, resolvedBy: _by, ...rest } = withoutEscalation(state);
  return {
    state: { ...rest, phase: 'awaiting-resolution', reopened: state.reopened + 1, cycle: state.cycle + 1 },
    effects: [
      record('in_progress'),
      tell(
        'reopened',
        'in_progress',
        `Verification failed: scan ${scan.scanId} of ${scan.scannedAt} still finds ${scan.openFindings} of the vulnerabilities this ticket covers. Re-opened; the due date stays ${state.dueAt}.`,
        now,
      ),
    ],
    wake: true,
  };
}

// ---- risk acceptance ---------------------------------------------------------------------------

/** The rules of mobilization/risk-acceptance.ts against workflow time, then what the phase allows. */
export function acceptRiskRefusal(state: RemediationState, acceptance: RiskAcceptance, now: number, name: string): Refusal | undefined {
  const refusal = riskAcceptanceRefusal(acceptance, now);
  if (refusal) return refusal;
  if (state.phase === 'verifying' || state.phase === 'resolved') return { message: `${name} is already resolved` };
  return undefined;
}

export function acceptRisk(state: RemediationState, acceptance: RiskAcceptance, now: number): Step {
  const same = state.riskAcceptance;
  if (same && same.approver === acceptance.approver && same.reason === acceptance.reason && same.expiresAt === acceptance.expiresAt) return ignored(state);
  // A renewal keeps the phase to return to and when the pause began.
  const resumePhase = state.phase === 'risk-accepted' && same ? same.resumePhase : state.phase === 'awaiting-resolution' ? 'awaiting-resolution' : 'awaiting-acknowledgement';
  const riskAcceptance = { ...acceptance, expiresAt: iso(Date.parse(acceptance.expiresAt)), acceptedAt: same?.acceptedAt ?? iso(now), resumePhase };
  return {
    state: { ...withoutEscalation(state), phase: 'risk-accepted', riskAcceptance },
    effects: [
      record('risk_accepted'),
      tell(
        'risk-accepted',
        'on_hold',
        `Risk accepted by ${acceptance.approver} at the request of ${acceptance.requester} until ${riskAcceptance.expiresAt}: ${acceptance.reason}. The SLA is paused until then.`,
        now,
      ),
    ],
    wake: true,
  };
}

/** The SLA was paused: deadlines move by the time the acceptance lasted, and the owner acknowledges again. */
export function riskExpired(state: RemediationState, now: number, ackSlaMs: number): Step {
  const acceptance = state.riskAcceptance;
  if (state.phase !== 'risk-accepted' || !acceptance || now < Date.parse(acceptance.expiresAt)) return ignored(state);
  const paused = now - Date.parse(acceptance.acceptedAt);
  const { acknowledgedAt: _ack, riskAcceptance: _risk, ...rest } = withoutEscalation(state);
  const next: RemediationState = {
    ...rest,
    dueAt: iso(Date.parse(state.dueAt) + paused),
    ackDueAt: iso(now + ackSlaMs),
    phase: 'awaiting-acknowledgement',
    cycle: state.cycle + 1,
  };
  return {
    state: next,
    effects: [
      record('new'),
      tell('risk-expired', 'new', `Risk acceptance by ${acceptance.approver} expired at ${acceptance.expiresAt}. Re-opened: acknowledge by ${next.ackDueAt}; due ${next.dueAt}.`, now),
    ],
    wake: true,
  };
}

// ---- deadlines and escalation ------------------------------------------------------------------

export type EscalationPhase = 'acknowledgement' | 'resolution';

/** What the workflow waits for next (besides signals, Updates and reconciliation). */
export type Deadline =
  | { kind: 'risk-expiry'; at: number }
  | { kind: 'verification' }
  | { kind: 'top-of-chain'; phase: EscalationPhase; slaDeadline: number }
  | { kind: 'escalation'; at: number; phase: EscalationPhase; level: number; slaDeadline: number }
  | { kind: 'none' };

export function nextDeadline(state: RemediationState, escalationIntervalMs: number): Deadline {
  if (state.phase === 'risk-accepted' && state.riskAcceptance) return { kind: 'risk-expiry', at: Date.parse(state.riskAcceptance.expiresAt) };
  if (state.phase === 'verifying') return { kind: 'verification' };
  if (state.phase !== 'awaiting-acknowledgement' && state.phase !== 'awaiting-resolution') return { kind: 'none' };
  const acknowledging = state.phase === 'awaiting-acknowledgement';
  const phase: EscalationPhase = acknowledging ? 'acknowledgement' : 'resolution';
  // Unacknowledged past the due date is a breach too: the earlier deadline counts.
  const slaDeadline = acknowledging ? Math.min(Date.parse(state.ackDueAt), Date.parse(state.dueAt)) : Date.parse(state.dueAt);
  if (state.topOfChainReached) return { kind: 'top-of-chain', phase, slaDeadline };
  const at = state.escalationLevel === 0 ? slaDeadline : Date.parse(state.lastEscalationAt!) + escalationIntervalMs;
  return { kind: 'escalation', at, phase, level: state.escalationLevel + 1, slaDeadline };
}

const PHASE_OF: Record<EscalationPhase, RemediationPhase> = { acknowledgement: 'awaiting-acknowledgement', resolution: 'awaiting-resolution' };

/** The escalate activity's answer: who was notified (null: nobody left in the chain). */
export interface EscalationResult {
  notified: { userName: string; name: string } | null;
  topOfChainReached: boolean;
}

export function escalated(state: RemediationState, due: { phase: EscalationPhase; level: number }, result: EscalationResult, now: number): RemediationState {
  if (!result.notified) return { ...state, topOfChainReached: true };
  // The ticket's history keeps every escalation that happened, whatever the phase is now.
  const history = { escalationPeak: Math.max(state.escalationPeak, due.level), escalationCount: state.escalationCount + 1 };
  // The phase may have moved while the activity ran (an acknowledgement): that escalation still happened, but the climb is over.
  if (state.phase !== PHASE_OF[due.phase]) return { ...state, ...history };
  return { ...state, ...history, escalationLevel: due.level, lastEscalationAt: iso(now), topOfChainReached: result.topOfChainReached };
}
