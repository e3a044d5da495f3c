import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { create as createTar, Parser, type ReadEntry } from 'tar';
import { codeMigrations, migrateDatabase } from '../db/client.js';

// `ctem backup` / `ctem restore`: a logical backup of the platform's PostgreSQL schema (every table
// by COPY from one consistent snapshot, the sequences, the migration it was taken at) and of the
// files of the data directory the platform needs (uploaded reports, generated secrets, the
// simulators' state), as one .tar.gz with a manifest of row counts and SHA-256 sums. It works
// against any PostgreSQL the platform can use, the embedded one included (which ships no pg_dump).
// Temporal's own state is the Temporal server's and is not in it (docs/operations.md).

export const BACKUP_FORMAT = 1;

/** Connections of a running platform carry this application name (db/client.ts connectDatabase). */
export const PLATFORM_APPLICATION_NAME = 'ctem';

/**
 * Entries of the data directory that are not the platform's files: the embedded database's own
 * files, Temporal's (dev server SQLite, the cluster's Temporal and UI configuration), process logs
 * and pids, the backups themselves and `ctem cluster`'s own data directory.
 */
export const DATA_DIR_EXCLUDED = ['postgres', 'temporal.sqlite', 'temporal', 'temporal-ui', 'run', 'backups', 'cluster'] as const;

/** The database tables the restore treats as bookkeeping, not data (re-created by the migration). */
const BOOKKEEPING_TABLES = new Set(['sql_functions']);

export interface BackupTable {
  name: string;
  /** Path inside the archive. */
  file: string;
  columns: string[];
  rows: number;
  sha256: string;
}

export interface BackupFile {
  /** Path relative to the data directory, with `/` separators. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface BackupManifest {
  format: number;
  createdAt: string;
  ctemVersion: string;
  /** The schema the tables were read from (the application's current schema). */
  schema: string;
  /** The newest applied drizzle migration (drizzle.__drizzle_migrations). */
  migration: { tag: string | null; createdAt: number; hash: string; applied: number };
  /** In an order that satisfies every foreign key: the restore loads them so. */
  tables: BackupTable[];
  sequences: Array<{ name: string; lastValue: string; isCalled: boolean }>;
  files: BackupFile[];
}

export class BackupError extends Error {
  override name = 'BackupError';
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

function ctemVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** `ctem-20261208T031500Z.tar.gz` under the data directory's backups/. */
export function defaultBackupPath(dataDir: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return join(dataDir, 'backups', `ctem-${stamp}.tar.gz`);
}

type Tx = postgres.TransactionSql | postgres.Sql;

interface CatalogTable {
  name: string;
  columns: string[];
}

/** The application's tables (ordinary and partitioned leaves' parents excluded), each with its stored columns. */
async function catalogTables(sql: Tx): Promise<CatalogTable[]> {
  const rows = await sql<{ name: string; kind: string; columns: string[] | null }[]>`
    select c.relname as name, c.relkind as kind,
           array(select a.attname::text from pg_attribute a
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                 order by a.attnum) as columns
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p')
    order by c.relname`;
  // A partitioned table holds no rows itself: its partitions (ordinary tables here) are copied.
  const partitioned = rows.filter((r) => r.kind === 'p').map((r) => r.name);
  if (partitioned.length) throw new BackupError(`partitioned tables are not supported by ctem backup: ${partitioned.join(', ')}`);
  return rows.map((r) => ({ name: r.name, columns: r.columns ?? [] }));
}

/** Tables in an order where every table comes after the tables its foreign keys reference. */
async function foreignKeyOrder(sql: Tx, tables: string[]): Promise<string[]> {
  const edges = await sql<{ child: string; parent: string }[]>`
    select c.relname as child, p.relname as parent
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    join pg_class p on p.oid = k.confrelid
    where k.contype = 'f' and n.nspname = current_schema() and k.conrelid <> k.confrelid`;
  const parents = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const e of edges) parents.get(e.child)?.add(e.parent);
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < tables.length) {
    const ready = tables.filter((t) => !placed.has(t) && [...parents.get(t)!].every((p) => placed.has(p) || !parents.has(p)));
    if (!ready.length) {
      const left = tables.filter((t) => !placed.has(t));
      throw new BackupError(`foreign keys form a cycle between ${left.join(', ')}: no load order satisfies them`);
    }
    for (const t of ready) {
      placed.add(t);
      ordered.push(t);
    }
  }
  return ordered;
}

