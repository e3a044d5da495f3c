import type { NormalizedFinding } from '../../model.js';
import { OS_ECOSYSTEMS, type Ecosystem } from './identity.js';

// The package facts mobilization groups findings by (model.ts): ecosystem, OS or application
// package, manifest, source package. One rule per fact, so every connector classifies alike.

/** Application ecosystems, by package-URL type: fixed in a manifest, not by an OS update. */
const APP_ECOSYSTEMS = new Set([
  'npm', 'pypi', 'maven', 'golang', 'composer', 'cargo', 'gem', 'nuget', 'hex', 'pub', 'cocoapods', 'swift',
  'conan', 'conda', 'cran', 'hackage', 'github',
]);

/** `os` for distribution packages, `app` for language ecosystems; undefined when neither (`generic`). */
export function packageClassOf(ecosystem: Ecosystem | undefined): 'os' | 'app' | undefined {
  if (!ecosystem) return undefined;
  if (OS_ECOSYSTEMS.has(ecosystem)) return 'os';
  return APP_ECOSYSTEMS.has(ecosystem) ? 'app' : undefined;
}

export type PackageFacts = Pick<NormalizedFinding, 'ecosystem' | 'packageClass' | 'manifest' | 'sourcePackage'>;

/**
 * The facts that have a value, ready to spread into a finding. The class follows the ecosystem
 * unless the report states it (Trivy's `Class`); OS packages have no manifest.
 */
export function packageFacts(facts: {
  ecosystem?: Ecosystem | undefined;
  packageClass?: 'os' | 'app' | undefined;
  manifest?: string | undefined;
  sourcePackage?: string | undefined;
}): PackageFacts {
  const out: PackageFacts = {};
  if (facts.ecosystem) out.ecosystem = facts.ecosystem;
  const packageClass = facts.packageClass ?? packageClassOf(facts.ecosystem);
  if (packageClass) out.packageClass = packageClass;
  if (facts.manifest && packageClass !== 'os') out.manifest = facts.manifest;
  if (facts.sourcePackage) out.sourcePackage = facts.sourcePackage;
  return out;
}

/** The fixed version and where it came from: the report's field first, else its text. */
export function fixOf(scanner: string | undefined, text?: () => string | undefined): Pick<NormalizedFinding, 'fixedVersion' | 'fixSource'> {
  if (scanner) return { fixedVersion: scanner, fixSource: 'scanner' };
  const recovered = text?.();
  return recovered ? { fixedVersion: recovered, fixSource: 'text' } : {};
}
