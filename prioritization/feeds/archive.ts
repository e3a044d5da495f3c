import { createReadStream, readFileSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, constants as zlib } from 'node:zlib';
import * as tar from 'tar';
import yauzl from 'yauzl';

// Many small files in one of three containers: a checkout directory, a .zip, or a .tar(.gz) of one
// (GitHub's archive downloads of cvelistV5 and vulnrichment). Tar is read and written with
// node-tar, zip read with yauzl (zip64 included); this module only sniffs which one a path is and
// reads checkouts.

export interface ArchiveEntry {
  /** The entry's path inside the source, `/`-separated. */
  name: string;
  data: Buffer;
}

export interface EntrySource {
  kind: 'directory' | 'zip' | 'tar' | 'tar.gz';
  /** The entries `want` accepts (by path), one at a time, in the source's order. */
  entries(want: (name: string) => boolean): AsyncGenerator<ArchiveEntry>;
}

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** The first `bytes` of a file (less when it is shorter): what sniffing a format needs. */
export async function fileHead(file: string, bytes: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

const isZip = (b: Buffer) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && (b[2] === 0x03 || b[2] === 0x05) && (b[3] === 0x04 || b[3] === 0x06);
const isGzip = (b: Buffer) => b[0] === 0x1f && b[1] === 0x8b;
const isTar = (b: Buffer) => b.length >= 263 && b.toString('latin1', 257, 262) === 'ustar';

/** What a path holds: a directory, a zip, a tar (gzipped or not), or something else. */
export async function sniffContainer(path: string): Promise<EntrySource['kind'] | undefined> {
  const info = await stat(path);
  if (info.isDirectory()) return 'directory';
  if (!info.isFile()) return undefined;
  const bytes = await fileHead(path, 64 * 1024);
  if (isZip(bytes)) return 'zip';
  if (isTar(bytes)) return 'tar';
  if (isGzip(bytes)) {
    // The first block of the inflated stream says whether a tar is inside (EPSS is a gzipped CSV).
    let inner: Buffer;
    try {
      inner = gunzipSync(bytes, { finishFlush: zlib.Z_SYNC_FLUSH });
    } catch {
      return undefined;
    }
    return isTar(inner) ? 'tar.gz' : undefined;
  }
  return undefined;
}

/** Opens a directory or an archive; undefined when the path is neither. */
export async function openEntries(path: string): Promise<EntrySource | undefined> {
  const kind = await sniffContainer(path);
  if (kind === 'directory') return { kind, entries: (want) => directoryEntries(path, want) };
  if (kind === 'zip') return { kind, entries: (want) => zipEntries(path, want) };
  if (kind === 'tar' || kind === 'tar.gz') return { kind, entries: (want) => tarEntries(path, kind === 'tar.gz', want) };
  return undefined;
}

// --- directory -----------------------------------------------------------------------------------

/**
 * Files are read synchronously, this many at a time, then the event loop gets a turn: reading a
 * small file through the thread pool costs three times as long (open, stat, read and close each
 * a round trip), and a list is hundreds of thousands of small files. A batch blocks for a few ms.
 */
const READ_BATCH = 256;

async function* directoryEntries(root: string, want: (name: string) => boolean): AsyncGenerator<ArchiveEntry> {
  const dirs = [root];
  while (dirs.length) {
    const dir = dirs.pop()!;
    const items = await readdir(dir, { withFileTypes: true });
    items.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
    const files: string[] = [];
    for (const item of items) {
      // .git and other hidden entries are never data.
      if (item.name.startsWith('.')) continue;
      const path = join(dir, item.name);
      if (item.isDirectory()) dirs.push(path);
      else if (item.isFile() && want(relative(root, path).split(sep).join('/'))) files.push(path);
    }
    // Sorted descending and popped: subdirectories are visited in name order, files too (reversed back here).
    files.reverse();
    for (let i = 0; i < files.length; i += READ_BATCH) {
      const batch = files.slice(i, i + READ_BATCH).map((path) => ({ name: relative(root, path).split(sep).join('/'), data: readFileSync(path) }));
      yield* batch;
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** A path with a hidden part (.git, .github...): never data, in any container. */
const hidden = (name: string) => name.split('/').some((part) => part.startsWith('.') && part !== '.');
const clean = (name: string) => name.replace(/^\.\//, '');

// --- tar (node-tar) -------------------------------------------------------------------------------

/** Entries of a tar (gzipped or not), streamed through node-tar's parser, each file read whole. */
async function* tarEntries(file: string, gzipped: boolean, want: (name: string) => boolean): AsyncGenerator<ArchiveEntry> {
  const found: ArchiveEntry[] = [];
  let failure: Error | undefined;
  let done = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const parser = new tar.Parser({
    gzip: gzipped,
    strict: true,
    // Directory archives (GitHub's) put the list under one top folder; names keep it, as `want` sees them.
    filter: (path, entry) => ('type' in entry ? entry.type === 'File' || entry.type === 'OldFile' : true) && !hidden(clean(path)) && want(clean(path)),
    onReadEntry: (entry) => {
      const parts: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => parts.push(chunk));
      entry.on('end', () => {
        found.push({ name: clean(entry.path), data: Buffer.concat(parts) });
        notify();
      });
    },
  });
  parser.on('error', (err: Error) => {
    failure = err;
    notify();
  });
  parser.on('warn', (code: string, message: string) => {
    // Strict mode turns most warnings into errors; the rest (a truncated end) still mean a bad archive.
    if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT') failure ??= new ArchiveError(`truncated archive (${message})`);
    notify();
  });
  parser.on('end', () => {
    done = true;
    notify();
  });
  const input = createReadStream(file);
  input.on('error', (err) => {
    failure = err;
    notify();
  });
  input.pipe(parser);
  while (true) {
    while (found.length) yield found.shift()!;
    if (failure) throw failure instanceof ArchiveError ? failure : new ArchiveError(`unreadable archive (${failure.message})`);
    if (done) return;
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

/**
 * A gzipped tar of the directory's files that `want` accepts, streamed: how the CLI sends a
 * checkout of CVE records to the API (a directory cannot be a request body).
 */
export function packDirectory(root: string, want: (name: string) => boolean): Readable {
  // Level 1: the list is sent once, to a nearby API; packing speed matters more than a smaller body.
  const pack = tar.create(
    { cwd: root, gzip: { level: 1 }, portable: true, filter: (path, stat) => !hidden(clean(path)) && (('isDirectory' in stat && stat.isDirectory()) || want(clean(path))) },
    ['.'],
  );
  return Readable.from(pack);
}

// --- zip (yauzl) ---------------------------------------------------------------------------------

const openZip = (file: string) =>
  new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: true, strictFileNames: false, validateEntrySizes: true }, (err, zip) => (err ? reject(err) : resolve(zip))));

/** Entries of a zip in the central directory's order (zip64 included), through yauzl. */
async function* zipEntries(file: string, want: (name: string) => boolean): AsyncGenerator<ArchiveEntry> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (err) {
    throw new ArchiveError(`unreadable zip archive (${(err as Error).message})`);
  }
  const next = () =>
    new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      zip.once('entry', (entry: yauzl.Entry) => {
        zip.removeAllListeners('end');
        zip.removeAllListeners('error');
        resolve(entry);
      });
      zip.once('end', () => resolve(undefined));
      zip.once('error', reject);
      zip.readEntry();
    });
  const read = (entry: yauzl.Entry) =>
    new Promise<Buffer>((resolve, reject) =>
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const parts: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => parts.push(chunk));
        stream.on('error', reject);
        stream.on('end', () => resolve(Buffer.concat(parts)));
      }));
  try {
    for (let entry = await next(); entry; entry = await next()) {
      if (entry.fileName.endsWith('/') || hidden(entry.fileName) || !want(entry.fileName)) continue;
      yield { name: entry.fileName, data: await read(entry) };
    }
  } catch (err) {
    throw err instanceof ArchiveError ? err : new ArchiveError(`unreadable zip archive (${(err as Error).message})`);
  } finally {
    zip.close();
  }
}