async function catalogSequences(sql: Tx): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind = 'S' order by c.relname`;
  return rows.map((r) => r.name);
}

interface AppliedMigration {
  createdAt: number;
  hash: string;
  applied: number;
}

/** The newest migration drizzle applied to this database, or none on a database never migrated. */
async function appliedMigration(sql: Tx): Promise<AppliedMigration | null> {
  const [exists] = await sql<{ table: string | null }[]>`select to_regclass('drizzle.__drizzle_migrations')::text as table`;
  if (!exists?.table) return null;
  const [row] = await sql<{ created_at: string; hash: string; applied: number }[]>`
    select created_at::text, hash, (select count(*)::int from drizzle.__drizzle_migrations) as applied
    from drizzle.__drizzle_migrations order by created_at desc limit 1`;
  return row ? { createdAt: Number(row.created_at), hash: row.hash, applied: row.applied } : null;
}

/** Counts rows (lines of COPY text: a newline inside a value is escaped) and hashes what passes. */
class Tally extends Transform {
  readonly hash = createHash('sha256');
  rows = 0;
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.rows++;
    done(null, chunk);
  }
}

async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const tally = new Tally();
  await pipeline(createReadStream(file), tally, async function* (source) {
    for await (const _ of source) void _;
  });
  return { sha256: tally.hash.digest('hex'), bytes: tally.bytes };
}

/** The data directory's files the platform needs, relative paths with `/`, sorted. */
async function dataFiles(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  const excluded = new Set<string>(DATA_DIR_EXCLUDED);
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(dataDir, path).split(sep).join('/');
      if (dir === dataDir && (excluded.has(entry.name) || entry.name.startsWith('temporal.sqlite') || entry.name.startsWith('.restore-'))) continue;
      // Files being written aside (secrets, simulator state) are not the platform's yet.
      if (entry.name.endsWith('.tmp')) continue;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) found.push(rel);
      else throw new BackupError(`data directory: ${rel} is neither a file nor a directory; move it out of ${dataDir} or back up by hand`);
    }
  }
  if (existsSync(dataDir)) await walk(dataDir);
  return found.sort();
}

/** A hard link when the file system allows one (the same disk), else a copy. */
async function stageFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

export interface BackupResult {
  file: string;
  manifest: BackupManifest;
}

/**
 * Writes a backup of the database at `databaseUrl` and of `dataDir` to `out`. The tables are read
 * in one REPEATABLE READ READ ONLY transaction, so they are one consistent snapshot while the
 * platform keeps running; each streams by COPY to a file beside `out`, never held in memory. The
 * archive is written aside and renamed into place: `out` is either complete or absent.
 */
export async function createBackup({ databaseUrl, dataDir, out }: { databaseUrl: string; dataDir: string; out: string }): Promise<BackupResult> {
  out = resolve(out);
  if (existsSync(out)) throw new BackupError(`${out} exists already: choose another --out`);
  await mkdir(dirname(out), { recursive: true });
  const staging = `${out}.partial.d`;
  const partial = `${out}.partial`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'tables'), { recursive: true });
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connection: { application_name: 'ctem-backup' } });
  try {
    const manifest = await sql.begin('isolation level repeatable read read only', async (tx) => {
      const [{ schema } = { schema: '' }] = await tx<{ schema: string }[]>`select current_schema() as schema`;
      const migration = await appliedMigration(tx);
      if (!migration) throw new BackupError('the database has no applied migrations: nothing of the platform to back up (is DATABASE_URL right?)');
      const known = codeMigrations().find((m) => m.createdAt === migration.createdAt);
      const tables = await catalogTables(tx);
      const order = await foreignKeyOrder(tx, tables.map((t) => t.name));
      const byName = new Map(tables.map((t) => [t.name, t]));
      const written: BackupTable[] = [];
      for (const [i, name] of order.entries()) {
        const { columns } = byName.get(name)!;
        const file = `tables/${String(i).padStart(3, '0')}-${name}.copy`;
        const tally = new Tally();
        const source = (await tx.unsafe(`copy ${quote(name)} (${columns.map(quote).join(', ')}) to stdout`).readable()) as Readable;
        await pipeline(source, tally, createWriteStream(join(staging, file), { mode: 0o600 }));
        // postgres.js pauses the connection's socket when the stream's buffer is full and resumes it
        // when the stream is read again; a pause in the COPY's last packet is never undone, since an
        // ended stream is not read again, and the next statement waits forever (porsager/postgres
        // #917, #499; seen here under load). Reading once more resumes the socket; harmless otherwise.
        (source as Readable & { _read(size: number): void })._read(0);
        written.push({ name, file, columns, rows: tally.rows, sha256: tally.hash.digest('hex') });
      }
      const sequences = [];
      for (const name of await catalogSequences(tx)) {
        const [row] = await tx.unsafe<{ last_value: string; is_called: boolean }[]>(`select last_value::text, is_called from ${quote(name)}`);
        sequences.push({ name, lastValue: row!.last_value, isCalled: row!.is_called });
      }
      return {
        format: BACKUP_FORMAT,
        createdAt: new Date().toISOString(),
        ctemVersion: ctemVersion(),
        schema,
        migration: { tag: known?.tag ?? null, ...migration },
        tables: written,
        sequences,
        files: [] as BackupFile[],
      } satisfies BackupManifest;
    });
    for (const path of await dataFiles(dataDir)) {
      const staged = join(staging, 'data', ...path.split('/'));
      await stageFile(join(dataDir, ...path.split('/')), staged);
      manifest.files.push({ path, ...(await sha256File(staged)) });
    }
    await writeFile(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2), { mode: 0o600 });
    // The manifest first, then the tables in load order: a restore reads the archive front to back.
    const entries = ['manifest.json', ...manifest.tables.map((t) => t.file), ...manifest.files.map((f) => `data/${f.path}`)];
    await createTar({ gzip: true, file: partial, cwd: staging, portable: true, mode: 0o600 } as Parameters<typeof createTar>[0] & { file: string }, entries);
    await chmod(partial, 0o600);
    await rename(partial, out);
    return { file: out, manifest };
  } finally {
    await sql.end({ timeout: 5 });
    await rm(staging, { recursive: true, force: true });
    await rm(partial, { force: true });
  }
}

/** The archive's entries one at a time, each a stream the caller consumes before asking for the next. */
async function* archiveEntries(file: string): AsyncGenerator<ReadEntry> {
  const queue: ReadEntry[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: Error | undefined;
  const parser = new Parser({ strict: true });
  const source = createReadStream(file);
  const stop = (err?: Error) => {
    if (err) failure ??= err;
    else ended = true;
    wake?.();
  };
  parser.on('entry', (entry: ReadEntry) => {
    queue.push(entry);
    wake?.();
  });
  parser.on('end', () => stop());
  parser.on('error', (err: Error) => stop(err));
  source.on('error', (err: Error) => stop(err));
  source.pipe(parser as unknown as NodeJS.WritableStream);
  try {
    for (;;) {
      if (failure) throw new BackupError(`${file} is not a readable backup archive: ${failure.message}`);
      const entry = queue.shift();
      if (entry) {
        yield entry;
        entry.resume();
        continue;
      }
      if (ended) return;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    source.destroy();
  }
}

async function drain(stream: Readable | ReadEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function checkManifest(value: unknown, file: string): BackupManifest {
  const m = value as Partial<BackupManifest> | null;
  const bad = (why: string) => new BackupError(`${file}: manifest.json ${why}`);
  if (!m || typeof m !== 'object') throw bad('is not an object');
  if (m.format !== BACKUP_FORMAT) throw bad(`has format ${String(m.format)}; this ctem reads format ${BACKUP_FORMAT}`);
  if (!m.migration || typeof m.migration.createdAt !== 'number' || typeof m.migration.hash !== 'string') throw bad('names no migration');
  if (!Array.isArray(m.tables) || !Array.isArray(m.sequences) || !Array.isArray(m.files)) throw bad('lacks tables, sequences or files');
  for (const t of m.tables) {
    if (typeof t.name !== 'string' || typeof t.file !== 'string' || !Array.isArray(t.columns) || typeof t.rows !== 'number' || typeof t.sha256 !== 'string') throw bad(`has a malformed table entry ${JSON.stringify(t).slice(0, 80)}`);
  }
  for (const f of m.files) {
    if (typeof f.path !== 'string' || f.path.split('/').some((p) => p === '..' || p === '') || f.path.startsWith('/')) throw bad(`names a data file outside the data directory: ${String(f.path)}`);
  }
  return m as BackupManifest;
}

/** Reads only the manifest (the archive's first entry). */
export async function readManifest(file: string): Promise<BackupManifest> {
  if (!existsSync(file)) throw new BackupError(`${file}: no such backup file`);
  for await (const entry of archiveEntries(file)) {
    if (entry.path !== 'manifest.json') throw new BackupError(`${file}: the first entry is ${entry.path}, not manifest.json: not a ctem backup`);
    const text = (await drain(entry)).toString('utf8');
    try {
      return checkManifest(JSON.parse(text), file);
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError(`${file}: manifest.json is not JSON: ${(err as Error).message}`);
    }
  }
  throw new BackupError(`${file}: the archive is empty`);
}

/**
 * Reads the whole archive once: every table file and data file must be there, once, with the size
 * and SHA-256 the manifest records, and nothing else. Data files are written under `staging` on the
 * way (put in place only after the database commits).
 */
async function verifyArchive(file: string, manifest: BackupManifest, staging: string): Promise<void> {
  const expected = new Map<string, { what: string; sha256: string; rows?: number; dataPath?: string }>();
  for (const t of manifest.tables) expected.set(t.file, { what: `table ${t.name}`, sha256: t.sha256, rows: t.rows });
  for (const f of manifest.files) expected.set(`data/${f.path}`, { what: `data file ${f.path}`, sha256: f.sha256, dataPath: f.path });
  const seen = new Set<string>();
  let first = true;
  for await (const entry of archiveEntries(file)) {
    if (first) {
      first = false;
      await drain(entry);
      continue;
    }
    if (entry.type === 'Directory') continue;
    const want = expected.get(entry.path);
    if (!want) throw new BackupError(`${file}: holds ${entry.path}, which its manifest does not list: refusing it`);
    if (seen.has(entry.path)) throw new BackupError(`${file}: holds ${entry.path} twice`);
    seen.add(entry.path);
    const tally = new Tally();
    if (want.dataPath) {
      const to = join(staging, ...want.dataPath.split('/'));
      await mkdir(dirname(to), { recursive: true });
      await pipeline(entry as unknown as Readable, tally, createWriteStream(to, { mode: 0o600 }));
    } else {
      await pipeline(entry as unknown as Readable, tally, async function* (source) {
        for await (const _ of source) void _;
      });
    }
    const sha256 = tally.hash.digest('hex');
    if (sha256 !== want.sha256) throw new BackupError(`${file}: ${want.what} is corrupt (SHA-256 ${sha256.slice(0, 12)}…, the manifest says ${want.sha256.slice(0, 12)}…)`);
    if (want.rows !== undefined && tally.rows !== want.rows) throw new BackupError(`${file}: ${want.what} has ${tally.rows} rows, the manifest says ${want.rows}`);
  }
  const missing = [...expected].filter(([path]) => !seen.has(path)).map(([, w]) => w.what);
  if (missing.length) throw new BackupError(`${file}: the archive lacks ${missing.join(', ')}: it is truncated or not the one the manifest describes`);
}

export interface RestoreResult {
  manifest: BackupManifest;
  tables: number;
  rows: number;
  files: number;
  /** The migration the database was brought to before loading (when it was older or empty). */
  migratedFrom: number | null;
}

/** Platform connections to the database other than ours: a running `ctem` must be stopped first. */
async function platformConnections(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and application_name = ${PLATFORM_APPLICATION_NAME} and pid <> pg_backend_pid()`;
  return row?.n ?? 0;
}

