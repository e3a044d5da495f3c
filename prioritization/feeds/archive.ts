import { createReadStream, readFileSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, createGzip, gunzipSync, inflateRawSync, constants as zlib } from 'node:zlib';

// Many small files in one of three containers: a checkout directory, a .zip, or a .tar(.gz) of one
// (GitHub's archive downloads of cvelistV5 and vulnrichment). Built on node:zlib because no archive
// library is a dependency of the project; the readers cover what those archives use (ustar, pax
// and GNU long names; zip stored/deflate and zip64) and refuse the rest by name.

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

async function head(file: string, bytes: number): Promise<Buffer> {
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
  const bytes = await head(path, 64 * 1024);
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

// --- tar -----------------------------------------------------------------------------------------

/** Bytes from a stream on demand: whole blocks for headers and entries, skipping without copying. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly chunks: AsyncIterator<Buffer>;
  constructor(stream: AsyncIterable<Buffer>) {
    this.chunks = stream[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes; undefined at a clean end of stream. */
  async take(n: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [this.buffer];
    let have = this.buffer.length;
    while (have < n) {
      const next = await this.chunks.next();
      if (next.done) {
        if (have === 0) return undefined;
        throw new ArchiveError(`truncated archive (wanted ${n} bytes, found ${have})`);
      }
      parts.push(next.value);
      have += next.value.length;
    }
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
    this.buffer = all.subarray(n);
    return all.subarray(0, n);
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buffer.length === 0) {
        const next = await this.chunks.next();
        if (next.done) throw new ArchiveError('truncated archive');
        this.buffer = next.value;
      }
      const step = Math.min(n, this.buffer.length);
      this.buffer = this.buffer.subarray(step);
      n -= step;
    }
  }
}

const cString = (b: Buffer, start: number, length: number) => {
  const field = b.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end === -1 ? length : end);
};

function tarNumber(b: Buffer, start: number, length: number): number {
  // Base-256 (GNU) for sizes beyond 8 GiB: high bit of the first byte set.
  if (b[start]! & 0x80) {
    let value = b[start]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + b[start + i]!;
    return value;
  }
  const text = cString(b, start, length).trim();
  const value = text === '' ? 0 : parseInt(text, 8);
  if (!Number.isFinite(value)) throw new ArchiveError(`not a tar archive (bad number ${JSON.stringify(text)})`);
  return value;
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === tarNumber(header, 148, 8);
}

/** `path` from pax extended-header records (`<len> key=value\n`). */
function paxPath(data: Buffer): string | undefined {
  let at = 0;
  let path: string | undefined;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.toString('latin1', at, space), 10);
    if (!(length > 0)) break;
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    at += length;
  }
  return path;
}

const padded = (size: number) => Math.ceil(size / 512) * 512;

async function* tarEntries(file: string, gzipped: boolean, want: (name: string) => boolean): AsyncGenerator<ArchiveEntry> {
  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  const stream = gzipped ? input.pipe(createGunzip({ chunkSize: 256 * 1024 })) : input;
  input.on('error', (err) => stream.destroy(err));
  const reader = new ByteReader(stream as AsyncIterable<Buffer>);
  let longName: string | undefined;
  try {
    for (;;) {
      const header = await reader.take(512);
      // Two zero blocks end the archive; a stream that simply stops is accepted too.
      if (!header || header.every((b) => b === 0)) return;
      if (!checksumOk(header)) throw new ArchiveError('not a tar archive (header checksum mismatch)');
      const size = tarNumber(header, 124, 12);
      const type = String.fromCharCode(header[156]!);
      if (type === 'x' || type === 'L') {
        const data = (await reader.take(padded(size)))!.subarray(0, size);
        longName = type === 'L' ? cString(data, 0, size) : (paxPath(data) ?? longName);
        continue;
      }
      const prefix = isTar(header) ? cString(header, 345, 155) : '';
      const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      longName = undefined;
      const regular = type === '0' || type === '\0' || type === '7';
      if (regular && want(name)) {
        const data = await reader.take(padded(size));
        if (!data) throw new ArchiveError(`truncated archive at ${name}`);
        yield { name, data: data.subarray(0, size) };
      } else await reader.skip(padded(size));
    }
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`unreadable archive (${(err as Error).message})`);
  } finally {
    input.destroy();
    stream.destroy();
  }
}

