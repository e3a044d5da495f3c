import { createReadStream } from 'node:fs';
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

export function formatPath(path: JsonPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

// Bytes the tokenizer looks at.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Bytes that may make up a number or a literal (true, false, null); validated once complete. */
const WORD = new Uint8Array(256);
for (const c of '0123456789+-.eEtrufalsn') WORD[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrtu') ESCAPES[c.charCodeAt(0)] = 1;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

// Byte classes outside strings inside a selected value: one lookup per byte in the hot loop, and
// bytes JSON never has there (most corruption) fail at once instead of when the brackets balance.
const PLAIN = 0;
const STRING_START = 1;
const OPENS = 2;
const CLOSES = 3;
const ILLEGAL = 4;
const CAPTURE_CLASS = new Uint8Array(256).fill(ILLEGAL);
for (const c of ' \t\r\n:,') CAPTURE_CLASS[c.charCodeAt(0)] = PLAIN;
for (let c = 0; c < 256; c++) if (WORD[c]) CAPTURE_CLASS[c] = PLAIN;
CAPTURE_CLASS[0x22] = STRING_START;
CAPTURE_CLASS[0x7b] = OPENS;
CAPTURE_CLASS[0x5b] = OPENS;
CAPTURE_CLASS[0x7d] = CLOSES;
CAPTURE_CLASS[0x5d] = CLOSES;

/** One selected value (a finding, a header) is KBs; past this the input is corrupt or hostile. */
const MAX_VALUE_BYTES = 256 * 1024 * 1024;

// What the walking level expects next.
const EXPECT_VALUE = 0;
const EXPECT_VALUE_OR_END = 1;
const EXPECT_KEY_OR_END = 2;
const EXPECT_KEY = 3;
const EXPECT_COLON = 4;
const EXPECT_NEXT = 5;
const EXPECT_NOTHING = 6;

// A token that may continue in the next chunk.
const NO_TOKEN = 0;
const IN_STRING = 1;
const IN_WORD = 2;
const IN_CAPTURE = 3;

// What a string is for: only keys of walked objects and emitted scalars are decoded.
const STRING_KEY = 0;
const STRING_VALUE = 1;
const STRING_SKIP = 2;

const describeByte = (c: number): string => (c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`);

/**
 * The tokenizer. Walked levels (the root and the containers on the way to a selection) and skipped
 * values are tokenized and validated byte by byte, resumably across chunks. A selected container is
 * only scanned for its end (strings and brackets) and then handed to JSON.parse in one piece, which
 * both builds and validates it: that is where the bulk of a report goes, several times faster than
 * assembling values token by token.
 */
class Scanner {
  events: JsonEvent[] = [];
  /** Absolute offsets of the chunk being fed, for messages. */
  chunkStart = 0;
  chunkEnd = 0;
  sawContent = false;

  private readonly walk: WalkFrame[] = [];
  private readonly walkPath: (string | number)[] = [];
  /** Containers being skipped (not selected, nothing selected below): isArray of each level. */
  private readonly skip: boolean[] = [];
  private expect = EXPECT_VALUE;

  private token = NO_TOKEN;
  /** Bytes of a string or a captured value that began in an earlier chunk. */
  private pieces: Buffer[] = [];
  private base = 0;
  private stringRole = STRING_SKIP;
  /** 0: plain; 1: after a backslash; 2-5: inside \uXXXX. */
  private stringState = 0;
  private stringEscaped = false;
  private word = '';
  private wordEmits = false;
  /** Path of the scalar or captured value under way, when it is emitted. */
  private valuePath: JsonPath = [];
  private captureDepth = 0;
  private captureInString = false;
  private captureEscape = false;
  private captureStart = 0;
  private captureBytes = 0;

  constructor(
    private readonly trie: TrieNode,
    private readonly maxDepth: number,
    private readonly name: string,
    private readonly format: string,
  ) {}

  currentPath(): string {
    const parts = [...this.walkPath];
    const top = this.walk[this.walk.length - 1];
    if (top && top.key !== '') parts.push(top.key);
    return formatPath(parts);
  }

  private invalid(detail: string): ReportError {
    const where = this.currentPath();
    return new ReportError(this.name, this.format, undefined, `not valid JSON: ${detail}${where ? ` (after ${where})` : ''}`);
  }

  private unexpected(c: number, at: number): ReportError {
    return this.invalid(`unexpected ${describeByte(c)} at byte ${this.base + at} within bytes ${this.chunkStart}-${this.chunkEnd}`);
  }

  private tooDeep(): ReportError {
    const where = this.currentPath();
    return new ReportError(this.name, this.format, undefined, `JSON nested deeper than ${this.maxDepth} levels${where ? ` (under ${where})` : ''}; refusing to parse`);
  }

  /** The match for the value that starts now, and the key it sits under. */
  private locate(): { match: Match; key: string | number | undefined } {
    const top = this.walk[this.walk.length - 1];
    if (!top) return { match: { nodes: [this.trie], selected: this.trie.selected, prefix: true }, key: undefined };
    if (top.isArray) {
      const index = top.key as number;
      if (top.elementMatch) return { match: top.elementMatch, key: index };
      const hasExact = top.nodes.some((n) => n.exact.size > 0);
      const match = childMatch(top.nodes, index);
      if (!hasExact) top.elementMatch = match;
      return { match, key: index };
    }
    return { match: childMatch(top.nodes, top.key), key: top.key };
  }

  private pathTo(key: string | number | undefined): JsonPath {
    return key === undefined ? [...this.walkPath] : [...this.walkPath, key];
  }

  private valueDone(): void {
    if (this.skip.length > 0) {
      this.expect = EXPECT_NEXT;
      return;
    }
    const top = this.walk[this.walk.length - 1];
    if (!top) {
      this.expect = EXPECT_NOTHING;
      return;
    }
    if (top.isArray) (top.key as number)++;
    this.expect = EXPECT_NEXT;
  }

  /** Feeds one chunk; `base` is the file offset of its first byte. Throws ReportError on bad input. */
  feed(buf: Buffer, base: number): void {
    this.base = base;
    const n = buf.length;
    let i = 0;
    if (this.token !== NO_TOKEN) {
      this.sawContent = true;
      i = this.resume(buf);
      if (i < 0) return;
    }
    while (i < n) {
      const c = buf[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      this.sawContent = true;
      switch (this.expect) {
        case EXPECT_VALUE_OR_END:
          if (c === CLOSE_ARRAY) {
            this.close(c, i);
            i++;
            continue;
          }
          i = this.startValue(buf, i, c);
          break;
        case EXPECT_VALUE:
          i = this.startValue(buf, i, c);
          break;
        case EXPECT_KEY_OR_END:
          if (c === CLOSE_OBJECT) {
            this.close(c, i);
            i++;
            continue;
          }
        // falls through
        case EXPECT_KEY:
          if (c !== QUOTE) throw this.unexpected(c, i);
          i = this.startString(buf, i + 1, this.skip.length > 0 ? STRING_SKIP : STRING_KEY);
          break;
        case EXPECT_COLON:
          if (c !== COLON) throw this.unexpected(c, i);
          this.expect = EXPECT_VALUE;
          i++;
          break;
        case EXPECT_NEXT: {
          const inArray = this.skip.length > 0 ? this.skip[this.skip.length - 1]! : this.walk[this.walk.length - 1]!.isArray;
          if (c === COMMA) this.expect = inArray ? EXPECT_VALUE : EXPECT_KEY;
          else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) this.close(c, i);
          else throw this.unexpected(c, i);
          i++;
          break;
        }
        default:
          if (c === QUOTE || c === OPEN_OBJECT || c === OPEN_ARRAY || WORD[c]) throw this.invalid('more than one top-level value');
          throw this.unexpected(c, i);
      }
      if (i < 0) return;
    }
  }

  /** End of input: completes a top-level number or literal; anything else open means truncation. */
  end(offset: number): void {
    if (this.token === IN_WORD && this.walk.length === 0 && this.skip.length === 0) {
      this.finishWord(offset);
    }
    if (this.token !== NO_TOKEN || this.expect !== EXPECT_NOTHING) {
      throw this.invalid(`the report ends early at byte ${offset} (truncated?)`);
    }
  }

  private resume(buf: Buffer): number {
    switch (this.token) {
      case IN_CAPTURE:
        return this.continueCapture(buf, 0);
      case IN_STRING:
        return this.continueString(buf, 0);
      default:
        return this.continueWord(buf, 0);
    }
  }

  private close(c: number, at: number): void {
    const isArray = c === CLOSE_ARRAY;
    if (this.skip.length > 0) {
      if (this.skip.pop() !== isArray) throw this.unexpected(c, at);
    } else {
      const top = this.walk[this.walk.length - 1];
      if (!top || top.isArray !== isArray) throw this.unexpected(c, at);
      this.walk.pop();
      this.walkPath.pop();
    }
    this.valueDone();
  }

  private startValue(buf: Buffer, i: number, c: number): number {
    const skipping = this.skip.length > 0;
    const { match, key } = skipping ? { match: NO_MATCH, key: undefined } : this.locate();
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const isArray = c === OPEN_ARRAY;
      if (this.walk.length + this.skip.length + 1 > this.maxDepth) throw this.tooDeep();
      if (match.selected) {
        this.valuePath = this.pathTo(key);
        this.token = IN_CAPTURE;
        this.captureDepth = 0;
        this.captureInString = false;
        this.captureEscape = false;
        this.captureStart = this.base + i;
        this.captureBytes = 0;
        this.pieces = [];
        return this.continueCapture(buf, i);
      }
      if (match.prefix) {
        this.events.push({ kind: 'open', path: this.pathTo(key), type: isArray ? 'array' : 'object' });
        if (key !== undefined) this.walkPath.push(key);
        this.walk.push({ isArray, nodes: match.nodes, key: isArray ? 0 : '' });
      } else {
        this.skip.push(isArray);
      }
      this.expect = isArray ? EXPECT_VALUE_OR_END : EXPECT_KEY_OR_END;
      return i + 1;
    }
    const emits = match.selected || match.prefix;
    if (emits) this.valuePath = this.pathTo(key);
    if (c === QUOTE) return this.startString(buf, i + 1, emits ? STRING_VALUE : STRING_SKIP);
    if (WORD[c]) {
      this.token = IN_WORD;
      this.word = '';
      this.wordEmits = emits;
      return this.continueWord(buf, i);
    }
    throw this.unexpected(c, i);
  }

  private startString(buf: Buffer, i: number, role: number): number {
    this.token = IN_STRING;
    this.stringRole = role;
    this.stringState = 0;
    this.stringEscaped = false;
    this.pieces = [];
    return this.continueString(buf, i);
  }

  /** Validates string bytes (escapes, no raw control characters) up to the closing quote. */
  private continueString(buf: Buffer, from: number): number {
    const n = buf.length;
    let state = this.stringState;
    let i = from;
    for (; i < n; i++) {
      const c = buf[i]!;
      if (state === 0) {
        if (c === QUOTE) break;
        if (c === BACKSLASH) {
          state = 1;
          this.stringEscaped = true;
        } else if (c < 0x20) {
          throw this.invalid(`control character ${describeByte(c)} in a string at byte ${this.base + i} within bytes ${this.chunkStart}-${this.chunkEnd}`);
        }
      } else if (state === 1) {
        if (!ESCAPES[c]) throw this.unexpected(c, i);
        state = c === 0x75 ? 2 : 0;
      } else {
        if (!HEX[c]) throw this.unexpected(c, i);
        state = state === 5 ? 0 : state + 1;
      }
    }
    if (i === n) {
      this.stringState = state;
      if (this.stringRole !== STRING_SKIP) this.pieces.push(from === 0 ? buf : buf.subarray(from));
      return -1;
    }
    this.token = NO_TOKEN;
    if (this.stringRole !== STRING_SKIP) {
      const start = this.pieces.length > 0 ? 0 : from;
      const bytes = this.pieces.length > 0 ? Buffer.concat([...this.pieces, buf.subarray(0, i)]) : buf;
      const raw = bytes.toString('utf8', start, this.pieces.length > 0 ? bytes.length : i);
      this.pieces = [];
      const text = this.stringEscaped ? (JSON.parse(`"${raw}"`) as string) : raw;
      if (this.stringRole === STRING_KEY) {
        this.walk[this.walk.length - 1]!.key = text;
        this.expect = EXPECT_COLON;
        return i + 1;
      }
      this.events.push({ kind: 'value', path: this.valuePath, value: text });
      this.valueDone();
      return i + 1;
    }
    if (this.expect === EXPECT_KEY || this.expect === EXPECT_KEY_OR_END) this.expect = EXPECT_COLON;
    else this.valueDone();
    return i + 1;
  }

  private continueWord(buf: Buffer, from: number): number {
    const n = buf.length;
    let i = from;
    while (i < n && WORD[buf[i]!]) i++;
    this.word += buf.toString('latin1', from, i);
    if (i === n) return -1;
    this.finishWord(this.base + i);
    return i;
  }

  private finishWord(at: number): void {
    const word = this.word;
    let value: unknown;
    if (word === 'true') value = true;
    else if (word === 'false') value = false;
    else if (word === 'null') value = null;
    else if (NUMBER.test(word)) value = Number(word);
    else throw this.invalid(`unexpected '${word.slice(0, 40)}' before byte ${at} within bytes ${this.chunkStart}-${this.chunkEnd}`);
    this.token = NO_TOKEN;
    this.word = '';
    if (this.wordEmits) this.events.push({ kind: 'value', path: this.valuePath, value });
    this.valueDone();
  }

  /**
   * Finds the end of a selected container: brackets outside strings, nothing else. The hot loop of
   * a large report; validation is JSON.parse's job once the value is complete.
   */
  private continueCapture(buf: Buffer, from: number): number {
    const n = buf.length;
    const limit = this.maxDepth - this.walk.length - this.skip.length;
    let depth = this.captureDepth;
    let inString = this.captureInString;
    let i = from;
    if (this.captureEscape) {
      this.captureEscape = false;
      i++;
    }
    outer: while (i < n) {
      if (inString) {
        while (i < n) {
          const c = buf[i++]!;
          if (c === QUOTE) {
            inString = false;
            continue outer;
          }
          if (c === BACKSLASH) i++;
        }
        if (i > n) this.captureEscape = true;
        break;
      }
      const kind = CAPTURE_CLASS[buf[i++]!]!;
      if (kind === PLAIN) continue;
      if (kind === STRING_START) inString = true;
      else if (kind === OPENS) {
        if (++depth > limit) throw this.tooDeep();
      } else if (kind === CLOSES) {
        if (--depth === 0) {
          this.finishCapture(buf, from, i);
          return i;
        }
      } else {
        throw this.unexpected(buf[i - 1]!, i - 1);
      }
    }
    this.captureDepth = depth;
    this.captureInString = inString;
    this.pieces.push(from === 0 ? buf : buf.subarray(from));
    this.captureBytes += n - from;
    if (this.captureBytes > MAX_VALUE_BYTES) {
      throw this.invalid(`a single value larger than ${MAX_VALUE_BYTES / 1024 / 1024} MB starts at byte ${this.captureStart}; refusing to parse`);
    }
    return -1;
  }

  private finishCapture(buf: Buffer, from: number, end: number): void {
    this.token = NO_TOKEN;
    const text = this.pieces.length > 0 ? Buffer.concat([...this.pieces, buf.subarray(0, end)]).toString('utf8') : buf.toString('utf8', from, end);
    this.pieces = [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      // V8 names the position within the value (in characters); the file offset is close enough to find it.
      const position = /position (\d+)/.exec((err as Error).message);
      const at = position ? `near byte ${this.captureStart + Number(position[1])}` : `in the value starting at byte ${this.captureStart}`;
      throw this.invalid(`syntax error ${at} within bytes ${this.chunkStart}-${this.chunkEnd}`);
    }
    this.events.push({ kind: 'value', path: this.valuePath, value });
    this.valueDone();
  }
}

/**
 * Yields the selected values of a JSON file in document order. Malformed, truncated, empty or
 * too deeply nested input ends the iteration with a ReportError naming the file, the format,
 * the JSON path reached and the byte range that failed.
 */
export async function* streamJson(file: string, options: StreamJsonOptions): AsyncGenerator<JsonEvent> {
  const { name, format } = options;
  const scanner = new Scanner(compile(options.select), options.maxDepth ?? DEFAULT_MAX_DEPTH, name, format);
  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  let offset = 0;
  try {
    for await (const raw of input) {
      let chunk = raw as Buffer;
      let base = offset;
      if (offset === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        chunk = chunk.subarray(3); // UTF-8 BOM
        base = 3;
      }
      scanner.chunkStart = offset;
      offset += (raw as Buffer).length;
      scanner.chunkEnd = offset;
      scanner.feed(chunk, base);
      if (scanner.events.length > 0) {
        const events = scanner.events;
        scanner.events = [];
        yield* events;
      }
    }
    if (!scanner.sawContent) throw new ReportError(name, format, undefined, 'the report is empty');
    scanner.end(offset);
    if (scanner.events.length > 0) yield* scanner.events;
  } catch (err) {
    if (err instanceof ReportError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new ReportError(name, format, undefined, `cannot read the report (${code})`);
    }
    throw err;
  } finally {
    input.destroy();
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
