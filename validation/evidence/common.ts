import { createReadStream } from 'node:fs';
import { isIP } from 'node:net';
import { basename } from 'node:path';
import { ReportError } from '../../discovery/model.js';
import { readHead } from '../../discovery/connectors/common/head.js';
import { DEFAULT_MAX_DEPTH, MAX_STRING_BYTES } from '../../discovery/streams/json.js';
import { EvidenceError, type EvidenceParseOptions, type EvidenceRecord, type EvidenceSkipReason } from './model.js';

// What the evidence parsers share: errors as EvidenceErrors only, the same empty-file check,
// JSON lines read with the scanner connectors' bounds, and the small normalisations (hosts and
// ports out of URLs, dates, bounded excerpts) every tool's output needs.

/** The parse frame: the file must hold something, and every failure is an EvidenceError. */
export async function* evidenceRecords(
  file: string,
  format: string,
  read: (display: string) => AsyncIterable<EvidenceRecord>,
  displayName?: string,
): AsyncGenerator<EvidenceRecord> {
  const display = displayName ?? basename(file);
  let head: string;
  try {
    head = await readHead(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new EvidenceError(display, format, undefined, code === 'EISDIR' ? 'is a directory' : `cannot read the file (${code})`);
  }
  if (head.replace(/^\uFEFF/, '').trim() === '') throw new EvidenceError(display, format, undefined, 'the file is empty');
  try {
    yield* read(display);
  } catch (err) {
    // The streaming helpers speak of reports; the file name they give is the path's base name.
    if (err instanceof ReportError) throw new EvidenceError(display, format, err.field, err.reason.replace(/\bthe report\b/g, 'the file'));
    throw err;
  }
}

/** The skip callback of the options, or a no-op. */
export const skipper = (options: EvidenceParseOptions): ((reason: EvidenceSkipReason) => void) => options.onSkip ?? (() => {});

/** One line's bytes at most, as one JSON string at most in the scanner connectors. */
export const MAX_LINE_BYTES = MAX_STRING_BYTES;

/** Whether brackets outside strings nest deeper than `limit` (JSON.parse would build it whatever the depth). */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * The JSON values of a JSON lines file, one per non-blank line, with the line number. A line
 * longer than the bound is refused before it is held whole; a line that is not JSON (a truncated
 * last line included) is an EvidenceError naming the line.
 */
export async function* jsonLines(file: string, display: string, format: string): AsyncGenerator<{ line: number; value: unknown }> {
  const fail = (line: number, reason: string): never => {
    throw new EvidenceError(display, format, `line ${line}`, reason);
  };
  let line = 0;
  const parse = (bytes: Buffer): { line: number; value: unknown } | undefined => {
    line++;
    let text = bytes.toString('utf8');
    if (line === 1) text = text.replace(/^\uFEFF/, '');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return undefined;
    if (nestsDeeperThan(text, DEFAULT_MAX_DEPTH)) fail(line, `nested deeper than ${DEFAULT_MAX_DEPTH} levels`);
    try {
      return { line, value: JSON.parse(text) as unknown };
    } catch (err) {
      return fail(line, `not valid JSON (${(err as Error).message})`);
    }
  };
  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const raw of input) {
      const chunk = raw as Buffer;
      let start = 0;
      for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        if (pendingBytes + piece.length > MAX_LINE_BYTES) fail(line + 1, `longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`);
        const parsed = parse(pending.length > 0 ? Buffer.concat([...pending, piece]) : piece);
        pending = [];
        pendingBytes = 0;
        if (parsed) yield parsed;
        start = nl + 1;
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > MAX_LINE_BYTES) fail(line + 1, `longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`);
      }
    }
    if (pending.length > 0) {
      const parsed = parse(Buffer.concat(pending));
      if (parsed) yield parsed;
    }
  } catch (err) {
    if (err instanceof EvidenceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new EvidenceError(display, format, undefined, `cannot read the file (${code ?? (err as Error).message})`);
  } finally {
    input.destroy();
  }
}

/** The first non-blank line of a head, without a BOM. */
export const firstLine = (head: string): string | undefined =>
  head.replace(/^\uFEFF/, '').split(/\r?\n/).find((l) => l.trim() !== '');

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21, ssh: 22 };

export interface Endpoint {
  /** Lower-cased host name or IP address (IPv6 without brackets). */
  host: string;
  /** The port written in the text, if any. */
  port?: number;
  /** The URL's scheme, if the text was a URL. */
  scheme?: string;
}

