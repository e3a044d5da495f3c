import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parseDuration } from '../../config/duration.js';
import { fileHead, sniffContainer } from './archive.js';

// Parsers for the threat-intel feeds the policy reads: FIRST EPSS and CISA KEV (CVE records, the
// third kind, are read by cve-json5.ts).
// They validate the file's own shape as they go: a feed that is malformed never reaches the
// database. Checks against other versions (row counts, freshness, KEV x EPSS) are in
// prioritization/feeds/store.ts, because they need what is already stored.

export type FeedKind = 'epss' | 'kev' | 'cve';

/** Default maximum age of a feed's own date when it is imported (CTEM_FEED_MAX_AGE_EPSS / _KEV / _CVE). */
export const FEED_MAX_AGE_DEFAULTS: Record<FeedKind, string> = { epss: '3d', kev: '14d', cve: '14d' };

/** Each feed's maximum age in ms; CVE records fall back to their default (14d) when a caller predates them. */
export type FeedMaxAge = Record<'epss' | 'kev', number> & { cve?: number };

export const feedMaxAge = (kind: FeedKind, maxAge: FeedMaxAge): number => maxAge[kind] ?? parseDuration(FEED_MAX_AGE_DEFAULTS[kind]);

/** Fewer CVE records than this is not a list (CTEM_CVE_MIN_RECORDS; the CVE Program's has ~300,000). */
export const CVE_MIN_RECORDS_DEFAULT = 1000;

/** Where the platform fetches the feeds by default (CTEM_EPSS_URL / CTEM_KEV_URL). */
export const FEED_URL_DEFAULTS: Record<'epss' | 'kev', string> = {
  epss: 'https://epss.empiricalsecurity.com/epss_scores-current.csv.gz',
  kev: 'https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json',
};

export const FEED_LABEL: Record<FeedKind, string> = { epss: 'FIRST EPSS', kev: 'CISA KEV', cve: 'CVE records' };

export class FeedError extends Error {
  constructor(file: string, feed: string, where: string, reason: string) {
    super(`${file}: ${feed}${where ? `: ${where}` : ''}: ${reason}`);
    this.name = 'FeedError';
  }
}

const CVE = /^CVE-\d{4}-\d{4,}$/;

export interface FeedFileOptions {
  /** Name used in error messages (an upload's original file name); defaults to the file's. */
  name?: string;
}

const isGzip = (bytes: Buffer) => bytes[0] === 0x1f && bytes[1] === 0x8b;

/**
 * Which feed a path is, from its first bytes: a directory or an archive (.zip, .tar.gz) of CVE
 * records, EPSS CSV (gzipped or not), or the KEV JSON catalog.
 */
export async function detectFeedKind(file: string): Promise<FeedKind | undefined> {
  if ((await sniffContainer(file)) !== undefined) return 'cve';
  const bytes = await fileHead(file, 64);
  if (isGzip(bytes)) return 'epss';
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('#model_version') || text.startsWith('cve,epss')) return 'epss';
  if (text.startsWith('{')) return 'kev';
  return undefined;
}

export interface EpssRow {
  cve: string;
  epss: number;
  percentile: number;
}

export interface EpssFeed {
  /** The model's score date, e.g. 2026-01-30; a feed version. */
  version: string;
  modelVersion: string;
  /** The score_date as an instant (the header carries a time since EPSS v4). */
  publishedAt: Date;
  rows: AsyncIterable<EpssRow>;
  /** Releases the file when the rows will not be read (the version is already known). */
  close(): void;
}

/** An EPSS line is about 40 bytes; a longer one is not EPSS (a gzip bomb inflates to one endless line). */
const MAX_EPSS_LINE_BYTES = 64 * 1024;
/** FIRST's daily file is about 12 MB uncompressed; four times the size of today's catalog is not a daily file. */
const MAX_EPSS_BYTES = 512 * 1024 * 1024;

/** Passes the text through, failing once a line or the whole exceeds its bound, before readline holds it. */
function boundedText(): Transform {
  let line = 0;
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      if (total > MAX_EPSS_BYTES) return done(new Error(`more than ${MAX_EPSS_BYTES} bytes uncompressed`));
      // The line carried over from earlier chunks, then each line this chunk ends, then its tail.
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        if (line + nl - start > MAX_EPSS_LINE_BYTES) break;
        line = 0;
        start = nl + 1;
      }
      line += chunk.length - start;
      if (line > MAX_EPSS_LINE_BYTES) return done(new Error(`a line longer than ${MAX_EPSS_LINE_BYTES} bytes`));
      done(null, chunk);
    },
  });
}

