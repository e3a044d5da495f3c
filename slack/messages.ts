import type { types } from '@slack/bolt';
import type { CampaignFailure, CampaignResults } from '../scoping/campaigns.js';
import type { ValidationResults } from '../validation/runs.js';
import type { EscalationDigestNotice, OrphanReportNotice } from '../mobilization/notifier.js';
import { MAX_RISK_ACCEPTANCE_DAYS, MIN_REASON_LENGTH } from '../mobilization/risk-acceptance.js';
import type { CampaignState } from '../workflows/campaign.js';
import { HELP } from './commands.js';

// Block Kit for every message the bot sends. Each builder returns `text` (the notification and
// accessibility fallback) with its blocks.

type Block = types.KnownBlock;
export interface Message {
  text: string;
  blocks: Block[];
}

/** Slack's mrkdwn treats &, < and > as control characters. */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const section = (text: string): Block => ({ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } });
const context = (text: string): Block => ({ type: 'context', elements: [{ type: 'mrkdwn', text: text.slice(0, 3000) }] });
const header = (text: string): Block => ({ type: 'header', text: { type: 'plain_text', text: text.slice(0, 150) } });
const link = (url: string | undefined, label: string) => (url ? `<${url}|${esc(label)}>` : esc(label));
const day = (iso: string | null | undefined) => (iso ? iso.slice(0, 10) : 'n/a');

export const ACTIONS = {
  acknowledge: 'ticket_acknowledge',
  requestException: 'ticket_request_exception',
  approveException: 'exception_approve',
  rejectException: 'exception_reject',
} as const;
export const EXCEPTION_MODAL = 'exception_request';

export function textMessage(text: string): Message {
  return { text, blocks: [section(text)] };
}

export function helpMessage(problem?: string): Message {
  const lines = HELP.map(([usage, what]) => `\`${esc(usage)}\`  ${esc(what)}`);
  return {
    text: problem ? `${problem}. Here is what I can do.` : 'What I can do',
    blocks: [...(problem ? [section(`:thinking_face: ${esc(problem)}. Here is what I can do:`)] : [header('CTEM commands')]), section(lines.join('\n'))],
  };
}

export function scopesMessage(scopes: Array<{ name: string; selector: Record<string, unknown>; description: string | null }>): Message {
  if (!scopes.length) return textMessage('No scopes yet. Create one with `/ctem scope create <name> service=<business service>`.');
  const lines = scopes.map((s) => `• *${esc(s.name)}*  \`${esc(JSON.stringify(s.selector))}\`${s.description ? `  ${esc(s.description)}` : ''}`);
  return { text: `${scopes.length} scopes`, blocks: [header('Scopes'), section(lines.join('\n'))] };
}

export function campaignStartedMessage(c: { id: string; scope: string; hypothesis?: string; userId: string; url?: string }): Message {
  return {
    text: `Campaign ${c.id} started on ${c.scope}`,
    blocks: [
      section(`:mag: <@${c.userId}> started campaign *${esc(c.id)}* on scope *${esc(c.scope)}*${c.hypothesis ? `\n>${esc(c.hypothesis)}` : ''}`),
      context(`Discovery, then prioritization; results are posted here. ${link(c.url, 'Open in Temporal')}  ·  \`/ctem status ${esc(c.id)}\``),
    ],
  };
}

function exposureLines(e: CampaignResults['top'][number], rank: number): string {
  const where = `${esc(e.component)} ${esc(e.version)} on ${esc(e.asset)}`;
  const fix = e.fixedVersion ? `fix: ${esc(e.fixedVersion)}` : 'no fix yet';
  const why = e.reasons.slice(0, 5).map((r) => `    ◦ ${esc(r)}`).join('\n');
  return `${rank}. *${esc(e.issueId)}* (${esc(e.tier ?? 'unscored')}, score ${e.score ?? 'n/a'}, due ${day(e.dueAt)})  ${where}; ${fix}${e.ticketKey ? `; ticket \`${esc(e.ticketKey)}\`` : ''}\n${why}`;
}

export function campaignResultsMessage(r: CampaignResults): Message {
  const blocks: Block[] = [
    header(`Campaign results: ${r.scope}`),
    section(
      [
        `*${esc(r.campaignId)}*${r.hypothesis ? `\n>${esc(r.hypothesis)}` : ''}`,
        `${r.assets} assets in scope · ${r.openExposures} open exposures · *${r.act} act* · ${r.attend} attend`,
        `Discovery: ${r.discovery.runs} source runs${r.discovery.failed ? `, ${r.discovery.failed} failed` : ''}`,
        ...(r.hypothesisMatches ? [`Hypothesis: ${r.hypothesisMatches.cves.map(esc).join(', ')} open on ${r.hypothesisMatches.exposures} exposures in scope`] : []),
      ].join('\n'),
    ),
  ];
  if (r.top.length) {
    blocks.push({ type: 'divider' }, section(`*Top exposures, and why*\n${r.top.map((e, i) => exposureLines(e, i + 1)).join('\n')}`));
  } else {
    blocks.push(section('Nothing open in this scope.'));
  }
  blocks.push(context(`Workflow \`${esc(r.campaignId)}\` · ${link(r.workflowUrl, 'Open in Temporal')} · started by ${r.requestedBy.startsWith('slack:') ? `<@${r.requestedBy.slice(6)}>` : esc(r.requestedBy)}`));
  return { text: `Campaign ${r.campaignId}: ${r.openExposures} open exposures, ${r.act} act, top ${r.top[0]?.issueId ?? 'none'}`, blocks };
}

