import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import type { AssetRef, NormalizedFinding } from '../../model.js';
import { formatPath, streamJson, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, jsonStart, reportFail, type ReportFail } from '../shared/json-report.js';
import { readHead } from '../common/head.js';
import { arr, defined, isObject, num, objects, str, unique, type Json } from '../common/json.js';
import { aliasesOf, componentName, cweId, isCve, type Ecosystem } from '../common/identity.js';
import { cvss3BaseScore, cvss3BaseVector, cvss3Vector } from '../common/cvss.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { Skipped } from '../common/warnings.js';
import { defenderSeverity, isOperatingSystem } from './common.js';

// Microsoft Defender for Cloud vulnerability findings: security sub-assessments
// (`Microsoft.Security/assessments/subAssessments`), as the REST API lists them (`{"value": [...],
// "nextLink"}`) or as Azure Resource Graph returns them from `securityresources` (`{"data": [...]}`
// from its REST API and `az graph query`, or a bare array of rows). Streamed one sub-assessment at a
// time. A sub-assessment is one check on one resource: its `status.code` says whether the resource
// fails it (`Unhealthy`, a finding) or not (`Healthy`, `NotApplicable`: skipped, counted in a
// warning). `additionalData.assessedResourceType` says what was assessed:
//   - container images (`ContainerRegistryVulnerability` from the Qualys-based scanner, and the
//     Defender Vulnerability Management ones `AzureContainerRegistryVulnerability`,
//     `AwsContainerRegistryVulnerability`, `GcpContainerRegistryVulnerability`): the asset is the
//     image, `image:<registry host>/<repository>:<tag>` (or `@<digest>` without a tag);
//   - servers (`ServerVulnerabilityTvm`, `ServerVulnerabilityAssessment`...): a host, keyed by its
//     Azure resource id (`cloud:<id>`, as the CNAPP connector keys cloud resources);
//   - SQL databases (`SqlServerVulnerability`): a failed vulnerability-assessment rule (`VA2064`) is a
//     misconfiguration of the database;
//   - anything else: the resource by its id, when the sub-assessment names a CVE.
// One finding per resource and CVE: a sub-assessment naming several CVEs gives one finding each.

const FORMAT = 'defender-cloud-json';

const fail: ReportFail = reportFail(FORMAT);

/** The sub-assessment resource type, as the REST API and Resource Graph spell it (`subAssessments`, `subassessments`). */
const SUB_ASSESSMENT_TYPE = /"type"\s*:\s*"microsoft\.security\/assessments\/subassessments"/i;

const CONTAINER_TYPE = /^(Azure|Aws|Gcp)?Container(Registry|Image)Vulnerability$/i;
const SERVER_TYPE = /^(Azure)?ServerVulnerability(Tvm|Assessment)?$/i;
const SQL_TYPE = /^SqlServerVulnerability$/i;

/** Azure's resource ids are case-insensitive, and its APIs spell one id in several casings. */
const isArmId = (id: string): boolean => /^\/subscriptions\/[^/]+\//i.test(id);

/** Compute resources: the host of a server sub-assessment whatever its assessed type says. */
const MACHINE_ID = /\/providers\/microsoft\.(compute\/virtualmachines|hybridcompute\/machines|compute\/virtualmachinescalesets)\//i;

