import type postgres from 'postgres';
import type { Sql } from '../client.js';
import type { EpssFeed, KevFeed } from '../../prioritization/intel-feeds.js';
import { copyRows } from './copy.js';

export interface FeedImport {
  kind: 'epss' | 'kev';
  version: string;
  rows: number;
  /** False when this exact version was already active: importing twice changes nothing. */
  imported: boolean;
}

async function alreadyActive(sql: Sql, kind: 'epss' | 'kev', version: string): Promise<number | undefined> {
  const [row] = await sql`select rows from intel_feeds where kind = ${kind} and version = ${version}`;
  return row?.rows as number | undefined;
}

/** Makes a stored version the active one; the previous active version is retired (kept for history). */
async function activate(tx: postgres.TransactionSql, kind: 'epss' | 'kev', version: string, rows: number, sha256: string) {
  await tx`update intel_feeds set status = 'retired' where kind = ${kind} and status = 'active'`;
  await tx`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values (${kind}, ${version}, ${rows}, ${sha256}, 'active', now())`;
}

/** Replaces the active EPSS scores with a new feed version, atomically (readers never see half a feed). */
export async function importEpssFeed(sql: Sql, feed: EpssFeed, sha256: string): Promise<FeedImport> {
  const existing = await alreadyActive(sql, 'epss', feed.version);
  if (existing !== undefined) return { kind: 'epss', version: feed.version, rows: existing, imported: false };
  const rows = await sql.begin(async (tx) => {
    const count = await copyRows(tx, 'epss_scores', ['cve', 'epss', 'percentile', 'feed_version'], feed.rows, (r) => [
      r.cve, r.epss, r.percentile, feed.version,
    ]);
    await activate(tx, 'epss', feed.version, count, sha256);
    return count;
  });
  return { kind: 'epss', version: feed.version, rows, imported: true };
}

export async function importKevFeed(sql: Sql, feed: KevFeed): Promise<FeedImport> {
  const existing = await alreadyActive(sql, 'kev', feed.version);
  if (existing !== undefined) return { kind: 'kev', version: feed.version, rows: existing, imported: false };
  await sql.begin(async (tx) => {
    await copyRows(tx, 'kev_entries', ['cve', 'vendor', 'product', 'date_added', 'due_date', 'known_ransomware', 'feed_version'], feed.entries, (e) => [
      e.cve, e.vendor, e.product, e.dateAdded, e.dueDate, e.knownRansomware, feed.version,
    ]);
    await activate(tx, 'kev', feed.version, feed.entries.length, feed.sha256);
  });
  return { kind: 'kev', version: feed.version, rows: feed.entries.length, imported: true };
}
