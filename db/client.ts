import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.js';

export type Db = PostgresJsDatabase<typeof schema>;
export type Sql = postgres.Sql;

/** Both ways into PostgreSQL: drizzle for ordinary queries, raw postgres.js for COPY and set-based SQL. */
export interface Database {
  db: Db;
  sql: Sql;
  close(): Promise<void>;
}

const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
const functionsFolder = join(dirname(fileURLToPath(import.meta.url)), 'functions');

export function connectDatabase(url: string, { max = 10 }: { max?: number } = {}): Database {
  const options = { max, onnotice: () => {}, connection: { application_name: 'ctem' } } as const;
  const sql = postgres(url, options);
  // drizzle alters the client it wraps, so it gets its own.
  const drizzleClient = postgres(url, options);
  const db = drizzle(drizzleClient, { schema });
  return {
    db,
    sql,
    async close() {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}

// Any id will do as long as every process uses the same one: it serialises concurrent starts.
const MIGRATION_LOCK_ID = 0x637465_6d;

interface JournalEntry {
  tag: string;
  when: number;
}

function journal(): JournalEntry[] {
  return (JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] }).entries;
}

/** This code's migrations in order, as drizzle records them once applied (`created_at`, `hash`). */
export function codeMigrations(): Array<{ tag: string; createdAt: number; hash: string }> {
  const entries = journal();
  return readMigrationFiles({ migrationsFolder }).map((m, i) => ({ tag: entries[i]!.tag, createdAt: m.folderMillis, hash: m.hash }));
}

/**
 * Applies the committed drizzle-kit migrations, then the SQL functions of db/functions/; safe when
 * several processes start at once. `upTo` (a migration's `when`) stops after that migration, as a
 * restore of an older backup needs.
 */
export async function migrateDatabase(url: string, { upTo }: { upTo?: number } = {}): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  let folder = migrationsFolder;
  if (upTo !== undefined) {
    const entries = journal().filter((e) => e.when <= upTo);
    folder = mkdtempSync(join(tmpdir(), 'ctem-migrations-'));
    mkdirSync(join(folder, 'meta'));
    const full = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify({ ...full, entries }));
    for (const e of entries) copyFileSync(join(migrationsFolder, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  }
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await migrate(drizzle(client), { migrationsFolder: folder });
    await applyFunctions(client);
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
  } finally {
    await client.end({ timeout: 5 });
    if (folder !== migrationsFolder) rmSync(folder, { recursive: true, force: true });
  }
}

export interface FunctionFile {
  name: string;
  text: string;
  checksum: string;
}

/** db/functions/<name>.sql, by name: each file is the source of truth of its function(s). */
export function functionFiles(folder = functionsFolder): FunctionFile[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(folder, f), 'utf8');
      return { name: f.slice(0, -'.sql'.length), text, checksum: createHash('sha256').update(text).digest('hex') };
    });
}

/**
 * Re-creates the SQL functions whose file changed since they were last applied (`create or replace`,
 * so a file applies again safely), after the migrations and in one transaction. Migrations are
 * history that has already run on deployments; a function's current text lives in its file, and
 * `sql_functions` records the checksum of what was applied. Returns the names it (re)created.
 */
export async function applyFunctions(client: Sql, files: FunctionFile[] = functionFiles()): Promise<string[]> {
  return client.begin(async (tx) => {
    await tx`create table if not exists sql_functions (name text primary key, checksum text not null, applied_at timestamptz not null default now())`;
    // As pg_dump restores: bodies are checked when called, so files apply in any order.
    await tx`set local check_function_bodies = off`;
    const applied = new Map((await tx<{ name: string; checksum: string }[]>`select name, checksum from sql_functions`).map((r) => [r.name, r.checksum]));
    const changed = files.filter((f) => applied.get(f.name) !== f.checksum);
    for (const file of changed) {
      await tx.unsafe(file.text);
      await tx`
        insert into sql_functions (name, checksum) values (${file.name}, ${file.checksum})
        on conflict (name) do update set checksum = excluded.checksum, applied_at = now()`;
    }
    return changed.map((f) => f.name);
  });
}

/** Text to find inside a LIKE pattern: its wildcards (`%`, `_`) and the escape character match themselves. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, '\\$&');
}
