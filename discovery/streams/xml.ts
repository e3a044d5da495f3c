import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { ReportError } from '../model.js';

// Streaming XML for report connectors. saxes is non-validating and never fetches or expands
// anything beyond the five predefined entities; DOCTYPEs that declare entities are refused
// outright so entity bombs and external entities never get as far as the parser's text handling.
// Memory stays flat: only the elements a connector asks to collect are built, one at a time.

/** One collected element with its subtree. Names are local names (namespace prefixes dropped). */
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  /** Concatenated character data directly inside this element (text and CDATA). */
  text: string;
}

export type XmlEvent =
  /** An element that is not collected opened; `path` runs from the root to it (inclusive). */
  | { type: 'open'; name: string; attrs: Record<string, string>; path: readonly string[] }
  | { type: 'close'; name: string; path: readonly string[] }
  /** A collected element, complete. `path` runs from the root to its parent. */
  | { type: 'node'; node: XmlNode; path: readonly string[] };

export interface XmlStreamOptions {
  format: string;
  /** Whether the element `name` whose ancestors are `path` is built whole and delivered as a node. */
  collect(name: string, path: readonly string[]): boolean;
  /** Deepest element nesting accepted (default 64). */
  maxDepth?: number;
  /** Largest amount of character data one collected element, or one attribute, may hold (default 32 Mi characters). */
  maxNodeChars?: number;
}

const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_NODE_CHARS = 32 * 1024 * 1024;
const CHUNK_BYTES = 256 * 1024;

const localName = (name: string): string => {
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(colon + 1);
};

/** Streams `file` as XML events; every failure is a ReportError naming the file. */
export async function* xmlEvents(file: string, options: XmlStreamOptions): AsyncGenerator<XmlEvent> {
  const display = basename(file);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxNodeChars = options.maxNodeChars ?? DEFAULT_MAX_NODE_CHARS;
  const fail = (reason: string, field?: string) => new ReportError(display, options.format, field, reason);

  const parser = new SaxesParser({ xmlns: false, position: true });
  const path: string[] = [];
  const queue: XmlEvent[] = [];
  // The collected element being built: its stack of open nodes and its running size.
  const building: XmlNode[] = [];
  let buildingPath: readonly string[] = [];
  let buildingChars = 0;

  const addText = (text: string) => {
    const top = building[building.length - 1];
    if (!top) return;
    buildingChars += text.length;
    if (buildingChars > maxNodeChars) {
      throw fail(`element <${building[0]?.name}> holds more than ${maxNodeChars} characters`, path.join('/'));
    }
    top.text += text;
  };

  parser.on('doctype', (doctype) => {
    // An internal subset declaring entities is the billion-laughs / XXE vector; nothing legit needs it.
    if (/<!ENTITY/i.test(doctype)) throw fail('DOCTYPE with entity declarations is not accepted');
  });
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const name = localName(tag.name);
    if (path.length >= maxDepth) throw fail(`elements nested deeper than ${maxDepth}`, path.join('/'));
    const attrs: Record<string, string> = {};
    for (const [key, value] of Object.entries(tag.attributes)) {
      // Attributes are bounded like collected text: a 40 MB one used to pass into the findings.
      if (value.length > maxNodeChars) throw fail(`attribute ${key} of <${name}> holds more than ${maxNodeChars} characters`, path.join('/'));
      attrs[localName(key)] = value;
    }
    if (building.length > 0) {
      const node: XmlNode = { name, attrs, children: [], text: '' };
      building[building.length - 1]!.children.push(node);
      building.push(node);
    } else if (options.collect(name, path)) {
      buildingPath = path.slice();
      buildingChars = 0;
      building.push({ name, attrs, children: [], text: '' });
    } else {
      path.push(name);
      queue.push({ type: 'open', name, attrs, path: path.slice() });
      return;
    }
    path.push(name);
  });
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.on('closetag', () => {
    const name = path.pop()!;
    if (building.length > 0) {
      const node = building.pop()!;
      if (building.length === 0) queue.push({ type: 'node', node, path: buildingPath });
      return;
    }
    queue.push({ type: 'close', name, path: [...path, name] });
  });
  parser.on('error', (err) => {
    throw fail(`not well-formed XML (${err.message})`);
  });

  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: CHUNK_BYTES });
  try {
    for await (const chunk of stream) {
      parser.write(chunk as string);
      // A chunk yields a bounded batch, handed over before the next chunk is read.
      if (queue.length > 0) yield* queue.splice(0);
    }
    parser.close();
    if (queue.length > 0) yield* queue.splice(0);
  } catch (err) {
    if (err instanceof ReportError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw fail('is a directory');
    if (code === 'ENOENT' || code === 'EACCES') throw fail(`cannot read the file (${code})`);
    throw fail(`not well-formed XML (${(err as Error).message})`);
  } finally {
    stream.destroy();
  }
}

/** First child element called `name`. */
export const child = (node: XmlNode | undefined, name: string): XmlNode | undefined =>
  node?.children.find((c) => c.name === name);

/** All child elements called `name`. */
export const childrenNamed = (node: XmlNode | undefined, name: string): XmlNode[] =>
  node ? node.children.filter((c) => c.name === name) : [];

/** Trimmed text of the first child called `name` ('' when absent). */
export const childText = (node: XmlNode | undefined, name: string): string => child(node, name)?.text.trim() ?? '';

/** Follows a chain of child names, e.g. `at(vuln, 'analysis', 'state')`. */
export function at(node: XmlNode | undefined, ...names: string[]): XmlNode | undefined {
  let current = node;
  for (const name of names) current = child(current, name);
  return current;
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Where the root element starts in `head`: after a BOM, the XML declaration, comments, processing
 * instructions and the DOCTYPE (with its internal subset); -1 when the prolog does not end in it.
 * A scan, not a regular expression: detection runs on every upload, and the expressions this
 * replaced backtracked for seconds on a head of `<!DOCTYPE` and spaces, or of many `<?`.
 */
export function prologEnd(head: string): number {
  let i = head.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (;;) {
    while (i < head.length && isSpace(head.charCodeAt(i))) i++;
    if (head.startsWith('<?', i)) {
      const end = head.indexOf('?>', i + 2);
      if (end < 0) return -1;
      i = end + 2;
    } else if (head.startsWith('<!--', i)) {
      const end = head.indexOf('-->', i + 4);
      if (end < 0) return -1;
      i = end + 3;
    } else if (head.startsWith('<!DOCTYPE', i)) {
      let j = i + 9;
      while (j < head.length && head[j] !== '[' && head[j] !== '>') j++;
      if (head[j] === '[') {
        // The internal subset ends at the first `]` followed by optional space and `>`.
        for (;;) {
          j = head.indexOf(']', j + 1);
          if (j < 0) return -1;
          let k = j + 1;
          while (k < head.length && isSpace(head.charCodeAt(k))) k++;
          if (head[k] === '>') {
            j = k;
            break;
          }
        }
      }
      if (j >= head.length) return -1;
      i = j + 1;
    } else {
      return i < head.length ? i : -1;
    }
  }
}

/** Detects an XML document by its root element's local name within the first bytes. */
export function rootElementOf(head: string): string | undefined {
  const start = prologEnd(head);
  if (start < 0) return undefined;
  ROOT_ELEMENT.lastIndex = start;
  return ROOT_ELEMENT.exec(head)?.[2];
}

const ROOT_ELEMENT = /<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]/y;