export function validationResultsMessage(r: ValidationResults): Message {
  const g = r.graph;
  const p = r.probes;
  const lines = [
    `*${esc(r.runId)}* (${esc(r.trigger)})`,
    g ? `Attack paths to crown jewels: *${g.paths}* over ${g.compromisable} compromisable assets · ${g.jewels} crown jewels · ${g.chokePoints} choke points` : 'Attack graph: not computed',
    p.enabled
      ? `Safe checks: ${p.probed} of ${p.targets} services probed (${p.reachable} reachable, ${p.unreachable} not)${p.outsideAllowList ? ` · ${p.outsideAllowList} outside the allow-list, not contacted` : ''}${p.versionChanged ? ` · ${p.versionChanged} now show another version` : ''}`
      : 'Safe checks: off (no allow-list configured)',
    `Compensating controls: ${r.controls.verified} verified, ${r.controls.failed} failed, ${r.controls.unverified} unverified`,
    `Tiers moved with the evidence: ${r.tiersMoved.up} up, ${r.tiersMoved.down} down`,
  ];
  const blocks: Block[] = [header(`Validation: ${r.scope}`), section(lines.join('\n'))];
  if (r.topFixes.length) {
    blocks.push(section(`*Fixes that cut the most paths*\n${r.topFixes.map((f, i) => `${i + 1}. \`${esc(f.ticketKey)}\`: ${f.pathsCut} paths`).join('\n')}`));
  }
  blocks.push(context(`${link(r.workflowUrl, 'Open in Temporal')}${r.requestedBy ? ` · started by ${r.requestedBy.startsWith('slack:') ? `<@${r.requestedBy.slice(6)}>` : esc(r.requestedBy)}` : ''}`));
  return { text: `Validation ${r.runId}: ${g?.paths ?? 0} attack paths, ${g?.chokePoints ?? 0} choke points`, blocks };
}

export function campaignFailedMessage(f: CampaignFailure): Message {
  return {
    text: `Campaign ${f.campaignId} failed: ${f.error}`,
    blocks: [section(`:warning: Campaign *${esc(f.campaignId)}* on scope *${esc(f.scope)}* failed: ${esc(f.error)}`), context(link(f.workflowUrl, 'Open in Temporal'))],
  };
}

export function campaignStatusMessage(id: string, s: { state?: CampaignState; status: string; url?: string; startedAt?: string }): Message {
  const st = s.state;
  const lines = [
    `*${esc(id)}*: ${esc(st?.phase ?? s.status)}`,
    ...(st ? [`Scope ${esc(st.scope)} · ${st.assets} assets · discovery ${st.discovery.completed}/${st.discovery.runs} runs${st.discovery.failed ? `, ${st.discovery.failed} failed` : ''}`] : []),
    ...(st?.openExposures !== undefined ? [`${st.openExposures} open exposures in scope`] : []),
    ...(st?.error ? [`Error: ${esc(st.error)}`] : []),
  ];
  return { text: `${id}: ${st?.phase ?? s.status}`, blocks: [section(lines.join('\n')), context(`${s.startedAt ? `started ${s.startedAt} · ` : ''}${link(s.url, 'Open in Temporal')}`)] };
}

export function exposuresMessage(title: string, items: CampaignResults['top'], total: number | string): Message {
  if (!items.length) return textMessage(`${title}: nothing open.`);
  return {
    text: `${title}: ${total} open exposures, top ${items[0]!.issueId}`,
    blocks: [header(title), section(items.map((e, i) => exposureLines(e, i + 1)).join('\n')), context(`${total} open exposures in all; ranked by score, then due date.`)],
  };
}

export interface TicketView {
  key: string;
  workflowId: string;
  externalNumber: string | null;
  state: string;
  owner: string | null;
  tier: string;
  asset: { name: string };
  fix: { component: string; fixedVersion: string };
  dueAt: string;
  ackDueAt: string;
  escalationLevel: number;
  findingCount: number;
}

const CLOSED_STATES = new Set(['resolved', 'closed']);

export function ticketBlocks(t: TicketView, live?: { phase?: string; riskAcceptance?: { expiresAt: string } }, url?: string): Block[] {
  const name = t.externalNumber ?? t.key;
  const phase = live?.phase ?? t.state;
  const lines = [
    `*${esc(name)}*  Upgrade ${esc(t.fix.component)} to ${esc(t.fix.fixedVersion)} on ${esc(t.asset.name)}`,
    `${esc(t.tier)} · ${t.findingCount} findings · owner ${esc(t.owner ?? 'nobody')} · ${esc(phase)} · due ${day(t.dueAt)}${t.escalationLevel ? ` · escalated to level ${t.escalationLevel}` : ''}`,
    ...(live?.riskAcceptance ? [`Risk accepted until ${day(live.riskAcceptance.expiresAt)}`] : []),
  ];
  const blocks: Block[] = [section(lines.join('\n'))];
  const open = !CLOSED_STATES.has(t.state) && phase !== 'resolved' && phase !== 'verifying';
  const elements: types.Button[] = [];
  if (open && (t.state === 'new' || t.state === 'opening' || phase === 'awaiting-acknowledgement')) {
    elements.push({ type: 'button', action_id: ACTIONS.acknowledge, text: { type: 'plain_text', text: 'Acknowledge' }, style: 'primary', value: t.key });
  }
  if (open && phase !== 'risk-accepted') {
    elements.push({ type: 'button', action_id: ACTIONS.requestException, text: { type: 'plain_text', text: 'Request exception' }, value: t.key });
  }
  if (elements.length) blocks.push({ type: 'actions', block_id: `ticket:${t.key}`.slice(0, 255), elements });
  blocks.push(context(`\`${esc(t.key)}\` · ${link(url, 'workflow')}`));
  return blocks;
}

