import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestScan } from '../../discovery/ingest-scan.js';
import { createScan, getScan } from '../../discovery/store/scans.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';
import { fixtureFile } from '../support/connectors.js';

// Defender for Cloud sub-assessments through the real ingest on PostgreSQL: the assets they name
// (a VM keyed by its Azure resource id, registry images), the identifiers other sources resolve
// them by, the skip warnings kept with the scan, and the fix advisory stored as an alias.

const noServiceNow = { baseUrl: 'http://127.0.0.1:9', user: 'none', password: 'none' };

afterAll(closeTestDatabases);

async function ingest(database: Awaited<ReturnType<typeof migratedTestDatabase>>, name: string) {
  const id = randomUUID();
  const path = fixtureFile('defender-cloud', name);
  await createScan(database.db, {
    id, source: 'defender-cloud', format: 'auto', reportName: name, status: 'running',
    workflowId: `discovery:defender-cloud:${id}`, reportPath: path, reportSha256: 'x', reportBytes: statSync(path).size,
  });
  return { id, result: await ingestScan(database, noServiceNow, id) };
}

describe('defender-cloud-json ingest', () => {
  it('stores one finding per resource and CVE, on assets other sources can resolve', async () => {
    const database = await migratedTestDatabase();
    const { id, result } = await ingest(database, 'defender_for_cloud_many_vuln.json');
    expect(result.counts).toMatchObject({ findings: 3, newFindings: 3 });

    const vm = '/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/example-rg/providers/microsoft.compute/virtualmachines/web-node-1';
    const rows = await database.sql<{ asset_key: string; kind: string; name: string; issue_id: string; fixed_version: string | null }[]>`
      select a.asset_key, a.kind, a.name, f.issue_id, f.fixed_version from findings f join assets a on a.id = f.asset_id order by f.issue_id`;
    expect(rows.map((r) => [r.asset_key, r.kind, r.name, r.issue_id, r.fixed_version])).toEqual([
      [`cloud:${vm}`, 'host', 'web-node-1', 'CVE-2000-0001', '3.0.13'],
      ['image:exampleacr.azurecr.example.com/generic-app@sha256:0000000000000000000000000000000000000000000000000000000000000001', 'container_image',
        'exampleacr.azurecr.example.com/generic-app@sha256:0000000000000000000000000000000000000000000000000000000000000001', 'CVE-2000-0002', '2.9.14'],
      ['asset:web-node-3', 'other', 'web-node-3', 'CVE-2000-0005', null],
    ]);
    // The VM's resource id is an instance id: a cloud inventory naming it finds this asset.
    const identifiers = await database.sql<{ kind: string; value: string }[]>`
      select i.kind, i.value from asset_identifiers i join assets a on a.id = i.asset_id where a.asset_key = ${`cloud:${vm}`} order by i.kind`;
    expect(identifiers.map((i) => [i.kind, i.value])).toEqual([['instance_id', vm], ['key', `cloud:${vm}`]]);
    const digests = await database.sql<{ value: string }[]>`select value from asset_identifiers where kind = 'image_digest'`;
    expect(digests.map((d) => d.value)).toEqual(['sha256:0000000000000000000000000000000000000000000000000000000000000001']);

    // The skipped sub-assessments are kept with the scan, named by the uploaded report.
    const scan = await getScan(database.db, id);
    expect((scan?.warnings as { file: string; field: string; reason: string }[]).map((w) => [w.file, w.field, w.reason])).toEqual([
      ['defender_for_cloud_many_vuln.json', 'value[2]', '1 skipped: assessedResourceType "GeneralVulnerability" names no CVE: not a vulnerability finding'],
      ['defender_for_cloud_many_vuln.json', 'value[3]', '1 skipped: status.code Healthy: the resource passes this check'],
      ['defender_for_cloud_many_vuln.json', 'value[5]', '1 skipped: assessedResourceType "SomeFutureConfigurationCheck" names no CVE: not a vulnerability finding'],
    ]);

    // A registry image finding: its fix advisory is stored as an alias of the CVE.
    await ingest(database, 'arg-mdvm-aws.json');
    const [aws] = await database.sql<{ issue_id: string; aliases: string[]; package_class: string | null; ecosystem: string | null }[]>`
      select issue_id, aliases, package_class, ecosystem from findings where issue_id = 'CVE-2023-32700'`;
    expect(aws).toMatchObject({ aliases: ['USN-6115-1'], package_class: 'os', ecosystem: 'deb' });
  });
});
