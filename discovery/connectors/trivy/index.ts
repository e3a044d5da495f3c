import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import { streamJsonBatches, formatPath, type JsonPath } from '../../streams/json.js';
import { blank, isObject, str, strings, defined, type Json } from '../common/json.js';
import { aliasesOf, componentName, cweId, isManifestPath, relPath, trivyEcosystem } from '../common/identity.js';
import { packageFacts, type PackageFacts } from '../common/package-facts.js';
import { cvss3Vector } from '../common/cvss.js';
import { baseImageOf } from '../common/base-image.js';

// Trivy JSON (`trivy image|fs|repo|k8s --format json`): SchemaVersion 2 reports, Kubernetes cluster
// reports (ClusterName), and the legacy pre-2021 form that is a bare array of results. Streamed:
// the header (ArtifactName, ArtifactType, Metadata) precedes Results in every Trivy version, so the
// asset is known before the first finding; a header written after Results is rejected, not guessed.

const FORMAT = 'trivy-json';

type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

/**
 * Trivy's `Status`. `fixed` means a fixed version exists, the installed one is still affected;
 * deferred and end-of-life fixes will not reach this version either.
 */
const STATUSES: Record<string, VendorStatus> = {
  affected: 'affected',
  fixed: 'fix_available',
  not_affected: 'not_affected',
  under_investigation: 'under_investigation',
  will_not_fix: 'will_not_fix',
  fix_deferred: 'will_not_fix',
  end_of_life: 'will_not_fix',
  unknown: 'unknown',
};

const K8S_GROUPS = ['Vulnerabilities', 'Misconfigurations', 'Resources'] as const;
const RESULT_FIELDS = ['Target', 'Class', 'Type', 'Vulnerabilities.*', 'Misconfigurations.*', 'Secrets.*'];

const SELECT = [
  'SchemaVersion', 'ArtifactName', 'ArtifactType', 'Metadata', 'ClusterName',
  ...RESULT_FIELDS.map((f) => `Results.*.${f}`),
  // Legacy: the root is the results array.
  ...RESULT_FIELDS.map((f) => `*.${f}`),
  // Kubernetes: resources grouped by finding type (older) or in one Resources list (newer).
  ...K8S_GROUPS.flatMap((g) => [`${g}.*.Namespace`, `${g}.*.Kind`, `${g}.*.Name`, ...RESULT_FIELDS.map((f) => `${g}.*.Results.*.${f}`)]),
];

// The members each kind of finding is built from: the rest of a vulnerability (package ids,
// layers, data sources, vendor severities, dates) is most of its bytes and is only validated.
const KEEP: Record<string, readonly string[]> = {
  Vulnerabilities: ['VulnerabilityID', 'VendorIDs', 'PkgName', 'PkgPath', 'SrcName', 'InstalledVersion', 'FixedVersion', 'Status', 'Severity', 'Title', 'Description', 'PrimaryURL', 'References', 'CweIDs', 'CVSS'],
  Misconfigurations: ['ID', 'AVDID', 'Status', 'Severity', 'Title', 'Message', 'Description', 'PrimaryURL', 'References'],
  Secrets: ['RuleID', 'StartLine', 'Severity', 'Title'],
};
const KEEP_BY_PATTERN = Object.fromEntries(
  ['Results.*.', '*.', ...K8S_GROUPS.map((g) => `${g}.*.Results.*.`)].flatMap((prefix) =>
    Object.entries(KEEP).map(([field, names]) => [`${prefix}${field}.*`, names])),
);

interface Header {
  schemaVersion?: unknown;
  artifactName?: unknown;
  artifactType?: string;
  metadata?: Json;
  clusterName?: string;
}

/** The Result (and, in cluster reports, the resource) a finding sits in. */
interface Scope {
  target?: string;
  type?: string;
  /** `os-pkgs`, `lang-pkgs`, `config`, `secret`... (absent in legacy reports). */
  class?: string;
  asset: () => AssetRef;
  /** The Result's package facts, worked out at its first vulnerability. */
  facts?: PackageFacts;
}

/** Binaries whose packages are built in: the file itself, named by Target, is what gets rebuilt. */
const BUILT_TYPES = new Set(['gobinary', 'rustbinary']);

/**
 * A Result's package facts. Its `Target` is the manifest of language packages when it names a file
 * (`app/package-lock.json`, `usr/local/bin/app`, `app/libs/x.jar`), not when it names a language
 * (`Python`, `Node.js`, `Java`: packages installed one by one, whose own path is the location).
 */
