import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding, type Severity } from '../model.js';
import { at, childText, childrenNamed, xmlEvents, type XmlEvent, type XmlNode } from '../xml-stream.js';
import { componentFromPurl, cweId, nameFromParts, severityFromScore } from '../common/identity.js';

// CycloneDX XML BOMs and VEX documents (1.4+ `<vulnerabilities>`): one finding per vulnerability and
// affected component. A BOM without vulnerabilities yields nothing. Streamed in passes so that only
// the components vulnerabilities point at are held: (1) collect the affected refs, (2) resolve them
// to name@version and emit the vulnerabilities, (3) only when the document lists vulnerabilities
// before components, emit them then.

const FORMAT = 'cyclonedx-xml';
const NS = /xmlns(:\w+)?\s*=\s*["']http:\/\/cyclonedx\.org\/schema\/bom\//;

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

/** A BOM-Link (`urn:cdx:serial/version#ref`) points into another BOM; the part after `#` is the ref. */
const localRef = (ref: string): string => {
  const trimmed = ref.trim();
  if (!trimmed.startsWith('urn:cdx:')) return trimmed;
  const hash = trimmed.indexOf('#');
  return hash === -1 ? trimmed : decodeURIComponent(trimmed.slice(hash + 1));
};

const METHOD_RANK = ['CVSSv31', 'CVSSv3', 'CVSSv4', 'CVSSv2'];

/** Severity and CVSS v3 score: CVSS v3.x ratings first, then others; a score alone still ranks. */
function rate(vuln: XmlNode): { severity: Severity; cvssScore?: number } {
  const ratings = childrenNamed(at(vuln, 'ratings'), 'rating').map((r) => {
    const score = Number(childText(r, 'score'));
    return {
      method: childText(r, 'method'),
      severity: normalizeSeverity(childText(r, 'severity')),
      score: childText(r, 'score') !== '' && score >= 0 && score <= 10 ? score : undefined,
    };
  });
  const rank = (m: string) => {
    const i = METHOD_RANK.indexOf(m);
    return i === -1 ? METHOD_RANK.length : i;
  };
  ratings.sort((a, b) => rank(a.method) - rank(b.method));
  const v3 = ratings.find((r) => (r.method === 'CVSSv31' || r.method === 'CVSSv3') && r.score !== undefined);
  const named = ratings.find((r) => r.severity !== undefined && r.severity !== 'unknown');
  const scored = ratings.find((r) => r.score !== undefined);
  const severity = named?.severity ?? (scored?.score !== undefined ? severityFromScore(scored.score) : 'unknown');
  return { severity, ...(v3?.score !== undefined ? { cvssScore: v3.score } : {}) };
}

function assetOf(file: string, root: (ComponentInfo & { type: string }) | undefined, options: ParseOptions): AssetRef {
  const name = options.target ?? root?.name;
  if (!name) throw new ReportError(file, FORMAT, 'metadata/component', 'missing (pass a target to name the asset)');
  const kind: AssetRef['kind'] = root?.type === 'container' ? 'container_image' : 'other';
  return { assetKey: `${kind === 'container_image' ? 'image' : 'asset'}:${name}`, kind, name };
}

function* vulnerabilityFindings(
  file: string,
  vuln: XmlNode,
  asset: () => AssetRef,
  components: ReadonlyMap<string, ComponentInfo>,
): Generator<NormalizedFinding> {
  // The id as the document gives it, as the CycloneDX JSON connector keys it: one BOM, either encoding, same fingerprints.
  const issueId = childText(vuln, 'id');
  if (!issueId) throw new ReportError(file, FORMAT, 'vulnerability/id', 'missing');
  const { severity, cvssScore } = rate(vuln);
  const state = childText(at(vuln, 'analysis'), 'state');
  const vendorStatus = ANALYSIS_STATES[state];
  const description = childText(vuln, 'description') || childText(vuln, 'detail');
  const firstLine = description.split('\n')[0]?.trim() ?? '';
  const title = firstLine.length > 200 ? `${firstLine.slice(0, 197)}...` : firstLine;
  const urls = [
    childText(at(vuln, 'source'), 'url'),
    ...childrenNamed(at(vuln, 'references'), 'reference').map((r) => childText(at(r, 'source'), 'url')),
    ...childrenNamed(at(vuln, 'advisories'), 'advisory').map((a) => childText(a, 'url')),
  ];
  const references = [...new Set(urls.filter((u) => u !== ''))];
  const cwes = [...new Set(childrenNamed(at(vuln, 'cwes'), 'cwe').map((c) => cweId(c.text)).filter((c): c is string => c !== undefined))];
  const seen = new Set<string>();
  for (const target of childrenNamed(at(vuln, 'affects'), 'target')) {
    const ref = localRef(childText(target, 'ref'));
    if (!ref || seen.has(ref)) continue;
    seen.add(ref);
    // An exact affected version in the VEX stands in when the component is not in this document.
    const listed = childrenNamed(at(target, 'versions'), 'version').map((v) => childText(v, 'version')).find((v) => v !== '');
    const component = components.get(ref) ?? componentFromPurl(ref) ?? { name: ref, version: listed ?? '' };
    yield {
      asset: asset(),
      kind: 'vulnerability',
      issueId,
      component: component.name,
      version: component.version,
      location: '',
      severity,
      ...(cvssScore !== undefined ? { cvssScore } : {}),
      ...(title ? { title } : {}),
      ...(vendorStatus ? { vendorStatus } : {}),
      ...(description ? { description } : {}),
      ...(references.length ? { references } : {}),
      ...(cwes.length ? { cwes } : {}),
    };
  }
}

export const cyclonedxXml: Connector = {
  format: FORMAT,
  description: 'CycloneDX XML BOM / VEX (1.4+ vulnerabilities with analysis): one finding per vulnerability and affected component',
  detect(head) {
    const start = head.replace(/^\uFEFF/, '').replace(/<\?[\s\S]*?\?>|<!--[\s\S]*?-->/g, '').trimStart();
    return /^<(\w+:)?bom[\s>]/.test(start) && NS.test(start.slice(0, 2000));
  },
  async *parse(file, options) {
    const name = basename(file);
    const events = (collect: (el: string, path: readonly string[]) => boolean): AsyncGenerator<XmlEvent> =>
      (async function* () {
        let first = true;
        for await (const event of xmlEvents(file, { format: FORMAT, collect })) {
          if (first && event.path[0] !== 'bom') {
            throw new ReportError(name, FORMAT, event.path[0], `root element is <${event.path[0]}>, expected <bom>`);
          }
          first = false;
          yield event;
        }
      })();

    // Pass 1: which components do vulnerabilities point at, and in which order are the sections?
    const refs = new Set<string>();
    let vulnerabilitiesOpened = false;
    let componentsAfterVulnerabilities = false;
    let anyVulnerability = false;
    const isTarget = (el: string, path: readonly string[]) => el === 'target' && path[path.length - 1] === 'affects';
    for await (const event of events(isTarget)) {
      if (event.type === 'node') {
        const ref = localRef(childText(event.node, 'ref'));
        if (ref) refs.add(ref);
      } else if (event.type === 'open' && event.path.length === 2) {
        if (event.name === 'vulnerabilities') vulnerabilitiesOpened = true;
        if (event.name === 'components' && vulnerabilitiesOpened) componentsAfterVulnerabilities = true;
      } else if (event.type === 'open' && event.name === 'vulnerability') {
        anyVulnerability = true;
      }
    }
    if (!anyVulnerability) return;

    // Pass 2: resolve the referenced components (and the BOM's own subject, the asset).
    const components = new Map<string, ComponentInfo>();
    let root: (ComponentInfo & { type: string }) | undefined;
    const frames: { ref: string; type: string; isRoot: boolean; name: string; group: string; version: string; purl: string }[] = [];
    let resolvedAsset: AssetRef | undefined;
    const asset = () => (resolvedAsset ??= assetOf(name, root, options));
    const FIELDS = new Set(['name', 'group', 'version', 'purl']);
    const collect = (emit: boolean) => (el: string, path: readonly string[]) => {
      const parent = path[path.length - 1];
      return (parent === 'component' && FIELDS.has(el)) || (emit && el === 'vulnerability' && parent === 'vulnerabilities');
    };
    const emitInline = !componentsAfterVulnerabilities;
    for await (const event of events(collect(emitInline))) {
      if (event.type === 'open' && event.name === 'component') {
        const parent = event.path[event.path.length - 2];
        frames.push({
          ref: event.attrs['bom-ref'] ?? '',
          type: event.attrs.type ?? '',
          isRoot: parent === 'metadata' && event.path.length === 3,
          name: '',
          group: '',
          version: '',
          purl: '',
        });
      } else if (event.type === 'close' && event.name === 'component') {
        const frame = frames.pop();
        if (!frame) continue;
        const info = {
          name: nameFromParts({ name: frame.name, ...(frame.group ? { group: frame.group } : {}), ...(frame.purl ? { purl: frame.purl } : {}) }).name,
          version: frame.version,
        };
        // The BOM's subject keeps its name as written: it names the asset, not a package.
        if (frame.isRoot) root = { name: frame.name, version: frame.version, type: frame.type };
        if (frame.ref && refs.has(frame.ref)) components.set(frame.ref, info);
        if (frame.purl && refs.has(frame.purl) && !components.has(frame.purl)) components.set(frame.purl, info);
      } else if (event.type === 'node') {
        const frame = frames[frames.length - 1];
        const { node } = event;
        if (node.name === 'vulnerability') {
          yield* vulnerabilityFindings(name, node, asset, components);
        } else if (frame && (node.name === 'name' || node.name === 'group' || node.name === 'version' || node.name === 'purl')) {
          frame[node.name] = node.text.trim();
        }
      }
    }
    if (emitInline) return;

    // Pass 3: the document put vulnerabilities first; now every component is known.
    const isVulnerability = (el: string, path: readonly string[]) => el === 'vulnerability' && path[path.length - 1] === 'vulnerabilities';
    for await (const event of events(isVulnerability)) {
      if (event.type === 'node') yield* vulnerabilityFindings(name, event.node, asset, components);
    }
  },
};
