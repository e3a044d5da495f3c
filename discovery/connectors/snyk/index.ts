import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { streamJson, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, jsonStart, opensObject, reportFail, type ReportFail } from '../shared/json-report.js';
import { readHead } from '../common/head.js';
import { arr, defined, isObject, num, objects, str, strings, unique, type Json } from '../common/json.js';
import { packageFacts, fixOf } from '../common/package-facts.js';
import { cvss3BaseVector, cvss3Vector } from '../common/cvss.js';
import { OS_ECOSYSTEMS, aliasesOf, componentName, cweId, preferCve, relPath, severityFromScore, type Ecosystem } from '../common/identity.js';

// Snyk CLI `snyk test --json` (and `snyk container test --json`): one project object, or an array
// of them (`--all-projects`). Snyk writes one `vulnerabilities[]` entry per dependency path (`from`),
// so one advisory on one package version can appear many times; this connector yields it once per
// project (asset) × issue × package × version. A container project's `applications[]` (the
// language projects Snyk found inside the image) are read too, on the image's asset. The project
// header (projectName, path, displayTargetFile, packageManager) follows `vulnerabilities`, so it is
// read in a first light pass. An error object (`{"ok": false, "error": ...}`) is refused.

const FORMAT = 'snyk-json';

const fail: ReportFail = reportFail(FORMAT);

const MANAGERS: Record<string, Ecosystem> = {
  npm: 'npm', yarn: 'npm', pnpm: 'npm',
  maven: 'maven', gradle: 'maven', sbt: 'maven',
  pip: 'pypi', pipenv: 'pypi', poetry: 'pypi',
  nuget: 'nuget', paket: 'nuget',
  rubygems: 'gem', composer: 'composer', cargo: 'cargo', hex: 'hex', cocoapods: 'cocoapods', swift: 'swift',
  golang: 'golang', gomodules: 'golang', govendor: 'golang', golangdep: 'golang',
  deb: 'deb', debian: 'deb', ubuntu: 'deb',
  apk: 'apk', alpine: 'apk',
  rpm: 'rpm', rhel: 'rpm', centos: 'rpm', amzn: 'rpm', oracle: 'rpm', sles: 'rpm', rocky: 'rpm', almalinux: 'rpm',
};

/** `debian:11` → deb, `pip` → pypi; unknown managers give no ecosystem. */
export const snykEcosystem = (manager: string | undefined): Ecosystem | undefined =>
  manager ? MANAGERS[manager.toLowerCase().split(':')[0] ?? ''] : undefined;

interface Project {
  projectName?: string;
  displayTargetFile?: string;
  targetFile?: string;
  path?: string;
  packageManager?: string;
  container: boolean;
  applications: Map<number, { displayTargetFile?: string; targetFile?: string; packageManager?: string }>;
}

const HEADER = ['projectName', 'displayTargetFile', 'targetFile', 'path', 'packageManager', 'docker', 'ok', 'error', 'vulnerabilities.*.id',
  'applications.*.displayTargetFile', 'applications.*.targetFile', 'applications.*.packageManager'];

/** Pass 1: every project's header fields, keyed by its index (-1 for a single object). */
async function readHeaders(file: string, name: string, array: boolean): Promise<Map<number, Project>> {
  const projects = new Map<number, Project>();
  const select = array ? HEADER.map((p) => `*.${p}`) : HEADER;
  const seen = new Set<number>();
  for await (const event of streamJson(file, { name, format: FORMAT, select })) {
    const path = event.path;
    if (path.length === 0) {
      if (event.kind === 'value' || event.type !== (array ? 'array' : 'object')) fail(name, [], array ? 'expected an array of projects' : 'expected a JSON object');
      continue;
    }
    const index = array ? path[0] : -1;
    if (typeof index !== 'number') fail(name, [], 'expected an array of projects');
    const rel = array ? path.slice(1) : path;
    if (rel.length === 0) {
      if (event.kind === 'value' || event.type !== 'object') fail(name, path, 'expected a project object');
      continue;
    }
    let project = projects.get(index);
    if (!project) projects.set(index, (project = { container: false, applications: new Map() }));
    const key = rel[0];
    if (key === 'vulnerabilities') {
      seen.add(index);
      if (rel.length === 1 && !isArrayOrNull(event)) fail(name, path, 'expected an array');
      continue;
    }
    if (event.kind !== 'value') continue;
    const value = event.value;
    if (key === 'error' && rel.length === 1) {
      const message = isObject(value) ? str(value.message) ?? JSON.stringify(value) : String(value);
      fail(name, path, `Snyk reported an error, not a scan: ${message}`);
    }
    if (key === 'docker' && rel.length === 1) project.container = true;
    else if (key === 'applications' && rel.length === 3) {
      const i = rel[1] as number;
      const app = project.applications.get(i) ?? {};
      (app as Record<string, string | undefined>)[String(rel[2])] = str(value);
      project.applications.set(i, app);
    } else if (rel.length === 1 && key !== 'ok') (project as unknown as Record<string, unknown>)[String(key)] = str(value);
  }
  for (const [index, project] of projects) {
    if (!seen.has(index)) fail(name, array ? [index, 'vulnerabilities'] : ['vulnerabilities'], 'missing: not a Snyk test report');
  }
  if (!array && !projects.has(-1)) fail(name, ['vulnerabilities'], 'missing: not a Snyk test report');
  return projects;
}

