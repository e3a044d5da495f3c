import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AliasKind, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import type { JsonPath } from '../../streams/json.js';
import { isArrayOrNull, jsonStart, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { arr, defined, isObject, num, objects, str, strings, unique, type Json } from '../common/json.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { aliasesOf, componentName, cweId, relPath, type Ecosystem } from '../common/identity.js';
import { cvss3BaseScore, cvss3Vector } from '../common/cvss.js';

// AWS Inspector v2 findings as `aws inspector2 list-findings` writes them: `{"findings": [...]}`.
// Streamed one finding at a time. Each finding names its resources (an EC2 instance, an ECR image,
// a Lambda function); the finding is repeated for every resource and every vulnerable package, so
// each asset holds its own exposures: one finding per resource x package (x file) x vulnerability.

const FORMAT = 'aws-inspector2-json';

const fail: ReportFail = reportFail(FORMAT);

/** Inspector's package managers, by package-URL type. OS packages take the platform's. */
const PACKAGE_MANAGERS: Record<string, Ecosystem> = {
  PYTHON: 'pypi', PIP: 'pypi', PIPENV: 'pypi', POETRY: 'pypi',
  NODE: 'npm', NPM: 'npm', YARN: 'npm', PNPM: 'npm',
  JAR: 'maven', POM: 'maven', GRADLE: 'maven',
  GOBINARY: 'golang', GOMOD: 'golang', GO: 'golang',
  GEMSPEC: 'gem', BUNDLER: 'gem',
  NUGET: 'nuget', DOTNET_CORE: 'nuget',
  CARGO: 'cargo', COMPOSER: 'composer',
};

/** The OS package ecosystem of an Inspector platform (`DEBIAN_10`, `AMAZON_LINUX_2`, `CENTOS_7`...). */
function platformEcosystem(platform: string | undefined): Ecosystem | undefined {
  const p = platform?.toUpperCase() ?? '';
  if (/^(DEBIAN|UBUNTU)/.test(p)) return 'deb';
  if (/^(AMAZON_LINUX|AL2|CENTOS|RHEL|RED_HAT|ORACLE|SUSE|SLES|OPENSUSE|FEDORA|ALMA|ROCKY|MARINER|AZURE_LINUX)/.test(p)) return 'rpm';
  if (/^ALPINE/.test(p)) return 'apk';
  return undefined;
}

const SEVERITY: Record<string, Severity> = { UNTRIAGED: 'unknown' };
const severityOf = (raw: unknown): Severity => (typeof raw === 'string' ? SEVERITY[raw.toUpperCase()] : undefined) ?? normalizeSeverity(raw) ?? 'unknown';

/** A resource's asset: images and hosts by the names other scanners give them, anything else by its id. */
function resourceAsset(file: string, resource: Json, path: JsonPath, options: ParseOptions, hosts: Map<string, AssetRef>): { asset: AssetRef; platform?: string } {
  const type = str(resource.type);
  const id = str(resource.id);
  const details = isObject(resource.details) ? resource.details : {};
  if (type === 'AWS_ECR_CONTAINER_IMAGE') {
    const image = isObject(details.awsEcrContainerImage) ? details.awsEcrContainerImage : {};
    const repository = str(image.repositoryName);
    const digest = str(image.imageHash);
    const registry = str(image.registry);
    const region = str(resource.region) ?? /^arn:aws[^:]*:ecr:([^:]+):/.exec(id ?? '')?.[1];
    // The reference docker pull uses (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`),
    // which is what Trivy and Grype name an ECR image.
    const host = registry && region ? `${registry}.dkr.ecr.${region}.amazonaws.com/` : '';
    const tag = strings(image.imageTags)[0];
    const reference = repository ? `${host}${repository}${tag ? `:${tag}` : digest ? `@${digest}` : ''}` : undefined;
    const name = options.target ?? reference ?? id ?? fail(file, [...path, 'details', 'awsEcrContainerImage', 'repositoryName'], 'missing');
    return { asset: { assetKey: `image:${name}`, kind: 'container_image', name, ...(digest ? { digest } : {}) }, platform: str(image.platform) };
  }
  if (type === 'AWS_EC2_INSTANCE') {
    // The instance id: stable for the instance's life, where its (private, reused) IPs are not.
    const instance = isObject(details.awsEc2Instance) ? details.awsEc2Instance : {};
    const ips = strings(instance.ipV4Addresses);
    const name = (options.target ?? id ?? ips[0] ?? fail(file, [...path, 'id'], 'missing')).trim().toLowerCase();
    return { asset: instanceAsset(hosts, name, id?.trim(), ips), platform: str(instance.platform) };
  }
  const name = options.target ?? id ?? fail(file, [...path, 'id'], 'missing');
  return { asset: { assetKey: `asset:${name}`, kind: 'other', name } };
}

/**
 * An EC2 instance's host, also known by its instance id (as cloud inventories name it) and its
 * IPv4 addresses (weak: reused once it is gone). One AssetRef per instance and addresses, shared
 * by its findings.
 */
function instanceAsset(hosts: Map<string, AssetRef>, name: string, id: string | undefined, ips: string[]): AssetRef {
  const known = hosts.get(name);
  const aliases = known?.alsoKnownAs ?? [];
  const same = known !== undefined && aliases.length === (id ? 1 : 0) + ips.length
    && ips.every((ip, i) => aliases[(id ? 1 : 0) + i]![1] === ip.trim().toLowerCase());
  if (same) return known;
  const alsoKnownAs: Array<readonly [AliasKind, string]> = [];
  if (id) alsoKnownAs.push(['instance_id', id]);
  for (const ip of ips) alsoKnownAs.push(['ip', ip.trim().toLowerCase()]);
  const asset: AssetRef = { assetKey: `host:${name}`, kind: 'host', name, ...(alsoKnownAs.length ? { alsoKnownAs } : {}) };
  if (hosts.size >= 10_000) hosts.clear(); // bounded: a report of many instances cannot grow it
  hosts.set(name, asset);
  return asset;
}

/** A fixed version, without the `0:` epoch Inspector writes and other scanners omit; `NotAvailable` is none. */
function fixedOf(raw: unknown): string | undefined {
  const v = str(raw);
  if (!v || /^not ?available$/i.test(v)) return undefined;
  return v.replace(/^0:/, '');
}

/** The installed version as the package manager writes it: `[epoch:]version[-release]`. */
function versionOf(pkg: Json): string {
  const version = str(pkg.version) ?? '';
  const release = str(pkg.release);
  const epoch = num(pkg.epoch);
  return `${epoch ? `${epoch}:` : ''}${version}${release && version ? `-${release}` : ''}`;
}

/** The CVSS v3 base rating: NVD's v3 entry first, else the first v3 one; else Inspector's own when it adjusted nothing. */
function cvssOf(finding: Json, details: Json): { cvssScore?: number; cvssVector?: string } {
  const v3 = objects(details.cvss).filter((c) => /^3\./.test(str(c.version) ?? '') || /^CVSS:3\./.test(str(c.scoringVector) ?? ''));
  const picked = v3.find((c) => str(c.source)?.toUpperCase() === 'NVD') ?? v3[0];
  if (picked) {
    const vector = cvss3Vector(picked.scoringVector, str(picked.version) === '3.1' ? '3.1' : '3.0');
    const score = num(picked.baseScore) ?? (vector ? cvss3BaseScore(vector) : undefined);
    return { ...(score !== undefined && score >= 0 && score <= 10 ? { cvssScore: score } : {}), ...(vector ? { cvssVector: vector } : {}) };
  }
  const adjusted = isObject(finding.inspectorScoreDetails) && isObject(finding.inspectorScoreDetails.adjustedCvss) ? finding.inspectorScoreDetails.adjustedCvss : undefined;
  if (adjusted && arr(adjusted.adjustments).length === 0 && /^3\./.test(str(adjusted.version) ?? '')) {
    const vector = cvss3Vector(adjusted.scoringVector, str(adjusted.version) === '3.1' ? '3.1' : '3.0');
    const score = num(adjusted.score);
    return { ...(score !== undefined && score >= 0 && score <= 10 ? { cvssScore: score } : {}), ...(vector ? { cvssVector: vector } : {}) };
  }
  return {};
}

function statusOf(finding: Json): NormalizedFinding['vendorStatus'] | undefined {
  const status = str(finding.status)?.toUpperCase();
  if (status === 'CLOSED') return 'fixed';
  if (status === 'SUPPRESSED') return 'suppressed';
  return undefined;
}

/** Installed language packages are located by their own file; lockfiles and binaries are manifests. */
const INSTALLED = /(\.dist-info|\.egg-info)(\/|$)|(^|\/)node_modules\/.+\/package\.json$|\.gemspec$/;

function* findingsOf(file: string, value: unknown, path: JsonPath, options: ParseOptions, hosts: Map<string, AssetRef>): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const finding = value;
  const type = str(finding.type) ?? fail(file, [...path, 'type'], 'missing');
  const resources = arr(finding.resources);
  if (resources.length === 0) fail(file, [...path, 'resources'], 'missing or empty: the finding names no resource');
  const status = statusOf(finding);
  const common = {
    severity: severityOf(finding.severity),
    title: str(finding.title),
    description: str(finding.description),
  };
  for (const [r, raw] of resources.entries()) {
    if (!isObject(raw)) fail(file, [...path, 'resources', r], 'expected an object');
    const { asset, platform } = resourceAsset(file, raw, [...path, 'resources', r], options, hosts);
    if (type === 'PACKAGE_VULNERABILITY') {
      const details = isObject(finding.packageVulnerabilityDetails) ? finding.packageVulnerabilityDetails : fail(file, [...path, 'packageVulnerabilityDetails'], 'missing');
      const issueId = str(details.vulnerabilityId) ?? fail(file, [...path, 'packageVulnerabilityDetails', 'vulnerabilityId'], 'missing');
      const packages = arr(details.vulnerablePackages);
      if (packages.length === 0) fail(file, [...path, 'packageVulnerabilityDetails', 'vulnerablePackages'], 'missing or empty');
      const references = unique([str(details.sourceUrl), ...strings(details.referenceUrls)].filter((u): u is string => !!u));
      const cvss = cvssOf(finding, details);
      // An ALAS or GHSA finding lists the CVEs it covers here.
      const aliases = aliasesOf(issueId, strings(details.relatedVulnerabilities));
      const seen = new Set<string>();
      for (const [p, pkg] of packages.entries()) {
        if (!isObject(pkg)) fail(file, [...path, 'packageVulnerabilityDetails', 'vulnerablePackages', p], 'expected an object');
        const manager = str(pkg.packageManager)?.toUpperCase();
        const ecosystem = manager === 'OS' ? platformEcosystem(platform) : manager ? PACKAGE_MANAGERS[manager] : undefined;
        const os = manager === 'OS';
        const rawName = str(pkg.name) ?? fail(file, [...path, 'packageVulnerabilityDetails', 'vulnerablePackages', p, 'name'], 'missing');
        const component = componentName(ecosystem, rawName);
        const version = versionOf(pkg);
        const filePath = str(pkg.filePath) ? relPath(str(pkg.filePath)!) : undefined;
        const installedAt = !os && filePath && INSTALLED.test(filePath) ? filePath : '';
        const manifest = !os && filePath && !installedAt ? filePath : undefined;
        const key = `${component}\x1f${version}\x1f${installedAt}\x1f${manifest ?? ''}`;
        if (seen.has(key)) continue; // Inspector repeats a package once per layer that holds it.
        seen.add(key);
        const fix = fixOf(fixedOf(pkg.fixedInVersion));
        yield defined<NormalizedFinding>({
          asset,
          kind: 'vulnerability',
          issueId,
          aliases,
          component,
          version,
          location: installedAt,
          ...common,
          ...cvss,
          vendorStatus: status ?? (fix.fixedVersion ? 'fix_available' : undefined),
          references: references.length ? references : undefined,
          ...fix,
          ...packageFacts({ ecosystem, packageClass: os ? 'os' : undefined, manifest }),
        });
      }
    } else if (type === 'NETWORK_REACHABILITY') {
      const details = isObject(finding.networkReachabilityDetails) ? finding.networkReachabilityDetails : fail(file, [...path, 'networkReachabilityDetails'], 'missing');
      const range = isObject(details.openPortRange) ? details.openPortRange : fail(file, [...path, 'networkReachabilityDetails', 'openPortRange'], 'missing');
      const begin = num(range.begin) ?? fail(file, [...path, 'networkReachabilityDetails', 'openPortRange', 'begin'], 'missing');
      const end = num(range.end) ?? begin;
      const protocol = (str(details.protocol) ?? '').toLowerCase();
      const ports = begin === end ? `${begin}` : `${begin}-${end}`;
      const steps = isObject(details.networkPath) ? objects(details.networkPath.steps).map((s) => str(s.componentId)).filter((s): s is string => !!s) : [];
      yield defined<NormalizedFinding>({
        asset,
        kind: 'misconfiguration',
        issueId: 'aws-inspector2:network-reachability',
        component: 'open port range',
        version: '',
        location: protocol ? `${ports}/${protocol}` : ports,
        ...common,
        description: [common.description, steps.length ? `Network path: ${steps.join(' -> ')}` : undefined].filter(Boolean).join('\n') || undefined,
        vendorStatus: status,
      });
    } else if (type === 'CODE_VULNERABILITY') {
      const details = isObject(finding.codeVulnerabilityDetails) ? finding.codeVulnerabilityDetails : fail(file, [...path, 'codeVulnerabilityDetails'], 'missing');
      const where = isObject(details.filePath) ? details.filePath : {};
      const source = str(where.filePath) ? relPath(str(where.filePath)!) : fail(file, [...path, 'codeVulnerabilityDetails', 'filePath', 'filePath'], 'missing');
      const line = num(where.startLine);
      const cwes = unique(strings(details.cwes).map(cweId).filter((c): c is string => c !== undefined));
      const references = strings(details.referenceUrls);
      yield defined<NormalizedFinding>({
        asset,
        kind: 'vulnerability',
        issueId: str(details.ruleId) ?? str(details.detectorId) ?? fail(file, [...path, 'codeVulnerabilityDetails', 'ruleId'], 'missing'),
        component: source,
        version: '',
        location: line !== undefined ? `${source}:${line}` : source,
        ...common,
        vendorStatus: status,
        cwes: cwes.length ? cwes : undefined,
        references: references.length ? references : undefined,
      });
    } else {
      fail(file, [...path, 'type'], `unsupported finding type ${JSON.stringify(type)}`);
    }
  }
}

export const awsInspector2: Connector = {
  format: FORMAT,
  description: 'AWS Inspector v2 findings JSON (aws inspector2 list-findings): one finding per resource, package and vulnerability',
  detect(head) {
    const start = jsonStart(head);
    if (!/^\{\s*"findings"\s*:\s*\[/.test(start)) return false;
    return /"findingArn"\s*:\s*"arn:aws[a-z-]*:inspector2:/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    let sawFindings = false;
    const hosts = new Map<string, AssetRef>();
    const events = objectEvents(file, { name, format: FORMAT, select: ['findings.*'] }, () => fail(name, [], 'expected a JSON object {"findings": [...]}'));
    for await (const event of events) {
      const { path } = event;
      if (path.length === 1) {
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        sawFindings = true;
        continue;
      }
      if (event.kind === 'value') yield* findingsOf(name, event.value, path, options, hosts);
    }
    if (!sawFindings) fail(name, ['findings'], 'missing: not an AWS Inspector v2 findings report');
  },
};
