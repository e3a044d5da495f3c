import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';

// The probes themselves: each opens at most one connection, sends nothing but a plain request (or
// nothing at all), reads a bounded number of bytes and gives up after a timeout. They never follow
// redirects and never send anything that exploits a vulnerability. They connect to the host they
// are given: callers that checked an allow-list pass the address it resolved, with the name as
// `servername` / in the URL, so DNS cannot move a probe elsewhere.

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_BYTES = 4096;
const USER_AGENT = 'ctem-validation-probe/1 (exposure validation; no exploit)';

export interface ProbeOptions {
  /** Whole-call timeout (connect, handshake, read); default 5 s. */
  timeoutMs?: number;
  /** Cancels the call: the socket is destroyed and the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type PortState = 'open' | 'closed' | 'filtered' | 'error';

export interface TcpResult {
  state: PortState;
  /** Time to connect, or to the refusal; the timeout when filtered. */
  latencyMs: number;
  /** The address the socket actually connected to (open only). */
  remoteAddress?: string;
  /** The system error code for `error` (EHOSTUNREACH is reported as filtered). */
  code?: string;
}

/** Opens and closes one TCP connection: open, closed (refused) or filtered (no answer in time). */
export async function tcpConnect(host: string, port: number, options: ProbeOptions = {}): Promise<TcpResult> {
  const started = performance.now();
  const outcome = await openSocket(host, port, options);
  const latencyMs = round(performance.now() - started);
  if (outcome.socket) {
    const remoteAddress = outcome.socket.remoteAddress;
    outcome.socket.destroy();
    return { state: 'open', latencyMs, ...(remoteAddress && { remoteAddress }) };
  }
  return { state: outcome.state, latencyMs, ...(outcome.code && { code: outcome.code }) };
}

export interface BannerOptions extends ProbeOptions {
  /** How long to wait for the service to speak first once connected; default 2 s. */
  waitMs?: number;
  /** Bytes read at most; default 1024. */
  maxBytes?: number;
}

export type ServiceBanner =
  | { state: 'banner'; line: string; truncated: boolean; latencyMs: number; remoteAddress?: string }
  | { state: 'silent'; latencyMs: number; remoteAddress?: string }
  | { state: Exclude<PortState, 'open'>; latencyMs: number; code?: string };

/**
 * Reads the first line a service sends on its own (SSH, SMTP, FTP, POP3...), without sending
 * anything. A service that stays quiet for `waitMs` is `silent`.
 */
export async function serviceBanner(host: string, port: number, options: BannerOptions = {}): Promise<ServiceBanner> {
  const started = performance.now();
  const maxBytes = options.maxBytes ?? 1024;
  const waitMs = options.waitMs ?? 2000;
  const outcome = await openSocket(host, port, options);
  if (!outcome.socket) return { state: outcome.state, latencyMs: round(performance.now() - started), ...(outcome.code && { code: outcome.code }) };
  const socket = outcome.socket;
  const remoteAddress = socket.remoteAddress;
  const deadline = Math.min(waitMs, remaining(started, options));
  try {
    const read = await new Promise<{ data: Buffer; truncated: boolean } | undefined>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (value: { data: Buffer; truncated: boolean } | undefined) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        socket.removeAllListeners('data');
        resolve(value);
      };
      const onAbort = () => {
        clearTimeout(timer);
        socket.destroy();
        reject(options.signal!.reason);
      };
      const timer = setTimeout(() => finish(size ? { data: Buffer.concat(chunks), truncated: false } : undefined), deadline);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        const all = Buffer.concat(chunks);
        const newline = all.indexOf(0x0a);
        if (newline >= 0 && newline < maxBytes) finish({ data: all.subarray(0, newline), truncated: false });
        else if (size >= maxBytes) finish({ data: all.subarray(0, maxBytes), truncated: true });
      });
      socket.on('end', () => finish(size ? { data: Buffer.concat(chunks).subarray(0, maxBytes), truncated: false } : undefined));
      socket.on('error', () => finish(size ? { data: Buffer.concat(chunks).subarray(0, maxBytes), truncated: false } : undefined));
    });
    const latencyMs = round(performance.now() - started);
    if (!read) return { state: 'silent', latencyMs, ...(remoteAddress && { remoteAddress }) };
    return { state: 'banner', line: printable(read.data), truncated: read.truncated, latencyMs, ...(remoteAddress && { remoteAddress }) };
  } finally {
    socket.destroy();
  }
}

export interface TlsOptions extends ProbeOptions {
  /** The name to send as SNI and to check the certificate against (never an IP). */
  servername?: string;
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** DNS names and IP addresses of the subjectAltName extension. */
  subjectAltNames: string[];
  validFrom: string;
  validTo: string;
  selfSigned: boolean;
  expired: boolean;
  notYetValid: boolean;
  /** Whether the certificate names `servername` (undefined without one). */
  matchesServername?: boolean;
  fingerprint256: string;
  serialNumber: string;
}

