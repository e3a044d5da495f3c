import { describe, expect, it } from 'vitest';
import { isTicketState, serviceNowStates, TICKET_STATES } from '../../mobilization/itsm/index.js';
import { riskAcceptanceRefusal } from '../../mobilization/risk-acceptance.js';
import { ticketStateOf, type RemediationInput, type RemediationState, type TicketChange } from '../../workflows/remediation/messages.js';
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
  ticketEventRefusal,
  ticketOpened,
  verificationScan,
  withDefaults,
  type Effect,
} from '../../workflows/remediation/state.js';

// The remediation workflow's rules without Temporal: each transition from a state and an input to
// the next state and its effects (read-model rows, ITSM writes), and the refusals of its Updates.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-12-07T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

const input: RemediationInput = {
  ticketKey: 'openssl@3.0.13~api~1f2e3d4c',
  owner: 'alex.romero',
  tier: 'act',
  findingCount: 2,
  ackDueAt: iso(T0 + 4 * HOUR),
  dueAt: iso(T0 + 7 * DAY),
  escalationIntervalMs: 8 * HOUR,
};

const open = (): RemediationState => ticketOpened(initialState(input), { sysId: 'sys-1', number: 'INC0010001', assignedTo: 'user-alex' });
const acknowledgedState = () => acknowledge(open(), { by: 'alex.romero', via: 'api' }, T0 + HOUR).state;
const resolvedState = () => resolve(acknowledgedState(), { by: 'alex.romero', via: 'api' }, T0 + 2 * HOUR).state;
const acceptance = { requester: 'alex.romero', approver: 'sam.okafor', reason: 'compensating WAF rule in place', expiresAt: iso(T0 + 30 * DAY) };

const records = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'record' ? [e.state] : []));
const tells = (effects: Effect[]) => effects.flatMap((e) => (e.type === 'tell' ? [e.change] : []));

describe('opening', () => {
  it('starts waiting for acknowledgement with the input deadlines, and takes the assignee the ITSM gave', () => {
    const state = open();
    expect(state).toMatchObject({ phase: 'awaiting-acknowledgement', ticket: { sysId: 'sys-1', number: 'INC0010001' }, assignee: 'user-alex', escalationLevel: 0, cycle: 0 });
    expect(nextDeadline(state, input.escalationIntervalMs)).toEqual({ kind: 'escalation', at: T0 + 4 * HOUR, phase: 'acknowledgement', level: 1, slaDeadline: T0 + 4 * HOUR });
  });

  it('fills in what state from older runs lacks', () => {
    const old = { ...initialState(input) } as Partial<RemediationState>;
    delete old.outbox;
    delete old.cycle;
    delete old.lastSequence;
    delete old.reopened;
    delete old.droppedEvents;
    expect(withDefaults(old as RemediationState)).toMatchObject({ outbox: [], cycle: 0, lastSequence: -1, reopened: 0, droppedEvents: [] });
  });

  it('starts the escalation history of an older run from its current climb', () => {
    const old = { ...open(), escalationLevel: 2, lastEscalationAt: iso(T0 + 12 * HOUR) } as Partial<RemediationState>;
    delete old.escalationPeak;
    delete old.escalationCount;
    expect(withDefaults(old as RemediationState)).toMatchObject({ escalationLevel: 2, escalationPeak: 2, escalationCount: 2 });
    expect(withDefaults(open())).toMatchObject({ escalationPeak: 0, escalationCount: 0 });
  });
});

