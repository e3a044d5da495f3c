import { isIP } from 'node:net';
import type { ContextSource } from '../index.js';
import type { ContextRecord, NetworkFlow } from '../model.js';
import type { JsonEvent, JsonPath } from '../../streams/json.js';
import { isObject, type Json } from '../../connectors/common/json.js';
import { uniq } from '../common.js';
import { isArrayOrNull, jsonStart } from '../../connectors/shared/json-report.js';
import { jsonContextRecords, type PathFail as Fail } from '../parse-frame.js';

// A declared network-segment policy, our own JSON: named segments (CIDR blocks) and the flows a
// firewall allows between them. `{"segments": [{"name", "cidrs"}], "flows": [{"from", "to",
// "ports", "description"?}]}`. Segments and flows stream; flows are checked against the segments
// once the document has been read, so either list may come first. Nothing is yielded before the
// whole document is valid.

const SOURCE = 'network-segments';

/** The source of a flow from outside every segment; not a segment name. */
export const INTERNET_SEGMENT = 'internet';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PORT = /^([0-9]{1,5})(?:-([0-9]{1,5}))?\/(tcp|udp)$/;

/** `10.20.1.0/24` or `fd00::/64`, normalised (lower case); null with the reason it is not one. */
export function parseCidr(raw: string): { cidr: string } | { error: string } {
  const m = /^([^/\s]+)\/([0-9]{1,3})$/.exec(raw.trim());
  if (!m) return { error: `${JSON.stringify(raw)} is not a CIDR (address/prefix, e.g. 10.20.1.0/24)` };
  const address = m[1]!.toLowerCase();
  const family = isIP(address);
  const prefix = Number(m[2]);
  if (family === 0) return { error: `${JSON.stringify(raw)}: ${address} is not an IP address` };
  const bits = family === 4 ? 32 : 128;
  if (prefix > bits) return { error: `${JSON.stringify(raw)}: prefix /${prefix} is longer than ${bits} bits` };
  // Host bits set (10.20.1.5/24) is usually a typo for another block: refused, not guessed.
  const value = family === 4 ? ipv4Value(address) : ipv6Value(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) return { error: `${JSON.stringify(raw)} has host bits set beyond /${prefix}` };
  return { cidr: `${address}/${prefix}` };
}

const ipv4Value = (a: string): bigint => a.split('.').reduce((v, o) => (v << 8n) | BigInt(Number(o)), 0n);

