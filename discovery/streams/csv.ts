import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { parse, type Info } from 'csv-parse';
import { ReportError } from '../model.js';

// Streaming CSV for report connectors: records are read one at a time (quoted multi-line fields
// included), columns are found by name so exports with extra, missing optional or reordered
// columns all work, and preamble lines before the header row are skipped.

export interface CsvColumn {
  /** Header names that mean this column, compared case-insensitively. The first present wins. */
  names: readonly string[];
  required?: boolean;
}

export type CsvColumns<K extends string> = Record<K, CsvColumn>;

export interface CsvRow<K extends string> {
  /** 1-based line of the file where the record ends, for error messages. */
  line: number;
  /** Each column's trimmed value; '' when the column is absent or the cell empty. */
  values: Record<K, string>;
}

export interface CsvStreamOptions<K extends string> {
  format: string;
  columns: CsvColumns<K>;
  /** How many records before the header row are tolerated as a preamble (default 200). */
  maxPreamble?: number;
  /** The field separator (default `,`); some exports use `;`. */
  delimiter?: string;
}

const DEFAULT_MAX_PREAMBLE = 200;
// Plugin output cells can be large; the cap keeps a missing closing quote from buffering a whole file.
const MAX_RECORD_CHARS = 16 * 1024 * 1024;

// Where the line ending is looked for. csv-parse can discover it itself, but until it has, it
// allocates three Buffers per byte: a first line of 20 MB without a newline took 27 s to refuse.
const LINE_ENDING_SNIFF_BYTES = 64 * 1024;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;

/**
 * The record delimiter csv-parse would discover (the first CRLF, LF or CR outside quotes), read
 * from the start of the file. With none there, every one of them ends a record.
 */
async function lineEndingOf(file: string): Promise<string | string[]> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(LINE_ENDING_SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    let quoted = false;
    for (let i = 0; i < bytesRead; i++) {
      const c = head[i];
      if (c === QUOTE) quoted = !quoted;
      else if (!quoted && c === LF) return '\n';
      else if (!quoted && c === CR) {
        if (i + 1 === bytesRead && bytesRead === head.length) break;
        return head[i + 1] === LF ? '\r\n' : '\r';
      }
    }
    return ['\r\n', '\n', '\r'];
  } finally {
    await handle.close();
  }
}

const normalizeHeader = (cell: string) => cell.replace(/^\uFEFF/, '').trim().replace(/\s+/g, ' ').toLowerCase();

/** Maps each column key to its index in a header record; -1 when the export lacks it. */
function mapHeader<K extends string>(header: readonly string[], columns: CsvColumns<K>): Record<K, number> {
  const index = new Map<string, number>();
  header.forEach((cell, i) => {
    const name = normalizeHeader(cell);
    if (name !== '' && !index.has(name)) index.set(name, i);
  });
  const mapped = {} as Record<K, number>;
  for (const key of Object.keys(columns) as K[]) {
    const found = columns[key].names.map((n) => index.get(n.toLowerCase())).find((i) => i !== undefined);
    mapped[key] = found ?? -1;
  }
  return mapped;
}

const missingRequired = <K extends string>(mapped: Record<K, number>, columns: CsvColumns<K>): K[] =>
  (Object.keys(columns) as K[]).filter((k) => columns[k].required && mapped[k] === -1);

/** A failure while reading as the ReportError that names it. */
function readError(err: unknown, fail: (reason: string) => ReportError): ReportError {
  if (err instanceof ReportError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return fail('is a directory');
  if (code === 'ENOENT' || code === 'EACCES') return fail(`cannot read the file (${code})`);
  return fail(`not valid CSV (${(err as Error).message})`);
}

/**
 * Streams the data rows of `file`. The header is the first record holding every required column;
 * blank rows are skipped; a header-only file yields nothing. Failures are ReportErrors naming the file.
 */
export async function* csvRows<K extends string>(file: string, options: CsvStreamOptions<K>): AsyncGenerator<CsvRow<K>> {
  const display = basename(file);
  const { columns, format } = options;
  const maxPreamble = options.maxPreamble ?? DEFAULT_MAX_PREAMBLE;
  const fail = (reason: string, field?: string) => new ReportError(display, format, field, reason);

  let recordDelimiter: string | string[];
  try {
    recordDelimiter = await lineEndingOf(file);
  } catch (err) {
    throw readError(err, fail);
  }
  const parser = parse({
    bom: true, delimiter: options.delimiter ?? ',', record_delimiter: recordDelimiter,
    relax_column_count: true, relax_quotes: true, info: true, max_record_size: MAX_RECORD_CHARS,
  });
  const input = createReadStream(file);
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);

  let mapped: Record<K, number> | undefined;
  // The header row's width and line: every data row must have as many cells (a missing or extra
  // comma would otherwise shift every later cell into the wrong column).
  let width = 0;
  let headerLine = 0;
  // Without a header, the record that came closest names what is missing.
  let best: { missing: K[] } | undefined;
  let seen = 0;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      const { record, info } = item;
      if (record.every((cell) => cell.trim() === '')) continue;
      if (!mapped) {
        const candidate = mapHeader(record, columns);
        const missing = missingRequired(candidate, columns);
        if (missing.length === 0) {
          mapped = candidate;
          width = record.length;
          headerLine = info.lines;
          continue;
        }
        if (!best || missing.length < best.missing.length) best = { missing };
        if (++seen >= maxPreamble) break;
        continue;
      }
      // A single cell is a note line (Qualys writes footer notes so), never a shifted row.
      if (record.length !== width && record.length !== 1) {
        throw fail(`line ${info.lines} has ${record.length} columns, the header row (line ${headerLine}) has ${width}`);
      }
      const header = mapped;
      const values = {} as Record<K, string>;
      for (const key of Object.keys(header) as K[]) {
        const i = header[key];
        values[key] = i >= 0 ? (record[i] ?? '').trim() : '';
      }
      yield { line: info.lines, values };
    }
  } catch (err) {
    throw readError(err, fail);
  } finally {
    input.destroy();
    parser.destroy();
  }
  if (!mapped) {
    if (!best) throw fail('no header row: the file has no records');
    const [first] = best.missing;
    const names = (k: K) => columns[k].names.map((n) => `"${n}"`).join(' or ');
    throw fail(
      `required column ${names(first!)} is missing from the header row` +
        (best.missing.length > 1 ? ` (also missing: ${best.missing.slice(1).map(names).join(', ')})` : ''),
      columns[first!].names[0],
    );
  }
}

/** Splits one CSV line naively (quotes honoured, no multi-line cells): enough to sniff a header. */
function sniffCells(line: string, delimiter = ','): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  cells.push(cell);
  return cells;
}

/** Whether one of the first lines of `head` is a header row holding every required column. */
export function sniffCsvHeader<K extends string>(head: string, columns: CsvColumns<K>, maxLines = 20, delimiter = ','): boolean {
  const lines = head.replace(/^\uFEFF/, '').split(/\r?\n/, maxLines);
  return lines.some(
    (line) => line.includes(delimiter) && missingRequired(mapHeader(sniffCells(line, delimiter), columns), columns).length === 0,
  );
}
