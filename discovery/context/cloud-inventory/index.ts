import type { ContextSource } from '../index.js';
import type { ContextAsset, ContextRecord } from '../model.js';
import type { JsonEvent, JsonPath } from '../../streams/json.js';
import { isObject, objects, str, type Json } from '../../connectors/common/json.js';
import {
  CRITICALITY_VALUES, cleanAsset, isIpAddress, normalizeEnvironment, normalizeIp, normalizeName, parseCriticality, uniq,
} from '../common.js';
import { jsonStart } from '../../connectors/shared/json-report.js';
import { jsonContextRecords, type PathFail as Fail } from '../parse-frame.js';

// Cloud compute inventory. Two shapes: the real `aws ec2 describe-instances` output
// ({"Reservations":[{"Instances":[...]}]}), and our generic {"instances":[...]} for other clouds
// and for exports that also list the containers each instance runs. Streamed per instance.

const SOURCE = 'cloud-inventory';

/** Tag keys (case-insensitive) that carry ownership context. */
const TAG_FIELDS: Record<string, 'owner' | 'businessService' | 'environment' | 'criticality'> = {
  owner: 'owner',
  service: 'businessService',
  businessservice: 'businessService',
  'business-service': 'businessService',
  business_service: 'businessService',
  environment: 'environment',
  env: 'environment',
  criticality: 'criticality',
};

// Gone or going: their addresses are released and may already belong to another instance.
const GONE = new Set(['terminated', 'shutting-down']);

/** Tags as `[{Key, Value}]` (AWS) or a plain object (generic shape). */
function tagsOf(value: unknown, path: JsonPath, fail: Fail): Record<string, string> {
  const tags: Record<string, string> = {};
  if (value === undefined || value === null) return tags;
  if (Array.isArray(value)) {
    value.forEach((t, i) => {
      if (!isObject(t) || typeof t.Key !== 'string') fail([...path, i], 'expected {"Key": ..., "Value": ...}');
      const tag = t as Json;
      tags[tag.Key as string] = typeof tag.Value === 'string' ? tag.Value : String(tag.Value ?? '');
    });
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) tags[k] = typeof v === 'string' ? v : String(v ?? '');
  } else fail(path, 'expected a list of {Key, Value} or an object');
  return tags;
}

/** Owner, service, environment and criticality from tags; explicit fields (generic shape) win. */
function contextFromTags(tags: Record<string, string>, explicit: Json, path: JsonPath, tagsPath: JsonPath, fail: Fail) {
  const found: Partial<Record<'owner' | 'businessService' | 'environment' | 'criticality', { key: string; value: string }>> = {};
  for (const [key, value] of Object.entries(tags)) {
    const field = TAG_FIELDS[key.toLowerCase()];
    if (field && value.trim() !== '' && !found[field]) found[field] = { key, value: value.trim() };
  }
  const criticalityRaw = str(explicit.criticality) ?? found.criticality?.value;
  const criticality = parseCriticality(criticalityRaw);
  if (criticality === null) {
    const explicitBad = str(explicit.criticality) !== undefined;
    fail(
      explicitBad ? [...path, 'criticality'] : tagsPath,
      `${explicitBad ? '' : `tag "${found.criticality!.key}": `}unknown criticality ${JSON.stringify(criticalityRaw)}; expected one of ${CRITICALITY_VALUES}`,
    );
  }
  return {
    owner: str(explicit.owner)?.trim() ?? found.owner?.value,
    businessService: str(explicit.businessService)?.trim() ?? found.businessService?.value,
    environment: normalizeEnvironment(str(explicit.environment) ?? found.environment?.value),
    criticality: criticality ?? undefined,
  };
}

function ipList(values: unknown[], path: JsonPath, fail: Fail): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' || !isIpAddress(v.trim())) fail(path, `${JSON.stringify(v)} is not an IP address`);
    out.push(normalizeIp(v as string));
  }
  return uniq(out);
}

function awsInstance(value: unknown, path: JsonPath, fail: Fail): ContextAsset | undefined {
  if (!isObject(value)) fail(path, 'expected an object');
  const inst = value as Json;
  const instanceId = str(inst.InstanceId) ?? fail([...path, 'InstanceId'], 'missing');
  if (isObject(inst.State) && GONE.has(String(inst.State.Name))) return undefined;
  const tagsPath = [...path, 'Tags'];
  const tags = tagsOf(inst.Tags, tagsPath, fail);
  const ctx = contextFromTags(tags, {}, path, tagsPath, fail);
  const interfaces = objects(inst.NetworkInterfaces);
  const privateIps = ipList(
    [inst.PrivateIpAddress, ...interfaces.flatMap((n) => [n.PrivateIpAddress, ...objects(n.PrivateIpAddresses).map((a) => a.PrivateIpAddress)])],
    [...path, 'PrivateIpAddress'],
    fail,
  );
  const publicIps = ipList(
    [inst.PublicIpAddress, ...interfaces.map((n) => (isObject(n.Association) ? n.Association.PublicIp : undefined))],
    [...path, 'PublicIpAddress'],
    fail,
  );
  const groups = uniq([...objects(inst.SecurityGroups), ...interfaces.flatMap((n) => objects(n.Groups))].map((g) => str(g.GroupId)).filter((g): g is string => g !== undefined));
  const dns = str(inst.PrivateDnsName);
  return cleanAsset({
    identifiers: { instanceId, ips: privateIps, fqdn: dns ? normalizeName(dns) : undefined },
    kind: 'host',
    name: tags.Name?.trim() || instanceId,
    ...ctx,
    publicIps,
    securityGroups: groups,
    tags,
  });
}

