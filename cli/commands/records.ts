import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

// `ctem exposures|findings list|show`, `ctem tickets list|show` and `ctem ticket ack|resolve|
// accept-risk`: what the API lists and does, from a terminal. Tables for people, `--json` for
// scripts (the API's own JSON, unchanged).

type Row = Record<string, unknown>;

/** A fixed-width table of the chosen columns; long values are cut with an ellipsis. */
function table(rows: Row[], columns: Array<[header: string, value: (r: Row) => unknown, width: number]>): string {
  const cell = (v: unknown, w: number) => {
    const s = v === null || v === undefined ? '' : String(v);
    return (s.length > w ? `${s.slice(0, w - 1)}…` : s).padEnd(w);
  };
  return [columns.map(([h, , w]) => cell(h, w)).join(' '), ...rows.map((r) => columns.map(([, f, w]) => cell(f(r), w)).join(' '))].map((l) => l.trimEnd()).join('\n');
}

const day = (v: unknown) => (typeof v === 'string' ? v.slice(0, 10) : '');

interface Page {
  items: Row[];
  next: string | null;
  estimate: { count: number; exact: boolean };
}

/** The foot of a list: how many of how many, and how to ask for the next page. */
const pageFoot = (b: Page) => `${b.items.length} of ${b.estimate.exact ? b.estimate.count : `about ${b.estimate.count}`}${b.next ? ` (next page: --after ${b.next})` : ''}`;

const EXPOSURE_FILTERS = ['status', 'tier', 'scope', 'issue', 'asset', 'owner', 'ticket', 'kev', 'internet-facing', 'business-service', 'q', 'limit', 'after'] as const;
const TICKET_FILTERS = ['state', 'owner', 'action', 'orphaned', 'escalated', 'overdue', 'limit', 'after'] as const;
const QUERY_NAMES: Record<string, string> = { issue: 'issueId', 'internet-facing': 'internetFacing', 'business-service': 'businessService' };

function query(values: Record<string, unknown>, names: readonly string[]): string {
  const q = new URLSearchParams();
  for (const n of names) if (typeof values[n] === 'string') q.set(QUERY_NAMES[n] ?? n, values[n] as string);
  const s = q.toString();
  return s ? `?${s}` : '';
}

const USAGE = `usage: ctem exposures list [--tier T] [--status open|closed|all] [--scope S] [--issue ID] [--asset A] [--owner O]
                             [--business-service S] [--q TEXT] [--ticket KEY] [--kev true|false] [--internet-facing true|false]
                             [--limit N] [--after CURSOR] [--json]
       ctem exposures show ID [--json]
       ctem tickets list [--state S] [--owner O] [--action A] [--orphaned true|false] [--escalated true|false] [--overdue true|false]
                         [--limit N] [--after CURSOR] [--json]
       ctem tickets show KEY [--json]
       ctem ticket ack|resolve KEY --by USER [--note TEXT] [--json]
       ctem ticket accept-risk KEY --requester USER --approver USER --reason TEXT --expires ISO-DATE [--json]`;

const OPTIONS = {
  json: { type: 'boolean', default: false },
  ...Object.fromEntries([...EXPOSURE_FILTERS, ...TICKET_FILTERS].map((n) => [n, { type: 'string' }])),
  by: { type: 'string' },
  note: { type: 'string' },
  requester: { type: 'string' },
  approver: { type: 'string' },
  reason: { type: 'string' },
  expires: { type: 'string' },
} as const;

function parse(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS as never }) as unknown as { values: Record<string, string | boolean | undefined>; positionals: string[] };
}

function print(json: boolean, body: unknown, text: () => string): number {
  console.log(json ? JSON.stringify(body, null, 2) : text());
  return 0;
}

