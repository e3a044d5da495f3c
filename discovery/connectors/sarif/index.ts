import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import { streamJson, type JsonPath } from '../../streams/json.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { defined, isObject, num, objects, str, strings, unique, type Json } from '../common/json.js';
import { aliasesOf, cweId, isManifestPath, severityFromScore } from '../common/identity.js';
import { fixOf } from '../common/package-facts.js';
import { fixedVersionFromText } from '../shared/fix-text.js';

// SARIF 2.1.0 from any tool (CodeQL, Semgrep, Trivy, Grype, Dependency-Check...). SARIF knows
// rules and file locations, not packages: issueId = ruleId, component = the artifact's URI,
// version = '', location = URI:startLine. Two passes: the first reads each run's tool, rules
// (reduced to what a finding needs), artifacts and naming hints, wherever in the run they are
// written (Trivy writes `properties.imageName` after its results); the second streams results.

const FORMAT = 'sarif';

const fail: ReportFail = reportFail(FORMAT);

const LEVELS: Record<string, Severity> = { error: 'high', warning: 'medium', note: 'low', none: 'info' };

/** Results that state "no problem here" (SARIF 3.27.9 kind). */
const NOT_A_PROBLEM = new Set(['pass', 'notApplicable', 'informational']);

interface Rule {
  id?: string;
  level?: string;
  securitySeverity?: number;
  tags: string[];
  title?: string;
  /** The rule's `name`: Trivy names the kind of package (`OsPackageVulnerability`). */
  name?: string;
  helpUri?: string;
}

/** Trivy's rule names say whether the package is the OS's or an application's. */
const PACKAGE_CLASSES: Record<string, 'os' | 'app'> = { OsPackageVulnerability: 'os', LanguageSpecificPackageVulnerability: 'app' };

interface Run {
  tool?: string;
  driverRules: Rule[];
  rulesById: Map<string, Rule>;
  artifacts: string[];
  repository?: string;
  imageName?: string;
  sawResults: boolean;
  asset?: AssetRef;
  /** Rule ids and names, longest first, for results that name their rule only in the message. */
  rulesByLabel?: { label: string; rule: Rule }[];
  /** The aliases a rule's id and name give, worked out once per rule, not per result. */
  ruleAliases: Map<string, string[] | null>;
}

const newRun = (): Run => ({ driverRules: [], rulesById: new Map(), artifacts: [], sawResults: false, ruleAliases: new Map() });

const HEADER_SELECT = [
  'version',
  'runs.*.tool.driver.name',
  ...['driver', 'extensions.*'].flatMap((c) =>
    ['id', 'defaultConfiguration.level', 'properties.security-severity', 'properties.tags', 'shortDescription.text', 'name', 'helpUri']
      .map((f) => `runs.*.tool.${c}.rules.*.${f}`)),
  'runs.*.artifacts.*.location.uri',
  'runs.*.versionControlProvenance.0.repositoryUri',
  'runs.*.properties.imageName',
];

async function readHeaders(file: string, name: string): Promise<{ version: unknown; runs: Map<number, Run>; runsNull: boolean; sawRuns: boolean }> {
  const runs = new Map<number, Run>();
  let version: unknown;
  let runsNull = false;
  let sawRuns = false;
  const runOf = (i: number) => {
    let run = runs.get(i);
    if (!run) runs.set(i, (run = newRun()));
    return run;
  };
  const events = objectEvents(file, { name, format: FORMAT, select: HEADER_SELECT }, () => fail(name, [], 'expected a JSON object'));
  for await (const event of events) {
    const { path } = event;
    if (path[0] === 'version' && event.kind === 'value') version = event.value;
    if (path[0] !== 'runs') continue;
    if (path.length === 1) {
      sawRuns = true;
      if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
      runsNull = event.kind === 'value';
      continue;
    }
    if (typeof path[1] !== 'number') fail(name, ['runs'], 'expected an array');
    const run = runOf(path[1]);
    if (event.kind !== 'value') continue;
    const value = event.value;
    const [, , section] = path;
    if (section === 'tool') {
      if (path[3] === 'driver' && path[4] === 'name') {
        run.tool = str(value);
        continue;
      }
      // runs.i.tool.driver.rules.j.<field...> | runs.i.tool.extensions.k.rules.j.<field...>
      const inDriver = path[3] === 'driver';
      const index = path[inDriver ? 5 : 6];
      const field = path.slice(inDriver ? 6 : 7).join('.');
      if (typeof index !== 'number') continue;
      const list = inDriver ? run.driverRules : undefined;
      const key = `${inDriver ? 'd' : `x${String(path[4])}`}/${index}`;
      let rule = list ? list[index] : run.rulesById.get(key);
      if (!rule) {
        rule = { tags: [] };
        if (list) list[index] = rule;
        else run.rulesById.set(key, rule);
      }
      if (field === 'id') rule.id = str(value);
      else if (field === 'defaultConfiguration.level') rule.level = str(value);
      else if (field === 'properties.security-severity') rule.securitySeverity = num(value);
      else if (field === 'properties.tags') rule.tags = strings(value);
      else if (field === 'shortDescription.text') rule.title = str(value);
      else if (field === 'name') {
        rule.name = str(value);
        rule.title ??= rule.name;
      }
      else if (field === 'helpUri') rule.helpUri = str(value);
    } else if (section === 'artifacts' && typeof path[3] === 'number') {
      run.artifacts[path[3]] = str(value) ?? '';
    } else if (section === 'versionControlProvenance') {
      run.repository = str(value);
    } else if (section === 'properties') {
      run.imageName = str(value);
    }
  }
  // Index rules by id once every run is read (extension rules were keyed by position until now).
  for (const run of runs.values()) {
    const extension = [...run.rulesById.values()];
    run.rulesById = new Map();
    for (const rule of [...run.driverRules, ...extension]) if (rule?.id && !run.rulesById.has(rule.id)) run.rulesById.set(rule.id, rule);
  }
  return { version, runs, runsNull, sawRuns };
}

