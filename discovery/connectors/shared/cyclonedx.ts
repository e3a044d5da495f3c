import type { ParseOptions } from '../index.js';
import type { AssetRef, NormalizedFinding, Severity } from '../../model.js';
import { defined, unique } from '../common/json.js';
import { aliasesOf, cweId, severityFromScore } from '../common/identity.js';
import { cvss3BaseScore, cvss3BaseVector, cvss3Vector } from '../common/cvss.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { fixedVersionFromText } from './fix-text.js';

// CycloneDX rules that the JSON and XML connectors share, so that one BOM gives the same findings
// in either encoding: each connector reads its encoding into these shapes, and the mapping from
// there on is one piece of code.

export type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

/** CycloneDX impact-analysis states onto the model's vendor status. */
export const ANALYSIS_STATES: Record<string, VendorStatus> = {
  not_affected: 'not_affected',
  resolved: 'fixed',
  resolved_with_pedigree: 'fixed',
  false_positive: 'false_positive',
  exploitable: 'affected',
  in_triage: 'under_investigation',
};

export interface ComponentInfo {
  name: string;
  version: string;
  /** The purl type (`maven`, `pypi`, `deb`...), when the component has a purl. */
  ecosystem?: string | undefined;
}

/** The BOM's own subject (`metadata.component`): it names the asset. */
export type Subject = ComponentInfo & { type: string };

/** A BOM-Link (`urn:cdx:serial/version#ref`) points into another BOM; the part after `#` is the ref. */
export function localRef(ref: string): string {
  const trimmed = ref.trim();
  if (!trimmed.startsWith('urn:cdx:')) return trimmed;
  const hash = trimmed.indexOf('#');
  if (hash === -1) return trimmed;
  try {
    return decodeURIComponent(trimmed.slice(hash + 1));
  } catch {
    return trimmed.slice(hash + 1);
  }
}

/** The asset a BOM describes: its subject, or the target; `missing` raises when there is neither. */
export function subjectAsset(subject: Subject | undefined, options: ParseOptions, missing: (reason: string) => never): AssetRef {
  const name = options.target ?? (subject?.name || undefined);
  if (!name) missing('missing (pass a target to name the asset)');
  const kind: AssetRef['kind'] = subject?.type === 'container' ? 'container_image' : 'other';
  return { assetKey: `${kind === 'container_image' ? 'image' : 'asset'}:${name}`, kind, name };
}

/** One `ratings` entry as the document gives it. */
export interface Rating {
  method: string;
  severity: Severity | undefined;
  score: number | undefined;
  vector?: string | undefined;
}

/** A vulnerability as the document gives it ('' or undefined where absent). */
export interface VulnerabilityFields {
  id: string;
  ratings: Rating[];
  state: string | undefined;
  description: string | undefined;
  /** Source, reference and advisory URLs, in document order. */
  urls: (string | undefined)[];
  /** Raw CWE values (numbers, or strings with or without `CWE-`). */
  cwes: unknown[];
  /** The `recommendation` text ("Upgrade x to version 2.9.5 or higher."). */
  recommendation?: string | undefined;
  /** The ids of `references` (the same vulnerability in other databases: CVE, GHSA, OSV). */
  referenceIds?: (string | undefined)[];
}

/** What every finding of one vulnerability shares. */
export interface Vulnerability {
  issueId: string;
  aliases: string[] | undefined;
  severity: Severity;
  cvssScore: number | undefined;
  cvssVector: string | undefined;
  vendorStatus: VendorStatus | undefined;
  title: string | undefined;
  description: string | undefined;
  references: string[];
  cwes: string[];
  /** The fixed version the recommendation names; CycloneDX has no field for it. */
  fixedVersion: string | undefined;
}

const METHOD_RANK = ['CVSSv31', 'CVSSv3', 'CVSSv4', 'CVSSv2'];

