// What mobilization tells people outside the ITSM. The remediation activities call a Notifier
// when one is configured (the Slack bot is one); with none, the ServiceNow work note and watch
// list are the only notification. Implementations must be idempotent per notice id: activities
// retry, and a retried escalation must not DM a manager twice.

export interface Person {
  userName: string;
  name: string;
  email?: string;
}

/** An SLA breach escalated to one manager of the owner's chain. */
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

/** Assets without an owner, from the weekly orphan report. */
export interface OrphanReportNotice {
  id: string;
  generatedAt: string;
  orphanedAssets: number;
  openFindings: number;
  /** The first few, for the message body. */
  sample: Array<{ assetKey: string; name: string; openFindings: number }>;
}

export interface Notifier {
  escalation(notice: EscalationNotice): Promise<void>;
  orphanReport(notice: OrphanReportNotice): Promise<void>;
}
