import type { Severity } from '../../model.js';

// Identity rules shared by every connector. The fingerprint is asset + kind + issue + component +
// version + location, so the same CVE on the same package must come out byte-identical whichever
// scanner reported it: one naming rule per ecosystem, one issue-id rule, one path rule.

/** Ecosystems are named by their package-URL type (pypi, maven, npm, golang, deb...). */
export type Ecosystem = string;

const TRIVY_TYPES: Record<string, Ecosystem> = {
  'python-pkg': 'pypi', pip: 'pypi', pipenv: 'pypi', poetry: 'pypi', uv: 'pypi',
  jar: 'maven', pom: 'maven', gradle: 'maven', sbt: 'maven',
  npm: 'npm', yarn: 'npm', pnpm: 'npm', bun: 'npm', 'node-pkg': 'npm',
  gomod: 'golang', gobinary: 'golang',
  composer: 'composer', 'composer-vendor': 'composer',
  cargo: 'cargo', rustbinary: 'cargo',
  bundler: 'gem', gemspec: 'gem',
  nuget: 'nuget', 'dotnet-core': 'nuget', 'packages-props': 'nuget',
  debian: 'deb', ubuntu: 'deb', alpine: 'apk', wolfi: 'apk', chainguard: 'apk',
  redhat: 'rpm', centos: 'rpm', rocky: 'rpm', alma: 'rpm', fedora: 'rpm', amazon: 'rpm', oracle: 'rpm',
  suse: 'rpm', 'opensuse.leap': 'rpm', 'opensuse.tumbleweed': 'rpm', photon: 'rpm', 'cbl-mariner': 'rpm', azurelinux: 'rpm',
};

const GRYPE_TYPES: Record<string, Ecosystem> = {
  python: 'pypi', 'java-archive': 'maven', 'jenkins-plugin': 'maven', npm: 'npm', 'go-module': 'golang',
  'php-composer': 'composer', 'rust-crate': 'cargo', gem: 'gem', dotnet: 'nuget',
  deb: 'deb', rpm: 'rpm', apk: 'apk', alpm: 'alpm', portage: 'portage',
};

const OSV_ECOSYSTEMS: Record<string, Ecosystem> = {
  pypi: 'pypi', npm: 'npm', go: 'golang', maven: 'maven', packagist: 'composer', 'crates.io': 'cargo',
  rubygems: 'gem', nuget: 'nuget', debian: 'deb', ubuntu: 'deb', alpine: 'apk', hex: 'hex', pub: 'pub',
};

export const trivyEcosystem = (type: string | undefined): Ecosystem | undefined => (type ? TRIVY_TYPES[type] : undefined);
export const grypeEcosystem = (type: string | undefined): Ecosystem | undefined => (type ? GRYPE_TYPES[type] : undefined);
export const osvEcosystem = (name: string | undefined): Ecosystem | undefined =>
  name ? OSV_ECOSYSTEMS[name.toLowerCase().split(':')[0] ?? ''] : undefined;

/** Package managers whose packages Trivy reports without a path (one copy per system). */
export const OS_ECOSYSTEMS = new Set(['deb', 'rpm', 'apk', 'alpm', 'portage']);

/**
 * The canonical component name. Python names are case- and separator-insensitive (PEP 503), and
 * scanners disagree on spelling (`Flask` vs `flask`), so they are normalized; all else is kept.
 */
export function componentName(ecosystem: Ecosystem | undefined, name: string): string {
  return ecosystem === 'pypi' ? name.toLowerCase().replace(/[-_.]+/g, '-') : name;
}

export interface Purl {
  type: string;
  namespace?: string;
  name: string;
  version?: string;
}

