import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { ReportError, normalizeSeverity, type AssetRef, type NormalizedFinding } from '../../model.js';
import { at, childText, childrenNamed, prologEnd, type XmlNode } from '../../streams/xml.js';
import { componentFromPurl, nameFromParts } from '../common/identity.js';
import { rootedXmlEvents } from '../shared/xml-document.js';
import {
  localRef, subjectAsset, vulnerabilityFinding, vulnerabilityOf, type ComponentInfo, type Subject,
} from '../shared/cyclonedx.js';

// CycloneDX XML BOMs and VEX documents (1.4+ `<vulnerabilities>`): one finding per vulnerability and
// affected component. A BOM without vulnerabilities yields nothing. Streamed in passes so that only
// the components vulnerabilities point at are held: (1) collect the affected refs, (2) resolve them
// to name@version and emit the vulnerabilities, (3) only when the document lists vulnerabilities
// before components, emit them then.
//
// CycloneDX 1.0-1.3 BOMs carry vulnerabilities in the vulnerability extension 1.0 instead
// (`v:vulnerabilities/v:vulnerability`, Grype <= 0.11 and the spec's own examples): inside the
// affected `component`, or at the top level with `ref` naming the component. Those are read into
// the same findings. A `vulnerability` anywhere else is refused with its path: a document whose
// vulnerabilities are not understood must never import as an empty scan.

