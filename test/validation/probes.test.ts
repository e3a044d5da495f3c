import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../platform/ports.js';
import { selfSignedCertificate } from '../support/certificates.js';
import { allowListGate, allowed, isPublicAddress, parseAllowList, AllowListError, type Resolver } from '../../validation/probes/allow-list.js';
import { httpBanner, serviceBanner, tcpConnect, tlsInfo } from '../../validation/probes/checks.js';
import { verifyControl, WAF_TEST_PARAMETER, type ControlClaim } from '../../validation/probes/controls.js';
import { runProbes, validateTasks, type ProbeTask, type RunProgress } from '../../validation/probes/run.js';
import { compareBanner } from '../../validation/probes/version.js';

// Every server here is started by this file on 127.0.0.1, 127.0.0.2 or ::1; nothing else is ever
// contacted (names resolve through a table in this file, or to the hosts file's localhost).

/** A TCP server that counts connections and the most it held at once. */
interface Counted {
  port: number;
  host: string;
  connections: number;
  open: number;
  maxOpen: number;
  acceptedAt: number[];
  /** Connections being served (a banner server: from accept until it speaks), and the most at once. */
  active: number;
  maxActive: number;
  close(): Promise<void>;
}

function track(server: Server | HttpServer, host: string): Promise<Counted> {
  const sockets = new Set<Socket>();
  const counted: Counted = {
    port: 0,
    host,
    connections: 0,
    open: 0,
    maxOpen: 0,
    acceptedAt: [],
    active: 0,
    maxActive: 0,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    counted.connections++;
    counted.acceptedAt.push(performance.now());
    counted.open++;
    counted.maxOpen = Math.max(counted.maxOpen, counted.open);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      counted.open--;
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      counted.port = (server.address() as { port: number }).port;
      resolve(counted);
    });
  });
}

/** Accepts, reads and stays silent (a service that never answers). */
const silentServer = (host = '127.0.0.1') => track(createNetServer((socket) => socket.resume()), host);

/** Speaks first like an SSH daemon, after `delayMs`, then closes. */
async function bannerServer(line: string, delayMs = 0, host = '127.0.0.1'): Promise<Counted> {
  let counted: Counted | undefined;
  const server = createNetServer((socket) => {
    counted!.active++;
    counted!.maxActive = Math.max(counted!.maxActive, counted!.active);
    setTimeout(() => {
      // A client can only finish (and its worker start the next task) after this line arrives.
      counted!.active--;
      socket.end(line);
    }, delayMs);
  });
  counted = await track(server, host);
  return counted;
}

interface HttpSeen {
  requests: Array<{ url: string; host: string | undefined }>;
}

function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1'): Promise<Counted & HttpSeen> {
  const seen: HttpSeen = { requests: [] };
  const server = createHttpServer((req, res) => {
    seen.requests.push({ url: req.url ?? '', host: req.headers.host });
    handler(req, res);
  });
  return track(server, host).then((c) => Object.assign(c, seen));
}

const nginx = (req: IncomingMessage, res: ServerResponse) => {
  if (req.url === '/moved') {
    res.writeHead(302, { Location: 'http://127.0.0.1:1/elsewhere', Server: 'nginx/1.18.0' });
    res.end();
    return;
  }
  res.writeHead(200, { Server: 'nginx/1.18.0', 'X-Powered-By': 'PHP/5.3.12', 'Content-Type': 'text/plain' });
  res.end(req.url === '/big' ? 'x'.repeat(200_000) : '{"version":"1.18.0"}');
};

/** A WAF in front of the nginx above: blocks requests whose query holds a script tag. */
const waf = (req: IncomingMessage, res: ServerResponse) => {
  if (decodeURIComponent(req.url ?? '').includes('<script>')) {
    res.writeHead(403, { Server: 'awselb/2.0' });
    res.end('Forbidden');
    return;
  }
  nginx(req, res);
};

async function tlsServer(cert: { key: string; cert: string }): Promise<Counted & { servernames: string[] }> {
  const servernames: string[] = [];
  const server = createTlsServer(
    {
      key: cert.key,
      cert: cert.cert,
      // Called on the ClientHello, before the handshake ends (the client may hang up right after it).
      SNICallback: (name, done) => {
        servernames.push(name);
        done(null, undefined);
      },
    },
    (socket: TLSSocket) => socket.end(),
  );
  server.on('tlsClientError', () => {});
  return Object.assign(await track(server, '127.0.0.1'), { servernames });
}

/**
 * A port that answers no SYN: a child process listens with a backlog of one and then blocks its
 * event loop, so it never accepts; once two connections fill its queue, the kernel drops new SYNs.
 */