/** The resource a sub-assessment's own id hangs off: `<resource id>/providers/Microsoft.Security/assessments/...`. */
function resourceIdOfRow(rowId: string | undefined): string | undefined {
  if (!rowId || !isArmId(rowId)) return undefined;
  const at = rowId.search(/\/providers\/microsoft\.security\/assessments\//i);
  return at > 0 ? rowId.slice(0, at) : undefined;
}

/** The first value of `keys` (resourceDetails is spelt `id`/`ResourceName` or `NativeResourceId` by export). */
const firstStr = (o: Json, ...keys: string[]): string | undefined => {
  for (const key of keys) {
    const v = str(o[key]);
    if (v) return v.trim();
  }
  return undefined;
};

function imageAsset(file: string, data: Json, resourceId: string | undefined, path: JsonPath, options: ParseOptions): AssetRef {
  const artifact = isObject(data.artifactDetails) ? data.artifactDetails : undefined;
  const repository = artifact ? str(artifact.repositoryName) : str(data.repositoryName);
  const digest = (artifact ? str(artifact.digest) : str(data.imageDigest))?.trim();
  const tag = artifact ? arr(artifact.tags).map(str).find((t) => t !== undefined)?.trim() : undefined;
  // Defender Vulnerability Management names the registry; the Qualys-based scanner only the
  // registry's resource, whose login server in Azure's public cloud is `<name>.azurecr.io`.
  const acr = resourceId ? /\/providers\/microsoft\.containerregistry\/registries\/([^/]+)/i.exec(resourceId)?.[1] : undefined;
  const host = (artifact ? str(artifact.registryHost)?.trim() : undefined) ?? (acr ? `${acr.toLowerCase()}.azurecr.io` : undefined);
  const reference = repository ? `${host ? `${host}/` : ''}${repository.trim()}${tag ? `:${tag}` : digest ? `@${digest}` : ''}` : undefined;
  const name = options.target?.trim() || reference
    || fail(file, [...path, 'properties', 'additionalData', ...(artifact ? ['artifactDetails'] : []), 'repositoryName'], 'missing: the image is not named (pass a target)');
  return { assetKey: `image:${name}`, kind: 'container_image', name, ...(digest && /^sha256:[0-9a-f]{64}$/i.test(digest) ? { digest: digest.toLowerCase() } : {}) };
}

function resourceAsset(file: string, row: Json, props: Json, type: string, path: JsonPath, options: ParseOptions): AssetRef {
  const details = isObject(props.resourceDetails) ? props.resourceDetails : {};
  const detailsId = firstStr(details, 'id', 'Id');
  const native = firstStr(details, 'NativeResourceId', 'nativeResourceId');
  const rowResource = resourceIdOfRow(str(row.id));
  const data = isObject(props.additionalData) ? props.additionalData : {};
  if (CONTAINER_TYPE.test(type)) return imageAsset(file, data, rowResource ?? detailsId, path, options);
  const id = [detailsId, native, rowResource].find((v) => v !== undefined && isArmId(v));
  const name = firstStr(details, 'ResourceName', 'resourceName');
  const host = SERVER_TYPE.test(type) || (id !== undefined && MACHINE_ID.test(`${id}/`));
  const kind = host ? 'host' : 'other';
  if (options.target?.trim()) {
    const target = options.target.trim();
    return host ? { assetKey: `host:${target.toLowerCase()}`, kind, name: target.toLowerCase() } : { assetKey: `asset:${target}`, kind, name: target };
  }
  if (id) {
    const key = id.toLowerCase().replace(/\/+$/, '');
    return { assetKey: `cloud:${key}`, kind, name: name ?? key.split('/').pop() ?? key };
  }
  // No Azure resource id: another cloud's id (an ARN, a GCP path) or, last, the resource's name.
  const other = firstStr(details, 'nativeCloudUniqueIdentifier') ?? (detailsId && !detailsId.startsWith('/') ? detailsId : undefined);
  if (other) return { assetKey: `cloud:${other}`, kind, name: name ?? other };
  if (name) return host ? { assetKey: `host:${name.toLowerCase()}`, kind, name: name.toLowerCase() } : { assetKey: `asset:${name}`, kind, name };
  return fail(file, [...path, 'properties', 'resourceDetails', 'id'], 'missing: the assessed resource is not named (pass a target)');
}

/** The CVEs a sub-assessment names: the `cve` list (objects, strings), MDVM's `cveId`, and its id or name when one is a CVE. */
function cveIds(props: Json, data: Json, details: Json): string[] {
  const listed = Array.isArray(data.cve) ? data.cve : data.cve === undefined ? [] : [data.cve];
  const candidates = [
    ...listed.map((c) => (isObject(c) ? str(c.title) : str(c))),
    str(details.cveId), str(props.id), str(props.displayName),
  ];
  return unique(candidates.filter((c): c is string => c !== undefined && isCve(c.trim())).map((c) => c.trim().toUpperCase()));
}

/** The CVSS v3 entry of a `{"2.0": ..., "3.0": {base, cvssVectorString}}` map. */
function cvssOf(data: Json, details: Json): { cvssScore?: number; cvssVector?: string } {
  const maps = [details.cvss, data.cvss].filter(isObject);
  for (const map of maps) {
    for (const [version, entry] of Object.entries(map)) {
      if (!/^3(\.|$)/.test(version) || !isObject(entry)) continue;
      const vector = cvss3Vector(entry.cvssVectorString, version === '3.1' ? '3.1' : '3.0');
      const base = vector ? cvss3BaseVector(vector) : undefined;
      const score = num(entry.base) ?? num(data.cvssV30Score) ?? (base ? cvss3BaseScore(base) : undefined);
      return defined({ cvssScore: score !== undefined && score >= 0 && score <= 10 ? score : undefined, cvssVector: base });
    }
  }
  const flat = num(data.cvssV30Score);
  return flat !== undefined && flat >= 0 && flat <= 10 ? { cvssScore: flat } : {};
}

const OS_ECOSYSTEMS: [RegExp, Ecosystem][] = [
  [/^(ubuntu|debian)/i, 'deb'],
  [/^alpine/i, 'apk'],
  [/^(rhel|red_?hat|centos|fedora|amazon|oracle|suse|sles|opensuse|rocky|alma|cbl[-_]?mariner|mariner|azure_?linux)/i, 'rpm'],
];
const LANGUAGE_ECOSYSTEMS: Record<string, Ecosystem> = {
  python: 'pypi', javascript: 'npm', nodejs: 'npm', node: 'npm', java: 'maven', go: 'golang', golang: 'golang',
  dotnet: 'nuget', '.net': 'nuget', nuget: 'nuget', ruby: 'gem', php: 'composer', rust: 'cargo',
};

/** Defender Vulnerability Management's `fixStatus`. */
const FIX_STATUS: Record<string, NormalizedFinding['vendorStatus']> = {
  fixavailable: 'fix_available', nofixavailable: 'affected', wontfix: 'will_not_fix', scheduled: 'affected',
};

interface Software {
  component: string;
  version: string;
  fixedVersion?: string | undefined;
  vendorStatus?: NormalizedFinding['vendorStatus'];
  facts: ReturnType<typeof packageFacts>;
}

/** The vulnerable package: MDVM's `softwareDetails`, or the server shape's flat `softwareName`. */
function softwareOf(data: Json): Software | undefined {
  const sw = isObject(data.softwareDetails) ? data.softwareDetails : undefined;
  if (sw && str(sw.packageName)) {
    const category = str(sw.category)?.toLowerCase();
    const os = isObject(sw.osDetails) ? sw.osDetails : {};
    const osName = str(os.osName) ?? str(os.osVersion) ?? '';
    const ecosystem = category === 'os' ? OS_ECOSYSTEMS.find(([re]) => re.test(osName))?.[1]
      : category === 'language' ? LANGUAGE_ECOSYSTEMS[str(sw.language)?.toLowerCase() ?? ''] : undefined;
    const fix = fixOf(str(sw.fixedVersion)?.trim());
    return {
      component: componentName(ecosystem, str(sw.packageName)!.trim()),
      version: str(sw.version)?.trim() ?? '',
      ...fix,
      vendorStatus: FIX_STATUS[str(sw.fixStatus)?.toLowerCase() ?? ''] ?? (fix.fixedVersion ? 'fix_available' : undefined),
      facts: packageFacts({ ecosystem, packageClass: category === 'os' ? 'os' : category === 'language' ? 'app' : undefined }),
    };
  }
  const software = str(data.softwareName)?.trim();
  if (!software) return undefined;
  const fix = fixOf(str(data.recommendedVersion)?.trim());
  return {
    component: software,
    version: str(data.softwareVersion)?.trim() ?? '',
    ...fix,
    vendorStatus: fix.fixedVersion ? 'fix_available' : undefined,
    facts: packageFacts({ packageClass: isOperatingSystem(str(data.softwareVendor) ?? '', software) ? 'os' : 'app', sourcePackage: software }),
  };
}

const links = (v: unknown): string[] => objects(v).map((r) => str(r.link)?.trim()).filter((l): l is string => l !== undefined && /^https?:\/\//i.test(l));

function findingsOf(file: string, value: unknown, path: JsonPath, options: ParseOptions, skipped: Skipped): NormalizedFinding[] {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const props = isObject(value.properties) ? value.properties : fail(file, [...path, 'properties'], 'missing');
  const status = isObject(props.status) ? props.status : fail(file, [...path, 'properties', 'status'], 'missing');
  const code = str(status.code)?.trim() ?? fail(file, [...path, 'properties', 'status', 'code'], 'missing');
  const where = formatPath(path);
  switch (code.toLowerCase()) {
    case 'unhealthy':
      break;
    case 'healthy':
      skipped.record('status.code Healthy: the resource passes this check', where);
      return [];
    case 'notapplicable':
      skipped.record('status.code NotApplicable: the check does not apply to the resource (or is exempt)', where);
      return [];
    default:
      fail(file, [...path, 'properties', 'status', 'code'], `unknown status ${JSON.stringify(code)} (expected Unhealthy, Healthy or NotApplicable)`);
  }
  const data = isObject(props.additionalData) ? props.additionalData : {};
  const details = isObject(data.vulnerabilityDetails) ? data.vulnerabilityDetails : {};
  const type = str(data.assessedResourceType)?.trim() ?? '';
  const displayName = str(props.displayName)?.trim();
  const ownId = str(props.id)?.trim() ?? (typeof props.id === 'number' ? String(props.id) : undefined);
  const severityRaw = str(status.severity) ?? str(details.severity);
  const remediation = str(props.remediation)?.trim();
  const description = [str(props.description)?.trim(), remediation ? `Remediation: ${remediation}` : undefined].filter(Boolean).join('\n\n') || undefined;

  if (SQL_TYPE.test(type)) {
    // A failed SQL vulnerability-assessment rule: a configuration of the database, not a CVE.
    const rule = ownId ?? fail(file, [...path, 'properties', 'id'], 'missing: the rule id of a SQL vulnerability assessment');
    const asset = resourceAsset(file, value, props, type, path, options);
    return [defined<NormalizedFinding>({
      asset, kind: 'misconfiguration', issueId: rule, component: 'SQL vulnerability assessment', version: '', location: '',
      severity: defenderSeverity(severityRaw, undefined), title: displayName ? `${rule} - ${displayName}` : rule, description,
    })];
  }

  let cves = cveIds(props, data, details);
  const software = softwareOf(data);
  // The Qualys-based scanner keys its checks by QID: without a CVE, the finding is the QID's, as
  // the Qualys connectors key it.
  const qid = !software && ownId && /^\d+$/.test(ownId) && (SERVER_TYPE.test(type) || CONTAINER_TYPE.test(type)) ? `qualys:${ownId}` : undefined;
  if (cves.length === 0 && !qid) {
    skipped.record(`assessedResourceType ${type ? JSON.stringify(type) : '(none)'} names no CVE: not a vulnerability finding`, where);
    return [];
  }
  if (cves.length === 0) cves = [qid!];
  const asset = resourceAsset(file, value, props, type, path, options);
  const component = software?.component ?? displayName ?? fail(file, [...path, 'properties', 'displayName'], 'missing: no package and no check name');
  const version = software?.version ?? '';
  const cvss = cvssOf(data, details);
  const fixReference = isObject(data.softwareDetails) && isObject(data.softwareDetails.fixReference) ? data.softwareDetails.fixReference : {};
  const references = unique([
    ...links(details.references), ...links(data.cve), ...links(data.vendorReferences),
    ...[str(fixReference.url)?.trim(), str(data.remediationLink)?.trim()].filter((l): l is string => l !== undefined && /^https?:\/\//i.test(l)),
  ]);
  const cwes = unique(objects(isObject(details.weaknesses) ? details.weaknesses.cwe : undefined).map((c) => cweId(c.id)).filter((c): c is string => c !== undefined));
  // Other names of the same vulnerability, when there is one: the GitHub advisory a reference links
  // to, the distribution's advisory of the fix (USN, DSA). Beside several CVEs they name none of them.
  const advisories = cves.length === 1
    ? [str(fixReference.id)?.trim(), ...links(details.references).map((l) => /\/advisories\/(GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})\b/i.exec(l)?.[1])]
    : [];
  const patchable = data.patchable === true ? 'fix_available' : undefined;
  return cves.map((issueId) => defined<NormalizedFinding>({
    asset,
    kind: 'vulnerability',
    issueId,
    aliases: aliasesOf(issueId, advisories),
    component,
    version,
    location: '',
    fixedVersion: software?.fixedVersion,
    fixSource: software?.fixedVersion ? 'scanner' : undefined,
    severity: defenderSeverity(severityRaw, cvss.cvssScore),
    ...cvss,
    title: displayName && !isCve(displayName) ? displayName : `${issueId} - ${component}${version ? ` ${version}` : ''}`,
    vendorStatus: software?.vendorStatus ?? patchable,
    description,
    references: references.length ? references : undefined,
    cwes: cwes.length ? cwes : undefined,
    ...software?.facts,
  }));
}

export const defenderCloudJson: Connector = {
  format: FORMAT,
  description: 'Microsoft Defender for Cloud vulnerability sub-assessments (REST API {"value": [...]}, Azure Resource Graph {"data": [...]} or rows): one finding per resource and CVE',
  detect(head) {
    const start = jsonStart(head);
    if (!start.startsWith('{') && !start.startsWith('[')) return false;
    // `assessedResourceType` is Defender's own key; beside it, the sub-assessment type or its resourceDetails.
    return /"assessedResourceType"\s*:/.test(head) && (SUB_ASSESSMENT_TYPE.test(head) || /"resourceDetails"\s*:\s*\{/.test(head));
  },
  async *parse(file, options) {
    const name = basename(file);
    const rootIsArray = jsonStart(await readHead(file)).startsWith('[');
    const skipped = new Skipped(name, FORMAT, options.warn);
    let sawList = false;
    const select = rootIsArray ? ['*'] : ['value.*', 'data.*'];
    for await (const event of streamJson(file, { name, format: FORMAT, select })) {
      const { path } = event;
      if (path.length === 0) {
        if (event.kind === 'value' || (event.type !== 'object' && event.type !== 'array')) {
          fail(name, [], 'expected a JSON object {"value": [...]} or {"data": [...]}, or an array of sub-assessments');
        }
        if (event.type === 'array') sawList = true;
        continue;
      }
      if (!rootIsArray && path.length === 1) {
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        sawList = true;
        continue;
      }
      if (event.kind === 'value') yield* findingsOf(name, event.value, path, options, skipped);
    }
    if (!sawList) fail(name, ['value'], 'missing: not a Defender for Cloud sub-assessments list ({"value": [...]} or {"data": [...]})');
    skipped.flush();
  },
};
