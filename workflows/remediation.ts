import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
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
// management chain one level per escalation interval. A risk acceptance pauses the SLA until it
// expires; a resolution is verified by a later scan of the asset before the ticket closes.
// Deadlines are absolute times carried in state, so restarts of the worker or the server never move them.

/** A ticket state change reported by the ITSM (webhook or reconciliation poll), deduplicated by eventId. */
export interface TicketEvent {
  eventId: string;
  /** ServiceNow incident state code: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed. */
  state: string;
  at: string;
  /** The record's sys_mod_count when known: an event older than one already applied is ignored. */
  sequence?: number;
  /** sys_id of the assignee, when the event carries it: a reassignment moves the ticket to a new owner. */
  assignedTo?: string;
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

/** Who acknowledges or resolves a ticket outside ServiceNow. */
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
  /** Incident state to set; empty: only the work note. */
  state: string;
  workNote: string;
  /** Ids only: the acceptance itself is in `riskAcceptance`. */
  at: string;
}

export interface RemediationState {
  phase: RemediationPhase;
  ticket?: { sysId: string; number: string };
  /** ITSM sys_id of the current assignee; a different one in an event is a reassignment. */
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
  /** Highest ITSM record version applied (sys_mod_count), for out-of-order events. */
  lastSequence: number;
  /** ITSM writes not yet made (bounded: a handful at most). */
  outbox: TicketChange[];
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
  /** Time to acknowledge again after a risk acceptance expires (default: 2 days). */
  ackSlaMs?: number;
  /** How often the ticket is read back from the ITSM, to catch missed webhooks (0: never). */
  reconcileIntervalMs?: number;
  /** Carried across continue-as-new. */
  state?: RemediationState;
}