export type TlsResult =
  | {
      state: 'tls';
      /** TLSv1.3, TLSv1.2... as negotiated. */
      protocol: string;
      cipher: string;
      /** Whether the chain verifies against the system's trusted roots, and if not why. */
      trusted: boolean;
      trustError?: string;
      certificate?: CertificateInfo;
      latencyMs: number;
      remoteAddress?: string;
    }
  | { state: 'not_tls'; latencyMs: number; error: string }
  | { state: Exclude<PortState, 'open'>; latencyMs: number; code?: string };

/**
 * One TLS handshake: the negotiated protocol and cipher, and the leaf certificate. The chain is not
 * required to verify (a self-signed or expired certificate is a finding, not an error); whether it
 * does is reported as `trusted`.
 */
export async function tlsInfo(host: string, port: number, options: TlsOptions = {}): Promise<TlsResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const servername = options.servername ?? (isIP(host) ? undefined : host);
  const socket = tlsConnect({
    host,
    port,
    ...(servername && { servername }),
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  });
  socket.on('error', ignore);
  let tcpConnected = false;
  socket.once('connect', () => (tcpConnected = true));
  try {
    await guarded<void>(socket, timeoutMs, options.signal, (resolve) => socket.once('secureConnect', () => resolve()));
  } catch (err) {
    socket.destroy();
    if (options.signal?.aborted) throw options.signal.reason;
    const latencyMs = round(performance.now() - started);
    const failure = err as NodeJS.ErrnoException;
    // Connected but no handshake in time is a service that does not speak TLS (or not to us).
    if (failure.code === 'ETIMEDOUT') return tcpConnected ? { state: 'not_tls', latencyMs, error: 'ETIMEDOUT' } : { state: 'filtered', latencyMs };
    const state = connectFailure(failure);
    if (state) return { state, latencyMs, ...(failure.code && { code: failure.code }) };
    // Connected, but the handshake failed: something that is not TLS (or a TLS we cannot speak).
    return { state: 'not_tls', latencyMs, error: failure.code ?? failure.message };
  }
  try {
    const latencyMs = round(performance.now() - started);
    const cipher = socket.getCipher();
    const peer = socket.getPeerCertificate(false);
    const authorizationError = socket.authorizationError as unknown;
    return {
      state: 'tls',
      protocol: socket.getProtocol() ?? 'unknown',
      cipher: cipher.standardName ?? cipher.name,
      trusted: socket.authorized,
      ...(!socket.authorized && authorizationError ? { trustError: String((authorizationError as Error).message ?? authorizationError) } : {}),
      ...(peer && peer.raw ? { certificate: describeCertificate(peer, servername) } : {}),
      latencyMs,
      ...(socket.remoteAddress && { remoteAddress: socket.remoteAddress }),
    };
  } finally {
    socket.destroy();
  }
}

function describeCertificate(peer: PeerCertificate, servername: string | undefined): CertificateInfo {
  const x509 = new X509Certificate(peer.raw);
  const now = Date.now();
  const validFrom = new Date(x509.validFrom);
  const validTo = new Date(x509.validTo);
  // Self-signed: it names itself as issuer and its own key verifies its signature.
  const selfSigned = x509.checkIssued(x509) && x509.verify(x509.publicKey);
  return {
    subject: x509.subject.replace(/\n/g, ', '),
    issuer: x509.issuer.replace(/\n/g, ', '),
    subjectAltNames: (x509.subjectAltName ?? '')
      .split(', ')
      .filter(Boolean)
      .map((s) => s.replace(/^(DNS|IP Address):/, '')),
    validFrom: validFrom.toISOString(),
    validTo: validTo.toISOString(),
    selfSigned,
    expired: validTo.getTime() < now,
    notYetValid: validFrom.getTime() > now,
    ...(servername && { matchesServername: x509.checkHost(servername) !== undefined }),
    fingerprint256: x509.fingerprint256,
    serialNumber: x509.serialNumber,
  };
}

export interface HttpOptions extends ProbeOptions {
  /** Connect to this address instead of resolving the URL's host (which still goes in Host and SNI). */
  address?: string;
  /** Body bytes read at most (the rest is not read); default 4096. 0 reads no body. */
  maxBytes?: number;
  /** Response header bytes accepted at most; default 16 KiB. */
  maxHeaderBytes?: number;
}

export type HttpBanner =
  | {
      outcome: 'response';
      status: number;
      server?: string;
      poweredBy?: string;
      /** A redirect's target, reported and never followed. */
      location?: string;
      contentType?: string;
      /** The first `maxBytes` bytes of the body, as text. */
      body: string;
      bodyTruncated: boolean;
      latencyMs: number;
      remoteAddress?: string;
    }
  | { outcome: 'reset' | 'refused' | 'timeout' | 'error'; error: string; latencyMs: number };

/**
 * One GET request: status, the `Server` and `X-Powered-By` headers, and the first bytes of the body
 * (for a version endpoint). Redirects are never followed; `location` says where they point.
 */
