import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { guardedGet, RefusedUrlError } from './outbound.js';

// Every file that arrives from outside (an upload, a pulled report, a feed download) reaches the disk
// the same way: streamed (never held in memory), counted against a limit, hashed on the way, and
// removed again if anything fails half-way.

/** More bytes than allowed arrived; nothing is kept. */
export class TooLargeError extends Error {
  constructor(
    readonly what: string,
    readonly maxBytes: number,
  ) {
    super(`${what} exceeds the limit of ${maxBytes} bytes (${formatMb(maxBytes)})`);
    this.name = 'TooLargeError';
  }
}

/** A download answered with an error status; `url` is redacted. */
export class HttpStatusError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`GET ${url} answered ${status}`);
    this.name = 'HttpStatusError';
  }
}

export interface SavedFile {
  file: string;
  bytes: number;
  sha256: string;
}

export interface SaveOptions {
  maxBytes: number;
  /** Names the input in errors: `the upload`, `GET https://host/path`. */
  what: string;
}

const formatMb = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;

/** Streams `body` into `file` under the size limit; on any error the partial file is removed. */
export async function saveToFile(body: ReadableStream<Uint8Array> | NodeJS.ReadableStream, file: string, { maxBytes, what }: SaveOptions): Promise<SavedFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) return done(new TooLargeError(what, maxBytes));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const source = body instanceof ReadableStream ? Readable.fromWeb(body as never) : body;
  try {
    // Reports name hosts, versions and weaknesses: readable by the platform's user alone.
    await pipeline(source, meter, createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  return { file, bytes, sha256: hash.digest('hex') };
}

/** `name` in `dir`, the directory created if needed. */
export async function fileIn(dir: string, name: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return join(dir, name);
}

/** Saves `body` to a temporary file in `dir` for the length of `use`, then removes it. */
export async function withSavedFile<T>(
  body: ReadableStream<Uint8Array> | NodeJS.ReadableStream,
  dir: string,
  options: SaveOptions & { suffix?: string },
  use: (saved: SavedFile) => Promise<T>,
): Promise<T> {
  const file = await fileIn(dir, `${randomUUID()}${options.suffix ?? '.tmp'}`);
  try {
    return await use(await saveToFile(body, file, options));
  } finally {
    await rm(file, { force: true });
  }
}

/** The URL as errors and records show it: without credentials or query (tokens travel there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export interface DownloadOptions {
  maxBytes: number;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * GETs `url` into `file` like `saveToFile`. An error status throws HttpStatusError, an unreachable
 * host an Error naming the (redacted) URL; the caller decides which are worth a retry.
 */
export async function downloadToFile(url: string, file: string, { maxBytes, headers = {}, timeoutMs = 10 * 60_000 }: DownloadOptions): Promise<SavedFile> {
  const where = redactUrl(url);
  let res: Response;
  try {
    res = await guardedGet(url, { headers, signal: AbortSignal.timeout(timeoutMs), where: `GET ${where}` });
  } catch (err) {
    if (err instanceof RefusedUrlError) throw err;
    throw new Error(`GET ${where}: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new HttpStatusError(where, res.status);
  }
  return saveToFile(res.body, file, { maxBytes, what: `GET ${where}` });
}
