import { OutsideAllowListError, type Gate } from './allow-list.js';
import { httpBanner, tcpConnect, type HttpBanner, type TcpResult } from './checks.js';

// A compensating control claims something a probe can sometimes check:
// - a control with effect `not_exposed` that names ports (segmentation, a firewall rule) claims the
//   ports do not answer from the internet: from an `internet` vantage, every listed TCP port closed
//   or filtered verifies it and any open one fails it;
// - a WAF claims it blocks attacks: one request carrying a harmless, universally known test
//   pattern (a script tag in a query parameter: reflected, it runs nowhere; it reads and changes
//   nothing on the server, unlike a path-traversal string) must be blocked while the same request
//   without it is answered.
// Anything else (EDR, a disabled feature) is `unverified`: no probe can tell.
// The result is what `compensating_controls.verification` / `verification_detail` store.

export interface ControlClaim {
  name: string;
  kind: 'waf' | 'segmentation' | 'edr' | 'feature_disabled' | 'other';
  effect: 'not_exposed' | 'not_exploitable';
  mitigates: { issueIds?: string[]; cwes?: string[]; components?: string[]; ports?: string[] };
}

export interface ControlTarget {
  /** The protected asset's host name or address. */
  host: string;
  /** The protected application's URL, for a WAF (default `https://<host>/`). */
  url?: string;
}

