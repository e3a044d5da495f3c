import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

// The allow-list is the only thing that lets a probe leave the platform: nothing outside it is
// ever contacted. Entries:
//   203.0.113.7            one IPv4 address        2001:db8::7          one IPv6 address
//   203.0.113.0/24         an IPv4 CIDR            2001:db8::/48        an IPv6 CIDR
//   app.example.com        one host name           *.example.com        any name below example.com
//                                                                       (not example.com itself)
// Any entry may be narrowed to ports with a `:` suffix: `app.example.com:443,8443`,
// `203.0.113.0/24:8000-8100`, and for IPv6 in brackets: `[2001:db8::7]:443`, `[2001:db8::/48]:22`.
// Without a suffix every port is allowed.
//
// How a host name target is decided (the name is resolved once, and the probe connects to the
// address this returns, with the name as TLS SNI / HTTP Host, so DNS cannot move the probe later):
// - every address it resolves to is listed: allowed;
// - the name is listed (exactly or by wildcard): allowed when every address it resolves to is
//   either listed or publicly routable. A listed name that resolves to a private, loopback,
//   link-local (cloud metadata), shared or reserved address that is not itself listed is refused,
//   so a listed name cannot point a probe into the platform's own network;
// - otherwise refused. A name that does not resolve (or not in time) is refused.

export interface PortRange {
  from: number;
  to: number;
}

export type AllowEntry =
  | { kind: 'address'; entry: string; family: 'ipv4' | 'ipv6'; network: string; prefix: number; ports?: PortRange[] }
  | { kind: 'name'; entry: string; name: string; ports?: PortRange[] }
  | { kind: 'wildcard'; entry: string; suffix: string; ports?: PortRange[] };

export interface AllowList {
  readonly entries: readonly AllowEntry[];
}

/** An allow-list entry that cannot be read, with the entry and why. */
export class AllowListError extends Error {
  constructor(
    readonly entry: string,
    readonly index: number,
    readonly reason: string,
  ) {
    super(`allow-list entry ${index + 1} "${entry}": ${reason}`);
    this.name = 'AllowListError';
  }
}

/** Parses the entries; throws AllowListError naming the first bad one. An empty list allows nothing. */
export function parseAllowList(entries: readonly string[]): AllowList {
  if (!Array.isArray(entries)) throw new TypeError('allow-list: expected an array of strings');
  return { entries: entries.map((raw, index) => parseEntry(raw, index)) };
}

function parseEntry(raw: unknown, index: number): AllowEntry {
  if (typeof raw !== 'string') throw new AllowListError(String(raw), index, 'not a string');
  const entry = raw.trim();
  const fail = (reason: string): never => {
    throw new AllowListError(raw, index, reason);
  };
  if (!entry) fail('empty');
  let body = entry;
  let portSpec: string | undefined;
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) fail('"[" without a closing "]"');
    const rest = body.slice(close + 1);
    if (rest && !rest.startsWith(':')) fail(`unexpected "${rest}" after "]" (a port list starts with ":")`);
    portSpec = rest ? rest.slice(1) : undefined;
    body = body.slice(1, close);
    if (!body.includes(':')) fail('brackets are for IPv6 addresses only');
  } else if ((body.match(/:/g) ?? []).length === 1) {
    [body, portSpec] = body.split(':') as [string, string];
  }
  const ports = portSpec === undefined ? undefined : parsePorts(portSpec, fail);

  const slash = body.indexOf('/');
  const address = slash < 0 ? body : body.slice(0, slash);
  const family = isIP(address);
  if (family) {
    const max = family === 4 ? 32 : 128;
    let prefix = max;
    if (slash >= 0) {
      const text = body.slice(slash + 1);
      if (!/^\d{1,3}$/.test(text) || Number(text) > max) fail(`prefix length "${text}" is not a number from 0 to ${max}`);
      prefix = Number(text);
    }
    const network = normalizeAddress(address);
    if (family === 6 && isIP(network) === 4) {
      // An IPv4-mapped IPv6 entry (::ffff:192.0.2.0/120) is the IPv4 range it maps.
      if (prefix < 96) fail('an IPv4-mapped IPv6 prefix must be /96 or longer');
      return { kind: 'address', entry, family: 'ipv4', network, prefix: prefix - 96, ...(ports && { ports }) };
    }
    return { kind: 'address', entry, family: family === 4 ? 'ipv4' : 'ipv6', network, prefix, ...(ports && { ports }) };
  }
  if (slash >= 0) fail(`"${address}" is not an IP address, so it cannot take a prefix length`);
  if (/^[\d.]+$/.test(body)) fail('not a valid IPv4 address');
  if (body.includes(':')) fail('not a valid IPv6 address (put a port list after brackets: [2001:db8::1]:443)');
  const name = body.toLowerCase().replace(/\.$/, '');
  if (name.startsWith('*.')) {
    const suffix = name.slice(2);
    const problem = hostNameProblem(suffix);
    if (problem) fail(problem);
    // `*.com` would open a whole top-level domain: require a registrable-looking name under it.
    if (!suffix.includes('.')) fail('a wildcard needs at least two labels after "*." (e.g. *.example.com)');
    return { kind: 'wildcard', entry, suffix, ...(ports && { ports }) };
  }
  if (name.includes('*')) fail('"*" is only allowed as the whole first label ("*.example.com")');
  const problem = hostNameProblem(name);
  if (problem) fail(problem);
  return { kind: 'name', entry, name, ...(ports && { ports }) };
}

