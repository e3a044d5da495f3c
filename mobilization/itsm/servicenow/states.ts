import type { TicketState } from '../index.js';

// ServiceNow incident state codes (the `state` field) and the neutral ticket states they mean.
// 8 (Canceled) has no neutral counterpart.

const FROM_CODE: Readonly<Record<string, TicketState>> = { '1': 'new', '2': 'in_progress', '3': 'on_hold', '6': 'resolved', '7': 'closed' };
const TO_CODE: Readonly<Record<TicketState, string>> = { new: '1', in_progress: '2', on_hold: '3', resolved: '6', closed: '7' };

export const fromServiceNowState = (code: string): TicketState | undefined => FROM_CODE[code];
export const toServiceNowState = (state: TicketState): string => TO_CODE[state];