describe('acknowledgement', () => {
  it('moves to awaiting resolution, ends the escalation, records in_progress and tells the ITSM', () => {
    const escalatedOnce = escalated(open(), { phase: 'acknowledgement', level: 1 }, { notified: { userName: 'jonas.weber', name: 'Jonas Weber' }, topOfChainReached: false }, T0 + 5 * HOUR);
    expect(escalatedOnce.escalationLevel).toBe(1);
    const step = acknowledge(escalatedOnce, { by: 'alex.romero', via: 'slack', note: 'on it' }, T0 + 6 * HOUR);
    expect(step.wake).toBe(true);
    expect(step.state).toMatchObject({ phase: 'awaiting-resolution', acknowledgedAt: iso(T0 + 6 * HOUR), acknowledgedBy: 'alex.romero', escalationLevel: 0 });
    expect(step.state.lastEscalationAt).toBeUndefined();
    expect(records(step.effects)).toEqual(['in_progress']);
    expect(tells(step.effects)).toEqual([{ kind: 'acknowledged', state: 'in_progress', workNote: 'Acknowledged by alex.romero (slack): on it.', at: iso(T0 + 6 * HOUR) }]);
    // The resolution deadline is next.
    expect(nextDeadline(step.state, input.escalationIntervalMs)).toMatchObject({ kind: 'escalation', phase: 'resolution', level: 1, at: T0 + 7 * DAY });
  });

  it('answers a repeated acknowledgement without applying it again', () => {
    const state = acknowledgedState();
    const again = acknowledge(state, { by: 'someone.else', via: 'api' }, T0 + 3 * HOUR);
    expect(again).toEqual({ state, effects: [], wake: false });
  });

  it('refuses when resolved, risk-accepted, or without a valid actor', () => {
    expect(acknowledgeRefusal(open(), { by: 'alex.romero', via: 'api' }, 'INC1')).toBeUndefined();
    expect(acknowledgeRefusal(open(), { by: ' ', via: 'api' }, 'INC1')).toEqual({ message: 'by is required' });
    expect(acknowledgeRefusal(open(), { by: 'x', via: 'email' as 'api' }, 'INC1')).toEqual({ message: 'via must be api, slack or servicenow' });
    expect(acknowledgeRefusal(resolvedState(), { by: 'x', via: 'api' }, 'INC1')).toEqual({ message: 'INC1 is already resolved' });
    const accepted = acceptRisk(open(), acceptance, T0).state;
    expect(acknowledgeRefusal(accepted, { by: 'x', via: 'api' }, 'INC1')?.message).toBe(`INC1 is risk-accepted until ${acceptance.expiresAt}`);
  });
});

describe('resolution and verification', () => {
  it('resolves to verifying, records resolved and tells the ITSM to resolve', () => {
    const step = resolve(acknowledgedState(), { by: 'alex.romero', via: 'api', note: 'upgraded' }, T0 + 2 * HOUR);
    expect(step.state).toMatchObject({ phase: 'verifying', resolvedAt: iso(T0 + 2 * HOUR), resolvedBy: 'alex.romero' });
    expect(records(step.effects)).toEqual(['resolved']);
    expect(tells(step.effects)[0]).toMatchObject({ kind: 'resolved', state: 'resolved', workNote: expect.stringMatching(/^Resolved by alex.romero \(api\): upgraded\. The fix will be verified/) });
    expect(nextDeadline(step.state, input.escalationIntervalMs)).toEqual({ kind: 'verification' });
  });

  it('refuses a second resolution and one after verification', () => {
    expect(resolveRefusal(acknowledgedState(), { by: 'x', via: 'api' }, 'INC1')).toBeUndefined();
    expect(resolveRefusal(resolvedState(), { by: 'x', via: 'api' }, 'INC1')?.message).toBe('INC1 is already resolved (waiting for a scan to verify the fix)');
    const verified = verificationScan(resolvedState(), { scanId: 's2', scannedAt: iso(T0 + 3 * HOUR), openFindings: 0 }, T0 + 3 * HOUR).state;
    expect(resolveRefusal(verified, { by: 'x', via: 'api' }, 'INC1')?.message).toBe('INC1 is already resolved');
  });

  it('closes the ticket when a later scan no longer finds the findings', () => {
    const step = verificationScan(resolvedState(), { scanId: 's2', scannedAt: iso(T0 + 3 * HOUR), openFindings: 0 }, T0 + 3 * HOUR);
    expect(step.state).toMatchObject({ phase: 'resolved', verifiedAt: iso(T0 + 3 * HOUR) });
    expect(records(step.effects)).toEqual(['verified']);
    expect(tells(step.effects)[0]).toMatchObject({ kind: 'verified', state: 'closed' });
    expect(nextDeadline(step.state, input.escalationIntervalMs)).toEqual({ kind: 'none' });
  });

  it('re-opens when verification fails: a new cycle, escalation afresh, the due date unchanged', () => {
    const step = verificationScan(resolvedState(), { scanId: 's2', scannedAt: iso(T0 + 3 * HOUR), openFindings: 1 }, T0 + 3 * HOUR);
    expect(step.state).toMatchObject({ phase: 'awaiting-resolution', reopened: 1, cycle: 1, escalationLevel: 0, dueAt: input.dueAt });
    expect(step.state.resolvedAt).toBeUndefined();
    expect(step.state.resolvedBy).toBeUndefined();
    expect(records(step.effects)).toEqual(['in_progress']);
    expect(tells(step.effects)[0]).toMatchObject({ kind: 'reopened', state: 'in_progress', workNote: expect.stringContaining('still finds 1 of the vulnerabilities') });
    // Resolved and re-opened again: the count goes on.
    const twice = verificationScan(resolve(step.state, { by: 'a', via: 'api' }, T0 + 4 * HOUR).state, { scanId: 's3', scannedAt: iso(T0 + 5 * HOUR), openFindings: 2 }, T0 + 5 * HOUR);
    expect(twice.state).toMatchObject({ reopened: 2, cycle: 2 });
  });

  it('ignores a scan received before the resolution, and any scan while not verifying', () => {
    const state = resolvedState();
    expect(verificationScan(state, { scanId: 'old', scannedAt: iso(T0 + HOUR), openFindings: 0 }, T0 + 3 * HOUR)).toEqual({ state, effects: [], wake: false });
    const waiting = acknowledgedState();
    expect(verificationScan(waiting, { scanId: 's', scannedAt: iso(T0 + 3 * HOUR), openFindings: 0 }, T0 + 3 * HOUR).wake).toBe(false);
  });
});

