import { basename, dirname } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import type { JsonPath } from '../../streams/json.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { arr, defined, isObject, num, objects, str, strings, unique, type Json } from '../common/json.js';
import { packageFacts } from '../common/package-facts.js';
import { cvss3BaseScore, cvss3Vector } from '../common/cvss.js';
import { aliasesOf, compareVersions, componentName, cweId, maxSeverity, osvEcosystem, preferCve, severityFromScore } from '../common/identity.js';

// OSV-Scanner JSON (`osv-scanner --format json`): results per scanned source (lockfile, SBOM, git
// repository), packages per source, OSV records per package. OSV-Scanner groups records that are
// aliases of one another (GHSA-x and PYSEC-y for one CVE): one finding per group, keyed on its
// single CVE when it has one, like the other connectors. Without `groups` (older versions), one
// finding per record. A 0-byte file is rejected as empty (connectorFor, or the stream reader when
// the format is named), never read as a clean scan.

const FORMAT = 'osv-scanner';

const fail: ReportFail = reportFail(FORMAT);

interface Source {
  path?: string;
  type?: string;
}

/**
 * The lockfile or SBOM the packages were read from, relative to the asset when the asset is its
 * folder (`yarn.lock` of `fs:/src/app`), else as reported; a git source has none.
 */
function manifestOf(source: Source | undefined, options: ParseOptions): string | undefined {
  const path = source?.path;
  if (!path || source?.type === 'git') return undefined;
  return options.target === undefined ? basename(path) : path;
}

/** The target, else the scanned directory: the lockfile's folder, or the repository path itself. */
function assetOf(file: string, source: Source | undefined, options: ParseOptions): AssetRef {
  const path = source?.path;
  const name = options.target ?? (path ? (source?.type === 'git' ? path.replace(/\/+$/, '') : dirname(path)) : undefined);
  if (!name) fail(file, ['results', 'source', 'path'], 'missing (pass a target to name the asset)');
  return { assetKey: `fs:${name}`, kind: 'filesystem', name };
}

interface Scored {
  severity: Severity;
  cvssScore?: number;
  /** The vector behind cvssScore. */
  cvssVector?: string;
}

/** The record's own rating (GHSA's database severity), else its CVSS v3 vector's score. */
function scoreOf(record: Json): Scored {
  let best: { score: number; vector: string } | undefined;
  for (const s of objects(record.severity)) {
    if (!/^CVSS_V3/.test(String(s.type ?? ''))) continue;
    const vector = cvss3Vector(s.score);
    const score = vector ? cvss3BaseScore(vector) : undefined;
    if (vector && score !== undefined && (!best || score > best.score)) best = { score, vector };
  }
  const db = isObject(record.database_specific) ? normalizeSeverity(record.database_specific.severity) : undefined;
  const severity = db ?? (best ? severityFromScore(best.score) : 'unknown');
  return { severity, ...(best ? { cvssScore: best.score, cvssVector: best.vector } : {}) };
}

/** The lowest fixed version above the installed one, from the ranges for this package. */
function fixedVersionOf(records: Json[], pkgName: string, installed: string): string | undefined {
  const fixed: string[] = [];
  for (const record of records) {
    for (const affected of objects(record.affected)) {
      const pkg = isObject(affected.package) ? affected.package : {};
      if (str(pkg.name) && pkg.name !== pkgName) continue;
      for (const range of objects(affected.ranges)) {
        if (range.type === 'GIT') continue;
        for (const event of objects(range.events)) {
          const v = str(event.fixed);
          if (v) fixed.push(v);
        }
      }
    }
  }
  const above = fixed.filter((v) => !installed || compareVersions(v, installed) > 0).sort(compareVersions);
  return above[0];
}

function cwesOf(records: Json[]): string[] | undefined {
  const raw: unknown[] = [];
  for (const record of records) {
    if (isObject(record.database_specific)) raw.push(...arr(record.database_specific.cwe_ids));
    for (const affected of objects(record.affected)) {
      if (isObject(affected.database_specific)) raw.push(...objects(affected.database_specific.cwes).map((c) => c.cweId));
    }
  }
  const list = unique(raw.map(cweId).filter((c): c is string => c !== undefined));
  return list.length ? list : undefined;
}