function ipv6Value(a: string): bigint {
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  let text = a;
  if (v4) {
    const n = ipv4Value(v4[1]!);
    text = a.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** `443/tcp`, `8000-8100/tcp` or `all`, lower-cased; null when it is none of them. */
export function parsePort(raw: string): string | null {
  const v = raw.trim().toLowerCase();
  if (v === 'all') return v;
  const m = PORT.exec(v);
  if (!m) return null;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to) return null;
  return from === to ? `${from}/${m[3]}` : `${from}-${to}/${m[3]}`;
}

interface Segment {
  cidrs: string[];
}

interface DeclaredFlow {
  path: JsonPath;
  from: string;
  to: string;
  ports: string[];
  description?: string;
}

function segmentOf(value: unknown, path: JsonPath, fail: Fail): [string, Segment] {
  if (!isObject(value)) fail(path, 'expected an object {"name": ..., "cidrs": [...]}');
  const s = value as Json;
  if (typeof s.name !== 'string' || !NAME.test(s.name)) fail([...path, 'name'], `${JSON.stringify(s.name)} is not a segment name (letters, digits, _ . -)`);
  const name = s.name as string;
  if (name.toLowerCase() === INTERNET_SEGMENT) fail([...path, 'name'], `"${INTERNET_SEGMENT}" is reserved for flows from outside every segment`);
  if (!Array.isArray(s.cidrs) || s.cidrs.length === 0) fail([...path, 'cidrs'], 'expected a non-empty array of CIDRs');
  const cidrs = (s.cidrs as unknown[]).map((c, i) => {
    if (typeof c !== 'string') fail([...path, 'cidrs', i], `${JSON.stringify(c)} is not a CIDR string`);
    const parsed = parseCidr(c as string);
    if ('error' in parsed) fail([...path, 'cidrs', i], parsed.error);
    return (parsed as { cidr: string }).cidr;
  });
  return [name, { cidrs: uniq(cidrs) }];
}

function flowOf(value: unknown, path: JsonPath, fail: Fail): DeclaredFlow {
  if (!isObject(value)) fail(path, 'expected an object {"from": ..., "to": ..., "ports": [...]}');
  const f = value as Json;
  if (typeof f.from !== 'string' || f.from.trim() === '') fail([...path, 'from'], 'missing: a segment name or "internet"');
  if (typeof f.to !== 'string' || f.to.trim() === '') fail([...path, 'to'], 'missing: a segment name');
  if (!Array.isArray(f.ports) || f.ports.length === 0) fail([...path, 'ports'], 'expected a non-empty array of ports (443/tcp, 8000-8100/tcp, all)');
  const ports = (f.ports as unknown[]).map((p, i) => {
    const port = typeof p === 'string' ? parsePort(p) : null;
    if (port === null) fail([...path, 'ports', i], `${JSON.stringify(p)} is not a port: expected 443/tcp, 8000-8100/tcp (1-65535, tcp or udp) or all`);
    return port as string;
  });
  if (f.description !== undefined && f.description !== null && typeof f.description !== 'string') fail([...path, 'description'], 'expected a string');
  const description = typeof f.description === 'string' && f.description.trim() !== '' ? f.description.trim() : undefined;
  return { path, from: (f.from as string).trim(), to: (f.to as string).trim(), ports: uniq(ports), ...(description ? { description } : {}) };
}

export const networkSegments: ContextSource = {
  source: SOURCE,
  description: 'Declared network segments (CIDR blocks) and the flows a firewall policy allows between them (our JSON)',
  detect(head) {
    return jsonStart(head).startsWith('{') && /"segments"\s*:\s*\[/.test(head) && (/"flows"\s*:/.test(head) || /"cidrs"\s*:/.test(head));
  },
  parse(file) {
    const notObject = 'expected a JSON object {"segments": [...], "flows": [...]}';
    return jsonContextRecords(file, { source: SOURCE, select: ['segments.*', 'flows.*'], notObject }, records);
  },
};

async function* records(events: AsyncIterable<JsonEvent>, fail: Fail): AsyncGenerator<ContextRecord> {
  const segments = new Map<string, Segment>();
  const flows: DeclaredFlow[] = [];
  const seen = { segments: false, flows: false };
  for await (const event of events) {
    const { path } = event;
    const list = path[0] as 'segments' | 'flows';
    if (path.length === 1) {
      seen[list] = true;
      if (!isArrayOrNull(event)) fail(path, 'expected an array');
      continue;
    }
    if (event.kind !== 'value') continue;
    if (list === 'segments') {
      const [name, segment] = segmentOf(event.value, path, fail);
      if (segments.has(name)) fail([...path, 'name'], `segment "${name}" is declared twice`);
      segments.set(name, segment);
    } else flows.push(flowOf(event.value, path, fail));
  }
  if (!seen.segments) fail(['segments'], 'missing: expected {"segments": [...], "flows": [...]}');
  if (!seen.flows) fail(['flows'], 'missing: expected {"segments": [...], "flows": [...]} (an empty list declares no flow)');
  const known = () => [...segments.keys()].join(', ') || 'none';
  const resolved: NetworkFlow[] = flows.map((f) => {
    const from = f.from === INTERNET_SEGMENT ? undefined : segments.get(f.from);
    if (f.from !== INTERNET_SEGMENT && !from) fail([...f.path, 'from'], `unknown segment "${f.from}" (declared: ${known()}; or "${INTERNET_SEGMENT}")`);
    const to = segments.get(f.to);
    if (!to) fail([...f.path, 'to'], `unknown segment "${f.to}" (declared: ${known()})`);
    return {
      from: f.from,
      to: f.to,
      fromCidrs: from?.cidrs ?? [],
      toCidrs: to!.cidrs,
      ports: f.ports,
      ...(f.description ? { description: f.description } : {}),
    };
  });
  for (const flow of resolved) yield { type: 'network_flow', flow };
}