/** Writes a ustar header (with a pax header first when the path does not fit). */
function tarHeader(name: string, size: number, mtime: number, type = '0'): Buffer {
  const header = Buffer.alloc(512);
  const bytes = Buffer.from(name, 'utf8');
  let prefix = '';
  let base = name;
  if (bytes.length > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100 && Buffer.byteLength(name.slice(0, cut)) <= 155) {
      prefix = name.slice(0, cut);
      base = name.slice(cut + 1);
    } else {
      const record = (len: number) => `${len} path=${name}\n`;
      let len = Buffer.byteLength(record(0));
      while (Buffer.byteLength(record(len)) !== len) len = Buffer.byteLength(record(len));
      const pax = Buffer.from(record(len), 'utf8');
      return Buffer.concat([tarHeader('PaxHeader', pax.length, mtime, 'x'), pax, Buffer.alloc(padded(pax.length) - pax.length), tarHeader(name.slice(-100), size, mtime, type)]);
    }
  }
  header.write(base, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write(`${Math.floor(mtime / 1000).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  header.write(type, 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

/**
 * A gzipped tar of the directory's files that `want` accepts, streamed: how the CLI sends a
 * checkout of CVE records to the API (a directory cannot be a request body).
 */
export function packDirectory(root: string, want: (name: string) => boolean): Readable {
  async function* blocks(): AsyncGenerator<Buffer> {
    // Handed to gzip in chunks of about 1 MB: one chunk per header and file costs more than the files.
    let parts: Buffer[] = [];
    let size = 0;
    for await (const { name, data } of directoryEntries(root, want)) {
      const pad = data.length % 512 ? 512 - (data.length % 512) : 0;
      parts.push(tarHeader(name, data.length, Date.now()), data, Buffer.alloc(pad));
      size += 512 + data.length + pad;
      if (size >= 1 << 20) {
        yield Buffer.concat(parts, size);
        parts = [];
        size = 0;
      }
    }
    parts.push(Buffer.alloc(1024));
    yield Buffer.concat(parts);
  }
  // Level 1: the list is sent once, to a nearby API; packing speed matters more than a smaller body.
  return Readable.from(blocks()).pipe(createGzip({ level: 1 }));
}

// --- zip -----------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  offset: number;
}

const u16 = (b: Buffer, at: number) => b.readUInt16LE(at);
const u32 = (b: Buffer, at: number) => b.readUInt32LE(at);
const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

/** The central directory: where each entry starts and how it is stored (zip64 for >65,535 entries). */
async function zipDirectory(file: string): Promise<ZipEntry[]> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const tailLength = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    let eocd = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (u32(tail, i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd === -1) throw new ArchiveError('not a zip archive (no end of central directory; truncated?)');
    let count = u16(tail, eocd + 10);
    let cdSize = u32(tail, eocd + 12);
    let cdOffset = u32(tail, eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || u32(tail, locator) !== 0x07064b50) throw new ArchiveError('zip64 archive without its locator');
      const at = u64(tail, locator + 8);
      const record = Buffer.alloc(56);
      await handle.read(record, 0, 56, at);
      if (u32(record, 0) !== 0x06064b50) throw new ArchiveError('zip64 end of central directory not found');
      count = u64(record, 32);
      cdSize = u64(record, 40);
      cdOffset = u64(record, 48);
    }
    if (cdOffset + cdSize > size) throw new ArchiveError('truncated zip archive (central directory beyond the end)');
    const cd = Buffer.alloc(cdSize);
    await handle.read(cd, 0, cdSize, cdOffset);
    const entries: ZipEntry[] = [];
    let at = 0;
    for (let n = 0; n < count; n++) {
      if (at + 46 > cd.length || u32(cd, at) !== 0x02014b50) throw new ArchiveError('corrupt zip central directory');
      const nameLength = u16(cd, at + 28);
      const extraLength = u16(cd, at + 30);
      const commentLength = u16(cd, at + 32);
      const entry: ZipEntry = {
        name: cd.toString('utf8', at + 46, at + 46 + nameLength),
        flags: u16(cd, at + 8),
        method: u16(cd, at + 10),
        compressedSize: u32(cd, at + 20),
        size: u32(cd, at + 24),
        offset: u32(cd, at + 42),
      };
      // Zip64 extra field: the 64-bit values of the fields saturated above, in this order.
      let x = at + 46 + nameLength;
      const end = x + extraLength;
      while (x + 4 <= end) {
        const id = u16(cd, x);
        const length = u16(cd, x + 2);
        if (id === 0x0001) {
          let v = x + 4;
          if (entry.size === 0xffffffff) (entry.size = u64(cd, v)), (v += 8);
          if (entry.compressedSize === 0xffffffff) (entry.compressedSize = u64(cd, v)), (v += 8);
          if (entry.offset === 0xffffffff) entry.offset = u64(cd, v);
        }
        x += 4 + length;
      }
      entries.push(entry);
      at = end + commentLength;
    }
    return entries;
  } finally {
    await handle.close();
  }
}

async function* zipEntries(file: string, want: (name: string) => boolean): AsyncGenerator<ArchiveEntry> {
  const wanted = (await zipDirectory(file)).filter((e) => !e.name.endsWith('/') && want(e.name)).sort((a, b) => a.offset - b.offset);
  const handle = await open(file, 'r');
  try {
    const local = Buffer.alloc(30);
    for (const entry of wanted) {
      if (entry.flags & 1) throw new ArchiveError(`${entry.name}: encrypted zip entries are not supported`);
      if (entry.method !== 0 && entry.method !== 8) throw new ArchiveError(`${entry.name}: zip compression method ${entry.method} is not supported (stored or deflate only)`);
      await handle.read(local, 0, 30, entry.offset);
      if (u32(local, 0) !== 0x04034b50) throw new ArchiveError(`${entry.name}: corrupt zip entry`);
      const start = entry.offset + 30 + u16(local, 26) + u16(local, 28);
      const raw = Buffer.alloc(entry.compressedSize);
      const { bytesRead } = await handle.read(raw, 0, entry.compressedSize, start);
      if (bytesRead !== entry.compressedSize) throw new ArchiveError(`${entry.name}: truncated zip entry`);
      let data: Buffer;
      try {
        data = entry.method === 0 ? raw : inflateRawSync(raw);
      } catch (err) {
        throw new ArchiveError(`${entry.name}: corrupt zip entry (${(err as Error).message})`);
      }
      if (data.length !== entry.size) throw new ArchiveError(`${entry.name}: corrupt zip entry (${data.length} bytes, the directory says ${entry.size})`);
      yield { name: entry.name, data };
    }
  } finally {
    await handle.close();
  }
}