/** `ctem exposures|findings list|show`. */
export async function exposuresCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const api = platformApi(config);
  const json = values.json === true;
  if (positionals[0] === 'list') {
    const r = await callApi(api, `/api/v1/exposures${query(values, EXPOSURE_FILTERS)}`);
    if (!r.ok) return apiFailure('listing exposures', r);
    const b = r.body as Page;
    return print(json, b, () => `${table(b.items, [
      ['ID', (e) => e.id, 8], ['TIER', (e) => e.tier, 7], ['SCORE', (e) => e.score, 6], ['DUE', (e) => day(e.dueAt), 10],
      ['ISSUE', (e) => e.issueId, 20], ['COMPONENT', (e) => `${e.component} ${e.version}`, 28], ['ASSET', (e) => (e.asset as Row | undefined)?.name ?? (e.asset as Row | undefined)?.key, 36], ['TICKET', (e) => e.ticketKey, 24],
    ])}\n${pageFoot(b)}`);
  }
  if (positionals[0] === 'show' && positionals[1]) {
    const r = await callApi(api, `/api/v1/exposures/${encodeURIComponent(positionals[1])}`);
    if (!r.ok) return apiFailure(`exposure ${positionals[1]}`, r);
    const e = r.body as Row & { explanation?: Array<{ factor: string; value: unknown; effect?: string; source?: string }> };
    return print(json, e, () => [
      `${e.issueId} on ${(e.asset as Row | undefined)?.name ?? (e.asset as Row | undefined)?.key}: ${e.component} ${e.version}${e.fixedVersion ? ` (fix ${e.fixedVersion})` : ''}`,
      `tier ${e.tier ?? 'unscored'}, score ${e.score ?? 'n/a'}, due ${day(e.dueAt) || 'n/a'}, status ${e.status}${e.ticketKey ? `, ticket ${e.ticketKey}` : ''}`,
      'why:',
      ...(e.explanation ?? []).map((f) => `  ${f.factor}: ${typeof f.value === 'object' ? JSON.stringify(f.value) : String(f.value)}${f.effect ? ` - ${f.effect}` : ''}${f.source ? ` (${f.source})` : ''}`),
    ].join('\n'));
  }
  console.error(USAGE);
  return 2;
}

/** `ctem tickets list|show` (audit is tickets.ts). */
export async function ticketRecordsCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const api = platformApi(config);
  const json = values.json === true;
  if (positionals[0] === 'list') {
    const r = await callApi(api, `/api/v1/tickets${query(values, TICKET_FILTERS)}`);
    if (!r.ok) return apiFailure('listing tickets', r);
    const b = r.body as Page;
    return print(json, b, () => `${table(b.items, [
      ['KEY', (t) => t.key, 44], ['NUMBER', (t) => t.externalNumber, 11], ['STATE', (t) => t.state, 12], ['TIER', (t) => t.tier, 7],
      ['OWNER', (t) => t.owner, 18], ['DUE', (t) => day(t.dueAt), 10], ['ESC', (t) => t.escalationLevel, 3], ['FINDINGS', (t) => t.findingCount, 8],
    ])}\n${pageFoot(b)}`);
  }
  if (positionals[0] === 'show' && positionals[1]) {
    const r = await callApi(api, `/api/v1/tickets/${encodeURIComponent(positionals[1])}`);
    if (!r.ok) return apiFailure(`ticket ${positionals[1]}`, r);
    const t = r.body as Row;
    return print(json, t, () => [
      `${t.key}${t.externalNumber ? ` (${t.externalNumber})` : ''}: ${t.state}, tier ${t.tier}, owner ${t.owner ?? 'none'}`,
      `acknowledge by ${day(t.ackDueAt)}, fix by ${day(t.dueAt)}, escalation level ${t.escalationLevel}, ${t.findingCount} findings`,
      ...(t.externalUrl ? [`ITSM: ${t.externalUrl}`] : []),
    ].join('\n'));
  }
  console.error(USAGE);
  return 2;
}

/** `ctem ticket ack|resolve|accept-risk KEY`: the workflow's Update, answered with its new state or the reason it refused. */
export async function ticketActionCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [verb, key] = positionals;
  const paths: Record<string, string> = { ack: 'acknowledge', acknowledge: 'acknowledge', resolve: 'resolve', 'accept-risk': 'risk-acceptance' };
  if (!verb || !key || !paths[verb]) {
    console.error(USAGE);
    return 2;
  }
  let body: Record<string, unknown>;
  if (paths[verb] === 'risk-acceptance') {
    const missing = ['requester', 'approver', 'reason', 'expires'].filter((n) => typeof values[n] !== 'string');
    if (missing.length) {
      console.error(`ctem ticket accept-risk: missing ${missing.map((m) => `--${m}`).join(', ')}\n${USAGE}`);
      return 2;
    }
    body = { requester: values.requester, approver: values.approver, reason: values.reason, expiresAt: values.expires };
  } else {
    if (typeof values.by !== 'string') {
      console.error(`ctem ticket ${verb}: missing --by (who acts: an ITSM user name or e-mail)\n${USAGE}`);
      return 2;
    }
    body = { by: values.by, ...(typeof values.note === 'string' ? { note: values.note } : {}) };
  }
  const r = await callApi(platformApi(config), `/api/v1/tickets/${encodeURIComponent(key)}/${paths[verb]}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) return apiFailure(`ctem ticket ${verb} ${key}`, r);
  const state = r.body as Row;
  return print(values.json === true, state, () => `${key}: ${state.state ?? JSON.stringify(state)}`);
}
