import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../db/client.js';
import { ContextError, contextSourceFor, type ContextRecord } from '../../discovery/context/index.js';
import { networkSegments } from '../../discovery/context/network-segments/index.js';
import { ingestContext } from '../../discovery/store/context.js';
import { contextGeneration } from '../../prioritization/scoring/inputs.js';
import { attackPathOf, refreshAttackGraph } from '../../validation/graph/index.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Declared network segments: the parser (the example and each kind of error), the store (an import
// replaces its source's flows, nothing stored on error) and the exposure graph on real PostgreSQL
// over an estate whose only path goes through declared flows:
//
//   internet -443 (internet -> dmz)-> web 10.20.1.10 -5432 (dmz -> data)-> db 10.20.3.30 (critical)

const examples = join(import.meta.dirname, '..', '..', 'examples', 'context');
const tmp = mkdtempSync(join(tmpdir(), 'network-segments-'));
let sql: Sql;
const id: Record<string, number> = {};
const finding: Record<string, number> = {};

function write(name: string, content: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function parse(file: string): Promise<ContextRecord[]> {
  const out: ContextRecord[] = [];
  for await (const r of networkSegments.parse(file)) out.push(r);
  return out;
}

async function parseError(content: unknown): Promise<ContextError> {
  const error = await parse(write(`bad-${randomUUID()}.json`, content)).then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ContextError);
  return error as ContextError;
}

async function importSegments(content: unknown, source = 'network-segments') {
  const file = write(`${source}-${randomUUID()}.json`, content);
  const context = await contextSourceFor(file, 'segments.json');
  expect(context.source).toBe('network-segments');
  return ingestContext(sql, { id: randomUUID(), source, format: context.source, complete: null }, context.parse(file));
}

const SEGMENTS = [
  { name: 'dmz', cidrs: ['10.20.1.0/24'] },
  { name: 'app', cidrs: ['10.20.2.0/24'] },
  { name: 'data', cidrs: ['10.20.3.0/24', 'fd00:20:3::/64'] },
];
const POLICY = {
  segments: SEGMENTS,
  flows: [
    { from: 'internet', to: 'dmz', ports: ['443/tcp'], description: 'Public HTTPS' },
    { from: 'dmz', to: 'data', ports: ['5432/tcp'] },
  ],
};

const flowRows = (source?: string) =>
  sql`select source, from_segment, to_segment, from_cidrs, to_cidrs, ports, description from network_flows
      where ${source === undefined ? sql`true` : sql`source = ${source}`} order by source, from_segment, to_segment`;
const edgeRows = () => sql`select kind, group_key, from_id, to_id, ports, via from attack_graph_edges order by kind, group_key, from_id, to_id`;
const nodeRows = () => sql`select * from attack_graph_nodes order by asset_id`;

async function asset(name: string, ip: string, fields: Record<string, unknown> = {}) {
  const row = { asset_key: `host:${name}`, kind: 'host', name, attribute_sources: {}, ...fields };
  const [r] = await sql<{ id: number }[]>`insert into assets ${sql(row as never)} returning id::int as id`;
  id[name] = r!.id;
  await sql`insert into asset_identifiers (kind, value, asset_id, source) values ('ip', ${ip}, ${r!.id}, 'cmdb')`;
}

async function addFinding(issue: string, assetName: string, location: string) {
  const scan = '00000000-0000-4000-8000-000000000001';
  const row = {
    fingerprint: `fp-${issue}`, asset_id: id[assetName], kind: 'vulnerability', issue_id: issue, component: 'openssl', version: '1.0',
    severity: 'critical', status: 'open', first_scan_id: scan, last_scan_id: scan, location, tier: 'act',
  };
  const [r] = await sql<{ id: number }[]>`insert into findings ${sql(row as never)} returning id::int as id`;
  finding[issue] = r!.id;
}

beforeAll(async () => {
  sql = (await migratedTestDatabase()).sql;
  // No public IP, no security group, not facing by inventory: only the declared flows connect them.
  await asset('web', '10.20.1.10');
  await asset('api', '10.20.2.20');
  await asset('db', '10.20.3.30', { criticality: 'critical' });
  await addFinding('CVE-2021-44228', 'web', '443/tcp');
  await addFinding('CVE-2023-1000', 'api', '8080/tcp');
  await addFinding('CVE-2022-5000', 'db', '5432/tcp');
});

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await closeTestDatabases();
});

