import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import postgres from 'postgres';
import { create as createTar, extract as extractTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../access/audit-trail.js';
import { codeMigrations, connectDatabase, migrateDatabase } from '../../db/client.js';
import { createBackup, readManifest, restoreBackup, type BackupManifest } from '../../platform/backup.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { createTestDatabase, eventually, json, SAMPLE_FEEDS_ENV, startTestPlatform } from '../support/platform.js';
import { type TicketRow } from '../support/reports.js';
import { runCtem } from '../support/scripts.js';

// ctem backup / restore against real PostgreSQL: a platform ingests a corpus report and opens golden
// tickets, is stopped, backed up, and restored into fresh databases; the copies must be the same
// row for row, the audit chain must still verify and its guard still hold.

const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));
const clients: postgres.Sql[] = [];
const open = (url: string) => {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  clients.push(sql);
  return sql;
};

let source: { url: string; dataDir: string; sql: postgres.Sql };
let backupFile: string;
let manifest: BackupManifest;
const scratch = mkdtempSync(join(tmpdir(), 'ctem-backup-test-'));

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
});

async function tables(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind = 'r' order by 1`;
  return rows.map((r) => r.name);
}

/** Every table as its rows' text, sorted: equal when the two databases hold the same rows. */
async function contents(sql: postgres.Sql): Promise<Record<string, { rows: number; digest: string }>> {
  const out: Record<string, { rows: number; digest: string }> = {};
  for (const name of await tables(sql)) {
    const [r] = await sql.unsafe<{ rows: number; digest: string | null }[]>(
      `select count(*)::int as rows, md5(coalesce(string_agg(x::text, E'\\n' order by x::text), '')) as digest from "${name}" x`,
    );
    out[name] = { rows: r!.rows, digest: r!.digest! };
  }
  return out;
}

async function sequences(sql: postgres.Sql): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = current_schema() and c.relkind = 'S'`;
  for (const { name } of rows) {
    const [r] = await sql.unsafe<{ v: string }[]>(`select last_value::text || '/' || is_called::text as v from "${name}"`);
    out[name] = r!.v;
  }
  return out;
}

/** Rows outside bookkeeping, summed over every table: 0 for a database that holds no data. */
async function dataRows(sql: postgres.Sql): Promise<number> {
  const c = await contents(sql);
  return Object.entries(c).filter(([t]) => t !== 'sql_functions').reduce((n, [, v]) => n + v.rows, 0);
}

