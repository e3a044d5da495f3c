import {
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { MobilizationActivities } from '../../activities/mobilization.js';
import { CTEM_ESCALATION_LEVEL, CTEM_ESCALATION_PEAK, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from '../search-attributes.js';
import {
  acceptRiskUpdate,
  acknowledgeUpdate,
  findingsChangedSignal,
  resolveUpdate,
  RISK_ACCEPTANCE_REFUSED,
  statusQuery,
  ticketEventSignal,
  verificationScanSignal,
  type RecordedTicketState,
  type RemediationInput,
  type RemediationState,
} from './messages.js';
import {
  acceptRisk,
  acceptRiskRefusal,
  acknowledge,
  acknowledgeRefusal,
  enqueue,
  escalated,
  findingsChanged,
  initialState,
  nextDeadline,
  reassigned,
  resolve,
  resolveRefusal,
  riskExpired,
  sent,
  ticketEvent,
  ticketName,
  ticketOpened,
  verificationScan,
  withDefaults,
  type Refusal,
  type Step,
} from './state.js';

// One long-running workflow per golden ticket (id `remediation:<fix key>`): open the ticket, wait
// for the owner to acknowledge and then resolve it, and while an SLA is breached climb the
// management chain one level per escalation interval. The rules are the pure transitions of
// state.ts; this loop only waits, applies them, and runs their effects through activities.
// Deadlines are absolute times carried in state, so restarts of the worker or the server never move them.
//
// Running workflows replay this code against histories months old: the order of commands
// (activities, timers, search-attribute upserts) must stay as recorded; a change of it needs patched().

const { openTicket, escalate, recordTicketState, syncTicket, reconcileTicket, reassignTicket } = proxyActivities<MobilizationActivities>({
  startToCloseTimeout: '1 minute',
  // ITSM outages are waited out rather than failed: the ticket must not be lost.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

function refuse(refusal: Refusal | undefined): void {
  if (!refusal) return;
  if (refusal.field) throw ApplicationFailure.create({ type: RISK_ACCEPTANCE_REFUSED, message: refusal.message, details: [{ field: refusal.field }], nonRetryable: true });
  throw new Error(refusal.message);
}

export async function remediationWorkflow(input: RemediationInput): Promise<RemediationState> {
  let state = withDefaults(input.state ?? initialState(input));
  // Bumped by every input that changes what the loop waits for; the loop's waits watch it.
  let revision = 0;
  // The read model's row to write; only the latest matters.
  let stateToRecord: RecordedTicketState | undefined;
  const ackSlaMs = input.ackSlaMs ?? 2 * DAY_MS;
  const name = () => ticketName(state, input.ticketKey);
  const now = () => Date.now();

  const apply = (step: Step): RemediationState => {
    state = step.state;
    for (const effect of step.effects) {
      if (effect.type === 'record') stateToRecord = effect.state;
      else state = { ...state, outbox: enqueue(state.outbox, effect.change) };
    }
    if (step.wake) revision++;
    return state;
  };

  setHandler(statusQuery, () => state);
  setHandler(findingsChangedSignal, (change) => void apply(findingsChanged(state, change, now())));
  // Ticket events are checked like webhook events (anyone who reaches Temporal can send this signal);
  // histories recorded before the check replay without it, since a refusal changes what runs next.
  const validateEvents = () => patched('validated-ticket-events');
  setHandler(ticketEventSignal, (event) => void apply(ticketEvent(state, event, now(), { validate: validateEvents() })));
  setHandler(verificationScanSignal, (scan) => void apply(verificationScan(state, scan, now())));
  setHandler(acknowledgeUpdate, (actor) => apply(acknowledge(state, actor, now())), {
    validator: (actor) => refuse(acknowledgeRefusal(state, actor, name())),
  });
  setHandler(resolveUpdate, (actor) => apply(resolve(state, actor, now())), {
    validator: (actor) => refuse(resolveRefusal(state, actor, name())),
  });
  setHandler(acceptRiskUpdate, (acceptance) => apply(acceptRisk(state, acceptance, now())), {
    // Workflow time, not the caller's clock: the one authority on these rules.
    validator: (acceptance) => refuse(acceptRiskRefusal(state, acceptance, now(), name())),
  });

  upsertSearchAttributes([
    { key: CTEM_PHASE, value: 'mobilization' },
    { key: CTEM_TIER, value: state.tier },
    { key: CTEM_OWNER, value: input.owner },
    { key: CTEM_ESCALATION_LEVEL, value: state.escalationLevel },
  ]);
  // A run continued from one that escalated keeps showing the ticket's peak.
  if (state.escalationPeak > 0 && patched('escalation-peak')) upsertSearchAttributes([{ key: CTEM_ESCALATION_PEAK, value: state.escalationPeak }]);

  if (!state.ticket) {
    if (patched('opened-keeps-early-changes')) {
      // The state is read after the ticket is opened: an acknowledgement (Update or event) taken
      // while it was being opened is kept. `ticketOpened(state, await ...)` read it before, and the
      // opened ticket overwrote that acknowledgement and the write-back it had queued.
      const opened = await openTicket({ ticketKey: input.ticketKey });
      state = ticketOpened(state, opened);
    } else {
      state = ticketOpened(state, await openTicket({ ticketKey: input.ticketKey }));
    }
    log.info('golden ticket opened', { number: state.ticket!.number });
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
    // Effects first, one at a time: the read model, then the ITSM's outbox, then a reassignment.
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
      state = sent(state, change);
      // The record as written is the newest version: it carries any change by the owner made just
      // before ours (whose webhook, older, will then be dropped), and our own write is no news.
      apply(
        ticketEvent(
          state,
          { eventId: `sync:${synced.sequence}`, state: synced.state, at: iso(now()), sequence: synced.sequence, ...(synced.assignedTo ? { assignedTo: synced.assignedTo } : {}) },
          now(),
          { validate: validateEvents() },
        ),
      );
      continue;
    }
    if (state.reassignTo) {
      // The owner changed in the ITSM: the read model and the next escalations follow the new assignee.
      const target = state.reassignTo;
      const { owner } = await reassignTicket({ ticketKey: input.ticketKey, assignedTo: target });
      state = reassigned(state, target);
      if (owner) upsertSearchAttributes([{ key: CTEM_OWNER, value: owner }]);
      continue;
    }
    if (state.phase === 'resolved') continue;
    // Keep history bounded on tickets that live for months; the state carries everything.
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof remediationWorkflow>({ ...input, state });
    }
    if (now() >= nextReconcileAt) {
      // Catches a webhook that never arrived: the ITSM's current state goes through the same transition.
      const seen = await reconcileTicket({ ticketKey: input.ticketKey });
      if (seen) apply(ticketEvent(state, seen, now(), { validate: validateEvents() }));
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

    const deadline = nextDeadline(state, input.escalationIntervalMs);
    if (deadline.kind === 'risk-expiry') {
      showAttributes(state.tier, 0, deadline.at);
      if (await wakeFor(`risk accepted: re-open at ${state.riskAcceptance!.expiresAt}`, deadline.at)) continue;
      apply(riskExpired(state, now(), ackSlaMs)); // ignored while woken early for reconciliation
      continue;
    }
    if (deadline.kind === 'verification') {
      showAttributes(state.tier, 0, Date.parse(state.dueAt));
      await wakeFor('resolved: waiting for a scan of the asset to verify the fix', Infinity);
      continue;
    }
    if (deadline.kind === 'none') {
      await wakeFor('waiting for the ticket to open', Infinity);
      continue;
    }

    showAttributes(state.tier, state.escalationLevel, deadline.slaDeadline);
    if (deadline.kind === 'top-of-chain') {
      await wakeFor(`${deadline.phase} SLA breached; top of the management chain reached`, Infinity);
      continue;
    }
    const summary = `${deadline.phase} SLA: escalate to level ${deadline.level} at ${iso(deadline.at)}`;
    if (await wakeFor(summary, deadline.at)) continue;
    if (now() < deadline.at) continue; // woken for reconciliation

    const result = await escalate({
      ticketKey: input.ticketKey,
      phase: deadline.phase,
      level: deadline.level,
      cycle: state.cycle,
      slaDeadline: iso(deadline.slaDeadline),
    });
    const peak = state.escalationPeak;
    state = escalated(state, deadline, result, now());
    // A new command: histories recorded before the peak was kept replay without it.
    if (state.escalationPeak > peak && patched('escalation-peak')) upsertSearchAttributes([{ key: CTEM_ESCALATION_PEAK, value: state.escalationPeak }]);
  }

  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'resolved' }]);
  return state;
}