function parsePorts(spec: string, fail: (reason: string) => never): PortRange[] {
  if (!spec) fail('empty port list after ":"');
  return spec.split(',').map((part) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part.trim());
    if (!m) fail(`port "${part}" is not a number or a range like 8000-8100`);
    const from = Number(m![1]);
    const to = m![2] === undefined ? from : Number(m![2]);
    if (from < 1 || to > 65535 || from > to) fail(`port "${part}" is outside 1-65535 or a reversed range`);
    return { from, to };
  });
}

function hostNameProblem(name: string): string | undefined {
  if (name.length > 253) return 'host name longer than 253 characters';
  for (const label of name.split('.')) {
    if (!label) return 'host name has an empty label';
    if (label.length > 63) return `label "${label}" is longer than 63 characters`;
    if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(label)) return `label "${label}" is not letters, digits and inner hyphens`;
  }
  if (/^\d+$/.test(name.split('.').at(-1)!)) return 'host name ends in a numeric label (an IP address?)';
  return undefined;
}

/** `::ffff:192.0.2.1` is the IPv4 host; everything else as written, lower case. */
function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

function portAllowed(ports: PortRange[] | undefined, port: number | undefined): boolean {
  if (!ports) return true;
  // Without a port the question is "any port at all", which a port-narrowed entry does not grant.
  if (port === undefined) return false;
  return ports.some((r) => port >= r.from && port <= r.to);
}

function addressListed(list: AllowList, address: string, port: number | undefined): string | undefined {
  const ip = normalizeAddress(address);
  const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
  for (const e of list.entries) {
    if (e.kind !== 'address' || e.family !== family || !portAllowed(e.ports, port)) continue;
    const block = new BlockList();
    block.addSubnet(e.network, e.prefix, e.family);
    if (block.check(ip, family)) return e.entry;
  }
  return undefined;
}

function nameListed(list: AllowList, name: string, port: number | undefined): string | undefined {
  for (const e of list.entries) {
    if (!portAllowed(e.ports, port)) continue;
    if (e.kind === 'name' && e.name === name) return e.entry;
    if (e.kind === 'wildcard' && name.endsWith(`.${e.suffix}`)) return e.entry;
  }
  return undefined;
}

// IANA special-purpose ranges (RFC 6890 and successors): never reachable "from the internet", so a
// listed name must not lead a probe there unless the address is listed too.
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7],
  ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) NON_PUBLIC.addSubnet(net, prefix, 'ipv6');

