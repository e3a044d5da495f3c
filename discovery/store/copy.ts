import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';

type Sql = postgres.Sql | postgres.TransactionSql;

// COPY's text format: tab-separated, \N for null, backslash escapes for the few special bytes.
// Almost no field needs escaping, so one test comes first and the replacement only when it hits.
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = typeof value === 'string' ? value : String(value);
  return COPY_SPECIAL.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : text;
}

/** Rows are sent in batches of about this many characters. */
const BATCH = 256 * 1024;

/**
 * Streams rows into `table` with COPY FROM STDIN, the fastest way into PostgreSQL (several times
 * the throughput of multi-row INSERTs). Returns the number of rows sent.
 */
export async function copyRows<T>(
  sql: Sql,
  table: string,
  columns: readonly string[],
  rows: AsyncIterable<T> | Iterable<T>,
  toRow: (row: T) => readonly unknown[],
): Promise<number> {
  let count = 0;
  async function* lines() {
    let batch = '';
    for await (const row of rows) {
      const values = toRow(row);
      let line = copyField(values[0]);
      for (let i = 1; i < values.length; i++) line += '\t' + copyField(values[i]);
      batch += line + '\n';
      count++;
      if (batch.length > BATCH) {
        yield batch;
        batch = '';
      }
    }
    if (batch) yield batch;
  }
  const target = await sql.unsafe(`copy ${table} (${columns.join(', ')}) from stdin`).writable();
  await pipeline(Readable.from(lines()), target);
  return count;
}

// An array literal ('{"a","b",NULL}') for one column: sent as one text parameter, cast server-side.
const ARRAY_SPECIAL = /["\\]/;

function arrayLiteral(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) out += ',';
    if (value === null || value === undefined) {
      out += 'NULL';
      continue;
    }
    const text = typeof value === 'string' ? value : String(value);
    out += `"${ARRAY_SPECIAL.test(text) ? text.replace(/["\\]/g, '\\$&') : text}"`;
  }
  return `${out}}`;
}

/** A staged column: its name and its PostgreSQL type. */
export type StageColumn = readonly [name: string, type: string];

/**
 * Loads rows into a staging table: up to `inline` rows as one INSERT from unnest() arrays, more
 * by COPY (the first rows included). postgres.js leaves Nagle's algorithm on, so the statement
 * after a COPY waits ~40 ms for a delayed ACK: nothing next to a million rows, but most of the
 * time of a report of a few hundred. Memory stays bounded by `inline` rows either way.
 */
export async function stageRows<T>(
  sql: Sql,
  table: string,
  columns: readonly StageColumn[],
  rows: AsyncIterable<T> | Iterable<T>,
  toRow: (row: T) => readonly unknown[],
  { inline = 5000 }: { inline?: number } = {},
): Promise<number> {
  const iterator: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in rows ? (rows as AsyncIterable<T>)[Symbol.asyncIterator]() : (rows as Iterable<T>)[Symbol.iterator]();
  const head: (readonly unknown[])[] = [];
  let done = false;
  try {
    let next = await iterator.next();
    while (!next.done && head.length < inline) {
      head.push(toRow(next.value));
      next = await iterator.next();
    }
    if (next.done) {
      done = true;
      if (head.length === 0) return 0;
      const names = columns.map(([name]) => name).join(', ');
      const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
      await sql.unsafe(
        `insert into ${table} (${names}) select * from unnest(${arrays})`,
        columns.map((_, c) => arrayLiteral(head.map((row) => row[c]))),
      );
      return head.length;
    }
    const pending = next.value;
    async function* all(): AsyncGenerator<readonly unknown[]> {
      yield* head.splice(0);
      yield toRow(pending);
      for (;;) {
        const item = await iterator.next();
        if (item.done) {
          done = true;
          return;
        }
        yield toRow(item.value);
      }
    }
    return await copyRows(sql, table, columns.map(([name]) => name), all(), (row) => row);
  } finally {
    // A failure half-way must not leave the source (a file being parsed) open.
    if (!done) {
      try {
        await iterator.return?.();
      } catch {
        // The failure that got here is the one to report.
      }
    }
  }
}
