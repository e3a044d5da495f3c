import { isIP } from 'node:net';
import { readHead } from '../connectors/common/head.js';

export { readHead };
import { ReportError } from '../model.js';
import { defined } from '../connectors/common/json.js';
import { ContextError, type AssetIdentifiers, type ContextAsset, type Criticality } from './model.js';

// Helpers shared by the context sources: value normalisation, and turning the streaming helpers'
// ReportErrors into ContextErrors so callers only ever see one error type from a context source.

/** The same check for every source, so an empty export reads the same whatever its format. */
export async function ensureNotEmpty(file: string, display: string, source: string): Promise<void> {
  let head: string;
  try {
    head = await readHead(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ContextError(display, source, undefined, `cannot read the file (${code})`);
  }
  if (head.replace(/^\uFEFF/, '').trim() === '') throw new ContextError(display, source, undefined, 'the file is empty');
}

/** Re-raises the streaming helpers' ReportErrors as ContextErrors, worded for context files. */
export async function* asContextErrors<T>(source: string, records: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* records;
  } catch (err) {
    if (err instanceof ReportError) {
      throw new ContextError(err.file, source, err.field, err.reason.replace(/\bthe report\b/g, 'the file'));
    }
    throw err;
  }
}

const CRITICALITIES: Record<string, Criticality> = {
  critical: 'critical',
  high: 'high',
  medium: 'medium',
  low: 'low',
  // ServiceNow's business_criticality choice values.
  '1 - most critical': 'critical',
  '2 - somewhat critical': 'high',
  '3 - less critical': 'medium',
  '4 - not critical': 'low',
};

export const CRITICALITY_VALUES = 'critical, high, medium, low, "1 - most critical", "2 - somewhat critical", "3 - less critical", "4 - not critical"';

/** undefined for an empty value, null for one that is not a known criticality. */
export function parseCriticality(raw: string | undefined): Criticality | undefined | null {
  if (raw === undefined) return undefined;
  const key = raw.trim().toLowerCase().replace(/\s+/g, ' ').replace(/^(\d)\s*-\s*/, '$1 - ');
  if (key === '') return undefined;
  return CRITICALITIES[key] ?? null;
}

/**
 * A yearly revenue figure: digits with an optional decimal part, `,` `_` or spaces as thousands
 * separators, and an optional k / M / B multiplier ("12,500,000", "12.5M"). undefined for an empty
 * value, null for anything else (a negative number, a currency word, a range).
 */
export function parseRevenue(raw: string | undefined): number | undefined | null {
  const v = raw?.trim();
  if (!v) return undefined;
  // Separators only between groups of three digits: "12,5M" (a decimal comma) is refused, not read as 125M.
  const m = /^(\d{1,3}(?:[,_ ]\d{3})+|\d+)(\.\d+)?([kKmMbB]?)$/.exec(v);
  if (!m) return null;
  const scale = { '': 1, k: 1e3, m: 1e6, b: 1e9 }[m[3]!.toLowerCase() as '' | 'k' | 'm' | 'b'];
  const value = Number(m[1]!.replace(/[,_ ]/g, '') + (m[2] ?? '')) * scale;
  return Number.isFinite(value) ? value : null;
}

/** DNS names compare case-insensitively and a trailing dot is the same name. */
export const normalizeName = (s: string): string => s.trim().toLowerCase().replace(/\.$/, '');

export const normalizeEnvironment = (s: string | undefined): string | undefined => {
  const v = s?.trim().toLowerCase();
  return v ? v : undefined;
};

/** Splits a multi-value cell: `;` is documented, `,` and spaces are tolerated. */
export const splitList = (s: string | undefined): string[] =>
  (s ?? '').split(/[;,\s]+/).map((v) => v.trim()).filter((v) => v !== '');

export const isIpAddress = (s: string): boolean => isIP(s) !== 0;

export const normalizeIp = (s: string): string => s.trim().toLowerCase();

/** A host named one way: an IP address, an FQDN (has a dot) or a bare host name. */
export function hostIdentifiers(value: string): AssetIdentifiers {
  const v = value.trim();
  if (isIpAddress(v)) return { ips: [normalizeIp(v)] };
  const name = normalizeName(v);
  return name.includes('.') ? { fqdn: name } : { hostname: name };
}

export const uniq = <T>(values: Iterable<T>): T[] => [...new Set(values)];

/** Drops empty fields so records compare and serialise cleanly. */
export function cleanAsset(asset: ContextAsset): ContextAsset {
  const identifiers = defined({ ...asset.identifiers });
  if (identifiers.ips?.length === 0) delete identifiers.ips;
  const out = defined({ ...asset, identifiers });
  if (out.publicIps?.length === 0) delete out.publicIps;
  if (out.securityGroups?.length === 0) delete out.securityGroups;
  if (out.tags && Object.keys(out.tags).length === 0) delete out.tags;
  if (out.relations?.length === 0) delete out.relations;
  return out;
}

/** Parses a timestamp (ISO 8601, or epoch seconds / milliseconds) to ISO 8601 UTC. */
export function parseTimestamp(raw: unknown): string | undefined {
  let ms: number | undefined;
  if (typeof raw === 'number' && Number.isFinite(raw)) ms = raw < 1e11 ? raw * 1000 : raw;
  else if (typeof raw === 'string' && raw.trim() !== '') {
    const s = raw.trim();
    if (/^\d+(\.\d+)?$/.test(s)) {
      const n = Number(s);
      ms = n < 1e11 ? n * 1000 : n;
    } else if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) {
      // No zone given: read as UTC, never as the importing machine's local time.
      ms = Date.parse(`${s.replace(' ', 'T')}Z`);
    } else if (/^\d{4}-\d{2}-\d{2}/.test(s)) ms = Date.parse(s);
  }
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
