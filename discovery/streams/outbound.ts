import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

// What the platform fetches on a configured URL (a pulled report, a feed): http(s) only, never a
// link-local or unspecified address (a cloud's metadata service answers on 169.254.169.254 with the
// machine's credentials), redirects followed by hand so each hop is checked, and the configured
// headers (credentials) sent only to the origin they were configured for. Private networks stay
// reachable: scanners and registries usually live there.

const FORBIDDEN = new BlockList();
FORBIDDEN.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local, cloud metadata
FORBIDDEN.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network"
FORBIDDEN.addSubnet('224.0.0.0', 4, 'ipv4'); // multicast
FORBIDDEN.addSubnet('fe80::', 10, 'ipv6'); // link-local
FORBIDDEN.addAddress('::', 'ipv6');
FORBIDDEN.addSubnet('ff00::', 8, 'ipv6'); // multicast
FORBIDDEN.addSubnet('::ffff:169.254.0.0', 112, 'ipv6'); // link-local written as IPv4-mapped
FORBIDDEN.addSubnet('fd00:ec2::', 32, 'ipv6'); // AWS's IPv6 metadata endpoint (fd00:ec2::254)

const MAX_REDIRECTS = 5;

/** A URL the platform will not fetch, with the reason. */
export class RefusedUrlError extends Error {
  constructor(where: string, reason: string) {
    super(`${where}: ${reason}`);
    this.name = 'RefusedUrlError';
  }
}

/** Why `url` may not be configured as a source or feed URL, or undefined when it may. */
export function urlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `only http and https URLs are fetched, not ${u.protocol}`;
  if (u.username || u.password) return 'credentials belong in headers, not in the URL';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && FORBIDDEN.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4')) return `address ${host} is link-local, multicast or unspecified`;
  return undefined;
}

async function checkHost(u: URL, where: string): Promise<void> {
  const problem = urlProblem(u.href);
  if (problem) throw new RefusedUrlError(where, problem);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return;
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await lookup(host, { all: true });
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  const bad = addresses.find((a) => FORBIDDEN.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
  if (bad) throw new RefusedUrlError(where, `${host} resolves to ${bad.address}, a link-local, multicast or unspecified address`);
}

/**
 * GET with the checks above. `where` names the URL in errors (redacted by the caller). Returns the
 * final response; the caller reads or cancels its body.
 */
export async function guardedGet(url: string, { headers = {}, signal, where }: { headers?: Record<string, string>; signal?: AbortSignal; where: string }): Promise<Response> {
  let current = new URL(url);
  const origin = current.origin;
  for (let hop = 0; ; hop++) {
    await checkHost(current, where);
    const res = await fetch(current, { headers: current.origin === origin ? headers : {}, redirect: 'manual', ...(signal ? { signal } : {}) });
    const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
    if (!location) return res;
    await res.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new RefusedUrlError(where, `more than ${MAX_REDIRECTS} redirects`);
    current = new URL(location, current);
  }
}
