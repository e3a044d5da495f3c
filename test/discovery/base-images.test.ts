import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { connectorFor } from '../../discovery/connectors/index.js';
import { ContextError, contextSourceFor, type ContextRecord } from '../../discovery/context/index.js';
import { baseImagesOf } from '../../discovery/store/base-images.js';
import { ingestContext } from '../../discovery/store/context.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Which base image an image is built from, on real PostgreSQL: named by the CMDB's built_from
// column or by the OCI base-image labels of a Trivy or Grype report, stored as one built_from
// relation per image that the latest claim replaces, and read back with the base's owner.

const IMAGE = 'registry.example.com/shop/payments-api:1.4.2';
const DEBIAN = 'registry.example.com/base/debian:12';
const ALPINE = 'registry.example.com/base/alpine:3.14';
const ALPINE_DIGEST = `sha256:${'ab'.repeat(32)}`;

let database: Database;
let tmp: string;
const trivyFixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8'));

beforeAll(async () => {
  database = await migratedTestDatabase();
  tmp = mkdtempSync(join(tmpdir(), 'base-images-'));
});
afterAll(async () => {
  await closeTestDatabases();
  rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, content: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function parseCmdb(name: string, csv: string): Promise<ContextRecord[]> {
  const file = write(name, csv);
  const records: ContextRecord[] = [];
  for await (const r of (await contextSourceFor(file, name, 'cmdb-csv')).parse(file)) records.push(r);
  return records;
}

async function importCmdb(name: string, csv: string) {
  const file = write(name, csv);
  const source = await contextSourceFor(file, name);
  return ingestContext(database.sql, { id: randomUUID(), source: 'cmdb-csv', format: source.source }, source.parse(file));
}

/** The Trivy fixture with the OCI base-image labels its builder would have written. */
function trivyReport(name: string, labels: Record<string, string>): string {
  const report = structuredClone(trivyFixture);
  report.Metadata.ImageConfig = { architecture: 'amd64', os: 'linux', config: { Labels: labels } };
  return write(name, report);
}

async function importReport(file: string) {
  const connector = await connectorFor(file, file);
  return ingestFindings(database.sql, { id: randomUUID(), source: connector.format }, connector.parse(file, {}));
}

/** An image asset by its reference (`image:<ref>` is its key whichever source created it). */
async function assetId(image: string): Promise<number> {
  const [row] = await database.sql`select id from assets where asset_key = ${`image:${image}`}`;
  if (!row) throw new Error(`no asset for ${image}`);
  return Number(row.id);
}

async function basesOf(image: string): Promise<Array<{ base: string; source: string }>> {
  return database.sql<{ base: string; source: string }[]>`
    select b.asset_key as base, r.source from asset_relations r join assets a on a.id = r.asset_id join assets b on b.id = r.target_id
    where a.asset_key = ${`image:${image}`} and r.relation = 'built_from' order by b.asset_key`;
}

describe('the CMDB names an image’s base image', () => {
  it('reads built_from (or base_image) on image rows as one built_from relation to that image', async () => {
    const records = await parseCmdb('cmdb.csv', [
      'name,kind,image,owner,base_image',
      `payments-api,image,${IMAGE},alex.romero,${DEBIAN}`,
      'pinned,image,registry.example.com/shop/pinned:2,,registry.example.com/base/debian@sha256:' + 'cd'.repeat(32),
      'no-base,image,registry.example.com/shop/plain:1,,',
    ].join('\n'));
    const relations = records.map((r) => (r.type === 'asset' ? r.asset.relations : undefined));
    expect(relations).toEqual([
      [{ relation: 'built_from', target: { image: DEBIAN }, targetKind: 'container_image', targetName: DEBIAN }],
      [{
        relation: 'built_from',
        target: { image: `registry.example.com/base/debian@sha256:${'cd'.repeat(32)}`, imageDigest: `sha256:${'cd'.repeat(32)}` },
        targetKind: 'container_image',
        targetName: `registry.example.com/base/debian@sha256:${'cd'.repeat(32)}`,
      }],
      undefined,
    ]);
  });

  it('refuses a base that is not one image reference, or on a row that is not an image, naming file, line and column', async () => {
    const header = 'name,kind,image,built_from';
    await expect(parseCmdb('two.csv', `${header}\napi,image,${IMAGE},"${DEBIAN};${ALPINE}"`)).rejects.toThrow(
      new ContextError('two.csv', 'cmdb-csv', 'line 2, column built_from', `"${DEBIAN};${ALPINE}" is not one image reference (registry/repo:tag); an image has one base`),
    );
    await expect(parseCmdb('host.csv', `${header}\n\napp-01,host,,${DEBIAN}`)).rejects.toThrow(
      'host.csv: cmdb-csv: line 3, column built_from: only a container image has a base image; this row is a host',
    );
    await expect(parseCmdb('self.csv', `${header}\napi,image,${IMAGE},${IMAGE}`)).rejects.toThrow(
      `self.csv: cmdb-csv: line 2, column built_from: "${IMAGE}" is the image itself`,
    );
  });

  it('links the image to the base image asset, created as a placeholder that a scan of the base later matches', async () => {
    await importCmdb('cmdb.csv', `name,kind,image,owner,built_from\npayments-api,image,${IMAGE},alex.romero,${DEBIAN}\n`);
    expect(await basesOf(IMAGE)).toEqual([{ base: `image:${DEBIAN}`, source: 'cmdb-csv' }]);
    const [base] = await database.sql`select asset_key, kind, owner from assets where asset_key = ${`image:${DEBIAN}`}`;
    expect(base).toEqual({ asset_key: `image:${DEBIAN}`, kind: 'container_image', owner: null });

    // The base's own CMDB row (its owner) lands on the same asset, not a second one.
    await importCmdb('base.csv', `name,kind,image,owner\ndebian-base,image,${DEBIAN},platform.team\n`);
    expect((await database.sql`select count(*)::int as n from assets where asset_key = ${`image:${DEBIAN}`}`)[0]!.n).toBe(1);
    const bases = await baseImagesOf(database.sql, [await assetId(IMAGE)]);
    expect(bases.get(await assetId(IMAGE))).toEqual({ id: await assetId(DEBIAN), assetKey: `image:${DEBIAN}`, name: DEBIAN, owner: 'platform.team' });
  });

  it('ignores an empty built_from: an empty cell claims nothing and keeps the recorded base', async () => {
    await importCmdb('empty.csv', `name,kind,image,built_from\npayments-api,image,${IMAGE},""\n`);
    expect(await basesOf(IMAGE)).toEqual([{ base: `image:${DEBIAN}`, source: 'cmdb-csv' }]);
  });
});

describe('a scanner report names an image’s base image', () => {
  it('records Trivy’s org.opencontainers.image.base.name label, replacing the base the CMDB named', async () => {
    const file = trivyReport('trivy-labelled.json', {
      'org.opencontainers.image.base.name': ALPINE,
      'org.opencontainers.image.base.digest': ALPINE_DIGEST,
      'org.opencontainers.image.source': 'https://git.example.com/shop/payments-api',
    });
    const connector = await connectorFor(file, file);
    const first = await connector.parse(file, {})[Symbol.asyncIterator]().next();
    expect(first.done ? undefined : first.value.asset.builtFrom).toEqual({ image: ALPINE, digest: ALPINE_DIGEST });

    await importReport(file);
    expect(await basesOf(IMAGE)).toEqual([{ base: `image:${ALPINE}`, source: 'trivy-json' }]);
    // The base named by a report is not a scanned asset: the report only names it.
    const [alpine] = await database.sql`select last_scanned_at from assets where asset_key = ${`image:${ALPINE}`}`;
    expect(alpine!.last_scanned_at).toBeNull();
    const ids = await database.sql`select kind, value from asset_identifiers where asset_id = ${await assetId(ALPINE)} order by kind`;
    expect(ids.map((r) => `${r.kind} ${r.value}`)).toEqual([`image ${ALPINE}`, `image_digest ${ALPINE_DIGEST}`, `key image:${ALPINE}`]);
  });

  it('a later CMDB import naming another base replaces the report’s', async () => {
    await importCmdb('cmdb-again.csv', `name,kind,image,built_from\npayments-api,image,${IMAGE},${DEBIAN}\n`);
    expect(await basesOf(IMAGE)).toEqual([{ base: `image:${DEBIAN}`, source: 'cmdb-csv' }]);
    const bases = await baseImagesOf(database.sql, [await assetId(IMAGE), await assetId(DEBIAN)]);
    expect([...bases.keys()]).toEqual([await assetId(IMAGE)]);
    expect(bases.get(await assetId(IMAGE))!.owner).toBe('platform.team');
  });

  it('a report with an empty or malformed base label is imported and changes no base', async () => {
    for (const [name, value] of [['empty', ''], ['spaces', 'debian 12']] as const) {
      const counts = await importReport(trivyReport(`trivy-${name}.json`, { 'org.opencontainers.image.base.name': value }));
      expect(counts.findings).toBeGreaterThan(0);
      expect(await basesOf(IMAGE)).toEqual([{ base: `image:${DEBIAN}`, source: 'cmdb-csv' }]);
    }
  });

  it('reads the base from a Grype report’s image labels or its encoded image config', async () => {
    const grype = (target: Record<string, unknown>) => ({
      matches: [{
        vulnerability: { id: 'CVE-2023-0001', severity: 'High', fix: { state: 'fixed', versions: ['1.2'] } },
        artifact: { name: 'openssl', version: '1.1', type: 'apk' },
        matchDetails: [],
      }],
      source: { type: 'image', target: { userInput: 'registry.example.com/shop/orders:2.0', imageID: `sha256:${'ef'.repeat(32)}`, ...target } },
    });
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', config: { Labels: { 'org.opencontainers.image.base.name': DEBIAN } } })).toString('base64');
    const fromConfig = write('grype-config.json', grype({ config }));
    await importReport(fromConfig);
    expect(await basesOf('registry.example.com/shop/orders:2.0')).toEqual([{ base: `image:${DEBIAN}`, source: 'grype' }]);

    const fromLabels = write('grype-labels.json', grype({ config, labels: { 'org.opencontainers.image.base.name': ALPINE } }));
    await importReport(fromLabels);
    expect(await basesOf('registry.example.com/shop/orders:2.0')).toEqual([{ base: `image:${ALPINE}`, source: 'grype' }]);
  });
});
