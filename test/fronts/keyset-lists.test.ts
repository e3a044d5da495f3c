import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { listExposures } from '../../db/read-models/exposures.js';
import { listAssets, listTickets } from '../../db/read-models/inventory.js';
import { COUNT_CAP, CursorError, encodeCursor } from '../../db/read-models/keyset.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Keyset lists: paging by cursor visits every row exactly once in the list's order, even where
// many rows share a score and a due date; filters page the same way; counts are exact up to the
// cap and estimated beyond; a cursor that is not one of ours is refused, naming `after`.

let platform: TestPlatform;
let db: Database;

const SERVICES = ['payments', 'shop'];

beforeAll(async () => {
  platform = await startTestPlatform({}, { api: true, worker: false });
  db = platform.database;
  const sql = db.sql;
  await sql`insert into assets (asset_key, kind, name, owner, business_service, internet_facing)
    select 'image:keyset-' || g, 'container_image', 'keyset/app-' || g || ':1', 'owner-' || (g % 3), (${SERVICES}::text[])[1 + g % 2], g % 2 = 0
    from generate_series(1, 6) g`;
  // 1,200 findings with few distinct scores and due dates (ties everywhere), some unscored, some closed.
  await sql`insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, first_scan_id, last_scan_id, status, tier, score, due_at)
    select 'keyset-' || g, (select id from assets where asset_key = 'image:keyset-' || (1 + g % 6)), 'vulnerability', 'CVE-2026-' || (1000 + g % 40),
      case when g % 5 = 0 then 'openssl' else 'zlib' || (g % 3) end, '1.0', 'high', ${randomUUID()}, ${randomUUID()},
      case when g % 11 = 0 then 'closed' else 'open' end,
      case when g % 13 = 0 then null else (array['act', 'attend', 'track*', 'track'])[1 + g % 4] end,
      case when g % 13 = 0 then null else (g % 4) * 10 end,
      case when g % 13 = 0 or g % 7 = 0 then null else timestamptz '2026-12-01 00:00:00.123456+00' + (g % 3) * interval '1 day' end
    from generate_series(1, 1200) g`;
  await sql`insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at)
    select 'keyset-ticket-' || g, 'remediation:keyset-ticket-' || g, (select min(id) from assets), 'zlib', '2', 'owner-' || (g % 3),
      (array['new', 'in_progress', 'resolved'])[1 + g % 3], 'act', now(), now() + (g % 4 - 2) * interval '1 day'
    from generate_series(1, 130) g`;
});

afterAll(async () => platform?.stop());

/** Every row of a list, a page at a time, and the number of pages. */
async function pageAll<T>(fetchPage: (after?: string) => Promise<{ items: T[]; next: string | null }>): Promise<{ rows: T[]; pages: number }> {
  const rows: T[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await fetchPage(after);
    rows.push(...page.items);
    pages += 1;
    after = page.next ?? undefined;
  } while (after && pages < 1000);
  return { rows, pages };
}

describe('exposure lists page by cursor', () => {
  it('visit every open finding once, highest score first, unscored last, ties by due date then id', async () => {
    const sql = db.sql;
    const expected = (await sql`
      select id::int from findings where status = 'open'
      order by score desc nulls last, due_at nulls last, id`).map((r) => r.id as number);
    const { rows, pages } = await pageAll((after) => listExposures(sql, { limit: 37, ...(after ? { after } : {}) }));
    expect(pages).toBe(Math.ceil(expected.length / 37));
    expect(rows.map((r) => r.id)).toEqual(expected);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
  });

  it('page under filters, and over both statuses, in the same order', async () => {
    const sql = db.sql;
    const filtered = (await sql`
      select f.id::int from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' and a.business_service = 'payments' and f.tier = 'attend' and f.component like 'zlib%'
      order by f.score desc nulls last, f.due_at nulls last, f.id`).map((r) => r.id as number);
    expect(filtered.length).toBeGreaterThan(20);
    const { rows } = await pageAll((after) => listExposures(sql, { limit: 9, businessService: 'payments', tier: 'attend', q: 'zlib', ...(after ? { after } : {}) }));
    expect(rows.map((r) => r.id)).toEqual(filtered);
    const all = (await sql`select id::int from findings order by score desc nulls last, due_at nulls last, id`).map((r) => r.id as number);
    const both = await pageAll((after) => listExposures(sql, { limit: 100, status: 'all', ...(after ? { after } : {}) }));
    expect(both.rows.map((r) => r.id)).toEqual(all);
  });

  it('count exactly up to the cap and estimate beyond it', async () => {
    const sql = db.sql;
    const small = await listExposures(sql, { limit: 5, owner: 'owner-1', tier: 'act' });
    const [{ n }] = (await sql`select count(*)::int as n from findings f join assets a on a.id = f.asset_id where f.status = 'open' and a.owner = 'owner-1' and f.tier = 'act'`) as unknown as [{ n: number }];
    expect(small.estimate).toEqual({ count: n, exact: true });
    const big = await listExposures(sql, { limit: 5, status: 'all' });
    expect(big.estimate.exact).toBe(false);
    expect(big.estimate.count).toBeGreaterThan(COUNT_CAP);
  });

  it('refuse a cursor that is not one of ours', async () => {
    await expect(listExposures(db.sql, { limit: 5, after: 'not a cursor!' })).rejects.toThrow(CursorError);
    await expect(listExposures(db.sql, { limit: 5, after: encodeCursor(['1', "'; drop table findings; --", '3']) })).rejects.toThrow(/key value 2 is not a timestamp/);
  });
});

