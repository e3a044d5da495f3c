import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit, entryHash, GENESIS_HASH, pruneAudit, verifyAuditChain, type AuditEntryInput } from '../../access/audit-trail.js';
import { BOOTSTRAP_PRINCIPAL } from '../../access/principal.js';
import { connectDatabase, migrateDatabase, type Database } from '../../db/client.js';
import { createTestDatabase } from '../support/platform.js';

// The chain on a real PostgreSQL: appends from many connections at once, the trigger that refuses
// edits, tampering with the trigger disabled (as a superuser could), and retention.

let url: string;
let database: Database;

beforeAll(async () => {
  url = await createTestDatabase();
  await migrateDatabase(url);
  database = connectDatabase(url, { max: 4 });
});
afterAll(async () => {
  await database?.close();
});

const entry = (over: Partial<AuditEntryInput> = {}): AuditEntryInput => ({
  actor: BOOTSTRAP_PRINCIPAL,
  action: 'policies.activate',
  target: 'exploitability-2',
  outcome: 'allowed',
  before: { active: 'exploitability-1' },
  after: { active: 'exploitability-2' },
  requestId: 'req-1',
  channel: 'api',
  ...over,
});

/** Runs `fn` with the guard triggers off, as a superuser editing the table directly would. */
async function behindTheTrigger(fn: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.begin(async (tx) => {
      await tx`alter table audit_log disable trigger audit_log_append_only`;
      await fn(tx as unknown as postgres.Sql);
      await tx`alter table audit_log enable trigger audit_log_append_only`;
    });
  } finally {
    await sql.end();
  }
}

