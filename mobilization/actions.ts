import { createHash } from 'node:crypto';
import { fixedVersionCandidates, highestVersion, targetVersion } from './versions.js';

// What an owner actually does to fix findings, and so what one golden ticket asks for. Scanners
// report one row per (package, CVE); owners rebuild an image, bump a lockfile, upgrade a product or
// run a patch cycle, and each of those fixes many rows at once. These rules turn the rows into those
// actions; pure, so every grouping rule is tested on its own (test/mobilization/actions.test.ts).
//
// - an image: one OS-layer rebuild for all its OS packages, one ticket per application manifest;
//   an image built on a known base image leaves its OS packages to one ticket on the base's owner;
// - a host: one ticket per product upgrade (every plugin of PHP -> PHP to the highest version asked),
//   one OS patch run across the owner's hosts;
// - misconfigurations and secrets: one configuration change, one secret rotation per asset;
// - no fix known: one mitigation ticket per component, with compensating controls to apply.
// Inside a ticket, packages of one source package share a line, and each installed version of a
// package is its own line with the version that fits its branch.

export const ACTIONS = ['os-layer', 'base-image', 'manifest', 'product', 'os-patch', 'config', 'secret', 'mitigation', 'package'] as const;
export type Action = (typeof ACTIONS)[number];

export interface ActionableFinding {
  id: number;
  assetId: number;
  assetKey: string;
  assetName: string;
  assetKind: string;
  owner: string | null;
  criticality: string | null;
  kind: string;
  issueId: string;
  component: string;
  version: string;
  location: string;
  fixedVersion: string | null;
  ecosystem: string | null;
  packageClass: 'os' | 'app' | null;
  manifest: string;
  sourcePackage: string | null;
  tier: string;
  dueAt: Date;
  /** The image this one is built from (asset relation `built_from`), when discovery knows it. */
  baseImage?: { assetId: number; assetKey: string; assetName: string; owner: string | null } | null;
}

/** One line of a ticket: a package (or product) at one installed version and where to take it. */
export interface ActionLine {
  /** The source package, product or package name the owner acts on. */
  package: string;
  /** The binary packages the line covers (libc6 and libc-bin for glibc); [package] otherwise. */
  packages: string[];
  installed: string;
  /** The version to upgrade to; undefined for mitigations, configuration and secrets. */
  target?: string;
  issueIds: string[];
}

export interface RemediationAction {
  key: string;
  action: Action;
  /** What the action is on: `OS packages`, a manifest path, a product, `configuration`... */
  subject: string;
  /** An asset, or an owner's hosts (OS patch runs). */
  scope: { kind: 'asset'; assetKey: string; assetName: string } | { kind: 'owner'; owner: string };
  /** The asset the ticket is filed against (the first, for an owner's patch run). */
  assetId: number;
  owner: string | null;
  criticality: string | null;
  tier: 'act' | 'attend';
  dueAt: Date;
  /** The one version the ticket asks for when it has one; '' when lines differ or none applies. */
  target: string;
  findingIds: number[];
  assetIds: number[];
  lines: ActionLine[];
}

const OS_ECOSYSTEMS = new Set([
  'os', 'deb', 'debian', 'ubuntu', 'apk', 'alpine', 'rpm', 'redhat', 'centos', 'rocky', 'alma', 'almalinux', 'amazon', 'oracle',
  'ol', 'suse', 'sles', 'opensuse', 'opensuse.leap', 'photon', 'wolfi', 'chainguard', 'cbl-mariner', 'azurelinux', 'mariner',
  'windows', 'kb',
]);

const CRITICALITY_ORDER = ['critical', 'high', 'medium', 'low'];

/** OS package or application dependency: the connector's word, else the ecosystem's, else where it was found. */
export function packageClassOf(f: Pick<ActionableFinding, 'packageClass' | 'ecosystem' | 'assetKind' | 'manifest' | 'location'>): 'os' | 'app' | null {
  if (f.packageClass) return f.packageClass;
  if (f.ecosystem) return OS_ECOSYSTEMS.has(f.ecosystem.toLowerCase()) ? 'os' : 'app';
  // Image reports of older connectors: OS packages carry neither a manifest nor a path.
  if (f.assetKind === 'container_image') return f.manifest || f.location ? 'app' : 'os';
  return null;
}

/**
 * The product a host finding is about: scanners title product checks `PHP < 5.2.4 Multiple
 * Vulnerabilities` or `Apache 2.4.x < 2.4.58`; the product is what comes before the version test.
 */
