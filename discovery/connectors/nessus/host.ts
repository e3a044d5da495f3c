import { isIP } from 'node:net';
import type { AliasKind, AssetRef } from '../../model.js';

// One host identity for every network scanner (Nessus XML and CSV, Qualys XML and CSV), so the same
// machine is one asset whichever tool or export reported it: `host:<name>`, lower-cased, from the
// first present of FQDN, then host name (a scan target given as a name counts as one), then NetBIOS
// name, then IP address. The record's other names (the IP beside the FQDN...) are kept as aliases.

export interface HostNames {
  fqdn?: string | undefined;
  hostname?: string | undefined;
  netbios?: string | undefined;
  /** The IP address; a cell listing several (`10.0.0.1, 10.0.0.2`, `["a", "b"]`) gives the first as the IP, the rest as aliases. */
  ip?: string | undefined;
  /** The scan target as given (an IP or a name); placed by what it looks like. */
  target?: string | undefined;
  /**
   * The id a management tool gives the machine (Defender's DeviceId): never the identity when any
   * name is given, always an alias, so the same tool's exports that name the machine only by it
   * (Defender's API) find the same asset.
   */
  machineId?: string | undefined;
}

/**
 * A URL's host name (Nessus WAS writes the scanned URL, `http://google.com/`, as the host's FQDN
 * and name): the machine is the host, not the URL. Anything else is returned as it is.
 */
function urlHost(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  try {
    return new URL(value).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return value;
  }
}

const clean = (value: string | undefined): string | undefined => {
  const v = value === undefined ? undefined : urlHost(value.trim()).toLowerCase().replace(/\.$/, '');
  return v ? v : undefined;
};

/** Every address of an IP cell, cleaned, in order (most cells hold one). */
function addresses(value: string | undefined): string[] {
  if (value === undefined) return [];
  if (!/[\s,;[\]"']/.test(value.trim())) {
    const one = clean(value);
    return one ? [one] : [];
  }
  return value.replace(/[[\]"']/g, ' ').split(/[\s,;]+/).map(clean).filter((a): a is string => a !== undefined);
}

const kindOf = (name: string): AliasKind => (isIP(name) !== 0 ? 'ip' : name.includes('.') ? 'fqdn' : 'hostname');

/**
 * The chosen identity and the record's other names, or undefined when the report names the host
 * in no way at all. Other names are its IP addresses and other FQDNs; a short host name or NetBIOS
 * name is one only when the record has no FQDN, since short names repeat across domains (`dc01`,
 * `localhost`) and would tie an FQDN-named machine to every other machine of that short name.
 */
function hostIdentity(names: HostNames): { identity: string; aliases?: Array<readonly [AliasKind, string]> } | undefined {
  const target = clean(names.target);
  const targetIsIp = target !== undefined && isIP(target) !== 0;
  // A "FQDN" that is really an IP (scanners fall back to it when reverse DNS fails) ranks as an IP.
  const fqdn = clean(names.fqdn);
  const ips = addresses(names.ip);
  const all = [fqdn, clean(names.hostname), target, clean(names.netbios), ...ips];
  const named = [fqdn, clean(names.hostname), targetIsIp ? undefined : target, clean(names.netbios)]
    .find((v) => v !== undefined && isIP(v) === 0);
  const machineId = clean(names.machineId);
  const identity = named ?? ips[0] ?? (targetIsIp ? target : undefined) ?? fqdn ?? machineId;
  if (identity === undefined) return undefined;
  const hasFqdn = all.some((v) => v !== undefined && kindOf(v) === 'fqdn' && !/^[\d.]+$/.test(v));
  let aliases: Array<readonly [AliasKind, string]> | undefined;
  for (const v of all) {
    if (v === undefined || v === identity) continue;
    const kind = kindOf(v);
    if (kind === 'hostname' && hasFqdn) continue;
    // Digits and dots that are no IP address (`192.168.1.1001`) name nothing.
    if (kind === 'fqdn' && /^[\d.]+$/.test(v)) continue;
    if (aliases?.some(([, seen]) => seen === v)) continue;
    (aliases ??= []).push([kind, v]);
  }
  if (machineId !== undefined && machineId !== identity && !aliases?.some(([, seen]) => seen === machineId)) {
    (aliases ??= []).push([kindOf(machineId), machineId]);
  }
  return aliases ? { identity, aliases } : { identity };
}

function hostAsset(identity: string, aliases?: ReadonlyArray<readonly [AliasKind, string]>): AssetRef {
  return { assetKey: `host:${identity}`, kind: 'host', name: identity, ...(aliases ? { alsoKnownAs: aliases } : {}) };
}

/**
 * The host's asset: named by the report, else by the import's target (only then, so a multi-host
 * report never collapses into one asset); undefined when neither names it. The record's other
 * names (its IP beside its FQDN...) go to `alsoKnownAs`.
 */
export function reportedHost(names: HostNames, target: string | undefined): AssetRef | undefined {
  const named = hostIdentity(names);
  if (named) return hostAsset(named.identity, named.aliases);
  const identity = target?.trim().toLowerCase();
  return identity ? hostAsset(identity) : undefined;
}

/**
 * reportedHost() for formats that name the host on every row (CSV exports, per-detection XML):
 * rows of one host come together, so the previous row's asset is returned as long as the names
 * are the same, and its findings share one AssetRef.
 */
export type HostNamer = (names: HostNames, target: string | undefined) => AssetRef | undefined;

export function hostNamer(): HostNamer {
  let last: HostNames | undefined;
  let lastTarget: string | undefined;
  let asset: AssetRef | undefined;
  return (names, target) => {
    if (last !== undefined && target === lastTarget && names.fqdn === last.fqdn && names.hostname === last.hostname
      && names.netbios === last.netbios && names.ip === last.ip && names.target === last.target && names.machineId === last.machineId) return asset;
    last = { fqdn: names.fqdn, hostname: names.hostname, netbios: names.netbios, ip: names.ip, target: names.target, machineId: names.machineId };
    lastTarget = target;
    asset = reportedHost(names, target);
    return asset;
  };
}