/** Whether an address is globally routable (not private, loopback, link-local, shared, documentation or reserved). */
export function isPublicAddress(address: string): boolean {
  const ip = normalizeAddress(address);
  const family = isIP(ip);
  if (!family) return false;
  return !NON_PUBLIC.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export interface AllowTarget {
  /** A host name or an IP address. */
  host: string;
  /** The port the probe will connect to; without it only entries that allow every port count. */
  port?: number;
}

export type AllowDecision =
  | {
      allowed: true;
      /** The target as asked. */
      host: string;
      /** The address to connect to (resolved once; connect to this, never to the name). */
      address: string;
      family: 4 | 6;
      /** The host name to send as TLS SNI and HTTP Host; absent for an IP target. */
      servername?: string;
      /** The entries that allowed it. */
      matched: string[];
    }
  | { allowed: false; host: string; reason: string; addresses?: string[] };

export type Resolver = (name: string, signal: AbortSignal) => Promise<string[]>;

export interface AllowOptions {
  /** How long a name may take to resolve (default 2 s). */
  dnsTimeoutMs?: number;
  /** Resolves a name to its addresses; the system resolver (getaddrinfo, hosts file included) by default. */
  resolve?: Resolver;
  signal?: AbortSignal;
}

const systemResolver: Resolver = async (name) => (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Decides whether a probe may contact a target, and at which address. Idempotent for an IP target;
 * for a name it resolves again each call, so call it right before connecting and connect to
 * `address`.
 */
export async function allowed(list: AllowList, target: AllowTarget | string, options: AllowOptions = {}): Promise<AllowDecision> {
  const { host, port } = typeof target === 'string' ? { host: target, port: undefined } : target;
  const deny = (reason: string, addresses?: string[]): AllowDecision => ({ allowed: false, host, reason, ...(addresses && { addresses }) });
  if (list.entries.length === 0) return deny('the allow-list is empty');
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) return deny(`port ${port} is not 1-65535`);
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family) {
    const entry = addressListed(list, bare, port);
    if (!entry) return deny(`${bare}${port ? ` port ${port}` : ''} is not in the allow-list`);
    const address = normalizeAddress(bare);
    return { allowed: true, host, address, family: isIP(address) as 4 | 6, matched: [entry] };
  }
  const name = bare.toLowerCase().replace(/\.$/, '');
  const problem = hostNameProblem(name);
  if (problem) return deny(`"${host}" is not a host name or IP address: ${problem}`);

  const timeoutMs = options.dnsTimeoutMs ?? 2000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let addresses: string[];
  try {
    addresses = await raceAbort((options.resolve ?? systemResolver)(name, signal), signal);
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    return deny(timeout.aborted ? `${name} did not resolve within ${timeoutMs} ms` : `${name} did not resolve: ${(err as Error).message}`);
  }
  addresses = [...new Set(addresses.map(normalizeAddress))];
  if (addresses.length === 0) return deny(`${name} resolved to no address`);

  const byName = nameListed(list, name, port);
  const matched = new Set<string>(byName ? [byName] : []);
  for (const address of addresses) {
    const entry = addressListed(list, address, port);
    if (entry) matched.add(entry);
    else if (!byName) return deny(`${name} resolves to ${address}, which is not in the allow-list${port ? ` for port ${port}` : ''}`, addresses);
    else if (!isPublicAddress(address)) {
      return deny(`${name} is listed but resolves to ${address}, a non-public address that is not itself in the allow-list`, addresses);
    }
  }
  const address = addresses[0]!;
  return { allowed: true, host, address, family: isIP(address) as 4 | 6, servername: name, matched: [...matched] };
}

// getaddrinfo cannot be cancelled; stop waiting for it instead.
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

/** A target the allow-list refused; nothing was sent to it. */
export class OutsideAllowListError extends Error {
  constructor(readonly decision: Extract<AllowDecision, { allowed: false }>) {
    super(`outside allow-list: ${decision.reason}`);
    this.name = 'OutsideAllowListError';
  }
}

/** Where a probe may connect for one host and port: the address to dial and the name for SNI / Host. */
export interface Endpoint {
  host: string;
  port: number;
  address: string;
  servername?: string;
}

/**
 * Asked right before every connection a probe opens; resolves to where to connect or rejects with
 * OutsideAllowListError. Probes never dial a host they did not get from a gate.
 */
export type Gate = (host: string, port: number, signal?: AbortSignal) => Promise<Endpoint>;

/** The gate of an allow-list alone (run.ts adds rate limiting and counting around it). */
export function allowListGate(list: AllowList, options: Omit<AllowOptions, 'signal'> = {}): Gate {
  return async (host, port, signal) => {
    const decision = await allowed(list, { host, port }, { ...options, ...(signal && { signal }) });
    if (!decision.allowed) throw new OutsideAllowListError(decision);
    return { host, port, address: decision.address, ...(decision.servername && { servername: decision.servername }) };
  };
}
