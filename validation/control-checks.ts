import type { ValidationConfig } from '../config/index.js';
import type { Sql } from '../db/client.js';
import { parseAllowList } from './probes/allow-list.js';
import type { ControlClaim, ControlVerification } from './probes/controls.js';
import { runProbes, type ProbeTask, type RunProgress } from './probes/run.js';

// Response validation for compensating controls: a control claimed for an exposure is checked
// where a probe can check it (the port is closed from the internet vantage, the WAF blocks a
// harmless test pattern) on the scope's assets it covers, and recorded as verified or failed;
// what no probe can check stays `unverified`, with the reason. A control failed anywhere it
// applies is failed: the claim is about every asset it names.

export interface ControlCounts {
  checked: number;
  verified: number;
  failed: number;
  unverified: number;
}

/** Assets probed per control: enough to catch a claim that does not hold, few enough to stay polite. */
const MAX_TARGETS_PER_CONTROL = 5;
const PROBE_KINDS = new Set(['waf', 'segmentation', 'other']);

interface ControlRow extends ControlClaim {
  id: string;
  hosts: Array<{ name: string; ports: string[] | null }> | null;
}

export interface ControlCheckOptions {
  assetIds: number[];
  heartbeat?: (progress: RunProgress) => void;
  signal?: AbortSignal;
}

export async function verifyControls(sql: Sql, config: ValidationConfig, options: ControlCheckOptions): Promise<ControlCounts> {
  // The controls that cover an asset of the scope, each with the hosts to probe it on (the asset's
  // host name or address, or the host its image runs on).
  const controls = await sql<ControlRow[]>`
    with scoped as (select a.* from assets a where a.id = any(${sql.array(options.assetIds)}::bigint[])),
    covered as (
      select c.id, s.id as asset_id
      from compensating_controls c join scoped s on
        coalesce((c.applies_to->>'all')::boolean, false)
        or s.asset_key in (select jsonb_array_elements_text(coalesce(c.applies_to->'assetKeys', '[]')))
        or s.business_service in (select jsonb_array_elements_text(coalesce(c.applies_to->'businessServices', '[]')))
        or s.environment in (select jsonb_array_elements_text(coalesce(c.applies_to->'environments', '[]')))
      where c.expires_at is null or c.expires_at > now()
    ),
    hosts as (
      select distinct cv.id, coalesce(r.target_id, cv.asset_id) as host_id from covered cv
      left join asset_relations r on r.asset_id = cv.asset_id and r.relation = 'runs_on'
    )
    select c.id, c.name, c.kind, c.effect, c.mitigates,
      (select jsonb_agg(jsonb_build_object('name', n.value, 'ports', h2.exposed_ports) order by h.host_id)
       from (select * from hosts h where h.id = c.id order by h.host_id limit ${MAX_TARGETS_PER_CONTROL}) h
       join assets h2 on h2.id = h.host_id
       cross join lateral (select i.value from asset_identifiers i where i.asset_id = h.host_id and i.kind in ('ip', 'fqdn', 'hostname')
                           order by case i.kind when 'ip' then 0 when 'fqdn' then 1 else 2 end, i.value limit 1) n) as hosts
    from compensating_controls c where c.id in (select id from covered)
    order by c.name`;
  const counts: ControlCounts = { checked: controls.length, verified: 0, failed: 0, unverified: 0 };
  if (controls.length === 0) return counts;
  if (config.allowList.length === 0) {
    // Active checks are off: nothing is contacted, and what was recorded before stands.
    counts.unverified = controls.length;
    return counts;
  }
  const allowList = parseAllowList(config.allowList);
  const tasks: ProbeTask[] = [];
  const owner: string[] = [];
  for (const c of controls) {
    if (!PROBE_KINDS.has(c.kind)) continue;
    for (const h of c.hosts ?? []) {
      // A WAF fronts the web port the asset exposes (443 first, then 80, then any other TCP port).
      const tcp = (h.ports ?? []).filter((p) => /^\d+\/tcp$/.test(p)).map((p) => Number(p.split('/')[0]));
      const port = c.kind === 'waf' ? (tcp.find((p) => p === 443) ?? tcp.find((p) => p === 80) ?? tcp[0]) : undefined;
      const url = port ? `${port === 443 || port === 8443 ? 'https' : 'http'}://${h.name.includes(':') ? `[${h.name}]` : h.name}:${port}/` : undefined;
      tasks.push({ id: `${c.id}:${tasks.length}`, kind: 'control', host: h.name, ...(url ? { url } : {}), control: { name: c.name, kind: c.kind, effect: c.effect, mitigates: c.mitigates } });
      owner.push(c.id);
    }
  }
  const report = tasks.length
    ? await runProbes(tasks, {
        allowList,
        vantage: config.vantage,
        concurrency: config.concurrency,
        connectionsPerSecond: config.ratePerSecond,
        probeTimeoutMs: config.timeoutMs,
        taskTimeoutMs: config.timeoutMs * 6,
        ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      })
    : { results: [] };
  const byControl = new Map<string, Array<ControlVerification | { verification: 'unverified'; detail: { reason: string } }>>();
  for (const [i, outcome] of report.results.entries()) {
    const list = byControl.get(owner[i]!) ?? [];
    list.push(outcome.status === 'done' ? (outcome.result as ControlVerification) : { verification: 'unverified', detail: { reason: `probe ${outcome.status}: ${outcome.detail}` } });
    byControl.set(owner[i]!, list);
  }
  for (const c of controls) {
    const results = byControl.get(c.id) ?? [];
    const verification = results.some((r) => r.verification === 'failed') ? 'failed' : results.length > 0 && results.every((r) => r.verification === 'verified') ? 'verified' : 'unverified';
    counts[verification]++;
    const detail = results.length
      ? { hosts: (c.hosts ?? []).map((h) => h.name), results: results.map((r) => ({ verification: r.verification, ...r.detail })) }
      : { reason: PROBE_KINDS.has(c.kind) ? 'no host of the scope where it applies has an address or name to probe' : `a ${c.kind} control cannot be checked from the network` };
    await sql`
      update compensating_controls set verification = ${verification}, verified_at = now(), verification_detail = ${sql.json(detail as never)}
      where id = ${c.id}`;
  }
  return counts;
}
