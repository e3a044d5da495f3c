import { createReadStream } from 'node:fs';

/** Something a connector read but did not understand or left out: never dropped in silence. */
export interface ParseWarning {
  file: string;
  format: string;
  /** Where in the report (a JSON path, an element), when one place is at fault. */
  field?: string;
  reason: string;
}

export type Warn = (warning: ParseWarning) => void;

/** `FILE: FORMAT: FIELD: reason`, the shape of a ReportError's message. */
export const warningLine = (w: ParseWarning): string => `${w.file}: ${w.format}${w.field ? `: ${w.field}` : ''}: ${w.reason}`;

/**
 * Records a connector skips, counted per reason: one warning per reason with the count and the
 * first example's path, not one per record (a report can skip a million).
 */
export class Skipped {
  private readonly byReason = new Map<string, { count: number; first: string }>();
  constructor(private readonly file: string, private readonly format: string, private readonly warn: Warn | undefined) {}

  record(reason: string, path: string): void {
    const seen = this.byReason.get(reason);
    if (seen) seen.count++;
    else this.byReason.set(reason, { count: 1, first: path });
  }

  /** Called once the report is read. */
  flush(): void {
    for (const [reason, { count, first }] of this.byReason) {
      this.warn?.({ file: this.file, format: this.format, field: first, reason: `${count} skipped: ${reason}${count > 1 ? ' (first shown)' : ''}` });
    }
    this.byReason.clear();
  }
}

/** Warns when a version field holds a value the connector was not written for. */
export function checkVersion(warn: Warn | undefined, file: string, format: string, field: string, value: unknown, known: readonly string[]): void {
  if (value === undefined || known.includes(String(value))) return;
  warn?.({ file, format, field, reason: `unknown version ${JSON.stringify(value)} (written for ${known.join(', ')}); findings may be missing` });
}

const VULNERABILITY_ID = /\b(?:CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})\b/gi;

/** The distinct CVE and GHSA ids a file names anywhere, read as a stream. */
export async function vulnerabilityIds(file: string): Promise<{ count: number; first?: string }> {
  const ids = new Set<string>();
  let first: string | undefined;
  let carry = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = carry + (chunk as string);
    for (const m of text.matchAll(VULNERABILITY_ID)) {
      const id = /^cve/i.test(m[0]) ? m[0].toUpperCase() : `GHSA${m[0].slice(4).toLowerCase()}`;
      first ??= id;
      ids.add(id);
    }
    // An id cut at the chunk's end is matched whole in the next round (ids are under 32 characters).
    carry = text.slice(-32);
  }
  return { count: ids.size, ...(first ? { first } : {}) };
}
