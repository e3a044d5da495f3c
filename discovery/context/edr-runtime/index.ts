import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ContextSource } from '../index.js';
import { ContextError, type AssetIdentifiers, type ContextRecord, type RuntimeEvidence } from '../model.js';
import { csvRows, sniffCsvHeader, type CsvColumns } from '../../streams/csv.js';
import { isObject, type Json } from '../../connectors/common/json.js';
import { contextRecords } from '../parse-frame.js';
import { hostIdentifiers, isIpAddress, normalizeIp, parseTimestamp, readHead, splitList, uniq } from '../common.js';

// EDR runtime evidence (which package or process was seen running on which host), as JSON lines or
// CSV with the same field names. Our own format: EDR consoles export too differently to read each
// natively, and every one of them can produce these six fields. Streamed line by line.

const SOURCE = 'edr-runtime';

const COLUMNS = {
  host: { names: ['host', 'hostname', 'fqdn'], required: true },
  ip: { names: ['ip', 'ips', 'ip_address'] },
  package: { names: ['package'] },
  version: { names: ['version'] },
  process: { names: ['process'] },
  observedAt: { names: ['observed_at'], required: true },
} satisfies CsvColumns<string>;

const DETECT_CSV = {
  host: { names: ['host', 'hostname', 'fqdn'], required: true },
  observedAt: { names: ['observed_at'], required: true },
  what: { names: ['package', 'process'], required: true },
} satisfies CsvColumns<string>;

// A runaway line (no newline in a huge file) must not be held whole.
const MAX_LINE_CHARS = 1024 * 1024;

interface Fields {
  host: string;
  ip: string[];
  package: string;
  version: string;
  process: string;
  observedAt: unknown;
}

function evidenceOf(f: Fields, fail: (field: string | undefined, reason: string) => never): RuntimeEvidence {
  const badIp = f.ip.find((ip) => !isIpAddress(ip));
  if (badIp !== undefined) fail('ip', `${JSON.stringify(badIp)} is not an IP address`);
  if (f.host === '' && f.ip.length === 0) fail('host', 'empty; a host name, FQDN or IP is required');
  if (f.package === '' && f.process === '') fail(undefined, 'neither package nor process given');
  if (f.version !== '' && f.package === '') fail('version', 'a version without a package');
  const observedAt = parseTimestamp(f.observedAt);
  if (!observedAt) {
    fail('observed_at', f.observedAt === '' || f.observedAt === undefined ? 'empty' : `${JSON.stringify(f.observedAt)} is not an ISO 8601 time or epoch`);
  }
  const fromHost: AssetIdentifiers = f.host ? hostIdentifiers(f.host) : {};
  const ips = uniq([...(fromHost.ips ?? []), ...f.ip.map(normalizeIp)]);
  const host: AssetIdentifiers = { ...fromHost, ...(ips.length ? { ips } : {}) };
  return {
    host,
    hostName: f.host || ips[0]!,
    ...(f.package ? { package: f.package } : {}),
    ...(f.version ? { version: f.version } : {}),
    ...(f.process ? { process: f.process } : {}),
    observedAt: observedAt!,
  };
}

const firstLine = (head: string): string | undefined =>
  head.replace(/^\uFEFF/, '').split(/\r?\n/).find((l) => l.trim() !== '');

export const edrRuntime: ContextSource = {
  source: SOURCE,
  description: 'EDR runtime evidence as JSON lines or CSV (host, ip, package, version, process, observed_at)',
  detect(head) {
    const line = firstLine(head);
    if (line?.trimStart().startsWith('{')) {
      try {
        const first: unknown = JSON.parse(line);
        return isObject(first) && 'observed_at' in first && ('host' in first || 'hostname' in first || 'fqdn' in first || 'ip' in first);
      } catch {
        return false;
      }
    }
    return sniffCsvHeader(head, DETECT_CSV);
  },
  parse(file) {
    return contextRecords(file, SOURCE, async function* (display) {
      const line = firstLine(await readHead(file));
      yield* line?.trimStart().startsWith('{') ? jsonLines(file, display) : csv(file, display);
    });
  },
};

const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '');

async function* jsonLines(file: string, display: string): AsyncGenerator<ContextRecord> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      const line = n === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      const fail = (field: string | undefined, reason: string): never => {
        throw new ContextError(display, SOURCE, `line ${n}${field ? `, ${field}` : ''}`, reason);
      };
      if (line.length > MAX_LINE_CHARS) fail(undefined, `line longer than ${MAX_LINE_CHARS} characters`);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        fail(undefined, `not valid JSON: ${(err as Error).message}`);
      }
      if (!isObject(value)) fail(undefined, 'expected a JSON object');
      const o = value as Json;
      const ip = Array.isArray(o.ip) ? o.ip.map(text) : splitList(text(o.ip));
      yield {
        type: 'runtime',
        evidence: evidenceOf(
          {
            host: text(o.host) || text(o.hostname) || text(o.fqdn),
            ip: ip.filter((s) => s !== ''),
            package: text(o.package),
            version: text(o.version),
            process: text(o.process),
            observedAt: o.observed_at,
          },
          fail,
        ),
      };
    }
  } catch (err) {
    if (err instanceof ContextError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ContextError(display, SOURCE, n > 0 ? `line ${n}` : undefined, `cannot read the file (${code ?? (err as Error).message})`);
  } finally {
    lines.close();
    input.destroy();
  }
}

async function* csv(file: string, display: string): AsyncGenerator<ContextRecord> {
  for await (const row of csvRows(file, { format: SOURCE, columns: COLUMNS })) {
    const v = row.values;
    if (Object.values(v).every((cell) => cell === '')) continue;
    const fail = (field: string | undefined, reason: string): never => {
      throw new ContextError(display, SOURCE, `line ${row.line}${field ? `, column ${field}` : ''}`, reason);
    };
    yield {
      type: 'runtime',
      evidence: evidenceOf({ host: v.host, ip: splitList(v.ip), package: v.package, version: v.version, process: v.process, observedAt: v.observedAt }, fail),
    };
  }
}
