import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { likeLiteral, type Sql } from '../db/client.js';
import { countRows, decodeCursor, encodeCursor, type KeysetPage } from '../db/read-models/keyset.js';
import type { Principal } from './principal.js';

// The audit trail: one row per mutation in `audit_log`, chained by hash. Each entry's hash is
// SHA-256 over its previous entry's hash and a canonical JSON of its own fields, so an entry edited
// or deleted behind the platform's back (the table's trigger refuses both; a superuser can disable
// it) breaks the chain at that entry. Appends are serialised by one advisory lock, so two writers
// never chain onto the same predecessor. Retention prunes the oldest entries and appends an
// `audit.prune` entry naming the last pruned hash: the first kept entry chains onto that anchor.

export type AuditOutcome = 'allowed' | 'denied' | 'failed';
export type AuditChannel = 'api' | 'console' | 'slack' | 'cli' | 'system' | 'webhook';

/** Who acted: a principal, or a caller whose credentials were refused (kind `anonymous`). */
export type AuditActor = Pick<Principal, 'id' | 'name'> & { kind: Principal['kind'] | 'anonymous' };

export interface AuditEntryInput {
  actor: AuditActor;
  /** `policies.activate`, `tickets.acknowledge`, `audit.prune`...: see access/audit-actions.ts. */
  action: string;
  /** What was acted on: a policy version, a ticket key, a source name (several joined by `/`). */
  target?: string | null;
  outcome: AuditOutcome;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
  channel: AuditChannel;
}

export interface AuditEntry {
  id: number;
  at: string;
  actorId: string;
  actorName: string;
  actorKind: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  before: unknown;
  after: unknown;
  requestId: string | null;
  channel: string;
  prevHash: string;
  hash: string;
}

/** The predecessor of the very first entry. */
export const GENESIS_HASH = '0'.repeat(64);

// Any constant will do as long as every process uses it: it serialises appends (and pruning).
const AUDIT_LOCK_ID = 0x61756469;

const HIDDEN = '(hidden)';
// A safety net under the handlers, which already hide credentials (sources show headers as (hidden)).
const SECRET_KEY = /(token|secret|password|passwd|authorization|api[-_]?key|private[-_]?key|credential)/i;