const { openTicket, escalate, recordTicketState, syncTicket, reconcileTicket, reassignTicket } = proxyActivities<MobilizationActivities>({
  startToCloseTimeout: '1 minute',
  // ServiceNow outages are waited out rather than failed: the ticket must not be lost.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const ACKNOWLEDGED_STATES = new Set(['2', '3']);
const RESOLVED_STATES = new Set(['6', '7']);
const MAX_SEEN_EVENTS = 100;
const DAY_MS = 86_400_000;

const iso = (ms: number) => new Date(ms).toISOString();
const ticketName = (state: RemediationState, key: string) => state.ticket?.number ?? key;

export async function remediationWorkflow(input: RemediationInput): Promise<RemediationState> {
  const state: RemediationState = input.state ?? {
    phase: 'opening',
    tier: input.tier,
    findingCount: input.findingCount,
    ackDueAt: input.ackDueAt,
    dueAt: input.dueAt,
    escalationLevel: 0,
    topOfChainReached: false,
    reopened: 0,
    cycle: 0,
    lastSequence: -1,
    outbox: [],
    seenEvents: [],
  };
  // Older runs carried less state.
  state.outbox ??= [];
  state.reopened ??= 0;
  state.cycle ??= 0;
  state.lastSequence ??= -1;
  let revision = 0;
  let stateToRecord: string | undefined;
  const ackSlaMs = input.ackSlaMs ?? 2 * DAY_MS;
  const name = () => ticketName(state, input.ticketKey);
  const now = () => Date.now();

  const resetEscalation = () => {
    state.escalationLevel = 0;
    state.topOfChainReached = false;
    delete state.lastEscalationAt;
  };
  const tell = (kind: TicketChange['kind'], itsmState: string, workNote: string) => {
    state.outbox = [...state.outbox.filter((c) => c.kind !== kind), { kind, state: itsmState, workNote, at: iso(now()) }];
  };
  const by = (actor: TicketActor) => `${actor.by} (${actor.via})${actor.note ? `: ${actor.note}` : ''}`;

  function acknowledge(at: string, actor?: TicketActor, itsmState = '2'): void {
    // Acknowledgement ends the acknowledgement breach; the climb restarts if the due date is missed.
    state.phase = 'awaiting-resolution';
    state.acknowledgedAt = at;
    if (actor) state.acknowledgedBy = actor.by;
    resetEscalation();
    stateToRecord = itsmState === '3' ? 'on_hold' : 'in_progress';
    if (actor && actor.via !== 'servicenow') tell('acknowledged', '2', `Acknowledged by ${by(actor)}.`);
    revision++;
  }

  function resolve(at: string, actor?: TicketActor, itsmState = '6'): void {
    // A resolution is a claim: a later scan of the asset must confirm the fix before the ticket closes.
    state.phase = 'verifying';
    state.resolvedAt = at;
    if (actor) state.resolvedBy = actor.by;
    delete state.riskAcceptance;
    resetEscalation();
    stateToRecord = itsmState === '7' ? 'closed' : 'resolved';
    if (actor && actor.via !== 'servicenow') {
      tell('resolved', '6', `Resolved by ${by(actor)}. The fix will be verified by the next scan of the asset.`);
    }
    revision++;
  }

  setHandler(statusQuery, () => state);

  setHandler(findingsChangedSignal, (change) => {
    // The same ticket absorbs new findings (never a duplicate); its owner reads what changed in a work note.
    if (change.findingCount !== state.findingCount || change.tier !== state.tier || Date.parse(change.dueAt) < Date.parse(state.dueAt)) {
      const due = Date.parse(change.dueAt) < Date.parse(state.dueAt) ? change.dueAt : state.dueAt;
      tell(
        'membership',
        '',
        `Findings changed: this fix now covers ${change.findingCount} finding${change.findingCount === 1 ? '' : 's'} (was ${state.findingCount}); tier ${change.tier}; due ${due}.`,
      );
    }
    state.findingCount = change.findingCount;
    state.tier = change.tier;
    if (Date.parse(change.dueAt) < Date.parse(state.dueAt)) state.dueAt = change.dueAt;
    revision++;
  });

  function applyTicketEvent(event: TicketEvent): void {
    if (state.seenEvents.includes(event.eventId)) return;
    state.seenEvents = [...state.seenEvents, event.eventId].slice(-MAX_SEEN_EVENTS);
    // Out of order: a change older than one already applied (or written by us) says nothing new.
    if (event.sequence !== undefined) {
      if (event.sequence <= state.lastSequence) return;
      state.lastSequence = event.sequence;
    }
    if (event.assignedTo && state.assignee && event.assignedTo !== state.assignee) state.reassignTo = event.assignedTo;
    if (event.assignedTo) state.assignee = event.assignedTo;
    const open = state.phase === 'opening' || state.phase === 'awaiting-acknowledgement' || state.phase === 'awaiting-resolution';
    if (RESOLVED_STATES.has(event.state) && open) {
      resolve(event.at, undefined, event.state);
    } else if (ACKNOWLEDGED_STATES.has(event.state) && (state.phase === 'awaiting-acknowledgement' || state.phase === 'opening')) {
      // An owner may act on the incident before the workflow has seen it created: that counts too.
      acknowledge(event.at, undefined, event.state);
    }
    revision++;
  }
  setHandler(ticketEventSignal, applyTicketEvent);

  setHandler(verificationScanSignal, (scan) => {
    if (state.phase !== 'verifying' || !state.resolvedAt || Date.parse(scan.scannedAt) < Date.parse(state.resolvedAt)) return;
    if (scan.openFindings === 0) {
      state.phase = 'resolved';
      state.verifiedAt = scan.scannedAt;
      stateToRecord = 'verified';
      tell('verified', '7', `Verified: scan ${scan.scanId} of ${scan.scannedAt} no longer finds the vulnerabilities this ticket covers. Closed.`);
    } else {
      state.phase = 'awaiting-resolution';
      state.reopened++;
      state.cycle++;
      delete state.resolvedAt;
      delete state.resolvedBy;
      resetEscalation();
      stateToRecord = 'in_progress';
      tell(
        'reopened',
        '2',
        `Verification failed: scan ${scan.scanId} of ${scan.scannedAt} still finds ${scan.openFindings} of the vulnerabilities this ticket covers. Re-opened; the due date stays ${state.dueAt}.`,
      );
    }
    revision++;
  });

  setHandler(
    acknowledgeUpdate,
    (actor) => {
      if (!(state.phase === 'awaiting-resolution' || state.acknowledgedAt)) acknowledge(iso(now()), actor);
      return state;
    },
    {
      validator: (actor) => {
        checkActor(actor);
        if (state.phase === 'verifying' || state.phase === 'resolved') throw new Error(`${name()} is already resolved`);
        if (state.phase === 'risk-accepted') throw new Error(`${name()} is risk-accepted until ${state.riskAcceptance?.expiresAt}`);
      },
    },
  );

  setHandler(
    resolveUpdate,
    (actor) => {
      resolve(iso(now()), actor);
      return state;
    },
    {
      validator: (actor) => {
        checkActor(actor);
        if (state.phase === 'verifying') throw new Error(`${name()} is already resolved (waiting for a scan to verify the fix)`);
        if (state.phase === 'resolved') throw new Error(`${name()} is already resolved`);
      },
    },
  );

  setHandler(
    acceptRiskUpdate,
    (acceptance) => {
      const same = state.riskAcceptance;
      if (same && same.approver === acceptance.approver && same.reason === acceptance.reason && same.expiresAt === acceptance.expiresAt) return state;
      const resumePhase = state.phase === 'risk-accepted' ? same!.resumePhase : state.phase === 'awaiting-resolution' ? 'awaiting-resolution' : 'awaiting-acknowledgement';
      state.riskAcceptance = { ...acceptance, expiresAt: iso(Date.parse(acceptance.expiresAt)), acceptedAt: same?.acceptedAt ?? iso(now()), resumePhase };
      state.phase = 'risk-accepted';
      resetEscalation();
      stateToRecord = 'risk_accepted';
      tell(
        'risk-accepted',
        '3',
        `Risk accepted by ${acceptance.approver} at the request of ${acceptance.requester} until ${state.riskAcceptance.expiresAt}: ${acceptance.reason}. The SLA is paused until then.`,
      );
      revision++;
      return state;
    },
    {
      validator: (acceptance) => {
        for (const field of ['requester', 'approver', 'reason', 'expiresAt'] as const) {
          if (typeof acceptance?.[field] !== 'string' || acceptance[field].trim() === '') throw new Error(`${field} is required`);
        }
        const expires = Date.parse(acceptance.expiresAt);
        if (Number.isNaN(expires)) throw new Error('expiresAt must be an ISO date-time');
        if (expires <= now()) throw new Error('expiresAt must be in the future');
        if (acceptance.approver.trim().toLowerCase() === acceptance.requester.trim().toLowerCase()) {
          throw new Error('the approver must be someone other than the requester');
        }
        if (state.phase === 'verifying' || state.phase === 'resolved') throw new Error(`${name()} is already resolved`);
      },
    },
  );

  upsertSearchAttributes([
    { key: CTEM_PHASE, value: 'mobilization' },
    { key: CTEM_TIER, value: state.tier },
    { key: CTEM_OWNER, value: input.owner },
    { key: CTEM_ESCALATION_LEVEL, value: state.escalationLevel },
  ]);

  if (!state.ticket) {
    const opened = await openTicket({ ticketKey: input.ticketKey });
    state.ticket = { sysId: opened.sysId, number: opened.number };
    state.assignee ??= opened.assignedTo || undefined;
    if (state.phase === 'opening') state.phase = 'awaiting-acknowledgement';
    log.info('golden ticket opened', { number: state.ticket.number });
  }
  let nextReconcileAt = input.reconcileIntervalMs ? now() + input.reconcileIntervalMs : Infinity;
  // Search attributes are written only when they change: every write is a history event and a visibility update.
  let lastAttributes = '';
  const showAttributes = (tier: string, level: number, deadline: number) => {
    const key = `${tier}|${level}|${deadline}`;
    if (key === lastAttributes) return;
    lastAttributes = key;
    upsertSearchAttributes([
      { key: CTEM_TIER, value: tier },
      { key: CTEM_ESCALATION_LEVEL, value: level },
      { key: CTEM_SLA_DEADLINE, value: new Date(deadline) },
    ]);
  };

  while (state.phase !== 'resolved' || state.outbox.length > 0 || stateToRecord || state.reassignTo) {
    if (stateToRecord) {
      const recording = stateToRecord;
      stateToRecord = undefined;
      await recordTicketState({
        ticketKey: input.ticketKey,
        state: recording,
        at: iso(now()),
        escalationLevel: state.escalationLevel,
        // Not the due date: the read model keeps the policy's, the workflow the one a risk acceptance moved.
        ackDueAt: state.ackDueAt,
      });
      continue;
    }
    const change = state.outbox[0];
    if (change) {
      const synced = await syncTicket({
        ticketKey: input.ticketKey,
        change,
        ...(change.kind === 'risk-accepted' && state.riskAcceptance ? { riskAcceptance: state.riskAcceptance } : {}),
      });
      state.outbox = state.outbox.filter((c) => c !== change);
      // The record as written is the newest version: it carries any change by the owner made just
      // before ours (whose webhook, older, will then be dropped), and our own write is no news.
      applyTicketEvent({
        eventId: `sync:${synced.sequence}`,
        state: synced.state,
        at: iso(now()),
        sequence: synced.sequence,
        ...(synced.assignedTo ? { assignedTo: synced.assignedTo } : {}),
      });
      continue;
    }
    if (state.reassignTo) {
      // The owner changed in the ITSM: the read model and the next escalations follow the new assignee.
      const target = state.reassignTo;
      const { owner } = await reassignTicket({ ticketKey: input.ticketKey, assignedTo: target });
      if (state.reassignTo === target) delete state.reassignTo;
      if (owner) upsertSearchAttributes([{ key: CTEM_OWNER, value: owner }]);
      continue;
    }
    if (state.phase === 'resolved') continue;
    // Keep history bounded on tickets that live for months; the state carries everything.
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof remediationWorkflow>({ ...input, state });
    }
    if (now() >= nextReconcileAt) {
      // Catches a webhook that never arrived: the ITSM's current state goes through the same handler.
      const seen = await reconcileTicket({ ticketKey: input.ticketKey });
      if (seen) applyTicketEvent(seen);
      nextReconcileAt = now() + input.reconcileIntervalMs!;
      continue;
    }

    const seen = revision;
    const woken = () => revision !== seen || state.outbox.length > 0 || state.reassignTo !== undefined;
    const wakeFor = async (what: string, at: number): Promise<boolean> => {
      const until = Math.min(at, nextReconcileAt);
      if (until === Infinity) {
        await condition(woken);
        return true;
      }
      return condition(woken, Math.max(1, until - now()), { summary: what });
    };

    if (state.phase === 'risk-accepted') {
      const acceptance = state.riskAcceptance!;
      const expires = Date.parse(acceptance.expiresAt);
      showAttributes(state.tier, 0, expires);
      if (await wakeFor(`risk accepted: re-open at ${acceptance.expiresAt}`, expires)) continue;
      if (now() < expires) continue;
      // The SLA was paused: deadlines move by the time the acceptance lasted, and the owner acknowledges again.
      const paused = now() - Date.parse(acceptance.acceptedAt);
      state.dueAt = iso(Date.parse(state.dueAt) + paused);
      state.ackDueAt = iso(now() + ackSlaMs);
      state.phase = 'awaiting-acknowledgement';
      delete state.acknowledgedAt;
      delete state.riskAcceptance;
      state.cycle++;
      resetEscalation();
      stateToRecord = 'new';
      tell('risk-expired', '1', `Risk acceptance by ${acceptance.approver} expired at ${acceptance.expiresAt}. Re-opened: acknowledge by ${state.ackDueAt}; due ${state.dueAt}.`);
      continue;
    }
    if (state.phase === 'verifying') {
      showAttributes(state.tier, 0, Date.parse(state.dueAt));
      await wakeFor('resolved: waiting for a scan of the asset to verify the fix', Infinity);
      continue;
    }

    const acknowledging = state.phase === 'awaiting-acknowledgement';
    const slaDeadline = acknowledging ? Math.min(Date.parse(state.ackDueAt), Date.parse(state.dueAt)) : Date.parse(state.dueAt);
    const nextEscalationAt =
      state.escalationLevel === 0 ? slaDeadline : Date.parse(state.lastEscalationAt!) + input.escalationIntervalMs;
    showAttributes(state.tier, state.escalationLevel, slaDeadline);

    const what = acknowledging ? 'acknowledgement' : 'resolution';
    if (state.topOfChainReached) {
      await wakeFor(`${what} SLA breached; top of the management chain reached`, Infinity);
      continue;
    }
    const summary = `${what} SLA: escalate to level ${state.escalationLevel + 1} at ${iso(nextEscalationAt)}`;
    if (await wakeFor(summary, nextEscalationAt)) continue;
    if (now() < nextEscalationAt) continue; // woken for reconciliation

    const level = state.escalationLevel + 1;
    const result = await escalate({
      ticketKey: input.ticketKey,
      phase: acknowledging ? 'acknowledgement' : 'resolution',
      level,
      cycle: state.cycle,
      slaDeadline: iso(slaDeadline),
    });
    // The phase may have moved while the activity ran (an acknowledgement): that escalation still happened.
    if (result.notified && state.phase === (acknowledging ? 'awaiting-acknowledgement' : 'awaiting-resolution')) {
      state.escalationLevel = level;
      state.lastEscalationAt = iso(now());
      state.topOfChainReached = result.topOfChainReached;
    } else if (!result.notified) {
      state.topOfChainReached = true;
    }
  }

  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'resolved' }]);
  return state;
}

function checkActor(actor: TicketActor): void {
  if (typeof actor?.by !== 'string' || actor.by.trim() === '') throw new Error('by is required');
  if (!['api', 'slack', 'servicenow'].includes(actor.via)) throw new Error('via must be api, slack or servicenow');
}
