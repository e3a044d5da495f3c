import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/ports.js';

// A fresh database for one benchmark run: a new database on DATABASE_URL's server when it is set
// (dropped afterwards unless kept), or an embedded PostgreSQL of its own under `dir`.

export interface BenchDatabase {
  url: string;
  /** Where the run measured, for the report. */
  where: string;
  stop(): Promise<void>;
}

export async function openBenchDatabase(dir: string, { prefix, keep }: { prefix: string; keep: boolean }): Promise<BenchDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const embedded = await startEmbeddedPostgres(join(dir, 'postgres'), await freePort());
    return { url: embedded.url, where: 'embedded PostgreSQL (default settings)', stop: () => embedded.stop() };
  }
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    where: `database ${name} on the DATABASE_URL server`,
    async stop() {
      if (keep) return;
      const drop = postgres(base, { max: 1, onnotice: () => {} });
      await drop.unsafe(`drop database if exists ${name} with (force)`);
      await drop.end();
    },
  };
}
