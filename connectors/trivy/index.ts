import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding } from '../model.js';

// Trivy JSON (`trivy image|fs|repo --format json`): SchemaVersion 2 reports, and the legacy
// pre-2021 form that is a bare array of results. Vulnerabilities only, for now.

const FORMAT = 'trivy-json';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function assetFrom(report: Json | undefined, firstTarget: string | undefined, options: ParseOptions): AssetRef {
  const type = typeof report?.ArtifactType === 'string' ? report.ArtifactType : undefined;
  const name = options.target ?? (typeof report?.ArtifactName === 'string' ? report.ArtifactName : firstTarget) ?? 'unknown';
  const metadata = isObject(report?.Metadata) ? report.Metadata : {};
  const repoDigest = Array.isArray(metadata.RepoDigests) ? metadata.RepoDigests.find((d) => typeof d === 'string') : undefined;
  const digest = typeof repoDigest === 'string' ? repoDigest : typeof metadata.ImageID === 'string' ? metadata.ImageID : undefined;
  const kind: AssetRef['kind'] =
    type === 'container_image' || (!type && firstTarget?.includes('(')) ? 'container_image'
    : type === 'filesystem' ? 'filesystem'
    : type === 'repository' ? 'repository'
    : type === 'vm' ? 'host'
    : 'other';
  const prefix = { container_image: 'image', filesystem: 'fs', repository: 'repo', host: 'host', other: 'asset' }[kind];
  return { assetKey: `${prefix}:${name}`, kind, name, ...(digest ? { digest } : {}) };
}

/** Trivy reports CVSS per vendor; NVD's v3 score is the common yardstick, then any v3, then v2. */
function cvssOf(vuln: Json): number | undefined {
  const cvss = isObject(vuln.CVSS) ? vuln.CVSS : {};
  const vendors = Object.entries(cvss).filter((e): e is [string, Json] => isObject(e[1]));
  const nvd = vendors.find(([name]) => name === 'nvd')?.[1];
  for (const pick of [nvd?.V3Score, ...vendors.map(([, v]) => v.V3Score), nvd?.V2Score, ...vendors.map(([, v]) => v.V2Score)]) {
    if (typeof pick === 'number' && pick >= 0 && pick <= 10) return pick;
  }
  return undefined;
}

function* findingsOf(file: string, results: unknown[], asset: AssetRef, path: string): Generator<NormalizedFinding> {
  for (const [i, result] of results.entries()) {
    const at = `${path}[${i}]`;
    if (!isObject(result)) throw new ReportError(file, FORMAT, at, 'expected an object');
    const vulns = result.Vulnerabilities;
    if (vulns === undefined || vulns === null) continue;
    if (!Array.isArray(vulns)) throw new ReportError(file, FORMAT, `${at}.Vulnerabilities`, 'expected an array');
    for (const [j, vuln] of vulns.entries()) {
      const field = `${at}.Vulnerabilities[${j}]`;
      if (!isObject(vuln)) throw new ReportError(file, FORMAT, field, 'expected an object');
      const required = (name: string): string => {
        const value = vuln[name];
        if (typeof value !== 'string' || value.trim() === '') {
          throw new ReportError(file, FORMAT, `${field}.${name}`, value === undefined ? 'missing' : 'expected a non-empty string');
        }
        return value;
      };
      const issueId = required('VulnerabilityID');
      const component = required('PkgName');
      const version = required('InstalledVersion');
      const severity = normalizeSeverity(vuln.Severity ?? 'unknown');
      if (!severity) throw new ReportError(file, FORMAT, `${field}.Severity`, `unknown severity ${JSON.stringify(vuln.Severity)}`);
      const fixed = typeof vuln.FixedVersion === 'string' && vuln.FixedVersion.trim() !== '' ? vuln.FixedVersion : undefined;
      const cvssScore = cvssOf(vuln);
      yield {
        asset,
        kind: 'vulnerability',
        issueId,
        component,
        version,
        location: typeof vuln.PkgPath === 'string' ? vuln.PkgPath : '',
        ...(fixed ? { fixedVersion: fixed } : {}),
        severity,
        ...(cvssScore !== undefined ? { cvssScore } : {}),
        ...(typeof vuln.Title === 'string' ? { title: vuln.Title } : {}),
      };
    }
  }
}

export const trivy: Connector = {
  format: FORMAT,
  description: 'Trivy JSON report (SchemaVersion 2 or legacy list), container images, filesystems, repositories',
  detect(head) {
    const start = head.trimStart();
    if (start === 'null') return true;
    if (start.startsWith('{')) return /"SchemaVersion"\s*:/.test(head) && /"ArtifactName"|"Results"/.test(head);
    return start.startsWith('[') && /"Target"\s*:/.test(head) && /"Vulnerabilities"|"Type"/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    let report: unknown;
    try {
      report = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new ReportError(name, FORMAT, undefined, `not valid JSON (${(err as Error).message})`);
    }
    // Older Trivy versions write a literal `null` when there is nothing to report.
    if (report === null) return;
    if (Array.isArray(report)) {
      const first = isObject(report[0]) && typeof report[0].Target === 'string' ? report[0].Target : undefined;
      yield* findingsOf(name, report, assetFrom(undefined, first, options), '');
      return;
    }
    if (!isObject(report)) throw new ReportError(name, FORMAT, undefined, 'expected a JSON object or array');
    if ('ClusterName' in report) throw new ReportError(name, FORMAT, 'ClusterName', 'Kubernetes cluster reports are not supported yet');
    if (report.SchemaVersion !== 2) throw new ReportError(name, FORMAT, 'SchemaVersion', `unsupported version ${JSON.stringify(report.SchemaVersion)}`);
    const results = report.Results ?? [];
    if (!Array.isArray(results)) throw new ReportError(name, FORMAT, 'Results', 'expected an array');
    if (options.target === undefined && typeof report.ArtifactName !== 'string') {
      throw new ReportError(name, FORMAT, 'ArtifactName', 'missing (pass a target to name the asset)');
    }
    yield* findingsOf(name, results, assetFrom(report, undefined, options), 'Results');
  },
};
