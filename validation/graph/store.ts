import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import type { Exposure, GraphEdge, GraphInput, GraphResult, Step } from './paths.js';
import type { EdgeKind } from './techniques.js';

// The exposure graph in PostgreSQL: edges (network edges rebuilt per security group, or per declared
// segment flow set, whose hash changed; internet, hosted and part_of edges diffed against the
// inventory), the inputs of the
// path computation (exposures, jewels, tickets) and its results, written as differences.

type Tx = postgres.TransactionSql | Sql;

const INTERNET = ['0.0.0.0/0', '::/0'];

export interface UnusableRule {
  securityGroup: string;
  source: string;
  reason: string;
}

interface GroupState {
  hash: string;
  membersHash: string;
  sourceGroups: string[];
  hasCidr: boolean;
}

/** Per security group: the hash of its rules, member ids and member IPs, and what its edges depend on. */
async function groupStates(tx: Tx): Promise<{ groups: Map<string, GroupState>; ipHash: string }> {
  const rows = await tx<{ g: string; hash: string; members_hash: string; source_groups: string[] | null; has_cidr: boolean }[]>`
    with ips as (
      select asset_id, string_agg(value, ' ' order by value) as list from asset_identifiers where kind = 'ip' group by asset_id
    ),
    members as (
      select g, string_agg(a.id || ':' || coalesce(ips.list, ''), ',' order by a.id) as body
      from assets a cross join unnest(a.security_groups) g left join ips on ips.asset_id = a.id
      group by g
    ),
    rules as (
      select security_group as g,
        string_agg(protocol || ':' || from_port || ':' || to_port || ':' || cidr, ',' order by protocol, from_port, to_port, cidr) as body,
        array_agg(distinct cidr) filter (where cidr like 'sg-%') as source_groups,
        coalesce(bool_or(cidr not like 'sg-%' and cidr not like 'pl-%' and cidr <> all(${INTERNET}::text[])), false) as has_cidr
      from exposure_rules group by security_group
    )
    select coalesce(r.g, m.g) as g, md5(coalesce(r.body, '') || '|' || coalesce(m.body, '')) as hash, md5(coalesce(m.body, '')) as members_hash,
      r.source_groups, coalesce(r.has_cidr, false) as has_cidr
    from rules r full join members m on m.g = r.g`;
  const [ip] = await tx<{ hash: string }[]>`
    select md5(coalesce(string_agg(asset_id || ':' || value, ',' order by asset_id, value), '')) as hash from asset_identifiers where kind = 'ip'`;
  return {
    groups: new Map(rows.map((r) => [r.g, { hash: r.hash, membersHash: r.members_hash, sourceGroups: r.source_groups ?? [], hasCidr: r.has_cidr }])),
    ipHash: ip!.hash,
  };
}

const EMPTY_MEMBERS = 'd41d8cd98f00b204e9800998ecf8427e'; // md5('')

/** Group keys of declared segment flows share attack_graph_groups with security groups (sg-...). */
const SEGMENT_PREFIX = 'segment:';

/** Asset IPs as inet, the invalid ones left out (the fence keeps the cast after the check). */
const IPS = (tx: Tx) => tx`
  select asset_id, value::inet as ip from (
    select asset_id, value from asset_identifiers where kind = 'ip' and pg_input_is_valid(value, 'inet') offset 0
  ) v`;

/**
 * Per import source and to-segment, the hash of the declared flows into it (flows from `internet`
 * excluded: they make assets internet-facing, which the internet edges follow) and of the assets
 * whose IPs lie in their segments: an IP change rebuilds only the flow sets whose segments it
 * enters or leaves. An empty network_flows costs one index-free scan of nothing.
 */