describe('ITSM events', () => {
  const event = (eventId: string, state: string | undefined, sequence?: number, assignedTo?: string) => ({
    eventId,
    ...(state ? { state } : {}),
    at: iso(T0 + HOUR),
    ...(sequence !== undefined ? { sequence } : {}),
    ...(assignedTo ? { assignedTo } : {}),
  });

  it('takes in_progress or on_hold as an acknowledgement, without writing back to the ITSM', () => {
    const step = ticketEvent(open(), event('e1', 'in_progress', 3), T0 + HOUR);
    expect(step.state).toMatchObject({ phase: 'awaiting-resolution', acknowledgedAt: iso(T0 + HOUR), lastSequence: 3 });
    expect(records(step.effects)).toEqual(['in_progress']);
    expect(tells(step.effects)).toEqual([]);
    expect(records(ticketEvent(open(), event('e2', 'on_hold'), T0).effects)).toEqual(['on_hold']);
  });

  it('takes resolved or closed as a resolution to verify', () => {
    expect(records(ticketEvent(acknowledgedState(), event('e1', 'resolved'), T0).effects)).toEqual(['resolved']);
    const closed = ticketEvent(open(), event('e2', 'closed'), T0);
    expect(closed.state.phase).toBe('verifying');
    expect(records(closed.effects)).toEqual(['closed']);
    expect(tells(closed.effects)).toEqual([]);
  });

  it('reads the legacy ServiceNow codes that older signals and activity results carry', () => {
    expect(['1', '2', '3', '6', '7', '8'].map(ticketStateOf)).toEqual(['new', 'in_progress', 'on_hold', 'resolved', 'closed', undefined]);
    expect(ticketEvent(open(), event('legacy', '2', 1), T0).state.phase).toBe('awaiting-resolution');
    expect(ticketEvent(acknowledgedState(), event('legacy', '6', 1), T0).state.phase).toBe('verifying');
  });

  it('drops a duplicate event id without waking the workflow', () => {
    const once = ticketEvent(open(), event('e1', 'new', 1), T0).state;
    expect(ticketEvent(once, event('e1', 'in_progress', 2), T0)).toEqual({ state: once, effects: [], wake: false });
  });

  it('drops an event older than one already applied (out of order), but remembers its id', () => {
    const newer = ticketEvent(open(), event('e2', 'new', 5), T0).state;
    const older = ticketEvent(newer, event('e1', 'in_progress', 4), T0);
    expect(older.wake).toBe(false);
    expect(older.effects).toEqual([]);
    expect(older.state.phase).toBe('awaiting-acknowledgement');
    expect(older.state.lastSequence).toBe(5);
    expect(older.state.seenEvents).toContain('e1');
    // The same sequence again is no news either.
    expect(ticketEvent(newer, event('e3', 'in_progress', 5), T0).wake).toBe(false);
  });

  it('keeps only the last 100 event ids', () => {
    let state = open();
    for (let i = 0; i < 120; i++) state = ticketEvent(state, event(`e${i}`, undefined, i), T0).state;
    expect(state.seenEvents).toHaveLength(100);
    expect(state.seenEvents[0]).toBe('e20');
  });

  it('marks a reassignment for the workflow to carry out, and clears it once done', () => {
    const step = ticketEvent(open(), event('e1', 'new', 1, 'user-priya'), T0);
    expect(step.state).toMatchObject({ assignee: 'user-priya', reassignTo: 'user-priya', phase: 'awaiting-acknowledgement' });
    expect(reassigned(step.state, 'user-priya').reassignTo).toBeUndefined();
    // Reassigned again while the first was carried out: the second is still to do.
    const again = ticketEvent(step.state, event('e2', 'new', 2, 'user-sam'), T0).state;
    expect(reassigned(again, 'user-priya').reassignTo).toBe('user-sam');
    // The same assignee is no reassignment.
    expect(ticketEvent(open(), event('e3', 'new', 1, 'user-alex'), T0).state.reassignTo).toBeUndefined();
  });

  it('ignores states that do not apply to the phase, and states without a neutral meaning', () => {
    const resolved = resolvedState();
    const step = ticketEvent(resolved, event('e1', 'in_progress', 9), T0);
    expect(step.state.phase).toBe('verifying');
    expect(step.effects).toEqual([]);
    expect(ticketEvent(open(), event('canceled', undefined, 2), T0).state.phase).toBe('awaiting-acknowledgement');
  });
});

