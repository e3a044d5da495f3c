import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { BackupError, createBackup, defaultBackupPath, restoreBackup } from '../../platform/backup.js';
import { freePort } from '../../platform/ports.js';
import { embeddedPostgresFor } from '../../platform/postgres.js';

// `ctem backup` / `ctem restore`: the database of DATABASE_URL (else the data directory's embedded
// PostgreSQL, the running one or one started for the command) and the data directory's files.
// The work is platform/backup.ts's.

const BACKUP_USAGE = 'usage: ctem backup [--out FILE]   (default: CTEM_DATA_DIR/backups/ctem-<time>.tar.gz)';
const RESTORE_USAGE = 'usage: ctem restore FILE [--force: replace the data the database holds]';

async function withDatabase<T>(config: Config, create: boolean, use: (url: string) => Promise<T>): Promise<T> {
  if (config.databaseUrl) return use(config.databaseUrl);
  const pg = await embeddedPostgresFor(join(config.dataDir, 'postgres'), { port: freePort, create });
  try {
    return await use(pg.url);
  } finally {
    await pg.stop();
  }
}

function failed(command: string, err: unknown): number {
  if (!(err instanceof BackupError)) throw err;
  console.error(`${command}: ${err.message}`);
  return 1;
}

export async function backupCommand(config: Config, argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: 'string' } } }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${BACKUP_USAGE}`);
    return 2;
  }
  const out = values.out ?? defaultBackupPath(config.dataDir);
  try {
    const { file, manifest } = await withDatabase(config, false, (databaseUrl) => createBackup({ databaseUrl, dataDir: config.dataDir, out }));
    const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
    console.log(`backup written: ${file}`);
    console.log(`  migration ${manifest.migration.tag ?? manifest.migration.createdAt}, ${manifest.tables.length} tables, ${rows} rows, ${manifest.sequences.length} sequences, ${manifest.files.length} data files`);
    console.log('  Temporal\'s workflow state is not in it (see docs/operations.md, "Backups")');
    return 0;
  } catch (err) {
    return failed('backup', err);
  }
}

export async function restoreCommand(config: Config, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: 'boolean', default: false } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${RESTORE_USAGE}`);
    return 2;
  }
  const [file, ...extra] = parsed.positionals;
  if (!file || extra.length) {
    console.error(RESTORE_USAGE);
    return 2;
  }
  try {
    const r = await withDatabase(config, true, (databaseUrl) => restoreBackup({ file, databaseUrl, dataDir: config.dataDir, force: parsed.values.force }));
    console.log(`restored ${file}`);
    console.log(`  taken ${r.manifest.createdAt} at migration ${r.manifest.migration.tag ?? r.manifest.migration.createdAt}: ${r.tables} tables, ${r.rows} rows (counts and SHA-256 checked), ${r.files} data files`);
    console.log('  open tickets\' remediation workflows live in Temporal, not in the backup (see docs/operations.md, "Backups")');
    return 0;
  } catch (err) {
    return failed('restore', err);
  }
}
