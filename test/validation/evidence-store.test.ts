import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { planProbeTargets } from '../../validation/active-checks.js';
import type { EvidenceRecord } from '../../validation/evidence/model.js';
import { evidenceForFinding, importEvidence, listEvidence } from '../../validation/evidence/store.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Evidence resolved onto the inventory on real PostgreSQL: a host named by IP or FQDN is the asset a
// scanner reported, a CVE confirmed on a host lands on the image running there too, nothing is
// stored twice, and nothing unknown is dropped without being counted.

let database: Database;
const ids: Record<string, number> = {};
const findings: Record<string, number> = {};

async function asset(key: string, kind: string, identifiers: Array<[string, string]>, extra: { exposedPorts?: string[] } = {}): Promise<number> {
  const [row] = await database.sql<{ id: string }[]>`
    insert into assets (asset_key, kind, name, exposed_ports, internet_facing) values (${key}, ${kind}, ${key}, ${extra.exposedPorts ?? null}::text[], ${extra.exposedPorts ? true : null}) returning id`;
  const id = Number(row!.id);
  for (const [k, v] of [['key', key] as [string, string], ...identifiers]) await database.sql`insert into asset_identifiers (kind, value, asset_id, source) values (${k}, ${v}, ${id}, 'test')`;
  return id;
}

async function finding(assetId: number, issueId: string, tier: string, extra: { location?: string; component?: string; version?: string } = {}): Promise<number> {
  const scan = randomUUID();
  const [row] = await database.sql<{ id: string }[]>`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, location, severity, tier, first_scan_id, last_scan_id)
    values (${randomUUID()}, ${assetId}, 'vulnerability', ${issueId}, ${extra.component ?? 'pkg'}, ${extra.version ?? '1.0'}, ${extra.location ?? ''}, 'high', ${tier}, ${scan}, ${scan})
    returning id`;
  return Number(row!.id);
}

const record = (host: string, vulnerability: string, result: EvidenceRecord['result'], testedAt = new Date().toISOString(), port?: string): EvidenceRecord => ({
  asset: { assetKey: `host:${host}`, kind: 'host', name: host },
  vulnerability,
  result,
  tool: 'nuclei',
  testedAt,
  ...(port ? { port } : {}),
  target: `https://${host}/`,
  detail: { template: 'test-template' },
});

async function* each(records: EvidenceRecord[]) {
  yield* records;
}

beforeAll(async () => {
  database = await migratedTestDatabase();
  ids.web = await asset('host:web.example.com', 'host', [['fqdn', 'web.example.com'], ['ip', '203.0.113.10']], { exposedPorts: ['443/tcp', '53/udp'] });
  ids.image = await asset('image:shop/api:1.0', 'container_image', [['image', 'shop/api:1.0']]);
  await database.sql`insert into asset_relations (asset_id, relation, target_id, source) values (${ids.image!}, 'runs_on', ${ids.web!}, 'test')`;
  ids.db = await asset('host:db.internal', 'host', [['fqdn', 'db.internal']]);
  findings.webLog4j = await finding(ids.web!, 'CVE-2021-44228', 'act', { location: '8443/tcp', component: 'log4j-core', version: '2.14.1' });
  findings.imageLog4j = await finding(ids.image!, 'CVE-2021-44228', 'attend', { component: 'log4j-core', version: '2.14.1' });
  findings.imageOther = await finding(ids.image!, 'CVE-2023-0001', 'track*');
  findings.dbTrack = await finding(ids.db!, 'CVE-2023-0002', 'track');
});
afterAll(closeTestDatabases);