async function segmentStates(tx: Tx): Promise<Map<string, string>> {
  const rows = await tx<{ g: string; hash: string }[]>`
    with f as (
      select ${SEGMENT_PREFIX} || source || ':' || to_segment as g, from_segment, from_cidrs, to_cidrs, ports
      from network_flows where from_segment <> 'internet'
    ),
    flows as (
      select g, string_agg(from_segment || ':' || from_cidrs::text || ':' || to_cidrs::text || ':' || ports::text, ','
                           order by from_segment, from_cidrs::text, to_cidrs::text, ports::text) as body
      from f group by g
    ),
    cidrs as (select distinct g, c::inet as c from f cross join unnest(f.from_cidrs || f.to_cidrs) c),
    ips as (${IPS(tx)}),
    members as (
      select g, string_agg(i.asset_id || ':' || host(i.ip), ',' order by i.asset_id, i.ip) as body
      from (select distinct c.g, i.asset_id, i.ip from cidrs c join ips i on i.ip <<= c.c) i
      group by g
    )
    select flows.g, md5(flows.body || '|' || coalesce(members.body, '')) as hash
    from flows left join members on members.g = flows.g`;
  return new Map(rows.map((r) => [r.g, r.hash]));
}

/**
 * Brings the stored edges up to date. Network edges: only the groups whose rules or membership
 * changed, or whose source groups' members did, or (for CIDR rules) when any asset's IPs did, and
 * the declared flow sets whose flows or segment members changed; all of
 * them when `full`. Internet, hosted and part_of edges are cheap: recomputed and diffed every time.
 */
