import type { AssetRef, NormalizedFinding, Severity } from '../../model.js';
import { fixedVersionFromText } from '../shared/fix-text.js';

// Identity rules shared by the Nessus XML and Nessus/Tenable CSV connectors, so one scan exported
// both ways gives the same fingerprints: one finding per host x plugin x port/protocol x CVE
// (x affected package when the plugin output names packages). Qualys findings take the same shape
// through hostCheckFindings.

export interface NessusItem {
  pluginId: string;
  pluginName: string;
  cves: readonly string[];
  port: string;
  protocol: string;
  pluginOutput: string;
  severity: Severity;
  cvssScore?: number | undefined;
  cvssVector?: string | undefined;
  vendorStatus?: NormalizedFinding['vendorStatus'];
  description?: string | undefined;
  /** See-also text: URLs separated by whitespace. */
  seeAlso?: string | undefined;
  cwes?: readonly string[] | undefined;
  /** The plugin family (`Debian Local Security Checks`, `CGI abuses`). */
  family?: string | undefined;
  /** The plugin's CPE(s) (`cpe:/a:php:php`), one or more separated by whitespace. */
  cpe?: string | undefined;
  /** The solution text ("Upgrade to PHP version 5.3.29 or later."). */
  solution?: string | undefined;
}

const NUMERIC_SEVERITY: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];
const NAMED_SEVERITY: Record<string, Severity> = {
  none: 'info', info: 'info', informational: 'info', low: 'low', medium: 'medium', high: 'high', critical: 'critical',
};

/** Nessus severity: 0-4 (0 = info) or a name; the first value given that is recognised wins. */
export function nessusSeverity(...raw: (string | undefined)[]): Severity {
  for (const value of raw) {
    const v = value?.trim().toLowerCase();
    if (!v) continue;
    if (/^[0-4]$/.test(v)) return NUMERIC_SEVERITY[Number(v)]!;
    const named = NAMED_SEVERITY[v];
    if (named) return named;
  }
  return 'unknown';
}

/**
 * A CVSS base score in 0-10, or undefined. Some CSV exports lose the decimal separator ("75" for
 * 7.5); an integer from 11 to 100 is read as tenths. A decimal comma is accepted too.
 */
export function cvssScore(raw: string | undefined): number | undefined {
  const match = /^\s*(\d{1,3})(?:[.,](\d+))?/.exec(raw ?? '');
  if (!match) return undefined;
  let score = Number(`${match[1]}.${match[2] ?? '0'}`);
  if (match[2] === undefined && score > 10 && score <= 100) score /= 10;
  return score >= 0 && score <= 10 ? score : undefined;
}

/** CVE ids in a cell or element list: comma, semicolon or whitespace separated, de-duplicated. */
export function cveList(raw: string | readonly string[]): string[] {
  const tokens = typeof raw === 'string' ? raw.split(/[\s,;]+/) : raw.flatMap((r) => r.split(/[\s,;]+/));
  const cves = tokens.map((t) => t.trim().toUpperCase()).filter((t) => /^CVE-\d{4}-\d{4,}$/.test(t));
  return [...new Set(cves)];
}

export interface AffectedPackage {
  component: string;
  version: string;
  fixedVersion?: string;
  /** A package of the system's package manager ("Remote package installed"), not the check's product. */
  installed?: boolean;
}

/** Splits an installed package string: Debian `name_version`, RPM-style `name-version-release`. */
function splitPackage(raw: string): { name: string; version: string } {
  const pkg = raw.trim();
  // Debian's separator is an underscore before a digit; RPM names may hold underscores (microcode_ctl).
  const deb = /^([^_\s]+?)_(\d.*)$/.exec(pkg);
  if (deb) return { name: deb[1]!, version: deb[2]! };
  const parts = pkg.split('-');
  if (parts.length >= 3) return { name: parts.slice(0, -2).join('-'), version: parts.slice(-2).join('-') };
  if (parts.length === 2) return { name: parts[0]!, version: parts[1]! };
  return { name: pkg, version: '' };
}