const FORMAT = 'cyclonedx-xml';
const NS = /xmlns(:\w+)?\s*=\s*["']http:\/\/cyclonedx\.org\/schema\/bom\//;
const EXT_NS = 'http://cyclonedx.org/schema/ext/vulnerability/';
const EXT_NS_1_0 = `${EXT_NS}1.0`;
const BOM_VERSION = /^http:\/\/cyclonedx\.org\/schema\/bom\/(\d+)\.(\d+)$/;

/** Where a `vulnerability` element sits: `path` runs from the root to its parent. */
const isTopLevel = (path: readonly string[]) => path.length === 2 && path[1] === 'vulnerabilities';
const isInComponent = (path: readonly string[]) =>
  path.length >= 3 && path[path.length - 1] === 'vulnerabilities' && path[path.length - 2] === 'component';

/** A rating of the extension 1.0: `score` holds `base` (and impact, exploitability). */
function extensionRating(r: XmlNode) {
  const base = childText(at(r, 'score'), 'base');
  const score = base !== '' ? Number(base) : undefined;
  return {
    method: childText(r, 'method'),
    severity: normalizeSeverity(childText(r, 'severity')),
    score: score !== undefined && Number.isFinite(score) ? score : undefined,
    vector: childText(r, 'vector') || undefined,
  };
}

/** One finding for a vulnerability of the extension 1.0, on the component it belongs to. */
function extensionFinding(file: string, vuln: XmlNode, asset: AssetRef, component: ComponentInfo): NormalizedFinding {
  const issueId = childText(vuln, 'id');
  if (!issueId) throw new ReportError(file, FORMAT, 'vulnerability/id', 'missing');
  const recommendations = childrenNamed(at(vuln, 'recommendations'), 'recommendation').map((r) => r.text.trim()).filter((t) => t !== '');
  const v = vulnerabilityOf({
    id: issueId,
    ratings: childrenNamed(at(vuln, 'ratings'), 'rating').map(extensionRating),
    state: undefined,
    description: childText(vuln, 'description'),
    urls: [
      childText(at(vuln, 'source'), 'url'),
      ...childrenNamed(at(vuln, 'advisories'), 'advisory').map((a) => a.text.trim()),
    ],
    cwes: childrenNamed(at(vuln, 'cwes'), 'cwe').map((c) => c.text),
    recommendation: recommendations.join('\n') || undefined,
  });
  return vulnerabilityFinding(v, asset, component, undefined);
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
  const v = vulnerabilityOf({
    id: issueId,
    ratings: childrenNamed(at(vuln, 'ratings'), 'rating').map((r) => ({
      method: childText(r, 'method'),
      severity: normalizeSeverity(childText(r, 'severity')),
      score: childText(r, 'score') !== '' ? Number(childText(r, 'score')) : undefined,
      vector: childText(r, 'vector') || undefined,
    })),
    state: childText(at(vuln, 'analysis'), 'state'),
    description: childText(vuln, 'description') || childText(vuln, 'detail'),
    urls: [
      childText(at(vuln, 'source'), 'url'),
      ...childrenNamed(at(vuln, 'references'), 'reference').map((r) => childText(at(r, 'source'), 'url')),
      ...childrenNamed(at(vuln, 'advisories'), 'advisory').map((a) => childText(a, 'url')),
    ],
    cwes: childrenNamed(at(vuln, 'cwes'), 'cwe').map((c) => c.text),
    recommendation: childText(vuln, 'recommendation') || undefined,
    referenceIds: childrenNamed(at(vuln, 'references'), 'reference').map((r) => childText(r, 'id')),
  });
  const seen = new Set<string>();
  for (const target of childrenNamed(at(vuln, 'affects'), 'target')) {
    const ref = localRef(childText(target, 'ref'));
    if (!ref || seen.has(ref)) continue;
    seen.add(ref);
    // An exact affected version in the VEX stands in when the component is not in this document.
    const listed = childrenNamed(at(target, 'versions'), 'version').map((e) => childText(e, 'version')).find((e) => e !== '');
    const component = components.get(ref) ?? componentFromPurl(ref) ?? { name: ref, version: listed ?? '' };
    yield vulnerabilityFinding(v, asset(), component, v.vendorStatus);
  }
}

export const cyclonedxXml: Connector = {
  format: FORMAT,
  description: 'CycloneDX XML BOM / VEX (1.4+ vulnerabilities with analysis, or the vulnerability extension 1.0 in 1.0-1.3 BOMs): one finding per vulnerability and affected component',
  detect(head) {
    const from = prologEnd(head);
    const start = from < 0 ? '' : head.slice(from, from + 2000);
    return /^<(\w+:)?bom[\s>]/.test(start) && NS.test(start);
  },
  async *parse(file, options) {
    const name = basename(file);
    const events = (collect: (el: string, path: readonly string[]) => boolean) => rootedXmlEvents(file, 'bom', { format: FORMAT, collect });

    // Pass 1: which components do vulnerabilities point at, and in which order are the sections?
    const refs = new Set<string>();
    let vulnerabilitiesOpened = false;
    let componentsAfterVulnerabilities = false;
    let anyVulnerability = false;
    let extensionVulnerabilities = false;
    const extensionVersions = new Set<string>();
    const otherNamespaces = new Set<string>();
    let bomVersion: [number, number] | undefined;
    const isTarget = (el: string, path: readonly string[]) => el === 'target' && path[path.length - 1] === 'affects';
    for await (const event of events(isTarget)) {
      if (event.type === 'node') {
        const ref = localRef(childText(event.node, 'ref'));
        if (ref) refs.add(ref);
        continue;
      }
      if (event.type !== 'open') continue;
      // Namespace declarations (prefixes dropped, values kept): which vulnerability extension is declared.
      for (const value of Object.values(event.attrs)) if (value.startsWith(EXT_NS)) extensionVersions.add(value.trim());
      if (event.path.length === 1) {
        const declared = Object.values(event.attrs).map((v) => BOM_VERSION.exec(v.trim())).find(Boolean);
        if (declared) bomVersion = [Number(declared[1]), Number(declared[2])];
        for (const [attr, value] of Object.entries(event.attrs)) {
          if (/^(xmlns|\w+)$/.test(attr) && /^https?:\/\/\S+$/.test(value.trim()) && !BOM_VERSION.test(value.trim()) && !value.startsWith(EXT_NS)) otherNamespaces.add(value.trim());
        }
      }
      if (event.path.length === 2) {
        if (event.name === 'vulnerabilities') vulnerabilitiesOpened = true;
        if (event.name === 'components' && vulnerabilitiesOpened) componentsAfterVulnerabilities = true;
      }
      if (event.name !== 'vulnerability') continue;
      anyVulnerability = true;
      const parent = event.path.slice(0, -1);
      const where = event.path.join('/');
      const ref = localRef(event.attrs.ref ?? '');
      if (isInComponent(parent) || (isTopLevel(parent) && ref)) {
        // The extension 1.0: its `vulnerability` carries `ref` (the 1.4+ one has `bom-ref` and `affects`).
        extensionVulnerabilities = true;
        if (isTopLevel(parent)) refs.add(ref);
      } else if (!isTopLevel(parent)) {
        throw new ReportError(name, FORMAT, where, 'a <vulnerability> outside <bom><vulnerabilities> or a component\'s vulnerability extension 1.0 is not understood');
      } else if (bomVersion && (bomVersion[0] < 1 || (bomVersion[0] === 1 && bomVersion[1] < 4))) {
        // CycloneDX before 1.4 has no vulnerabilities of its own: without `ref` it names no component.
        throw new ReportError(name, FORMAT, where, `a <vulnerability> without ref in a CycloneDX ${bomVersion.join('.')} BOM is not understood (the extension 1.0 names its component in ref; <affects> exists from 1.4)`);
      }
    }
    if (!anyVulnerability) return;
    if (extensionVulnerabilities && extensionVersions.size === 0) {
      // Prefixes are dropped, so such elements are read as the extension 1.0: say so, never silently.
      const declared = otherNamespaces.size > 0 ? ` (declared: ${[...otherNamespaces].join(', ')})` : '';
      options.warn?.({ file: name, format: FORMAT, field: 'vulnerability', reason: `vulnerability elements in an unknown namespace${declared}, read as the vulnerability extension 1.0 (${EXT_NS_1_0})` });
    }
    if (extensionVulnerabilities && extensionVersions.size > 0 && !extensionVersions.has(EXT_NS_1_0)) {
      throw new ReportError(name, FORMAT, 'vulnerabilities', `vulnerability extension ${[...extensionVersions].join(', ')} is not understood (only ${EXT_NS_1_0})`);
    }

    // Pass 2: resolve the referenced components (and the BOM's own subject, the asset).
    const components = new Map<string, ComponentInfo>();
    let root: Subject | undefined;
    const frames: {
      ref: string; type: string; isRoot: boolean; name: string; group: string; version: string; purl: string;
      /** Its vulnerabilities of the extension 1.0, emitted when the component closes and its fields are known. */
      vulnerabilities: XmlNode[];
    }[] = [];
    let resolvedAsset: AssetRef | undefined;
    const asset = () => (resolvedAsset ??= subjectAsset(root, options, (reason) => {
      throw new ReportError(name, FORMAT, 'metadata/component', reason);
    }));
    const FIELDS = new Set(['name', 'group', 'version', 'purl']);
    const collect = (emit: boolean) => (el: string, path: readonly string[]) => {
      const parent = path[path.length - 1];
      if (el === 'vulnerability') return isInComponent(path) || (emit && isTopLevel(path));
      return parent === 'component' && FIELDS.has(el);
    };
    const emitInline = !componentsAfterVulnerabilities;
    // A top-level vulnerability: the 1.4+ form names its components in `affects`, the extension 1.0 in `ref`.
    const topLevelFindings = function* (node: XmlNode): Generator<NormalizedFinding> {
      const ref = localRef(node.attrs.ref ?? '');
      if (!ref) {
        yield* vulnerabilityFindings(name, node, asset, components);
        return;
      }
      const component = components.get(ref) ?? componentFromPurl(ref);
      if (!component) {
        throw new ReportError(name, FORMAT, 'vulnerabilities/vulnerability/@ref', `"${ref}" names no component of this document`);
      }
      yield extensionFinding(name, node, asset(), component);
    };
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
          vulnerabilities: [],
        });
      } else if (event.type === 'close' && event.name === 'component') {
        const frame = frames.pop();
        if (!frame) continue;
        const parts = nameFromParts({ name: frame.name, ...(frame.group ? { group: frame.group } : {}), ...(frame.purl ? { purl: frame.purl } : {}) });
        const info = { name: parts.name, version: frame.version, ecosystem: parts.ecosystem };
        // The BOM's subject keeps its name as written: it names the asset, not a package.
        if (frame.isRoot) root = { name: frame.name, version: frame.version, type: frame.type };
        if (frame.ref && refs.has(frame.ref)) components.set(frame.ref, info);
        if (frame.purl && refs.has(frame.purl) && !components.has(frame.purl)) components.set(frame.purl, info);
        for (const vuln of frame.vulnerabilities) yield extensionFinding(name, vuln, asset(), info);
      } else if (event.type === 'node') {
        const frame = frames[frames.length - 1];
        const { node } = event;
        if (node.name === 'vulnerability' && isInComponent(event.path)) {
          if (!frame) throw new ReportError(name, FORMAT, event.path.join('/'), 'vulnerability outside a component');
          frame.vulnerabilities.push(node);
        } else if (node.name === 'vulnerability') {
          yield* topLevelFindings(node);
        } else if (frame && (node.name === 'name' || node.name === 'group' || node.name === 'version' || node.name === 'purl')) {
          frame[node.name] = node.text.trim();
        }
      }
    }
    if (emitInline) return;

    // Pass 3: the document put vulnerabilities first; now every component is known.
    const isVulnerability = (el: string, path: readonly string[]) => el === 'vulnerability' && isTopLevel(path);
    for await (const event of events(isVulnerability)) {
      if (event.type === 'node') yield* topLevelFindings(event.node);
    }
  },
};
