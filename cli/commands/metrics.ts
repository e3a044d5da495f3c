import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { RESPONSE_GROUPS, type Durations, type ResponseMetrics, type ResponseReport } from '../../validation/response.js';
import { platformApi } from './platform-api.js';

// `ctem metrics response`: was the response fast and adequate? Read from the running platform's API.

const USAGE = `usage: ctem metrics response [--group-by ${RESPONSE_GROUPS.join('|')}] [--since ISO] [--until ISO] [--scope NAME] [--json]`;

const hours = (d: Durations) => (d.count === 0 ? '-' : `${fmt(d.medianHours)} / ${fmt(d.p90Hours)}`);
const fmt = (h: number | null) => (h === null ? '-' : Number.isInteger(h) ? String(h) : h.toFixed(1));
const pct = (share: number | null) => (share === null ? '-' : `${Math.round(share * 100)}%`);

const COLUMNS: Array<[string, (m: ResponseMetrics) => string]> = [
  ['tickets', (m) => String(m.tickets)],
  ['ack h med/p90', (m) => hours(m.toAcknowledge)],
  ['fix h med/p90', (m) => hours(m.toFix)],
  ['verify h med/p90', (m) => hours(m.toVerify)],
  ['ack in SLA', (m) => `${pct(m.sla.acknowledged.share)} (${m.sla.acknowledged.met}/${m.sla.acknowledged.due})`],
  ['fix in SLA', (m) => `${pct(m.sla.fixed.share)} (${m.sla.fixed.met}/${m.sla.fixed.due})`],
  ['open', (m) => String(m.open)],
  ['overdue', (m) => String(m.overdue)],
  ['unacked overdue', (m) => String(m.unacknowledgedOverdue)],
  ['verifying', (m) => String(m.awaitingVerification)],
  ['re-opened', (m) => `${m.adequacy.reopened}/${m.adequacy.resolved} ${pct(m.adequacy.failedShare)}`],
];

/** The report as a table: one row per group, then the total. */
export function formatResponseReport(r: ResponseReport): string {
  const label = r.groupBy ?? 'all';
  const rows: string[][] = [
    [label, ...COLUMNS.map(([name]) => name)],
    ...r.groups.map((g) => [g.key ?? '(none)', ...COLUMNS.map(([, cell]) => cell(g))]),
    [r.groupBy ? 'total' : 'all tickets', ...COLUMNS.map(([, cell]) => cell(r.total))],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  const window = r.since || r.until ? `; detected ${r.since ? `from ${r.since}` : ''}${r.since && r.until ? ' ' : ''}${r.until ? `before ${r.until}` : ''}` : '';
  return [
    `golden tickets as of ${r.asOf}${window}; hours from detection (a finding became act/attend)`,
    '',
    line(rows[0]!),
    ...rows.slice(1, -1).map(line),
    ...(r.groups.length ? [widths.map((w) => '-'.repeat(w)).join('  ')] : []),
    line(rows.at(-1)!),
  ].join('\n');
}

export async function metricsCommand(config: Config, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'group-by': { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        scope: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'response' || positionals.length > 1) {
    console.error(USAGE);
    return 2;
  }
  const groupBy = values['group-by'];
  if (groupBy !== undefined && !(RESPONSE_GROUPS as readonly string[]).includes(groupBy)) {
    console.error(`--group-by: must be one of ${RESPONSE_GROUPS.join(', ')} (got ${groupBy})\n${USAGE}`);
    return 2;
  }
  const query = new URLSearchParams();
  if (groupBy) query.set('groupBy', groupBy);
  for (const key of ['since', 'until', 'scope'] as const) if (values[key]) query.set(key, values[key]);
  const { url, token } = platformApi(config);
  const res = await fetch(`${url}/api/v1/metrics/response${query.size ? `?${query}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    // The API names the field at fault (a date that is not ISO 8601, an unknown scope).
    console.error(`metrics failed: HTTP ${res.status} ${await res.text()}`);
    return 1;
  }
  const report = (await res.json()) as ResponseReport;
  console.log(values.json ? JSON.stringify(report, null, 2) : formatResponseReport(report));
  return 0;
}