describe('evidence import', () => {
  it('lands on the host and the image running there, resolved by IP', async () => {
    const result = await importEvidence(database.sql, each([record('203.0.113.10', 'CVE-2021-44228', 'confirmed', undefined, '443/tcp')]), { source: 'nuclei.jsonl' });
    expect(result).toMatchObject({ records: 1, stored: 2, duplicates: 0, findings: 2, byResult: { confirmed: 2 }, expired: 0 });
    expect(result.assetIds).toEqual([ids.web, ids.image].sort((a, b) => a! - b!));
    expect(result.unknownAssets.count).toBe(0);
    const onImage = await evidenceForFinding(database.sql, findings.imageLog4j!);
    expect(onImage).toHaveLength(1);
    expect(onImage[0]).toMatchObject({ result: 'confirmed', tool: 'nuclei', source: 'nuclei.jsonl', port: '443/tcp', target: 'https://203.0.113.10/', active: true, openFindings: 1 });
    expect(onImage[0]!.detail).toMatchObject({ template: 'test-template' });
    // 90 days for a confirmed result.
    expect(new Date(onImage[0]!.expiresAt).getTime() - new Date(onImage[0]!.testedAt).getTime()).toBe(90 * 86_400_000);
  });

  it('stores the same results once, and counts the repeat', async () => {
    const testedAt = '2026-12-01T10:00:00.000Z';
    const first = await importEvidence(database.sql, each([record('web.example.com', 'CVE-2023-0001', 'not_exploitable', testedAt)]), { source: 'pentest.csv' });
    const again = await importEvidence(database.sql, each([record('web.example.com', 'CVE-2023-0001', 'not_exploitable', testedAt)]), { source: 'pentest.csv' });
    expect(first).toMatchObject({ stored: 1, duplicates: 0 });
    expect(again).toMatchObject({ stored: 0, duplicates: 1, assetIds: [] });
  });

  it('reports unknown assets and evidence no open finding carries, and stores the latter', async () => {
    const result = await importEvidence(
      database.sql,
      each([record('nobody.example.com', 'CVE-2021-44228', 'exploited'), record('db.internal', 'nuclei:exposed-panel', 'confirmed')]),
      { source: 'mixed.jsonl' },
    );
    expect(result.unknownAssets).toEqual({ count: 1, samples: [{ asset: 'host:nobody.example.com', vulnerability: 'CVE-2021-44228' }] });
    expect(result.withoutFinding).toEqual({ count: 1, samples: [{ asset: 'host:db.internal', vulnerability: 'nuclei:exposed-panel' }] });
    expect(result.stored).toBe(1);
    const stored = await listEvidence(database.sql, { withoutFinding: true, limit: 10, offset: 0 });
    expect(stored.map((e) => e.vulnerability)).toContain('nuclei:exposed-panel');
  });

  it('counts a test older than evidence lasts as expired, and it applies to no finding', async () => {
    const result = await importEvidence(database.sql, each([record('db.internal', 'CVE-2023-0002', 'exploited', '2020-01-01T00:00:00Z')]), { source: 'old.csv' });
    expect(result).toMatchObject({ stored: 1, expired: 1, assetIds: [] });
    expect(await evidenceForFinding(database.sql, findings.dbTrack!)).toEqual([]);
  });

  it('stores nothing when a record is unreadable', async () => {
    const before = await database.sql`select count(*)::int as n from validation_evidence`;
    await expect(importEvidence(database.sql, each([record('web.example.com', 'CVE-2099-1', 'confirmed'), record('web.example.com', 'CVE-2099-2', 'confirmed', 'not a date')]), { source: 'bad' })).rejects.toThrow(/not a date/);
    const after = await database.sql`select count(*)::int as n from validation_evidence`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});

describe('probe planning', () => {
  it('targets the host that answers for each urgent finding, on its own port or the exposed TCP ports', async () => {
    const plan = await planProbeTargets(database.sql, [ids.web!, ids.image!, ids.db!]);
    const byPort = Object.fromEntries(plan.targets.map((t) => [`${t.address}:${t.port}`, t.findings.map((f) => f.id).sort((a, b) => a - b)]));
    // The host's own finding names 8443/tcp; the image's findings are served on the host's exposed TCP port.
    expect(byPort).toEqual({
      '203.0.113.10:8443': [findings.webLog4j],
      '203.0.113.10:443': [findings.imageLog4j!, findings.imageOther!].sort((a, b) => a - b),
    });
    expect(plan.targets.find((t) => t.port === 443)!.name).toBe('web.example.com');
    // db's only finding is track: not urgent, not probed, not counted.
    expect(plan).toMatchObject({ withoutPort: 0, withoutAddress: 0 });
  });
});
