import type { EscalationNotice, Person } from './notifier.js';
import type { TicketDetail } from './plan.js';
import { mitigationsFor } from './mitigations.js';

// What people read about a golden ticket: the incident's text, the escalation work note and the
// escalation notice. Pure, so the wording has one home whichever ITSM or notifier carries it.

const DAY_MS = 86_400_000;

/** ITSM urgency and impact per tier (1 high, 3 low). */
export const urgencyOf = (tier: string): string => ({ act: '1', attend: '2' })[tier] ?? '3';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The one-line ask of a ticket, by its remediation action. */
function headline(t: TicketDetail): string {
  const where = t.assets.length > 1 ? `${t.assets.length} hosts` : t.assetName;
  const packages = plural(t.lines.length, 'package');
  switch (t.action) {
    case 'os-layer':
      return `Rebuild ${where} with patched OS packages (${packages})`;
    case 'base-image':
      return `Rebuild base image ${t.assetName} with patched OS packages (${packages}, ${plural(t.assets.length, 'image')} built on it)`;
    case 'manifest':
      return `Bump ${packages} in ${t.component} on ${where}`;
    case 'product':
      return `Upgrade ${t.component} to ${t.fixedVersion || 'a fixed version'} on ${where}`;
    case 'os-patch':
      return `Patch OS packages on ${where} (${packages})`;
    case 'config':
      return `Change the configuration of ${where} (${plural(t.findings.length, 'finding')})`;
    case 'secret':
      return `Rotate ${plural(t.findings.length, 'exposed secret')} in ${where}`;
    case 'mitigation':
      return `Mitigate ${t.component} on ${where}: no fix known`;
    default:
      return `Upgrade ${t.component} to ${t.fixedVersion} on ${where}`;
  }
}

function lineText(l: TicketDetail['lines'][number]): string {
  const also = l.packages.length > 1 || l.packages[0] !== l.package ? ` (${l.packages.join(', ')})` : '';
  const to = l.target ? ` -> ${l.target}` : '';
  return `- ${l.package}${also} ${l.installed || '(version unknown)'}${to}: ${l.issueIds.join(', ')}`;
}

function whatToDo(t: TicketDetail): string[] {
  if (t.action === 'mitigation') {
    const mitigations = mitigationsFor({
      assetKey: t.assetKey,
      component: t.component,
      issueIds: [...new Set(t.findings.map((f) => f.issueId))],
      locations: [...new Set(t.findings.map((f) => f.location))],
      cwes: [...new Set(t.findings.flatMap((f) => f.cwes))],
      assetKind: t.assetKey.split(':')[0] === 'host' ? 'host' : 'other',
    });
    return [
      'No fixed version is known. Apply one of these compensating controls; once one is in place, record it',
      '(PUT /api/v1/controls/{name} with the JSON shown) and the findings are re-scored:',
      ...mitigations.flatMap((m, i) => [`${i + 1}. ${m.advice}`, ...(m.control ? [`   ${JSON.stringify(m.control)}`] : [])]),
    ];
  }
  if (t.action === 'config') return ['Change each setting below:', ...t.findings.map((f) => `- ${f.issueId}: ${f.component}${f.location ? ` (${f.location})` : ''}`)];
  if (t.action === 'secret') return ['Rotate each secret below, then remove it from the image or repository:', ...t.findings.map((f) => `- ${f.issueId}: ${f.location || f.component}`)];
  if (t.action === 'package') return [`Fix: upgrade ${t.component} to ${t.fixedVersion}.`];
  return ['Fix: upgrade each package to the version shown (installed -> target: vulnerabilities).', ...t.lines.map(lineText)];
}

export function incidentText(t: TicketDetail): { short_description: string; description: string } {
  const ids = [...new Set(t.findings.map((f) => f.issueId))];
  const lines = t.findings.map(
    (f) =>
      `- ${f.issueId}${f.aliases?.length ? ` (also ${f.aliases.join(', ')})` : ''} (${f.severity}${f.cvss !== null ? `, CVSS ${f.cvss}` : ''}${f.epss !== null ? `, EPSS ${f.epss}` : ''}${f.kev ? ', in CISA KEV' : ''}; tier ${f.tier})`,
  );
  return {
    short_description: `${headline(t)} (${ids.length} vulnerabilit${ids.length === 1 ? 'y' : 'ies'}, ${t.tier})`,
    description: [
      ...(t.orphanReason
        ? [`Orphan queue: ${t.orphanReason}. Find the owner and reassign this ticket (the platform follows the reassignment), or fix it.`, '']
        : []),
      ...whatToDo(t),
      t.action === 'base-image'
        ? `Base image: ${t.assetName} (${t.assetKey}). Images built on it, fixed by their next build: ${t.assets.join(', ')}.`
        : t.assets.length > 1
          ? `Assets: ${t.assets.join(', ')}.`
          : `Asset: ${t.assetName} (${t.assetKey}).`,
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
