import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { isTicketState, type TicketState } from '../../mobilization/itsm/index.js';
import { fromServiceNowState } from '../../mobilization/itsm/servicenow/states.js';
import type { RiskAcceptanceField } from '../../mobilization/risk-acceptance.js';

// What the remediation workflow hears and says: its signals (from the ITSM and discovery), its
// query and its Updates (from people, through the API and Slack), with their payloads and the
// workflow's state. Names are part of the contract with running workflows: never rename them.

export type { TicketState } from '../../mobilization/itsm/index.js';

/** A ticket state change reported by the ITSM (webhook or reconciliation poll), deduplicated by eventId. */
export interface TicketEvent {
  eventId: string;
  /**
   * The ticket's neutral state; absent when the ITSM's state has none (e.g. Canceled). Histories
   * written before the neutral states carry ServiceNow codes here: see ticketStateOf.
   */
  state?: TicketState;
  at: string;
  /** The record's version (ServiceNow's sys_mod_count) when known: an event older than one already applied is ignored. */
  sequence?: number;
  /** ITSM id of the assignee, when the event carries it: a reassignment moves the ticket to a new owner. */
  assignedTo?: string;
  /** Who changed the ticket in the ITSM: the platform identity matched by e-mail, else the ITSM's name for them. */
  actor?: string;
}

// Signals and activity results recorded before the neutral states carried ServiceNow's codes; a
// workflow replaying them, or started then and still running, must read them the same way.

/** The neutral state of an incoming event or write result, whether it carries a neutral state or a legacy code. */
export function ticketStateOf(value: unknown): TicketState | undefined {
  if (isTicketState(value)) return value;
  return typeof value === 'string' ? fromServiceNowState(value) : undefined;
}

/** Discovery found the ticket's membership changed (new findings, an earlier due date, a new tier). */
export interface FindingsChange {
  findingCount: number;
  tier: string;
  dueAt: string;
}

/** A scan covered the ticket's asset: after a resolution it verifies the fix. */
export interface VerificationScan {
  scanId: string;
  /** When the scan was received. */
  scannedAt: string;
  /** Findings of this ticket still open after the scan. */
  openFindings: number;
}

/** Who acknowledges or resolves a ticket outside the ITSM. */
export interface TicketActor {
  by: string;
  via: 'api' | 'slack' | 'servicenow';
  note?: string;
}

/** An accepted risk pauses the SLA until it expires; the expiry re-opens the ticket. */
export interface RiskAcceptance {
  requester: string;
  approver: string;
  reason: string;
  expiresAt: string /* ISO */;
}

/** The ApplicationFailure type of a refused risk acceptance; its details name the field. */
export const RISK_ACCEPTANCE_REFUSED = 'RiskAcceptanceRefused';
export interface RiskAcceptanceRefusalDetails {
  field: RiskAcceptanceField;
}

export const ticketEventSignal = defineSignal<[TicketEvent]>('ticketEvent');
export const findingsChangedSignal = defineSignal<[FindingsChange]>('findingsChanged');
export const verificationScanSignal = defineSignal<[VerificationScan]>('verificationScan');
export const statusQuery = defineQuery<RemediationState>('status');
export const acknowledgeUpdate = defineUpdate<RemediationState, [TicketActor]>('acknowledge');
export const resolveUpdate = defineUpdate<RemediationState, [TicketActor]>('resolve');
export const acceptRiskUpdate = defineUpdate<RemediationState, [RiskAcceptance]>('acceptRisk');

export type RemediationPhase =
  | 'opening'
  | 'awaiting-acknowledgement'
  | 'awaiting-resolution'
  | 'risk-accepted'
  /** Resolved by the owner; waiting for a later scan to confirm the fix. */
  | 'verifying'
  /** Done: the fix is confirmed. */
  | 'resolved';

/** A change the ITSM must hear about (made through the API or Slack, or by the workflow itself). */
export interface TicketChange {
  kind: 'acknowledged' | 'resolved' | 'risk-accepted' | 'risk-expired' | 'reopened' | 'verified' | 'membership';
  /** Ticket state to set; empty: only the work note. (A legacy ServiceNow code in state carried from older runs.) */
  state: TicketState | '';
  workNote: string;
  /** Ids only: the acceptance itself is in `riskAcceptance`. */
  at: string;
}

/** What the read model shows for a ticket: the ITSM states plus two of the workflow's own. */
export type RecordedTicketState = TicketState | 'risk_accepted' | 'verified';

export interface RemediationState {
  phase: RemediationPhase;
  ticket?: { sysId: string; number: string };
  /** ITSM id of the current assignee; a different one in an event is a reassignment. */
  assignee?: string;
  /** A reassignment the read model and the escalation chain have not taken yet. */
  reassignTo?: string;
  tier: string;
  findingCount: number;
  ackDueAt: string;
  dueAt: string;
  /** 0: nobody escalated to in the current phase; n: the owner's n-th manager was notified. */
  escalationLevel: number;
  lastEscalationAt?: string;
  topOfChainReached: boolean;
  /** The highest level ever escalated to and how many escalations there were: kept after acknowledgement and re-opening. */
  escalationPeak: number;
  escalationCount: number;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  resolvedAt?: string;
  resolvedBy?: string;
  verifiedAt?: string;
  /** Times a failed verification re-opened the ticket. */
  reopened: number;
  /** +1 at every re-opening (failed verification, expired risk acceptance): escalations start afresh. */
  cycle: number;
  riskAcceptance?: RiskAcceptance & { acceptedAt: string; resumePhase: 'awaiting-acknowledgement' | 'awaiting-resolution' };
  /** Highest ITSM record version applied, for out-of-order events. */
  lastSequence: number;
  /** ITSM writes not yet made (bounded: one per kind at most). */
  outbox: TicketChange[];
  /** Recent event ids, for deduplication of redelivered webhooks (bounded). */
  seenEvents: string[];
  /** The latest ticket events refused (malformed) or ignored (not newer than lastSequence), with why (bounded). */
  droppedEvents: DroppedTicketEvent[];
}

/** A ticket event the workflow did not apply, and why: shown by the status query. */
export interface DroppedTicketEvent {
  /** The event's id as given (shortened), or `(none)` when it had none a string could show. */
  eventId: string;
  /** `invalid`: a payload no webhook would send; `stale`: a version not above one already applied. */
  kind: 'invalid' | 'stale';
  reason: string;
  /** Workflow time of the drop. */
  droppedAt: string;
}

/**
 * The bounds of a ticket event, the same whether it came through a webhook or as a raw signal from
 * anyone who reaches Temporal's frontend: the workflow checks them itself (state.ts).
 */
export const TICKET_EVENT_LIMITS = {
  /** Longest event id, assignee and actor. */
  maxStringLength: 1_000,
  /** A record version up to here is a count of updates (ServiceNow's 32-bit sys_mod_count). */
  maxUpdateCount: 2 ** 31 - 1,
  /**
   * Above it, a version is an update time in epoch milliseconds (Jira's `updated`), at most this
   * far past workflow time (clock skew between the ITSM and the worker).
   */
  maxClockSkewMs: 86_400_000,
} as const;

export interface RemediationInput {
  ticketKey: string;
  owner: string;
  tier: string;
  findingCount: number;
  ackDueAt: string;
  dueAt: string;
  escalationIntervalMs: number;
  /** Time to acknowledge again after a risk acceptance expires (default: 2 days). */
  ackSlaMs?: number;
  /** How often the ticket is read back from the ITSM, to catch missed webhooks (0: never). */
  reconcileIntervalMs?: number;
  /** Carried across continue-as-new. */
  state?: RemediationState;
}