export async function httpBanner(url: string | URL, options: HttpOptions = {}): Promise<HttpBanner> {
  const started = performance.now();
  const target = new URL(url);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError(`httpBanner: ${target.protocol} URLs are not probed (http or https only)`);
  if (target.username || target.password) throw new TypeError('httpBanner: URLs with credentials are not probed');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const hostname = target.hostname.replace(/^\[|\]$/g, '');
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const latency = () => round(performance.now() - started);
  const req = request({
    host: options.address ?? hostname,
    port: target.port || (target.protocol === 'https:' ? 443 : 80),
    path: `${target.pathname}${target.search}`,
    method: 'GET',
    headers: { host: target.host, 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
    agent: false,
    maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
    ...(target.protocol === 'https:' && { rejectUnauthorized: false, ...(!isIP(hostname) && { servername: hostname }) }),
  });
  req.on('error', ignore);
  let remoteAddress: string | undefined;
  req.on('socket', (s: Socket) => s.once('connect', () => (remoteAddress = s.remoteAddress)));
  try {
    const res = await guarded<IncomingMessage>(req, timeoutMs, options.signal, (resolve) => {
      req.once('response', (r: IncomingMessage) => resolve(r.on('error', ignore)));
      req.end();
    });
    const body = await readBounded(res, maxBytes, remaining(started, options), options.signal);
    const header = (name: string) => {
      const value = res.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    };
    const server = header('server');
    const poweredBy = header('x-powered-by');
    const location = header('location');
    const contentType = header('content-type');
    return {
      outcome: 'response',
      status: res.statusCode ?? 0,
      ...(server !== undefined && { server: printable(Buffer.from(server)) }),
      ...(poweredBy !== undefined && { poweredBy: printable(Buffer.from(poweredBy)) }),
      ...(location !== undefined && { location: printable(Buffer.from(location)) }),
      ...(contentType !== undefined && { contentType }),
      body: body.data.toString('utf8'),
      bodyTruncated: body.truncated,
      latencyMs: latency(),
      ...(remoteAddress && { remoteAddress }),
    };
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    const failure = err as NodeJS.ErrnoException;
    const code = failure.code ?? '';
    const outcome = code === 'ETIMEDOUT' ? 'timeout' : code === 'ECONNREFUSED' ? 'refused' : code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : 'error';
    return { outcome, error: code || failure.message, latencyMs: latency() };
  } finally {
    req.destroy();
  }
}

// --- sockets, timeouts, bounds ---

type Opened = { socket: Socket; state?: undefined; code?: undefined } | { socket?: undefined; state: Exclude<PortState, 'open'>; code?: string };

async function openSocket(host: string, port: number, options: ProbeOptions): Promise<Opened> {
  const socket = netConnect({ host, port });
  // Errors after the outcome is known (a reset while closing) must not crash the process.
  socket.on('error', ignore);
  try {
    await guarded<void>(socket, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.signal, (resolve) => socket.once('connect', () => resolve()));
    return { socket };
  } catch (err) {
    socket.destroy();
    if (options.signal?.aborted) throw options.signal.reason;
    const failure = err as NodeJS.ErrnoException;
    return { state: connectFailure(failure) ?? 'error', ...(failure.code && { code: failure.code }) };
  }
}

/** How a connection attempt failed, as a port state; undefined when it connected and failed later. */
function connectFailure(err: NodeJS.ErrnoException): Exclude<PortState, 'open'> | undefined {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'closed';
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'filtered';
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'error';
    default:
      return undefined;
  }
}

/**
 * Waits for `start` to resolve while the emitter's errors, a timeout (an ETIMEDOUT error) or the
 * signal (its reason) reject; the emitter is destroyed on timeout and abort.
 */
function guarded<T>(
  emitter: { once(event: 'error', listener: (err: Error) => void): unknown; destroy(err?: Error): unknown; removeListener(event: string, l: (...a: never[]) => void): unknown },
  timeoutMs: number,
  signal: AbortSignal | undefined,
  start: (resolve: (value: T) => void) => void,
): Promise<T> {
  if (signal?.aborted) {
    emitter.destroy();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => done(() => (emitter.destroy(), reject(signal!.reason)));
    const timer = setTimeout(
      () => done(() => (emitter.destroy(), reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    emitter.once('error', (err) => done(() => reject(err)));
    start((value) => done(() => resolve(value)));
  });
}

async function readBounded(res: IncomingMessage, maxBytes: number, timeoutMs: number, signal: AbortSignal | undefined) {
  if (maxBytes <= 0) {
    res.destroy();
    return { data: Buffer.alloc(0), truncated: false };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    await guarded<void>(res, Math.max(timeoutMs, 1), signal, (resolve) => {
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= maxBytes) {
          truncated = size > maxBytes || !res.complete;
          res.removeAllListeners('data');
          res.destroy();
          resolve();
        }
      });
      res.once('end', () => resolve());
      res.once('close', () => resolve());
    });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    // A body cut short (timeout, reset) still tells what arrived.
    truncated = true;
  }
  return { data: Buffer.concat(chunks).subarray(0, maxBytes), truncated };
}

function remaining(started: number, options: ProbeOptions): number {
  return Math.max(0, (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) - (performance.now() - started));
}

/** Text as received, with control characters (other than tab) escaped so evidence stays one safe line. */
function printable(data: Buffer): string {
  return data
    .toString('latin1')
    .replace(/\r$/, '')
    .replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function ignore(): void {}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
