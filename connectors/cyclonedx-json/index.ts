import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../model.js';
import { streamJson, formatPath, type JsonPath } from '../json-stream.js';
import { defined, isObject, num, objects, str, unique, type Json } from '../common/json.js';
import { componentFromPurl, cweId, nameFromParts, severityFromScore } from '../common/identity.js';

// CycloneDX JSON BOMs and VEX documents (1.4+ `vulnerabilities`): one finding per vulnerability and
// affected component, with the same identity rules as the CycloneDX XML connector so that one BOM
// gives the same findings in either encoding. A BOM without vulnerabilities yields nothing (the
// component inventory is not stored yet). Passes: (1) header, subject and the refs vulnerabilities
// point at; (2) resolve those refs among the components (nested ones included) and emit the
// vulnerabilities; (3) only when the document lists vulnerabilities before components, emit them then.

const FORMAT = 'cyclonedx-json';

type VendorStatus = NonNullable<NormalizedFinding['vendorStatus']>;

/** CycloneDX impact-analysis states onto the model's vendor status. */
const ANALYSIS_STATES: Record<string, VendorStatus> = {
  not_affected: 'not_affected',
  resolved: 'fixed',
  resolved_with_pedigree: 'fixed',
  false_positive: 'false_positive',
  exploitable: 'affected',
  in_triage: 'under_investigation',
};

interface ComponentInfo {
  name: string;
  version: string;
}

function fail(file: string, path: JsonPath, reason: string): never {
  throw new ReportError(file, FORMAT, formatPath(path) || undefined, reason);
}

/** A BOM-Link (`urn:cdx:serial/version#ref`) points into another BOM; the part after `#` is the ref. */
function localRef(ref: string): string {
  const trimmed = ref.trim();
  if (!trimmed.startsWith('urn:cdx:')) return trimmed;
  const hash = trimmed.indexOf('#');
  if (hash === -1) return trimmed;
  try {
    return decodeURIComponent(trimmed.slice(hash + 1));
  } catch {
    return trimmed.slice(hash + 1);
  }
}

function infoOf(component: Json): ComponentInfo & { type: string } {
  const { name } = nameFromParts({ name: str(component.name) ?? '', group: str(component.group), purl: str(component.purl) });
  return { name, version: str(component.version) ?? '', type: str(component.type) ?? '' };
}

const METHOD_RANK = ['CVSSv31', 'CVSSv3', 'CVSSv4', 'CVSSv2'];

/** Severity and CVSS v3 score: CVSS v3.x ratings first, then others; a score alone still ranks. */
function rate(vuln: Json): { severity: Severity; cvssScore?: number } {
  const rank = (m: string) => {
    const i = METHOD_RANK.indexOf(m);
    return i === -1 ? METHOD_RANK.length : i;
  };
  const ratings = objects(vuln.ratings)
    .map((r) => {
      const score = num(r.score);
      return {
        method: str(r.method) ?? '',
        severity: normalizeSeverity(r.severity),
        score: score !== undefined && score >= 0 && score <= 10 ? score : undefined,
      };
    })
    .sort((a, b) => rank(a.method) - rank(b.method));
  const v3 = ratings.find((r) => (r.method === 'CVSSv31' || r.method === 'CVSSv3') && r.score !== undefined);
  const named = ratings.find((r) => r.severity !== undefined && r.severity !== 'unknown');
  const scored = ratings.find((r) => r.score !== undefined);
  const severity = named?.severity ?? (scored?.score !== undefined ? severityFromScore(scored.score) : 'unknown');
  return { severity, ...(v3?.score !== undefined ? { cvssScore: v3.score } : {}) };
}

function assetOf(file: string, root: (ComponentInfo & { type: string }) | undefined, options: ParseOptions): AssetRef {
  const name = options.target ?? (root?.name || undefined);
  if (!name) fail(file, ['metadata', 'component'], 'missing (pass a target to name the asset)');
  const kind: AssetRef['kind'] = root?.type === 'container' ? 'container_image' : 'other';
  return { assetKey: `${kind === 'container_image' ? 'image' : 'asset'}:${name}`, kind, name };
}