describe('ticket lists page by cursor', () => {
  it('visit every ticket once by due date then key, and filter overdue ones', async () => {
    const sql = db.sql;
    const expected = (await sql`select key from tickets order by due_at, key`).map((r) => r.key as string);
    const { rows } = await pageAll((after) => listTickets(sql, { limit: 11, ...(after ? { after } : {}) }));
    expect(rows.map((r) => r.key)).toEqual(expected);
    const overdue = (await sql`select key from tickets where due_at < now() and state not in ('resolved', 'closed', 'verified') order by due_at, key`).map((r) => r.key as string);
    const page = await pageAll((after) => listTickets(sql, { limit: 7, overdue: true, ...(after ? { after } : {}) }));
    expect(page.rows.map((r) => r.key)).toEqual(overdue);
    expect(overdue.length).toBeGreaterThan(0);
  });
});

describe('asset lists page by cursor', () => {
  it('visit every asset once by name then id, with their open findings counted', async () => {
    const sql = db.sql;
    // Two assets with one name: the id breaks the tie.
    await sql`insert into assets (asset_key, kind, name) values ('host:keyset-twin-1', 'host', 'keyset/app-3:1'), ('host:keyset-twin-2', 'host', 'keyset/app-3:1') on conflict do nothing`;
    const expected = (await sql`select id::int from assets order by name, id`).map((r) => r.id as number);
    const { rows } = await pageAll((after) => listAssets(sql, { limit: 2, ...(after ? { after } : {}) }));
    expect(rows.map((r) => r.id)).toEqual(expected);
    const [{ n }] = (await sql`select count(*)::int as n from findings f join assets a on a.id = f.asset_id where a.asset_key = 'image:keyset-1' and f.status = 'open'`) as unknown as [{ n: number }];
    expect(rows.find((r) => r.key === 'image:keyset-1')!.openFindings).toBe(n);
  });
});

describe('the API', () => {
  it('answers pages with items, next and estimate, and follows next', async () => {
    const first = await json<{ items: Array<{ id: number }>; next: string; estimate: { count: number; exact: boolean } }>(platform.api('/api/v1/exposures?limit=3&owner=owner-2'));
    expect(Object.keys(first).sort()).toEqual(['estimate', 'items', 'next']);
    expect(first.items).toHaveLength(3);
    expect(first.next).toMatch(/^[A-Za-z0-9_-]+$/);
    const second = await json<{ items: Array<{ id: number }> }>(platform.api(`/api/v1/exposures?limit=3&owner=owner-2&after=${first.next}`));
    const direct = await json<{ items: Array<{ id: number }> }>(platform.api('/api/v1/exposures?limit=6&owner=owner-2'));
    expect([...first.items, ...second.items].map((e) => e.id)).toEqual(direct.items.map((e) => e.id));
    const tickets = await json<{ items: Array<{ key: string }>; next: string | null; estimate: { count: number; exact: boolean } }>(platform.api('/api/v1/tickets?limit=200'));
    expect(tickets).toMatchObject({ next: null, estimate: { count: 130, exact: true } });
  });

  it('refuses a malformed cursor with 400 naming after', async () => {
    for (const path of ['/api/v1/exposures?after=bogus!', '/api/v1/tickets?after=WyJ4Il0', '/api/v1/assets?after=WyJ4IiwieSJd']) {
      const res = await platform.api(path);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { message: string; details: { field: string } } };
      expect(body.error.message).toMatch(/^after: not a cursor from this list/);
      expect(body.error.details.field).toBe('after');
    }
  });
});