export function ticketsMessage(title: string, tickets: TicketView[], urlOf: (workflowId: string) => string | undefined): Message {
  if (!tickets.length) return textMessage(`${title}: none open. :tada:`);
  const blocks: Block[] = [header(title)];
  for (const t of tickets.slice(0, 15)) blocks.push(...ticketBlocks(t, undefined, urlOf(t.workflowId)), { type: 'divider' });
  if (tickets.length > 15) blocks.push(context(`and ${tickets.length - 15} more`));
  return { text: `${title}: ${tickets.length}`, blocks };
}

export function orphansMessage(report: { generatedAt: string; orphanAssets: number; actionFindings: number; assets: Array<{ name: string; openFindings: number; actionFindings: number }> }): Message {
  const lines = report.assets.slice(0, 10).map((a) => `• ${esc(a.name)}: ${a.openFindings} open, ${a.actionFindings} act/attend`);
  return {
    text: `${report.orphanAssets} assets without an owner`,
    blocks: [
      header('Assets without an owner'),
      section(`${report.orphanAssets} assets have no owner; ${report.actionFindings} act/attend findings on them wait in the orphan queue.\n${lines.join('\n')}`),
      context(`Report of ${report.generatedAt}. Give them an owner in the CMDB and their golden tickets open.`),
    ],
  };
}

export function orphanReportMessage(n: OrphanReportNotice): Message {
  const message = orphansMessage({
    generatedAt: n.generatedAt,
    orphanAssets: n.orphanedAssets,
    actionFindings: n.openFindings,
    assets: n.sample.map((s) => ({ name: s.name, openFindings: s.openFindings, actionFindings: s.openFindings })),
  });
  if (!n.orphanTickets) return message;
  // The orphan queue: tickets held by the fallback owner until someone finds the real one.
  const lines = n.ticketSample.map((t) => `• ${esc(t.ticket)} on ${esc(t.assetName)}: ${esc(t.reason)}${t.owner ? ` (held by ${esc(t.owner)})` : ' (nobody holds it)'}`);
  const more = n.orphanTickets > n.ticketSample.length ? `\n…and ${n.orphanTickets - n.ticketSample.length} more.` : '';
  return {
    text: `${message.text}; ${n.orphanTickets} tickets in the orphan queue`,
    blocks: [...message.blocks, section(`*${n.orphanTickets} tickets in the orphan queue*\n${lines.join('\n')}${more}`)],
  };
}

/** Lines per section: a section holds 3000 characters, and a line about 200. */
const DIGEST_LINES_PER_SECTION = 12;
/** Slack takes 50 blocks a message: beyond this many tickets the digest says how many more. */
const DIGEST_MAX_LINES = 240;

const days = (n: number) => `${n} day${n === 1 ? '' : 's'}`;
const levelWords = (level: number) => (level === 1 ? "you are the owner's manager" : `you are ${level} levels above the owner`);

