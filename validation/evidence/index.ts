import { readHead } from '../../discovery/connectors/common/head.js';
import { EVIDENCE_SKIP_REASONS, EvidenceError, type EvidenceParser, type EvidenceRecord, type EvidenceSkipReason } from './model.js';
import { nuclei } from './nuclei/index.js';
import { zapJson, zapXml } from './zap/index.js';
import { genericCsv, genericJson } from './generic/index.js';

// The validation evidence formats, as discovery/connectors/index.ts lists the scanner formats:
// a new tool is one folder and one line here.

/** Every supported evidence format. */
export const evidenceParsers: readonly EvidenceParser[] = [nuclei, zapJson, zapXml, genericCsv, genericJson];

const supported = () => evidenceParsers.map((p) => p.format).join(', ');

/** Picks the parser for a file: the one named, or the one that recognises the file. */
export async function evidenceParserFor(file: string, displayName: string, format?: string): Promise<EvidenceParser> {
  if (format) {
    const named = evidenceParsers.find((p) => p.format === format);
    if (!named) throw new EvidenceError(displayName, format, undefined, `unknown format; supported: ${supported()}`);
    return named;
  }
  const head = await readHead(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EISDIR') throw new EvidenceError(displayName, 'unknown', undefined, 'is a directory');
    throw new EvidenceError(displayName, 'unknown', undefined, `cannot read the file (${err.code ?? err.message})`);
  });
  if (head.replace(/^\uFEFF/, '').trim() === '') throw new EvidenceError(displayName, 'unknown', undefined, 'the file is empty');
  const detected = evidenceParsers.find((p) => p.detect(head));
  if (!detected) throw new EvidenceError(displayName, 'unknown', undefined, `format not recognised; supported: ${supported()}`);
  return detected;
}

export type EvidenceSkipCounts = Record<EvidenceSkipReason, number>;

export interface EvidenceImport {
  /** The format read (named, or detected). */
  format: string;
  /** The evidence, streamed; an EvidenceError ends it when the file is bad. */
  records: AsyncIterable<EvidenceRecord>;
  /** What the file held that is not evidence, by reason: complete once `records` is exhausted. */
  readonly skipped: Readonly<EvidenceSkipCounts>;
}

export interface ParseEvidenceOptions {
  /** The file's name in errors (an upload's original name, never a machine path). */
  displayName: string;
  /** The fallback test time for reports that carry none (the upload's time), ISO 8601. */
  testedAt: string;
  /** A format from evidenceParsers; detected from the file's first bytes when absent. */
  format?: string;
}

/**
 * Reads a validation report: picks its parser, then streams its records while counting what it
 * skips, so the import can answer with what it left out and why.
 */
export async function parseEvidence(file: string, options: ParseEvidenceOptions): Promise<EvidenceImport> {
  const parser = await evidenceParserFor(file, options.displayName, options.format);
  const skipped = Object.fromEntries(EVIDENCE_SKIP_REASONS.map((r) => [r, 0])) as EvidenceSkipCounts;
  const records = parser.parse(file, {
    displayName: options.displayName,
    testedAt: options.testedAt,
    onSkip: (reason) => {
      skipped[reason]++;
    },
  });
  return { format: parser.format, records, skipped };
}

export { readHead };
export { EvidenceError, EVIDENCE_SKIP_REASONS, type EvidenceParser, type EvidenceRecord, type EvidenceResult, type EvidenceSkipReason, type EvidenceParseOptions } from './model.js';
