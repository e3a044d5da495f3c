import type postgres from 'postgres';
import type { AssetRef, NormalizedFinding } from '../model.js';
import type { Sql } from '../../db/client.js';
import { resolveAssets, stageAssetRef } from './identity.js';

// Internet exposure has three kinds of evidence: firewall / security-group rules that admit the
// internet to an asset with a public IP (context sources), a declared segment flow from `internet`
// to a segment holding one of the asset's IPs (context source network-segments: the policy says the
// internet reaches it, through whatever NAT or load balancer), and open ports a network scanner saw
// from the internet (a scan declared with vantage `internet`). Any makes an asset internet-facing;
// `exposed_ports` is the union, and `attribute_sources.internet_facing` says which.

type Tx = postgres.TransactionSql;

const INTERNET = ['0.0.0.0/0', '::/0'];
/** A real port; Nessus reports local checks on port 0. */
const PORT = /^([1-9]\d{0,4})\/(tcp|udp)$/;

export interface PortsSeen {
  /** Every asset of the report, with the ports its findings were reported on (possibly none). */
  assets: Map<string, { ref: AssetRef; ports: Set<string> }>;
}

/** Passes findings through, noting the asset and port each was reported on. */
export async function* notePorts(findings: AsyncIterable<NormalizedFinding>, into: PortsSeen): AsyncGenerator<NormalizedFinding> {
  for await (const f of findings) {
    let entry = into.assets.get(f.asset.assetKey);
    if (!entry) into.assets.set(f.asset.assetKey, (entry = { ref: f.asset, ports: new Set() }));
    const port = PORT.exec(f.location);
    if (port && Number(port[1]) <= 65535) entry.ports.add(f.location);
    yield f;
  }
}

/**
 * Records what an internet-vantage scan saw: on each asset it covered, this source's observed ports
 * become exactly the ports it reported now (so a closed port stops counting), then exposure is
 * recomputed. Idempotent: the same scan recorded twice leaves the same rows.
 */
export async function recordObservedPorts(sql: Sql, scan: { id: string; source: string }, seen: PortsSeen): Promise<{ observedPorts: number }> {
  if (seen.assets.size === 0) return { observedPorts: 0 };
  return sql.begin(async (tx) => {
    const entries = [...seen.assets.values()];
    const ids = await resolveAssets(tx, entries.map((e) => stageAssetRef(e.ref)), scan.source);
    const covered = [...new Set(ids.values())];
    const rows = entries.flatMap((e) => [...e.ports].map((port) => [ids.get(e.ref.assetKey)!, port] as const));
    await tx`delete from observed_ports where source = ${scan.source} and asset_id = any(${tx.array(covered)}::bigint[])`;
    if (rows.length > 0) {
      await tx`
        insert into observed_ports (asset_id, source, port, scan_id, observed_at)
        select distinct a, ${scan.source}, p, ${scan.id}::uuid, now()
        from unnest(${tx.array(rows.map((r) => r[0]))}::bigint[], ${tx.array(rows.map((r) => r[1]))}::text[]) as x(a, p)
        on conflict (asset_id, source, port) do update set scan_id = excluded.scan_id, observed_at = excluded.observed_at`;
    }
    await refreshInternetExposure(tx);
    return { observedPorts: rows.length };
  });
}

/**
 * Recomputes `internet_facing` and `exposed_ports` of every asset that has firewall context, a
 * declared internet flow or observed ports (or had them): facing when a rule admits the internet to
 * a public IP, when a declared flow from `internet` reaches a segment holding one of its IPs, or when
 * an internet scan saw a port open. Assets with no such evidence keep what the inventory says.
 * Returns how many assets the firewall rules expose.
 */
export async function refreshInternetExposure(tx: Tx): Promise<{ firewallFacing: number }> {
  const [result] = await tx<{ facing: number }[]>`
    with firewall as (
      select a.id, array_agg(distinct case when r.protocol = 'all' then 'all'
                                           when r.from_port = r.to_port then r.from_port || '/' || r.protocol
                                           else r.from_port || '-' || r.to_port || '/' || r.protocol end) as ports
      from assets a join exposure_rules r on r.security_group = any(a.security_groups)
      where cardinality(a.public_ips) > 0 and r.cidr = any(${INTERNET})
      group by a.id
    ),
    segments as (
      select i.asset_id as id, array_agg(distinct p) as ports
      from network_flows n cross join unnest(n.to_cidrs) c
      join asset_identifiers i on i.kind = 'ip' and case when pg_input_is_valid(i.value, 'inet') then i.value::inet <<= c::inet else false end
      cross join unnest(n.ports) p
      where n.from_segment = 'internet'
      group by i.asset_id
    ),
    scanned as (
      select asset_id as id, array_agg(distinct port) as ports from observed_ports group by asset_id
    ),
    target as (
      select x.id,
        f.id is not null or g.id is not null or s.id is not null as facing,
        case when f.id is null and g.id is null and s.id is null then null
             else (select array_agg(distinct p order by p) from unnest(coalesce(f.ports, '{}') || coalesce(g.ports, '{}') || coalesce(s.ports, '{}')) p) end as ports,
        case when f.id is not null or g.id is not null or s.id is not null
               then concat_ws(', ', case when f.id is not null then 'firewall' end, case when g.id is not null then 'network segments' end,
                              case when s.id is not null then 'external scan' end)
             when x.security_groups is not null then 'firewall'
             when x.attribute_sources->>'internet_facing' like '%network segments%' then 'network segments'
             else 'external scan' end as source
      from assets x left join firewall f on f.id = x.id left join segments g on g.id = x.id left join scanned s on s.id = x.id
      where x.security_groups is not null or g.id is not null or s.id is not null
         or x.attribute_sources->>'internet_facing' like '%external scan%'
         or x.attribute_sources->>'internet_facing' like '%network segments%'
    ),
    updated as (
      update assets a set
        internet_facing = t.facing,
        exposed_ports = t.ports,
        attribute_sources = a.attribute_sources || jsonb_build_object('internet_facing', t.source)
      from target t
      where a.id = t.id
        and (a.internet_facing is distinct from t.facing or a.exposed_ports is distinct from t.ports
             or a.attribute_sources->>'internet_facing' is distinct from t.source)
      returning 1
    )
    select (select count(*) from firewall)::int as facing`;
  return { firewallFacing: result?.facing ?? 0 };
}