describe('network-segments parser', () => {
  it('reads the example policy with the segments resolved to CIDRs', async () => {
    const file = join(examples, 'network-segments.json');
    expect((await contextSourceFor(file, 'network-segments.json')).source).toBe('network-segments');
    const records = await parse(file);
    expect(records).toEqual([
      { type: 'network_flow', flow: { from: 'internet', to: 'dmz', fromCidrs: [], toCidrs: ['10.0.1.0/28'], ports: ['443/tcp'], description: 'Public HTTPS to the web tier' } },
      { type: 'network_flow', flow: { from: 'dmz', to: 'app', fromCidrs: ['10.0.1.0/28'], toCidrs: ['10.0.1.16/28'], ports: ['8080/tcp'], description: 'Web tier to the payments API' } },
      { type: 'network_flow', flow: { from: 'app', to: 'data', fromCidrs: ['10.0.1.16/28'], toCidrs: ['10.0.2.0/24'], ports: ['5432/tcp'] } },
      { type: 'network_flow', flow: { from: 'backup', to: 'data', fromCidrs: ['10.9.0.0/24', 'fd00:9::/64'], toCidrs: ['10.0.2.0/24'], ports: ['all'], description: 'Backup appliances' } },
    ]);
  });

  it('accepts flows before segments, port ranges and normalises case', async () => {
    const records = await parse(write('order.json', { flows: [{ from: 'dmz', to: 'data', ports: ['8000-8100/TCP', '53/udp'] }], segments: SEGMENTS }));
    expect(records).toEqual([{ type: 'network_flow', flow: { from: 'dmz', to: 'data', fromCidrs: ['10.20.1.0/24'], toCidrs: ['10.20.3.0/24', 'fd00:20:3::/64'], ports: ['8000-8100/tcp', '53/udp'] } }]);
  });

  it('names the file, the JSON path and the reason for each kind of error', async () => {
    const unknown = await parseError({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'data', ports: ['5432/tcp'] }, { from: 'dmz', to: 'cache', ports: ['6379/tcp'] }] });
    expect(unknown.message).toMatch(/^bad-[^:]+\.json: network-segments: flows\[1\]\.to: unknown segment "cache" \(declared: dmz, app, data\)$/);
    expect((await parseError({ segments: SEGMENTS, flows: [{ from: 'dmx', to: 'data', ports: ['all'] }] })).where).toBe('flows[0].from');
    expect((await parseError({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'internet', ports: ['all'] }] })).where).toBe('flows[0].to');
    const cidr = await parseError({ segments: [{ name: 'dmz', cidrs: ['10.20.1.0/24', '10.20.300.0/24'] }], flows: [] });
    expect([cidr.where, cidr.reason]).toEqual(['segments[0].cidrs[1]', '"10.20.300.0/24": 10.20.300.0 is not an IP address']);
    expect((await parseError({ segments: [{ name: 'dmz', cidrs: ['10.20.1.5/24'] }], flows: [] })).reason).toMatch(/host bits set beyond \/24/);
    expect((await parseError({ segments: [{ name: 'dmz', cidrs: ['fd00::1/64'] }], flows: [] })).reason).toMatch(/host bits set/);
    expect((await parseError({ segments: [{ name: 'dmz', cidrs: ['10.20.1.0/33'] }], flows: [] })).reason).toMatch(/longer than 32 bits/);
    expect((await parseError({ segments: [{ name: 'dmz', cidrs: ['10.20.1.0'] }], flows: [] })).reason).toMatch(/is not a CIDR/);
    expect((await parseError({ segments: [{ name: 'dmz', cidrs: [] }], flows: [] })).where).toBe('segments[0].cidrs');
    for (const bad of ['443', '443/icmp', '0/tcp', '65536/tcp', '8100-8000/tcp', 'any']) {
      const port = await parseError({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'data', ports: ['5432/tcp', bad] }] });
      expect([port.where, port.reason]).toEqual(['flows[0].ports[1]', `"${bad}" is not a port: expected 443/tcp, 8000-8100/tcp (1-65535, tcp or udp) or all`]);
    }
    expect((await parseError({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'data', ports: [] }] })).where).toBe('flows[0].ports');
    expect((await parseError({ segments: [...SEGMENTS, { name: 'dmz', cidrs: ['10.30.0.0/16'] }], flows: [] })).reason).toBe('segment "dmz" is declared twice');
    expect((await parseError({ segments: [{ name: 'internet', cidrs: ['0.0.0.0/0'] }], flows: [] })).where).toBe('segments[0].name');
    expect((await parseError({ segments: SEGMENTS })).where).toBe('flows');
    expect((await parseError({ segments: SEGMENTS, flows: {} })).reason).toBe('expected an array');
    expect((await parseError('[]')).reason).toMatch(/expected a JSON object \{"segments"/);
    expect((await parseError('')).reason).toBe('the file is empty');
  });
});