describe('ticket events checked like webhook events', () => {
  const valid = { eventId: 'evt-1', state: 'in_progress', at: iso(T0), sequence: 3 };
  const jiraTime = T0 - HOUR;

  it('accepts what the ServiceNow and Jira webhooks send, legacy codes included', () => {
    expect(ticketEventRefusal(valid, T0)).toBeUndefined();
    expect(ticketEventRefusal({ eventId: 'e', at: iso(T0) }, T0)).toBeUndefined(); // Canceled: no state, no version
    expect(ticketEventRefusal({ ...valid, sequence: 0 }, T0)).toBeUndefined();
    expect(ticketEventRefusal({ ...valid, sequence: 2 ** 31 - 1 }, T0)).toBeUndefined();
    expect(ticketEventRefusal({ ...valid, sequence: jiraTime, assignedTo: '5b10ac8d82e05b22cc7d4ef5', actor: 'alex.romero' }, T0)).toBeUndefined();
    expect(ticketEventRefusal({ ...valid, state: '6' }, T0)).toBeUndefined();
  });

  it.each([
    ['not an object', null, /must be an object/],
    ['an array', [valid], /must be an object \(got an array\)/],
    ['no event id', { ...valid, eventId: undefined }, /^eventId must be a string/],
    ['an event id of 1,001 characters', { ...valid, eventId: 'x'.repeat(1001) }, /^eventId must be a string of 1 to 1000/],
    ['an unknown state', { ...valid, state: 'pwned' }, /^state "pwned" is not a ticket state/],
    ['a state that is not a string', { ...valid, state: 6 }, /^state 6 is not a ticket state/],
    ['no time', { ...valid, at: undefined }, /^at must be an ISO 8601 time/],
    ['a time that is no time', { ...valid, at: 'yesterday' }, /^at must be an ISO 8601 time/],
    ['a time two days ahead', { ...valid, at: iso(T0 + 2 * DAY) }, /more than a day past workflow time/],
    ['a sequence of 1e300', { ...valid, sequence: 1e300 }, /^sequence 1e\+300 is neither a count of updates/],
    ['a negative sequence', { ...valid, sequence: -1 }, /^sequence -1 is neither/],
    ['a fractional sequence', { ...valid, sequence: 1.5 }, /^sequence 1.5 is neither/],
    ['a sequence as text', { ...valid, sequence: '7' }, /^sequence "7" is neither/],
    ['a sequence that is an update time two days ahead', { ...valid, sequence: T0 + 2 * DAY }, /at most a day past workflow time/],
    ['an assignee that is not a string', { ...valid, assignedTo: { id: 1 } }, /^assignedTo must be a string/],
    ['an actor of 1,001 characters', { ...valid, actor: 'a'.repeat(1001) }, /^actor must be a string of at most 1000/],
  ])('refuses %s', (_what, event, reason) => {
    expect(ticketEventRefusal(event, T0)).toMatch(reason);
  });

  it('never throws, whatever the payload', () => {
    for (const event of [undefined, 0, 'x', true, Symbol('s'), () => 1, Object.create(null), { eventId: 'e', at: iso(T0), sequence: Number.NaN }]) {
      expect(() => ticketEvent(open(), event as never, T0)).not.toThrow();
    }
  });

  it('drops a refused event without applying it or remembering its id, and records why', () => {
    const forged = ticketEvent(acknowledgedState(), { eventId: 'evt-9', state: 'resolved', at: iso(T0), sequence: 1e300 }, T0 + HOUR);
    expect(forged.wake).toBe(false);
    expect(forged.effects).toEqual([]);
    expect(forged.state.phase).toBe('awaiting-resolution');
    expect(forged.state.lastSequence).toBe(-1);
    expect(forged.state.seenEvents).not.toContain('evt-9');
    expect(forged.state.droppedEvents).toEqual([{ eventId: 'evt-9', kind: 'invalid', reason: expect.stringMatching(/^sequence 1e\+300/), droppedAt: iso(T0 + HOUR) }]);
    // The real event of that id still applies: a forgery cannot shadow it.
    const real = ticketEvent(forged.state, { eventId: 'evt-9', state: 'resolved', at: iso(T0), sequence: 4 }, T0 + HOUR);
    expect(real.state.phase).toBe('verifying');
    expect(records(real.effects)).toEqual(['resolved']);
  });

  it('records an event not newer than the version applied as stale', () => {
    const newer = ticketEvent(open(), { eventId: 'e2', state: 'new', at: iso(T0), sequence: 5 }, T0).state;
    const replayed = ticketEvent(newer, { eventId: 'e1', state: 'resolved', at: iso(T0), sequence: 5 }, T0 + HOUR);
    expect(replayed.state.phase).toBe('awaiting-acknowledgement');
    expect(replayed.state.droppedEvents).toEqual([{ eventId: 'e1', kind: 'stale', reason: 'version 5 is not newer than version 5 already applied', droppedAt: iso(T0 + HOUR) }]);
  });

  it('keeps only the last 20 dropped events, and a shortened id', () => {
    let state = open();
    for (let i = 0; i < 25; i++) state = ticketEvent(state, { eventId: `bad-${i}`, state: 'bogus', at: iso(T0) }, T0).state;
    expect(state.droppedEvents).toHaveLength(20);
    expect(state.droppedEvents[0]!.eventId).toBe('bad-5');
    const long = ticketEvent(state, { eventId: 'y'.repeat(5000), at: iso(T0) }, T0).state;
    expect(long.droppedEvents.at(-1)!.eventId).toBe('y'.repeat(100));
    expect(ticketEvent(state, { eventId: 42 as never, at: iso(T0) }, T0).state.droppedEvents.at(-1)!.eventId).toBe('(none)');
  });

  it('applies anything unchecked for histories recorded before the check', () => {
    const legacy = ticketEvent(acknowledgedState(), { eventId: 'old', state: 'resolved', at: iso(T0), sequence: 1e300 }, T0, { validate: false });
    expect(legacy.state).toMatchObject({ phase: 'verifying', lastSequence: 1e300 });
  });
});