describe('audit trail', () => {
  it('chains entries: the first onto 64 zeros, each next onto the one before, with a hash of its fields', async () => {
    const first = await appendAudit(database.sql, entry());
    const second = await appendAudit(database.sql, entry({ action: 'controls.put', target: 'waf-1', before: null, after: { name: 'waf-1', nested: { b: 1, a: [1, { z: 2, y: 'x' }] } } }));
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(second.prevHash).toBe(first.hash);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(entryHash(second)).toBe(second.hash);
    // Key order does not matter (jsonb reorders keys); the values do.
    expect(second.after).toEqual({ name: 'waf-1', nested: { a: [1, { y: 'x', z: 2 }], b: 1 } });
    expect(entryHash({ ...second, after: { name: 'waf-2', nested: { b: 1, a: [1, { z: 2, y: 'x' }] } } })).not.toBe(second.hash);
    const verified = await verifyAuditChain(database.sql);
    expect(verified).toMatchObject({ ok: true, checked: 2, firstId: first.id, lastId: second.id, anchor: GENESIS_HASH });
  });

  it('hides credentials a handler forgot to hide', async () => {
    const e = await appendAudit(database.sql, entry({ action: 'sources.put', after: { config: { headers: { Authorization: 'Bearer abc' }, apiKey: 'k', url: 'https://x' } } }));
    expect(e.after).toEqual({ config: { apiKey: '(hidden)', headers: { Authorization: '(hidden)' }, url: 'https://x' } });
    expect(JSON.stringify(e)).not.toContain('abc');
  });

  it('refuses an entry without an actor or with an unknown outcome, saying which field', async () => {
    await expect(appendAudit(database.sql, entry({ outcome: 'maybe' as never }))).rejects.toThrow(/outcome "maybe"/);
    await expect(appendAudit(database.sql, entry({ action: 'Not A Name' }))).rejects.toThrow(/action/);
    await expect(appendAudit(database.sql, entry({ actor: { id: '', name: 'x', kind: 'user' } }))).rejects.toThrow(/actor/);
  });

  it('keeps one chain when many connections append at once', async () => {
    const clients = Array.from({ length: 8 }, () => postgres(url, { max: 1, onnotice: () => {} }));
    try {
      await Promise.all(clients.flatMap((sql, c) => Array.from({ length: 25 }, (_, i) => appendAudit(sql, entry({ requestId: `c${c}-${i}` })))));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const [dupes] = await database.sql<{ n: number }[]>`select count(*)::int as n from (select prev_hash from audit_log group by prev_hash having count(*) > 1) d`;
    expect(dupes!.n).toBe(0);
    const verified = await verifyAuditChain(database.sql, { batchSize: 7 });
    expect(verified.ok).toBe(true);
    expect(verified.checked).toBe(3 + 200);
  });

  it('appends a few thousand entries from 8 connections and verifies them in batches (timed)', async () => {
    const fresh = await createTestDatabase();
    await migrateDatabase(fresh);
    const clients = Array.from({ length: 8 }, () => postgres(fresh, { max: 1, onnotice: () => {} }));
    try {
      const started = performance.now();
      await Promise.all(clients.map((sql, c) => (async () => {
        for (let i = 0; i < 250; i++) await appendAudit(sql, entry({ requestId: `bulk-${c}-${i}`, after: { i, c, note: 'x'.repeat(200) } }));
      })()));
      const appendMs = performance.now() - started;
      const t = performance.now();
      const verified = await verifyAuditChain(clients[0]!);
      const verifyMs = performance.now() - t;
      expect(verified).toMatchObject({ ok: true, checked: 2_000 });
      console.log(`audit: 2000 appends from 8 connections in ${appendMs.toFixed(0)} ms (${(2_000 / (appendMs / 1000)).toFixed(0)}/s); verify in ${verifyMs.toFixed(0)} ms`);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses UPDATE, DELETE and TRUNCATE in the database', async () => {
    await expect(database.sql`update audit_log set actor_name = 'someone else'`).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(database.sql`delete from audit_log where id = (select min(id) from audit_log)`).rejects.toThrow(/append-only: DELETE refused/);
    await expect(database.sql`truncate audit_log`).rejects.toThrow(/append-only: TRUNCATE refused/);
    expect((await verifyAuditChain(database.sql)).ok).toBe(true);
  });

  it('catches an entry edited and an entry deleted with the trigger disabled', async () => {
    const [victim] = await database.sql<{ id: string }[]>`select id from audit_log order by id offset 10 limit 1`;
    const id = Number(victim!.id);
    await behindTheTrigger((sql) => sql`update audit_log set outcome = 'denied' where id = ${id}`);
    const edited = await verifyAuditChain(database.sql, { batchSize: 4 });
    expect(edited).toMatchObject({ ok: false, broken: { id } });
    expect(edited.broken!.reason).toMatch(/content does not match its hash/);
    expect(edited.checked).toBe(10);
    await behindTheTrigger((sql) => sql`update audit_log set outcome = 'allowed' where id = ${id}`);
    expect((await verifyAuditChain(database.sql)).ok).toBe(true);

    // A deleted entry: the one after it no longer chains onto its predecessor.
    await behindTheTrigger((sql) => sql`delete from audit_log where id = ${id}`);
    const deleted = await verifyAuditChain(database.sql);
    expect(deleted.ok).toBe(false);
    expect(deleted.broken!.id).toBeGreaterThan(id);
    expect(deleted.broken!.reason).toMatch(/removed or changed/);
  });

  it('prunes entries beyond retention, anchors the rest, and still verifies', async () => {
    const fresh = await createTestDatabase();
    await migrateDatabase(fresh);
    const db = connectDatabase(fresh, { max: 2 });
    try {
      for (let i = 0; i < 5; i++) await appendAudit(db.sql, entry({ requestId: `old-${i}` }));
      await new Promise((r) => setTimeout(r, 20));
      const boundary = new Date();
      await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 3; i++) await appendAudit(db.sql, entry({ requestId: `new-${i}` }));
      // Retention that ends at `boundary`: the five old entries go.
      const now = new Date();
      const result = await pruneAudit(db.sql, now.getTime() - boundary.getTime(), now);
      expect(result.pruned).toBe(5);
      const [lastOld] = await db.sql<{ n: number }[]>`select count(*)::int as n from audit_log where request_id like 'old-%'`;
      expect(lastOld!.n).toBe(0);
      expect(result.entry).toMatchObject({ action: 'audit.prune', actorId: 'system', channel: 'system', after: { pruned: 5, lastPrunedHash: result.lastPrunedHash } });
      const [firstKept] = await db.sql<{ prev_hash: string }[]>`select prev_hash from audit_log order by id limit 1`;
      expect(firstKept!.prev_hash).toBe(result.lastPrunedHash);
      const verified = await verifyAuditChain(db.sql);
      expect(verified).toMatchObject({ ok: true, checked: 4, anchor: result.lastPrunedHash });

      // Nothing old enough: nothing deleted, nothing appended.
      expect(await pruneAudit(db.sql, 86_400_000)).toEqual({ pruned: 0, lastPrunedHash: null });
      expect((await verifyAuditChain(db.sql)).checked).toBe(4);

      // Removing the oldest kept entry outside retention is caught at the start of the chain.
      const head = postgres(fresh, { max: 1, onnotice: () => {} });
      await head.begin(async (tx) => {
        await tx`alter table audit_log disable trigger audit_log_append_only`;
        await tx`delete from audit_log where id = (select min(id) from audit_log)`;
        await tx`alter table audit_log enable trigger audit_log_append_only`;
      });
      await head.end();
      const broken = await verifyAuditChain(db.sql);
      expect(broken.ok).toBe(false);
      expect(broken.broken!.reason).toMatch(/removed outside retention/);
      await expect(pruneAudit(db.sql, 0)).rejects.toThrow(/not a positive duration/);
    } finally {
      await db.close();
    }
  });
});