/**
 * Severity and CVSS v3 score: CVSS v3.x ratings first, then others; a score alone still ranks.
 * The score is the v3 rating's base score. A VEX may state an environmental score under the same
 * method (`0.0` for a product that is not affected, beside a vector whose base is 10.0): when the
 * vector's base score contradicts the rating's score, the vector's wins, and a rating whose score
 * agrees with its vector is preferred; its severity then follows the base score too.
 */
function rate(raw: Rating[]): { severity: Severity; cvssScore: number | undefined; cvssVector: string | undefined } {
  const rank = (m: string) => {
    const i = METHOD_RANK.indexOf(m);
    return i === -1 ? METHOD_RANK.length : i;
  };
  const ratings = raw
    .map((r) => ({ ...r, score: r.score !== undefined && r.score >= 0 && r.score <= 10 ? r.score : undefined }))
    .sort((a, b) => rank(a.method) - rank(b.method));
  const v3 = ratings
    .filter((r) => r.method === 'CVSSv31' || r.method === 'CVSSv3')
    .map((r) => {
      const vector = v3Vector(r);
      const base = vector ? cvss3BaseScore(vector) : undefined;
      return { rating: r, vector: vector ? cvss3BaseVector(vector) : undefined, score: base ?? r.score, agrees: base === undefined || base === r.score };
    })
    .filter((r) => r.score !== undefined);
  const base = v3.find((r) => r.agrees && r.vector) ?? v3.find((r) => r.vector) ?? v3[0];
  if (base) {
    const stated = base.agrees && base.rating.severity !== undefined && base.rating.severity !== 'unknown' ? base.rating.severity : undefined;
    return { severity: stated ?? severityFromScore(base.score!), cvssScore: base.score, cvssVector: base.vector };
  }
  const named = ratings.find((r) => r.severity !== undefined && r.severity !== 'unknown');
  const scored = ratings.find((r) => r.score !== undefined);
  const severity = named?.severity ?? (scored?.score !== undefined ? severityFromScore(scored.score) : 'unknown');
  return { severity, cvssScore: undefined, cvssVector: undefined };
}

/** CycloneDX allows the vector without its `CVSS:3.x/` prefix; the rating's method names the version. */
const v3Vector = (rating: Rating) => cvss3Vector(rating.vector, rating.method === 'CVSSv31' ? '3.1' : '3.0');

export function vulnerabilityOf(fields: VulnerabilityFields): Vulnerability {
  const firstLine = fields.description?.split('\n')[0]?.trim() ?? '';
  return {
    issueId: fields.id,
    aliases: aliasesOf(fields.id, fields.referenceIds ?? []),
    ...rate(fields.ratings),
    vendorStatus: ANALYSIS_STATES[fields.state ?? ''],
    title: (firstLine.length > 200 ? `${firstLine.slice(0, 197)}...` : firstLine) || undefined,
    description: fields.description || undefined,
    references: unique(fields.urls.filter((u): u is string => u !== undefined && u !== '')),
    cwes: unique(fields.cwes.map(cweId).filter((c): c is string => c !== undefined)),
    fixedVersion: fixedVersionFromText(fields.recommendation),
  };
}

/** The finding for one affected component; `status` is the vulnerability's unless a VEX entry says otherwise. */
export function vulnerabilityFinding(v: Vulnerability, asset: AssetRef, component: ComponentInfo, status: VendorStatus | undefined): NormalizedFinding {
  return defined<NormalizedFinding>({
    asset,
    kind: 'vulnerability',
    issueId: v.issueId,
    aliases: v.aliases,
    component: component.name,
    version: component.version,
    location: '',
    severity: v.severity,
    cvssScore: v.cvssScore,
    cvssVector: v.cvssVector,
    title: v.title,
    vendorStatus: status,
    description: v.description,
    references: v.references.length ? v.references : undefined,
    cwes: v.cwes.length ? v.cwes : undefined,
    ...fixOf(undefined, () => v.fixedVersion),
    ...packageFacts({ ecosystem: component.ecosystem }),
  });
}
