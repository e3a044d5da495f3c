import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import type { JsonPath } from '../../streams/json.js';
import { jsonStart, isArrayOrNull, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { defined, isObject, num, str, strings, type Json } from '../common/json.js';
import { cvss3Vector } from '../common/cvss.js';

// Generic CNAPP findings JSON, our own documented shape (context/README.md, "cnapp"): the common
// denominator of cloud security platforms' exports. Each finding names the cloud resource it is on;
// the asset is `cloud:<resource id>`. Streamed per finding.

const FORMAT = 'cnapp';

const fail: ReportFail = reportFail(FORMAT);

type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

const STATUSES: Record<string, VendorStatus | undefined> = {
  open: undefined,
  active: undefined,
  new: undefined,
  resolved: 'fixed',
  fixed: 'fixed',
  suppressed: 'suppressed',
  dismissed: 'suppressed',
  ignored: 'suppressed',
  risk_accepted: 'will_not_fix',
  false_positive: 'false_positive',
};

const KINDS = new Set<NormalizedFinding['kind']>(['vulnerability', 'misconfiguration', 'secret']);

// Resource types that are compute instances across clouds (AWS::EC2::Instance, aws_instance, virtualMachine...).
const INSTANCE_TYPE = /instance|virtual.?machine|^vm$|[_:]vm$/i;

function assetOf(file: string, resource: unknown, path: JsonPath): AssetRef {
  if (!isObject(resource)) fail(file, path, resource === undefined ? 'missing' : 'expected an object');
  const r = resource as Json;
  const id = str(r.id)?.trim() ?? fail(file, [...path, 'id'], 'missing');
  const type = str(r.type) ?? '';
  return { assetKey: `cloud:${id}`, kind: INSTANCE_TYPE.test(type) ? 'host' : 'other', name: str(r.name)?.trim() ?? id };
}

function findingOf(file: string, value: unknown, path: JsonPath): NormalizedFinding {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const f = value as Json;
  const id = str(f.id) ?? (typeof f.id === 'number' ? String(f.id) : undefined) ?? fail(file, [...path, 'id'], 'missing');
  const asset = assetOf(file, f.resource, [...path, 'resource']);
  const cve = str(f.cve)?.trim();
  const pkg = str(f.package)?.trim();
  const rawKind = str(f.type)?.toLowerCase();
  if (rawKind !== undefined && !KINDS.has(rawKind as NormalizedFinding['kind'])) fail(file, [...path, 'type'], `unknown type ${JSON.stringify(f.type)}; expected vulnerability, misconfiguration or secret`);
  const kind = (rawKind as NormalizedFinding['kind'] | undefined) ?? (cve || pkg ? 'vulnerability' : 'misconfiguration');
  const rawSeverity = str(f.severity);
  const severity = rawSeverity === undefined ? 'unknown' : normalizeSeverity(rawSeverity) ?? fail(file, [...path, 'severity'], `unknown severity ${JSON.stringify(f.severity)}`);
  const rawStatus = str(f.status)?.toLowerCase().replace(/[\s-]+/g, '_');
  const cvss = num(f.cvss);
  const resourceType = isObject(f.resource) ? str(f.resource.type) : undefined;
  const references = strings(f.references);
  // A rule id is stable across re-scans where a finding id may not be; a CVE is stable across tools.
  return defined<NormalizedFinding>({
    asset,
    kind,
    issueId: cve ?? str(f.ruleId)?.trim() ?? id,
    component: pkg ?? resourceType ?? 'cloud-resource',
    version: str(f.version)?.trim() ?? '',
    location: str(f.path)?.trim() ?? '',
    fixedVersion: str(f.fixedVersion)?.trim(),
    fixSource: str(f.fixedVersion)?.trim() ? 'scanner' : undefined,
    severity,
    cvssScore: cvss !== undefined && cvss >= 0 && cvss <= 10 ? cvss : undefined,
    cvssVector: cvss3Vector(f.cvssVector),
    title: str(f.title),
    vendorStatus: rawStatus ? STATUSES[rawStatus] : undefined,
    description: str(f.description),
    references: references.length ? references : undefined,
  });
}

export const cnapp: Connector = {
  format: FORMAT,
  description: 'Generic CNAPP findings JSON ({"findings": [{id, resource: {id, type, name}, title, severity, cve?, package?...}]}): findings on cloud resources',
  detect(head) {
    const start = jsonStart(head);
    // `findings` first is what tells it from Dependency-Track's FPF, which also has a findings list.
    if (!/^\{\s*"findings"\s*:\s*\[/.test(start)) return false;
    return /"resource"\s*:\s*\{/.test(head) || /^\{\s*"findings"\s*:\s*\[\s*\]\s*\}\s*$/.test(start);
  },
  async *parse(file) {
    const name = basename(file);
    let sawFindings = false;
    const select = ['findings.*'];
    const events = objectEvents(file, { name, format: FORMAT, select }, () => fail(name, [], 'expected a JSON object {"findings": [...]}'));
    for await (const event of events) {
      const { path } = event;
      if (path.length === 1) {
        sawFindings = true;
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        continue;
      }
      if (event.kind === 'value') yield findingOf(name, event.value, path);
    }
    if (!sawFindings) fail(name, ['findings'], 'missing: not a CNAPP findings document');
  },
};