function resultFacts(scope: Scope): PackageFacts {
  const ecosystem = trivyEcosystem(scope.type);
  const packageClass = scope.class === 'os-pkgs' ? 'os' : scope.class === 'lang-pkgs' ? 'app' : undefined;
  const target = scope.target;
  const isFile = target !== undefined
    && (isManifestPath(target) || target.includes('/') || /\.(jar|war|ear|hpi|jpi)$/i.test(target) || BUILT_TYPES.has(scope.type ?? ''));
  return packageFacts({ ecosystem, packageClass, manifest: isFile && scope.class !== 'os-pkgs' ? relPath(target) : undefined });
}

/** `image (debian 12.7)` -> `image`: Trivy's OS result target is the artifact plus its OS. */
const withoutOs = (target: string): string => target.replace(/\s+\([^()]*\)$/, '');

function imageAsset(header: Header, firstTarget: string | undefined, options: ParseOptions, legacy: boolean): AssetRef {
  const type = header.artifactType;
  const metadata = header.metadata ?? {};
  const tags = strings(metadata.RepoTags);
  const reported = str(header.artifactName);
  // Trivy writes ArtifactName "" for images scanned by ID; the tag or the OS result's target names them then.
  const name = options.target
    ?? (legacy ? firstTarget : reported ?? tags[0] ?? (firstTarget ? withoutOs(firstTarget) : undefined))
    ?? 'unknown';
  const digest = strings(metadata.RepoDigests)[0] ?? str(metadata.ImageID);
  const kind: AssetRef['kind'] =
    type === 'container_image' || (!type && firstTarget?.includes('(')) ? 'container_image'
    : type === 'filesystem' ? 'filesystem'
    : type === 'repository' ? 'repository'
    : type === 'vm' ? 'host'
    : 'other';
  const prefix = { container_image: 'image', filesystem: 'fs', repository: 'repo', host: 'host', other: 'asset' }[kind];
  const config = isObject(metadata.ImageConfig) ? metadata.ImageConfig.config : undefined;
  const builtFrom = kind === 'container_image' ? baseImageOf(isObject(config) ? config.Labels : undefined) : undefined;
  return { assetKey: `${prefix}:${name}`, kind, name, ...(digest ? { digest } : {}), ...(builtFrom ? { builtFrom } : {}) };
}

const TRIVY_SEVERITIES: Record<string, Severity> = { CRITICAL: 'critical', HIGH: 'high', MEDIUM: 'medium', LOW: 'low', UNKNOWN: 'unknown' };

/** `CweIDs` as CWE-<n> ids (non-strings and blanks dropped, as strings() does); undefined when none. */
function cweList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  let out: string[] | undefined;
  for (const item of value) {
    if (typeof item !== 'string' || blank(item)) continue;
    const id = cweId(item);
    if (id !== undefined) (out ??= []).push(id);
  }
  return out;
}

const score = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 10;

/** Trivy reports CVSS per vendor; NVD's v3 score is the common yardstick, then any v3, then v2. */
function cvssOf(vuln: Json): number | undefined {
  // Loops, not entries/filter/spread: this runs once per finding of million-finding reports.
  const cvss = vuln.CVSS;
  if (!isObject(cvss)) return undefined;
  const nvd = isObject(cvss.nvd) ? cvss.nvd : undefined;
  for (const field of ['V3Score', 'V2Score'] as const) {
    if (nvd && score(nvd[field])) return nvd[field];
    for (const vendor of Object.keys(cvss)) {
      const v = cvss[vendor];
      if (isObject(v) && score(v[field])) return v[field];
    }
  }
  return undefined;
}

/** NVD's v3 vector first, as for the score, then any vendor's. */
function cvssVectorOf(vuln: Json): string | undefined {
  const cvss = vuln.CVSS;
  if (!isObject(cvss)) return undefined;
  if (isObject(cvss.nvd)) {
    const nvd = cvss3Vector(cvss.nvd.V3Vector);
    if (nvd) return nvd;
  }
  for (const vendor of Object.keys(cvss)) {
    const v = cvss[vendor];
    const vector = isObject(v) ? cvss3Vector(v.V3Vector) : undefined;
    if (vector) return vector;
  }
  return undefined;
}

function references(item: Json): string[] | undefined {
  const listed = Array.isArray(item.References) ? item.References : [];
  const primary = str(item.PrimaryURL);
  // A handful per finding: a linear search beats building a Set; a long (hostile) list gets the Set.
  if (listed.length > 64) {
    const refs = new Set(strings(listed));
    if (primary) refs.add(primary);
    return refs.size ? [...refs] : undefined;
  }
  const refs: string[] = [];
  for (const ref of listed) if (typeof ref === 'string' && !blank(ref) && !refs.includes(ref)) refs.push(ref);
  if (primary && !refs.includes(primary)) refs.push(primary);
  return refs.length ? refs : undefined;
}

