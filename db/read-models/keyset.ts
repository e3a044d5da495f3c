import type postgres from 'postgres';
import type { Sql } from '../client.js';

// Keyset pagination for list views: a page ends with the sort key of its last row, and the next
// page starts strictly after it (a row comparison an index serves), so page 500 costs what page 1
// costs and rows with equal scores are neither skipped nor repeated (the key ends with a unique id).
// The cursor is opaque to clients: base64url of the key's values as PostgreSQL printed them, so
// nothing is lost to JavaScript's number or date precision on the way back. Queries bind them as
// text and cast in SQL (`$1::text::timestamptz`): a parameter typed timestamptz would go through
// postgres.js's Date serializer and lose the microseconds, and the page would repeat itself.

/** A cursor that cannot be read; the fronts answer 400 naming the `after` parameter. */
export class CursorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CursorError';
  }
}

/** What each position of a cursor must look like; checked before a value reaches SQL. */
export const KEY_PART = {
  /** A float8 as PostgreSQL prints it (shortest exact form), or ±Infinity. */
  float: /^(-?Infinity|-?\d+(\.\d+)?(e[+-]?\d+)?)$/,
  /** A timestamptz as PostgreSQL prints it (ISO DateStyle), or infinity. */
  timestamp: /^(-?infinity|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:\d{2}(:\d{2})?)?|Z))$/,
  /** A bigint id. */
  id: /^\d{1,19}$/,
  /** Any text (a ticket key). */
  text: /^[\s\S]{1,1000}$/,
} as const;

export type KeyPart = keyof typeof KEY_PART;

export function encodeCursor(values: string[]): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

/** The key values of a cursor, each checked against its part; throws CursorError saying what is wrong. */
export function decodeCursor(cursor: string, parts: readonly KeyPart[]): string[] {
  if (!/^[A-Za-z0-9_-]{1,4000}$/.test(cursor)) throw new CursorError('not a cursor from this list (expected base64url)');
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new CursorError('not a cursor from this list (unreadable)');
  }
  if (!Array.isArray(values) || values.length !== parts.length || !values.every((v) => typeof v === 'string')) {
    throw new CursorError(`not a cursor from this list (expected ${parts.length} key values)`);
  }
  parts.forEach((p, i) => {
    if (!KEY_PART[p].test(values[i] as string)) throw new CursorError(`not a cursor from this list (key value ${i + 1} is not a ${p})`);
  });
  return values as string[];
}

/** Rows counted at most; past this a list gives PostgreSQL's own estimate instead of counting on. */
export const COUNT_CAP = 1_000;

/**
 * How many rows match: counted exactly up to COUNT_CAP, beyond it the query planner's estimate
 * for the same filters (from the table statistics, no rows read). Never a whole-table count.
 */
export interface CountEstimate {
  count: number;
  /** true: counted; false: more than COUNT_CAP rows, and `count` is the planner's estimate. */
  exact: boolean;
}

/** Counts the rows of `from` (a SQL fragment `from ... where ...`, built twice by `from()`) up to the cap, else estimates them. */
export async function countRows(sql: Sql, from: () => postgres.PendingQuery<postgres.Row[]>): Promise<CountEstimate> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from (select 1 ${from()} limit ${COUNT_CAP + 1}) x`;
  const n = row?.n ?? 0;
  if (n <= COUNT_CAP) return { count: n, exact: true };
  const [plan] = await sql<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }[]>`explain (format json) select 1 ${from()}`;
  const estimated = Math.round(plan?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0);
  return { count: Math.max(estimated, COUNT_CAP + 1), exact: false };
}

/** One page of a keyset list, as the API answers it. */
export interface KeysetPage<T> {
  items: T[];
  /** The cursor of the next page (`after=`), null on the last page. */
  next: string | null;
  estimate: CountEstimate;
}

/** A count for people: `about 12,000` when it is the planner's estimate. */
export const countLabel = (e: CountEstimate): string => (e.exact ? e.count.toLocaleString('en') : `about ${e.count.toLocaleString('en')}`);
