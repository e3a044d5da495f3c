import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { readValue, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { defined, isObject, num, objects, str, unique, type Json } from '../common/json.js';
import { fixOf, packageFacts } from '../common/package-facts.js';
import { fixedVersionFromText } from '../shared/fix-text.js';
import { cvss3BaseScore, cvss3Vector } from '../common/cvss.js';
import { aliasesOf, cweId, nameFromParts, preferCve } from '../common/identity.js';

// Dependency-Track Finding Packaging Format (FPF) export: one project, its findings. The asset is
// the project (`project:<name>@<version>`); `findings` null, [] or absent is a project with no
// findings. Dependency-Track's analysis decision becomes the vendor status.

const FORMAT = 'dependency-track';

const fail: ReportFail = reportFail(FORMAT);

type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

const ANALYSIS_STATES: Record<string, VendorStatus> = {
  EXPLOITABLE: 'affected',
  IN_TRIAGE: 'under_investigation',
  FALSE_POSITIVE: 'false_positive',
  NOT_AFFECTED: 'not_affected',
  RESOLVED: 'fixed',
};

/** Decisions that already say why a finding is not an exposure; suppression adds nothing to them. */
const CONCLUSIVE = new Set<VendorStatus>(['false_positive', 'not_affected', 'fixed']);

function assetOf(file: string, project: Json | undefined, options: ParseOptions): AssetRef {
  const projectName = str(project?.name);
  const version = str(project?.version);
  const name = options.target ?? (projectName ? (version ? `${projectName}@${version}` : projectName) : undefined);
  if (!name) fail(file, ['project', 'name'], 'missing (pass a target to name the asset)');
  return { assetKey: `project:${name}`, kind: 'other', name };
}

/**
 * Dependency-Track's own ids for non-CVE sources are bare numbers (npm advisory `533`): prefix the
 * source so they cannot collide (`NPM-533`), then prefer the single CVE alias, as other connectors do.
 */
function idsOf(vuln: Json): { issueId: string; aliases?: string[] } | undefined {
  const raw = str(vuln.vulnId) ?? (typeof vuln.vulnId === 'number' ? String(vuln.vulnId) : undefined);
  if (!raw) return undefined;
  const source = str(vuln.source);
  const id = /^[A-Za-z][A-Za-z0-9]*-/.test(raw) || !source ? raw : `${source.toUpperCase()}-${raw}`;
  // Each alias object names one id per source (cveId, ghsaId, osvId, snykId, gsdId, vulnDbId...).
  const aliases = objects(vuln.aliases).flatMap((a) =>
    Object.entries(a).filter(([key, v]) => key.endsWith('Id') && typeof v === 'string').map(([, v]) => v as string));
  const issueId = preferCve(id, aliases);
  return { issueId, aliases: aliasesOf(issueId, [id, ...aliases]) };
}

function findingOf(file: string, value: unknown, path: JsonPath, asset: () => AssetRef): NormalizedFinding {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const component = isObject(value.component) ? value.component : fail(file, [...path, 'component'], 'missing');
  const vuln = isObject(value.vulnerability) ? value.vulnerability : fail(file, [...path, 'vulnerability'], 'missing');
  const analysis = isObject(value.analysis) ? value.analysis : {};
  const pkg = str(component.name) ?? fail(file, [...path, 'component', 'name'], 'missing');
  const { issueId, aliases } = idsOf(vuln) ?? fail(file, [...path, 'vulnerability', 'vulnId'], 'missing');
  const rawSeverity = str(vuln.severity);
  const severity = rawSeverity === undefined || rawSeverity.toUpperCase() === 'UNASSIGNED' ? 'unknown' : normalizeSeverity(rawSeverity) ?? 'unknown';
  const state = ANALYSIS_STATES[str(analysis.state)?.toUpperCase() ?? ''];
  const vendorStatus = state && CONCLUSIVE.has(state) ? state : analysis.isSuppressed === true ? 'suppressed' : state;
  const v3 = str(vuln.cvssV3Vector);
  const cvssScore = num(vuln.cvssV3BaseScore) ?? (v3 ? cvss3BaseScore(v3) : undefined) ?? num(vuln.cvssV2BaseScore);
  // FPF references are Markdown text; keep the URLs.
  const references = unique(typeof vuln.references === 'string' ? vuln.references.match(/https?:\/\/[^\s)\]]+/g) ?? [] : []);
  const cwes = unique([cweId(vuln.cweId), ...objects(vuln.cwes).map((c) => cweId(c.cweId))].filter((c): c is string => c !== undefined));
  const parts = nameFromParts({ name: pkg, group: str(component.group), purl: str(component.purl) });
  return defined<NormalizedFinding>({
    asset: asset(),
    kind: 'vulnerability',
    issueId,
    aliases,
    component: parts.name,
    version: str(component.version) ?? '',
    location: '',
    severity,
    cvssScore: cvssScore !== undefined && cvssScore >= 0 && cvssScore <= 10 ? cvssScore : undefined,
    cvssVector: cvss3Vector(v3),
    title: str(vuln.title),
    vendorStatus,
    description: str(vuln.description),
    references: references.length ? references : undefined,
    cwes: cwes.length ? cwes : undefined,
    ...fixOf(str(vuln.patchedVersions), () => fixedVersionFromText(str(vuln.recommendation))),
    ...packageFacts({ ecosystem: parts.ecosystem }),
  });
}

export const dependencyTrack: Connector = {
  format: FORMAT,
  description: 'Dependency-Track Finding Packaging Format (FPF) JSON export of one project',
  detect(head) {
    if (!opensObject(head) || !/"findings"\s*:/.test(head)) return false;
    return /"application"\s*:\s*"Dependency-Track"/.test(head) || (/"project"\s*:\s*\{/.test(head) && /"matrix"\s*:/.test(head));
  },
  async *parse(file, options) {
    const name = basename(file);
    let project: Json | undefined;
    let projectRead = false;
    let resolved: AssetRef | undefined;
    // Exports differ in key order (Dependency-Track 4.10 writes findings before project): when a
    // finding comes first, one light pass reads the project before going on.
    const readProject = async (): Promise<Json | undefined> => {
      const value = await readValue(file, { name, format: FORMAT }, 'project');
      return isObject(value) ? value : undefined;
    };
    const asset = () => (resolved ??= assetOf(name, project, options));
    const select = ['project', 'findings.*'];
    const events = objectEvents(file, { name, format: FORMAT, select }, () => fail(name, [], 'expected a JSON object'));
    for await (const event of events) {
      const { path } = event;
      if (path[0] === 'project' && event.kind === 'value') {
        project = isObject(event.value) ? event.value : fail(name, path, 'expected an object');
        projectRead = true;
      } else if (path[0] === 'findings') {
        if (path.length === 1) {
          if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
          continue;
        }
        if (event.kind !== 'value') continue;
        if (!projectRead) {
          project = await readProject();
          projectRead = true;
        }
        if (!project) fail(name, ['project'], 'missing: not a Dependency-Track FPF export');
        yield findingOf(name, event.value, path, asset);
      }
    }
    if (!project) fail(name, ['project'], 'missing: not a Dependency-Track FPF export');
  },
};