/**
 * A container scan (Trivy's `imageName`) is an image asset; anything else is the repository the
 * run names, else the tool's own name, so that at least one tool's runs share an asset.
 */
function assetOf(run: Run, options: ParseOptions): AssetRef {
  if (run.imageName) {
    const name = options.target ?? run.imageName;
    return { assetKey: `image:${name}`, kind: 'container_image', name };
  }
  const name = options.target ?? run.repository ?? run.tool ?? 'unknown';
  return { assetKey: `repo:${name}`, kind: 'repository', name };
}

/**
 * `security-severity` (GitHub's convention, a CVSS-scale number written as a string such as "9.8"),
 * the result's own before its rule's: SARIF has no other score, so it is the finding's CVSS score.
 */
function securitySeverityOf(result: Json, rule: Rule | undefined): number | undefined {
  const props = isObject(result.properties) ? result.properties : {};
  const score = num(props['security-severity']) ?? rule?.securitySeverity;
  return score !== undefined && score >= 0 && score <= 10 ? score : undefined;
}

function severityOf(result: Json, rule: Rule | undefined, score: number | undefined): Severity {
  if (score !== undefined) return severityFromScore(score);
  const level = str(result.level) ?? rule?.level ?? (str(result.kind) && result.kind !== 'fail' ? 'none' : 'warning');
  return LEVELS[level] ?? normalizeSeverity(level) ?? 'unknown';
}

/**
 * The rule of the run's tool whose id or name the message starts with, as a whole word; the
 * longest wins ("Slack Webhook" over "Slack"). Only for results that reference no rule.
 */
function ruleNamedIn(message: string | undefined, run: Run): Rule | undefined {
  const text = message?.trim();
  if (!text) return undefined;
  run.rulesByLabel ??= [...run.rulesById.values()]
    .flatMap((rule) => unique([rule.id, rule.name].filter((l): l is string => !!l?.trim())).map((label) => ({ label: label.trim(), rule })))
    .sort((a, b) => b.label.length - a.label.length);
  return run.rulesByLabel.find(({ label }) => text.startsWith(label) && (text.length === label.length || /[\s.,:;!?()-]/.test(text[label.length]!)))?.rule;
}

// A CVE or GHSA id written inside a rule's id or name (`CVE-2008-0732-geronimo-j2ee...`). Descriptions
// are not read: they cite related vulnerabilities too.
const VULN_ID = /(?<![A-Za-z0-9])(CVE-\d{4}-\d{4,}|GHSA(?:-[a-z0-9]{4}){3})(?![A-Za-z0-9])/gi;

function namedIds(...labels: (string | undefined)[]): string[] {
  return labels.flatMap((label) => (label ? [...label.matchAll(VULN_ID)].map((m) => m[1]!) : []));
}

function ruleAliases(run: Run, ruleId: string, name: string | undefined): string[] | undefined {
  const key = `${ruleId}\u0000${name ?? ''}`;
  let aliases = run.ruleAliases.get(key);
  if (aliases === undefined) run.ruleAliases.set(key, (aliases = aliasesOf(ruleId, namedIds(ruleId, name)) ?? null));
  // A copy: each finding owns its list.
  return aliases ? [...aliases] : undefined;
}

