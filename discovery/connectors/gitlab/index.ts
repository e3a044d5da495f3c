import { basename } from 'node:path';
import type { Warn } from '../common/warnings.js';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { streamJson, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { fixedVersionFromText } from '../shared/fix-text.js';
import { defined, isObject, objects, str, unique, type Json } from '../common/json.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { cvss3BaseScore, cvss3BaseVector, cvss3Vector } from '../common/cvss.js';
import { aliasesOf, componentName, cweId, isManifestPath, preferCve, relPath, trivyEcosystem, type Ecosystem } from '../common/identity.js';

// GitLab security reports (the `gl-dependency-scanning-report.json` and
// `gl-container-scanning-report.json` CI artifacts, security report schema 2.x-15.x):
// `vulnerabilities[]`, each with `identifiers`, `location.dependency.package.name` / `version`,
// and `location.file` (dependency scanning) or `location.image` / `operating_system` (container
// scanning). The report type is `scan.type`, written after the vulnerabilities; GitLab's own
// older container reports (schema 14.0.x) have no `scan` at all, so detection also reads the
// vulnerabilities' shape in the head. One reader serves both types; each type is its own format id,
// and a `scan.type` naming the other type (or SAST, DAST, secrets...) is refused.

type ScanType = 'dependency_scanning' | 'container_scanning';

const GITLAB_TYPE = /"scan"\s*:\s*\{[^]*?"type"\s*:\s*"([a-z_]+)"/;

/** The report type the head shows, or undefined when it is not a GitLab dependency/container report. */
export function gitlabScanType(head: string): ScanType | undefined {
  if (!opensObject(head) || !/"vulnerabilities"\s*:\s*\[/.test(head)) return undefined;
  // Other formats with a `vulnerabilities` list: Snyk (`packageManager`), CycloneDX, SARIF.
  if (/"packageManager"\s*:|"bomFormat"\s*:|"runs"\s*:/.test(head)) return undefined;
  const declared = GITLAB_TYPE.exec(head)?.[1];
  if (declared) return declared === 'dependency_scanning' || declared === 'container_scanning' ? declared : undefined;
  const category = /"category"\s*:\s*"([a-z_]+)"/.exec(head)?.[1];
  if (category) return category === 'dependency_scanning' || category === 'container_scanning' ? category : undefined;
  // No `scan` in the head: a vulnerability with a dependency location and GitLab's identifiers.
  if (!/"dependency"\s*:\s*\{/.test(head) || !/"identifiers"\s*:\s*\[/.test(head) || !/"version"\s*:\s*"\d+\.\d+\.\d+"/.test(head)) return undefined;
  if (/"operating_system"\s*:|"image"\s*:\s*"/.test(head)) return 'container_scanning';
  if (/"location"\s*:\s*\{\s*"file"\s*:|"file"\s*:\s*"[^"]+"\s*,\s*"dependency"\s*:/.test(head)) return 'dependency_scanning';
  return undefined;
}

/** The ecosystem a dependency file implies (`service/go.sum` → golang). */
const MANIFESTS: [RegExp, Ecosystem][] = [
  [/(^|\/)(go\.(sum|mod))$/, 'golang'],
  [/(^|\/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|package\.json)$/, 'npm'],
  [/(^|\/)(Gemfile\.lock|gems\.locked)$/, 'gem'],
  [/(^|\/)(requirements[^/]*\.txt|Pipfile(\.lock)?|poetry\.lock|setup\.py|uv\.lock)$/, 'pypi'],
  [/(^|\/)(pom\.xml|build\.gradle(\.kts)?|gradle\.lockfile|build\.sbt)$/, 'maven'],
  [/(^|\/)composer\.lock$/, 'composer'],
  [/(^|\/)(packages\.lock\.json|project\.assets\.json)$/, 'nuget'],
  [/(^|\/)Cargo\.lock$/, 'cargo'],
  [/(^|\/)conan\.lock$/, 'conan'],
];
const manifestEcosystem = (file: string | undefined): Ecosystem | undefined =>
  file ? MANIFESTS.find(([re]) => re.test(file))?.[1] : undefined;

/** `debian 10.9`, `debian:9.4`, `alpine 3.14.2` → deb, apk; `Unknown` → none. */
const osEcosystem = (os: string | undefined): Ecosystem | undefined =>
  os ? trivyEcosystem(os.trim().toLowerCase().split(/[\s:]/)[0]) : undefined;

/**
 * The version GitLab's solution names: "Upgrade apt from 1.4.8 to 1.4.9", "Upgrade busybox to
 * 1.34.1-r5", "Upgrade to version v0.0.0-20201216223049-8b5274cf687f or above."; else what the shared
 * prose reader finds.
 */
export function gitlabFixedVersion(solution: string | undefined, pkg: string): string | undefined {
  if (!solution) return undefined;
  const m = /^\s*Upgrade\s+(?:(\S+)\s+)?(?:from\s+\S+\s+)?to\s+(?:version\s+)?(\S+?)(?:\s+or\s+(?:above|later|higher))?\.?\s*$/i.exec(solution);
  if (m && (m[1] === undefined || m[1] === pkg) && /\d/.test(m[2]!)) return m[2];
  return fixedVersionFromText(solution);
}

function issueIdOf(identifiers: Json[], fallback: string | undefined): string | undefined {
  const values = identifiers.map((i) => str(i.value) ?? str(i.name)).filter((v): v is string => !!v);
  const typed = (type: string) => identifiers.filter((i) => String(i.type ?? '').toLowerCase() === type).map((i) => str(i.value) ?? str(i.name)).filter((v): v is string => !!v);
  const cves = unique(typed('cve').map((c) => c.toUpperCase()));
  if (cves.length === 1) return cves[0];
  const ghsa = unique(typed('ghsa'));
  const lead = ghsa.length === 1 ? ghsa[0]! : (str(identifiers[0]?.name) ?? values[0] ?? fallback);
  return lead ? preferCve(lead, values) : undefined;
}

// Identifier types that name a weakness or a category, not the vulnerability.
const NOT_ALIASES = new Set(['cwe', 'owasp', 'wasc']);

/** The other ids GitLab names the vulnerability by: CVE and GHSA by value, the others by name (`Gemnasium-<uuid>`). */
function aliasesOfIdentifiers(issueId: string, identifiers: Json[]): string[] | undefined {
  return aliasesOf(issueId, identifiers.flatMap((i) => {
    const type = String(i.type ?? '').toLowerCase();
    if (NOT_ALIASES.has(type)) return [];
    return [type === 'cve' || type === 'ghsa' ? str(i.value) ?? str(i.name) : str(i.name) ?? str(i.value)];
  }));
}

/** Trivy's names for the language results of an image, which GitLab copies into `location.image`. */
const TRIVY_LANGUAGE_TARGETS: Record<string, Ecosystem> = {
  'Node.js': 'npm', Python: 'pypi', Java: 'maven', Ruby: 'gem', PHP: 'composer', '.NET': 'nuget', Go: 'golang', Rust: 'cargo',
};

/**
 * Whether a `location.image` really names an image. GitLab's Trivy-based scanner writes Trivy's
 * result target there for language packages (`Node.js`, `var/www/composer.lock`), not the image.
 */
const isLanguageTarget = (image: string): boolean => image in TRIVY_LANGUAGE_TARGETS || isManifestPath(image);

interface Header {
  scanType?: string;
  /** The distinct real images the vulnerabilities name. */
  images: Set<string>;
}

function gitlabConnector(format: string, type: ScanType, description: string): Connector {
  const fail: ReportFail = reportFail(format);

  function assetOf(file: string, location: Json, path: JsonPath, header: Header, options: ParseOptions): AssetRef {
    if (type === 'container_scanning') {
      const image = str(location.image);
      let name = options.target ?? (image && !isLanguageTarget(image) ? image : undefined);
      // A language package's entry names no image: it belongs to the report's one image.
      if (name === undefined && image && header.images.size === 1) name = [...header.images][0];
      if (name === undefined) {
        fail(file, [...path, 'location', 'image'], image
          ? `${image} is not an image and the report names ${header.images.size ? 'several' : 'no'} images (pass a target to name the asset)`
          : 'missing (pass a target to name the asset)');
      }
      // `name@sha256:...`: the digest is the image's, the name its identity (as Trivy and Grype give it).
      const at = options.target === undefined ? name.indexOf('@sha256:') : -1;
      if (at > 0) return { assetKey: `image:${name.slice(0, at)}`, kind: 'container_image', name: name.slice(0, at), digest: name.slice(at + 1) };
      return { assetKey: `image:${name}`, kind: 'container_image', name };
    }
    // A dependency-scanning report names files inside the project, never the project itself.
    const name = options.target ?? fail(file, [], 'the report does not name the project (pass a target to name the asset)');
    return { assetKey: `fs:${name}`, kind: 'filesystem', name };
  }

  function finding(file: string, v: unknown, path: JsonPath, header: Header, options: ParseOptions): NormalizedFinding {
    if (!isObject(v)) fail(file, path, 'expected an object');
    const location = isObject(v.location) ? v.location : fail(file, [...path, 'location'], 'missing');
    const dependency = isObject(location.dependency) ? location.dependency : fail(file, [...path, 'location', 'dependency'], 'missing');
    const pkg = isObject(dependency.package) ? dependency.package : {};
    const image = str(location.image);
    const languageTarget = type === 'container_scanning' && image !== undefined && isLanguageTarget(image) ? image : undefined;
    const manifestPath = str(location.file) ?? (languageTarget && isManifestPath(languageTarget) ? languageTarget : undefined);
    // GitLab's compare key (`cve`, `service/go.sum:gopkg.in/yaml.v2:gemnasium:<uuid>`) still names a package its location leaves out.
    const keyParts = (str(v.cve) ?? '').split(':');
    const fromKey = type === 'dependency_scanning' && keyParts.length >= 4 && keyParts[0] === manifestPath ? keyParts[1] : undefined;
    const rawName = str(pkg.name) ?? fromKey ?? fail(file, [...path, 'location', 'dependency', 'package', 'name'], 'missing');
    const identifiers = objects(v.identifiers);
    const issueId = issueIdOf(identifiers, str(v.cve)) ?? fail(file, [...path, 'identifiers'], 'missing');
    const ecosystem = languageTarget
      ? TRIVY_LANGUAGE_TARGETS[languageTarget] ?? manifestEcosystem(languageTarget)
      : type === 'container_scanning' ? osEcosystem(str(location.operating_system)) : manifestEcosystem(manifestPath);
    let cvssScore: number | undefined;
    let cvssVector: string | undefined;
    for (const c of objects(v.cvss_vectors)) {
      const vector = cvss3Vector(c.vector);
      const score = vector ? cvss3BaseScore(vector) : undefined;
      if (vector && score !== undefined && (cvssScore === undefined || score > cvssScore)) {
        cvssScore = score;
        cvssVector = cvss3BaseVector(vector);
      }
    }
    const solution = str(v.solution);
    const cwes = unique(identifiers.filter((i) => String(i.type ?? '').toLowerCase() === 'cwe').map((i) => cweId(str(i.value) ?? str(i.name)))
      .filter((c): c is string => c !== undefined));
    const references = unique([...objects(v.links), ...identifiers].map((l) => str(l.url)).filter((u): u is string => !!u));
    return defined<NormalizedFinding>({
      asset: assetOf(file, location, path, header, options),
      kind: 'vulnerability',
      issueId,
      aliases: aliasesOfIdentifiers(issueId, identifiers),
      component: componentName(ecosystem, rawName),
      version: str(dependency.version) ?? '',
      location: '',
      // GitLab writes the fix only as prose: "Upgrade apt from 1.4.8 to 1.4.9", "Upgrade to version 2.2.3 or above."
      ...fixOf(undefined, () => gitlabFixedVersion(solution, rawName)),
      severity: normalizeSeverity(v.severity) ?? 'unknown',
      cvssScore,
      cvssVector,
      title: str(v.name) ?? str(v.message),
      description: str(v.description),
      references: references.length ? references : undefined,
      cwes: cwes.length ? cwes : undefined,
      ...packageFacts({ ecosystem, manifest: manifestPath ? relPath(manifestPath) : undefined }),
    });
  }

  return {
    format,
    description,
    detect: (head) => gitlabScanType(head) === type,
    async *parse(file, options) {
      const name = basename(file);
      // `scan` follows the vulnerabilities: one light pass for its type and the images named.
      const header: Header = { images: new Set() };
      for await (const event of streamJson(file, { name, format, select: ['version', 'scan', 'vulnerabilities.*.location.image'] })) {
        if (event.kind !== 'value') continue;
        if (event.path[0] === 'version' && event.path.length === 1) {
          checkSchemaVersion(options.warn, name, format, event.value);
        } else if (event.path[0] === 'scan' && event.path.length === 1) {
          if (!isObject(event.value)) fail(name, ['scan'], 'expected an object');
          header.scanType = str(event.value.type);
        } else if (event.path[0] === 'vulnerabilities') {
          const image = str(event.value);
          if (image && !isLanguageTarget(image)) header.images.add(image);
        }
      }
      if (header.scanType !== undefined && header.scanType !== type) fail(name, ['scan', 'type'], `is ${header.scanType}, expected ${type}`);
      let sawList = false;
      const events = objectEvents(file, { name, format, select: ['vulnerabilities.*'] }, () => fail(name, [], 'expected a JSON object'));
      for await (const event of events) {
        const { path } = event;
        if (path[0] !== 'vulnerabilities') continue;
        if (path.length === 1) {
          sawList = true;
          if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
          continue;
        }
        if (event.kind !== 'value') continue;
        if (isObject(event.value) && str(event.value.category) && event.value.category !== type) {
          fail(name, [...path, 'category'], `is ${String(event.value.category)}, expected ${type}`);
        }
        yield finding(name, event.value, path, header, options);
      }
      if (!sawList) fail(name, ['vulnerabilities'], 'missing: not a GitLab security report');
    },
  };
}

/** The security report schema majors this reader was written for (2.x to 15.x). */
function checkSchemaVersion(warn: Warn | undefined, file: string, format: string, value: unknown): void {
  const major = typeof value === 'string' ? Number(/^(\d+)\./.exec(value)?.[1]) : NaN;
  if (major >= 2 && major <= 15) return;
  warn?.({ file, format, field: 'version', reason: `unknown report schema version ${JSON.stringify(value)} (written for 2.x to 15.x); findings may be missing` });
}

export const gitlabDependencyScanning = gitlabConnector('gitlab-dependency-scanning', 'dependency_scanning',
  'GitLab dependency scanning report JSON (gl-dependency-scanning-report.json)');
export const gitlabContainerScanning = gitlabConnector('gitlab-container-scanning', 'container_scanning',
  'GitLab container scanning report JSON (gl-container-scanning-report.json)');
