// Attack-path benchmark: a synthetic estate of hosts in security groups (rules from other groups
// and from internal CIDRs, sized so the materialized network edges come out near --edges),
// containers on hosts, business services, crown jewels, golden tickets, evidence and --findings
// findings, then:
//   full         refreshAttackGraph({ full: true, includeTrackStar: true }) (track* too: the heaviest setting): every group's edges, the BFS, every row written;
//   unchanged    the same again incrementally with nothing changed (no group rebuilt, nothing written);
//   rule         after one rule added to one security group (incremental);
//   membership   after one host moved to another security group (incremental);
//   check        a full recomputation after those, which must store the same node rows.
//
//   npm run bench:paths -- [--assets N] [--edges N] [--findings N] [--json] [--keep]
//
// DATABASE_URL set: a fresh database on that server (dropped afterwards unless --keep); otherwise an
// embedded PostgreSQL in a temp dir.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDatabase, migrateDatabase, type Database } from '../db/client.js';
import { refreshAttackGraph } from '../validation/graph/index.js';
import { parseBenchArgs } from './bench-args.js';
import { closeOnInterrupt, openDatabase, round, timed } from './bench-estate.js';

interface Options {
  assets: number;
  edges: number;
  findings: number;
  json: boolean;
  keep: boolean;
}

/** Hosts per security group: one IP block (a /27) each, so a CIDR rule names one group's hosts. */
const GROUP_SIZE = 32;