export async function refreshEdges(tx: Tx, full: boolean): Promise<{ groupsChanged: number; edges: number; unusableRules: UnusableRule[]; ipHash: string }> {
  const { groups, ipHash } = await groupStates(tx);
  const segments = await segmentStates(tx);
  const stored = new Map(
    (await tx<{ security_group: string; hash: string; members_hash: string }[]>`select security_group, hash, members_hash from attack_graph_groups`).map((r) => [r.security_group, r]),
  );
  const [summary] = await tx<{ ip_hash: string }[]>`select ip_hash from attack_graph_summary where name = 'current'`;
  const ipChanged = summary?.ip_hash !== ipHash;
  const membersChanged = new Set<string>();
  for (const g of new Set([...groups.keys(), ...stored.keys()])) {
    if ((groups.get(g)?.membersHash ?? EMPTY_MEMBERS) !== (stored.get(g)?.members_hash ?? EMPTY_MEMBERS)) membersChanged.add(g);
  }
  const dirty = new Set<string>();
  for (const [g, state] of groups) {
    if (full || stored.get(g)?.hash !== state.hash || state.sourceGroups.some((s) => membersChanged.has(s)) || (state.hasCidr && ipChanged)) dirty.add(g);
  }
  const dirtySegments = [...segments].filter(([g, hash]) => full || stored.get(g)?.hash !== hash).map(([g]) => g);
  const gone = [...stored.keys()].filter((g) => (g.startsWith(SEGMENT_PREFIX) ? !segments.has(g) : !groups.has(g)));
  const rebuild = [...dirty, ...dirtySegments, ...gone];

  if (full) await tx`delete from attack_graph_edges where kind = 'network'`;
  else if (rebuild.length > 0) await tx`delete from attack_graph_edges where kind = 'network' and group_key = any(${rebuild}::text[])`;
  if (dirty.size > 0) {
    await tx`
      with members as (
        select g, a.id from assets a cross join unnest(a.security_groups) g
      ),
      r as (
        select security_group, cidr,
          case when protocol = 'all' then 'all' when from_port = to_port then from_port || '/' || protocol
               else from_port || '-' || to_port || '/' || protocol end as port
        from exposure_rules
        where security_group = any(${[...dirty]}::text[]) and cidr <> all(${INTERNET}::text[]) and cidr not like 'pl-%'
      ),
      src as (
        select r.security_group, r.cidr, r.port, m.id as from_id
        from r join members m on m.g = r.cidr
        where r.cidr like 'sg-%'
        union all
        select r.security_group, r.cidr, r.port, i.asset_id
        from r join asset_identifiers i on i.kind = 'ip'
        where r.cidr not like 'sg-%' and pg_input_is_valid(r.cidr, 'inet') and pg_input_is_valid(i.value, 'inet') and i.value::inet <<= r.cidr::inet
      )
      insert into attack_graph_edges (kind, group_key, from_id, to_id, ports, via)
      select 'network', s.security_group, s.from_id, t.id,
        array_agg(distinct s.port order by s.port),
        'security group ' || s.security_group || ' from ' || string_agg(distinct s.cidr, ', ' order by s.cidr)
      from src s join members t on t.g = s.security_group
      where s.from_id <> t.id
      group by s.security_group, s.from_id, t.id`;
  }
  if (dirtySegments.length > 0) await insertSegmentEdges(tx, dirtySegments);
  if (rebuild.length > 0 || full) {
    const built = [...dirty, ...dirtySegments];
    const counts = new Map(
      (await tx<{ g: string; n: number }[]>`
        select group_key as g, count(*)::int as n from attack_graph_edges where kind = 'network' and group_key = any(${built}::text[]) group by group_key`).map((r) => [r.g, r.n]),
    );
    if (gone.length > 0) await tx`delete from attack_graph_groups where security_group = any(${gone}::text[])`;
    const rows = [
      ...[...dirty].map((g) => ({ g, hash: groups.get(g)!.hash, members_hash: groups.get(g)!.membersHash, edges: counts.get(g) ?? 0 })),
      ...dirtySegments.map((g) => ({ g, hash: segments.get(g)!, members_hash: EMPTY_MEMBERS, edges: counts.get(g) ?? 0 })),
    ];
    if (rows.length > 0) {
      await tx`
        insert into attack_graph_groups (security_group, hash, members_hash, edges, updated_at)
        select x.g, x.hash, x.members_hash, x.edges, now() from jsonb_to_recordset(${tx.json(rows)}::jsonb) as x(g text, hash text, members_hash text, edges int)
        on conflict (security_group) do update set hash = excluded.hash, members_hash = excluded.members_hash, edges = excluded.edges, updated_at = now()`;
    }
  }
  // The cheap kinds, diffed: delete what differs, insert what is missing.
  await tx`
    create temp table if not exists attack_graph_want (kind text, group_key text, from_id bigint, to_id bigint, ports text[], via text) on commit drop`;
  await tx`truncate attack_graph_want`;
  await tx`
    insert into attack_graph_want
    select 'internet', '', 0, a.id, a.exposed_ports, coalesce(a.attribute_sources->>'internet_facing', 'inventory') from assets a where a.internet_facing
    union all
    select 'hosted', '', r.target_id, r.asset_id, null, 'runs_on' from asset_relations r where r.relation = 'runs_on' and r.asset_id <> r.target_id
    union all
    select 'part_of', '', r.asset_id, r.target_id, null, 'part_of' from asset_relations r where r.relation = 'part_of' and r.asset_id <> r.target_id`;
  await tx`
    delete from attack_graph_edges e where e.kind in ('internet', 'hosted', 'part_of')
      and not exists (select 1 from attack_graph_want w where w.kind = e.kind and w.from_id = e.from_id and w.to_id = e.to_id
                      and w.ports is not distinct from e.ports and w.via = e.via)`;
  await tx`
    insert into attack_graph_edges (kind, group_key, from_id, to_id, ports, via)
    select kind, group_key, from_id, to_id, ports, via from attack_graph_want on conflict do nothing`;

  const unusableRules = await tx<UnusableRule[]>`
    select security_group as "securityGroup", cidr as source,
      case when cidr like 'pl-%' then 'a prefix list: its CIDRs are not in the imported context'
           else 'neither a security group id nor a valid CIDR' end as reason
    from exposure_rules
    where cidr like 'pl-%' or (cidr not like 'sg-%' and cidr <> all(${INTERNET}::text[]) and not pg_input_is_valid(cidr, 'inet'))
    group by security_group, cidr order by security_group, cidr`;
  const [count] = await tx<{ n: number }[]>`select count(*)::int as n from attack_graph_edges`;
  return { groupsChanged: full ? groups.size + segments.size : rebuild.length, edges: count!.n, unusableRules: [...unusableRules], ipHash };
}

/**
 * Network edges of declared flows into the given segment groups: from every asset with an IP in a
 * flow's from-segment to every asset with an IP in its to-segment, on the flow's ports; `via` names
 * the flows (`segment dmz -> data (5432/tcp)`).
 */