/** `docker-image|nginx@1.25` → `nginx:1.25`. */
const imageName = (raw: string): string => {
  const bare = raw.replace(/^docker-(image|archive)\|/, '');
  return bare.replace(/@(?!sha256:)([^@/]+)$/, ':$1');
};

/** The folder a project's manifest sits in, joined onto the scanned path with its own separator. */
function projectDir(root: string, manifest: string | undefined): string {
  if (!manifest) return root;
  const sep = root.includes('\\') && !root.includes('/') ? '\\' : '/';
  const parts = manifest.split(/[\\/]/);
  parts.pop();
  const dir = parts.filter((p) => p && p !== '.').join(sep);
  // `--all-projects` sometimes writes the project's own folder as `path` already.
  if (!dir || root.replace(/[\\/]+$/, '').split(/[\\/]/).slice(-dir.split(sep).length).join(sep) === dir) return root;
  return root.endsWith(sep) ? root + dir : `${root}${sep}${dir}`;
}

function assetOf(file: string, project: Project, firstFrom: string | undefined, index: number, options: ParseOptions): AssetRef {
  const at: JsonPath = index >= 0 ? [index, 'projectName'] : ['projectName'];
  if (project.container || /^docker-(image|archive)\|/.test(project.projectName ?? '')) {
    const fromImage = firstFrom && /^docker-(image|archive)\|/.test(firstFrom) ? imageName(firstFrom) : undefined;
    const name = options.target ?? fromImage ?? (project.projectName ? imageName(project.projectName) : fail(file, at, 'missing (pass a target to name the asset)'));
    return { assetKey: `image:${name}`, kind: 'container_image', name };
  }
  const name = options.target ?? (project.path ? projectDir(project.path, project.displayTargetFile ?? project.targetFile) : project.projectName)
    ?? fail(file, at, 'missing (pass a target to name the asset)');
  return { assetKey: `fs:${name}`, kind: 'filesystem', name };
}

/** The upgrade that fixes the vulnerable package itself: the last `upgradePath` step, `name@version`. */
function upgradeVersion(v: Json, pkg: string): string | undefined {
  const last = arr(v.upgradePath).at(-1);
  if (typeof last !== 'string') return undefined;
  const at = last.lastIndexOf('@');
  return at > 0 && last.slice(0, at) === pkg ? last.slice(at + 1) || undefined : undefined;
}