/** The backup unpacked, changed by `change`, and packed again in the same entry order. */
async function repack(from: string, name: string, change: (dir: string, manifest: BackupManifest) => void): Promise<string> {
  const dir = mkdtempSync(join(scratch, 'repack-'));
  await extractTar({ file: from, cwd: dir });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BackupManifest;
  change(dir, m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
  const file = join(scratch, name);
  await createTar({ gzip: true, file, cwd: dir, portable: true }, ['manifest.json', ...m.tables.map((t) => t.file), ...m.files.map((f) => `data/${f.path}`)]);
  return file;
}

async function emptyDatabase(): Promise<{ url: string; sql: postgres.Sql; dataDir: string }> {
  const url = await createTestDatabase();
  return { url, sql: open(url), dataDir: mkdtempSync(join(scratch, 'data-')) };
}

describe.skipIf(!hasCorpus)(`ctem backup and restore (${hasCorpus ? 'corpus' : corpusSkipReason})`, () => {
  beforeAll(async () => {
    const platform = await startTestPlatform({ ...SAMPLE_FEEDS_ENV });
    try {
      const corpus = corpusFile('scanners', 'defectdojo', 'trivy', 'kubernetes.json');
      const uploads: Array<{ body: Buffer; params: Record<string, string> }> = [
        { body: readFileSync(corpus), params: { filename: basename(corpus), owner: 'alex.romero', target: 'corpus/kubernetes:1' } },
        { body: fixture, params: { owner: 'alex.romero', target: 'shop/payments-api:1' } },
      ];
      for (const u of uploads) {
        const res = await platform.api(`/api/v1/scans?${new URLSearchParams(u.params)}`, { method: 'POST', body: u.body });
        expect(res.status, await res.clone().text()).toBe(202);
        const { scanId } = (await res.json()) as { scanId: string };
        const scan = await eventually(async () => {
          const s = await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`));
          return s.status === 'running' ? undefined : s;
        }, { what: `scan ${scanId}`, timeoutMs: 120_000 });
        expect(scan.status, JSON.stringify(scan)).toBe('completed');
      }
      // Golden tickets opened in the ITSM, then one acknowledged: tickets, events and audit entries.
      const opened = await eventually(
        async () => {
          const items = (await json<{ items: TicketRow[] }>(platform.api('/api/v1/tickets?limit=1000'))).items.filter((t) => t.asset.name === 'shop/payments-api:1');
          return items.length >= 2 && items.every((t) => t.externalNumber) ? items : undefined;
        },
        { what: 'opened golden tickets', timeoutMs: 90_000 },
      );
      const ack = await platform.api(`/api/v1/tickets/${encodeURIComponent(opened[0]!.key)}/acknowledge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ by: 'alex.romero', note: 'on it' }),
      });
      expect(ack.status, await ack.clone().text()).toBeLessThan(300);
    } finally {
      await platform.stop();
    }
    source = { url: platform.env.DATABASE_URL!, dataDir: platform.env.CTEM_DATA_DIR!, sql: open(platform.env.DATABASE_URL!) };
    const taken = await createBackup({ databaseUrl: source.url, dataDir: source.dataDir, out: join(scratch, 'ctem.tar.gz') });
    backupFile = taken.file;
    manifest = taken.manifest;
  }, 400_000);

  it('backs up every table of the schema with its row count, and the uploaded reports', async () => {
    const names = await tables(source.sql);
    expect(manifest.tables.map((t) => t.name).sort()).toEqual(names);
    const c = await contents(source.sql);
    for (const t of manifest.tables) expect(t.rows, t.name).toBe(c[t.name]!.rows);
    // The data is real: findings of the corpus report, tickets, audit entries.
    for (const t of ['findings', 'assets', 'tickets', 'audit_log', 'scans']) expect(c[t]!.rows, t).toBeGreaterThan(0);
    expect(manifest.migration.tag).toBe(codeMigrations().at(-1)!.tag);
    const reports = readdirSync(join(source.dataDir, 'reports'));
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining([...reports.map((r) => `reports/${r}`), 'secrets.json', 'servicenow-simulator.json']));
    // Every foreign key's table comes after the table it references (tickets before escalations).
    const order = manifest.tables.map((t) => t.name);
    const keys = await source.sql<{ child: string; parent: string }[]>`
      select k.conrelid::regclass::text as child, k.confrelid::regclass::text as parent from pg_constraint k
      where k.contype = 'f' and k.conrelid <> k.confrelid`;
    expect(keys.length).toBeGreaterThan(5);
    expect(keys.map((k) => `${k.parent} -> ${k.child}`)).toContain('tickets -> escalations');
    for (const k of keys) expect(order.indexOf(k.parent), `${k.parent} before ${k.child}`).toBeLessThan(order.indexOf(k.child));
  });

  it('restores into a fresh database row for row; the audit chain verifies and its guard holds', async () => {
    const target = await emptyDatabase();
    const result = await restoreBackup({ file: backupFile, databaseUrl: target.url, dataDir: target.dataDir });
    expect(result.migratedFrom).toBeNull();
    const want = await contents(source.sql);
    const got = await contents(target.sql);
    // sql_functions records when the functions were applied: the backup's rows replace the target's.
    expect(got).toEqual(want);
    expect(await sequences(target.sql)).toEqual(await sequences(source.sql));
    const chain = await verifyAuditChain(target.sql);
    expect(chain.ok, JSON.stringify(chain.broken)).toBe(true);
    expect(chain.checked).toBe(want.audit_log!.rows);
    await expect(target.sql`update audit_log set actor_name = 'someone else'`).rejects.toThrow(/append-only/);
    await expect(target.sql`truncate audit_log`).rejects.toThrow(/append-only/);
    for (const f of manifest.files) {
      expect(readFileSync(join(target.dataDir, f.path)).equals(readFileSync(join(source.dataDir, f.path))), f.path).toBe(true);
    }
    // New rows continue the restored sequences instead of colliding with restored ids.
    const [next] = await target.sql<{ id: string }[]>`insert into audit_log (actor_id, actor_name, actor_kind, action, outcome, channel, prev_hash, hash)
      values ('x', 'x', 'user', 'test', 'allowed', 'cli', 'p', 'h') returning id::text`;
    expect(Number(next!.id)).toBeGreaterThan(chain.lastId!);
  });

  it('refuses a backup with a changed byte in one table, naming the table, and writes nothing', async () => {
    const findings = manifest.tables.find((t) => t.name === 'findings')!;
    const corrupt = await repack(backupFile, 'corrupt.tar.gz', (dir) => {
      const path = join(dir, findings.file);
      const bytes = readFileSync(path);
      let i = Math.floor(bytes.length / 2);
      while (!/[0-9a-f]/.test(String.fromCharCode(bytes[i]!))) i++;
      bytes[i] = bytes[i] === 0x30 ? 0x31 : 0x30; // one hex digit or digit becomes another
      writeFileSync(path, bytes);
    });
    const target = await emptyDatabase();
    await expect(restoreBackup({ file: corrupt, databaseUrl: target.url, dataDir: target.dataDir })).rejects.toThrow(/table findings is corrupt/);
    expect(await dataRows(target.sql)).toBe(0);
    expect(readdirSync(target.dataDir)).toEqual([]);
  });

  it('refuses a table whose rows do not match the manifest even when the checksum was rewritten to fit', async () => {
    const tickets = manifest.tables.find((t) => t.name === 'tickets')!;
    const forged = await repack(backupFile, 'forged.tar.gz', (dir, m) => {
      // A line less, checksum recomputed: only the row count can tell.
      const path = join(dir, tickets.file);
      const text = readFileSync(path, 'utf8').split('\n');
      text.splice(0, 1);
      writeFileSync(path, text.join('\n'));
      const entry = m.tables.find((t) => t.name === 'tickets')!;
      entry.sha256 = sha256(readFileSync(path));
    });
    const target = await emptyDatabase();
    await expect(restoreBackup({ file: forged, databaseUrl: target.url, dataDir: target.dataDir })).rejects.toThrow(/table tickets has \d+ rows, the manifest says/);
    expect(await dataRows(target.sql)).toBe(0);
  });

  it('refuses a database that holds data unless forced, and a forced restore replaces it', async () => {
    await expect(restoreBackup({ file: backupFile, databaseUrl: source.url, dataDir: mkdtempSync(join(scratch, 'data-')) })).rejects.toThrow(/already holds data \(.*\): .*--force/);
    // Forced onto a database with other data: afterwards it is exactly the backup.
    const target = await emptyDatabase();
    await restoreBackup({ file: backupFile, databaseUrl: target.url, dataDir: target.dataDir });
    await target.sql`insert into audit_log (actor_id, actor_name, actor_kind, action, outcome, channel, prev_hash, hash)
      values ('x', 'x', 'user', 'extra', 'allowed', 'cli', 'p', 'extra-hash')`;
    await target.sql`delete from tickets where key = (select key from tickets limit 1)`.catch(() => undefined);
    await restoreBackup({ file: backupFile, databaseUrl: target.url, dataDir: target.dataDir, force: true });
    expect(await contents(target.sql)).toEqual(await contents(source.sql));
    expect((await verifyAuditChain(target.sql)).ok).toBe(true);
    await expect(target.sql`delete from audit_log`).rejects.toThrow(/append-only/);
  });

  it('refuses while a platform is connected to the target database', async () => {
    const target = await emptyDatabase();
    const running = connectDatabase(target.url, { max: 1 });
    try {
      await running.sql`select 1`;
      await expect(restoreBackup({ file: backupFile, databaseUrl: target.url, dataDir: target.dataDir })).rejects.toThrow(/platform is running against this database/);
    } finally {
      await running.close();
    }
    expect(await tables(target.sql)).toEqual([]);
  });

  it('refuses a backup from a newer migration than this code knows', async () => {
    const newer = await repack(backupFile, 'newer.tar.gz', (_dir, m) => {
      m.migration = { ...m.migration, tag: '9999_future', createdAt: m.migration.createdAt + 1_000_000 };
    });
    const target = await emptyDatabase();
    await expect(restoreBackup({ file: newer, databaseUrl: target.url, dataDir: target.dataDir })).rejects.toThrow(/9999_future, newer than this ctem's newest/);
    expect(await tables(target.sql)).toEqual([]);
  });

  it('restores a backup of an older migration at that migration, and refuses a database newer than it', async () => {
    const older = codeMigrations().at(-3)!;
    const url = await createTestDatabase();
    await migrateDatabase(url, { upTo: older.createdAt });
    const olderBackup = await createBackup({ databaseUrl: url, dataDir: mkdtempSync(join(scratch, 'data-')), out: join(scratch, 'older.tar.gz') });
    expect(olderBackup.manifest.migration.tag).toBe(older.tag);
    const target = await emptyDatabase();
    await restoreBackup({ file: olderBackup.file, databaseUrl: target.url, dataDir: target.dataDir });
    const [applied] = await target.sql<{ n: number; last: string }[]>`select count(*)::int as n, max(created_at)::text as last from drizzle.__drizzle_migrations`;
    expect(Number(applied!.last)).toBe(older.createdAt);
    expect(applied!.n).toBe(codeMigrations().length - 2);
    const newest = await emptyDatabase();
    await migrateDatabase(newest.url);
    await expect(restoreBackup({ file: olderBackup.file, databaseUrl: newest.url, dataDir: newest.dataDir })).rejects.toThrow(new RegExp(`newer than the backup's ${older.tag}`));
  });

  it('runs end to end through the ctem command', async () => {
    const out = join(scratch, 'cli.tar.gz');
    const backup = await runCtem(['backup', '--out', out], { DATABASE_URL: source.url, CTEM_DATA_DIR: source.dataDir });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toContain(`backup written: ${out}`);
    expect(existsSync(out)).toBe(true);
    const target = await emptyDatabase();
    const restore = await runCtem(['restore', out], { DATABASE_URL: target.url, CTEM_DATA_DIR: target.dataDir });
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/\d+ tables, \d+ rows \(counts and SHA-256 checked\)/);
    expect(await contents(target.sql)).toEqual(await contents(source.sql));
    const again = await runCtem(['restore', out], { DATABASE_URL: target.url, CTEM_DATA_DIR: target.dataDir });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^restore: the database already holds data/);
  });

  it('uses the data directory\'s embedded PostgreSQL when DATABASE_URL is unset', async () => {
    const dataDir = mkdtempSync(join(scratch, 'embedded-'));
    // Run as root, the embedded server runs as the postgres user, which must reach its data.
    for (const dir of [scratch, dataDir]) chmodSync(dir, 0o755);
    const env = { DATABASE_URL: undefined, CTEM_DATA_DIR: dataDir };
    const nothing = await runCtem(['backup'], env);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain(`no embedded PostgreSQL in ${join(dataDir, 'postgres')}`);
    // Restore creates the embedded database, backup reads it back: the same tables, rows and sums.
    const restore = await runCtem(['restore', backupFile], env);
    expect(restore.code, restore.stderr).toBe(0);
    const backup = await runCtem(['backup'], env);
    expect(backup.code, backup.stderr).toBe(0);
    const [written] = readdirSync(join(dataDir, 'backups'));
    expect(written).toMatch(/^ctem-\d{8}T\d{6}Z\.tar\.gz$/);
    const again = await readManifest(join(dataDir, 'backups', written!));
    const summary = (m: BackupManifest) => m.tables.map((t) => [t.name, t.rows, t.name === 'sql_functions' ? '' : t.sha256]);
    expect(summary(again)).toEqual(summary(manifest));
    expect(again.files.map((f) => [f.path, f.sha256])).toEqual(manifest.files.map((f) => [f.path, f.sha256]));
  }, 240_000);
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