async function filteredPort(): Promise<{ port: number; child: ChildProcess; fillers: Socket[] }> {
  const child = spawn(
    process.execPath,
    ['-e', `const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);setTimeout(()=>Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0),50)})`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  await new Promise((r) => setTimeout(r, 150));
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const { connect } = await import('node:net');
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  return { port, child, fillers };
}

/** Names for this file only: what a DNS server would answer, without asking one. */
const names: Record<string, string[]> = {
  'app.test': ['127.0.0.1'],
  'rebound.test': ['127.0.0.2'],
  'unlisted.test': ['127.0.0.2'],
  'mixed.test': ['127.0.0.1', '127.0.0.2'],
  'public.test': ['8.8.8.8'],
  'v6.test': ['::1'],
};
const resolve: Resolver = async (name) => {
  if (name === 'slow.test') return new Promise(() => {});
  const found = names[name];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return found;
};

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});
async function started<T extends { close(): Promise<void> }>(server: Promise<T>): Promise<T> {
  const s = await server;
  cleanups.push(() => s.close());
  return s;
}

describe('allow-list', () => {
  it('names the bad entry and why', () => {
    const bad: Array<[string, RegExp]> = [
      ['10.0.0.0/33', /prefix length "33"/],
      ['2001:db8::/129', /prefix length "129"/],
      ['300.1.1.1', /not a valid IPv4 address/],
      ['*.com', /at least two labels/],
      ['a.*.example.com', /only allowed as the whole first label/],
      ['*example.com', /only allowed as the whole first label/],
      ['bad_name.example.com', /label "bad_name"/],
      ['example.com:0', /port "0"/],
      ['example.com:9000-80', /reversed range/],
      ['[::1', /without a closing/],
      ['[example.com]:80', /IPv6 addresses only/],
      ['example.com/24', /cannot take a prefix length/],
      ['  ', /empty/],
    ];
    for (const [entry, why] of bad) {
      let error: unknown;
      try {
        parseAllowList(['127.0.0.1', entry]);
      } catch (err) {
        error = err;
      }
      expect(error, entry).toBeInstanceOf(AllowListError);
      expect((error as AllowListError).message).toContain(`entry 2 "${entry}"`);
      expect((error as AllowListError).message, entry).toMatch(why);
    }
  });

  it('refuses everything when empty', async () => {
    const list = parseAllowList([]);
    expect(await allowed(list, '127.0.0.1')).toMatchObject({ allowed: false, reason: 'the allow-list is empty' });
    expect(await allowed(list, { host: 'app.test', port: 80 }, { resolve })).toMatchObject({ allowed: false });
  });

  it('matches IPv4 CIDRs at their edges', async () => {
    const list = parseAllowList(['10.1.2.0/24', '192.0.2.7', '172.16.0.0/12']);
    const check = async (ip: string) => (await allowed(list, ip)).allowed;
    expect(await check('10.1.2.0')).toBe(true);
    expect(await check('10.1.2.255')).toBe(true);
    expect(await check('10.1.1.255')).toBe(false);
    expect(await check('10.1.3.0')).toBe(false);
    expect(await check('192.0.2.7')).toBe(true);
    expect(await check('192.0.2.8')).toBe(false);
    expect(await check('172.31.255.255')).toBe(true);
    expect(await check('172.32.0.0')).toBe(false);
    expect(await check('172.15.255.255')).toBe(false);
    // The IPv4-mapped IPv6 spelling is the same host, and connects as IPv4.
    expect(await allowed(list, '::ffff:10.1.2.9')).toMatchObject({ allowed: true, address: '10.1.2.9', family: 4 });
    expect(await check('::ffff:10.1.3.9')).toBe(false);
    expect(await check('0.0.0.0')).toBe(false);
    expect((await allowed(parseAllowList(['0.0.0.0/0']), '203.0.113.9')).allowed).toBe(true);
    const ported = parseAllowList(['10.9.0.0/16:22,443']);
    expect((await allowed(ported, { host: '10.9.255.1', port: 22 })).allowed).toBe(true);
    expect((await allowed(ported, { host: '10.9.255.1', port: 80 })).allowed).toBe(false);
    expect((await allowed(ported, { host: '10.10.0.1', port: 22 })).allowed).toBe(false);
  });

  it('matches IPv6 CIDRs at their edges', async () => {
    const list = parseAllowList(['2001:db8:abcd::/48', '[::1]:8443']);
    const check = async (ip: string, port?: number) => (await allowed(list, port === undefined ? ip : { host: ip, port })).allowed;
    expect(await check('2001:db8:abcd::')).toBe(true);
    expect(await check('2001:db8:abcd:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(await check('2001:DB8:ABCD:0:0:0:0:1')).toBe(true);
    expect(await check('2001:db8:abce::')).toBe(false);
    expect(await check('2001:db8:abcc:ffff:ffff:ffff:ffff:ffff')).toBe(false);
    expect(await check('[::1]', 8443)).toBe(true);
    expect(await check('::1', 8444)).toBe(false);
    // A port-narrowed entry does not answer "any port".
    expect(await check('::1')).toBe(false);
    // IPv4 entries never match IPv6 targets and the other way round.
    expect((await allowed(parseAllowList(['0.0.0.0/0']), '::1')).allowed).toBe(false);
    expect((await allowed(parseAllowList(['::/0']), '127.0.0.1')).allowed).toBe(false);
  });

  it('matches wildcards below the name only, and names exactly', async () => {
    const list = parseAllowList(['*.example.com', 'app.test:443,8000-8100']);
    const publicOnly: Resolver = async () => ['93.184.215.14'];
    const check = async (host: string, port?: number) => (await allowed(list, { host, ...(port && { port }) }, { resolve: publicOnly })).allowed;
    expect(await check('www.example.com')).toBe(true);
    expect(await check('a.b.example.com')).toBe(true);
    expect(await check('WWW.Example.COM.')).toBe(true);
    expect(await check('example.com')).toBe(false);
    expect(await check('badexample.com')).toBe(false);
    expect(await check('www.example.com.evil.net')).toBe(false);
    expect(await check('www.example.co')).toBe(false);
    expect(await check('app.test', 443)).toBe(true);
    expect(await check('app.test', 8050)).toBe(true);
    expect(await check('app.test', 8101)).toBe(false);
    expect(await check('www.app.test', 443)).toBe(false);
    expect(isPublicAddress('93.184.215.14')).toBe(true);
    expect(isPublicAddress('169.254.169.254')).toBe(false);
    expect(isPublicAddress('fd00::1')).toBe(false);
  });

  it('resolves a name once and never lets it lead to an unlisted private address', async () => {
    const list = parseAllowList(['127.0.0.1', 'rebound.test', 'public.test', '*.wild.test']);
    // Not listed by name, but every address it resolves to is: allowed, at that address, with the name for SNI.
    expect(await allowed(list, 'app.test', { resolve })).toMatchObject({ allowed: true, address: '127.0.0.1', servername: 'app.test' });
    // Not listed, resolves to an unlisted address.
    expect(await allowed(list, 'unlisted.test', { resolve })).toMatchObject({ allowed: false, reason: expect.stringContaining('127.0.0.2') });
    // Not listed, one of its addresses unlisted.
    expect(await allowed(list, 'mixed.test', { resolve })).toMatchObject({ allowed: false, addresses: ['127.0.0.1', '127.0.0.2'] });
    // Listed by name, but pointing into a private range that is not listed: refused.
    expect(await allowed(list, 'rebound.test', { resolve })).toMatchObject({ allowed: false, reason: expect.stringContaining('non-public') });
    // Listed by name and public: allowed at its address (nothing is contacted here).
    expect(await allowed(list, 'public.test', { resolve })).toMatchObject({ allowed: true, address: '8.8.8.8', servername: 'public.test' });
    // The system resolver (hosts file): localhost is 127.0.0.1, which is listed.
    expect(await allowed(list, 'localhost')).toMatchObject({ allowed: true, address: '127.0.0.1', servername: 'localhost' });
    expect(await allowed(list, 'nowhere.test', { resolve })).toMatchObject({ allowed: false, reason: expect.stringContaining('did not resolve') });
    const t0 = performance.now();
    expect(await allowed(list, 'slow.test', { resolve, dnsTimeoutMs: 100 })).toMatchObject({ allowed: false, reason: 'slow.test did not resolve within 100 ms' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await allowed(list, 'not a host', { resolve })).toMatchObject({ allowed: false });
  });
});

describe('checks', () => {
  it('tells open, closed and filtered ports apart', async () => {
    const server = await started(silentServer());
    const open = await tcpConnect('127.0.0.1', server.port, { timeoutMs: 1000 });
    expect(open).toMatchObject({ state: 'open', remoteAddress: '127.0.0.1' });
    expect(server.connections).toBe(1);
    const v6 = await started(silentServer('::1'));
    expect(await tcpConnect('::1', v6.port, { timeoutMs: 1000 })).toMatchObject({ state: 'open', remoteAddress: '::1' });

    const closedPort = await freePort();
    expect(await tcpConnect('127.0.0.1', closedPort, { timeoutMs: 1000 })).toMatchObject({ state: 'closed' });

    const filtered = await filteredPort();
    cleanups.push(() => (filtered.fillers.forEach((s) => s.destroy()), filtered.child.kill('SIGKILL')));
    const result = await tcpConnect('127.0.0.1', filtered.port, { timeoutMs: 300 });
    expect(result.state).toBe('filtered');
    expect(result.latencyMs).toBeGreaterThanOrEqual(290);
    expect(result.latencyMs).toBeLessThan(1500);
  });

  it('reads a TLS handshake: protocol, cipher and a self-signed certificate', async () => {
    const now = Date.now();
    const fresh = await started(tlsServer(selfSignedCertificate('localhost', new Date(now - 86_400_000), new Date(now + 30 * 86_400_000))));
    const info = await tlsInfo('127.0.0.1', fresh.port, { servername: 'localhost', timeoutMs: 2000 });
    expect(info.state).toBe('tls');
    if (info.state !== 'tls') return;
    expect(info.protocol).toBe('TLSv1.3');
    expect(info.cipher).toMatch(/^TLS_/);
    expect(info.trusted).toBe(false);
    expect(info.trustError).toMatch(/self[-_ ]signed/i);
    expect(info.certificate).toMatchObject({
      subject: 'CN=localhost',
      issuer: 'CN=localhost',
      subjectAltNames: ['localhost', '127.0.0.1'],
      selfSigned: true,
      expired: false,
      matchesServername: true,
    });
    expect(new Date(info.certificate!.validTo).getTime()).toBeGreaterThan(now);
    // The name went as SNI although the connection went to the address.
    expect(fresh.servernames).toEqual(['localhost']);

    const old = await started(tlsServer(selfSignedCertificate('old.test', new Date('2020-01-01T00:00:00Z'), new Date('2021-01-01T00:00:00Z'))));
    const expired = await tlsInfo('127.0.0.1', old.port, { servername: 'app.test', timeoutMs: 2000 });
    expect(expired).toMatchObject({ state: 'tls', certificate: { expired: true, selfSigned: true, matchesServername: false, validTo: '2021-01-01T00:00:00.000Z' } });

    const plain = await started(httpServer(nginx));
    const notTls = await tlsInfo('127.0.0.1', plain.port, { timeoutMs: 2000 });
    expect(notTls).toMatchObject({ state: 'not_tls' });
    const silent = await started(silentServer());
    const t0 = performance.now();
    expect(await tlsInfo('127.0.0.1', silent.port, { timeoutMs: 300 })).toMatchObject({ state: 'not_tls', error: 'ETIMEDOUT' });
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(await tlsInfo('127.0.0.1', await freePort(), { timeoutMs: 1000 })).toMatchObject({ state: 'closed' });
  });

  it('reads HTTP banners with bounded bytes and follows no redirect', async () => {
    const server = await started(httpServer(nginx));
    const url = `http://localhost:${server.port}/version`;
    const banner = await httpBanner(url, { address: '127.0.0.1', timeoutMs: 2000 });
    expect(banner).toMatchObject({ outcome: 'response', status: 200, server: 'nginx/1.18.0', poweredBy: 'PHP/5.3.12', body: '{"version":"1.18.0"}', bodyTruncated: false, remoteAddress: '127.0.0.1' });
    expect(server.requests.at(-1)).toEqual({ url: '/version', host: `localhost:${server.port}` });

    const big = await httpBanner(`http://127.0.0.1:${server.port}/big`, { maxBytes: 1000, timeoutMs: 2000 });
    expect(big).toMatchObject({ outcome: 'response', bodyTruncated: true });
    expect(big.outcome === 'response' && big.body.length).toBe(1000);

    const before = server.requests.length;
    const moved = await httpBanner(`http://127.0.0.1:${server.port}/moved`, { timeoutMs: 2000 });
    expect(moved).toMatchObject({ outcome: 'response', status: 302, location: 'http://127.0.0.1:1/elsewhere' });
    expect(server.requests.length).toBe(before + 1);

    const silent = await started(silentServer());
    const t0 = performance.now();
    expect(await httpBanner(`http://127.0.0.1:${silent.port}/`, { timeoutMs: 300 })).toMatchObject({ outcome: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(await httpBanner(`http://127.0.0.1:${await freePort()}/`, { timeoutMs: 1000 })).toMatchObject({ outcome: 'refused' });
    await expect(httpBanner('ftp://127.0.0.1/', {})).rejects.toThrow(/http or https only/);
  });

  it('reads the first line a service sends, bounded', async () => {
    const ssh = await started(bannerServer('SSH-2.0-OpenSSH_7.4\r\nmore that is never read\r\n'));
    expect(await serviceBanner('127.0.0.1', ssh.port, { timeoutMs: 2000 })).toMatchObject({ state: 'banner', line: 'SSH-2.0-OpenSSH_7.4', truncated: false });
    const chatty = await started(bannerServer('A'.repeat(10_000)));
    const long = await serviceBanner('127.0.0.1', chatty.port, { maxBytes: 64, timeoutMs: 2000 });
    expect(long).toMatchObject({ state: 'banner', truncated: true });
    expect(long.state === 'banner' && long.line.length).toBe(64);
    const silent = await started(silentServer());
    const t0 = performance.now();
    expect(await serviceBanner('127.0.0.1', silent.port, { waitMs: 200, timeoutMs: 2000 })).toMatchObject({ state: 'silent' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await serviceBanner('127.0.0.1', await freePort(), { timeoutMs: 1000 })).toMatchObject({ state: 'closed' });
  });
});

describe('banner versions', () => {
  it.each([
    ['nginx', '1.18.0', ['nginx/1.18.0'], 'same', '1.18.0'],
    ['nginx', '1.18.0', ['nginx/1.25.3'], 'different', '1.25.3'],
    ['nginx', '1.18.0', ['nginx/1.18.0 (Ubuntu)'], 'same', '1.18.0'],
    ['nginx', '1.18.0', ['nginx'], 'unknown', undefined],
    ['nginx', '1.18.0', ['cloudflare'], 'unknown', undefined],
    ['openssh', '7.4', ['SSH-2.0-OpenSSH_7.4'], 'same', '7.4'],
    ['openssh', '7.4', ['SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7'], 'same', '7.4p1'],
    ['openssh-server', '1:7.4p1-21+deb9u1', ['SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7'], 'same', '7.4p1'],
    ['openssh', '7.4p1', ['SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5'], 'different', '8.2p1'],
    ['openssh', '7.4', ['SSH-2.0-dropbear_2019.78'], 'unknown', undefined],
    ['apache httpd', '2.4.49', ['Apache/2.4.49 (Unix)'], 'same', '2.4.49'],
    ['httpd', '2.4.49', ['Apache/2.4.51 (Debian)'], 'different', '2.4.51'],
    ['apache httpd', '2.4.49', ['Apache/2.4'], 'unknown', '2.4'],
    ['apache httpd', '2.4.49', ['Apache'], 'unknown', undefined],
    ['apache httpd', '2.4.49', ['Apache-Coyote/1.1'], 'unknown', undefined],
    ['php', '5.3.12', [undefined, 'PHP/5.3.12'], 'same', '5.3.12'],
    ['php', '5.4.16', ['Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips PHP/5.4.16'], 'same', '5.4.16'],
    ['openssl', '1.0.2k', ['Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips PHP/5.4.16'], 'same', '1.0.2k'],
    ['openssl', '1.0.2k', ['Apache/2.4.6 (CentOS) OpenSSL/1.0.2u PHP/5.4.16'], 'different', '1.0.2u'],
    ['php', '7.4.3', ['Express'], 'unknown', undefined],
    ['microsoft-iis', '10.0', ['Microsoft-IIS/10.0'], 'same', '10.0'],
    ['jetty', '9.4.43', ['Jetty(9.4.43.v20210629)'], 'same', '9.4.43.v20210629'],
    ['vsftpd', '2.3.4', ['220 (vsFTPd 3.0.3)'], 'different', '3.0.3'],
    ['exim', '4.92', ['220 mail.example.com ESMTP Exim 4.92 Mon, 07 Dec 2026 10:00:00 +0000'], 'same', '4.92'],
    ['gunicorn', '20.0.4', ['gunicorn/20.0.4'], 'same', '20.0.4'],
    ['caddy', '2.6.4', ['Caddy'], 'unknown', undefined],
    ['traefik', '2.10.4', ['traefik/2.10.5'], 'different', '2.10.5'],
  ] as const)('%s %s against %j is %s', (component, version, banners, result, seenVersion) => {
    const verdict = compareBanner({ component, version }, banners);
    expect(verdict.result).toBe(result);
    expect(verdict.seenVersion).toBe(seenVersion);
  });

  it('says why it cannot tell', () => {
    expect(compareBanner({ component: 'nginx', version: '1.18.0' }, [])).toMatchObject({ result: 'unknown', reason: 'the probe saw no banner' });
    expect(compareBanner({ component: 'nginx', version: '1.18.0' }, ['nginx'])).toMatchObject({ reason: 'the banner names nginx without a version' });
    expect(compareBanner({ component: 'apache httpd', version: '2.4.49' }, 'Apache/2.4')).toMatchObject({ reason: expect.stringContaining('only 2.4') });
    expect(() => compareBanner({ component: 'nginx', version: '' }, 'nginx/1.18.0')).toThrow(/no version for nginx/);
  });
});

describe('compensating controls', () => {
  const segmentation = (ports: string[]): ControlClaim => ({ name: 'dmz-acl', kind: 'segmentation', effect: 'not_exposed', mitigates: { ports } });
  const wafControl: ControlClaim = { name: 'edge-waf', kind: 'waf', effect: 'not_exploitable', mitigates: { cwes: ['CWE-79'] } };

  it('verifies a not-exposed claim from the internet vantage and fails it when a port answers', async () => {
    const open = await started(silentServer());
    const closedPort = await freePort();
    const gate = allowListGate(parseAllowList(['127.0.0.1']));
    const closedOnly = await verifyControl(segmentation([`${closedPort}/tcp`]), { host: '127.0.0.1' }, { vantage: 'internet', gate, timeoutMs: 1000 });
    expect(closedOnly).toMatchObject({ verification: 'verified', detail: { ports: [{ port: `${closedPort}/tcp`, state: 'closed' }] } });

    const failed = await verifyControl(segmentation([`${closedPort}/tcp`, String(open.port)]), { host: '127.0.0.1' }, { vantage: 'internet', gate, timeoutMs: 1000 });
    expect(failed).toMatchObject({ verification: 'failed', detail: { reason: `open from the internet: ${open.port}/tcp` } });
    expect(open.connections).toBe(1);

    const inside = await verifyControl(segmentation([String(open.port)]), { host: '127.0.0.1' }, { vantage: 'internal', gate });
    expect(inside).toMatchObject({ verification: 'unverified', detail: { reason: expect.stringContaining('internal vantage') } });
    const udp = await verifyControl(segmentation([`${closedPort}/tcp`, '161/udp']), { host: '127.0.0.1' }, { vantage: 'internet', gate, timeoutMs: 1000 });
    expect(udp).toMatchObject({ verification: 'unverified', detail: { reason: 'not every port could be probed: 161/udp' } });
    const edr = await verifyControl({ name: 'edr', kind: 'edr', effect: 'not_exploitable', mitigates: {} }, { host: '127.0.0.1' }, { vantage: 'internet', gate });
    expect(edr).toMatchObject({ verification: 'unverified', detail: { reason: 'a edr control cannot be checked from the network' } });
    await expect(verifyControl(segmentation(['http']), { host: '127.0.0.1' }, { vantage: 'internet', gate })).rejects.toThrow(/control dmz-acl: mitigates.ports: "http"/);
    expect(open.connections).toBe(1);
  });

  it('verifies a WAF that blocks the test pattern and fails one that lets it through', async () => {
    const guarded = await started(httpServer(waf));
    const bare = await started(httpServer(nginx));
    const gate = allowListGate(parseAllowList(['127.0.0.1']));
    const verified = await verifyControl(wafControl, { host: '127.0.0.1', url: `http://127.0.0.1:${guarded.port}/` }, { vantage: 'internet', gate, timeoutMs: 2000 });
    expect(verified).toMatchObject({ verification: 'verified', detail: { plain: { status: 200 }, test: { status: 403 } } });
    expect(guarded.requests.map((r) => r.url)).toEqual(['/', `/?${new URLSearchParams({ [WAF_TEST_PARAMETER.name]: WAF_TEST_PARAMETER.value })}`]);

    const failed = await verifyControl(wafControl, { host: '127.0.0.1', url: `http://127.0.0.1:${bare.port}/` }, { vantage: 'internet', gate, timeoutMs: 2000 });
    expect(failed).toMatchObject({ verification: 'failed', detail: { reason: 'the test pattern got through: both requests answered 200' } });
    expect(bare.requests).toHaveLength(2);

    // Outside the allow-list: not contacted, and nothing to conclude.
    const refused = await verifyControl(wafControl, { host: '127.0.0.1', url: `http://127.0.0.1:${bare.port}/` }, { vantage: 'internet', gate: allowListGate(parseAllowList(['127.0.0.2'])) });
    expect(refused).toMatchObject({ verification: 'unverified', detail: { reason: expect.stringContaining('outside allow-list') } });
    expect(bare.requests).toHaveLength(2);
  });
});

describe('runProbes', () => {
  let allowedServer: Counted;
  let otherPort: Counted;
  let otherHost: Counted;
  beforeAll(async () => {
    allowedServer = await started(bannerServer('SSH-2.0-OpenSSH_7.4\r\n'));
    otherPort = await started(bannerServer('SSH-2.0-OpenSSH_7.4\r\n'));
    otherHost = await started(bannerServer('SSH-2.0-OpenSSH_7.4\r\n', 0, '127.0.0.2'));
  });

  it('contacts only what the allow-list names, and returns results in task order', async () => {
    const list = parseAllowList([`127.0.0.1:${allowedServer.port}`, 'rebound.test']);
    const tasks: ProbeTask[] = [
      { id: 'other-host', kind: 'tcp', host: '127.0.0.2', port: otherHost.port },
      { id: 'allowed', kind: 'banner', host: '127.0.0.1', port: allowedServer.port, expect: { component: 'openssh', version: '7.4' } },
      { id: 'other-port', kind: 'tcp', host: '127.0.0.1', port: otherPort.port },
      { id: 'unlisted-name', kind: 'banner', host: 'unlisted.test', port: otherHost.port },
      { id: 'rebound-name', kind: 'banner', host: 'rebound.test', port: otherHost.port },
      { id: 'by-name', kind: 'banner', host: 'app.test', port: allowedServer.port, expect: { component: 'openssh', version: '8.9p1' } },
      { id: 'control-elsewhere', kind: 'control', host: '127.0.0.2', control: { name: 'acl', kind: 'segmentation', effect: 'not_exposed', mitigates: { ports: [`${otherHost.port}/tcp`] } } },
    ];
    const report = await runProbes(tasks, { allowList: list, resolve, vantage: 'internet', connectionsPerSecond: 100, burst: 10, probeTimeoutMs: 2000 });
    expect(report.results.map((r) => r.id)).toEqual(tasks.map((t) => t.id));
    expect(report.results.map((r) => (r.status === 'skipped' ? r.reason : r.status))).toEqual([
      'outside allow-list',
      'done',
      'outside allow-list',
      'outside allow-list',
      'outside allow-list',
      'done',
      'outside allow-list',
    ]);
    expect(report.results[1]).toMatchObject({ reachable: true, result: { state: 'banner', line: 'SSH-2.0-OpenSSH_7.4' }, version: { result: 'same' }, endpoints: [{ address: '127.0.0.1' }] });
    expect(report.results[5]).toMatchObject({ version: { result: 'different', seenVersion: '7.4' }, endpoints: [{ host: 'app.test', address: '127.0.0.1', servername: 'app.test' }] });
    expect(allowedServer.connections).toBe(2);
    expect(otherPort.connections).toBe(0);
    expect(otherHost.connections).toBe(0);
    expect(report.progress).toMatchObject({ total: 7, finished: 7, done: 2, skipped: 5, connections: 2 });
  });

  it('probes IPv6 and names at the resolved address, with the name as Host', async () => {
    const v6 = await started(httpServer(nginx, '::1'));
    const list = parseAllowList([`[::1]:${v6.port}`]);
    const tasks: ProbeTask[] = [
      { id: 'literal', kind: 'http', url: `http://[::1]:${v6.port}/`, expect: { component: 'nginx', version: '1.18.0' } },
      { id: 'named', kind: 'http', url: `http://v6.test:${v6.port}/version`, maxBytes: 8, expect: { component: 'php', version: '5.3.13' } },
      { id: 'other-port', kind: 'http', url: `http://[::1]:${v6.port + 1}/` },
    ];
    const report = await runProbes(tasks, { allowList: list, resolve, connectionsPerSecond: 100, burst: 10 });
    expect(report.results[0]).toMatchObject({ status: 'done', reachable: true, result: { status: 200, server: 'nginx/1.18.0' }, version: { result: 'same', seenVersion: '1.18.0' } });
    expect(report.results[1]).toMatchObject({
      status: 'done',
      result: { body: '{"versio', bodyTruncated: true, remoteAddress: '::1' },
      version: { result: 'different', seenVersion: '5.3.12', banner: 'PHP/5.3.12' },
      endpoints: [{ host: 'v6.test', address: '::1', servername: 'v6.test' }],
    });
    expect(report.results[2]).toMatchObject({ status: 'skipped', reason: 'outside allow-list' });
    expect(v6.requests).toEqual([
      { url: '/', host: `[::1]:${v6.port}` },
      { url: '/version', host: `v6.test:${v6.port}` },
    ]);
    expect(() => validateTasks([{ id: 'huge', kind: 'http', url: 'http://[::1]/', maxBytes: 1e9 }])).toThrow('probe task 0 (huge): maxBytes: 1000000000 is not a whole number from 0 to 1048576');
  });

  it('keeps to the concurrency bound', async () => {
    const slow = await started(bannerServer('SSH-2.0-OpenSSH_9.6\r\n', 120));
    const tasks: ProbeTask[] = Array.from({ length: 9 }, (_, i) => ({ id: `t${i}`, kind: 'banner', host: '127.0.0.1', port: slow.port }));
    const report = await runProbes(tasks, { allowList: parseAllowList(['127.0.0.1']), concurrency: 3, connectionsPerSecond: 1000, burst: 100 });
    expect(report.results.every((r) => r.status === 'done')).toBe(true);
    expect(slow.connections).toBe(9);
    expect(slow.maxActive).toBe(3);
  });

  it('keeps to the connection rate', async () => {
    const server = await started(silentServer());
    const n = 8;
    const rate = 20;
    const tasks: ProbeTask[] = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, kind: 'tcp', host: '127.0.0.1', port: server.port }));
    const report = await runProbes(tasks, { allowList: parseAllowList(['127.0.0.1']), concurrency: n, connectionsPerSecond: rate, burst: 1 });
    expect(report.results.every((r) => r.status === 'done')).toBe(true);
    expect(server.connections).toBe(n);
    const span = server.acceptedAt.at(-1)! - server.acceptedAt[0]!;
    // n connections at `rate` per second with a burst of one take (n - 1) / rate seconds at least.
    // (Accept times are read on this process's event loop, which a busy machine can delay: a margin.)
    expect(span).toBeGreaterThanOrEqual(((n - 1) / rate) * 1000 * 0.8);
  });

  it('times out a task, skips what the budget leaves, and reports progress', async () => {
    const slow = await started(bannerServer('SSH-2.0-OpenSSH_9.6\r\n', 150));
    const list = parseAllowList(['127.0.0.1']);
    // One connection per second: the second task waits for its token past its own deadline.
    const waiting = await runProbes(
      [
        { id: 'first', kind: 'tcp', host: '127.0.0.1', port: slow.port },
        { id: 'second', kind: 'tcp', host: '127.0.0.1', port: slow.port },
      ],
      { allowList: list, concurrency: 2, connectionsPerSecond: 1, taskTimeoutMs: 300 },
    );
    expect(waiting.results.map((r) => r.status)).toEqual(['done', 'timeout']);
    expect(slow.connections).toBe(1);

    const beats: RunProgress[] = [];
    const tasks: ProbeTask[] = Array.from({ length: 6 }, (_, i) => ({ id: `b${i}`, kind: 'banner', host: '127.0.0.1', port: slow.port }));
    const report = await runProbes(tasks, { allowList: list, concurrency: 1, budgetMs: 600, heartbeat: (p) => beats.push(p), heartbeatIntervalMs: 50, connectionsPerSecond: 100 });
    const statuses = report.results.map((r) => (r.status === 'skipped' ? r.reason : r.status));
    expect(statuses.slice(0, 2)).toEqual(['done', 'done']);
    expect(statuses.at(-1)).toBe('budget exhausted');
    expect(statuses.filter((s) => s === 'done').length).toBeLessThanOrEqual(4);
    expect(beats.length).toBeGreaterThanOrEqual(6);
    expect(beats.at(-1)).toMatchObject({ total: 6, finished: 6 });
    for (let i = 1; i < beats.length; i++) expect(beats[i]!.finished).toBeGreaterThanOrEqual(beats[i - 1]!.finished);
  });

  it('cancels cleanly: sockets are destroyed and the rest is not started', async () => {
    const silent = await started(silentServer());
    const controller = new AbortController();
    const tasks: ProbeTask[] = Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, kind: 'http', url: `http://127.0.0.1:${silent.port}/` }));
    const t0 = performance.now();
    setTimeout(() => controller.abort(new Error('activity cancelled')), 200);
    const report = await runProbes(tasks, { allowList: parseAllowList(['127.0.0.1']), concurrency: 2, probeTimeoutMs: 10_000, signal: controller.signal, connectionsPerSecond: 100, burst: 10 });
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(report.cancelled).toBe(true);
    expect(report.results.every((r) => r.status === 'skipped' && r.reason === 'cancelled')).toBe(true);
    expect(silent.connections).toBe(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(silent.open).toBe(0);
  });

  it('stops when the heartbeat throws, and refuses bad tasks before probing anything', async () => {
    const server = await started(bannerServer('SSH-2.0-OpenSSH_9.6\r\n', 100));
    const tasks: ProbeTask[] = Array.from({ length: 4 }, (_, i) => ({ id: `h${i}`, kind: 'banner', host: '127.0.0.1', port: server.port }));
    await expect(
      runProbes(tasks, {
        allowList: parseAllowList(['127.0.0.1']),
        concurrency: 1,
        heartbeat: () => {
          throw new Error('heartbeat failed');
        },
      }),
    ).rejects.toThrow('heartbeat failed');
    expect(server.connections).toBe(1);

    expect(() => validateTasks([{ id: 'a', kind: 'tcp', host: '127.0.0.1', port: 70000 }])).toThrow('probe task 0 (a): port: 70000 is not 1-65535');
    expect(() =>
      validateTasks([
        { id: 'a', kind: 'tcp', host: '127.0.0.1', port: 1 },
        { id: 'a', kind: 'tcp', host: '127.0.0.1', port: 2 },
      ]),
    ).toThrow('probe task 1 (a): id: used by an earlier task');
    expect(() => validateTasks([{ id: 'u', kind: 'http', url: 'http://user:pw@127.0.0.1/' }])).toThrow(/must not carry credentials/);
    await expect(runProbes([{ id: 'x', kind: 'udp' } as unknown as ProbeTask], { allowList: parseAllowList([]) })).rejects.toThrow(/kind: "udp" is not one of/);
  });
});
