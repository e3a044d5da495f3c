import type { ContextSource } from '../index.js';
import type { ContextRecord, ExposureRule } from '../model.js';
import type { JsonEvent, JsonPath } from '../../streams/json.js';
import { isObject, objects, str, type Json } from '../../connectors/common/json.js';
import { uniq } from '../common.js';
import { isArrayOrNull, jsonStart } from '../../connectors/shared/json-report.js';
import { jsonContextRecords, type PathFail as Fail } from '../parse-frame.js';

// `aws ec2 describe-security-groups` JSON: one exposure rule per inbound permission
// (IpPermissions; egress is not exposure). Streamed per security group.

const SOURCE = 'security-groups';

const PROTOCOLS: Record<string, ExposureRule['protocol']> = {
  '-1': 'all',
  all: 'all',
  tcp: 'tcp',
  '6': 'tcp',
  udp: 'udp',
  '17': 'udp',
  icmp: 'icmp',
  '1': 'icmp',
  icmpv6: 'icmp',
  '58': 'icmp',
};

function port(value: unknown, path: JsonPath, fail: Fail): number | undefined {
  if (value === undefined || value === null || value === -1) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) fail(path, `${JSON.stringify(value)} is not a port (0-65535, or -1 for all)`);
  return value as number;
}

function rulesOf(value: unknown, path: JsonPath, fail: Fail): ExposureRule[] {
  if (!isObject(value)) fail(path, 'expected an object');
  const group = value as Json;
  const groupId = str(group.GroupId) ?? fail([...path, 'GroupId'], 'missing');
  if (group.IpPermissions !== undefined && group.IpPermissions !== null && !Array.isArray(group.IpPermissions)) fail([...path, 'IpPermissions'], 'expected an array');
  const rules: ExposureRule[] = [];
  for (const [i, perm] of (Array.isArray(group.IpPermissions) ? group.IpPermissions : []).entries()) {
    const at = [...path, 'IpPermissions', i];
    if (!isObject(perm)) fail(at, 'expected an object');
    const p = perm as Json;
    const raw = typeof p.IpProtocol === 'number' ? String(p.IpProtocol) : str(p.IpProtocol) ?? fail([...at, 'IpProtocol'], 'missing');
    const protocol = PROTOCOLS[raw.toLowerCase()];
    // Other IP protocols (ESP, GRE...) expose no port a scanner reports on.
    if (!protocol) continue;
    let fromPort = 0;
    let toPort = 65535;
    // ICMP puts type and code in the port fields; they are not ports.
    if (protocol === 'tcp' || protocol === 'udp') {
      const from = port(p.FromPort, [...at, 'FromPort'], fail);
      const to = port(p.ToPort, [...at, 'ToPort'], fail);
      if (from !== undefined || to !== undefined) {
        fromPort = from ?? to!;
        toPort = to ?? from!;
      }
      if (fromPort > toPort) fail(at, `FromPort ${fromPort} is above ToPort ${toPort}`);
    }
    const sources = uniq([
      ...objects(p.IpRanges).map((r) => str(r.CidrIp)),
      ...objects(p.Ipv6Ranges).map((r) => str(r.CidrIpv6)),
      ...objects(p.PrefixListIds).map((r) => str(r.PrefixListId)),
      ...objects(p.UserIdGroupPairs).map((r) => str(r.GroupId)),
    ].filter((s): s is string => s !== undefined).map((s) => s.trim()));
    if (sources.length === 0) continue;
    rules.push({ securityGroup: groupId, protocol, fromPort, toPort, sources });
  }
  return rules;
}

export const securityGroups: ContextSource = {
  source: SOURCE,
  description: 'AWS security groups (`aws ec2 describe-security-groups` JSON): inbound rules as exposure rules',
  detect(head) {
    const start = jsonStart(head);
    return start.startsWith('{') && /"SecurityGroups"\s*:\s*\[/.test(head) && !/"Reservations"\s*:/.test(head) && (/"IpPermissions"\s*:/.test(head) || /^\{\s*"SecurityGroups"\s*:\s*\[\s*\]/.test(start));
  },
  parse(file) {
    const notObject = 'expected a JSON object {"SecurityGroups": [...]}';
    return jsonContextRecords(file, { source: SOURCE, select: ['SecurityGroups.*'], notObject }, records);
  },
};

async function* records(events: AsyncIterable<JsonEvent>, fail: Fail): AsyncGenerator<ContextRecord> {
  let sawGroups = false;
  for await (const event of events) {
    const { path } = event;
    if (path.length === 1) {
      sawGroups = true;
      if (!isArrayOrNull(event)) fail(path, 'expected an array');
      continue;
    }
    if (event.kind !== 'value') continue;
    const rules = rulesOf(event.value, path, fail);
    // Named even without inbound rules: a group whose rules were all revoked must lose its old ones.
    yield { type: 'security_group', securityGroup: (event.value as { GroupId: string }).GroupId };
    for (const rule of rules) yield { type: 'exposure_rule', rule };
  }
  if (!sawGroups) fail(['SecurityGroups'], 'missing: not `aws ec2 describe-security-groups` output');
}
