import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { readValue, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { defined, isObject, num, objects, str, strings, unique, type Json } from '../common/json.js';
import {
  OS_ECOSYSTEMS, aliasesOf, componentName, grypeEcosystem, isManifestPath, nameFromParts, preferCve, relPath, severityFromScore,
} from '../common/identity.js';
import { cvss3Vector } from '../common/cvss.js';
import { baseImageOf } from '../common/base-image.js';
import { packageFacts } from '../common/package-facts.js';

// Grype JSON (`grype <source> -o json`). Grype writes `matches` first and `source` (the scanned
// image or directory) after them, so the asset comes from a first, light pass that reads only
// `source` (the matches are tokenized, never built); the second pass streams the matches.
// Identity follows Trivy's: the CVE rather than a GHSA/distro id, no path for OS packages, and
// for language packages the package's own file (Trivy's PkgPath) unless it is a lockfile.

const FORMAT = 'grype';

const fail: ReportFail = reportFail(FORMAT);

type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

/** Grype's fix.state; `fixed` means a fixed version exists, the installed one is still affected. */
const FIX_STATES: Record<string, VendorStatus> = {
  fixed: 'fix_available',
  'not-fixed': 'affected',
  'wont-fix': 'will_not_fix',
  unknown: 'unknown',
};

/** Syft keeps the image config and manifest as base64 JSON; undefined when absent or unreadable. */
function encodedJson(value: unknown): Json | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function assetOf(file: string, source: Json | undefined, options: ParseOptions): AssetRef {
  const type = str(source?.type);
  const target = source?.target;
  const image = isObject(target) ? target : undefined;
  const reported = image ? str(image.userInput) ?? strings(image.tags)[0] : str(target);
  const name = options.target ?? reported;
  if (!name) throw new ReportError(file, FORMAT, 'source.target', 'missing (pass a target to name the asset)');
  if (type === 'image') {
    // The same digest Trivy records: the registry digest, else the image ID.
    const digest = strings(image?.repoDigests)[0] ?? str(image?.imageID);
    // Syft's image labels, else the labels of the image config, else the manifest's annotations.
    const config = encodedJson(image?.config)?.config;
    const builtFrom = baseImageOf(image?.labels, isObject(config) ? config.Labels : undefined, encodedJson(image?.manifest)?.annotations);
    return { assetKey: `image:${name}`, kind: 'container_image', name, ...(digest ? { digest } : {}), ...(builtFrom ? { builtFrom } : {}) };
  }
  if (type === 'directory' || type === 'file') return { assetKey: `fs:${name}`, kind: 'filesystem', name };
  return { assetKey: `asset:${name}`, kind: 'other', name };
}

interface Cvss {
  nvd: boolean;
  version: string;
  score: number;
  vector?: string;
}

/** Every CVSS entry of the match, old (`cvssV3`/`cvssV2`) and current (`cvss[]`) layouts alike. */
function cvssEntries(vuln: Json, nvd: boolean): Cvss[] {
  const out: Cvss[] = [];
  for (const c of objects(vuln.cvss)) {
    const score = num(isObject(c.metrics) ? c.metrics.baseScore : undefined);
    const vector = cvss3Vector(c.vector);
    if (score !== undefined) out.push({ nvd, version: String(c.version ?? ''), score, ...(vector ? { vector } : {}) });
  }
  for (const [key, version] of [['cvssV3', '3'], ['cvssV2', '2']] as const) {
    const old = vuln[key];
    const score = num(isObject(old) ? old.baseScore : undefined);
    // Grype wrote the legacy vector as `vector`; NVD's own JSON calls it `vectorString`.
    const vector = isObject(old) ? cvss3Vector(old.vector) ?? cvss3Vector(old.vectorString) : undefined;
    if (score !== undefined) out.push({ nvd, version, score, ...(vector ? { vector } : {}) });
  }
  return out;
}

/** NVD's v3 score first (Trivy's yardstick), then any v3, then v2. */
function cvssOf(vuln: Json, related: Json[]): { score?: number; vector?: string; v3?: boolean } {
  const isNvd = (v: Json) => /^nvd/.test(String(v.namespace ?? ''));
  const all = [vuln, ...related].flatMap((v) => cvssEntries(v, isNvd(v)));
  const pick =
    all.find((c) => c.nvd && c.version.startsWith('3'))
    ?? all.find((c) => c.version.startsWith('3'))
    ?? all.find((c) => c.nvd && c.version.startsWith('2'))
    ?? all.find((c) => c.version.startsWith('2'));
  // The picked rating's vector, else the first v3 vector in the same order (NVD first).
  const vector = pick?.vector ?? all.find((c) => c.nvd && c.vector)?.vector ?? all.find((c) => c.vector)?.vector;
  return {
    ...(pick && pick.score >= 0 && pick.score <= 10 ? { score: pick.score, v3: pick.version.startsWith('3') } : {}),
    ...(vector ? { vector } : {}),
  };
}

/** Packages built into a file (a Go or Rust binary, a Java archive): the file is what gets rebuilt. */
const BUILT_TYPES = new Set(['go-module', 'rust-crate', 'java-archive', 'jenkins-plugin', 'dotnet']);

const purlType = (purl: string | undefined): string | undefined => /^pkg:([a-zA-Z][a-zA-Z0-9.+-]*)\//.exec(purl ?? '')?.[1]?.toLowerCase();

/** Syft's `upstream=` purl qualifier (`glibc`, `util-linux@2.38.1-5+deb12u1`): the source package. */
function purlUpstream(purl: string | undefined): string | undefined {
  const m = /[?&]upstream=([^&#]+)/.exec(purl ?? '');
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!).replace(/@.*$/, '') || undefined;
  } catch {
    return undefined;
  }
}

function findingOf(file: string, value: unknown, path: JsonPath, asset: AssetRef): NormalizedFinding {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const vuln = isObject(value.vulnerability) ? value.vulnerability : fail(file, [...path, 'vulnerability'], 'missing');
  const artifact = isObject(value.artifact) ? value.artifact : fail(file, [...path, 'artifact'], 'missing');
  const id = str(vuln.id) ?? fail(file, [...path, 'vulnerability', 'id'], 'missing');
  const pkg = str(artifact.name) ?? fail(file, [...path, 'artifact', 'name'], 'missing');
  if (typeof artifact.version !== 'string') fail(file, [...path, 'artifact', 'version'], 'expected a string');
  const related = objects(value.relatedVulnerabilities);
  const cvss = cvssOf(vuln, related);
  const stated = normalizeSeverity(vuln.severity === undefined || vuln.severity === null || vuln.severity === '' ? 'unknown' : vuln.severity)
    ?? fail(file, [...path, 'vulnerability', 'severity'], `unknown severity ${JSON.stringify(vuln.severity)}`);
  // A match Grype rates no severity for (absent or `Unknown`) takes the CVSS v3 qualitative rating
  // of its base score, as CycloneDX, SARIF and OSV do; a v2-only score has no such ranges.
  const severity = stated === 'unknown' && cvss.v3 && cvss.score !== undefined ? severityFromScore(cvss.score) : stated;

  const type = str(artifact.type);
  const ecosystem = grypeEcosystem(type);
  // Grype names Java archives by artifact id only; the purl carries the group Trivy names them by.
  const purl = str(artifact.purl);
  const component = ecosystem === 'maven' && purl ? nameFromParts({ name: pkg, purl }).name : componentName(ecosystem, pkg);
  const firstPath = str(objects(artifact.locations)[0]?.path);
  const location = !firstPath || (ecosystem && OS_ECOSYSTEMS.has(ecosystem)) || isManifestPath(firstPath) ? '' : relPath(firstPath);
  const facts = packageFacts({
    ecosystem: ecosystem ?? purlType(purl),
    manifest: firstPath && (isManifestPath(firstPath) || BUILT_TYPES.has(type ?? '')) ? relPath(firstPath) : undefined,
    sourcePackage: str(objects(artifact.upstreams)[0]?.name) ?? purlUpstream(purl),
  });

  const fix = isObject(vuln.fix) ? vuln.fix : {};
  const state = str(fix.state);
  const fixedVersion = state === 'fixed' ? strings(fix.versions)[0] : str(vuln.fixedInVersion);
  const description = str(vuln.description) ?? related.map((r) => str(r.description)).find(Boolean);
  const references = unique([...strings(vuln.urls), ...strings(vuln.links), ...(str(vuln.dataSource) ? [vuln.dataSource as string] : [])]);

  // The match's own id (a GHSA or distro advisory) and its related records' ids: the CVE keys the
  // finding when there is exactly one, the others are kept as its aliases.
  const relatedIds = related.map((r) => str(r.id));
  const issueId = preferCve(id, relatedIds.filter((r): r is string => r !== undefined));
  return defined<NormalizedFinding>({
    asset,
    kind: 'vulnerability',
    issueId,
    aliases: aliasesOf(issueId, [id, ...relatedIds]),
    component,
    version: artifact.version,
    location,
    fixedVersion,
    severity,
    cvssScore: cvss.score,
    cvssVector: cvss.vector,
    vendorStatus: state ? FIX_STATES[state] : undefined,
    description,
    references: references.length ? references : undefined,
    ...(fixedVersion ? { fixSource: 'scanner' as const } : {}),
    ...facts,
  });
}

export const grype: Connector = {
  format: FORMAT,
  description: 'Grype JSON report (matches with artifact and vulnerability), images and directories',
  detect(head) {
    if (!opensObject(head) || !/"matches"\s*:\s*\[/.test(head)) return false;
    return /"matchDetails"\s*:|"relatedVulnerabilities"\s*:|"descriptor"\s*:\s*\{\s*"name"\s*:\s*"grype"|"source"\s*:\s*\{\s*"type"\s*:/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    let source: Json | undefined;
    let sourceRead = false;
    let sawMatches = false;
    let asset: AssetRef | undefined;

    const readSource = async (): Promise<Json | undefined> => {
      const value = await readValue(file, { name, format: FORMAT }, 'source');
      return isObject(value) ? value : undefined;
    };

    const select = ['matches.*', 'source'];
    const events = objectEvents(file, { name, format: FORMAT, select }, () => fail(name, [], 'expected a JSON object'));
    for await (const event of events) {
      const { path } = event;
      if (path[0] === 'source' && event.kind === 'value') {
        source = isObject(event.value) ? event.value : undefined;
        sourceRead = true;
        continue;
      }
      if (path[0] !== 'matches') continue;
      if (path.length === 1) {
        sawMatches = true;
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        continue;
      }
      if (event.kind !== 'value') continue;
      if (!asset) {
        if (!sourceRead) source = await readSource();
        sourceRead = true;
        asset = assetOf(name, source, options);
      }
      yield findingOf(name, event.value, path, asset);
    }
    if (!sawMatches) fail(name, ['matches'], 'missing: not a Grype JSON report');
  },
};