describe('findings change', () => {
  it('takes the new count and tier, an earlier due date only, and tells the owner in a work note', () => {
    const earlier = iso(T0 + 3 * DAY);
    const step = findingsChanged(open(), { findingCount: 3, tier: 'act', dueAt: earlier }, T0 + HOUR);
    expect(step.state).toMatchObject({ findingCount: 3, dueAt: earlier });
    expect(tells(step.effects)).toEqual([
      { kind: 'membership', state: '', workNote: `Findings changed: this fix now covers 3 findings (was 2); tier act; due ${earlier}.`, at: iso(T0 + HOUR) },
    ]);
    const later = findingsChanged(open(), { findingCount: 2, tier: 'act', dueAt: iso(T0 + 30 * DAY) }, T0);
    expect(later.state.dueAt).toBe(input.dueAt);
    expect(later.effects).toEqual([]);
    expect(later.wake).toBe(true);
  });
});

describe('the ITSM outbox', () => {
  it('keeps one change per kind, the newest, and removes exactly the one written', () => {
    const change = (kind: TicketChange['kind'], workNote: string): TicketChange => ({ kind, state: '', workNote, at: iso(T0) });
    const first = change('membership', 'first');
    const outbox = enqueue(enqueue([first], change('acknowledged', 'ack')), change('membership', 'second'));
    expect(outbox.map((c) => c.workNote)).toEqual(['ack', 'second']);
    const state = { ...open(), outbox };
    // The first membership note was replaced while it was being written: the second stays queued.
    expect(sent(state, first).outbox).toHaveLength(2);
    expect(sent(state, outbox[0]!).outbox.map((c) => c.workNote)).toEqual(['second']);
  });
});