describe('network flows in the store', () => {
  it('moves the scoring context generation only when an internet flow changes what is internet-facing', async () => {
    const before = await contextGeneration(sql);
    // Lateral flows feed the graph only: scoring reads nothing of them.
    await importSegments({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'data', ports: ['5432/tcp'] }] }, 'segments-lateral');
    expect(await flowRows('segments-lateral')).toHaveLength(1);
    expect(await contextGeneration(sql)).toBe(before);
    await importSegments({ segments: SEGMENTS, flows: [{ from: 'internet', to: 'data', ports: ['443/tcp'] }] }, 'segments-lateral');
    const [db] = await sql`select internet_facing, exposed_ports from assets where id = ${id.db!}`;
    expect(db).toEqual({ internet_facing: true, exposed_ports: ['443/tcp'] });
    expect(await contextGeneration(sql)).not.toBe(before);
    await importSegments({ segments: SEGMENTS, flows: [] }, 'segments-lateral');
    expect(await flowRows('segments-lateral')).toEqual([]);
  });

  it('replaces a source’s flows on import, leaves other sources alone, stores nothing from a bad file', async () => {
    expect(await importSegments(POLICY, 'segments-a')).toMatchObject({ networkFlows: 2 });
    await importSegments({ segments: SEGMENTS, flows: [{ from: 'app', to: 'data', ports: ['5432/tcp'] }] }, 'segments-b');
    expect((await flowRows()).map((r) => `${r.source} ${r.from_segment}->${r.to_segment}`)).toEqual([
      'segments-a dmz->data', 'segments-a internet->dmz', 'segments-b app->data',
    ]);
    expect((await flowRows('segments-a'))[0]).toMatchObject({ from_cidrs: ['10.20.1.0/24'], to_cidrs: ['10.20.3.0/24', 'fd00:20:3::/64'], ports: ['5432/tcp'], description: null });
    // The internet flow makes web internet-facing for scoring too, on the flow's ports.
    const [web] = await sql`select internet_facing, exposed_ports, attribute_sources->>'internet_facing' as why from assets where id = ${id.web!}`;
    expect(web).toEqual({ internet_facing: true, exposed_ports: ['443/tcp'], why: 'network segments' });

    // A new import of a source replaces its flows: the internet flow goes, and so does web's exposure.
    await importSegments({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'app', ports: ['8080/tcp'] }] }, 'segments-a');
    expect((await flowRows()).map((r) => `${r.source} ${r.from_segment}->${r.to_segment}`)).toEqual(['segments-a dmz->app', 'segments-b app->data']);
    const [after] = await sql`select internet_facing, exposed_ports, attribute_sources->>'internet_facing' as why from assets where id = ${id.web!}`;
    expect(after).toEqual({ internet_facing: false, exposed_ports: null, why: 'network segments' });

    const before = await flowRows();
    await expect(importSegments({ segments: SEGMENTS, flows: [{ from: 'dmz', to: 'nowhere', ports: ['all'] }] }, 'segments-a')).rejects.toThrow(/flows\[0\]\.to: unknown segment "nowhere"/);
    expect(await flowRows()).toEqual(before);
    // An empty flow list declares that the source allows nothing any more.
    await importSegments({ segments: SEGMENTS, flows: [] }, 'segments-a');
    await importSegments({ segments: SEGMENTS, flows: [] }, 'segments-b');
    expect(await flowRows()).toEqual([]);
  });
});

