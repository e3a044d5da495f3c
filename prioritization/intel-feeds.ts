import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

// Parsers for the threat-intel feeds the policy reads: FIRST EPSS and CISA KEV.
// They validate as they go: a feed that is malformed never reaches the database.

export class FeedError extends Error {
  constructor(file: string, feed: string, where: string, reason: string) {
    super(`${file}: ${feed}${where ? `: ${where}` : ''}: ${reason}`);
    this.name = 'FeedError';
  }
}

const CVE = /^CVE-\d{4}-\d{4,}$/;

export interface EpssRow {
  cve: string;
  epss: number;
  percentile: number;
}

export interface EpssFeed {
  /** The model's score date, e.g. 2026-01-30; a feed version. */
  version: string;
  modelVersion: string;
  rows: AsyncIterable<EpssRow>;
}

/** FIRST EPSS daily CSV (optionally gzipped): `#model_version:...,score_date:...`, then `cve,epss,percentile`. */
export async function openEpssFeed(file: string): Promise<EpssFeed> {
  const name = basename(file);
  const input = createReadStream(file);
  const lines = createInterface({ input: file.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  const first = (await iterator.next()).value as string | undefined;
  const meta = /^#model_version:([^,]+),score_date:(\d{4}-\d{2}-\d{2})/.exec(first ?? '');
  if (!meta) throw new FeedError(name, 'EPSS', 'line 1', 'expected "#model_version:...,score_date:..."');
  const header = (await iterator.next()).value as string | undefined;
  if (header?.trim() !== 'cve,epss,percentile') throw new FeedError(name, 'EPSS', 'line 2', 'expected header "cve,epss,percentile"');
  async function* rows(): AsyncGenerator<EpssRow> {
    let lineNo = 2;
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
  }
  return { version: meta[2]!, modelVersion: meta[1]!, rows: rows() };
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
}

/** CISA KEV catalog JSON (catalogVersion, count, vulnerabilities[]); ~1.5k entries, read whole. */
export async function readKevFeed(file: string): Promise<KevFeed> {
  const name = basename(file);
  const text = await readFile(file);
  let doc: unknown;
  try {
    doc = JSON.parse(text.toString('utf8'));
  } catch (err) {
    throw new FeedError(name, 'KEV', '', `not valid JSON (${(err as Error).message})`);
  }
  const catalog = doc as { catalogVersion?: unknown; count?: unknown; vulnerabilities?: unknown };
  if (typeof catalog?.catalogVersion !== 'string') throw new FeedError(name, 'KEV', 'catalogVersion', 'missing');
  if (!Array.isArray(catalog.vulnerabilities)) throw new FeedError(name, 'KEV', 'vulnerabilities', 'expected an array');
  if (typeof catalog.count === 'number' && catalog.count !== catalog.vulnerabilities.length) {
    throw new FeedError(name, 'KEV', 'count', `says ${catalog.count} but the catalog lists ${catalog.vulnerabilities.length} (truncated?)`);
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
  return { version: catalog.catalogVersion, entries, sha256: createHash('sha256').update(text).digest('hex') };
}
