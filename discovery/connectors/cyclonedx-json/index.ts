import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { streamJson, formatPath, type JsonPath } from '../../streams/json.js';
import { checkVersion, Skipped } from '../common/warnings.js';
import { arr, isObject, num, objects, str, type Json } from '../common/json.js';
import { componentFromPurl, nameFromParts } from '../common/identity.js';
import { isArrayOrNull, opensObject, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import {
  localRef, subjectAsset, vulnerabilityFinding, vulnerabilityOf, type ComponentInfo, type Subject,
} from '../shared/cyclonedx.js';

// CycloneDX JSON BOMs and VEX documents (1.4+ `vulnerabilities`): one finding per vulnerability and
// affected component, with the same identity rules as the CycloneDX XML connector so that one BOM
// gives the same findings in either encoding. A BOM without vulnerabilities yields nothing (the
// component inventory is not stored yet). Passes: (1) header, subject and the refs vulnerabilities
// point at; (2) resolve those refs among the components (nested ones included) and emit the
// vulnerabilities; (3) only when the document lists vulnerabilities before components, emit them then.

const FORMAT = 'cyclonedx-json';

const fail: ReportFail = reportFail(FORMAT);

function infoOf(component: Json): Subject {
  const { name, ecosystem } = nameFromParts({ name: str(component.name) ?? '', group: str(component.group), purl: str(component.purl) });
  return { name, version: str(component.version) ?? '', type: str(component.type) ?? '', ecosystem };
}

function* findingsOf(
  file: string,
  value: unknown,
  path: JsonPath,
  asset: () => AssetRef,
  components: ReadonlyMap<string, ComponentInfo>,
  skipped: Skipped,
): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const vuln = value;
  const v = vulnerabilityOf({
    id: str(vuln.id) ?? fail(file, [...path, 'id'], 'missing'),
    ratings: objects(vuln.ratings).map((r) => ({ method: str(r.method) ?? '', severity: normalizeSeverity(r.severity), score: num(r.score), vector: str(r.vector) })),
    state: isObject(vuln.analysis) ? str(vuln.analysis.state) : undefined,
    description: str(vuln.description) ?? str(vuln.detail),
    urls: [
      isObject(vuln.source) ? str(vuln.source.url) : undefined,
      ...objects(vuln.references).map((r) => (isObject(r.source) ? str(r.source.url) : undefined)),
      ...objects(vuln.advisories).map((a) => str(a.url)),
    ],
    cwes: arr(vuln.cwes),
    recommendation: str(vuln.recommendation),
    referenceIds: objects(vuln.references).map((r) => str(r.id)),
  });
  const seen = new Set<string>();
  const affects = objects(vuln.affects);
  if (affects.length === 0) skipped.record('a vulnerability without affects names no component', formatPath([...path, 'affects']));
  for (const [i, target] of affects.entries()) {
    const ref = localRef(str(target.ref) ?? '');
    if (!ref) skipped.record('an affects entry without ref names no component', formatPath([...path, 'affects', i, 'ref']));
    if (!ref || seen.has(ref)) continue;
    seen.add(ref);
    const resolved = components.get(ref) ?? componentFromPurl(ref);
    const entries = objects(target.versions);
    if (resolved?.version || entries.length === 0) {
      // An exact affected version in the VEX stands in when the component is not in this document.
      const listed = entries.map((e) => str(e.version)).find((e) => e !== undefined);
      yield vulnerabilityFinding(v, asset(), resolved ?? { name: ref, version: listed ?? '' }, v.vendorStatus);
      continue;
    }
    // A VEX about a product by version: one statement per version or range, so "affected in 2.4"
    // and "not affected in 2.5" of one CVE stay two findings instead of overwriting each other.
    const name = resolved?.name ?? ref;
    for (const entry of entries) {
      const version = str(entry.version) ?? str(entry.range) ?? '';
      const status = entry.status === 'unaffected' ? 'not_affected' : v.vendorStatus ?? (entry.status === 'unknown' ? 'unknown' : 'affected');
      yield vulnerabilityFinding(v, asset(), { name, version, ecosystem: resolved?.ecosystem }, status);
    }
  }
}