/** JSON as stored in jsonb and read back: keys sorted, undefined dropped, dates as ISO strings, secrets hidden. */
export function normalizeJson(value: unknown, key = ''): unknown {
  if (value === undefined) return undefined;
  if (key && SECRET_KEY.test(key) && value !== null && typeof value !== 'object') return HIDDEN;
  const plain = JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
  if (Array.isArray(plain)) return plain.map((v) => normalizeJson(v) ?? null);
  if (plain && typeof plain === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(plain).sort()) {
      const v = normalizeJson((plain as Record<string, unknown>)[k], k);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  return plain;
}

/** JSON.stringify with object keys sorted at every depth: the same value always prints the same. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
    .join(',')}}`;
}

type HashedFields = Omit<AuditEntry, 'id' | 'hash'>;

/** SHA-256 (hex) of the previous hash and the entry's fields in a fixed order. */
export function entryHash(e: HashedFields): string {
  const fields = [e.at, e.actorId, e.actorName, e.actorKind, e.action, e.target, e.outcome, e.before ?? null, e.after ?? null, e.requestId, e.channel];
  return createHash('sha256').update(e.prevHash).update('\n').update(canonical(fields)).digest('hex');
}

function checkEntry(entry: AuditEntryInput): void {
  const bad = (field: string, why: string) => new Error(`audit entry: ${field} ${why}`);
  if (!entry.actor?.id || !entry.actor.name || !entry.actor.kind) throw bad('actor', 'needs an id, a name and a kind');
  if (!/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$/.test(entry.action)) throw bad('action', `"${entry.action}" is not a dotted lower-case name`);
  if (!['allowed', 'denied', 'failed'].includes(entry.outcome)) throw bad('outcome', `"${entry.outcome}" is not allowed, denied or failed`);
}

interface Row {
  id: string;
  at: Date;
  actor_id: string;
  actor_name: string;
  actor_kind: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  before: unknown;
  after: unknown;
  request_id: string | null;
  channel: string;
  prev_hash: string;
  hash: string;
}

function fromRow(r: Row): AuditEntry {
  return {
    id: Number(r.id),
    at: r.at.toISOString(),
    actorId: r.actor_id,
    actorName: r.actor_name,
    actorKind: r.actor_kind,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    before: r.before,
    after: r.after,
    requestId: r.request_id,
    channel: r.channel,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

type Tx = postgres.TransactionSql;

async function appendLocked(tx: Tx, entry: AuditEntryInput): Promise<AuditEntry> {
  const [last] = await tx<{ hash: string }[]>`select hash from audit_log order by id desc limit 1`;
  // `at` is taken under the lock, so it never runs backwards along the chain within one clock.
  const fields: HashedFields = {
    at: new Date().toISOString(),
    actorId: entry.actor.id,
    actorName: entry.actor.name,
    actorKind: entry.actor.kind,
    action: entry.action,
    target: entry.target ?? null,
    outcome: entry.outcome,
    before: normalizeJson(entry.before) ?? null,
    after: normalizeJson(entry.after) ?? null,
    requestId: entry.requestId ?? null,
    channel: entry.channel,
    prevHash: last?.hash ?? GENESIS_HASH,
  };
  const hash = entryHash(fields);
  // tx.json: a string bound as jsonb would be stored as one JSON string.
  const json = (v: unknown) => (v === null ? null : tx.json(v as postgres.JSONValue));
  const [row] = await tx<Row[]>`
    insert into audit_log (at, actor_id, actor_name, actor_kind, action, target, outcome, before, after, request_id, channel, prev_hash, hash)
    values (${fields.at}::timestamptz, ${fields.actorId}, ${fields.actorName}, ${fields.actorKind}, ${fields.action}, ${fields.target},
            ${fields.outcome}, ${json(fields.before)}, ${json(fields.after)}, ${fields.requestId}, ${fields.channel},
            ${fields.prevHash}, ${hash})
    returning *`;
  return fromRow(row!);
}

/** Appends one entry to the chain (its own short transaction) and returns it. */
export async function appendAudit(sql: Sql, entry: AuditEntryInput): Promise<AuditEntry> {
  checkEntry(entry);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${AUDIT_LOCK_ID})`;
    return appendLocked(tx, entry);
  }) as Promise<AuditEntry>;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries whose link and hash were checked. */
  checked: number;
  firstId: number | null;
  lastId: number | null;
  /** The chain's start: 64 zeros, or the last pruned hash an `audit.prune` entry names. */
  anchor: string;
  /** The first entry that does not hold, and why. */
  broken?: { id: number; reason: string };
}

const VERIFY_BATCH = 2_000;

/**
 * Walks the whole log in id order, a batch at a time, recomputing every hash and checking every
 * link; stops at the first entry that does not hold.
 */
export async function verifyAuditChain(sql: Sql, { batchSize = VERIFY_BATCH }: { batchSize?: number } = {}): Promise<AuditVerification> {
  // One snapshot for the anchor and every batch: a prune or append meanwhile is not a broken link.
  return sql.begin('isolation level repeatable read read only', (tx) => walkChain(tx, batchSize)) as Promise<AuditVerification>;
}

async function walkChain(sql: postgres.TransactionSql, batchSize: number): Promise<AuditVerification> {
  // After pruning, the first kept entry chains onto the last pruned one, which the newest prune
  // entry names (itself inside the chain, so it cannot be edited to fit either).
  const [prune] = await sql<{ after: { lastPrunedHash?: string } | null }[]>`
    select after from audit_log where action = 'audit.prune' and actor_id = 'system' order by id desc limit 1`;
  const anchor = prune?.after?.lastPrunedHash ?? GENESIS_HASH;
  let prev: string | undefined;
  let checked = 0;
  let firstId: number | null = null;
  let lastId: number | null = null;
  let after = 0n;
  for (;;) {
    const rows = await sql<Row[]>`select * from audit_log where id > ${after.toString()}::bigint order by id limit ${batchSize}`;
    for (const r of rows) {
      const e = fromRow(r);
      firstId ??= e.id;
      lastId = e.id;
      const result = (reason: string): AuditVerification => ({ ok: false, checked, firstId, lastId, anchor, broken: { id: e.id, reason } });
      if (prev === undefined) {
        if (e.prevHash !== anchor) {
          const start = anchor === GENESIS_HASH ? 'the start of the log (64 zeros)' : `the last pruned hash ${anchor.slice(0, 12)}…`;
          return result(`the first entry's previous hash ${e.prevHash.slice(0, 12)}… is not ${start}: entries before it were removed outside retention`);
        }
      } else if (e.prevHash !== prev) {
        return result(`its previous hash ${e.prevHash.slice(0, 12)}… is not the hash of the entry before it (${prev.slice(0, 12)}…): an entry before it was removed or changed`);
      }
      const computed = entryHash(e);
      if (computed !== e.hash) return result(`its content does not match its hash (stored ${e.hash.slice(0, 12)}…, computed ${computed.slice(0, 12)}…): the entry was changed`);
      prev = e.hash;
      checked += 1;
    }
    if (rows.length < batchSize) break;
    after = BigInt(rows[rows.length - 1]!.id);
  }
  return { ok: true, checked, firstId, lastId, anchor };
}

