import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Sql } from '../../db/client.js';
import { attackPathOf, chokePoints, fixesByPathsCut, refreshAttackGraph } from '../../validation/graph/index.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// The exposure graph on real PostgreSQL, over a small estate whose paths are known:
//
//   internet -443-> web -8080 (sg-app from sg-web)-> app host ---5432 (sg-db from sg-app)--> db (critical) -part_of-> payments (revenue 5M)
//   internet --22-> bastion --22 (sg-app from 10.0.9.0/24)-^   app-api container on the app host: reached with it, moves like it
//   web-agent container on web: its port 9000 is not open, so it is entered from the web host (hosted step, CWE-269)
//
// Shortest paths: web and bastion (depth 1) each reach app and app-api (depth 2), each of which
// reaches db (depth 3: sigma 4) and payments (depth 4: sigma 4): 8 jewel paths.

let sql: Sql;
const id: Record<string, number> = {};
const finding: Record<string, number> = {};
const SCAN = '00000000-0000-4000-8000-000000000001';

async function asset(key: string, fields: Record<string, unknown>) {
  const row = { asset_key: key, kind: 'host', name: key.replace(/^\w+:/, ''), attribute_sources: {}, ...fields };
  const [r] = await sql<{ id: number }[]>`insert into assets ${sql(row as never)} returning id::int as id`;
  id[key.replace(/^\w+:/, '')] = r!.id;
  return r!.id;
}

async function addFinding(name: string, assetName: string, fields: Record<string, unknown>) {
  const row = {
    fingerprint: `fp-${name}`,
    asset_id: id[assetName],
    kind: 'vulnerability',
    issue_id: name,
    component: 'openssl',
    version: '1.0',
    severity: 'critical',
    status: 'open',
    first_scan_id: SCAN,
    last_scan_id: SCAN,
    ...fields,
  };
  const [r] = await sql<{ id: number }[]>`insert into findings ${sql(row as never)} returning id::int as id`;
  finding[name] = r!.id;
}

async function ticket(key: string, assetName: string) {
  await sql`
    insert into tickets (key, workflow_id, asset_id, component, fixed_version, state, tier, ack_due_at, due_at, action)
    values (${key}, ${`remediation:${key}`}, ${id[assetName]!}, 'x', '2', 'new', 'act', now() + interval '1 day', now() + interval '7 days', 'package')`;
}

async function evidence(assetName: string, vulnerability: string, result: string) {
  await sql`
    insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, tested_at, expires_at)
    values (${`${assetName}-${vulnerability}-${result}`}, ${id[assetName]!}, ${vulnerability}, ${result}, 'pentest', 'report.json', now() - interval '1 hour', now() + interval '30 days')`;
}

const nodeRows = () => sql`select * from attack_graph_nodes order by asset_id`;
const ticketRows = () => sql`select * from attack_graph_tickets order by ticket_key`;