export interface ControlProbeOptions {
  /** Where the probes run from, as the caller knows it; only `internet` can verify `not_exposed`. */
  vantage: string;
  /** Checks the allow-list before every connection (allowListGate, or run.ts's gate). */
  gate: Gate;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type Verification = 'verified' | 'failed' | 'unverified';

export interface ControlVerification {
  verification: Verification;
  detail: Record<string, unknown> & { reason: string };
}

/** The harmless pattern any WAF's default rules block (OWASP CRS 941100 and its peers). */
export const WAF_TEST_PARAMETER = { name: 'q', value: '<script>alert(1)</script>' } as const;
/** Statuses WAFs answer a blocked request with (forbidden, not acceptable, rate limited, not implemented). */
export const WAF_BLOCK_STATUSES: readonly number[] = [403, 406, 429, 501];
/** A range like `8000-8100/tcp` is probed port by port up to this many ports. */
const MAX_PORTS = 32;

export async function verifyControl(control: ControlClaim, target: ControlTarget, options: ControlProbeOptions): Promise<ControlVerification> {
  if (!target?.host?.trim()) throw new TypeError(`control ${control?.name}: target.host is required`);
  if (control.kind === 'waf') return verifyWaf(control, target, options);
  if (control.effect === 'not_exposed' && control.mitigates?.ports?.length) return verifyNotExposed(control, target, options);
  return unverified(control, {
    reason:
      control.effect === 'not_exposed'
        ? 'the control names no ports, so no probe can check that nothing answers'
        : `a ${control.kind} control cannot be checked from the network`,
  });
}

function unverified(control: ControlClaim, detail: Record<string, unknown> & { reason: string }): ControlVerification {
  return { verification: 'unverified', detail: { control: control.name, kind: control.kind, ...detail } };
}

interface PortSpec {
  port: number;
  protocol: string;
}

function parsePorts(control: ControlClaim): PortSpec[] {
  const out: PortSpec[] = [];
  for (const raw of control.mitigates.ports ?? []) {
    const m = /^\s*(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?\s*$/i.exec(raw);
    if (!m) throw new TypeError(`control ${control.name}: mitigates.ports: "${raw}" is not a port like 443/tcp or 8000-8010/tcp`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535 || from > to) throw new TypeError(`control ${control.name}: mitigates.ports: "${raw}" is outside 1-65535`);
    if (to - from + 1 > MAX_PORTS) throw new TypeError(`control ${control.name}: mitigates.ports: "${raw}" spans more than ${MAX_PORTS} ports`);
    for (let port = from; port <= to; port++) out.push({ port, protocol: (m[3] ?? 'tcp').toLowerCase() });
  }
  return out;
}

async function verifyNotExposed(control: ControlClaim, target: ControlTarget, options: ControlProbeOptions): Promise<ControlVerification> {
  const ports = parsePorts(control);
  const base = { control: control.name, kind: control.kind, host: target.host, vantage: options.vantage };
  if (options.vantage !== 'internet') {
    return unverified(control, { ...base, reason: `probes run from the ${options.vantage} vantage; a closed port there says nothing about the internet` });
  }
  const results: Array<{ port: string } & (TcpResult | { state: 'not_probed'; reason: string })> = [];
  for (const { port, protocol } of ports) {
    const label = `${port}/${protocol}`;
    if (protocol !== 'tcp') {
      results.push({ port: label, state: 'not_probed', reason: `${protocol} cannot be probed without sending application data` });
      continue;
    }
    let endpoint;
    try {
      endpoint = await options.gate(target.host, port, options.signal);
    } catch (err) {
      if (!(err instanceof OutsideAllowListError)) throw err;
      results.push({ port: label, state: 'not_probed', reason: err.message });
      continue;
    }
    results.push({ port: label, ...(await tcpConnect(endpoint.address, port, probeOptions(options))) });
  }
  const open = results.filter((r) => r.state === 'open').map((r) => r.port);
  const unclear = results.filter((r) => r.state !== 'open' && r.state !== 'closed' && r.state !== 'filtered');
  if (open.length) return { verification: 'failed', detail: { ...base, reason: `open from the internet: ${open.join(', ')}`, ports: results } };
  if (unclear.length) {
    return unverified(control, { ...base, reason: `not every port could be probed: ${unclear.map((r) => r.port).join(', ')}`, ports: results });
  }
  return { verification: 'verified', detail: { ...base, reason: `closed or filtered from the internet: ${results.map((r) => r.port).join(', ')}`, ports: results } };
}

async function verifyWaf(control: ControlClaim, target: ControlTarget, options: ControlProbeOptions): Promise<ControlVerification> {
  const plainUrl = new URL(target.url ?? `https://${target.host.includes(':') ? `[${target.host}]` : target.host}/`);
  const testUrl = new URL(plainUrl);
  testUrl.searchParams.append(WAF_TEST_PARAMETER.name, WAF_TEST_PARAMETER.value);
  const base = { control: control.name, kind: control.kind, url: plainUrl.href, vantage: options.vantage, pattern: `${WAF_TEST_PARAMETER.name}=${WAF_TEST_PARAMETER.value}` };

  const port = Number(plainUrl.port || (plainUrl.protocol === 'https:' ? 443 : 80));
  let address: string;
  try {
    address = (await options.gate(plainUrl.hostname.replace(/^\[|\]$/g, ''), port, options.signal)).address;
  } catch (err) {
    if (!(err instanceof OutsideAllowListError)) throw err;
    return unverified(control, { ...base, reason: err.message });
  }
  const plain = await httpBanner(plainUrl, { ...probeOptions(options), address, maxBytes: 0 });
  if (plain.outcome !== 'response' || WAF_BLOCK_STATUSES.includes(plain.status)) {
    return unverified(control, { ...base, reason: 'the plain request was not answered normally, so a block would prove nothing', plain: summary(plain) });
  }
  const plainStatus = plain.status;
  // A second connection: the gate is asked again (a name may have moved; the rate limit counts it).
  const again = await options.gate(plainUrl.hostname.replace(/^\[|\]$/g, ''), port, options.signal).catch((err: unknown) => err);
  if (again instanceof OutsideAllowListError) return unverified(control, { ...base, reason: again.message, plain: summary(plain) });
  if (again instanceof Error) throw again;
  const test = await httpBanner(testUrl, { ...probeOptions(options), address: (again as { address: string }).address, maxBytes: 0 });
  const detail = { ...base, plain: summary(plain), test: summary(test) };
  const blockedBy = test.outcome === 'reset' ? 'connection reset' : test.outcome === 'response' && WAF_BLOCK_STATUSES.includes(test.status) ? String(test.status) : undefined;
  if (blockedBy) {
    return { verification: 'verified', detail: { ...detail, reason: `the test pattern was blocked (${blockedBy}) while the plain request got ${plainStatus}` } };
  }
  if (test.outcome === 'response' && test.status === plain.status) {
    return { verification: 'failed', detail: { ...detail, reason: `the test pattern got through: both requests answered ${plain.status}` } };
  }
  return unverified(control, {
    ...detail,
    reason: test.outcome === 'response' ? `the test pattern got ${test.status}, neither a block nor the plain answer ${plainStatus}` : `the test request ended in ${test.outcome}`,
  });
}

function summary(result: HttpBanner): Record<string, unknown> {
  return result.outcome === 'response'
    ? { status: result.status, ...(result.server && { server: result.server }), latencyMs: result.latencyMs }
    : { outcome: result.outcome, error: result.error, latencyMs: result.latencyMs };
}

function probeOptions(options: ControlProbeOptions) {
  return { ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }), ...(options.signal && { signal: options.signal }) };
}
