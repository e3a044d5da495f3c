import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import type { ExecutiveView, OverviewView } from '../../metrics/views.js';
import { RESPONSE_GROUPS, type Durations, type ResponseMetrics, type ResponseReport } from '../../validation/response.js';
import { platformApi } from './platform-api.js';

// `ctem metrics response`: was the response fast and adequate? `ctem metrics overview|executive`:
// the program's figures from the latest daily snapshot. Read from the running platform's API.

const USAGE = `usage: ctem metrics response [--group-by ${RESPONSE_GROUPS.join('|')}] [--since ISO] [--until ISO] [--scope NAME] [--json]
       ctem metrics overview|executive [--scope NAME] [--json]`;

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

const n = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toLocaleString('en-US'));
const hoursText = (h: number | null | undefined) => (h === null || h === undefined ? '-' : h < 48 ? `${fmt(h)} h` : `${fmt(h / 24)} d`);
const snapshotLine = (v: { scope: string; snapshot: { day: string; takenAt: string } | null }) =>
  v.snapshot ? `scope ${v.scope}; snapshot of ${v.snapshot.day}, taken ${v.snapshot.takenAt}` : `scope ${v.scope}; no snapshot yet: the first is taken at start-up (or POST /api/v1/metrics/snapshots)`;
const appetiteLine = (a: OverviewView['appetite']) =>
  a.status === 'unknown' ? `risk appetite ${n(a.appetite)}` : `risk appetite ${n(a.appetite)}: ${a.status === 'above' ? `${n(-a.headroom!)} above` : `within (${n(a.headroom)} to spare)`}`;

/** The overview as lines: backlog, noise, SLA, appetite, escalations, newest KEV hits. */
export function formatOverview(v: OverviewView): string {
  const lines = [snapshotLine(v)];
  if (v.backlog) {
    lines.push(
      `exploitable backlog  ${n(v.backlog.actAttend)} (act ${n(v.backlog.act)}, attend ${n(v.backlog.attend)}); in KEV ${n(v.backlog.kev)}; internet-facing ${n(v.backlog.internetFacing)}`,
      `noise cut            ${pct(v.noise?.reduction ?? null)} of ${n(v.noise?.criticalHighByCvss)} critical/high set aside`,
      `fixed within SLA     ${pct(v.sla?.fixed.share ?? null)} (${n(v.sla?.fixed.met)}/${n(v.sla?.fixed.due)}); overdue ${n(v.sla?.overdue)}`,
    );
  }
  lines.push(appetiteLine(v.appetite));
  lines.push(`escalated now        ${v.escalations.length ? v.escalations.map((l) => `level ${l.level}: ${n(l.tickets)}`).join(', ') : 'none'}`);
  lines.push('', 'newest KEV hits', ...(v.newestKevHits.length ? v.newestKevHits.map((h) => `  ${h.cve}  added ${h.kevDateAdded ?? '-'}  ${h.tier ?? 'unscored'}  ${h.assetName}  ${h.owner ?? '(no owner)'}  finding ${h.findingId}`) : ['  none']));
  return lines.join('\n');
}

/** The executive summary as lines: appetite, MTTD, MTTR, SLA, business services, overdue owners. */
export function formatExecutive(v: ExecutiveView): string {
  const lines = [snapshotLine(v), appetiteLine(v.appetite)];
  if (v.mttd && v.mttr && v.sla && v.business) {
    lines.push(
      `MTTD                 ${v.mttd.fromPublished.medianDays ?? '-'} d from publication (${n(v.mttd.fromPublished.count)} CVEs); ${v.mttd.fromKevAdded.medianDays ?? '-'} d from KEV listing (${n(v.mttd.fromKevAdded.count)} CVEs)`,
      `MTTR                 ${hoursText(v.mttr.total.medianHours)} median, ${hoursText(v.mttr.total.p90Hours)} p90, detected to verified (${n(v.mttr.total.count)} tickets)`,
      `SLA attainment       fixed ${pct(v.sla.fixed.share)}, acknowledged ${pct(v.sla.acknowledged.share)}`,
      `revenue at risk      ${n(v.business.revenueAtRisk)} across ${n(v.business.servicesAtRisk)} business services`,
      '',
      'business services (act+attend, revenue)',
      ...(v.business.services.length ? v.business.services.map((s) => `  ${s.name}  ${n(s.urgent)}  ${n(s.annualRevenue)}`) : ['  none mapped']),
      '',
      'MTTR by tier (median detected to verified)',
      ...v.mttr.byTier.map((r) => `  ${r.key ?? '(none)'}  ${hoursText(r.toVerify.medianHours)}  (${n(r.toVerify.count)} of ${n(r.tickets)} verified)`),
    );
  }
  lines.push('', 'top owners by overdue', ...(v.topOverdueOwners.length ? v.topOverdueOwners.map((o) => `  ${o.owner ?? '(no owner)'}  ${n(o.overdue)} overdue, ${n(o.unacknowledgedOverdue)} unacknowledged`) : ['  none overdue']));
  return lines.join('\n');
}

async function viewCommand(config: Config, view: 'overview' | 'executive', scope: string | undefined, asJson: boolean): Promise<number> {
  const { url, token } = platformApi(config);
  const res = await fetch(`${url}/api/v1/metrics/${view}${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    console.error(`metrics failed: HTTP ${res.status} ${await res.text()}`);
    return 1;
  }
  const body = await res.json();
  console.log(asJson ? JSON.stringify(body, null, 2) : view === 'overview' ? formatOverview(body as OverviewView) : formatExecutive(body as ExecutiveView));
  return 0;
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
  if ((positionals[0] === 'overview' || positionals[0] === 'executive') && positionals.length === 1) {
    return viewCommand(config, positionals[0], values.scope, values.json);
  }
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