describe('escalation', () => {
  const notified = { notified: { userName: 'jonas.weber', name: 'Jonas Weber' }, topOfChainReached: false };

  it('climbs one level per interval after the deadline', () => {
    const first = escalated(open(), { phase: 'acknowledgement', level: 1 }, notified, T0 + 4 * HOUR);
    expect(first).toMatchObject({ escalationLevel: 1, lastEscalationAt: iso(T0 + 4 * HOUR) });
    expect(nextDeadline(first, input.escalationIntervalMs)).toMatchObject({ kind: 'escalation', level: 2, at: T0 + 12 * HOUR });
  });

  it('stops at the top of the chain', () => {
    const top = escalated(open(), { phase: 'acknowledgement', level: 1 }, { ...notified, topOfChainReached: true }, T0 + 4 * HOUR);
    expect(nextDeadline(top, input.escalationIntervalMs)).toEqual({ kind: 'top-of-chain', phase: 'acknowledgement', slaDeadline: T0 + 4 * HOUR });
    const nobody = escalated(open(), { phase: 'acknowledgement', level: 1 }, { notified: null, topOfChainReached: true }, T0 + 4 * HOUR);
    expect(nobody).toMatchObject({ topOfChainReached: true, escalationLevel: 0 });
  });

  it('does not climb for a phase the ticket left while it ran, but keeps the escalation in its history', () => {
    const state = acknowledgedState();
    const after = escalated(state, { phase: 'acknowledgement', level: 1 }, notified, T0 + 5 * HOUR);
    expect(after).toEqual({ ...state, escalationPeak: 1, escalationCount: 1 });
    expect(after.lastEscalationAt).toBeUndefined();
  });

  it('keeps the peak and the count through acknowledgement, resolution, re-opening and risk acceptance', () => {
    const climbed = [1, 2, 3].reduce(
      (s, level) => escalated(s, { phase: 'acknowledgement', level }, notified, T0 + (4 + 8 * (level - 1)) * HOUR),
      open(),
    );
    expect(climbed).toMatchObject({ escalationLevel: 3, escalationPeak: 3, escalationCount: 3 });
    const acked = acknowledge(climbed, { by: 'alex.romero', via: 'api' }, T0 + DAY).state;
    expect(acked).toMatchObject({ escalationLevel: 0, escalationPeak: 3, escalationCount: 3 });
    // The due date is missed: the climb restarts at level 1, the peak stays, the count goes on.
    const again = escalated(acked, { phase: 'resolution', level: 1 }, notified, T0 + 8 * DAY);
    expect(again).toMatchObject({ escalationLevel: 1, escalationPeak: 3, escalationCount: 4 });
    const resolved = resolve(again, { by: 'alex.romero', via: 'api' }, T0 + 9 * DAY).state;
    expect(resolved).toMatchObject({ escalationLevel: 0, escalationPeak: 3, escalationCount: 4 });
    const reopened = verificationScan(resolved, { scanId: 's2', scannedAt: iso(T0 + 10 * DAY), openFindings: 1 }, T0 + 10 * DAY).state;
    expect(reopened).toMatchObject({ cycle: 1, escalationLevel: 0, escalationPeak: 3, escalationCount: 4 });
    const accepted = acceptRisk(reopened, { ...acceptance, expiresAt: iso(T0 + 40 * DAY) }, T0 + 11 * DAY).state;
    expect(riskExpired(accepted, T0 + 40 * DAY, 2 * DAY).state).toMatchObject({ escalationLevel: 0, escalationPeak: 3, escalationCount: 4 });
  });

  it('counts nothing when nobody was left to notify', () => {
    const nobody = escalated(open(), { phase: 'acknowledgement', level: 1 }, { notified: null, topOfChainReached: true }, T0 + 4 * HOUR);
    expect(nobody).toMatchObject({ escalationPeak: 0, escalationCount: 0 });
  });

  it('escalates an unacknowledged ticket at the due date when that comes first', () => {
    const state = { ...open(), dueAt: iso(T0 + 2 * HOUR) };
    expect(nextDeadline(state, input.escalationIntervalMs)).toMatchObject({ phase: 'acknowledgement', at: T0 + 2 * HOUR });
  });
});