/**
 * What the plugin output says is affected: "Remote package installed : X / Should be : Y" pairs
 * (local package checks) give packages; "Installed version : X / Fixed version : Y" gives the
 * version of the product the plugin is about. Empty when the output names neither.
 */
function affectedPackages(output: string, pluginName: string): AffectedPackage[] {
  const found: AffectedPackage[] = [];
  const versions: AffectedPackage[] = [];
  for (const line of output.split(/\r?\n|\\n/)) {
    const m = /^\s*(Remote package installed|Should be|Installed version|Fixed version)\s*:\s*(.*?)\s*$/i.exec(line);
    if (!m || m[2] === '') continue;
    const label = m[1]!.toLowerCase();
    const value = m[2]!;
    if (label === 'remote package installed') {
      const { name, version } = splitPackage(value);
      found.push({ component: name, version, installed: true });
    } else if (label === 'should be') {
      const last = found[found.length - 1];
      if (last && last.fixedVersion === undefined) {
        const fixed = splitPackage(value);
        last.fixedVersion = fixed.name === last.component ? fixed.version : value;
      }
    } else if (label === 'installed version') {
      versions.push({ component: pluginName, version: value });
    } else {
      const last = versions[versions.length - 1];
      if (last && last.fixedVersion === undefined) last.fixedVersion = value;
    }
  }
  const all = found.length > 0 ? found : versions;
  const seen = new Set<string>();
  return all.filter((p) => {
    const key = `${p.component}\x1f${p.version}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function location(port: string, protocol: string): string {
  const p = port.trim();
  const proto = protocol.trim().toLowerCase();
  if (p === '') return proto;
  return proto === '' ? p : `${p}/${proto}`;
}

/**
 * One check a network scanner ran on one host port (a Nessus plugin, a Qualys QID), in the terms
 * every such scanner shares. Its findings: one per CVE (else `fallbackId`) x affected package (else
 * the check itself, by name).
 */
export interface HostCheck {
  /** The issue id when the check lists no CVE, e.g. `nessus:19506`. */
  fallbackId: string;
  /** The check's title; also the component when no package is named. */
  name: string;
  cves: readonly string[];
  port: string;
  protocol: string;
  packages?: readonly AffectedPackage[];
  severity: Severity;
  cvssScore?: number | undefined;
  cvssVector?: string | undefined;
  vendorStatus?: NormalizedFinding['vendorStatus'];
  description?: string | undefined;
  references?: readonly string[];
  cwes?: readonly string[];
  /** The check's solution text: a fixed version it names applies where the output gives none. */
  solution?: string | undefined;
  /** What the check says about the software: its packages' ecosystem, OS or application, product. */
  facts?: HostCheckFacts;
}

export interface HostCheckFacts {
  /** The ecosystem of the packages a local check lists (`deb`, `rpm`). */
  ecosystem?: string | undefined;
  packageClass?: 'os' | 'app' | undefined;
  /** The product the check is about (`php` from `cpe:/a:php:php`): what one upgrade fixes. */
  product?: string | undefined;
}

/** Nessus local-check families of Linux distributions, by their package manager. */
const FAMILY_ECOSYSTEMS: readonly (readonly [RegExp, string])[] = [
  [/^(Debian|Ubuntu) Local Security Checks$/i, 'deb'],
  [/^(Red Hat|CentOS|Fedora|Oracle Linux|Amazon Linux|SuSE|Scientific Linux|Alma Linux|Rocky Linux|Virtuozzo|PhotonOS|Mandriva|Huawei|Azure Linux|Mariner) Local Security Checks$/i, 'rpm'],
  [/^Alpine Linux Local Security Checks$/i, 'apk'],
  [/^Gentoo Local Security Checks$/i, 'portage'],
];

/**
 * What a Nessus plugin says about the software it checks: a distribution's local security checks
 * are OS package updates; otherwise the first CPE tells an application (`cpe:/a:`, whose product
 * names it) from an operating system (`cpe:/o:`).
 */
export function nessusFacts(family: string | undefined, cpe: string | undefined): HostCheckFacts {
  const ecosystem = FAMILY_ECOSYSTEMS.find(([pattern]) => pattern.test(family?.trim() ?? ''))?.[1];
  if (ecosystem) return { ecosystem, packageClass: 'os' };
  const m = /\bcpe:(?:\/|2\.3:)([aoh]):[^:\s]*:([^:\s]+)/i.exec(cpe ?? '');
  if (!m) return {};
  const part = m[1]!.toLowerCase();
  if (part === 'a') return { packageClass: 'app', product: m[2]!.toLowerCase() };
  return part === 'o' ? { packageClass: 'os' } : {};
}

export function* hostCheckFindings(asset: AssetRef, check: HostCheck): Generator<NormalizedFinding> {
  const issueIds = check.cves.length > 0 ? check.cves : [check.fallbackId];
  const targets: readonly AffectedPackage[] = check.packages?.length ? check.packages : [{ component: check.name, version: '' }];
  const where = location(check.port, check.protocol);
  const references = [...new Set(check.references ?? [])];
  const cwes = [...new Set(check.cwes ?? [])];
  const facts = check.facts ?? {};
  let solutionFix: string | undefined | null = null;
  const fromSolution = () => (solutionFix === null ? (solutionFix = fixedVersionFromText(check.solution)) : solutionFix);
  const perTarget = targets.map((pkg) => ({
    pkg,
    // The output's "Should be" / "Fixed version" lines, else the solution's (which is about the
    // check's product, so not for the distribution packages a local check lists).
    fixedVersion: pkg.fixedVersion ?? (pkg.installed ? undefined : fromSolution()),
    packageFacts: {
      ...(facts.ecosystem && pkg.installed ? { ecosystem: facts.ecosystem } : {}),
      ...(facts.packageClass ? { packageClass: facts.packageClass } : {}),
      ...(facts.product && !pkg.installed ? { sourcePackage: facts.product } : {}),
    },
  }));
  for (const issueId of issueIds) {
    for (const { pkg, fixedVersion, packageFacts } of perTarget) {
      yield {
        asset,
        kind: 'vulnerability',
        issueId,
        component: pkg.component,
        version: pkg.version,
        location: where,
        ...(fixedVersion ? { fixedVersion } : {}),
        severity: check.severity,
        ...(check.cvssScore !== undefined ? { cvssScore: check.cvssScore } : {}),
        ...(check.cvssVector !== undefined ? { cvssVector: check.cvssVector } : {}),
        title: check.name,
        ...(check.vendorStatus ? { vendorStatus: check.vendorStatus } : {}),
        ...(check.description ? { description: check.description } : {}),
        ...(references.length ? { references } : {}),
        ...(cwes.length ? { cwes } : {}),
        // Both the output lines and the solution are text the scanner wrote for people.
        ...(fixedVersion ? { fixSource: 'text' as const } : {}),
        ...packageFacts,
      };
    }
  }
}

export function* nessusFindings(asset: AssetRef, item: NessusItem): Generator<NormalizedFinding> {
  yield* hostCheckFindings(asset, {
    fallbackId: `nessus:${item.pluginId}`,
    name: item.pluginName,
    cves: item.cves,
    port: item.port,
    protocol: item.protocol,
    packages: affectedPackages(item.pluginOutput, item.pluginName),
    severity: item.severity,
    cvssScore: item.cvssScore,
    cvssVector: item.cvssVector,
    vendorStatus: item.vendorStatus,
    description: item.description,
    references: (item.seeAlso ?? '').split(/\s+/).filter((u) => /^https?:\/\//.test(u)),
    cwes: item.cwes,
    solution: item.solution,
    facts: nessusFacts(item.family, item.cpe),
  });
}