class Reader {
  constructor(readonly file: string) {}

  fail(path: JsonPath, reason: string): never {
    throw new ReportError(this.file, FORMAT, formatPath(path) || undefined, reason);
  }

  object(value: unknown, path: JsonPath): Json {
    return isObject(value) ? value : this.fail(path, 'expected an object');
  }

  required(item: Json, name: string, path: JsonPath): string {
    const value = item[name];
    if (typeof value !== 'string' || blank(value)) {
      this.fail([...path, name], value === undefined ? 'missing' : 'expected a non-empty string');
    }
    return value;
  }

  severity(item: Json, path: JsonPath): Severity {
    const raw = item.Severity;
    // Trivy's own spellings first: the general rule trims and lower-cases a copy of every one.
    const severity = (typeof raw === 'string' && Object.hasOwn(TRIVY_SEVERITIES, raw) ? TRIVY_SEVERITIES[raw] : undefined)
      ?? normalizeSeverity(raw ?? 'unknown');
    return severity ?? this.fail([...path, 'Severity'], `unknown severity ${JSON.stringify(item.Severity)}`);
  }

  vulnerability(value: unknown, path: JsonPath, scope: Scope): NormalizedFinding {
    const vuln = this.object(value, path);
    const issueId = this.required(vuln, 'VulnerabilityID', path);
    const pkg = this.required(vuln, 'PkgName', path);
    const version = this.required(vuln, 'InstalledVersion', path);
    const severity = this.severity(vuln, path);
    const cwes = cweList(vuln.CweIDs);
    // Only the fields that have a value, in the model's order; built directly rather than copied
    // through defined(): this runs once per finding of million-finding reports.
    const finding: Record<string, unknown> = {
      asset: scope.asset(),
      kind: 'vulnerability',
      issueId,
      component: componentName(trivyEcosystem(scope.type), pkg),
      version,
      location: typeof vuln.PkgPath === 'string' ? vuln.PkgPath : '',
    };
    // Distro advisories (DSA, RHSA, ALAS...) beside the CVE. DataSource names a database
    // (`debian`, `ghsa`), not the vulnerability, so it gives no alias.
    if (Array.isArray(vuln.VendorIDs) && vuln.VendorIDs.length > 0) {
      const aliases = aliasesOf(issueId, vuln.VendorIDs as unknown[] as string[]);
      if (aliases) finding.aliases = aliases;
    }
    const fixedVersion = str(vuln.FixedVersion);
    if (fixedVersion !== undefined) {
      finding.fixedVersion = fixedVersion;
      finding.fixSource = 'scanner';
    }
    finding.severity = severity;
    const cvssScore = cvssOf(vuln);
    if (cvssScore !== undefined) finding.cvssScore = cvssScore;
    const cvssVector = cvssVectorOf(vuln);
    if (cvssVector !== undefined) finding.cvssVector = cvssVector;
    if (typeof vuln.Title === 'string') finding.title = vuln.Title;
    const vendorStatus = typeof vuln.Status === 'string' ? STATUSES[vuln.Status] : undefined;
    if (vendorStatus !== undefined) finding.vendorStatus = vendorStatus;
    const description = str(vuln.Description);
    if (description !== undefined) finding.description = description;
    const refs = references(vuln);
    if (refs !== undefined) finding.references = refs;
    if (cwes !== undefined) finding.cwes = cwes;
    const facts = (scope.facts ??= resultFacts(scope));
    if (facts.ecosystem !== undefined) finding.ecosystem = facts.ecosystem;
    if (facts.packageClass !== undefined) finding.packageClass = facts.packageClass;
    if (facts.manifest !== undefined) finding.manifest = facts.manifest;
    // Jars found in an image share one Result (`Java`): each one's own archive is what gets rebuilt, as Grype says.
    else if (scope.type === 'jar' && typeof vuln.PkgPath === 'string' && vuln.PkgPath !== '') finding.manifest = relPath(vuln.PkgPath);
    // Trivy's SrcName: the distribution's source package (libc6 -> glibc); one rebuild fixes them all.
    const sourcePackage = str(vuln.SrcName);
    if (sourcePackage !== undefined) finding.sourcePackage = sourcePackage;
    return finding as unknown as NormalizedFinding;
  }