/**
 * The host (and port, and scheme) a tool names a target by: a URL, `host:port`, `[v6]:port`, a
 * bare host name or IP. undefined for text that names no host.
 */
export function endpointOf(text: unknown): Endpoint | undefined {
  if (typeof text !== 'string') return undefined;
  const value = text.trim();
  if (value === '') return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      const url = new URL(value);
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase().replace(/\.$/, '');
      if (host === '') return undefined;
      const scheme = url.protocol.slice(0, -1).toLowerCase();
      return { host, scheme, ...(url.port ? { port: Number(url.port) } : {}) };
    } catch {
      return undefined;
    }
  }
  if (isIP(value) === 6) return { host: value.toLowerCase() };
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(value);
  if (bracketed) return { host: bracketed[1]!.toLowerCase(), ...(bracketed[2] ? { port: Number(bracketed[2]) } : {}) };
  const hostPort = /^([^\s/:@]+)(?::(\d{1,5}))?(?:\/.*)?$/.exec(value);
  if (!hostPort) return undefined;
  const host = hostPort[1]!.toLowerCase().replace(/\.$/, '');
  return host === '' ? undefined : { host, ...(hostPort[2] ? { port: Number(hostPort[2]) } : {}) };
}

export const isPort = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535;

/** `443/tcp`: the explicit port, else the scheme's usual one, else undefined. */
export function tcpPort(explicit: number | undefined, scheme: string | undefined): string | undefined {
  if (isPort(explicit)) return `${explicit}/tcp`;
  const byScheme = scheme === undefined ? undefined : DEFAULT_PORTS[scheme.toLowerCase()];
  return byScheme === undefined ? undefined : `${byScheme}/tcp`;
}

/** A port given as a number or a string of digits; undefined otherwise. */
export function portNumber(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : undefined;
  return isPort(n) ? n : undefined;
}

/** An IP address as a tool writes it (`10.0.0.1.` occurs), or undefined when it is none. */
export function ipAddress(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const ip = value.trim().replace(/\.$/, '').toLowerCase();
  return isIP(ip) !== 0 ? ip : undefined;
}

const CVE = /^CVE-\d{4}-\d{4,}$/i;

/** `CVE-2021-44228` upper-cased, or undefined for anything that is not a CVE id. */
export const cveId = (value: unknown): string | undefined =>
  typeof value === 'string' && CVE.test(value.trim()) ? value.trim().toUpperCase() : undefined;

/** `CWE-79` from `79`, `cwe-79` or `CWE-79`; undefined for anything else (0, -1, `nvd-cve-other`). */
export function cweId(value: unknown): string | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  const m = /^(?:cwe-)?(\d+)$/i.exec(text);
  return m && Number(m[1]) > 0 ? `CWE-${Number(m[1])}` : undefined;
}

/** Text cut to `max` characters, marked when cut: excerpts in `detail` stay small whatever the tool wrote. */
export function excerpt(value: string, max = 1024): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length - max} more characters)`;
}

/** The first `items` strings of a list, each bounded, plus how many there were. */
export function excerpts(values: unknown, items = 10, max = 1024): { values: string[]; total: number } | undefined {
  if (!Array.isArray(values)) return undefined;
  const strings = values.filter((v): v is string => typeof v === 'string');
  return strings.length === 0 ? undefined : { values: strings.slice(0, items).map((v) => excerpt(v, max)), total: strings.length };
}

/** A non-blank string, trimmed; undefined otherwise. */
export const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * An ISO 8601 date (`2026-03-01`, read as midnight UTC) or date-time (a zone, or UTC when none
 * is written), as an ISO string; undefined for anything else, impossible dates (Feb 30) included.
 */
export function isoDateTime(value: string): string | undefined {
  const m = DATE_TIME.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', fraction = '', zone = 'Z'] = m;
  const month = Number(mo);
  const day = Number(d);
  const daysInMonth = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  // Milliseconds at most: Date.parse takes more digits, but not every engine does.
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${fraction.slice(0, 4)}${offset}`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** The fallback test time, checked once: a caller's mistake, not the file's. */
export function fallbackTime(options: EvidenceParseOptions): string {
  const iso = isoDateTime(options.testedAt);
  if (!iso) throw new TypeError(`testedAt must be an ISO 8601 time, got ${JSON.stringify(options.testedAt)}`);
  return iso;
}

/** Only keys with a value, so records carry no `undefined` fields. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}
