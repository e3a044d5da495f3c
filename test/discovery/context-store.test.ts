import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { contextSourceFor } from '../../discovery/context/index.js';
import { ingestContext } from '../../discovery/store/context.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Context documents merged on real PostgreSQL: a container's runs_on reaches the instance the same
// document describes, and security-group rules are keyed by their group, not by the import's name.

const examples = join(import.meta.dirname, '..', '..', 'examples', 'context');
const tmp = mkdtempSync(join(tmpdir(), 'context-store-'));
let database: Database;

beforeAll(async () => {
  database = await migratedTestDatabase();
});
afterAll(closeTestDatabases);

async function importContext(file: string, options: { source?: string; complete?: boolean | null } = {}) {
  const context = await contextSourceFor(file, file);
  const scan = { id: randomUUID(), source: options.source ?? context.source, format: context.source, complete: options.complete ?? null };
  return ingestContext(database.sql, scan, context.parse(file));
}

function write(name: string, content: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

describe('cloud inventory: containers on their instances', () => {
  it('runs_on reaches the instance asset of the same document, and no placeholder asset is created', async () => {
    await importContext(join(examples, 'cloud-inventory.json'));
    await importContext(join(examples, 'security-groups.json'));
    const placeholders = await database.sql`select asset_key from assets where asset_key like 'cloud:%'`;
    expect(placeholders).toEqual([]);
    const edges = await database.sql<{ image: string; host: string; kind: string; internet_facing: boolean | null }[]>`
      select i.name as image, h.name as host, h.kind, h.internet_facing
      from asset_relations r join assets i on i.id = r.asset_id join assets h on h.id = r.target_id
      where r.relation = 'runs_on' order by i.name`;
    expect(edges).toEqual([
      { image: 'docker.io/library/nginx:1.25.3', host: 'web-01', kind: 'host', internet_facing: true },
      { image: 'registry.example.com/shop/payments-api:1.4.2', host: 'app-01', kind: 'host', internet_facing: false },
    ]);
    // The instance id identifies the host itself.
    const [byInstance] = await database.sql`
      select a.name from asset_identifiers ai join assets a on a.id = ai.asset_id
      where ai.kind = 'instance_id' and ai.value = 'i-0a1b2c3d4e5f60001'`;
    expect(byInstance?.name).toBe('web-01');
  });

  it('a later document naming only the instance id reaches the same host', async () => {
    await importContext(write('later.json', {
      instances: [{ id: 'i-0a1b2c3d4e5f60003', name: 'db-01', containers: [{ image: 'docker.io/library/postgres:16' }] }],
    }));
    const [edge] = await database.sql`
      select h.name, h.asset_key from asset_relations r join assets i on i.id = r.asset_id join assets h on h.id = r.target_id
      where i.name = 'docker.io/library/postgres:16'`;
    expect(edge).toMatchObject({ name: 'db-01', asset_key: 'host:db-01.prod.example.com' });
    expect(await database.sql`select 1 from assets where asset_key like 'cloud:%'`).toHaveLength(0);
  });
});

describe('security groups: rules keyed by group', () => {
  const group = (id: string, port?: number) => ({
    GroupId: id,
    IpPermissions: port === undefined ? [] : [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
  });
  const rules = async () =>
    (await database.sql<{ security_group: string; from_port: number }[]>`
      select security_group, from_port from exposure_rules where security_group like 'sg-test-%' order by security_group, from_port`)
      .map((r) => `${r.security_group}:${r.from_port}`);

  it('two imports of different groups under one feed name both stand, and re-importing changes nothing', async () => {
    const a = write('sg-a.json', { SecurityGroups: [group('sg-test-a', 443)] });
    const b = write('sg-b.json', { SecurityGroups: [group('sg-test-b', 22)] });
    await importContext(a);
    await importContext(b);
    expect(await rules()).toEqual(['sg-test-a:443', 'sg-test-b:22']);
    await importContext(a);
    await importContext(b);
    await importContext(a);
    expect(await rules()).toEqual(['sg-test-a:443', 'sg-test-b:22']);
  });

  it('a group described again replaces its own rules, even with none left', async () => {
    await importContext(write('sg-a2.json', { SecurityGroups: [group('sg-test-a', 8443)] }));
    expect(await rules()).toEqual(['sg-test-a:8443', 'sg-test-b:22']);
    await importContext(write('sg-a3.json', { SecurityGroups: [group('sg-test-a')] }));
    expect(await rules()).toEqual(['sg-test-b:22']);
  });

  it('only a complete import removes the groups its feed no longer lists', async () => {
    await importContext(write('sg-a4.json', { SecurityGroups: [group('sg-test-a', 443)] }));
    const onlyB = write('sg-only-b.json', { SecurityGroups: [group('sg-test-b', 22)] });
    await importContext(onlyB); // partial: says nothing about sg-test-a
    expect(await rules()).toEqual(['sg-test-a:443', 'sg-test-b:22']);
    // Another feed's groups are not this feed's to remove.
    await importContext(write('sg-other.json', { SecurityGroups: [group('sg-test-c', 80)] }), { source: 'other-account' });
    await importContext(onlyB, { complete: true });
    expect(await rules()).toEqual(['sg-test-b:22', 'sg-test-c:80']);
  });
});
