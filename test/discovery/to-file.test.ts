import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefusedUrlError } from '../../discovery/streams/outbound.js';
import { downloadToFile, HttpStatusError, redactUrl, saveToFile, TooLargeError, withSavedFile } from '../../discovery/streams/to-file.js';

// The one way files from outside reach the disk (uploads, pulled reports, feed downloads): limits,
// hashes, clean-up and the errors that name the limit, over real streams and a real HTTP server.

const dir = mkdtempSync(join(tmpdir(), 'to-file-'));
const body = (text: string) => Readable.toWeb(Readable.from([Buffer.from(text)])) as ReadableStream<Uint8Array>;

const seen: Array<{ url: string; token: string | string[] | undefined }> = [];
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', token: req.headers['x-token'] });
    if (req.url?.startsWith('/report')) return void res.end('x'.repeat(1000));
    const hop = /^\/hop\/(\d+)$/.exec(req.url ?? '');
    if (hop) return void res.writeHead(302, { location: Number(hop[1]) > 0 ? `/hop/${Number(hop[1]) - 1}` : '/report.json' }).end();
    if (req.url === '/to-metadata') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    if (req.url === '/to-other-origin') return void res.writeHead(307, { location: base.replace('127.0.0.1', 'localhost') + '/report.json' }).end();
    res.writeHead(404).end('gone');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('saveToFile', () => {
  it('writes the body and returns its size and sha256', async () => {
    const file = join(dir, 'ok');
    const saved = await saveToFile(body('hello'), file, { maxBytes: 5, what: 'the upload' });
    expect(saved).toEqual({ file, bytes: 5, sha256: createHash('sha256').update('hello').digest('hex') });
    expect(readFileSync(file, 'utf8')).toBe('hello');
    // Only the platform's user reads what scanners found.
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a body over the limit with an error naming it, and removes the partial file', async () => {
    const file = join(dir, 'big');
    const err = await saveToFile(body('hello!'), file, { maxBytes: 5, what: 'the upload' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooLargeError);
    expect((err as Error).message).toBe('the upload exceeds the limit of 5 bytes (0 MB)');
    expect(existsSync(file)).toBe(false);
  });

  it('withSavedFile removes the file after use, also when use throws', async () => {
    const sub = mkdtempSync(join(dir, 'with-'));
    expect(await withSavedFile(body('abc'), sub, { maxBytes: 10, what: 'the upload' }, async ({ file }) => readFileSync(file, 'utf8'))).toBe('abc');
    await expect(withSavedFile(body('abc'), sub, { maxBytes: 10, what: 'the upload' }, async () => { throw new Error('parse failed'); })).rejects.toThrow('parse failed');
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe('downloadToFile', () => {
  it('downloads under the limit', async () => {
    const saved = await downloadToFile(`${base}/report.json`, join(dir, 'report'), { maxBytes: 1000 });
    expect(saved.bytes).toBe(1000);
  });

  it('names the redacted URL and the limit when the download is too large', async () => {
    const file = join(dir, 'too-large');
    await expect(downloadToFile(`${base}/report.json?token=secret`, file, { maxBytes: 999 })).rejects.toThrow(
      `GET ${base}/report.json exceeds the limit of 999 bytes`,
    );
    expect(existsSync(file)).toBe(false);
  });

  it('turns an error status into HttpStatusError without keeping a file', async () => {
    const file = join(dir, 'missing');
    const err = await downloadToFile(`${base}/missing?token=secret`, file, { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ status: 404, message: `GET ${base}/missing answered 404` });
    expect(existsSync(file)).toBe(false);
  });

  it('fetches only http(s), never a link-local address, also after a redirect', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/x', 'http://0.0.0.0/x']) {
      const err = await downloadToFile(url, join(dir, 'refused'), { maxBytes: 1000 }).catch((e: unknown) => e);
      expect(err, url).toBeInstanceOf(RefusedUrlError);
    }
    const redirected = await downloadToFile(`${base}/to-metadata`, join(dir, 'refused'), { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(redirected).toBeInstanceOf(RefusedUrlError);
    expect((redirected as Error).message).toBe(`GET ${base}/to-metadata: address 169.254.169.254 is link-local, multicast or unspecified`);
    expect(existsSync(join(dir, 'refused'))).toBe(false);
  });

  it('follows five redirects at most, and sends the configured headers only to their origin', async () => {
    seen.length = 0;
    expect((await downloadToFile(`${base}/hop/4`, join(dir, 'hops'), { maxBytes: 1000, headers: { 'x-token': 's3cret' } })).bytes).toBe(1000);
    expect(seen.map((r) => r.token)).toEqual(Array(6).fill('s3cret'));
    await expect(downloadToFile(`${base}/hop/5`, join(dir, 'hops'), { maxBytes: 1000 })).rejects.toThrow('more than 5 redirects');
    seen.length = 0;
    await downloadToFile(`${base}/to-other-origin`, join(dir, 'other'), { maxBytes: 1000, headers: { 'x-token': 's3cret' } });
    expect(seen).toEqual([{ url: '/to-other-origin', token: 's3cret' }, { url: '/report.json', token: undefined }]);
  });

  it('redacts credentials and query from URLs', () => {
    expect(redactUrl('https://u:p@feeds.example/epss.csv.gz?key=1')).toBe('https://feeds.example/epss.csv.gz');
    expect(redactUrl('not a url')).toBe('(invalid URL)');
  });
});