beforeAll(async () => {
  sql = (await migratedTestDatabase()).sql;
  await asset('host:web', { internet_facing: true, exposed_ports: ['443/tcp'], public_ips: ['203.0.113.10'], security_groups: ['sg-web'], attribute_sources: { internet_facing: 'firewall' } });
  await asset('host:bastion', { internet_facing: true, exposed_ports: ['22/tcp'], public_ips: ['203.0.113.11'], security_groups: ['sg-bastion'], attribute_sources: { internet_facing: 'firewall' } });
  await asset('host:app', { internet_facing: false, security_groups: ['sg-app'] });
  await asset('host:db', { criticality: 'critical', internet_facing: false, security_groups: ['sg-db'] });
  await asset('image:app-api', { kind: 'container_image' });
  await asset('image:web-agent', { kind: 'container_image' });
  await asset('service:payments', { kind: 'business_service', annual_revenue: 5_000_000 });
  await asset('service:blog', { kind: 'business_service', annual_revenue: 1_000 });
  for (const [name, ip] of [['web', '10.0.1.10'], ['bastion', '10.0.9.5'], ['app', '10.0.2.20'], ['db', '10.0.3.30']] as const) {
    await sql`insert into asset_identifiers (kind, value, asset_id, source) values ('ip', ${ip}, ${id[name]!}, 'cmdb')`;
  }
  await sql`
    insert into asset_relations (asset_id, relation, target_id, source) values
      (${id['app-api']!}, 'runs_on', ${id.app!}, 'cmdb'), (${id['web-agent']!}, 'runs_on', ${id.web!}, 'cmdb'),
      (${id.db!}, 'part_of', ${id.payments!}, 'cmdb'), (${id.web!}, 'part_of', ${id.blog!}, 'cmdb')`;
  await sql`
    insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values
      ('security-groups', 'sg-web', 'tcp', 443, 443, '0.0.0.0/0'),
      ('security-groups', 'sg-bastion', 'tcp', 22, 22, '0.0.0.0/0'),
      ('security-groups', 'sg-app', 'tcp', 8080, 8080, 'sg-web'),
      ('security-groups', 'sg-app', 'tcp', 22, 22, '10.0.9.0/24'),
      ('security-groups', 'sg-db', 'tcp', 5432, 5432, 'sg-app'),
      ('security-groups', 'sg-db', 'tcp', 5432, 5432, 'pl-0123456789')`;
  await addFinding('CVE-2021-44228', 'web', { location: '443/tcp', tier: 'act', ticket_key: 'T-web' });
  await addFinding('CVE-2024-6387', 'bastion', { location: '22/tcp', tier: 'attend', ticket_key: 'T-bastion', component: 'openssh' });
  await addFinding('CVE-2023-1000', 'app', { tier: 'act', ticket_key: 'T-app-patch', component: 'tomcat' });
  await addFinding('CVE-2023-2000', 'app-api', { tier: 'act', ticket_key: 'T-app-patch', component: 'jackson' });
  await addFinding('CVE-2023-3000', 'web-agent', { location: '9000/tcp', tier: 'attend', cwes: ['CWE-269'], ticket_key: 'T-agent' });
  await addFinding('CVE-2022-5000', 'db', { location: '5432/tcp', tier: 'act', ticket_key: 'T-db' });
  await addFinding('db-password', 'db', { kind: 'secret', tier: 'attend', ticket_key: 'T-db-secret', component: 'config' });
  // Not exploitable tiers and closed findings are not exposures.
  await addFinding('CVE-2020-0001', 'app', { tier: 'track', component: 'zlib' });
  await addFinding('CVE-2020-0002', 'app', { tier: 'act', status: 'closed', component: 'zlib' });
  for (const t of ['T-web', 'T-bastion', 'T-app-patch', 'T-agent', 'T-db', 'T-db-secret']) await ticket(t, 'web');
  // Proven: the web CVE, the app's and the db's: the route through web is confirmed end to end.
  await evidence('web', 'CVE-2021-44228', 'exploited');
  await evidence('app', 'CVE-2023-1000', 'confirmed');
  await evidence('db', 'CVE-2022-5000', 'confirmed');
  // EDR sees jackson running on the app host, so the container's step is plausible.
  await sql`insert into runtime_evidence (asset_id, package, version, process, source, observed_at) values (${id.app!}, 'jackson', '2.0', 'java', 'edr', now())`;
});

afterAll(closeTestDatabases);