  /** Failed checks only: PASS entries appear with --include-non-failures and are not exposures. */
  misconfiguration(value: unknown, path: JsonPath, scope: Scope): NormalizedFinding | undefined {
    const item = this.object(value, path);
    const status = typeof item.Status === 'string' ? item.Status.toUpperCase() : 'FAIL';
    if (status === 'PASS') return undefined;
    const issueId = str(item.ID) ?? str(item.AVDID) ?? this.fail([...path, 'ID'], 'missing');
    const target = scope.target ?? this.fail([...path.slice(0, -2), 'Target'], 'missing');
    return defined<NormalizedFinding>({
      asset: scope.asset(),
      kind: 'misconfiguration',
      issueId,
      component: target,
      version: '',
      location: target,
      severity: this.severity(item, path),
      title: str(item.Title),
      vendorStatus: status === 'EXCEPTION' ? 'suppressed' : undefined,
      description: str(item.Message) ?? str(item.Description),
      references: references(item),
    });
  }

  /** The matched text itself is never kept: Trivy redacts it, and it has no place in a finding store. */
  secret(value: unknown, path: JsonPath, scope: Scope): NormalizedFinding {
    const item = this.object(value, path);
    const issueId = this.required(item, 'RuleID', path);
    const target = scope.target ?? this.fail([...path.slice(0, -2), 'Target'], 'missing');
    const line = typeof item.StartLine === 'number' ? item.StartLine : undefined;
    return defined<NormalizedFinding>({
      asset: scope.asset(),
      kind: 'secret',
      issueId,
      component: target,
      version: '',
      location: line !== undefined ? `${target}:${line}` : target,
      severity: this.severity(item, path),
      title: str(item.Title),
    });
  }
}

/** A Result being read; also the scope of its findings (target and type as read so far). */
interface ResultState extends Scope {
  key: string | number;
}

interface ResourceState {
  key: string;
  namespace?: string;
  kind?: string;
  name?: string;
  asset?: AssetRef;
}

