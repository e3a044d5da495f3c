import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../access/principal.js';
import type { ApiDeps, AppEnv } from '../../api/context.js';
import { assetRoutes } from '../../api/routes/assets.js';
import { contextSourceFor } from '../../discovery/context/index.js';
import { ingestContext } from '../../discovery/store/context.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// The merge routes over real HTTP on the real platform: an asset answers by id (a merged one naming
// its survivor), its history lists merges newest first, and only an admin may undo one, once.

let platform: TestPlatform;
const tmp = mkdtempSync(join(tmpdir(), 'asset-merge-api-'));

beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

async function importCmdb(name: string, rows: string[]) {
  const file = join(tmp, name);
  writeFileSync(file, ['name,kind,sys_id,fqdn,hostname,ip,owner,criticality', ...rows, ''].join('\n'));
  const context = await contextSourceFor(file, file, 'cmdb-csv');
  return ingestContext(platform.database.sql, { id: randomUUID(), source: 'cmdb-csv', format: 'cmdb-csv', complete: null }, context.parse(file));
}

interface AssetBody { id: number; owner: string | null; mergedInto: number | null; identifiers: Array<{ kind: string; value: string }> }
interface HistoryBody { items: Array<{ id: number; direction: string; survivorId: number; mergedId: number; undoneAt: string | null; undoneBy: string | null }> }

describe('asset merge routes', () => {
  let survivor: number;
  let merged: number;
  let mergeId: number;

  it('GET /api/v1/assets/{id} answers for a merged asset with mergedInto, and history shows the merge', async () => {
    await importCmdb('first.csv', ['lb01,host,,,,10.7.0.1,net@corp,high']);
    await importCmdb('second.csv', ['lb01-ci,host,sys-lb01,lb01.corp,,,,']);
    await importCmdb('link.csv', ['lb01,host,sys-lb01,lb01.corp,lb01,10.7.0.1,,']);
    const [row] = await platform.database.sql`select survivor_id, merged_id, id from asset_merges`;
    survivor = Number(row!.survivor_id);
    merged = Number(row!.merged_id);
    mergeId = Number(row!.id);

    const gone = await json<AssetBody>(platform.api(`/api/v1/assets/${merged}`));
    expect(gone).toMatchObject({ id: merged, mergedInto: survivor, identifiers: [] });
    const kept = await json<AssetBody>(platform.api(`/api/v1/assets/${survivor}`));
    expect(kept).toMatchObject({ id: survivor, mergedInto: null, owner: 'net@corp' });
    expect(kept.identifiers.map((i) => `${i.kind}:${i.value}`)).toContain('cmdb_id:sys-lb01');
    expect((await platform.api('/api/v1/assets/999999')).status).toBe(404);

    const history = await json<HistoryBody>(platform.api(`/api/v1/assets/${survivor}/history`));
    expect(history.items).toEqual([expect.objectContaining({ id: mergeId, direction: 'into', survivorId: survivor, mergedId: merged, undoneAt: null })]);
    const out = await json<HistoryBody>(platform.api(`/api/v1/assets/${merged}/history`));
    expect(out.items.map((i) => i.direction)).toEqual(['out']);
    // The inventory lists the survivor, not the merged asset.
    const page = await json<{ items: Array<{ id: number }> }>(platform.api('/api/v1/assets?q=lb01'));
    expect(page.items.map((i) => i.id)).toEqual([survivor]);
  });

  it('only an admin may undo: 403 for another role, and nothing moves', async () => {
    const viewer: Principal = { id: 'viewer', kind: 'user', name: 'viewer', roles: ['read-only'] };
    const app = new OpenAPIHono<AppEnv>();
    app.use('*', async (c, next) => {
      c.set('deps', { database: platform.database } as unknown as ApiDeps);
      c.set('principal', viewer);
      await next();
    });
    app.route('/', assetRoutes);
    const res = await app.request(`/api/v1/assets/merges/${mergeId}/undo`, { method: 'POST' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    expect((await json<AssetBody>(platform.api(`/api/v1/assets/${merged}`))).mergedInto).toBe(survivor);
  });

  it('POST /api/v1/assets/merges/{id}/undo puts the asset back and starts a rescoring; a second undo is 409', async () => {
    const res = await platform.api(`/api/v1/assets/merges/${mergeId}/undo`, { method: 'POST' });
    const body = (await res.json()) as { mergeId: number; undoneBy: string; rescoreWorkflowId: string };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ mergeId, survivorId: survivor, mergedId: merged, undoneBy: 'api-token', rescoreWorkflowId: `rescore:merge-undo:${mergeId}` });
    const back = await json<AssetBody>(platform.api(`/api/v1/assets/${merged}`));
    expect(back.mergedInto).toBeNull();
    expect(back.identifiers.map((i) => `${i.kind}:${i.value}`).sort()).toEqual(['cmdb_id:sys-lb01', 'fqdn:lb01.corp', 'key:host:lb01.corp']);
    const rescore = await platform.temporalClient.workflow.getHandle(body.rescoreWorkflowId).result();
    expect(rescore).toBeDefined();

    const again = await platform.api(`/api/v1/assets/merges/${mergeId}/undo`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string; message: string } }).error.message).toMatch(/already undone by api-token/);
    expect((await platform.api('/api/v1/assets/merges/999999/undo', { method: 'POST' })).status).toBe(404);
    const history = await json<HistoryBody>(platform.api(`/api/v1/assets/${survivor}/history`));
    expect(history.items[0]).toMatchObject({ id: mergeId, undoneBy: 'api-token' });
  });
});
