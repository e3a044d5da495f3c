import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import type { JsonPath } from '../../streams/json.js';
import { jsonStart, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { arr, defined, isObject, num, str, strings, unique, type Json } from '../common/json.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { fixedVersionFromText } from '../shared/fix-text.js';
import { aliasesOf, cweId } from '../common/identity.js';
import { cvss3Vector } from '../common/cvss.js';

// `npm audit --json`: v1 (npm <= 6, `advisories` keyed by advisory id, with installed versions) and
// v2 (npm 7+, `auditReportVersion: 2`, `vulnerabilities` keyed by package, advisories in `via`).
// The report names no project, so the asset is the target (`fs:<target>`, as for a Trivy or
// OSV-Scanner scan of the same directory). An error object (`{"error": {"code": "ENOAUDIT"}}`)
// means the audit did not run: it is rejected, never imported as a clean scan.

const FORMAT = 'npm-audit';

const fail: ReportFail = reportFail(FORMAT);

function assetOf(file: string, options: ParseOptions): AssetRef {
  if (!options.target) fail(file, [], 'npm audit reports do not name the project: pass a target to name the asset');
  return { assetKey: `fs:${options.target}`, kind: 'filesystem', name: options.target };
}

const severityOf = (raw: unknown): Severity => normalizeSeverity(raw) ?? 'unknown';

const GHSA = /GHSA(-[23456789cfghjmpqrvwx]{4}){3}/i;

/** `>= 1.4.1` names a fixed version; unions of ranges do not name one. */
function fixedFromRange(range: unknown): string | undefined {
  const m = typeof range === 'string' ? /^\s*>=\s*([0-9][^\s|<>=]*)\s*$/.exec(range) : null;
  return m?.[1];
}

/** Some npm versions write the list JSON-encoded in a string: `"[\"CWE-79\"]"`. */
function decodedList(raw: unknown): unknown {
  if (typeof raw !== 'string' || !raw.trimStart().startsWith('[')) return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

const cwesOf = (value: unknown): string[] | undefined => {
  const raw = decodedList(value);
  const list = unique((Array.isArray(raw) ? raw : [raw]).map(cweId).filter((c): c is string => c !== undefined));
  return list.length ? list : undefined;
};

/** npm audit reads the project's lockfile and names no other. */
const NPM_FACTS = packageFacts({ ecosystem: 'npm', manifest: 'package-lock.json' });

/** v1: one finding per advisory, installed version and CVE (npm lists each version's paths). */
function* advisoryFindings(file: string, value: unknown, path: JsonPath, asset: () => AssetRef): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const advisory = value;
  const module = str(advisory.module_name) ?? fail(file, [...path, 'module_name'], 'missing');
  const advisoryId = num(advisory.id) ?? str(advisory.id) ?? String(path[path.length - 1]);
  const cves = strings(advisory.cves).filter((c) => /^CVE-/i.test(c));
  const ghsa = str(advisory.github_advisory_id) ?? GHSA.exec(String(advisory.url ?? ''))?.[0];
  const ids = cves.length ? cves : [ghsa ?? `NPM-${advisoryId}`];
  const versions = unique(arr(advisory.findings).filter(isObject).map((f) => str(f.version)).filter((v): v is string => v !== undefined));
  const cvss = isObject(advisory.cvss) ? num(advisory.cvss.score) : undefined;
  const references = unique([str(advisory.url), ...(str(advisory.references)?.match(/https?:\/\/[^\s)\]]+/g) ?? [])].filter((u): u is string => !!u));
  for (const version of versions.length ? versions : ['']) {
    for (const issueId of ids) {
      yield defined<NormalizedFinding>({
        asset: asset(),
        kind: 'vulnerability',
        issueId,
        // The advisory's GHSA and npm ids, and its other CVEs when it names several.
        aliases: aliasesOf(issueId, [...cves, ghsa, `NPM-${advisoryId}`]),
        component: module,
        version,
        location: '',
        severity: severityOf(advisory.severity),
        cvssScore: cvss !== undefined && cvss > 0 && cvss <= 10 ? cvss : undefined,
        cvssVector: isObject(advisory.cvss) ? cvss3Vector(advisory.cvss.vectorString) : undefined,
        title: str(advisory.title),
        description: str(advisory.overview),
        references: references.length ? references : undefined,
        cwes: cwesOf(advisory.cwe),
        ...fixOf(fixedFromRange(advisory.patched_versions), () => fixedVersionFromText(str(advisory.recommendation))),
        ...NPM_FACTS,
      });
    }
  }
}