/** Parses `pkg:type/namespace/name@version?qualifiers#subpath` (enough for naming; qualifiers dropped). */
function parsePurl(purl: string): Purl | undefined {
  const m = /^pkg:([a-zA-Z][a-zA-Z0-9.+-]*)\/([^?#]+?)(?:@([^?#]+))?(?:[?#].*)?$/.exec(purl.trim());
  if (!m) return undefined;
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const segments = m[2]!.split('/').filter(Boolean).map(decode);
  const name = segments.pop();
  if (!name) return undefined;
  return {
    type: m[1]!.toLowerCase(),
    ...(segments.length ? { namespace: segments.join('/') } : {}),
    name,
    ...(m[3] ? { version: decode(m[3]) } : {}),
  };
}

/** Where the namespace is part of the package's own name, and how the two are joined. */
const NAMESPACE_JOIN: Record<string, string> = { maven: ':', npm: '/', golang: '/', composer: '/', github: '/', swift: '/' };

/**
 * Name from the parts SBOM-style formats give (group, name, purl), as the CycloneDX XML connector
 * writes them: an explicit group joins with `:` for Maven (Trivy's `group:artifact`) and `/`
 * otherwise (npm scopes, Go, Composer); a purl namespace joins only where it is part of the
 * package's name (not a distro vendor such as `pkg:deb/debian/...`). Python names are normalized.
 */
export function nameFromParts(parts: { name: string; group?: string; purl?: string }): { name: string; ecosystem?: Ecosystem } {
  const purl = parts.purl ? parsePurl(parts.purl) : undefined;
  const ecosystem = purl?.type;
  let name = parts.name;
  if (parts.group) name = `${parts.group}${ecosystem === 'maven' ? ':' : '/'}${parts.name}`;
  else if (purl?.namespace && ecosystem && NAMESPACE_JOIN[ecosystem] && purl.name === parts.name) {
    name = `${purl.namespace}${NAMESPACE_JOIN[ecosystem]}${parts.name}`;
  }
  return { name: componentName(ecosystem, name), ...(ecosystem ? { ecosystem } : {}) };
}

/** Name and version of a purl that names a component not listed in the document. */
export function componentFromPurl(purl: string): { name: string; version: string; ecosystem: Ecosystem } | undefined {
  const parsed = parsePurl(purl);
  if (!parsed) return undefined;
  const { name } = nameFromParts({ name: parsed.name, purl });
  return { name, version: parsed.version ?? '', ecosystem: parsed.type };
}

/** Image and filesystem paths without the leading slash, as Trivy writes PkgPath. */
export const relPath = (path: string): string => path.replace(/^\/+/, '');

const MANIFEST = new RegExp(
  '(^|/)(package-lock\\.json|npm-shrinkwrap\\.json|yarn\\.lock|pnpm-lock\\.yaml|bun\\.lockb?|requirements[^/]*\\.txt|Pipfile(\\.lock)?'
  + '|poetry\\.lock|uv\\.lock|pdm\\.lock|pyproject\\.toml|setup\\.py|go\\.mod|go\\.sum|Cargo\\.lock|Cargo\\.toml|composer\\.(lock|json)'
  + '|Gemfile(\\.lock)?|pom\\.xml|[^/]*\\.gradle(\\.kts)?|[^/]*\\.lockfile|packages\\.lock\\.json|packages\\.config|[^/]*\\.csproj'
  + '|mix\\.lock|pubspec\\.lock|Podfile\\.lock|Package\\.resolved|conan\\.lock)$',
);

/** Lockfiles and manifests: Trivy reports their packages without a PkgPath. */
export const isManifestPath = (path: string): boolean => MANIFEST.test(path);

const CVE = /^CVE-\d{4}-\d+$/i;

/**
 * The issue id to key a finding on: the CVE when the report's own id (GHSA, distro or vendor
 * advisory) names exactly one CVE, because that is what other scanners report; otherwise the id.
 */
export function preferCve(id: string, aliases: Iterable<string>): string {
  if (CVE.test(id)) return id.toUpperCase();
  const cves = new Set<string>();
  for (const alias of aliases) if (CVE.test(alias)) cves.add(alias.toUpperCase());
  return cves.size === 1 ? [...cves][0]! : id;
}

/** The id as every connector spells it: CVE ids upper-case (`cve-2024-1` and `CVE-2024-1` are one). */
export const issueIdSpelling = (id: string): string => (CVE.test(id) ? id.toUpperCase() : id);

export const isCve = (id: string): boolean => CVE.test(id);

// Advisory ids are one token; a field holding a sentence or a URL is not an id.
const ALIAS = /^[A-Za-z][A-Za-z0-9]*(?:[-_:.][A-Za-z0-9]+)+$/;

/**
 * The aliases of a finding: every id the report gives its vulnerability but `issueId` (CVEs
 * upper-cased), one of each, sorted; undefined when there is none, so findings without aliases
 * carry no empty array.
 */
export function aliasesOf(issueId: string, ids: Iterable<string | undefined | null>): string[] | undefined {
  const own = issueIdSpelling(issueId);
  const out = new Set<string>();
  for (const raw of ids) {
    if (typeof raw !== 'string') continue;
    const id = issueIdSpelling(raw.trim());
    if (id && id !== own && ALIAS.test(id)) out.add(id);
  }
  return out.size ? [...out].sort() : undefined;
}

export function severityFromScore(score: number): Severity {
  return score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : score > 0 ? 'low' : 'info';
}

const SEVERITY_RANK: Record<Severity, number> = { unknown: 0, info: 1, low: 2, medium: 3, high: 4, critical: 5 };

export const maxSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[b] > SEVERITY_RANK[a] ? b : a);

/** Orders version strings piecewise (digits numerically): enough to pick the nearest fixed version. */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => v.replace(/^v/i, '').match(/\d+|[a-zA-Z]+/g) ?? [];
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return y !== undefined && /^\d/.test(y) ? -1 : 1;
    if (y === undefined) return /^\d/.test(x) ? 1 : -1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (nx !== ny) return nx ? 1 : -1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

// A few hundred CWE ids recur over millions of findings: each spelling is parsed once.
const cweCache = new Map<string, string | undefined>();

export const cweId = (v: unknown): string | undefined => {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return `CWE-${v}`;
  if (typeof v === 'string') {
    const hit = cweCache.get(v);
    if (hit !== undefined || cweCache.has(v)) return hit;
    const m = /^(?:CWE-)?(\d+)$/i.exec(v.trim());
    const id = m && m[1] !== '0' ? `CWE-${m[1]}` : undefined;
    if (cweCache.size >= 10_000) cweCache.clear(); // bounded: hostile input cannot grow it
    cweCache.set(v, id);
    return id;
  }
  return undefined;
};
