import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
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

/** Applies the committed drizzle-kit migrations; safe when several processes start at once. */
export async function migrateDatabase(url: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await migrate(drizzle(client), { migrationsFolder });
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
  } finally {
    await client.end({ timeout: 5 });
  }
}
