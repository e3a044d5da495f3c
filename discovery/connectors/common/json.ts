// Small accessors for untyped JSON: connectors read scanner output defensively, never by cast.

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether a text says nothing: empty or white space once NUL bytes are removed, as ingest removes
 * them. An issue id of one NUL passed as present and reached the store as '' (found by fuzzing).
 */
export const blank = (s: string): boolean => s.trim() === '' || (s.includes('\0') && s.replaceAll('\0', '').trim() === '');

/** A string that is not blank, or undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && !blank(v) ? v : undefined;
}

export function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const objects = (v: unknown): Json[] => arr(v).filter(isObject);

export const strings = (v: unknown): string[] => arr(v).filter((s): s is string => typeof s === 'string' && !blank(s));

export function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

/**
 * Only keys that have a value, so findings carry no `undefined` fields. A copy rather than
 * `delete`: deleting keys turns every finding into a slow dictionary-mode object.
 */
export function defined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}