describe('risk acceptance', () => {
  it('pauses the SLA: phase risk-accepted, on hold in the ITSM, escalation reset, waiting for the expiry', () => {
    const escalatedOnce = escalated(open(), { phase: 'acknowledgement', level: 1 }, { notified: { userName: 'j', name: 'J' }, topOfChainReached: false }, T0 + 5 * HOUR);
    const step = acceptRisk(escalatedOnce, acceptance, T0 + 6 * HOUR);
    expect(step.state).toMatchObject({ phase: 'risk-accepted', escalationLevel: 0, riskAcceptance: { ...acceptance, acceptedAt: iso(T0 + 6 * HOUR), resumePhase: 'awaiting-acknowledgement' } });
    expect(records(step.effects)).toEqual(['risk_accepted']);
    expect(tells(step.effects)[0]).toMatchObject({ kind: 'risk-accepted', state: 'on_hold', workNote: expect.stringMatching(/^Risk accepted by sam.okafor at the request of alex.romero until/) });
    expect(nextDeadline(step.state, input.escalationIntervalMs)).toEqual({ kind: 'risk-expiry', at: Date.parse(acceptance.expiresAt) });
  });

  it('answers the same acceptance again without applying it; a renewal keeps when the pause began', () => {
    const accepted = acceptRisk(acknowledgedState(), acceptance, T0 + 6 * HOUR).state;
    expect(acceptRisk(accepted, acceptance, T0 + 7 * HOUR)).toEqual({ state: accepted, effects: [], wake: false });
    const renewed = acceptRisk(accepted, { ...acceptance, expiresAt: iso(T0 + 60 * DAY) }, T0 + 8 * HOUR).state;
    expect(renewed.riskAcceptance).toMatchObject({ acceptedAt: iso(T0 + 6 * HOUR), resumePhase: 'awaiting-resolution', expiresAt: iso(T0 + 60 * DAY) });
  });

  it('on expiry moves the due date by the pause, sets a fresh acknowledgement deadline and re-opens as new', () => {
    const accepted = acceptRisk(acknowledgedState(), acceptance, T0 + 6 * HOUR).state;
    const expiry = Date.parse(acceptance.expiresAt);
    expect(riskExpired(accepted, expiry - 1, 2 * DAY).wake).toBe(false); // woken early: nothing yet
    const step = riskExpired(accepted, expiry, 2 * DAY);
    const paused = expiry - (T0 + 6 * HOUR);
    expect(step.state).toMatchObject({ phase: 'awaiting-acknowledgement', dueAt: iso(Date.parse(input.dueAt) + paused), ackDueAt: iso(expiry + 2 * DAY), cycle: 1, escalationLevel: 0 });
    expect(step.state.riskAcceptance).toBeUndefined();
    expect(step.state.acknowledgedAt).toBeUndefined();
    expect(records(step.effects)).toEqual(['new']);
    expect(tells(step.effects)[0]).toMatchObject({ kind: 'risk-expired', state: 'new', workNote: expect.stringMatching(/^Risk acceptance by sam.okafor expired at/) });
  });

  it('ends with a resolution: the acceptance is dropped', () => {
    const accepted = acceptRisk(open(), acceptance, T0).state;
    const step = ticketEvent(accepted, { eventId: 'e', state: 'resolved', at: iso(T0 + HOUR), sequence: 1 }, T0 + HOUR);
    // Resolving in the ITSM during an acceptance is not an open ticket's resolution: ignored.
    expect(step.state.phase).toBe('risk-accepted');
    const resolvedByApi = resolve(accepted, { by: 'alex.romero', via: 'api' }, T0 + HOUR).state;
    expect(resolvedByApi.phase).toBe('verifying');
    expect(resolvedByApi.riskAcceptance).toBeUndefined();
  });

  it('refuses what breaks the rules, naming the field, against the clock it is given', () => {
    const state = open();
    const now = T0;
    const refusal = (patch: Partial<typeof acceptance>) => acceptRiskRefusal(state, { ...acceptance, ...patch }, now, 'INC1');
    expect(refusal({})).toBeUndefined();
    expect(refusal({ requester: '' })).toEqual({ field: 'requester', message: 'The requester is required.' });
    expect(refusal({ approver: ' ' })).toEqual({ field: 'approver', message: 'The approver is required.' });
    expect(refusal({ reason: 'because' })).toEqual({ field: 'reason', message: 'Say why the risk is accepted, in 10 characters or more.' });
    expect(refusal({ expiresAt: 'next week' })).toEqual({ field: 'expiresAt', message: 'The expiry must be an ISO date-time.' });
    expect(refusal({ expiresAt: iso(now) })).toEqual({ field: 'expiresAt', message: 'The expiry must be in the future.' });
    expect(refusal({ expiresAt: iso(now + 365 * DAY) })).toBeUndefined();
    expect(refusal({ expiresAt: iso(now + 365 * DAY + 1) })).toEqual({ field: 'expiresAt', message: 'A risk acceptance lasts 365 days at most.' });
    expect(refusal({ approver: 'Alex.Romero ' })).toEqual({ field: 'approver', message: 'The approver must be someone other than the requester.' });
    expect(acceptRiskRefusal(resolvedState(), acceptance, now, 'INC1')).toEqual({ message: 'INC1 is already resolved' });
    // A request checks only what it has (no approver yet).
    expect(riskAcceptanceRefusal({ reason: acceptance.reason, expiresAt: acceptance.expiresAt }, now, ['reason', 'expiresAt'])).toBeUndefined();
  });
});

describe('the ServiceNow adapter of the neutral ticket states', () => {
  it('maps every neutral state to its incident state code and back; Canceled has none', () => {
    expect(TICKET_STATES.map((state) => serviceNowStates.toItsm(state))).toEqual(['1', '2', '3', '6', '7']);
    for (const state of TICKET_STATES) expect(serviceNowStates.fromItsm(serviceNowStates.toItsm(state))).toBe(state);
    expect(serviceNowStates.fromItsm('8')).toBeUndefined();
    expect(isTicketState('in_progress')).toBe(true);
    expect(isTicketState('2')).toBe(false);
  });
});