function finding(file: string, v: unknown, path: JsonPath, asset: AssetRef, manager: string | undefined, manifest: string | undefined): NormalizedFinding {
  if (!isObject(v)) fail(file, path, 'expected an object');
  const id = str(v.id) ?? fail(file, [...path, 'id'], 'missing');
  const ecosystem = snykEcosystem(str(v.packageManager) ?? manager);
  const packageName = str(v.packageName) ?? str(v.moduleName) ?? fail(file, [...path, 'packageName'], 'missing');
  const fullName = str(v.name) ?? packageName;
  // Distro packages: `name` is `source/binary` (`gcc-10/libgcc-s1`); the binary is the component.
  const os = ecosystem !== undefined && OS_ECOSYSTEMS.has(ecosystem);
  const binary = os && fullName.startsWith(`${packageName}/`) ? fullName.slice(packageName.length + 1) : packageName;
  const version = str(v.version) ?? fail(file, [...path, 'version'], 'missing');
  const identifiers = isObject(v.identifiers) ? v.identifiers : {};
  const cves = strings(identifiers.CVE);
  const issueId = preferCve(id, cves);
  // Snyk's own id and every identifier list but weaknesses (CVE, GHSA, ALTERNATIVE...).
  const aliases = aliasesOf(issueId, [id, ...Object.entries(identifiers).filter(([type]) => type !== 'CWE').flatMap(([, ids]) => strings(ids))]);
  // Outside the CVSS range is no score, as in every other connector (the fuzzer wrote 11).
  const stated = num(v.cvssScore);
  const cvssScore = stated !== undefined && stated >= 0 && stated <= 10 ? stated : undefined;
  const severity = normalizeSeverity(v.severityWithCritical) ?? normalizeSeverity(v.severity) ?? (cvssScore !== undefined ? severityFromScore(cvssScore) : 'unknown');
  const vector = cvss3Vector(v.CVSSv3);
  const fixedIn = strings(v.fixedIn);
  const cwes = unique(strings(identifiers.CWE).map(cweId).filter((c): c is string => c !== undefined));
  const references = unique(objects(v.references).map((r) => str(r.url)).filter((u): u is string => !!u));
  return defined<NormalizedFinding>({
    asset,
    kind: 'vulnerability',
    issueId,
    aliases,
    component: componentName(ecosystem, binary),
    version,
    location: '',
    ...fixOf(fixedIn.length ? fixedIn.join(', ') : upgradeVersion(v, str(v.name) ?? packageName)),
    severity,
    cvssScore,
    // Snyk appends temporal metrics (`/E:P/RL:U/RC:C`); the base vector is what every source compares on.
    cvssVector: vector ? cvss3BaseVector(vector) : undefined,
    title: str(v.title),
    description: str(v.description),
    references: references.length ? references : undefined,
    cwes: cwes.length ? cwes : undefined,
    ...packageFacts({ ecosystem, manifest, sourcePackage: os && binary !== packageName ? packageName : undefined }),
  });
}

export const snyk: Connector = {
  format: FORMAT,
  description: 'Snyk CLI JSON (`snyk test --json`, `snyk container test --json`, one project or --all-projects)',
  detect(head) {
    const start = jsonStart(head);
    if (!opensObject(head) && !start.startsWith('[')) return false;
    if (!/"vulnerabilities"\s*:\s*\[/.test(head) || /"runs"\s*:|"bomFormat"\s*:|"scan"\s*:\s*\{/.test(head)) return false;
    // Every Snyk vulnerability and project names its packageManager; a project also says ok/dependencyCount.
    return /"packageManager"\s*:\s*"/.test(head)
      && (/"id"\s*:\s*"SNYK-/.test(head) || /"dependencyCount"\s*:/.test(head) || /"isUpgradable"\s*:/.test(head));
  },
  async *parse(file, options) {
    const name = basename(file);
    const head = await readHead(file);
    if (jsonStart(head) === '') fail(name, [], 'the report is empty');
    const array = jsonStart(head).startsWith('[');
    const projects = await readHeaders(file, name, array);
    const assets = new Map<number, AssetRef>();
    const seen = new Map<string, Set<string>>();
    const select = array ? ['*.vulnerabilities.*', '*.applications.*.vulnerabilities.*'] : ['vulnerabilities.*', 'applications.*.vulnerabilities.*'];
    for await (const event of streamJson(file, { name, format: FORMAT, select })) {
      if (event.kind !== 'value') continue;
      const path = event.path;
      const index = array ? (path[0] as number) : -1;
      const rel = array ? path.slice(1) : path;
      const project = projects.get(index) ?? fail(name, path, 'no project');
      let asset = assets.get(index);
      if (!asset) {
        const from = isObject(event.value) ? strings(event.value.from)[0] : undefined;
        assets.set(index, (asset = assetOf(name, project, from, index, options)));
      }
      let manager = project.packageManager;
      let manifestPath = project.displayTargetFile ?? project.targetFile;
      if (rel[0] === 'applications') {
        const app = project.applications.get(rel[1] as number) ?? {};
        manager = app.packageManager;
        manifestPath = app.displayTargetFile ?? app.targetFile;
      }
      let manifest: string | undefined;
      if (manifestPath) {
        const relative = relPath(manifestPath.split('\\').join('/'));
        manifest = asset.kind === 'container_image' || options.target !== undefined ? relative : basename(relative);
      }
      const f = finding(name, event.value, path, asset, manager, manifest);
      const key = `${f.issueId}\u0000${f.component}\u0000${f.version}\u0000${f.location}`;
      let keys = seen.get(asset.assetKey);
      if (!keys) seen.set(asset.assetKey, (keys = new Set()));
      if (keys.has(key)) continue;
      keys.add(key);
      yield f;
    }
  },
};
