import { fromServiceNowState, toServiceNowState } from './servicenow/states.js';

// What the platform knows of an ITSM ticket, whichever ITSM holds it. The remediation workflow and
// its messages speak only these states; each ITSM's adapter (servicenow/ today) maps its own codes
// to and from them at the edge: the webhook route, the reconciliation poll and the writes.

export const TICKET_STATES = ['new', 'in_progress', 'on_hold', 'resolved', 'closed'] as const;
export type TicketState = (typeof TICKET_STATES)[number];

export const isTicketState = (value: unknown): value is TicketState => TICKET_STATES.includes(value as TicketState);

/** Maps one ITSM's state codes to the neutral states and back. */
export interface TicketStateMapping {
  /** undefined: the ITSM state has no neutral meaning (e.g. ServiceNow's Canceled); the event still carries its version and assignee. */
  fromItsm(code: string): TicketState | undefined;
  toItsm(state: TicketState): string;
}

export const serviceNowStates: TicketStateMapping = { fromItsm: fromServiceNowState, toItsm: toServiceNowState };