export async function generateEstate(sql: Database['sql'], options: Options) {
  const services = Math.max(2, Math.min(50, Math.round(options.assets / 200)));
  const images = Math.round(options.assets * 0.3);
  const hosts = Math.max(GROUP_SIZE * 2, options.assets - images - services);
  const groups = Math.ceil(hosts / GROUP_SIZE);
  // Each rule from another group (or its CIDR block) to a group makes GROUP_SIZE^2 edges.
  const rules = Math.max(1, Math.round(options.edges / (GROUP_SIZE * GROUP_SIZE)));
  await sql`select setseed(0.42)`;
  await sql`
    insert into assets (asset_key, kind, name, annual_revenue, attribute_sources)
    select 'service:bench-' || s, 'business_service', 'service-' || s, case when s % 5 = 0 then 2000000 else 50000 end, '{}'::jsonb
    from generate_series(0, ${services - 1}) s`;
  // Hosts: group h / 32, IP 10.0.0.0 + h; one in ten internet-facing on 443; one in a hundred critical.
  await sql`
    insert into assets (asset_key, kind, name, criticality, internet_facing, exposed_ports, public_ips, security_groups, attribute_sources)
    select 'host:bench-' || h, 'host', 'host-' || h,
      case when h % 100 = 7 then 'critical' when h % 3 = 0 then 'high' else 'medium' end,
      h % 10 = 0,
      case when h % 10 = 0 then array['443/tcp'] end,
      case when h % 10 = 0 then array['198.51.100.' || (h % 250)] end,
      case when h % 10 = 0 then array['sg-g' || (h / ${GROUP_SIZE}), 'sg-public'] else array['sg-g' || (h / ${GROUP_SIZE})] end,
      case when h % 10 = 0 then '{"internet_facing": "firewall"}'::jsonb else '{}'::jsonb end
    from generate_series(0, ${hosts - 1}) h`;
  await sql`
    insert into asset_identifiers (kind, value, asset_id, source)
    select 'ip', host((inet '10.0.0.0' + (substring(a.asset_key from 'bench-(\\d+)$'))::bigint)), a.id, 'bench'
    from assets a where a.kind = 'host'`;
  await sql`
    insert into assets (asset_key, kind, name)
    select 'image:bench/app-' || i || ':1', 'container_image', 'bench/app-' || i || ':1' from generate_series(0, ${images - 1}) i`;
  await sql`
    insert into asset_relations (asset_id, relation, target_id, source)
    select i.id, 'runs_on', h.id, 'bench'
    from assets i join assets h on h.asset_key = 'host:bench-' || ((substring(i.asset_key from 'app-(\\d+):')::int * 7) % ${hosts})
    where i.kind = 'container_image'`;
  await sql`
    insert into asset_relations (asset_id, relation, target_id, source)
    select h.id, 'part_of', s.id, 'bench'
    from assets h join assets s on s.asset_key = 'service:bench-' || (h.id % ${services})
    where h.kind = 'host'`;
  await sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('bench', 'sg-public', 'tcp', 443, 443, '0.0.0.0/0')`;
  // Rule r goes to group r % groups from another group (every fifth from its CIDR block instead).
  await sql`
    insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr)
    select 'bench', 'sg-g' || (r % ${groups}), 'tcp', p.port, p.port,
      case when r % 5 = 4 then host(inet '10.0.0.0' + (src * ${GROUP_SIZE})) || '/27' else 'sg-g' || src end
    from generate_series(0, ${rules - 1}) r
    cross join lateral (select ((r % ${groups}) + 1 + (r * 7919) % (${groups} - 1)) % ${groups} as src) s
    cross join lateral (select (array[22, 443, 5432, 8080])[1 + r % 4] as port) p`;
  await sql`
    insert into tickets (key, workflow_id, asset_id, component, fixed_version, state, tier, ack_due_at, due_at, action)
    select 'bench-patch-' || t, 'remediation:bench-patch-' || t, (select min(id) from assets), 'os', '2', 'new', 'act', now() + interval '1 day', now() + interval '7 days', 'os-patch'
    from generate_series(0, 1999) t`;
  // Findings: 3% act, 5% attend, 7% track* (the exploitable ones), the rest track; a third on a
  // port the rules open. The exploitable ones are on the asset's patch ticket, except on one asset
  // in ten where some sit on a configuration ticket too (no single fix removes that asset).
  await sql`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, location, severity, cvss_vector, cwes, tier, ticket_key, first_scan_id, last_scan_id)
    select md5('bench-paths-' || n), a.id, 'vulnerability', 'CVE-2024-' || (10000 + n % 5000), 'component-' || (n % 200), '1.0',
      case when n % 3 = 0 then (array['22/tcp', '443/tcp', '5432/tcp', '8080/tcp', '9999/tcp'])[1 + n % 5] else '' end,
      'high',
      case when n % 11 = 0 then 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H' else 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' end,
      case when n % 13 = 0 then array['CWE-269'] end,
      case when t.r < 0.03 then 'act' when t.r < 0.08 then 'attend' when t.r < 0.15 then 'track*' else 'track' end,
      case when t.r < 0.15 then case when a.id % 10 = 3 and n % 2 = 0 then 'bench-patch-' || ((a.id + 1) % 2000) else 'bench-patch-' || (a.id % 2000) end end,
      '00000000-0000-4000-8000-000000000000'::uuid, '00000000-0000-4000-8000-000000000000'::uuid
    from (select n, random() as r, random() as a from generate_series(1, ${options.findings}) n) t
    cross join lateral (select (1 + floor(t.a * ${hosts + images}) + ${services})::bigint as id) a`;
  // Evidence on a few thousand (asset, CVE) pairs: confirmed and not exploitable.
  await sql`
    insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, tested_at, expires_at)
    select 'bench-' || f.id, f.asset_id, f.issue_id, case when f.id % 2 = 0 then 'confirmed' else 'not_exploitable' end, 'bench', 'bench',
      now() - interval '1 day', now() + interval '30 days'
    from findings f where f.tier in ('act', 'attend', 'track*') and f.id % 97 = 0
    on conflict do nothing`;
  await sql`
    insert into runtime_evidence (asset_id, package, version, process, source, observed_at)
    select h.id, 'component-' || c, '1.0', 'java', 'bench', now()
    from assets h cross join generate_series(0, 199, 9) c where h.kind = 'host' and h.id % 4 = 0`;
  await sql`vacuum analyze`;
  return { hosts, images, services, groups, rules: rules + 1 };
}

async function main(): Promise<number> {
  const options = parseBenchArgs<Options>(argv(), { assets: 'count', edges: 'count', findings: 'count', json: 'flag', keep: 'flag' }, { assets: 10_000, edges: 200_000, findings: 1_000_000, json: false, keep: false });
  const say = (line: string) => {
    if (!options.json) process.stderr.write(`${line}\n`);
  };
  const target = await openDatabase(options.keep, 'bench_paths');
  let database: Database | undefined;
  closeOnInterrupt(() => [database, target]);
  try {
    await migrateDatabase(target.url);
    database = connectDatabase(target.url, { max: 2 });
    const sql = database.sql;
    say(`generating ${options.assets} assets, ~${options.edges} edges, ${options.findings} findings...`);
    const generation = await timed(() => generateEstate(sql, options));
    say(`  ${round(generation.seconds)} s: ${JSON.stringify(generation.value)}`);

    say('full computation...');
    const full = await timed(() => refreshAttackGraph(sql, { full: true, includeTrackStar: true }));
    say(`  ${round(full.seconds)} s`);
    say('incremental, nothing changed...');
    const unchanged = await timed(() => refreshAttackGraph(sql, { includeTrackStar: true }));
    say(`  ${round(unchanged.seconds)} s`);
    say('incremental after one rule added to one group...');
    await sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('bench', 'sg-g1', 'tcp', 443, 443, 'sg-g2')`;
    const rule = await timed(() => refreshAttackGraph(sql, { includeTrackStar: true }));
    say(`  ${round(rule.seconds)} s`);
    say('incremental after one host moved to another group...');
    await sql`update assets set security_groups = array['sg-g3'] where asset_key = 'host:bench-1'`;
    const membership = await timed(() => refreshAttackGraph(sql, { includeTrackStar: true }));
    say(`  ${round(membership.seconds)} s`);
    const afterIncremental = await sql`select * from attack_graph_nodes order by asset_id`;
    say('full computation again, to check the incremental result...');
    const check = await timed(() => refreshAttackGraph(sql, { full: true, includeTrackStar: true }));
    const afterFull = await sql`select * from attack_graph_nodes order by asset_id`;
    const sameAsFull = JSON.stringify(afterIncremental) === JSON.stringify(afterFull) && check.value.nodesWritten === 0;
    say(`  ${round(check.seconds)} s, same as incremental: ${sameAsFull}`);

    const [counts] = await sql<{ findings: number; exploitable: number }[]>`
      select count(*)::int as findings, count(*) filter (where tier in ('act', 'attend', 'track*'))::int as exploitable from findings`;
    const step = (r: { seconds: number; value: Awaited<ReturnType<typeof refreshAttackGraph>> }) => ({
      seconds: round(r.seconds),
      groupsChanged: r.value.groupsChanged,
      nodesWritten: r.value.nodesWritten,
      ticketsWritten: r.value.ticketsWritten,
      phasesMs: r.value.phases,
    });
    const result = {
      assets: options.assets,
      estate: generation.value,
      findings: counts!.findings,
      exploitableFindings: counts!.exploitable,
      edges: full.value.edges,
      nodes: full.value.nodes,
      jewels: full.value.jewels,
      jewelsReached: full.value.jewelsReached,
      paths: full.value.paths,
      chokePoints: full.value.chokePoints.length,
      generationSeconds: round(generation.seconds),
      full: step(full),
      unchanged: step(unchanged),
      rule: step(rule),
      membership: step(membership),
      check: step(check),
      sameAsFull,
      targetMet: full.seconds <= 30 && rule.seconds <= 3 && membership.seconds <= 3,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else say(JSON.stringify(result, null, 2));
    return sameAsFull ? 0 : 1;
  } finally {
    await database?.close();
    await target.close();
  }
}

function argv(): string[] {
  return process.argv.slice(2);
}

// Run when started as a script; importing it (for its estate generator) runs nothing.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`bench-paths: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