function findingOf(file: string, value: unknown, path: JsonPath, run: Run, options: ParseOptions): NormalizedFinding | undefined {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const result = value;
  if (typeof result.kind === 'string' && NOT_A_PROBLEM.has(result.kind)) return undefined;
  // A baseline comparison lists results that disappeared as "absent": they are not exposures now.
  if (result.baselineState === 'absent') return undefined;
  const ruleRef = isObject(result.rule) ? result.rule : {};
  const ruleIndex = num(result.ruleIndex) ?? num(ruleRef.index);
  const byIndex = ruleIndex !== undefined ? run.driverRules[ruleIndex] : undefined;
  const message = isObject(result.message) ? str(result.message.text) : undefined;
  // Gitleaks 7 names the rule only in its message ("AWS Access Key secret detected") and its driver's rules.
  const byMessage = !str(result.ruleId) && !str(ruleRef.id) && !byIndex?.id ? ruleNamedIn(message, run) : undefined;
  const ruleId = str(result.ruleId) ?? str(ruleRef.id) ?? byIndex?.id ?? byMessage?.id
    ?? fail(file, path, 'no rule identifies this result: no ruleId, rule.id or ruleIndex/rule.index naming a rule, and the message names none of the driver\'s rules');
  const rule = run.rulesById.get(ruleId) ?? byIndex ?? byMessage;

  const physical = objects(result.locations).map((l) => (isObject(l.physicalLocation) ? l.physicalLocation : undefined)).find(Boolean);
  const artifact = isObject(physical?.artifactLocation) ? physical.artifactLocation : {};
  const artifactIndex = num(artifact.index);
  const uri = str(artifact.uri) ?? (artifactIndex !== undefined ? run.artifacts[artifactIndex] : undefined) ?? '';
  const region = isObject(physical?.region) ? physical.region : {};
  const line = num(region.startLine);

  const tags = [...(rule?.tags ?? []), ...strings(isObject(result.properties) ? result.properties.tags : undefined)].map((t) => t.toLowerCase());
  const kind: NormalizedFinding['kind'] =
    tags.includes('secret') ? 'secret' : tags.includes('misconfiguration') ? 'misconfiguration' : 'vulnerability';
  // `state` is the pre-release spelling of `status` (the spec's own appendix K still uses it).
  const suppressed = objects(result.suppressions).some((s) => {
    const status = s.status ?? s.state;
    return status === undefined || status === 'accepted';
  });
  const firstLine = message?.split('\n')[0]?.trim();
  const packageClass = rule?.name ? PACKAGE_CLASSES[rule.name] : undefined;
  const score = securitySeverityOf(result, rule);
  const cwes = unique(tags.map((t) => /(?:^|\/)cwe-(\d+)$/.exec(t)?.[1]).map(cweId).filter((c): c is string => c !== undefined));

  return defined<NormalizedFinding>({
    asset: (run.asset ??= assetOf(run, options)),
    kind,
    issueId: ruleId,
    aliases: kind === 'vulnerability' ? ruleAliases(run, ruleId, rule?.name) : undefined,
    component: uri,
    version: '',
    location: uri && line !== undefined ? `${uri}:${line}` : uri,
    severity: severityOf(result, rule, score),
    cvssScore: score,
    title: rule?.title ?? (firstLine && firstLine.length > 200 ? `${firstLine.slice(0, 197)}...` : firstLine),
    vendorStatus: suppressed ? 'suppressed' : undefined,
    description: message,
    references: rule?.helpUri ? [rule.helpUri] : undefined,
    cwes: cwes.length ? cwes : undefined,
    // SARIF has no package fields; Trivy writes the fixed version into the message text.
    ...(kind === 'vulnerability' ? fixOf(undefined, () => fixedVersionFromText(message)) : {}),
    packageClass,
    // A Trivy fs/repo scan points its results at the lockfile the package was read from.
    manifest: packageClass === 'app' && isManifestPath(uri) ? uri : undefined,
  });
}

export const sarif: Connector = {
  format: FORMAT,
  description: 'SARIF 2.1.0 log from any tool: one finding per result (rule at file and line)',
  detect(head) {
    if (!opensObject(head)) return false;
    if (/"\$schema"\s*:\s*"[^"]*sarif[^"]*"/i.test(head)) return true;
    return /"version"\s*:\s*"2\.1\.0"/.test(head) && /"runs"\s*:/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    const headers = await readHeaders(file, name);
    if (headers.version === undefined) fail(name, ['version'], 'missing: not a SARIF log');
    if (headers.version !== '2.1.0') fail(name, ['version'], `unsupported SARIF version ${JSON.stringify(headers.version)} (2.1.0 is supported)`);
    // An empty log would import as a clean scan and close every open finding: refuse it instead.
    if (!headers.sawRuns) fail(name, ['runs'], 'missing');
    if (headers.runsNull) fail(name, ['runs'], 'null: the tool did not run; refusing to import as an empty scan');
    if (headers.runs.size === 0) fail(name, ['runs'], 'no runs: the log records no analysis; refusing to import as an empty scan');

    for await (const event of streamJson(file, { name, format: FORMAT, select: ['runs.*.results.*'] })) {
      const { path } = event;
      if (path[0] !== 'runs' || typeof path[1] !== 'number' || path[2] !== 'results') continue;
      const run = headers.runs.get(path[1]) ?? newRun();
      if (path.length === 3) {
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        if (event.kind === 'open') run.sawResults = true;
        continue;
      }
      if (event.kind !== 'value') continue;
      const finding = findingOf(name, event.value, path, run, options);
      if (finding) yield finding;
    }
    // SARIF: results absent or null means the analysis did not complete; [] means it found nothing.
    for (const [index, run] of headers.runs) {
      if (!run.sawResults) fail(name, ['runs', index, 'results'], `missing or null: run of ${run.tool ?? 'an unnamed tool'} did not complete`);
    }
  },
};