describe('declared segments in the exposure graph', () => {
  it('has no path without the flows, and internet -> web -> db through them', async () => {
    const none = await refreshAttackGraph(sql);
    expect(none).toMatchObject({ jewels: 1, jewelsReached: 0, paths: 0 });
    await importSegments(POLICY);
    const r = await refreshAttackGraph(sql);
    expect(r).toMatchObject({ full: false, jewelsReached: 1, paths: 1 });
    expect(await edgeRows()).toEqual([
      { kind: 'internet', group_key: '', from_id: '0', to_id: String(id.web), ports: ['443/tcp'], via: 'network segments' },
      { kind: 'network', group_key: 'segment:network-segments:data', from_id: String(id.web), to_id: String(id.db), ports: ['5432/tcp'], via: 'segment dmz -> data (5432/tcp)' },
    ]);
    const path = await attackPathOf(sql, finding['CVE-2022-5000']!);
    expect(path).toMatchObject({ onPath: true, hopsFromInternet: 2 });
    expect(path.steps.map((s) => [s.name, s.edgeKind, s.via, s.ports])).toEqual([
      ['web', 'internet', 'network segments', ['443/tcp']],
      ['db', 'network', 'segment dmz -> data (5432/tcp)', ['5432/tcp']],
    ]);
  });

  it('gives the same result after a flow change incrementally as a full recomputation', async () => {
    expect(await refreshAttackGraph(sql)).toMatchObject({ groupsChanged: 0, nodesWritten: 0 });
    // web reaches the api, the api reaches the db on 5432 as well: two flow sets change.
    await importSegments({
      segments: SEGMENTS,
      flows: [...POLICY.flows, { from: 'dmz', to: 'app', ports: ['8080/tcp'] }, { from: 'app', to: 'data', ports: ['5432/tcp', '22/tcp'] }],
    });
    const incremental = await refreshAttackGraph(sql);
    // Paths are shortest paths: db stays at depth 2 through web; the api is reached at depth 2.
    expect(incremental).toMatchObject({ full: false, groupsChanged: 2, paths: 1 });
    const [db] = await sql`select edge_via, sigma from attack_graph_nodes where asset_id = ${id.db!}`;
    expect(db).toEqual({ edge_via: 'segment dmz -> data (5432/tcp)', sigma: 1 });
    const [api] = await sql`select depth, edge_via, tau from attack_graph_nodes where asset_id = ${id.api!}`;
    expect(api).toEqual({ depth: 2, edge_via: 'segment dmz -> app (8080/tcp)', tau: 0 });
    const edges = await edgeRows();
    expect(edges.find((e) => e.from_id === String(id.api) && e.to_id === String(id.db))).toMatchObject({
      group_key: 'segment:network-segments:data', ports: ['22/tcp', '5432/tcp'], via: 'segment app -> data (5432/tcp, 22/tcp)',
    });
    const afterIncremental = { nodes: await nodeRows(), edges };
    const full = await refreshAttackGraph(sql, { full: true });
    expect(full).toMatchObject({ full: true, paths: incremental.paths, nodesWritten: 0, ticketsWritten: 0 });
    expect({ nodes: await nodeRows(), edges: await edgeRows() }).toEqual(afterIncremental);

    // Dropping a flow set removes its edges and its group.
    await importSegments(POLICY);
    expect(await refreshAttackGraph(sql)).toMatchObject({ groupsChanged: 2, paths: 1 });
    expect(await sql`select security_group from attack_graph_groups order by 1`).toEqual([{ security_group: 'segment:network-segments:data' }]);
    expect((await edgeRows()).filter((e) => e.kind === 'network')).toHaveLength(1);
  });

  it('rebuilds the segment edges when an asset’s IP changes', async () => {
    // An address no flow's segments hold changes nothing of theirs.
    await sql`update asset_identifiers set value = '10.20.2.21' where asset_id = ${id.api!} and kind = 'ip'`;
    expect(await refreshAttackGraph(sql)).toMatchObject({ full: false, groupsChanged: 0, paths: 1 });
    // The db moves out of the data segment: its edge goes, the path with it.
    await sql`update asset_identifiers set value = '10.99.0.30' where asset_id = ${id.db!} and kind = 'ip'`;
    const moved = await refreshAttackGraph(sql);
    expect(moved).toMatchObject({ full: false, groupsChanged: 1, jewelsReached: 0, paths: 0 });
    expect((await edgeRows()).filter((e) => e.kind === 'network')).toEqual([]);
    // Back in, as an IPv6 address of the segment's second block.
    await sql`update asset_identifiers set value = 'fd00:20:3::30' where asset_id = ${id.db!} and kind = 'ip'`;
    expect(await refreshAttackGraph(sql)).toMatchObject({ groupsChanged: 1, jewelsReached: 1, paths: 1 });
    const rows = await nodeRows();
    await refreshAttackGraph(sql, { full: true });
    expect(await nodeRows()).toEqual(rows);
  });
});