/** The CycloneDX versions this reader was written for (vulnerabilities exist from 1.4). */
const SPEC_VERSIONS = ['1.2', '1.3', '1.4', '1.5', '1.6'];

export const cyclonedxJson: Connector = {
  format: FORMAT,
  description: 'CycloneDX JSON BOM / VEX (1.4+ vulnerabilities with analysis): one finding per vulnerability and affected component',
  detect(head) {
    return opensObject(head) && /"bomFormat"\s*:\s*"CycloneDX"/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    const stream = (select: string[]) => streamJson(file, { name, format: FORMAT, select });

    // Pass 1: what the document is, its subject, which refs vulnerabilities point at, and section order.
    let bomFormat: unknown;
    let specVersion: unknown;
    let root: Subject | undefined;
    let rootRef: string | undefined;
    const refs = new Set<string>();
    let anyVulnerability = false;
    let vulnerabilitiesOpened = false;
    let componentsAfterVulnerabilities = false;
    const header = ['bomFormat', 'specVersion', 'metadata.component', 'vulnerabilities.*.affects.*.ref', 'components.*.bom-ref'];
    const events = objectEvents(file, { name, format: FORMAT, select: header }, () => fail(name, [], 'expected a JSON object'));
    for await (const event of events) {
      const { path } = event;
      if (path[0] === 'bomFormat' && event.kind === 'value') bomFormat = event.value;
      else if (path[0] === 'specVersion' && event.kind === 'value') specVersion = event.value;
      else if (path[0] === 'metadata' && path[1] === 'component' && event.kind === 'value' && isObject(event.value)) {
        root = infoOf(event.value);
        rootRef = str(event.value['bom-ref']);
      } else if (path[0] === 'vulnerabilities') {
        if (path.length === 1) {
          vulnerabilitiesOpened = true;
          if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        } else if (path.length === 2) anyVulnerability = true;
        else if (event.kind === 'value' && path[path.length - 1] === 'ref' && typeof event.value === 'string') refs.add(localRef(event.value));
      } else if (path[0] === 'components' && path.length === 1 && vulnerabilitiesOpened) {
        componentsAfterVulnerabilities = true;
      }
    }
    if (bomFormat === undefined) fail(name, ['bomFormat'], 'missing: not a CycloneDX JSON document');
    if (bomFormat !== 'CycloneDX') fail(name, ['bomFormat'], `expected "CycloneDX", got ${JSON.stringify(bomFormat)}`);
    checkVersion(options.warn, name, FORMAT, 'specVersion', specVersion, SPEC_VERSIONS);
    if (!anyVulnerability) return;
    const skipped = new Skipped(name, FORMAT, options.warn);

    // Pass 2: resolve the referenced components, and emit vulnerabilities when components came first.
    const components = new Map<string, ComponentInfo>();
    if (root && rootRef && refs.has(rootRef)) components.set(rootRef, root);
    let resolvedAsset: AssetRef | undefined;
    const asset = () => (resolvedAsset ??= subjectAsset(root, options, (reason) => fail(name, ['metadata', 'component'], reason)));
    const register = (top: Json) => {
      const stack: Json[] = [top];
      while (stack.length > 0) {
        const component = stack.pop()!;
        const info = infoOf(component);
        const ref = str(component['bom-ref']);
        const purl = str(component.purl);
        if (ref && refs.has(ref) && !components.has(ref)) components.set(ref, info);
        if (purl && refs.has(purl) && !components.has(purl)) components.set(purl, info);
        stack.push(...objects(component.components));
      }
    };
    const emitInline = !componentsAfterVulnerabilities;
    for await (const event of stream(emitInline ? ['components.*', 'vulnerabilities.*'] : ['components.*'])) {
      if (event.kind !== 'value' || event.path.length !== 2) continue;
      if (event.path[0] === 'components' && isObject(event.value)) register(event.value);
      else if (event.path[0] === 'vulnerabilities') yield* findingsOf(name, event.value, event.path, asset, components, skipped);
    }
    if (emitInline) return skipped.flush();

    // Pass 3: the document put vulnerabilities first; now every component is known.
    for await (const event of stream(['vulnerabilities.*'])) {
      if (event.kind === 'value' && event.path.length === 2) yield* findingsOf(name, event.value, event.path, asset, components, skipped);
    }
    skipped.flush();
  },
};
