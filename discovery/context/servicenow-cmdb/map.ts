import { isObject, type Json } from '../../connectors/common/json.js';
import type { ContextAsset } from '../model.js';
import {
  CRITICALITY_VALUES, cleanAsset, isIpAddress, normalizeEnvironment, normalizeIp, normalizeName, parseCriticality, parseRevenue, splitList, uniq,
} from '../common.js';

// One ServiceNow CI record (Table API JSON) to a context asset. Shared by the file parser and the
// live pull, so an export and a pull of the same instance give the same records.

export const SOURCE = 'servicenow-cmdb';

const SYS_ID = /^[0-9a-f]{32}$/;

/** A plain column's value: a string, or `value` of a `{display_value, value}` pair (sysparm_display_value=all). */
function text(v: unknown): string | undefined {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isObject(v)) return text(v.value);
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

interface Reference {
  sysId?: string;
  display?: string;
}

/**
 * A reference column: `{link, value}` (the default read), `{display_value, link, value}`
 * (display_value=all), a bare sys_id (exclude_reference_link) or a display value (display_value=true).
 */
function reference(v: unknown): Reference | undefined {
  if (isObject(v)) {
    const sysId = typeof v.value === 'string' && v.value.trim() !== '' ? v.value.trim() : undefined;
    const display = typeof v.display_value === 'string' && v.display_value.trim() !== '' ? v.display_value.trim() : undefined;
    return sysId || display ? { sysId, display } : undefined;
  }
  const s = text(v);
  if (!s) return undefined;
  return SYS_ID.test(s) ? { sysId: s } : { display: s };
}

/** Owners stay sys_ids (`sys_id:<id>`) until sys_user resolves them: a display value is a person's name, not a user_name. */
function ownerOf(v: unknown): string | undefined {
  const ref = reference(v);
  if (!ref) return undefined;
  return ref.sysId ? `sys_id:${ref.sysId}` : ref.display;
}

function kindOf(sysClass: string | undefined, fallback: ContextAsset['kind']): ContextAsset['kind'] {
  if (!sysClass) return fallback;
  const c = sysClass.toLowerCase();
  if (/server|computer|vm_instance|vm_object|ec2_instance|virtual_machine/.test(c)) return 'host';
  if (/image/.test(c)) return 'container_image';
  if (/container/.test(c)) return 'container';
  if (/service|business_app/.test(c)) return 'business_service';
  return 'other';
}

export interface MappedCi {
  asset?: ContextAsset;
  /** The record is retired or has no name: nothing to say about a live asset. */
  skipped?: 'retired';
}

/**
 * Maps one CI. `fail(field, reason)` raises the caller's error (a file path or a page offset).
 * `defaultKind` applies when the record has no sys_class_name (a cmdb_ci_server read).
 */
export function mapCi(rec: unknown, defaultKind: ContextAsset['kind'], fail: (field: string | undefined, reason: string) => never): MappedCi {
  if (!isObject(rec)) fail(undefined, 'expected an object');
  const r = rec as Json;
  // Retired CIs keep their IPs and names in the CMDB; matching them would give live assets stale owners.
  if (text(r.install_status) === '7' || text(r.operational_status) === '6') return { skipped: 'retired' };

  const fqdn = text(r.fqdn);
  const hostname = text(r.host_name);
  const name = text(r.name) ?? hostname ?? fqdn ?? fail('name', 'missing (and no host_name or fqdn to name the CI by)');
  const criticalityRaw = text(r.business_criticality);
  const criticality = parseCriticality(criticalityRaw);
  if (criticality === null) fail('business_criticality', `unknown value ${JSON.stringify(criticalityRaw)}; expected one of ${CRITICALITY_VALUES}`);

  // ServiceNow has no standard revenue column: instances that track it use a custom field.
  const revenueRaw = text(r.u_annual_revenue);
  const annualRevenue = parseRevenue(revenueRaw);
  if (annualRevenue === null) fail('u_annual_revenue', `${JSON.stringify(revenueRaw)} is not a yearly revenue figure (a number such as 12500000 or 12.5M)`);

  // ip_address is free text on a real instance; values that are not addresses are ignored.
  const ips = uniq(splitList(text(r.ip_address)).filter(isIpAddress).map(normalizeIp));
  const service = reference(r.u_business_service);
  const serviceName = service ? (service.display ?? `sys_id:${service.sysId}`) : undefined;
  const sysClass = text(r.sys_class_name);
  const tags: Record<string, string> = {};
  if (sysClass) tags.sys_class_name = sysClass;
  const os = text(r.os);
  if (os) tags.os = os;

  return {
    asset: cleanAsset({
      identifiers: {
        fqdn: fqdn ? normalizeName(fqdn) : undefined,
        hostname: hostname ? normalizeName(hostname) : undefined,
        ips,
        instanceId: text(r.object_id),
        cmdbId: text(r.sys_id),
      },
      kind: kindOf(sysClass, defaultKind),
      name,
      owner: ownerOf(r.owned_by) ?? ownerOf(r.managed_by),
      businessService: serviceName,
      criticality,
      annualRevenue,
      environment: normalizeEnvironment(text(r.environment) ?? text(r.used_for)),
      tags,
      relations: service
        ? [{ relation: 'part_of', target: service.sysId ? { cmdbId: service.sysId } : {}, targetKind: 'business_service', targetName: serviceName! }]
        : undefined,
    }),
  };
}