async function insertSegmentEdges(tx: Tx, keys: string[]): Promise<void> {
  await tx`
    with f as (
      select id, ${SEGMENT_PREFIX} || source || ':' || to_segment as g, from_cidrs, to_cidrs, ports,
        'segment ' || from_segment || ' -> ' || to_segment || ' (' || array_to_string(ports, ', ') || ')' as via
      from network_flows
      where from_segment <> 'internet' and ${SEGMENT_PREFIX} || source || ':' || to_segment = any(${keys}::text[])
    ),
    ips as (${IPS(tx)}),
    src as (
      select distinct f.id, i.asset_id from f cross join unnest(f.from_cidrs) c join ips i on i.ip <<= c::inet
    ),
    dst as (
      select distinct f.id, i.asset_id from f cross join unnest(f.to_cidrs) c join ips i on i.ip <<= c::inet
    )
    insert into attack_graph_edges (kind, group_key, from_id, to_id, ports, via)
    select 'network', f.g, s.asset_id, d.asset_id, array_agg(distinct p order by p), string_agg(distinct f.via, '; ' order by f.via)
    from f join src s on s.id = f.id join dst d on d.id = f.id cross join unnest(f.ports) p
    where s.asset_id <> d.asset_id
    group by f.g, s.asset_id, d.asset_id`;
}

/** The stored edges and the crown jewels. */
export async function loadEdgesAndJewels(tx: Tx, revenueThreshold: number): Promise<Pick<GraphInput, 'edges' | 'jewels'>> {
  // As value arrays: 200,000 rows load in about half the time of row objects.
  const edgeRows = await tx`select kind, from_id::float8, to_id::float8, ports, via from attack_graph_edges`.values();
  const edges: GraphEdge[] = edgeRows.map((r) => ({ kind: r[0] as EdgeKind, from: r[1] as number, to: r[2] as number, ports: r[3] as string[] | null, via: r[4] as string }));
  const jewels = await tx<{ id: number }[]>`
    select id::float8 as id from assets
    where criticality = 'critical'
       or lower(coalesce(tags->>'crown-jewel', tags->>'crown_jewel', '')) in ('true', 'yes')
       or (kind = 'business_service' and annual_revenue >= ${revenueThreshold})`;
  return { edges, jewels: new Set(jewels.map((j) => j.id)) };
}

