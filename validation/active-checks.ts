import { createHash } from 'node:crypto';
import type { ValidationConfig } from '../config/index.js';
import type { Sql } from '../db/client.js';
import type { EvidenceRecord } from './evidence/model.js';
import { EVIDENCE_DAYS, insertEvidence, type EvidenceRowInput } from './evidence/store.js';
import { parseAllowList } from './probes/allow-list.js';
import type { TlsResult } from './probes/checks.js';
import { runProbes, type ProbeResult, type ProbeTask, type RunProgress } from './probes/run.js';
import { compareBanner } from './probes/version.js';

// Which services the safe active checks look at: for each urgent exposure (act, attend, track*) in
// the scope, the host that answers for it (the asset itself, or the host its image runs on) and the
// port it is reached on (the finding's own port, else the ports the host exposes). One target per
// (host, port), probed once for all the findings behind it.

export interface ProbeFinding {
  id: number;
  assetId: number;
  issueId: string;
  component: string;
  version: string;
}

export interface ProbeTarget {
  hostId: number;
  /** What the probe connects to: an address when the inventory knows one, else the host's name. */
  address: string;
  /** The name for TLS SNI and the HTTP Host header, when the host has one. */
  name?: string;
  port: number;
  findings: ProbeFinding[];
}

export interface ProbePlan {
  targets: ProbeTarget[];
  /** Urgent findings with no known port (a package nobody said is served): nothing to probe. */
  withoutPort: number;
  /** Urgent findings on hosts with no address or name. */
  withoutAddress: number;
}

const TCP_PORT = /^(\d{1,5})\/tcp$/;

export async function planProbeTargets(sql: Sql, assetIds: number[]): Promise<ProbePlan> {
  const rows = await sql<{ host_id: string; ports: string[] | null; ips: string[] | null; names: string[] | null; id: string; asset_id: string; issue_id: string; component: string; version: string }[]>`
    with urgent as (
      select f.id, f.asset_id, f.issue_id, f.component, f.version, f.location
      from findings f
      where f.status = 'open' and f.tier in ('act', 'attend', 'track*') and f.asset_id = any(${sql.array(assetIds)}::bigint[])
    ),
    placed as (
      select u.*, coalesce((select r.target_id from asset_relations r where r.asset_id = u.asset_id and r.relation = 'runs_on' order by r.target_id limit 1), u.asset_id) as host_id
      from urgent u
    )
    select p.host_id, p.id, p.asset_id, p.issue_id, p.component, p.version,
      case when p.location ~ '^[0-9]{1,5}/tcp$' then array[p.location]
           else (select array_agg(x order by x) from unnest(h.exposed_ports) x where x ~ '^[0-9]{1,5}/tcp$') end as ports,
      (select array_agg(i.value order by i.value) from asset_identifiers i where i.asset_id = p.host_id and i.kind = 'ip') as ips,
      (select array_agg(i.value order by i.kind, i.value) from asset_identifiers i where i.asset_id = p.host_id and i.kind in ('fqdn', 'hostname')) as names
    from placed p join assets h on h.id = p.host_id
    order by p.host_id, p.id`;
  const targets = new Map<string, ProbeTarget>();
  let withoutPort = 0;
  let withoutAddress = 0;
  for (const r of rows) {
    if (!r.ports?.length) {
      withoutPort++;
      continue;
    }
    const name = r.names?.[0];
    const address = r.ips?.[0] ?? name;
    if (!address) {
      withoutAddress++;
      continue;
    }
    for (const p of r.ports) {
      const port = Number(TCP_PORT.exec(p)![1]);
      if (port < 1 || port > 65535) continue;
      const key = `${r.host_id} ${port}`;
      let target = targets.get(key);
      if (!target) targets.set(key, (target = { hostId: Number(r.host_id), address, ...(name ? { name } : {}), port, findings: [] }));
      target.findings.push({ id: Number(r.id), assetId: Number(r.asset_id), issueId: r.issue_id, component: r.component, version: r.version });
    }
  }
  return { targets: [...targets.values()], withoutPort, withoutAddress };
}

export interface ActiveCheckCounts {
  /** False when no allow-list is configured: nothing was contacted. */
  enabled: boolean;
  targets: number;
  probed: number;
  outsideAllowList: number;
  reachable: number;
  unreachable: number;
  /** Services whose banner now names another version than the finding's: a rescan should confirm the fix. */
  versionChanged: number;
  /** Evidence rows written (one per finding behind each probed service). */
  evidence: number;
  /** Timed out, failed or cut by the run's budget: neither reachable nor unreachable. */
  inconclusive: number;
}

const WEB_PORTS = new Map([[80, 'http'], [8080, 'http'], [8000, 'http'], [443, 'https'], [8443, 'https']]);

export interface ActiveCheckOptions {
  runId: string;
  assetIds: number[];
  heartbeat?: (progress: RunProgress) => void;
  signal?: AbortSignal;
}

/**
 * Probes the scope's urgent services that the allow-list permits (TCP connect and banner, or an HTTP
 * request on web ports), and records per finding behind each one `reachable` or `unreachable`
 * evidence with what the probe saw (banner, version against the finding's). Targets outside the
 * allow-list are counted and never contacted. Idempotent per run: a retried activity writes the
 * same evidence keys.
 */