function* packageFindings(file: string, value: unknown, path: JsonPath, asset: AssetRef, manifest: string | undefined): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const pkg = isObject(value.package) ? value.package : fail(file, [...path, 'package'], 'missing');
  const records = objects(value.vulnerabilities);
  const byId = new Map(records.map((r) => [String(r.id ?? ''), r]));
  const ecosystem = osvEcosystem(str(pkg.ecosystem));
  const commit = str(pkg.commit);
  // A git source has no package name: the repository (from the record) at the scanned commit.
  const repo = records.flatMap((r) => objects(r.affected)).flatMap((a) => objects(a.ranges)).map((r) => str(r.repo)).find(Boolean);
  const rawName = str(pkg.name) ?? repo ?? (commit ? 'git' : fail(file, [...path, 'package', 'name'], 'missing'));
  const component = componentName(ecosystem, rawName);
  const version = str(pkg.version) ?? commit ?? '';
  const facts = packageFacts({ ecosystem, manifest });

  const groups = objects(value.groups);
  const sets: { ids: string[]; aliases: string[]; maxSeverity?: number }[] = groups.length
    ? groups.map((g) => ({ ids: strings(g.ids), aliases: strings(g.aliases), maxSeverity: num(g.max_severity) }))
    // An id that is not a string (the fuzzer wrote []) is none: String([]) was an empty issue id.
    : records.map((r) => ({ ids: strings([r.id]), aliases: strings(r.aliases) }));
  for (const [i, set] of sets.entries()) {
    const members = set.ids.map((id) => byId.get(id)).filter((r): r is Json => r !== undefined);
    const first = set.ids[0] ?? fail(file, [...path, groups.length ? 'groups' : 'vulnerabilities', i], 'no id');
    const aliases = unique([...set.aliases, ...members.flatMap((m) => strings(m.aliases))]);
    let severity: Severity = 'unknown';
    let cvssScore: number | undefined;
    let cvssVector: string | undefined;
    for (const member of members) {
      const scored = scoreOf(member);
      severity = maxSeverity(severity, scored.severity);
      if (scored.cvssScore !== undefined && (cvssScore === undefined || scored.cvssScore > cvssScore)) {
        cvssScore = scored.cvssScore;
        cvssVector = scored.cvssVector;
      }
    }
    if (set.maxSeverity !== undefined && set.maxSeverity >= 0 && set.maxSeverity <= 10) {
      severity = maxSeverity(severity, severityFromScore(set.maxSeverity));
      cvssScore ??= set.maxSeverity;
    }
    // Malicious-package records (MAL-*) carry no score, yet mean the host is compromised.
    if (severity === 'unknown' && [first, ...aliases].some((id) => id.startsWith('MAL-'))) severity = 'critical';
    const lead = members[0];
    const references = unique(members.flatMap((m) => objects(m.references).map((r) => str(r.url)).filter((u): u is string => !!u)));
    const fixedVersion = fixedVersionOf(members, rawName, str(pkg.version) ?? '');
    const issueId = preferCve(first, aliases);
    yield defined<NormalizedFinding>({
      asset,
      kind: 'vulnerability',
      issueId,
      // The group's other ids (GHSA-x beside PYSEC-y) and every alias its records name.
      aliases: aliasesOf(issueId, [...set.ids, ...aliases]),
      component,
      version,
      location: '',
      fixedVersion,
      // Worked out from the OSV records' affected ranges, not stated by the scanner.
      fixSource: fixedVersion ? 'advisory' : undefined,
      severity,
      cvssScore,
      cvssVector,
      title: str(lead?.summary),
      description: str(lead?.details),
      references: references.length ? references : undefined,
      cwes: cwesOf(members),
      ...facts,
    });
  }
}

export const osvScanner: Connector = {
  format: FORMAT,
  description: 'OSV-Scanner JSON (results per lockfile, SBOM or repository)',
  detect(head) {
    if (!opensObject(head) || !/"results"\s*:\s*\[/.test(head) || /"runs"\s*:/.test(head)) return false;
    return /"source"\s*:\s*\{\s*"path"\s*:/.test(head) || /"experimental_config"\s*:/.test(head)
      || (/"packages"\s*:\s*\[/.test(head) && /"ecosystem"\s*:/.test(head));
  },
  async *parse(file, options) {
    const name = basename(file);
    let sawResults = false;
    const sources = new Map<number, Source>();
    const assets = new Map<string, AssetRef>();
    const select = ['results.*.source', 'results.*.packages.*'];
    const events = objectEvents(file, { name, format: FORMAT, select }, () => fail(name, [], 'expected a JSON object'));
    for await (const event of events) {
      const { path } = event;
      if (path[0] !== 'results') continue;
      if (path.length === 1) {
        sawResults = true;
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        continue;
      }
      const index = path[1];
      if (typeof index !== 'number') fail(name, ['results'], 'expected an array');
      if (path[2] === 'source' && event.kind === 'value') {
        const source = isObject(event.value) ? event.value : {};
        sources.set(index, { path: str(source.path), type: str(source.type) });
        continue;
      }
      if (path[2] !== 'packages' || path.length !== 4 || event.kind !== 'value') continue;
      const source = sources.get(index);
      const key = options.target ?? `${source?.type ?? ''}\u0000${source?.path ?? ''}`;
      let asset = assets.get(key);
      if (!asset) assets.set(key, (asset = assetOf(name, source, options)));
      yield* packageFindings(name, event.value, path, asset, manifestOf(source, options));
    }
    if (!sawResults) fail(name, ['results'], 'missing: not an OSV-Scanner report');
  },
};
