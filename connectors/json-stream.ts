import { createReadStream } from 'node:fs';
import Parser from 'stream-json/Parser.js';
import { ReportError } from './model.js';

// Streams a JSON report without holding it: only the values a connector selects are assembled,
// one at a time; everything else is tokenized and dropped. A 1 GB report parses in flat memory.
// Values arrive in document order, so a header written before the bulk (Trivy's ArtifactName)
// is known before the first element; one written after it is read by a light pass (readValue).

export type JsonPath = readonly (string | number)[];

export type JsonEvent =
  /** A selected value, fully assembled; or a scalar found where a selected path expected a container. */
  | { kind: 'value'; path: JsonPath; value: unknown }
  /** A container on the way to a selected path (including the root, path []): shape checks and "key present" checks. */
  | { kind: 'open'; path: JsonPath; type: 'object' | 'array' };

export interface StreamJsonOptions {
  /** Name used in errors (the report's file name, never a machine path). */
  name: string;
  format: string;
  /**
   * Dotted paths to assemble, `*` standing for any array index or object key, e.g.
   * `Results.*.Vulnerabilities.*` or `SchemaVersion`. Values are emitted in document order.
   */
  select: readonly string[];
  /** Deeper nesting is rejected: hostile input must not exhaust the stack of whatever handles it next. */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 256;

interface TrieNode {
  exact: Map<string, TrieNode>;
  wildcard?: TrieNode;
  selected: boolean;
}

const newNode = (): TrieNode => ({ exact: new Map(), selected: false });

function compile(patterns: readonly string[]): TrieNode {
  const root = newNode();
  for (const pattern of patterns) {
    let node = root;
    for (const segment of pattern.split('.')) {
      if (segment === '*') node = node.wildcard ??= newNode();
      else {
        let next = node.exact.get(segment);
        if (!next) node.exact.set(segment, (next = newNode()));
        node = next;
      }
    }
    node.selected = true;
  }
  return root;
}

/** Where a value sits relative to the selection. */
interface Match {
  nodes: TrieNode[];
  selected: boolean;
  /** Some selected path lies below this value. */
  prefix: boolean;
}

const NO_MATCH: Match = { nodes: [], selected: false, prefix: false };

function childMatch(nodes: readonly TrieNode[], key: string | number): Match {
  const found: TrieNode[] = [];
  for (const node of nodes) {
    const exact = node.exact.get(String(key));
    if (exact) found.push(exact);
    if (node.wildcard) found.push(node.wildcard);
  }
  if (found.length === 0) return NO_MATCH;
  return {
    nodes: found,
    selected: found.some((n) => n.selected),
    prefix: found.some((n) => n.wildcard !== undefined || n.exact.size > 0),
  };
}

interface WalkFrame {
  isArray: boolean;
  nodes: TrieNode[];
  /** Next index (arrays) or the last key read (objects). */
  key: string | number;
  /** Cached match for array elements when no exact index is selected (the common, hot case). */
  elementMatch?: Match;
}

interface BuildFrame {
  container: Record<string, unknown> | unknown[];
  key: string;
}

export function formatPath(path: JsonPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

interface Token {
  name: string;
  value?: string;
}

/**
 * Yields the selected values of a JSON file in document order. Malformed, truncated, empty or
 * too deeply nested input ends the iteration with a ReportError naming the file, the format,
 * the JSON path reached and the byte range that failed.
 */
export async function* streamJson(file: string, options: StreamJsonOptions): AsyncGenerator<JsonEvent> {
  const { name, format } = options;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const trie = compile(options.select);

  const queue: JsonEvent[] = [];
  const walk: WalkFrame[] = [];
  const walkPath: (string | number)[] = [];
  let build: BuildFrame[] = [];
  let buildPath: JsonPath = [];
  let skipDepth = 0;
  let depth = 0;
  let rootSeen = false;
  let rootDone = false;
  let failure: ReportError | undefined;

  const currentPath = (): string => {
    const parts = [...walkPath];
    const top = walk[walk.length - 1];
    if (top && top.key !== '') parts.push(top.key);
    return formatPath(parts);
  };

  /** The match for the value that starts now, and the key it sits under. */
  const locate = (): { match: Match; key: string | number | undefined } => {
    const top = walk[walk.length - 1];
    if (!top) return { match: { nodes: [trie], selected: trie.selected, prefix: true }, key: undefined };
    if (top.isArray) {
      const index = top.key as number;
      if (top.elementMatch) return { match: top.elementMatch, key: index };
      const hasExact = top.nodes.some((n) => n.exact.size > 0);
      const match = childMatch(top.nodes, index);
      if (!hasExact) top.elementMatch = match;
      return { match, key: index };
    }
    return { match: childMatch(top.nodes, top.key), key: top.key };
  };

  const valueDone = (): void => {
    const top = walk[walk.length - 1];
    if (!top) rootDone = true;
    else if (top.isArray) (top.key as number)++;
  };

  const pathTo = (key: string | number | undefined): JsonPath => (key === undefined ? [...walkPath] : [...walkPath, key]);

  const addBuilt = (value: unknown): void => {
    const top = build[build.length - 1];
    if (!top) {
      queue.push({ kind: 'value', path: buildPath, value });
      valueDone();
      return;
    }
    if (Array.isArray(top.container)) top.container.push(value);
    else top.container[top.key] = value;
  };

  const scalarOf = (token: Token): unknown => {
    switch (token.name) {
      case 'stringValue':
        return token.value;
      case 'numberValue':
        return Number(token.value);
      case 'trueValue':
        return true;
      case 'falseValue':
        return false;
      default:
        return null;
    }
  };

  const onToken = (token: Token): void => {
    if (failure) return;
    const name = token.name;
    const opens = name === 'startObject' || name === 'startArray';
    if (opens && ++depth > maxDepth) {
      const where = currentPath();
      failure = new ReportError(options.name, format, undefined, `JSON nested deeper than ${maxDepth} levels${where ? ` (under ${where})` : ''}; refusing to parse`);
      return;
    }
    if (name === 'endObject' || name === 'endArray') depth--;

    if (skipDepth > 0) {
      if (opens) skipDepth++;
      else if (name === 'endObject' || name === 'endArray') {
        if (--skipDepth === 0) valueDone();
      }
      return;
    }

    if (build.length > 0) {
      switch (name) {
        case 'keyValue':
          build[build.length - 1]!.key = token.value ?? '';
          return;
        case 'startObject':
        case 'startArray': {
          const container: BuildFrame['container'] = name === 'startArray' ? [] : {};
          addBuilt(container);
          build.push({ container, key: '' });
          return;
        }
        case 'endObject':
        case 'endArray': {
          const done = build.pop()!;
          if (build.length === 0) addBuilt(done.container);
          return;
        }
        default:
          addBuilt(scalarOf(token));
          return;
      }
    }

    switch (name) {
      case 'keyValue':
        walk[walk.length - 1]!.key = token.value ?? '';
        return;
      case 'endObject':
      case 'endArray':
        walk.pop();
        walkPath.pop();
        valueDone();
        return;
      default:
        break;
    }

    // A value starts at walking level.
    if (!rootSeen) rootSeen = true;
    else if (walk.length === 0) {
      failure = new ReportError(options.name, format, undefined, 'not valid JSON: more than one top-level value');
      return;
    }
    const { match, key } = locate();
    if (match.selected) {
      buildPath = pathTo(key);
      if (opens) {
        const container: BuildFrame['container'] = name === 'startArray' ? [] : {};
        build = [{ container, key: '' }];
      } else {
        queue.push({ kind: 'value', path: buildPath, value: scalarOf(token) });
        valueDone();
      }
      return;
    }
    if (match.prefix) {
      if (opens) {
        const isArray = name === 'startArray';
        queue.push({ kind: 'open', path: pathTo(key), type: isArray ? 'array' : 'object' });
        if (key !== undefined) walkPath.push(key);
        walk.push({ isArray, nodes: match.nodes, key: isArray ? 0 : '' });
      } else {
        queue.push({ kind: 'value', path: pathTo(key), value: scalarOf(token) });
        valueDone();
      }
      return;
    }
    if (opens) skipDepth = 1;
    else valueDone();
  };

  const parser = new Parser({ packValues: true, streamValues: false });
  let parseError: Error | undefined;
  parser.on('data', onToken);
  parser.on('error', (err: Error) => {
    parseError ??= err;
  });

  let offset = 0;
  let chunkStart = 0;
  let sawContent = false;
  const input = createReadStream(file, { highWaterMark: 256 * 1024 });

  // No field: the syntax error's place goes in the reason, so the message reads "<file>: <format>: not valid JSON ...".
  const invalid = (detail: string): ReportError => {
    const where = currentPath();
    return new ReportError(name, format, undefined, `not valid JSON: ${detail}${where ? ` (after ${where})` : ''}`);
  };

  try {
    for await (const raw of input) {
      let chunk = raw as Buffer;
      if (offset === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3); // UTF-8 BOM
      chunkStart = offset;
      offset += (raw as Buffer).length;
      if (!sawContent && /\S/.test(chunk.toString('latin1'))) sawContent = true;
      await new Promise<void>((resolve) => {
        parser.write(chunk, (err) => {
          if (err) parseError ??= err;
          resolve();
        });
      });
      if (failure) throw failure;
      if (parseError) throw invalid(`${parseError.message} within bytes ${chunkStart}-${offset}`);
      if (queue.length > 0) for (const event of queue.splice(0, queue.length)) yield event;
    }
    if (!sawContent) throw new ReportError(name, format, undefined, 'the report is empty');
    await new Promise<void>((resolve) => {
      parser.once('end', resolve);
      parser.once('error', () => resolve());
      parser.end();
    });
    if (failure) throw failure;
    if (parseError) throw invalid(`the report ends early at byte ${offset} (truncated?): ${parseError.message}`);
    if (!rootDone || depth !== 0) throw invalid(`the report ends early at byte ${offset} (truncated?)`);
    if (queue.length > 0) for (const event of queue.splice(0, queue.length)) yield event;
  } catch (err) {
    if (err instanceof ReportError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new ReportError(name, format, undefined, `cannot read the report (${code})`);
    }
    throw err;
  } finally {
    input.destroy();
    parser.destroy();
  }
}

/**
 * The fallback for a header written after the bulk (Grype's `source`, some Dependency-Track
 * exports' `project`): one light pass that tokenizes the bulk without building it and returns the
 * value at `path` (a plain dotted path), or undefined when the document has none.
 */
export async function readValue(file: string, options: Omit<StreamJsonOptions, 'select'>, path: string): Promise<unknown> {
  for await (const event of streamJson(file, { ...options, select: [path] })) {
    if (event.kind === 'value' && event.path.join('.') === path) return event.value;
  }
  return undefined;
}