/**
 * Restores a backup into the database at `databaseUrl` and the files into `dataDir`.
 *
 * Refuses a backup of a migration this code does not know (a newer platform's), a database at a
 * newer migration than the backup, a database a running platform is connected to, and, unless
 * `force`, a database holding any data. The database is first brought up to the backup's migration;
 * the archive is checked in full (every SHA-256) before anything is written; then every table is
 * loaded by COPY in one transaction in foreign-key order, the sequences set, and the row counts
 * compared with the manifest before it commits. Any mismatch rolls everything back. No trigger is
 * disabled: loading only inserts, and `force` clears the append-only audit log the one way its guard
 * allows (the retention step's transaction-local setting).
 */
export async function restoreBackup({ file, databaseUrl, dataDir, force = false }: { file: string; databaseUrl: string; dataDir: string; force?: boolean }): Promise<RestoreResult> {
  file = resolve(file);
  const manifest = await readManifest(file);
  const known = codeMigrations();
  const newest = known[known.length - 1]!;
  const level = known.find((m) => m.createdAt === manifest.migration.createdAt);
  if (manifest.migration.createdAt > newest.createdAt) {
    throw new BackupError(`${file} was taken at migration ${manifest.migration.tag ?? manifest.migration.createdAt}, newer than this ctem's newest (${newest.tag}): restore it with the ctem version that wrote it (${manifest.ctemVersion}) or newer`);
  }
  if (!level || level.hash !== manifest.migration.hash) {
    throw new BackupError(`${file} was taken at migration ${manifest.migration.tag ?? manifest.migration.createdAt}, which this ctem does not know (or whose text differs): restore it with the ctem version that wrote it (${manifest.ctemVersion})`);
  }

  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connection: { application_name: 'ctem-restore' } });
  const staging = join(dataDir, `.restore-${process.pid}`);
  try {
    const running = await platformConnections(sql);
    if (running) throw new BackupError(`the platform is running against this database (${running} connection${running === 1 ? '' : 's'} named '${PLATFORM_APPLICATION_NAME}' in pg_stat_activity): stop every ctem start, api and worker process first`);
    const before = await appliedMigration(sql);
    if (before && before.createdAt > manifest.migration.createdAt) {
      const tag = known.find((m) => m.createdAt === before.createdAt)?.tag ?? String(before.createdAt);
      throw new BackupError(`the database is at migration ${tag}, newer than the backup's ${level.tag}: restore into an empty database (or one at the backup's migration or older)`);
    }
    if (!before || before.createdAt < manifest.migration.createdAt) await migrateDatabase(databaseUrl, { upTo: manifest.migration.createdAt });

    // The schema must be the backup's: same tables, same columns, same sequences.
    const tables = await catalogTables(sql);
    const inBackup = new Map(manifest.tables.map((t) => [t.name, t]));
    for (const t of tables) {
      const b = inBackup.get(t.name);
      if (!b) throw new BackupError(`table ${t.name} exists in the database but not in the backup: the schema differs from the backup's migration ${level.tag}`);
      if (b.columns.join(',') !== t.columns.join(',')) throw new BackupError(`table ${t.name}: the backup has columns (${b.columns.join(', ')}), the database (${t.columns.join(', ')})`);
    }
    const missingTables = manifest.tables.filter((b) => !tables.some((t) => t.name === b.name));
    if (missingTables.length) throw new BackupError(`table ${missingTables[0]!.name} is in the backup but not in the database`);
    const sequences = new Set(await catalogSequences(sql));
    const unknownSequence = manifest.sequences.find((s) => !sequences.has(s.name));
    if (unknownSequence) throw new BackupError(`sequence ${unknownSequence.name} is in the backup but not in the database`);

    const holding: string[] = [];
    for (const t of tables) {
      if (BOOKKEEPING_TABLES.has(t.name)) continue;
      const [row] = await sql.unsafe<{ any: boolean }[]>(`select exists (select from ${quote(t.name)}) as any`);
      if (row!.any) holding.push(t.name);
    }
    if (holding.length && !force) {
      throw new BackupError(`the database already holds data (${holding.slice(0, 5).join(', ')}${holding.length > 5 ? `, and ${holding.length - 5} more tables` : ''}): restore into an empty database, or pass --force to replace everything in it`);
    }

    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await verifyArchive(file, manifest, staging);

    let rows = 0;
    await sql.begin(async (tx) => {
      const names = tables.map((t) => quote(t.name));
      // Nothing else writes while the backup goes in (a platform started meanwhile waits).
      await tx.unsafe(`lock table ${names.join(', ')} in access exclusive mode`);
      // Bookkeeping rows the migration just wrote give way to the backup's (sql_functions: the
      // checksums of the functions as the backup's code applied them; a differing one is applied
      // again at the next start).
      const bookkeeping = tables.filter((t) => BOOKKEEPING_TABLES.has(t.name)).map((t) => quote(t.name));
      if (bookkeeping.length && !force) await tx.unsafe(`truncate ${bookkeeping.join(', ')}`);
      if (force) {
        const others = tables.filter((t) => t.name !== 'audit_log').map((t) => quote(t.name));
        if (others.length) await tx.unsafe(`truncate ${others.join(', ')}`);
        if (tables.some((t) => t.name === 'audit_log')) {
          // The append-only guard refuses TRUNCATE; it lets the retention step delete (audit_log_guard.sql).
          await tx`set local ctem.audit_prune = 'on'`;
          await tx`delete from audit_log`;
          await tx`set local ctem.audit_prune = 'off'`;
        }
      }
      const byFile = new Map(manifest.tables.map((t) => [t.file, t]));
      for await (const entry of archiveEntries(file)) {
        const table = byFile.get(entry.path);
        if (!table) continue;
        const tally = new Tally();
        try {
          const target = await tx.unsafe(`copy ${quote(table.name)} (${table.columns.map(quote).join(', ')}) from stdin`).writable();
          await pipeline(entry as unknown as Readable, tally, target);
        } catch (err) {
          throw new BackupError(`table ${table.name}: loading failed: ${(err as Error).message}`);
        }
        const sha256 = tally.hash.digest('hex');
        if (sha256 !== table.sha256) throw new BackupError(`table ${table.name}: its file changed while it was restored (SHA-256 ${sha256.slice(0, 12)}…, the manifest says ${table.sha256.slice(0, 12)}…)`);
        const [count] = await tx.unsafe<{ n: string }[]>(`select count(*)::text as n from ${quote(table.name)}`);
        if (Number(count!.n) !== table.rows) throw new BackupError(`table ${table.name}: ${count!.n} rows after loading, the manifest says ${table.rows}`);
        rows += table.rows;
        byFile.delete(entry.path);
      }
      if (byFile.size) throw new BackupError(`table ${[...byFile.values()][0]!.name}: its file is missing from the archive`);
      for (const s of manifest.sequences) {
        await tx`select setval(${`${quote(s.name)}`}::regclass, ${s.lastValue}::bigint, ${s.isCalled})`;
      }
    });

    // The database is committed: the files go in place (each replaces the file of the same name).
    for (const f of manifest.files) {
      const to = join(dataDir, ...f.path.split('/'));
      await mkdir(dirname(to), { recursive: true });
      await rename(join(staging, ...f.path.split('/')), to);
    }
    return { manifest, tables: manifest.tables.length, rows, files: manifest.files.length, migratedFrom: before ? before.createdAt : before };
  } finally {
    await sql.end({ timeout: 5 });
    await rm(staging, { recursive: true, force: true });
  }
}