export function productOf(component: string): string {
  const m = /^(.*?)\s+(?:[<>=]|\d+(?:\.\d+|\.x)+|prior to|before|version|multiple|\()/i.exec(component);
  // `PHP 5 < 5.2.7`, `PHP 8.2.x < 8.2.20`: the branch named before the test is not part of the product.
  const name = (m?.[1] ?? component).replace(/(?:\s+\d+(?:\.[\dx]+)*)+$/i, '').trim();
  return name || component.trim();
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50);

/** `os-layer~OS-packages~my-app-latest~1f2e3d4c`: readable in the Temporal UI, stable across scans. */
export function actionKey(action: Action, subject: string, scope: RemediationAction['scope']): string {
  const where = scope.kind === 'asset' ? scope.assetKey : `owner:${scope.owner}`;
  const hash = createHash('sha256').update([action, subject.toLowerCase(), where].join('\x1f')).digest('hex').slice(0, 8);
  const name = scope.kind === 'asset' ? scope.assetName : `hosts of ${scope.owner}`;
  return `${action}~${slug(subject)}~${slug(name)}~${hash}`;
}

interface Placement {
  action: Action;
  subject: string;
  scope: RemediationAction['scope'];
  /** The asset the ticket is filed against and its owner, when not the finding's own (a base image). */
  on?: { assetId: number; owner: string | null };
}

/** Which action fixes this finding. */
export function placementOf(f: ActionableFinding): Placement {
  const onAsset = { kind: 'asset' as const, assetKey: f.assetKey, assetName: f.assetName };
  if (f.kind === 'secret') return { action: 'secret', subject: 'exposed secrets', scope: onAsset };
  if (f.kind === 'misconfiguration') return { action: 'config', subject: 'configuration', scope: onAsset };
  const fix = f.fixedVersion && fixedVersionCandidates(f.fixedVersion).length > 0;
  if (!fix) return { action: 'mitigation', subject: f.assetKind === 'host' ? productOf(f.component) : f.component, scope: onAsset };
  const cls = packageClassOf(f);
  if (f.assetKind === 'host') {
    if (cls === 'os') {
      // One patch run per owner: the same change, in one maintenance window, on all their hosts.
      return { action: 'os-patch', subject: 'OS packages', scope: f.owner ? { kind: 'owner', owner: f.owner } : onAsset };
    }
    // Connectors name the product when the report does (Nessus' CPE: `php`); else the check's title does.
    return { action: 'product', subject: f.sourcePackage ?? productOf(f.component), scope: onAsset };
  }
  if (cls === 'os' && f.assetKind === 'container_image' && f.baseImage) {
    // The OS layer comes from the base image: its owner rebuilds it once, every image built on it
    // picks the fix up on its next build.
    const base = f.baseImage;
    return {
      action: 'base-image',
      subject: 'OS packages',
      scope: { kind: 'asset', assetKey: base.assetKey, assetName: base.assetName },
      on: { assetId: base.assetId, owner: base.owner },
    };
  }
  if (cls === 'os') return { action: f.assetKind === 'container_image' ? 'os-layer' : 'os-patch', subject: 'OS packages', scope: onAsset };
  const manifest = libraryDirectory(f.manifest) ?? (f.manifest || manifestOfLocation(f.location));
  return { action: 'manifest', subject: manifest || (f.ecosystem ? `${f.ecosystem} dependencies` : 'dependencies'), scope: onAsset };
}

/**
 * Java archives are reported one by one, but the jars of one library directory (`app/lib`) are the
 * dependencies of one application, bumped in one build: they share a ticket.
 */
function libraryDirectory(manifest: string): string | undefined {
  if (!/\.(jar|war|ear|hpi|jpi)$/i.test(manifest)) return undefined;
  const slash = manifest.lastIndexOf('/');
  return slash > 0 ? manifest.slice(0, slash) : '.';
}

/** A lockfile or manifest path names where the bump is made; a jar's own path does not (it is declared elsewhere). */
function manifestOfLocation(location: string): string {
  return /(^|\/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|requirements[^/]*\.txt|Pipfile\.lock|poetry\.lock|uv\.lock|go\.mod|go\.sum|Gemfile\.lock|composer\.lock|pom\.xml|build\.gradle(\.kts)?|gradle\.lockfile|[^/]+\.csproj|packages\.lock\.json|Cargo\.lock|mix\.lock|pubspec\.lock)$/.test(location)
    ? location
    : '';
}

/** The lines of a ticket: one per package (or source package, or product) and installed version. */
export function actionLines(action: Action, findings: Pick<ActionableFinding, 'component' | 'version' | 'sourcePackage' | 'issueId' | 'fixedVersion'>[]): ActionLine[] {
  const lines = new Map<string, ActionLine & { fixes: string[] }>();
  for (const f of findings) {
    const pkg =
      action === 'product'
        ? (f.sourcePackage ?? productOf(f.component))
        : action === 'os-layer' || action === 'os-patch'
          ? (f.sourcePackage ?? f.component)
          : f.component;
    // Each installed version is its own line: python 3.9.2 and 3.11.4 in one image need different targets.
    const id = `${pkg}\x1f${f.version}`;
    const line = lines.get(id) ?? { package: pkg, packages: [], installed: f.version, issueIds: [], fixes: [] };
    if (!line.packages.includes(f.component)) line.packages.push(f.component);
    if (!line.issueIds.includes(f.issueId)) line.issueIds.push(f.issueId);
    const target = f.fixedVersion ? targetVersion(f.version, f.fixedVersion) : undefined;
    if (target) line.fixes.push(target);
    lines.set(id, line);
  }
  return [...lines.values()]
    .map(({ fixes, ...line }) => {
      const target = highestVersion(fixes);
      return { ...line, packages: line.packages.sort(), issueIds: line.issueIds.sort(), ...(target ? { target } : {}) };
    })
    .sort((a, b) => a.package.localeCompare(b.package) || a.installed.localeCompare(b.installed));
}

/** Groups actionable (act/attend) findings into the remediation actions that fix them. */
export function groupIntoActions(findings: ActionableFinding[]): RemediationAction[] {
  const groups = new Map<string, { placement: Placement; findings: ActionableFinding[] }>();
  // A host check of an installed product with no fixed version of its own (`PHP Unsupported Version
  // Detection`) is fixed by the upgrade the product gets anyway: it joins that ticket rather than
  // asking for a mitigation. A check with no installed version (`phpinfo.php Detection`) does not.
  const upgraded = new Set(
    findings.map((f) => ({ f, p: placementOf(f) })).filter(({ p }) => p.action === 'product').map(({ f, p }) => `${f.assetKey}\x1f${p.subject.toLowerCase()}`),
  );
  for (const f of findings) {
    let placement = placementOf(f);
    if (placement.action === 'mitigation' && f.assetKind === 'host' && f.sourcePackage && f.version && upgraded.has(`${f.assetKey}\x1f${f.sourcePackage.toLowerCase()}`)) {
      placement = { action: 'product', subject: f.sourcePackage, scope: placement.scope };
    }
    // A base image's own OS findings and those its images inherit are one rebuild: one key.
    const key = actionKey(placement.action === 'base-image' ? 'os-layer' : placement.action, placement.subject, placement.scope);
    const group = groups.get(key) ?? { placement, findings: [] };
    if (placement.action === 'base-image') group.placement = placement;
    group.findings.push(f);
    groups.set(key, group);
  }
  return [...groups.entries()].map(([key, { placement, findings: fs }]) => {
    const lines = actionLines(placement.action, fs);
    const targets = [...new Set(lines.map((l) => l.target).filter((t): t is string => !!t))];
    const rank = (c: string | null) => (c ? CRITICALITY_ORDER.indexOf(c) : -1) >>> 0;
    const first = fs.reduce((a, b) => (a.assetId <= b.assetId ? a : b));
    return {
      key,
      action: placement.action,
      subject: placement.subject,
      scope: placement.scope,
      assetId: placement.on?.assetId ?? first.assetId,
      owner: placement.on ? placement.on.owner : placement.scope.kind === 'owner' ? placement.scope.owner : first.owner,
      criticality: fs.map((f) => f.criticality).reduce((a, b) => (rank(b) < rank(a) ? b : a), null as string | null),
      tier: fs.some((f) => f.tier === 'act') ? 'act' : 'attend',
      dueAt: new Date(Math.min(...fs.map((f) => f.dueAt.getTime()))),
      // A product upgrade asks for the highest version any of its checks requires.
      target: placement.action === 'product' ? (highestVersion(targets) ?? '') : targets.length === 1 ? targets[0]! : '',
      findingIds: fs.map((f) => f.id).sort((a, b) => a - b),
      assetIds: [...new Set(fs.map((f) => f.assetId))].sort((a, b) => a - b),
      lines,
    };
  });
}
