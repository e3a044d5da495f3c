import type { AssetRef } from '../../discovery/model.js';

// Validation evidence in one shape, whichever tool produced it (Nuclei, OWASP ZAP, a pentest or
// breach-and-attack-simulation export, the platform's own probes). Parsers in evidence/<tool>/
// produce these; evidence/store.ts resolves them onto assets and findings.

export type EvidenceResult = 'exploited' | 'confirmed' | 'not_exploitable' | 'reachable' | 'unreachable';

export interface EvidenceRecord {
  /** The asset tested, named like a scanner names it (`host:<name>` from the URL's host), so it resolves to the same asset. */
  asset: AssetRef;
  /** The issue id as findings carry it (`CVE-2021-44228`), else the tool's own id (`nuclei:<template-id>`, `zap:<plugin id>`). */
  vulnerability: string;
  /**
   * `exploited`: the tool exploited it (a pentest or BAS success); `confirmed`: the tool proved the
   * vulnerability is there and answers from where it tested (a Nuclei match, a ZAP alert of high
   * confidence); `not_exploitable`: the tool tried and failed, on a dated test.
   */
  result: EvidenceResult;
  /** nuclei, zap, or the pentest / BAS tool's name. */
  tool: string;
  /** ISO 8601 time of the test. */
  testedAt: string;
  /** `443/tcp` when the test names a port. */
  port?: string;
  /** A URL, or host:port. */
  target?: string;
  title?: string;
  /** `CWE-<n>` identifiers the tool gives. */
  cwes?: string[];
  /** The tool's own words: template or alert, matcher, request and response excerpts (bounded). */
  detail?: Record<string, unknown>;
}

/** A validation report that cannot be imported, with the file, format and field that made it so. */
export class EvidenceError extends Error {
  constructor(
    readonly file: string,
    readonly format: string,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${format}${field ? `: ${field}` : ''}: ${reason}`);
    this.name = 'EvidenceError';
  }
}

/**
 * Why an entry of a report is not evidence: `informational` (ZAP risk 0, a Nuclei `info` template
 * that names no CVE), `false_positive` (ZAP confidence 0), `low_confidence` (ZAP confidence 1-2:
 * a suspicion, not proof), `errored` (a Nuclei check that could not run: `matcher-status: false`
 * with an `error`), `no_asset` (names no host to resolve onto).
 */
export type EvidenceSkipReason = 'informational' | 'false_positive' | 'low_confidence' | 'errored' | 'no_asset';

export const EVIDENCE_SKIP_REASONS: readonly EvidenceSkipReason[] = ['informational', 'false_positive', 'low_confidence', 'errored', 'no_asset'];

export interface EvidenceParseOptions {
  /** The file's name in errors (an upload's original name, never a machine path). */
  displayName: string;
  /** The fallback test time when the report carries none (the upload's time), ISO 8601. */
  testedAt: string;
  /** Told of every entry passed over, so the import can report what it left out and why. */
  onSkip?: (reason: EvidenceSkipReason) => void;
}

/** One evidence format: recognise it from the first bytes, then stream records. */
export interface EvidenceParser {
  format: string;
  description: string;
  detect(head: string): boolean;
  parse(file: string, options: EvidenceParseOptions): AsyncIterable<EvidenceRecord>;
}