export interface AuditPruneResult {
  pruned: number;
  /** The hash of the newest pruned entry: the new anchor of the chain. */
  lastPrunedHash: string | null;
  /** The `audit.prune` entry recording it (none when nothing was old enough). */
  entry?: AuditEntry;
}

/**
 * Deletes the entries older than `retentionMs` (oldest first, in id order) and appends an
 * `audit.prune` entry naming how many and the last pruned hash, in one transaction under the append
 * lock. Nothing old enough: nothing deleted, nothing appended (a daily no-op leaves no noise).
 */
export async function pruneAudit(sql: Sql, retentionMs: number, now = new Date()): Promise<AuditPruneResult> {
  if (!(retentionMs > 0)) throw new Error(`audit retention: ${retentionMs} ms is not a positive duration`);
  const cutoff = new Date(now.getTime() - retentionMs);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${AUDIT_LOCK_ID})`;
    // Deleting a prefix by id keeps the rest a chain even if a clock ran backwards.
    const [edge] = await tx<{ id: string | null }[]>`select max(id)::text as id from audit_log where at < ${cutoff.toISOString()}::timestamptz`;
    if (!edge?.id) return { pruned: 0, lastPrunedHash: null };
    const [last] = await tx<{ hash: string; at: Date }[]>`select hash, at from audit_log where id = ${edge.id}::bigint`;
    await tx`set local ctem.audit_prune = 'on'`;
    const deleted = await tx`delete from audit_log where id <= ${edge.id}::bigint`;
    await tx`set local ctem.audit_prune = 'off'`;
    const entry = await appendLocked(tx, {
      actor: { id: 'system', name: 'ctem', kind: 'system' },
      action: 'audit.prune',
      outcome: 'allowed',
      after: { pruned: deleted.count, lastPrunedId: Number(edge.id), lastPrunedHash: last!.hash, lastPrunedAt: last!.at.toISOString(), retentionDays: Math.round(retentionMs / 86_400_000) },
      channel: 'system',
    });
    return { pruned: deleted.count, lastPrunedHash: last!.hash, entry };
  }) as Promise<AuditPruneResult>;
}

export interface AuditFilter {
  /** An actor's id or name. */
  actor?: string;
  /** `policies` matches `policies.create` and `policies.activate`; a full name matches itself. */
  action?: string;
  target?: string;
  outcome?: AuditOutcome;
  channel?: string;
  /** ISO timestamps: entries at or after `since`, before `until`. */
  since?: string;
  until?: string;
  limit: number;
  after?: string;
}

const AUDIT_CURSOR = ['id'] as const;

function auditFrom(sql: Sql, f: AuditFilter) {
  const actionLike = f.action ? `${likeLiteral(f.action)}.%` : '';
  return sql`
    from audit_log a where true
    ${f.actor ? sql`and (a.actor_id = ${f.actor} or a.actor_name = ${f.actor})` : sql``}
    ${f.action ? sql`and (a.action = ${f.action} or a.action like ${actionLike})` : sql``}
    ${f.target ? sql`and a.target = ${f.target}` : sql``}
    ${f.outcome ? sql`and a.outcome = ${f.outcome}` : sql``}
    ${f.channel ? sql`and a.channel = ${f.channel}` : sql``}
    ${f.since ? sql`and a.at >= ${f.since}::timestamptz` : sql``}
    ${f.until ? sql`and a.at < ${f.until}::timestamptz` : sql``}`;
}

/** A page of entries, newest first, after the cursor `f.after`, with a capped count of all that match. */
export async function listAudit(sql: Sql, f: AuditFilter): Promise<KeysetPage<AuditEntry>> {
  const after = f.after ? decodeCursor(f.after, AUDIT_CURSOR) : undefined;
  const rows = await sql<Row[]>`
    select a.* ${auditFrom(sql, f)}
    ${after ? sql`and a.id < ${after[0]!}::bigint` : sql``}
    order by a.id desc limit ${f.limit + 1}`;
  const more = rows.length > f.limit;
  const items = rows.slice(0, f.limit).map(fromRow);
  return {
    items,
    next: more ? encodeCursor([String(items.at(-1)!.id)]) : null,
    estimate: await countRows(sql, () => auditFrom(sql, f)),
  };
}

export async function getAuditEntry(sql: Sql, id: number): Promise<AuditEntry | undefined> {
  const [row] = await sql<Row[]>`select * from audit_log where id = ${id}`;
  return row ? fromRow(row) : undefined;
}
