// What mobilization tells people outside the ITSM. The activities call a Notifier when one is
// configured (the Slack bot is one); with none, the ITSM work note and watch list are the only
// notification and escalation digests are still recorded. Implementations must be idempotent per
// notice id: activities retry, and a retried digest must not DM a manager twice.

export interface Person {
  userName: string;
  name: string;
  email?: string;
}

/**
 * An SLA breach escalated to one manager of the owner's chain: what the escalation activity knows
 * of one ticket. Managers hear of it in their round's EscalationDigestNotice, not one by one.
 */
export interface EscalationNotice {
  /** Stable per (ticket, phase, level): the deduplication key. */
  id: string;
  ticketKey: string;
  ticketNumber: string;
  /** Link to the incident in the ITSM, when known. */
  ticketUrl?: string;
  summary: string;
  tier: string;
  owner: Person;
  /** The manager being asked to act. */
  manager: Person;
  /** 1: the owner's manager; n: n levels above the owner. */
  level: number;
  phase: 'acknowledgement' | 'resolution';
  slaDeadline: string;
  daysOverdue: number;
  /** What the manager is asked to do, in one sentence. */
  ask: string;
}

/** One overdue ticket of a digest. */
export interface DigestedEscalation {
  ticketKey: string;
  /** The ITSM's number (INC0010001); the ticket key while it has none. */
  ticketNumber: string;
  ticketUrl?: string;
  /** What the fix is, in a few words (`openssl to 3.0.13 on payments-api`). */
  fix: string;
  tier: string;
  owner: Person;
  phase: 'acknowledgement' | 'resolution';
  /** 1: the manager is the owner's manager; n: n levels above the owner. */
  level: number;
  slaDeadline: string;
  daysOverdue: number;
}

/** One message per manager per escalation round, naming every ticket of their reports escalated to them in it. */
export interface EscalationDigestNotice {
  /** `<manager>:<round start, ISO>`: the digest's key and the deduplication key. */
  id: string;
  manager: Person;
  roundAt: string;
  escalations: DigestedEscalation[];
}

/** Assets without an owner, from the weekly orphan report. */
export interface OrphanReportNotice {
  id: string;
  generatedAt: string;
  orphanedAssets: number;
  openFindings: number;
  /** The first few, for the message body. */
  sample: Array<{ assetKey: string; name: string; openFindings: number }>;
  /** Tickets in the orphan queue: how many, and the first few with why they are there. */
  orphanTickets: number;
  ticketSample: Array<{ ticket: string; assetName: string; reason: string; owner: string | null }>;
}

export interface Notifier {
  escalationDigest(notice: EscalationDigestNotice): Promise<void>;
  orphanReport(notice: OrphanReportNotice): Promise<void>;
}
