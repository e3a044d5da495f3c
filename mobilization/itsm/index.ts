import { fromServiceNowState, toServiceNowState } from './servicenow/states.js';

// What the platform knows of an ITSM ticket, whichever ITSM holds it. The remediation workflow and
// its messages speak only these states; each ITSM's adapter (servicenow/, jira/) maps its own codes
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

// ---- the ITSM-neutral interface the golden tickets are written through ----------------------------

export const ITSM_NAMES = ['servicenow', 'jira'] as const;
export type ItsmName = (typeof ITSM_NAMES)[number];

/** How people write each ITSM's name (in orphan reasons, notices). */
export const ITSM_LABEL: Record<ItsmName, string> = { servicenow: 'ServiceNow', jira: 'Jira' };

/** A person as the ITSM knows them. */
export interface ItsmUser {
  /** The ITSM's id, what a ticket's assignee holds (ServiceNow sys_id, Jira account id); '' when the ITSM has no account for the person. */
  id: string;
  /** The platform's name for the person (asset owners, escalation records): ServiceNow user_name, the people directory's user for Jira. */
  userName: string;
  name: string;
  email?: string;
  /** false: the account is deactivated (the ticket belongs in the orphan queue). */
  active: boolean;
}

/** 1 most urgent .. 3 least. */
export type TicketUrgency = '1' | '2' | '3';

export interface NewTicket {
  /** The golden ticket's key: creation is idempotent on it (a retry finds the ticket it opened). */
  ticketKey: string;
  summary: string;
  description: string;
  /** The ITSM id of the assignee (from findUser); unassigned when absent. */
  assigneeId?: string;
  urgency: TicketUrgency;
  /** Routing context (which Jira project): the owner's user name and the asset's business service. */
  owner: string;
  businessService?: string | null;
}

export interface ItsmTicket {
  /** The ITSM's id (ServiceNow sys_id, Jira issue id). */
  id: string;
  /** What people call it (INC0010001, PAY-12). */
  number: string;
  /** undefined: the ITSM state has no neutral meaning. */
  state?: TicketState;
  /** ITSM id of the assignee; '' when unassigned. */
  assignedTo: string;
  /** The record's version, growing with every change (ServiceNow sys_mod_count, Jira's updated time in ms). */
  sequence: number;
  url: string;
}

export interface TicketUpdate {
  state?: TicketState;
  /** A work note (ServiceNow journal, Jira comment). */
  workNote?: string;
  /** Written with a resolution or a verified close. */
  closeNotes?: string;
  /** ITSM ids to add to the ticket's watchers (escalated managers); existing watchers stay. */
  watchersAdd?: string[];
  /** Escalation level reached (1: first manager...): raises the ticket's escalation or priority, never lowers it. */
  escalationLevel?: number;
  /** Reassigns the ticket to this ITSM user id (an orphan handed over to the owner found since). */
  assigneeId?: string;
}

/** One ITSM, as the golden tickets use it. Every method may be retried: creation is keyed, updates converge. */
export interface Itsm {
  readonly name: ItsmName;
  /** By user name or e-mail; null when the ITSM does not know the person. */
  findUser(userNameOrEmail: string): Promise<ItsmUser | null>;
  /** By the ITSM's own id (an assignee carried by a webhook). */
  userById(id: string): Promise<ItsmUser | null>;
  /** The person first, then their manager, the manager's manager...; empty when the person is unknown. */
  managementChain(userName: string): Promise<ItsmUser[]>;
  createTicket(ticket: NewTicket): Promise<ItsmTicket>;
  getTicket(id: string): Promise<ItsmTicket | null>;
  updateTicket(id: string, update: TicketUpdate): Promise<ItsmTicket>;
  /** Where a person opens the ticket. */
  ticketUrl(ticket: { id: string; number: string }): string;
}