export const trivy: Connector = {
  format: FORMAT,
  description: 'Trivy JSON report (SchemaVersion 2, Kubernetes cluster, or legacy list): vulnerabilities, misconfigurations, secrets',
  detect(head) {
    const start = head.replace(/^\uFEFF/, '').trimStart();
    if (start === 'null') return true;
    if (start.startsWith('{')) {
      if (/"SchemaVersion"\s*:/.test(head) && /"ArtifactName"|"Results"/.test(head)) return true;
      return /^\{\s*"ClusterName"\s*:/.test(start) && /"(Vulnerabilities|Misconfigurations|Resources)"\s*:/.test(head);
    }
    return start.startsWith('[') && /"Target"\s*:/.test(head) && /"Vulnerabilities"|"Type"/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    const read: Reader = new Reader(name);
    const header: Header = {};
    let mode: 'report' | 'legacy' | 'cluster' | undefined;
    let firstTarget: string | undefined;
    let asset: AssetRef | undefined;
    let result: ResultState | undefined;
    let resource: ResourceState | undefined;

    const reportAsset = (): AssetRef => {
      if (asset) return asset;
      if (mode === 'report') {
        if (header.schemaVersion === undefined) read.fail(['SchemaVersion'], 'missing (it must precede Results)');
        if (options.target === undefined && typeof header.artifactName !== 'string') {
          read.fail(['ArtifactName'], 'missing before Results (pass a target to name the asset)');
        }
      }
      return (asset = imageAsset(header, firstTarget, options, mode === 'legacy'));
    };

    const resourceAsset = (state: ResourceState): AssetRef => {
      if (state.asset) return state.asset;
      const cluster = options.target ?? header.clusterName ?? read.fail(['ClusterName'], 'missing (pass a target to name the cluster)');
      const path = `${cluster}/${state.namespace ?? ''}/${state.kind ?? ''}/${state.name ?? ''}`;
      return (state.asset = { assetKey: `k8s:${path}`, kind: 'other', name: path });
    };

    const headerField = (path: JsonPath): boolean => {
      if (path.length !== 1 || typeof path[0] !== 'string') return false;
      if (asset && ['ArtifactName', 'ArtifactType', 'Metadata'].includes(path[0])) {
        read.fail(path, 'appears after Results; the asset was already named (pass a target, or put the header first)');
      }
      return true;
    };

    for await (const events of streamJsonBatches(file, { name, format: FORMAT, select: SELECT, keep: KEEP_BY_PATTERN })) {
     for (const event of events) {
      const { path } = event;
      if (path.length === 0) {
        if (event.kind === 'value') {
          // Older Trivy versions write a literal `null` when there is nothing to report.
          if (event.value === null) return;
          read.fail([], 'expected a JSON object or array');
        }
        mode = event.type === 'array' ? 'legacy' : 'report';
        continue;
      }

      if (event.kind === 'value' && mode !== 'legacy' && headerField(path)) {
        const value = event.value;
        switch (path[0]) {
          case 'SchemaVersion':
            if (value !== 2) read.fail(path, `unsupported version ${JSON.stringify(value)}`);
            header.schemaVersion = value;
            continue;
          case 'ArtifactName':
            header.artifactName = value;
            continue;
          case 'ArtifactType':
            header.artifactType = str(value);
            continue;
          case 'Metadata':
            header.metadata = isObject(value) ? value : {};
            continue;
          case 'ClusterName':
            header.clusterName = str(value);
            mode = 'cluster';
            continue;
          default:
            break;
        }
      }

      // Where in the document: [Results, i, ...] | [i, ...] (legacy) | [Group, r, Results, i, ...] (cluster).
      // `from`: where the part below the Result starts; the paths are not copied on the hot path.
      const top = path[0];
      let from: number;
      let resultKey: string | number;
      if (mode === 'legacy') {
        if (typeof top !== 'number') continue;
        from = 1;
        resultKey = top;
      } else if (top === 'Results') {
        if (mode === 'cluster') read.fail(path, 'a Kubernetes cluster report has no Results');
        if (path.length === 1) {
          if (event.kind === 'value' && event.value !== null) read.fail(path, 'expected an array');
          if (event.kind === 'open' && event.type !== 'array') read.fail(path, 'expected an array');
          continue;
        }
        from = 2;
        if (typeof path[1] !== 'number') read.fail(path.slice(0, 1), 'expected an array');
        resultKey = path[1];
      } else if (K8S_GROUPS.includes(top as (typeof K8S_GROUPS)[number])) {
        mode = 'cluster';
        if (path.length === 1) {
          if ((event.kind === 'value' && event.value !== null) || (event.kind === 'open' && event.type !== 'array')) read.fail(path, 'expected an array');
          continue;
        }
        if (typeof path[1] !== 'number') read.fail(path.slice(0, 1), 'expected an array');
        const resourceKey = `${top}/${path[1]}`;
        if (resource?.key !== resourceKey) resource = { key: resourceKey };
        if (path.length === 2) {
          if (event.kind === 'value') read.fail(path, 'expected an object');
          continue;
        }
        if (path.length === 3 && event.kind === 'value') {
          const v = str(event.value);
          if (path[2] === 'Namespace') resource.namespace = v;
          else if (path[2] === 'Kind') resource.kind = v;
          else if (path[2] === 'Name') resource.name = v;
          continue;
        }
        if (path[2] !== 'Results' || path.length < 4) continue;
        if (path.length === 4 || typeof path[3] !== 'number') {
          if (event.kind === 'value' && event.value !== null) read.fail(path, 'expected an array');
          continue;
        }
        from = 4;
        resultKey = `${resourceKey}/${path[3]}`;
      } else {
        continue;
      }

      if (result?.key !== resultKey) {
        const state = resource;
        result = {
          key: resultKey,
          asset: () => (mode === 'cluster' && state ? resourceAsset(state) : reportAsset()),
        };
      }
      const depth = path.length - from;
      if (depth === 0) {
        if (event.kind === 'value') read.fail(path.slice(0, from), 'expected an object');
        continue;
      }
      const field = path[from];
      if (depth === 1) {
        if (event.kind === 'open') {
          if (event.type !== 'array') read.fail(path, 'expected an array');
          continue;
        }
        if (field === 'Target') {
          result.target = str(event.value);
          if (firstTarget === undefined && mode !== 'cluster') firstTarget = result.target;
        } else if (field === 'Type') {
          result.type = str(event.value);
        } else if (field === 'Class') {
          result.class = str(event.value);
        } else if (event.value !== null) {
          // Vulnerabilities / Misconfigurations / Secrets that is neither a list nor null.
          read.fail(path, 'expected an array');
        }
        continue;
      }
      if (event.kind !== 'value') continue;

      let finding: NormalizedFinding | undefined;
      if (field === 'Vulnerabilities') finding = read.vulnerability(event.value, path, result);
      else if (field === 'Misconfigurations') finding = read.misconfiguration(event.value, path, result);
      else if (field === 'Secrets') finding = read.secret(event.value, path, result);
      if (finding) yield finding;
     }
    }

    if (mode === 'report' && header.schemaVersion === undefined) {
      read.fail(['SchemaVersion'], 'missing: not a Trivy JSON report');
    }
    // As before streaming: a report that names no asset is refused even when it has no findings.
    if (mode === 'report' && options.target === undefined && typeof header.artifactName !== 'string') {
      read.fail(['ArtifactName'], 'missing (pass a target to name the asset)');
    }
  },
};