function genericInstance(value: unknown, path: JsonPath, fail: Fail): ContextRecord[] {
  if (!isObject(value)) fail(path, 'expected an object');
  const inst = value as Json;
  const id = str(inst.id) ?? fail([...path, 'id'], 'missing');
  if (GONE.has(String(inst.state ?? ''))) return [];
  const tags = tagsOf(inst.tags, [...path, 'tags'], fail);
  const ctx = contextFromTags(tags, inst, path, [...path, 'tags'], fail);
  const many = (v: unknown) => (Array.isArray(v) ? v : [v]);
  const groups = inst.securityGroups === undefined ? [] : Array.isArray(inst.securityGroups) ? inst.securityGroups : fail([...path, 'securityGroups'], 'expected an array');
  const name = str(inst.name)?.trim() ?? tags.Name?.trim() ?? id;
  const fqdn = str(inst.fqdn);
  const hostname = str(inst.hostname);
  const host = cleanAsset({
    identifiers: {
      instanceId: id,
      ips: ipList(many(inst.privateIp), [...path, 'privateIp'], fail),
      fqdn: fqdn ? normalizeName(fqdn) : undefined,
      hostname: hostname ? normalizeName(hostname) : undefined,
    },
    kind: 'host',
    name,
    ...ctx,
    publicIps: ipList(many(inst.publicIp), [...path, 'publicIp'], fail),
    securityGroups: uniq(groups.map((g, i) => (typeof g === 'string' && g.trim() !== '' ? g.trim() : isObject(g) && str(g.GroupId) ? (g.GroupId as string) : fail([...path, 'securityGroups', i], 'expected a group id')))),
    tags,
  });
  const out: ContextRecord[] = [{ type: 'asset', asset: host }];
  if (inst.containers !== undefined && inst.containers !== null && !Array.isArray(inst.containers)) fail([...path, 'containers'], 'expected an array');
  for (const [i, c] of (Array.isArray(inst.containers) ? inst.containers : []).entries()) {
    const at = [...path, 'containers', i];
    if (!isObject(c)) fail(at, 'expected an object');
    const image = str(c.image)?.trim() ?? fail([...at, 'image'], 'missing');
    const digest = str(c.imageDigest)?.trim();
    if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) fail([...at, 'imageDigest'], `${JSON.stringify(digest)} is not sha256:<64 hex>`);
    out.push({
      type: 'asset',
      asset: cleanAsset({
        identifiers: { image, imageDigest: digest },
        kind: 'container_image',
        name: image,
        // The image's own owner is not the host's: only the edge is known here.
        relations: [{ relation: 'runs_on', target: { instanceId: id }, targetKind: 'host', targetName: name }],
      }),
    });
  }
  return out;
}

export const cloudInventory: ContextSource = {
  source: SOURCE,
  description: 'Cloud compute inventory: `aws ec2 describe-instances` JSON, or the generic {"instances": [...]} shape with containers',
  detect(head) {
    const start = jsonStart(head);
    if (!start.startsWith('{')) return false;
    if (/"Reservations"\s*:\s*\[/.test(head)) return true;
    return /^\{\s*"instances"\s*:\s*\[/.test(start);
  },
  parse(file) {
    const notObject = 'expected a JSON object with "Reservations" or "instances"';
    return jsonContextRecords(file, { source: SOURCE, select: ['Reservations.*.Instances.*', 'instances.*'], notObject }, records);
  },
};

async function* records(events: AsyncIterable<JsonEvent>, fail: Fail): AsyncGenerator<ContextRecord> {
  let shape: 'aws' | 'generic' | undefined;
  for await (const event of events) {
    const { path } = event;
    const top = path[0];
    const isAws = top === 'Reservations';
    const now = isAws ? 'aws' : 'generic';
    if (shape && shape !== now) fail([top!], 'a document holds either "Reservations" or "instances", not both');
    shape = now;
    const depthOfItem = isAws ? 4 : 2;
    if (path.length < depthOfItem) {
      // Containers on the way down: Reservations / Reservations[i] / Reservations[i].Instances / instances.
      const wantArray = path.length % 2 === 1;
      const expected = wantArray ? 'array' : 'object';
      if (event.kind === 'value' ? !(wantArray && event.value === null) : event.type !== expected) fail(path, `expected an ${expected}`);
      continue;
    }
    if (event.kind !== 'value') continue;
    if (isAws) {
      const asset = awsInstance(event.value, path, fail);
      if (asset) yield { type: 'asset', asset };
    } else {
      yield* genericInstance(event.value, path, fail);
    }
  }
  if (!shape) fail([], 'neither "Reservations" (aws ec2 describe-instances) nor "instances" found');
}
