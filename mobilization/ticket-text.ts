import type { EscalationNotice, Person } from './notifier.js';
import type { TicketDetail } from './plan.js';

// What people read about a golden ticket: the incident's text, the escalation work note and the
// escalation notice. Pure, so the wording has one home whichever ITSM or notifier carries it.

const DAY_MS = 86_400_000;

/** ITSM urgency and impact per tier (1 high, 3 low). */
export const urgencyOf = (tier: string): string => ({ act: '1', attend: '2' })[tier] ?? '3';

export function incidentText(t: TicketDetail): { short_description: string; description: string } {
  const ids = t.findings.map((f) => f.issueId);
  const lines = t.findings.map(
    (f) =>
      `- ${f.issueId} (${f.severity}${f.cvss !== null ? `, CVSS ${f.cvss}` : ''}${f.epss !== null ? `, EPSS ${f.epss}` : ''}${f.kev ? ', in CISA KEV' : ''}; tier ${f.tier})`,
  );
  const where = t.assets.length > 1 ? `${t.assets.length} hosts` : t.assetName;
  return {
    short_description: `Upgrade ${t.component} to ${t.fixedVersion} on ${where} (${ids.length} vulnerabilit${ids.length === 1 ? 'y' : 'ies'}, ${t.tier})`,
    description: [
      `Fix: upgrade ${t.component} to ${t.fixedVersion}.`,
      t.assets.length > 1 ? `Assets: ${t.assets.join(', ')}.` : `Asset: ${t.assetName} (${t.assetKey}).`,
      `Due: ${t.dueAt.toISOString()}.`,
      '',
      'Why it matters (prioritized with CVSS, FIRST EPSS and CISA KEV):',
      ...lines,
    ].join('\n'),
  };
}

export interface EscalationStep {
  ticketKey: string;
  phase: 'acknowledgement' | 'resolution';
  level: number;
  /** How often the ticket was re-opened before this escalation (0: never). */
  cycle?: number;
  slaDeadline: string;
}

export const escalationReason = (step: EscalationStep) => `${step.phase} SLA breached (deadline ${step.slaDeadline})`;

export function escalationWorkNote(step: EscalationStep, manager: Person, owner: string): string {
  return `Escalation level ${step.level}: ${escalationReason(step)}. Escalated to ${manager.name} (${manager.userName}), manager level ${step.level} above the owner ${owner}.`;
}

/** The notice for the manager; its id is stable per (ticket, phase, level, re-opening), so it is sent once. */
export function escalationNotice(
  step: EscalationStep,
  t: TicketDetail,
  people: { owner: Person; manager: Person },
  ticketUrl: string,
  now = Date.now(),
): EscalationNotice {
  const ticket = t.externalNumber ?? step.ticketKey;
  return {
    id: `escalation:${step.ticketKey}:${step.phase}:${step.level}${step.cycle ? `:reopened-${step.cycle}` : ''}`,
    ticketKey: step.ticketKey,
    ticketNumber: t.externalNumber ?? '',
    ticketUrl,
    summary: incidentText(t).short_description,
    tier: t.tier,
    owner: people.owner,
    manager: people.manager,
    level: step.level,
    phase: step.phase,
    slaDeadline: step.slaDeadline,
    daysOverdue: Math.max(0, Math.round(((now - Date.parse(step.slaDeadline)) / DAY_MS) * 10) / 10),
    ask:
      step.phase === 'acknowledgement'
        ? `Make sure ${people.owner.name} acknowledges ${ticket}: acknowledgement was due ${step.slaDeadline}.`
        : `Make sure ${people.owner.name} resolves ${ticket}: the fix was due ${step.slaDeadline}.`,
  };
}