describe('refreshAttackGraph on a hand-built estate', () => {
  it('finds the 8 jewel paths with their hops, sigma and tau', async () => {
    const r = await refreshAttackGraph(sql);
    expect(r).toMatchObject({ full: true, jewels: 2, jewelsReached: 2, paths: 8 });
    // Payments (5M revenue) and db (critical) are jewels; blog (1,000) is not.
    const nodes = new Map((await nodeRows()).map((n) => [Number(n.asset_id), n]));
    const at = (name: string) => nodes.get(id[name]!);
    expect(at('web')).toMatchObject({ depth: 1, sigma: 1, tau: 4, jewel_hops: 2, edge_kind: 'internet', techniques: ['T1190'] });
    expect(at('bastion')).toMatchObject({ depth: 1, sigma: 1, tau: 4, jewel_hops: 2 });
    expect(at('app')).toMatchObject({ depth: 2, sigma: 2, tau: 2, edge_kind: 'network', techniques: ['T1210'] });
    expect(at('app-api')).toMatchObject({ depth: 2, sigma: 2, tau: 2 });
    expect(at('db')).toMatchObject({ depth: 3, sigma: 4, tau: 2, is_jewel: true, jewel_hops: 0, paths_through: 8 });
    expect(at('payments')).toMatchObject({ depth: 4, sigma: 4, tau: 1, is_jewel: true, edge_kind: 'part_of', techniques: ['TA0040'] });
    // The agent's port is closed to the internet: it is entered from its compromised host.
    expect(at('web-agent')).toMatchObject({ depth: 2, parent_id: String(id.web), edge_kind: 'hosted', techniques: ['T1068'], tau: 0 });
    expect(at('blog')).toMatchObject({ depth: 2, is_jewel: false, tau: 0 });
    // The db is entered with its CVE on 5432 (plausible or better), not the secret (no port: theoretical).
    expect(at('db')).toMatchObject({ issue_id: 'CVE-2022-5000', edge_ports: ['5432/tcp'] });
    expect(r.unusableRules).toEqual([{ securityGroup: 'sg-db', source: 'pl-0123456789', reason: expect.stringContaining('prefix list') }]);
  });

  it('reads a finding path back with techniques and confidence', async () => {
    const path = await attackPathOf(sql, finding['CVE-2023-1000']!);
    expect(path).toMatchObject({ onPath: true, reachable: true, hopsFromInternet: 2, hopsToJewel: 1, pathsThrough: 4, confidence: 'confirmed' });
    expect(path.steps.map((s) => [s.name, s.edgeKind, s.issueId, s.techniques.map((t) => t.id), s.confidence])).toEqual([
      ['web', 'internet', 'CVE-2021-44228', ['T1190'], 'confirmed'],
      ['app', 'network', 'CVE-2023-1000', ['T1210'], 'confirmed'],
      ['db', 'network', 'CVE-2022-5000', ['T1210'], 'confirmed'],
    ]);
    expect(path.steps[1]).toMatchObject({ ports: ['8080/tcp'], via: 'security group sg-app from sg-web' });
    // The bastion's route: its step is plausible (a port the firewall rule names), then the app.
    const bastion = await attackPathOf(sql, finding['CVE-2024-6387']!);
    expect(bastion).toMatchObject({ onPath: true, hopsFromInternet: 1, hopsToJewel: 2 });
    expect(bastion.steps.map((s) => s.name)).toEqual(['bastion', 'app', 'db']);
    expect(bastion.steps[0]!.confidence).toBe('plausible');
    // Evidence is per (asset, vulnerability): the app's confirmed CVE is confirmed on this route too.
    expect(bastion.steps[1]).toMatchObject({ via: 'security group sg-app from 10.0.9.0/24', ports: ['22/tcp'], confidence: 'confirmed' });
    const untracked = await attackPathOf(sql, finding['CVE-2020-0001']!);
    expect(untracked).toMatchObject({ onPath: true, hopsFromInternet: 2 });
    const agent = await attackPathOf(sql, finding['CVE-2023-3000']!);
    expect(agent).toMatchObject({ reachable: true, onPath: false, hopsToJewel: null });
  });

  it('names the choke points and ranks the fixes by the paths they cut', async () => {
    const chokes = await chokePoints(sql, { limit: 3 });
    expect(chokes[0]).toMatchObject({ name: 'db', pathsThrough: 8, share: 1, chokePoint: true });
    expect(chokes.slice(1).map((c) => [c.pathsThrough, c.share])).toEqual([
      [4, 0.5],
      [4, 0.5],
    ]);
    const fixes = await fixesByPathsCut(sql, { limit: 10 });
    // The app patch removes app and app-api: every path. The db keeps a second exposure (the
    // secret on another ticket), so neither db ticket removes it.
    expect(fixes.map((f) => [f.ticketKey, f.pathsCut, f.exact])).toEqual([
      ['T-app-patch', 8, true],
      ['T-bastion', 4, true],
      ['T-web', 4, true],
    ]);
    expect(fixes[0]!.assets.map((a) => a.name).sort()).toEqual(['app', 'app-api']);
    expect(fixes[0]!.assets[0]!.examplePath.at(-1)).toMatchObject({ name: 'db' });
    expect(fixes[0]!.assets[0]!.examplePath[0]).toMatchObject({ edgeKind: 'internet' });
  });

  it('drops a step that not_exploitable evidence rules out', async () => {
    await evidence('bastion', 'CVE-2024-6387', 'not_exploitable');
    const r = await refreshAttackGraph(sql);
    expect(r).toMatchObject({ full: false, groupsChanged: 0, paths: 4 });
    const bastion = await attackPathOf(sql, finding['CVE-2024-6387']!);
    expect(bastion).toMatchObject({ reachable: false, onPath: false });
    const nodes = new Map((await nodeRows()).map((n) => [Number(n.asset_id), n]));
    expect(nodes.get(id.db!)).toMatchObject({ sigma: 2, confidence: 'confirmed' });
  });

  it('gives the same result after one rule change incrementally as a full recomputation', async () => {
    const unchanged = await refreshAttackGraph(sql);
    expect(unchanged).toMatchObject({ groupsChanged: 0, nodesWritten: 0, ticketsWritten: 0 });
    // Open the db to the web tier directly: one group's edges change.
    await sql`insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values ('security-groups', 'sg-db', 'tcp', 5432, 5432, 'sg-web')`;
    const incremental = await refreshAttackGraph(sql);
    expect(incremental).toMatchObject({ full: false, groupsChanged: 1, paths: 2 });
    const nodes = new Map((await nodeRows()).map((n) => [Number(n.asset_id), n]));
    expect(nodes.get(id.db!)).toMatchObject({ depth: 2, sigma: 1, parent_id: String(id.web) });
    const afterIncremental = { nodes: await nodeRows(), tickets: await ticketRows(), edges: await sql`select * from attack_graph_edges order by kind, group_key, from_id, to_id` };
    const full = await refreshAttackGraph(sql, { full: true });
    expect(full).toMatchObject({ full: true, paths: incremental.paths, nodesWritten: 0, ticketsWritten: 0 });
    expect({ nodes: await nodeRows(), tickets: await ticketRows(), edges: await sql`select * from attack_graph_edges order by kind, group_key, from_id, to_id` }).toEqual(afterIncremental);
    // A membership change is a group change too: the app host leaves sg-app.
    await sql`update assets set security_groups = '{}' where id = ${id.app!}`;
    const moved = await refreshAttackGraph(sql);
    expect(moved.groupsChanged).toBeGreaterThanOrEqual(1);
    const rows = await nodeRows();
    await refreshAttackGraph(sql, { full: true });
    expect(await nodeRows()).toEqual(rows);
  });

  it('takes crown jewels from tags and the revenue threshold, and runs on a one-connection pool', async () => {
    const before = await refreshAttackGraph(sql);
    // The agent container (reached, nothing beyond it) becomes a jewel by tag: one more path.
    await sql`update assets set tags = ${sql.json({ 'crown-jewel': 'yes' })} where id = ${id['web-agent']!}`;
    const tagged = await refreshAttackGraph(sql);
    expect(tagged).toMatchObject({ jewels: before.jewels + 1, paths: before.paths + 1 });
    // The blog (revenue 1,000) counts once the threshold is below it.
    const lowered = await refreshAttackGraph(sql, { revenueThreshold: 1_000 });
    expect(lowered).toMatchObject({ jewels: before.jewels + 2, paths: before.paths + 2 });
    const [{ name }] = (await sql<{ name: string }[]>`select current_database() as name`) as unknown as [{ name: string }];
    const single = postgres(inject('postgresUrl').replace(/\/[^/]*$/, `/${name}`), { max: 1, onnotice: () => {} });
    try {
      const rows = await nodeRows();
      expect(await refreshAttackGraph(single, { revenueThreshold: 1_000 })).toMatchObject({ paths: lowered.paths, nodesWritten: 0 });
      expect(await nodeRows()).toEqual(rows);
      // Concurrent refreshes run one after the other, whatever the pools: none waits forever.
      const both = await Promise.all([refreshAttackGraph(sql, { revenueThreshold: 1_000 }), refreshAttackGraph(single, { revenueThreshold: 1_000 }), refreshAttackGraph(sql, { revenueThreshold: 1_000 })]);
      expect(both.map((r) => r.paths)).toEqual([lowered.paths, lowered.paths, lowered.paths]);
      expect(await nodeRows()).toEqual(rows);
    } finally {
      await single.end();
    }
  });

  it('refuses bad parameters with the reason', async () => {
    await expect(refreshAttackGraph(sql, { chokeShare: 2 })).rejects.toThrow(/chokeShare 2 must be in \(0, 1\]/);
    await expect(refreshAttackGraph(sql, { revenueThreshold: -1 })).rejects.toThrow(/revenueThreshold -1/);
  });
});