/**
 * v2: one finding per package and advisory it carries itself (`via` objects). `via` strings only
 * say "vulnerable through that dependency", whose own entry already holds the advisory. npm 7+
 * reports the vulnerable range, not the installed version, so version is ''.
 */
function* packageFindings(file: string, value: unknown, path: JsonPath, asset: () => AssetRef): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const entry = value;
  const pkg = str(entry.name) ?? String(path[path.length - 1]);
  const fix: Json = isObject(entry.fixAvailable) ? entry.fixAvailable : {};
  for (const [i, via] of arr(entry.via).entries()) {
    if (typeof via === 'string') continue;
    if (!isObject(via)) fail(file, [...path, 'via', i], 'expected an object or a package name');
    const component = str(via.dependency) ?? str(via.name) ?? pkg;
    const source = num(via.source) ?? str(via.source);
    const issueId = GHSA.exec(String(via.url ?? ''))?.[0] ?? (source !== undefined ? `NPM-${source}` : fail(file, [...path, 'via', i, 'url'], 'missing'));
    const npmId = source !== undefined ? `NPM-${source}` : undefined;
    const cvss = isObject(via.cvss) ? num(via.cvss.score) : undefined;
    const range = str(via.range);
    yield defined<NormalizedFinding>({
      asset: asset(),
      kind: 'vulnerability',
      issueId,
      aliases: aliasesOf(issueId, [npmId]),
      component,
      version: '',
      location: '',
      severity: severityOf(via.severity ?? entry.severity),
      cvssScore: cvss !== undefined && cvss > 0 && cvss <= 10 ? cvss : undefined,
      cvssVector: isObject(via.cvss) ? cvss3Vector(via.cvss.vectorString) : undefined,
      title: str(via.title),
      description: range ? `Vulnerable versions: ${range}` : undefined,
      references: str(via.url) ? [via.url as string] : undefined,
      cwes: cwesOf(via.cwe),
      ...fixOf(str(fix.name) === component ? str(fix.version) : undefined),
      ...NPM_FACTS,
    });
  }
}

export const npmAudit: Connector = {
  format: FORMAT,
  description: 'npm audit JSON (v1 advisories, v2/npm 7+ vulnerabilities); needs a target to name the project',
  detect(head) {
    const start = jsonStart(head);
    if (!start.startsWith('{')) return false;
    // The error object npm writes when the audit itself fails: claimed here so it is rejected clearly.
    if (/^\{\s*"error"\s*:\s*\{/.test(start) && /"code"\s*:\s*"E[A-Z0-9]+"/.test(head)) return true;
    if (/"auditReportVersion"\s*:\s*2\b/.test(head)) return true;
    if (/"advisories"\s*:\s*\{/.test(head) && /"actions"\s*:|"muted"\s*:|"module_name"\s*:/.test(head)) return true;
    return /"vulnerabilities"\s*:\s*\{/.test(head) && /"via"\s*:/.test(head) && /"isDirect"\s*:/.test(head) && !/"bomFormat"/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    let version: 1 | 2 | undefined;
    let resolved: AssetRef | undefined;
    const asset = () => (resolved ??= assetOf(name, options));
    const select = ['error', 'auditReportVersion', 'advisories.*', 'vulnerabilities.*'];
    const events = objectEvents(file, { name, format: FORMAT, select }, () => fail(name, [], 'expected a JSON object'));
    for await (const event of events) {
      const { path } = event;
      const [top] = path;
      if (top === 'error' && event.kind === 'value') {
        const error = isObject(event.value) ? event.value : {};
        const detail = [str(error.code), str(error.summary), str(error.detail)].filter(Boolean).join(': ');
        fail(name, ['error'], `npm audit report contains errors: ${detail || JSON.stringify(event.value)}; the audit did not run, refusing to import as an empty scan`);
      }
      if (top === 'auditReportVersion' && event.kind === 'value' && event.value !== 2) {
        fail(name, path, `unsupported version ${JSON.stringify(event.value)}`);
      }
      if (top !== 'advisories' && top !== 'vulnerabilities') continue;
      if (path.length === 1) {
        if (event.kind === 'value' ? event.value !== null : event.type !== 'object') fail(name, path, 'expected an object');
        version = top === 'advisories' ? 1 : 2;
        continue;
      }
      if (event.kind !== 'value') continue;
      if (top === 'advisories') yield* advisoryFindings(name, event.value, path, asset);
      else yield* packageFindings(name, event.value, path, asset);
    }
    if (version === undefined) fail(name, ['advisories'], 'missing (and no vulnerabilities): not an npm audit report');
  },
};