/** One message per manager per escalation round: every overdue ticket of their reports, the most overdue first. */
export function escalationDigestMessage(n: EscalationDigestNotice): Message {
  const count = n.escalations.length;
  const owners = new Set(n.escalations.map((e) => e.owner.userName)).size;
  const title = `${count} overdue ticket${count === 1 ? '' : 's'} of ${owners === 1 ? esc(n.escalations[0]!.owner.name) : `${owners} of your reports`}`;
  const lines = n.escalations.slice(0, DIGEST_MAX_LINES).map(
    (e) =>
      `• ${link(e.ticketUrl, e.ticketNumber)}  ${esc(e.fix)}
   owner *${esc(e.owner.name)}* (${esc(e.owner.userName)}) · ${esc(e.tier)} · ${e.phase} ${days(e.daysOverdue)} overdue (since ${day(e.slaDeadline)}) · level ${e.level}: ${levelWords(e.level)}`,
  );
  const sections: Block[] = [];
  for (let i = 0; i < lines.length; i += DIGEST_LINES_PER_SECTION) sections.push(section(lines.slice(i, i + DIGEST_LINES_PER_SECTION).join('\n')));
  const acknowledging = n.escalations.some((e) => e.phase === 'acknowledgement');
  const resolving = n.escalations.some((e) => e.phase === 'resolution');
  const ask = [acknowledging ? 'acknowledged' : '', resolving ? 'resolved' : ''].filter(Boolean).join(' or ');
  return {
    text: `Escalation: ${count} overdue ticket${count === 1 ? '' : 's'} of your reports (${n.escalations.map((e) => e.ticketNumber).slice(0, 20).join(', ')}${count > 20 ? ', ...' : ''})`,
    blocks: [
      header(`Escalation: ${title}`),
      section(`*What is asked of you:* make sure these tickets are ${ask}: their SLA has passed.`),
      ...sections,
      ...(count > DIGEST_MAX_LINES ? [context(`and ${count - DIGEST_MAX_LINES} more; the tickets API lists them all.`)] : []),
      context(`Escalation round of ${day(n.roundAt)} · digest \`${esc(n.id)}\``),
    ],
  };
}

export function exceptionModal(t: TicketView, privateMetadata: string): types.View {
  return {
    type: 'modal',
    callback_id: EXCEPTION_MODAL,
    private_metadata: privateMetadata,
    title: { type: 'plain_text', text: 'Request an exception' },
    submit: { type: 'plain_text', text: 'Send to security' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      section(`Accept the risk of *${esc(t.externalNumber ?? t.key)}* (${esc(t.fix.component)} on ${esc(t.asset.name)}) until a date. Security operations decide.`),
      {
        type: 'input',
        block_id: 'reason',
        label: { type: 'plain_text', text: 'Reason' },
        element: { type: 'plain_text_input', action_id: 'value', multiline: true, min_length: MIN_REASON_LENGTH, max_length: 2000 },
      },
      {
        type: 'input',
        block_id: 'expiry',
        label: { type: 'plain_text', text: 'Accept until' },
        hint: { type: 'plain_text', text: `At most ${MAX_RISK_ACCEPTANCE_DAYS} days from now; the ticket re-opens then.` },
        element: { type: 'datepicker', action_id: 'value' },
      },
    ],
  };
}

export interface ExceptionView {
  id: number;
  ticketKey: string;
  reason: string;
  expiresAt: string;
  status: string;
  decidedBy: string | null;
}

export function exceptionApprovalMessage(r: ExceptionView, t: TicketView, requesterId: string): Message {
  const summary = `<@${requesterId}> asks to accept the risk of *${esc(t.externalNumber ?? t.key)}* (${esc(t.fix.component)} on ${esc(t.asset.name)}, ${esc(t.tier)}) until *${day(r.expiresAt)}*.\n>${esc(r.reason)}`;
  const decided = r.status !== 'pending';
  return {
    text: decided ? `Exception ${r.status} for ${t.externalNumber ?? t.key}` : `Exception requested for ${t.externalNumber ?? t.key}`,
    blocks: [
      section(summary),
      decided
        ? context(`${r.status === 'approved' ? ':white_check_mark: Approved' : ':x: Rejected'} by ${r.decidedBy?.startsWith('slack:') ? `<@${r.decidedBy.slice(6)}>` : esc(r.decidedBy ?? '?')}`)
        : {
            type: 'actions',
            block_id: `exception:${r.id}`,
            elements: [
              { type: 'button', action_id: ACTIONS.approveException, text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value: String(r.id) },
              { type: 'button', action_id: ACTIONS.rejectException, text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value: String(r.id) },
            ],
          },
      context(`Request ${r.id} · golden ticket \`${esc(t.key)}\``),
    ],
  };
}