/** Each asset's exploitable exposures (the best per port) and the open ticket holding all of them, if one does. */
export async function loadExposures(tx: Tx, includeTrackStar = false): Promise<Pick<GraphInput, 'exposures' | 'soleTicket'>> {

  // Exploitable: open, tier act / attend (and track* when asked), and no newer unexpired not_exploitable test on
  // (asset, issue id). One exposure per (asset, port) is kept: the best by evidence, EDR, tier.
  const rows = await tx<{
    asset_id: number; id: number; issue_id: string; kind: string; port: string | null; tier: Exposure['tier'];
    confirmed: boolean; running: boolean; cwes: string[] | null; cvss_vector: string | null; sole_ticket: string | null;
  }[]>`
    with ev as (
      select distinct on (asset_id, vulnerability) asset_id, vulnerability, result
      from validation_evidence
      where result in ('exploited', 'confirmed', 'not_exploitable') and expires_at > now()
      -- As scoring reads it: on one test time, success wins.
      order by asset_id, vulnerability, tested_at desc, (result <> 'not_exploitable') desc, id desc
    ),
    seen as (
      select asset_id, lower(package) as package from runtime_evidence where package <> ''
      union
      select r.asset_id, lower(e.package) from asset_relations r join runtime_evidence e on e.asset_id = r.target_id
      where r.relation = 'runs_on' and e.package <> ''
    ),
    -- One scan of the findings: the window gives each row its asset's tickets (the asset has a sole
    -- ticket when every exploitable finding is on the same open one), DISTINCT ON keeps the best
    -- finding per (asset, port) by evidence, EDR, tier.
    x as (
      select f.id, f.asset_id, f.issue_id, f.kind, f.tier, f.cwes, f.cvss_vector,
        substring(f.location from '^([1-9][0-9]{0,4}/(?:tcp|udp))$') as port,
        ev.result is not null as confirmed, s.asset_id is not null as running,
        min(f.ticket_key) over w as t_min, max(f.ticket_key) over w as t_max, bool_and(t.key is not null) over w as t_open
      from findings f
      left join ev on ev.asset_id = f.asset_id and ev.vulnerability = f.issue_id
      left join seen s on s.asset_id = f.asset_id and s.package = lower(f.component)
      left join tickets t on t.key = f.ticket_key and t.state not in ('verified', 'closed')
      where f.status = 'open' and f.tier = any(${includeTrackStar ? ['act', 'attend', 'track*'] : ['act', 'attend']}::text[]) and ev.result is distinct from 'not_exploitable'
      window w as (partition by f.asset_id)
    )
    select distinct on (x.asset_id, x.port) x.asset_id::float8 as asset_id, x.id::float8 as id, x.issue_id, x.kind, x.port, x.tier,
      x.confirmed, x.running, x.cwes, x.cvss_vector, case when x.t_open and x.t_min = x.t_max then x.t_min end as sole_ticket
    from x
    order by x.asset_id, x.port, x.confirmed desc, x.running desc, case x.tier when 'act' then 0 when 'attend' then 1 else 2 end, x.id`;
  const exposures = new Map<number, Exposure[]>();
  const soleTicket = new Map<number, string>();
  for (const r of rows) {
    const x: Exposure = { findingId: r.id, issueId: r.issue_id, kind: r.kind, port: r.port, tier: r.tier, confirmed: r.confirmed, running: r.running, cwes: r.cwes, cvssVector: r.cvss_vector };
    (exposures.get(r.asset_id) ?? exposures.set(r.asset_id, []).get(r.asset_id)!).push(x);
    if (r.sole_ticket !== null) soleTicket.set(r.asset_id, r.sole_ticket);
  }
  return { exposures, soleTicket };
}

/** Path counts beyond a double's range (an astronomically meshed estate) are stored as the largest double. */
const finite = (x: number) => (Number.isFinite(x) ? x : Number.MAX_VALUE);

const stepJson = (s: Step | null) =>
  s && { findingId: s.exposure?.findingId ?? null, issueId: s.exposure?.issueId ?? null, kind: s.kind, ports: s.ports, via: s.via, techniques: s.techniques, confidence: s.confidence };

