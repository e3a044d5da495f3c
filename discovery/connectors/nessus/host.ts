import { isIP } from 'node:net';
import type { AssetRef } from '../../model.js';

// One host identity for every network scanner (Nessus XML and CSV, Qualys XML and CSV), so the same
// machine is one asset whichever tool or export reported it: `host:<name>`, lower-cased, from the
// first present of FQDN, then host name (a scan target given as a name counts as one), then NetBIOS
// name, then IP address.

export interface HostNames {
  fqdn?: string | undefined;
  hostname?: string | undefined;
  netbios?: string | undefined;
  ip?: string | undefined;
  /** The scan target as given (an IP or a name); placed by what it looks like. */
  target?: string | undefined;
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

/** The chosen identity, or undefined when the report names the host in no way at all. */
function hostIdentity(names: HostNames): string | undefined {
  const target = clean(names.target);
  const targetIsIp = target !== undefined && isIP(target) !== 0;
  // A "FQDN" that is really an IP (scanners fall back to it when reverse DNS fails) ranks as an IP.
  const fqdn = clean(names.fqdn);
  const named = [fqdn, clean(names.hostname), targetIsIp ? undefined : target, clean(names.netbios)]
    .find((v) => v !== undefined && isIP(v) === 0);
  return named ?? clean(names.ip) ?? (targetIsIp ? target : undefined) ?? fqdn;
}

function hostAsset(identity: string): AssetRef {
  return { assetKey: `host:${identity}`, kind: 'host', name: identity };
}

/**
 * The host's asset: named by the report, else by the import's target (only then, so a multi-host
 * report never collapses into one asset); undefined when neither names it.
 */
export function reportedHost(names: HostNames, target: string | undefined): AssetRef | undefined {
  const identity = hostIdentity(names) ?? target?.trim().toLowerCase();
  return identity ? hostAsset(identity) : undefined;
}