export async function runActiveChecks(sql: Sql, config: ValidationConfig, options: ActiveCheckOptions): Promise<ActiveCheckCounts> {
  const counts: ActiveCheckCounts = { enabled: config.allowList.length > 0, targets: 0, probed: 0, outsideAllowList: 0, reachable: 0, unreachable: 0, versionChanged: 0, evidence: 0, inconclusive: 0 };
  if (!counts.enabled) return counts;
  const allowList = parseAllowList(config.allowList);
  const plan = await planProbeTargets(sql, options.assetIds);
  counts.targets = plan.targets.length;
  if (plan.targets.length === 0) return counts;
  const urlOf = (t: ProbeTarget, scheme: string) => {
    const host = t.name ?? t.address;
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${t.port}/`;
  };
  const tasks: ProbeTask[] = plan.targets.map((t, i) => {
    const scheme = WEB_PORTS.get(t.port);
    const host = t.name ?? t.address;
    return scheme ? { id: String(i), kind: 'http', url: urlOf(t, scheme), maxBytes: 0 } : { id: String(i), kind: 'banner', host, port: t.port };
  });
  const run = (batch: ProbeTask[]) =>
    runProbes(batch, {
      allowList,
      concurrency: config.concurrency,
      connectionsPerSecond: config.ratePerSecond,
      probeTimeoutMs: config.timeoutMs,
      taskTimeoutMs: config.timeoutMs * 3,
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  const report = await run(tasks);
  // A service that says nothing first, on a port that is not a known web port, and every known TLS
  // port: one handshake tells whether it speaks TLS, and with which protocol and certificate.
  const silent = report.results.flatMap((o, i) => (o.status === 'done' && 'state' in o.result && o.result.state === 'silent' ? [i] : []));
  const handshake = [...silent, ...report.results.flatMap((o, i) => (o.status === 'done' && o.reachable && WEB_PORTS.get(plan.targets[i]!.port) === 'https' ? [i] : []))];
  const tlsOf = new Map<number, TlsResult>();
  if (handshake.length > 0) {
    const tls = await run(handshake.map((i) => {
      const t = plan.targets[i]!;
      return { id: String(i), kind: 'tls', host: t.name ?? t.address, port: t.port, ...(t.name ? { servername: t.name } : {}) } as ProbeTask;
    }));
    for (const [j, i] of handshake.entries()) {
      const o = tls.results[j]!;
      if (o.status === 'done' && 'state' in o.result && o.result.state === 'tls') tlsOf.set(i, o.result as TlsResult);
    }
  }
  // A silent service is most often HTTP (over TLS when it answered the handshake): asked once more, as such.
  if (silent.length > 0) {
    const again = await run(silent.map((i) => ({ id: String(i), kind: 'http', url: urlOf(plan.targets[i]!, tlsOf.has(i) ? 'https' : 'http'), maxBytes: 0 }) as ProbeTask));
    for (const [j, i] of silent.entries()) {
      const o = again.results[j]!;
      if (o.status === 'done' && 'outcome' in o.result && o.result.outcome === 'response') report.results[i] = o;
    }
  }
  const testedAt = new Date().toISOString();
  const rows: EvidenceRowInput[] = [];
  for (const [i, outcome] of report.results.entries()) {
    const target = plan.targets[i]!;
    if (outcome.status === 'skipped' && outcome.reason === 'outside allow-list') {
      counts.outsideAllowList++;
      continue;
    }
    if (outcome.status !== 'done') {
      counts.inconclusive++;
      continue;
    }
    counts.probed++;
    const reachable = outcome.reachable === true;
    if (reachable) counts.reachable++;
    else counts.unreachable++;
    const banners = bannersOf(outcome.result);
    let changed = false;
    for (const f of target.findings) {
      const version = banners.length ? compareBanner({ component: f.component, version: f.version }, banners) : undefined;
      if (version?.result === 'different') changed = true;
      const record: Omit<EvidenceRecord, 'asset'> = {
        vulnerability: f.issueId,
        result: reachable ? 'reachable' : 'unreachable',
        tool: 'probe',
        testedAt,
        port: `${target.port}/tcp`,
        target: `${target.name ?? target.address}:${target.port}`,
        detail: { probe: outcome.kind, result: outcome.result, durationMs: outcome.durationMs, ...(tlsOf.has(i) ? { tls: tlsOf.get(i) } : {}), ...(version ? { version } : {}), run: options.runId },
      };
      // Keyed by run, not by result or time: a retried activity writes nothing twice.
      const key = createHash('sha256').update(JSON.stringify(['probe', options.runId, f.assetId, f.issueId, record.port])).digest('hex');
      rows.push({ key, assetId: f.assetId, record, testedAt, expiresAt: new Date(Date.parse(testedAt) + EVIDENCE_DAYS[record.result] * 86_400_000).toISOString() });
    }
    if (changed) counts.versionChanged++;
  }
  // An image behind two probed ports of one host is one row per port; the same finding twice is once.
  const unique = [...new Map(rows.map((r) => [r.key, r])).values()];
  counts.evidence = (await sql.begin((tx) => insertEvidence(tx, unique, options.runId))).length;
  return counts;
}

/** What a probe's answer says about the software behind it: the HTTP Server / X-Powered-By headers, or a service's first line. */
function bannersOf(result: ProbeResult): string[] {
  if ('outcome' in result) return result.outcome === 'response' ? [result.server, result.poweredBy].filter((b): b is string => Boolean(b)) : [];
  if ('state' in result && result.state === 'banner' && 'line' in result) return [result.line];
  return [];
}