/** Writes the results as differences: only node and ticket rows that changed are touched. */
export async function writeResults(
  tx: Tx,
  result: GraphResult,
  summary: { full: boolean; groupsChanged: number; edges: number; ipHash: string; unusableRules: UnusableRule[]; parameters: Record<string, number>; durationMs: number },
): Promise<{ nodesWritten: number; ticketsWritten: number }> {
  const nodes = result.nodes.map((n) => ({
    asset_id: n.assetId,
    depth: n.depth,
    sigma: finite(n.sigma),
    tau: finite(n.tau),
    paths_through: finite(n.pathsThrough),
    is_jewel: n.isJewel,
    jewel_hops: n.jewelHops,
    parent_id: n.parentId,
    next_id: n.nextId,
    finding_id: n.entry.exposure?.findingId ?? null,
    issue_id: n.entry.exposure?.issueId ?? null,
    edge_kind: n.entry.kind,
    edge_ports: n.entry.ports,
    edge_via: n.entry.via,
    techniques: n.entry.techniques,
    confidence: n.confidence,
    step_confidence: n.entry.confidence,
    next_step: stepJson(n.nextStep),
    choke_point: n.chokePoint,
  }));
  // Only rows whose signature differs are sent and written: a change of one security group
  // touches a few rows of thousands.
  const stored = new Map(
    (await tx`select asset_id::float8, signature from attack_graph_nodes`.values()).map((r) => [r[0] as number, r[1] as string]),
  );
  const signed = nodes.map((n) => ({ ...n, signature: createHash('md5').update(JSON.stringify(n)).digest('hex') }));
  const changed = signed.filter((n) => stored.get(n.asset_id) !== n.signature);
  const current = new Set(nodes.map((n) => n.asset_id));
  const gone = [...stored.keys()].filter((a) => !current.has(a));
  if (gone.length > 0) await tx`delete from attack_graph_nodes where asset_id = any(${gone}::bigint[])`;
  if (changed.length > 0) {
    await tx`
      insert into attack_graph_nodes as n (asset_id, depth, sigma, tau, paths_through, is_jewel, jewel_hops, parent_id, next_id, finding_id, issue_id,
        edge_kind, edge_ports, edge_via, techniques, confidence, step_confidence, next_step, choke_point, signature)
      select * from jsonb_to_recordset(${tx.json(changed)}::jsonb) as x(asset_id bigint, depth int, sigma float8, tau float8, paths_through float8,
        is_jewel boolean, jewel_hops int, parent_id bigint, next_id bigint, finding_id bigint, issue_id text, edge_kind text, edge_ports text[],
        edge_via text, techniques text[], confidence text, step_confidence text, next_step jsonb, choke_point boolean, signature text)
      on conflict (asset_id) do update set depth = excluded.depth, sigma = excluded.sigma, tau = excluded.tau, paths_through = excluded.paths_through,
        is_jewel = excluded.is_jewel, jewel_hops = excluded.jewel_hops, parent_id = excluded.parent_id, next_id = excluded.next_id,
        finding_id = excluded.finding_id, issue_id = excluded.issue_id, edge_kind = excluded.edge_kind, edge_ports = excluded.edge_ports,
        edge_via = excluded.edge_via, techniques = excluded.techniques, confidence = excluded.confidence, step_confidence = excluded.step_confidence,
        next_step = excluded.next_step, choke_point = excluded.choke_point, signature = excluded.signature`;
  }
  const deleted = gone;
  const upserted = changed;

  const tickets = result.tickets.map((t) => ({ ticket_key: t.ticketKey, paths_cut: finite(t.pathsCut), exact: t.exact, asset_ids: t.assetIds }));
  const ticketsDeleted = await tx`delete from attack_graph_tickets where ticket_key <> all(${tickets.map((t) => t.ticket_key)}::text[]) returning 1`;
  const ticketsUpserted = await tx`
    insert into attack_graph_tickets as t (ticket_key, paths_cut, exact, asset_ids)
    select * from jsonb_to_recordset(${tx.json(tickets)}::jsonb) as x(ticket_key text, paths_cut float8, exact boolean, asset_ids bigint[])
    on conflict (ticket_key) do update set paths_cut = excluded.paths_cut, exact = excluded.exact, asset_ids = excluded.asset_ids
    where (t.paths_cut, t.exact, t.asset_ids) is distinct from (excluded.paths_cut, excluded.exact, excluded.asset_ids)
    returning 1`;

  await tx`
    insert into attack_graph_summary (name, "full", groups_changed, edges, nodes, jewels, jewels_reached, paths, choke_points, ip_hash, unusable_rules,
      parameters, computed_at, duration_ms)
    values ('current', ${summary.full}, ${summary.groupsChanged}, ${summary.edges}, ${result.nodes.length}, ${result.jewels}, ${result.jewelsReached},
      ${finite(result.paths)}, ${result.chokePoints}::bigint[], ${summary.ipHash}, ${tx.json(summary.unusableRules as never)}, ${tx.json(summary.parameters)},
      now(), ${summary.durationMs})
    on conflict (name) do update set "full" = excluded."full", groups_changed = excluded.groups_changed, edges = excluded.edges, nodes = excluded.nodes,
      jewels = excluded.jewels, jewels_reached = excluded.jewels_reached, paths = excluded.paths, choke_points = excluded.choke_points,
      ip_hash = excluded.ip_hash, unusable_rules = excluded.unusable_rules, parameters = excluded.parameters, computed_at = excluded.computed_at,
      duration_ms = excluded.duration_ms`;
  return { nodesWritten: deleted.length + upserted.length, ticketsWritten: ticketsDeleted.length + ticketsUpserted.length };
}