/** FIRST EPSS daily CSV (gzipped or not): `#model_version:...,score_date:...`, then `cve,epss,percentile`. */
export async function openEpssFeed(file: string, options: FeedFileOptions = {}): Promise<EpssFeed> {
  const name = options.name ?? basename(file);
  // By content, not by name: downloads and uploads are stored under names of their own.
  const gz = isGzip(await fileHead(file, 2));
  const input = createReadStream(file);
  const decoded = gz ? input.pipe(createGunzip()) : input;
  const text = decoded.pipe(boundedText());
  // pipe() does not pass errors on: a truncated gzip must still fail the reader, through readline's input.
  decoded.on('error', (err: Error) => text.destroy(err));
  const lines = createInterface({ input: text, crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  const close = () => {
    lines.close();
    input.destroy();
    text.destroy();
  };
  const fail = (where: string, reason: string) => {
    close();
    return new FeedError(name, 'EPSS', where, reason);
  };
  let first: string | undefined;
  try {
    first = (await iterator.next()).value as string | undefined;
  } catch (err) {
    throw fail('', `unreadable (${(err as Error).message})`);
  }
  const meta = /^#model_version:([^,]+),score_date:(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?/.exec(first ?? '');
  if (!meta) throw fail('line 1', 'expected "#model_version:...,score_date:..."');
  const publishedAt = new Date(`${meta[2]}${meta[3] ? (meta[3].endsWith('Z') ? meta[3] : `${meta[3]}Z`) : 'T00:00:00Z'}`);
  if (Number.isNaN(publishedAt.getTime())) throw fail('line 1', `invalid score_date ${JSON.stringify(meta[2])}`);
  const header = (await iterator.next()).value as string | undefined;
  if (header?.trim() !== 'cve,epss,percentile') throw fail('line 2', 'expected header "cve,epss,percentile"');
  async function* rows(): AsyncGenerator<EpssRow> {
    let lineNo = 2;
    try {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        lineNo++;
        const line = next.value.trim();
        if (!line) continue;
        const [cve, epssText, percentileText] = line.split(',');
        const epss = Number(epssText);
        const percentile = Number(percentileText);
        if (!cve || !CVE.test(cve)) throw new FeedError(name, 'EPSS', `line ${lineNo}`, `invalid CVE id ${JSON.stringify(cve)}`);
        if (!(epss >= 0 && epss <= 1) || !(percentile >= 0 && percentile <= 1) || epssText === '' || percentileText === '') {
          throw new FeedError(name, 'EPSS', `line ${lineNo}`, 'epss and percentile must be numbers between 0 and 1');
        }
        yield { cve, epss, percentile };
      }
    } catch (err) {
      if (err instanceof FeedError) throw err;
      // A truncated gzip stream surfaces here.
      throw new FeedError(name, 'EPSS', `line ${lineNo + 1}`, `unreadable (${(err as Error).message})`);
    } finally {
      close();
    }
  }
  return { version: meta[2]!, modelVersion: meta[1]!, publishedAt, rows: rows(), close };
}

export interface KevEntry {
  cve: string;
  vendor: string | null;
  product: string | null;
  dateAdded: string | null;
  dueDate: string | null;
  knownRansomware: boolean;
}

export interface KevFeed {
  version: string;
  entries: KevEntry[];
  sha256: string;
  /** `dateReleased`; undefined when the catalog does not say (the freshness check then fails). */
  publishedAt?: Date;
  /** The catalog's own `count`; compared with the entries by the `count` check. */
  declaredCount?: number;
}

/** CISA KEV catalog JSON (catalogVersion, dateReleased, count, vulnerabilities[]); ~1.5k entries, read whole. */
export async function readKevFeed(file: string, options: FeedFileOptions = {}): Promise<KevFeed> {
  const name = options.name ?? basename(file);
  const text = await readFile(file);
  let doc: unknown;
  try {
    doc = JSON.parse(text.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new FeedError(name, 'KEV', '', `not valid JSON (${(err as Error).message})`);
  }
  const catalog = doc as { catalogVersion?: unknown; dateReleased?: unknown; count?: unknown; vulnerabilities?: unknown };
  if (typeof catalog?.catalogVersion !== 'string' || !/^[\w.-]{1,64}$/.test(catalog.catalogVersion)) {
    throw new FeedError(name, 'KEV', 'catalogVersion', 'missing or not a version');
  }
  if (!Array.isArray(catalog.vulnerabilities)) throw new FeedError(name, 'KEV', 'vulnerabilities', 'expected an array');
  if (catalog.count !== undefined && !(Number.isInteger(catalog.count) && (catalog.count as number) >= 0)) {
    throw new FeedError(name, 'KEV', 'count', 'expected a non-negative integer');
  }
  let publishedAt: Date | undefined;
  if (catalog.dateReleased !== undefined) {
    publishedAt = new Date(String(catalog.dateReleased));
    if (typeof catalog.dateReleased !== 'string' || Number.isNaN(publishedAt.getTime())) {
      throw new FeedError(name, 'KEV', 'dateReleased', `not a date-time: ${JSON.stringify(catalog.dateReleased)}`);
    }
  }
  const entries = catalog.vulnerabilities.map((v: Record<string, unknown>, i): KevEntry => {
    if (typeof v?.cveID !== 'string' || !CVE.test(v.cveID)) throw new FeedError(name, 'KEV', `vulnerabilities[${i}].cveID`, 'invalid CVE id');
    const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : null);
    return {
      cve: v.cveID,
      vendor: str('vendorProject'),
      product: str('product'),
      dateAdded: str('dateAdded'),
      dueDate: str('dueDate'),
      knownRansomware: v.knownRansomwareCampaignUse === 'Known',
    };
  });
  return {
    version: catalog.catalogVersion,
    entries,
    sha256: createHash('sha256').update(text).digest('hex'),
    ...(publishedAt ? { publishedAt } : {}),
    ...(typeof catalog.count === 'number' ? { declaredCount: catalog.count } : {}),
  };
}

/** SHA-256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