function* findingsOf(
  file: string,
  value: unknown,
  path: JsonPath,
  asset: () => AssetRef,
  components: ReadonlyMap<string, ComponentInfo>,
): Generator<NormalizedFinding> {
  if (!isObject(value)) fail(file, path, 'expected an object');
  const vuln = value;
  const issueId = str(vuln.id) ?? fail(file, [...path, 'id'], 'missing');
  const { severity, cvssScore } = rate(vuln);
  const analysis = isObject(vuln.analysis) ? vuln.analysis : {};
  const vendorStatus = ANALYSIS_STATES[str(analysis.state) ?? ''];
  const description = str(vuln.description) ?? str(vuln.detail);
  const firstLine = description?.split('\n')[0]?.trim() ?? '';
  const title = firstLine.length > 200 ? `${firstLine.slice(0, 197)}...` : firstLine;
  const source = isObject(vuln.source) ? str(vuln.source.url) : undefined;
  const references = unique([
    ...(source ? [source] : []),
    ...objects(vuln.references).map((r) => (isObject(r.source) ? str(r.source.url) : undefined)),
    ...objects(vuln.advisories).map((a) => str(a.url)),
  ].filter((u): u is string => u !== undefined));
  const cwes = unique((Array.isArray(vuln.cwes) ? vuln.cwes : []).map(cweId)).filter((c): c is string => c !== undefined);
  const finding = (component: ComponentInfo, status: VendorStatus | undefined): NormalizedFinding =>
    defined<NormalizedFinding>({
      asset: asset(),
      kind: 'vulnerability',
      issueId,
      component: component.name,
      version: component.version,
      location: '',
      severity,
      cvssScore,
      title: title || undefined,
      vendorStatus: status,
      description,
      references: references.length ? references : undefined,
      cwes: cwes.length ? cwes : undefined,
    });
  const seen = new Set<string>();
  for (const target of objects(vuln.affects)) {
    const ref = localRef(str(target.ref) ?? '');
    if (!ref || seen.has(ref)) continue;
    seen.add(ref);
    const resolved = components.get(ref) ?? componentFromPurl(ref);
    const entries = objects(target.versions);
    if (resolved?.version || entries.length === 0) {
      // An exact affected version in the VEX stands in when the component is not in this document.
      const listed = entries.map((v) => str(v.version)).find((v) => v !== undefined);
      yield finding(resolved ?? { name: ref, version: listed ?? '' }, vendorStatus);
      continue;
    }
    // A VEX about a product by version: one statement per version or range, so "affected in 2.4"
    // and "not affected in 2.5" of one CVE stay two findings instead of overwriting each other.
    const name = resolved?.name ?? ref;
    for (const entry of entries) {
      const version = str(entry.version) ?? str(entry.range) ?? '';
      const status = entry.status === 'unaffected' ? 'not_affected' : vendorStatus ?? (entry.status === 'unknown' ? 'unknown' : 'affected');
      yield finding({ name, version }, status);
    }
  }
}

export const cyclonedxJson: Connector = {
  format: FORMAT,
  description: 'CycloneDX JSON BOM / VEX (1.4+ vulnerabilities with analysis): one finding per vulnerability and affected component',
  detect(head) {
    const start = head.replace(/^\uFEFF/, '').trimStart();
    return start.startsWith('{') && /"bomFormat"\s*:\s*"CycloneDX"/.test(head);
  },
  async *parse(file, options) {
    const name = basename(file);
    const stream = (select: string[]) => streamJson(file, { name, format: FORMAT, select });

    // Pass 1: what the document is, its subject, which refs vulnerabilities point at, and section order.
    let bomFormat: unknown;
    let root: (ComponentInfo & { type: string }) | undefined;
    let rootRef: string | undefined;
    const refs = new Set<string>();
    let anyVulnerability = false;
    let vulnerabilitiesOpened = false;
    let componentsAfterVulnerabilities = false;
    for await (const event of stream(['bomFormat', 'metadata.component', 'vulnerabilities.*.affects.*.ref', 'components.*.bom-ref'])) {
      const { path } = event;
      if (path.length === 0) {
        if (event.kind === 'value' || event.type !== 'object') fail(name, [], 'expected a JSON object');
        continue;
      }
      if (path[0] === 'bomFormat' && event.kind === 'value') bomFormat = event.value;
      else if (path[0] === 'metadata' && path[1] === 'component' && event.kind === 'value' && isObject(event.value)) {
        root = infoOf(event.value);
        rootRef = str(event.value['bom-ref']);
      } else if (path[0] === 'vulnerabilities') {
        if (path.length === 1) {
          vulnerabilitiesOpened = true;
          if (event.kind === 'value' ? event.value !== null : event.type !== 'array') fail(name, path, 'expected an array');
        } else if (path.length === 2) anyVulnerability = true;
        else if (event.kind === 'value' && path[path.length - 1] === 'ref' && typeof event.value === 'string') refs.add(localRef(event.value));
      } else if (path[0] === 'components' && path.length === 1 && vulnerabilitiesOpened) {
        componentsAfterVulnerabilities = true;
      }
    }
    if (bomFormat === undefined) fail(name, ['bomFormat'], 'missing: not a CycloneDX JSON document');
    if (bomFormat !== 'CycloneDX') fail(name, ['bomFormat'], `expected "CycloneDX", got ${JSON.stringify(bomFormat)}`);
    if (!anyVulnerability) return;

    // Pass 2: resolve the referenced components, and emit vulnerabilities when components came first.
    const components = new Map<string, ComponentInfo>();
    if (root && rootRef && refs.has(rootRef)) components.set(rootRef, root);
    let resolvedAsset: AssetRef | undefined;
    const asset = () => (resolvedAsset ??= assetOf(name, root, options));
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
      else if (event.path[0] === 'vulnerabilities') yield* findingsOf(name, event.value, event.path, asset, components);
    }
    if (emitInline) return;

    // Pass 3: the document put vulnerabilities first; now every component is known.
    for await (const event of stream(['vulnerabilities.*'])) {
      if (event.kind === 'value' && event.path.length === 2) yield* findingsOf(name, event.value, event.path, asset, components);
    }
  },
};
