// The normalized model every connector produces. Large reports stream through it; nothing here
// holds a whole report in memory.

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info' | 'unknown';

export interface AssetRef {
  /** Identity key, e.g. `image:docker.io/library/nginx:1.25`. */
  assetKey: string;
  kind: 'container_image' | 'filesystem' | 'repository' | 'host' | 'other';
  name: string;
  digest?: string;
  /** The base image a container image is built from, when its labels name one. */
  builtFrom?: { image: string; digest?: string };
  /**
   * The record's other names for the asset, beside the one its key is made of: a host named by its
   * FQDN whose report also gives its IP address, an EC2 instance id with its private IPs. Each is
   * recorded on the asset and finds it again (IP addresses weakly: discovery/store/identity.ts).
   * One array per host, shared by all of its findings.
   */
  alsoKnownAs?: ReadonlyArray<readonly [AliasKind, string]>;
}

/** Kinds of name a scanner record can give an asset besides its key (asset_identifiers.kind). */
export type AliasKind = 'fqdn' | 'hostname' | 'ip' | 'instance_id';

export interface NormalizedFinding {
  asset: AssetRef;
  kind: 'vulnerability' | 'misconfiguration' | 'secret';
  /** CVE, GHSA, vendor advisory or plugin id. */
  issueId: string;
  /**
   * Every other id the report gives the vulnerability (GHSA, OSV, distro advisories, the CVE when
   * issueId is not one): deduplicated, sorted, issueId excluded (`aliasesOf()`). Absent when none.
   */
  aliases?: string[];
  component: string;
  version: string;
  /** Where the component lives when one asset can hold it twice (a jar's path); '' otherwise. */
  location: string;
  fixedVersion?: string;
  severity: Severity;
  cvssScore?: number;
  /** The CVSS v3.x vector (`CVSS:3.1/AV:N/...`): prioritization reads automatability and impact from it. */
  cvssVector?: string;
  title?: string;
  /**
   * `fix_available` (Trivy/Grype `fixed`): the installed version is still affected and a fixed one
   * exists; unlike `fixed` (CycloneDX `resolved`), which says this very component is not affected.
   */
  vendorStatus?: 'affected' | 'not_affected' | 'fixed' | 'under_investigation' | 'will_not_fix' | 'false_positive' | 'suppressed' | 'unknown' | 'fix_available';
  description?: string;
  references?: string[];
  /** `CWE-<n>` identifiers. */
  cwes?: string[];
  // Package facts: what mobilization groups findings by (one ticket per remediation action). None of
  // them is part of the finding's identity, so a report that adds or rewords them never duplicates it.
  /**
   * The package's ecosystem, named by its package-URL type (`deb`, `apk`, `rpm`, `npm`, `pypi`,
   * `maven`, `golang`...), so two scanners name one package's ecosystem alike.
   */
  ecosystem?: string;
  /**
   * `os`: a package of the operating system (fixed by rebuilding an image's OS layer or by a patch
   * run on a host); `app`: an application dependency or product (fixed in its manifest or by
   * upgrading that product). Absent when the report does not tell.
   */
  packageClass?: 'os' | 'app';
  /**
   * The lockfile, manifest or built artifact an application package comes from, relative as the
   * scanner reports it (`app/package-lock.json`, `usr/local/bin/app`): one ticket per manifest.
   * Absent for OS packages and for installed packages that come from no manifest.
   */
  manifest?: string;
  /**
   * What one upgrade fixes together: the OS source package (libc6 and libc-bin are both `glibc`),
   * or for a host the product a plugin is about (every PHP plugin of a host: `php`).
   */
  sourcePackage?: string;
  /** Where `fixedVersion` came from: the report's own field, or recovered from its text. */
  fixSource?: 'scanner' | 'text' | 'advisory';
}

/** A report that cannot be imported, with the file, format and field that made it so. */
export class ReportError extends Error {
  constructor(
    readonly file: string,
    readonly format: string,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${format}${field ? `: ${field}` : ''}: ${reason}`);
    this.name = 'ReportError';
  }
}

const SEVERITIES: Record<string, Severity> = {
  critical: 'critical',
  high: 'high',
  medium: 'medium',
  moderate: 'medium',
  low: 'low',
  negligible: 'low',
  info: 'info',
  informational: 'info',
  none: 'info',
  unknown: 'unknown',
};

export function normalizeSeverity(raw: unknown): Severity | undefined {
  return typeof raw === 'string' ? SEVERITIES[raw.trim().toLowerCase()] : undefined;
}
