import { createReadStream } from 'node:fs';
import { ReportError } from '../model.js';

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
  /**
   * For some `select` patterns, the members of an object value to build: the value arrives as an
   * object holding only those (as JSON.parse would build them, the last of duplicates winning).
   * The rest is still validated, but never decoded: on large reports, building members nobody
   * reads costs more than everything else. Values that are not objects arrive whole.
   */
  keep?: Readonly<Record<string, readonly string[]>>;
}

export const DEFAULT_MAX_DEPTH = 256;

/**
 * Member names to build, matched against the raw key bytes: decoding every key of every finding
 * just to drop most of them would cost more than the rest of the parse.
 */
class KeySet {
  /** By byte length: the names of that length, as bytes. */
  private readonly byLength: { bytes: Uint8Array; name: string }[][] = [];
  readonly names: ReadonlySet<string>;

  constructor(names: Iterable<string>) {
    this.names = new Set(names);
    for (const name of this.names) {
      // Kept members are assigned to a plain object: this one would set its prototype instead.
      if (name === '__proto__') throw new Error('json-stream: "__proto__" cannot be kept');
      const bytes = Buffer.from(name, 'utf8');
      (this.byLength[bytes.length] ??= []).push({ bytes, name });
    }
  }

  /** The name spelt by buf[start, end) when it is kept; an escaped key is decoded first. */
  find(buf: Uint8Array, start: number, end: number, escaped: boolean): string | undefined {
    if (escaped) {
      const name = JSON.parse(`"${Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8')}"`) as string;
      return this.names.has(name) ? name : undefined;
    }
    const candidates = this.byLength[end - start];
    if (candidates === undefined) return undefined;
    for (let k = 0; k < candidates.length; k++) {
      const { bytes, name } = candidates[k]!;
      let j = 0;
      while (j < bytes.length && bytes[j] === buf[start + j]) j++;
      if (j === bytes.length) return name;
    }
    return undefined;
  }
}

/** Decoded member names by their bytes, for the handful every value repeats; bounded against hostile input. */
class NameCache {
  private readonly byLength: { bytes: Uint8Array; name: string }[][] = [];
  private size = 0;

  name(buf: Buffer, start: number, end: number, escaped: boolean): string {
    const length = end - start;
    const candidates = escaped ? undefined : this.byLength[length];
    if (candidates !== undefined) {
      for (let k = 0; k < candidates.length; k++) {
        const { bytes, name } = candidates[k]!;
        let j = 0;
        while (j < length && bytes[j] === buf[start + j]) j++;
        if (j === length) return name;
      }
    }
    const name = decodeString(buf, start, end, escaped);
    if (!escaped && length <= 64 && this.size < 256) {
      (this.byLength[length] ??= []).push({ bytes: Uint8Array.prototype.slice.call(buf, start, end), name });
      this.size++;
    }
    return name;
  }
}

interface TrieNode {
  exact: Map<string, TrieNode>;
  wildcard?: TrieNode;
  selected: boolean;
  keep?: KeySet;
}

const newNode = (): TrieNode => ({ exact: new Map(), selected: false });

function compile(patterns: readonly string[], keep: StreamJsonOptions['keep'] = {}): TrieNode {
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
    const names = Object.hasOwn(keep, pattern) ? keep[pattern] : undefined;
    if (names) node.keep = new KeySet(names);
  }
  return root;
}

/** Where a value sits relative to the selection. */
interface Match {
  nodes: TrieNode[];
  selected: boolean;
  /** Some selected path lies below this value. */
  prefix: boolean;
  /** The members to build when the value is an object; undefined: all of it. */
  keep?: KeySet;
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
  const selected = found.filter((n) => n.selected);
  // Two patterns selecting the same value: it carries what either keeps, or all of it if one keeps all.
  const keep = selected.length === 0 || selected.some((n) => !n.keep) ? undefined
    : selected.length === 1 ? selected[0]!.keep
    : new KeySet(selected.flatMap((n) => [...n.keep!.names]));
  return {
    nodes: found,
    selected: selected.length > 0,
    prefix: found.some((n) => n.wildcard !== undefined || n.exact.size > 0),
    keep,
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


// ---------------------------------------------------------------------------------------------
// Kept members: one pass over a selected object that validates all of it as strictly as JSON.parse
// and builds only the members asked for. Works on one contiguous buffer; running out of bytes
// returns INCOMPLETE (the caller gathers the rest of the value and runs it again). Iterative, with
// explicit stacks: nesting is bounded by maxDepth, never by the call stack.

const INCOMPLETE = -1;
const MALFORMED_VALUE = -2;

/**
 * The value is not valid JSON (or nests too deep). No message is made here: the scanner then
 * captures the value whole, as without `keep`, so the error reported is the one it always was.
 */
class ProjectError {}
const MALFORMED = new ProjectError();

/** Bytes that end the plain run of a string: the quote, the backslash, control characters. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;
const DIGIT = new Uint8Array(256);
for (const c of '0123456789') DIGIT[c.charCodeAt(0)] = 1;

// Strings are most of a report's bytes. Their plain runs are scanned four bytes at a time through
// an Int32Array view of the buffer, with the classic has-zero-byte bit trick (a word has a quote,
// a backslash or a control character); the word that has one is finished byte by byte, so the
// byte order of the platform does not matter.
let words: Int32Array = new Int32Array(0);
let wordsOf: Uint8Array | undefined;
/** buf index + wordShift = offset from the first aligned byte the view starts at. */
let wordShift = 0;

function bindWords(buf: Uint8Array): void {
  if (buf === wordsOf) return;
  const start = buf.byteOffset & ~3;
  const end = (buf.byteOffset + buf.length) & ~3;
  words = new Int32Array(buf.buffer, start, Math.max(0, end - start) >> 2);
  wordShift = buf.byteOffset - start;
  wordsOf = buf;
}

/** The first byte at or after i (before n) that ends a string's plain run, or n. */
function plainRun(buf: Uint8Array, i: number, n: number): number {
  const shift = wordShift;
  while (((i + shift) & 3) !== 0) {
    if (i >= n || STRING_STOP[buf[i]!] !== 0) return i;
    i++;
  }
  let w = (i + shift) >> 2;
  const last = (n + shift) >> 2;
  const view = words;
  while (w < last) {
    const x = view[w]!;
    const q = x ^ 0x22222222;
    const b = x ^ 0x5c5c5c5c;
    if (((((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b) | ((x - 0x20202020) & ~x)) & 0x80808080) !== 0) break;
    w++;
  }
  i = (w << 2) - shift;
  while (i < n && STRING_STOP[buf[i]!] === 0) i++;
  return i;
}

/** Whitespace from i: pretty-printed reports indent every line, so aligned runs of spaces go a word at a time. */
function spaceRun(buf: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = buf[i]!;
    if (c === 0x20) {
      if (((i + wordShift) & 3) === 0) {
        let w = (i + wordShift) >> 2;
        const last = (n + wordShift) >> 2;
        if (w < last && words[w] === 0x20202020) {
          do w++;
          while (w < last && words[w] === 0x20202020);
          i = (w << 2) - wordShift;
          continue;
        }
      }
      i++;
    } else if (c === 0x0a || c === 0x0d || c === 0x09) {
      i++;
    } else {
      break;
    }
  }
  return i;
}

const POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * The value of a valid JSON number in buf[start, end). Up to 15 digits and no exponent, the integer
 * of its digits divided by a power of ten up to 10^22: both exact, so the one rounding is the
 * correctly rounded result Number() gives. Anything else goes to Number().
 */
function numberAt(buf: Buffer, start: number, end: number): number {
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  let mantissa = 0;
  let digits = 0;
  let decimals = -1;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x2e) decimals = 0;
    else if (DIGIT[c] === 1) {
      mantissa = mantissa * 10 + (c - 0x30);
      digits++;
      if (decimals >= 0) decimals++;
    } else break;
  }
  if (i < end || digits > 15 || decimals > 22) return Number(buf.toString('latin1', start, end));
  const value = decimals > 0 ? mantissa / POWERS_OF_TEN[decimals]! : mantissa;
  return negative ? -value : value;
}

/** Set by stringEnd: the string just scanned holds a backslash escape. */
let stringEscaped = false;

/**
 * The rest of a string from a byte its plain run stopped at (quote, backslash, control character):
 * the index just after the closing quote.
 */
function stringEnd(buf: Uint8Array, i: number, n: number): number {
  for (;;) {
    if (i >= n) return INCOMPLETE;
    const c = buf[i]!;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) throw MALFORMED; // a raw control character
    stringEscaped = true;
    if (i + 1 >= n) return INCOMPLETE;
    const e = buf[i + 1]!;
    if (e === 0x75) {
      for (let k = 2; k < 6; k++) {
        if (i + k >= n) return INCOMPLETE;
        if (HEX[buf[i + k]!] === 0) throw MALFORMED;
      }
      i += 6;
    } else if (ESCAPES[e] === 1) {
      i += 2;
    } else {
      throw MALFORMED;
    }
    i = plainRun(buf, i, n);
  }
}

/** A number per the JSON grammar, from its first byte to just after it. */
function scanNumber(buf: Uint8Array, i: number, n: number): number {
  if (buf[i] === 0x2d) i++;
  if (i >= n) return INCOMPLETE;
  if (buf[i] === 0x30) i++;
  else if (DIGIT[buf[i]!] === 1) while (++i < n && DIGIT[buf[i]!] === 1);
  else throw MALFORMED;
  if (i >= n) return INCOMPLETE;
  if (buf[i] === 0x2e) {
    if (++i >= n) return INCOMPLETE;
    if (DIGIT[buf[i]!] === 0) throw MALFORMED;
    while (++i < n && DIGIT[buf[i]!] === 1);
    if (i >= n) return INCOMPLETE;
  }
  if (buf[i] === 0x65 || buf[i] === 0x45) {
    if (++i >= n) return INCOMPLETE;
    if (buf[i] === 0x2b || buf[i] === 0x2d) i++;
    if (i >= n) return INCOMPLETE;
    if (DIGIT[buf[i]!] === 0) throw MALFORMED;
    while (++i < n && DIGIT[buf[i]!] === 1);
    if (i >= n) return INCOMPLETE;
  }
  return i;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function scanLiteral(buf: Uint8Array, i: number, n: number, word: Uint8Array): number {
  for (let k = 0; k < word.length; k++, i++) {
    if (i >= n) return INCOMPLETE;
    if (buf[i] !== word[k]) throw MALFORMED;
  }
  return i;
}

/** Containers open below the projected object, innermost last: 1 for an array. Grown on demand. */
let openArrays = new Uint8Array(64);
const openValues: unknown[] = [];
const openKeys: string[] = [];

function reserve(size: number): void {
  if (size < openArrays.length) return;
  const grown = new Uint8Array(Math.max(size + 1, openArrays.length * 2));
  grown.set(openArrays);
  openArrays = grown;
}

/** Set by memberName: where the name's bytes are. */
let nameStart = 0;
let nameEnd = 0;

/** `"name" :` and the space after it, from the opening quote; n when the bytes run out. */
function memberName(buf: Uint8Array, i: number, n: number): number {
  if (i >= n) return n;
  if (buf[i] !== QUOTE) throw MALFORMED;
  nameStart = ++i;
  while (i < n && STRING_STOP[buf[i]!] === 0) i++;
  if (buf[i] === QUOTE) {
    stringEscaped = false;
    i++;
  } else {
    stringEscaped = false;
    i = stringEnd(buf, i, n);
    if (i < 0) return n;
  }
  nameEnd = i - 1;
  i = spaceRun(buf, i, n);
  if (i >= n) return n;
  if (buf[i] !== COLON) throw MALFORMED;
  i++;
  i = spaceRun(buf, i, n);
  return i;
}

type Slicer = (buf: Buffer, start: number, end: number) => string;
// Buffer#toString checks its arguments and looks the encoding up on every call; with ~20 strings
// a finding that is a good part of the decoding, so the underlying slice is used where there is one.
const utf8Slice: Slicer = typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === 'function'
  ? (buf, start, end) => (buf as Buffer & { utf8Slice: (s: number, e: number) => string }).utf8Slice(start, end)
  : (buf, start, end) => buf.toString('utf8', start, end);

/** The text of a string's bytes [start, end), escapes resolved. */
function decodeString(buf: Buffer, start: number, end: number, escaped: boolean): string {
  return escaped ? (JSON.parse(utf8Slice(buf, start - 1, end + 1)) as string) : utf8Slice(buf, start, end);
}

/** A member as JSON.parse sets it: `__proto__` too is an own property, not the prototype. */
function setMember(object: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__') Object.defineProperty(object, name, { value, writable: true, enumerable: true, configurable: true });
  else object[name] = value;
}

/** A member name: the same few recur in every value, so they are matched as bytes, not decoded each time. */
const keyCache = new NameCache();

/** Set by project: the object it built. */
let projected: Record<string, unknown> = {};

/**
 * Validates the object starting at buf[i] (a `{` at nesting 1 of `limit`) as strictly as
 * JSON.parse, and builds the members `keep` names as JSON.parse would. Returns the index just
 * after it, or INCOMPLETE. One loop with explicit stacks: per-token calls would cost more than
 * the bytes, and nesting is bounded by `limit`, never by the call stack.
 */
function project(buf: Buffer, i: number, n: number, limit: number, keep: KeySet): number {
  const out: Record<string, unknown> = {};
  bindWords(buf);
  i++;
  i = spaceRun(buf, i, n);
  if (i >= n) return INCOMPLETE;
  if (buf[i] !== CLOSE_OBJECT) {
    let depth = 1;
    let top = 0;
    for (;;) {
      // A member of the projected object starts at i.
      i = memberName(buf, i, n);
      if (i >= n) return INCOMPLETE;
      const name = keep.find(buf, nameStart, nameEnd, stringEscaped);
      const building = name !== undefined;
      let value: unknown;
      value: for (;;) {
        // A value starts at i.
        if (i >= n) return INCOMPLETE;
        let c = buf[i]!;
        if (c === QUOTE) {
          const start = ++i;
          i = plainRun(buf, i, n);
          if (buf[i] === QUOTE) {
            i++;
            if (building) value = utf8Slice(buf, start, i - 1);
          } else {
            stringEscaped = false;
            i = stringEnd(buf, i, n);
            if (i < 0) return INCOMPLETE;
            if (building) value = decodeString(buf, start, i - 1, stringEscaped);
          }
        } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
          if (++depth > limit) throw MALFORMED;
          const isArray = c === OPEN_ARRAY;
          if (top >= openArrays.length) reserve(top);
          openArrays[top] = isArray ? 1 : 0;
          if (building) openValues[top] = isArray ? [] : {};
          top++;
          i++;
          i = spaceRun(buf, i, n);
          if (i >= n) return INCOMPLETE;
          c = buf[i]!;
          if (c === (isArray ? CLOSE_ARRAY : CLOSE_OBJECT)) {
            top--;
            depth--;
            i++;
            if (building) value = openValues[top];
          } else if (isArray) {
            continue;
          } else {
            i = memberName(buf, i, n);
            if (building && i < n) openKeys[top - 1] = keyCache.name(buf, nameStart, nameEnd, stringEscaped);
            continue;
          }
        } else if (c === 0x2d || DIGIT[c] === 1) {
          const start = i;
          i = scanNumber(buf, i, n);
          if (i < 0) return INCOMPLETE;
          if (building) value = numberAt(buf, start, i);
        } else if (c === 0x74) {
          i = scanLiteral(buf, i, n, TRUE);
          value = true;
        } else if (c === 0x66) {
          i = scanLiteral(buf, i, n, FALSE);
          value = false;
        } else if (c === 0x6e) {
          i = scanLiteral(buf, i, n, NULL);
          value = null;
        } else {
          throw MALFORMED;
        }
        if (i < 0) return INCOMPLETE;
        // A value ended just before i: what follows it in the containers it closes.
        for (;;) {
          if (depth === 1) break value;
          const inArray = openArrays[top - 1] === 1;
          if (building) {
            const parent = openValues[top - 1];
            if (inArray) (parent as unknown[]).push(value);
            else setMember(parent as Record<string, unknown>, openKeys[top - 1]!, value);
          }
          i = spaceRun(buf, i, n);
          if (i >= n) return INCOMPLETE;
          c = buf[i]!;
          if (c === COMMA) {
            i++;
            i = spaceRun(buf, i, n);
            if (!inArray) {
              i = memberName(buf, i, n);
              if (building && i < n) openKeys[top - 1] = keyCache.name(buf, nameStart, nameEnd, stringEscaped);
            }
            continue value;
          }
          if (c !== (inArray ? CLOSE_ARRAY : CLOSE_OBJECT)) throw MALFORMED;
          top--;
          depth--;
          i++;
          if (building) value = openValues[top];
        }
      }
      if (building) out[name] = value;
      i = spaceRun(buf, i, n);
      if (i >= n) return INCOMPLETE;
      if (buf[i] === CLOSE_OBJECT) break;
      if (buf[i] !== COMMA) throw MALFORMED;
      i++;
      i = spaceRun(buf, i, n);
    }
  }
  projected = out;
  return i + 1;
}

/** One selected value (a finding, a header) is KBs; past this the input is corrupt or hostile. */
const MAX_VALUE_BYTES = 256 * 1024 * 1024;
/**
 * One string, as written between its quotes: like a CSV record (16 Mi characters) and an XML element
 * (32 Mi), well past any real description or plugin output. Building a 60 MB string took 450 MB of RSS.
 */
export const MAX_STRING_BYTES = 16 * 1024 * 1024;

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
 * assembling values token by token. A selected object with `keep` members is instead validated and
 * projected in one pass (project()); only if that fails is it captured whole as above, so malformed
 * input is reported exactly as without `keep`.
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
  /** Absolute offset of the opening quote of the string under way (walked, skipped or captured). */
  private stringStart = 0;
  private word = '';
  private wordEmits = false;
  /** Path of the scalar or captured value under way, when it is emitted. */
  private valuePath: JsonPath = [];
  private captureDepth = 0;
  private captureInString = false;
  private captureEscape = false;
  private captureStart = 0;
  private captureBytes = 0;
  /** The members to build of the value being captured; undefined: all of it. */
  private captureKeep: KeySet | undefined;

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

  private stringTooLong(): ReportError {
    const where = this.currentPath();
    return new ReportError(this.name, this.format, undefined,
      `a string longer than ${MAX_STRING_BYTES / 1024 / 1024} MiB starts at byte ${this.stringStart}${where ? ` (after ${where})` : ''}; refusing to parse`);
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
        let keep = isArray ? undefined : match.keep;
        if (keep) {
          // The common case: the whole object is in this chunk, and one pass validates and builds it.
          const end = this.project(buf, i, buf.length, keep);
          if (end >= 0) {
            this.events.push({ kind: 'value', path: this.valuePath, value: projected });
            this.valueDone();
            return end;
          }
          if (end === MALFORMED_VALUE) keep = undefined;
        }
        this.captureKeep = keep;
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
    this.stringStart = this.base + i - 1;
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
      if (this.base + n - this.stringStart - 1 > MAX_STRING_BYTES) throw this.stringTooLong();
      if (this.stringRole !== STRING_SKIP) this.pieces.push(from === 0 ? buf : buf.subarray(from));
      return -1;
    }
    if (this.base + i - this.stringStart - 1 > MAX_STRING_BYTES) throw this.stringTooLong();
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
    // Where the string under way opened in this chunk; -1: in an earlier one (this.stringStart).
    let stringOpen = -1;
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
            // Only a string that began in an earlier chunk (256 KiB) can be near the limit.
            if (stringOpen < 0 && this.base + i - this.stringStart - 2 > MAX_STRING_BYTES) throw this.stringTooLong();
            continue outer;
          }
          if (c === BACKSLASH) i++;
        }
        if (i > n) this.captureEscape = true;
        break;
      }
      const kind = CAPTURE_CLASS[buf[i++]!]!;
      if (kind === PLAIN) continue;
      if (kind === STRING_START) {
        inString = true;
        stringOpen = i - 1;
      } else if (kind === OPENS) {
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
    if (inString) {
      if (stringOpen >= 0) this.stringStart = this.base + stringOpen;
      if (this.base + n - this.stringStart - 1 > MAX_STRING_BYTES) throw this.stringTooLong();
    }
    this.pieces.push(from === 0 ? buf : buf.subarray(from));
    this.captureBytes += n - from;
    if (this.captureBytes > MAX_VALUE_BYTES) {
      throw this.invalid(`a single value larger than ${MAX_VALUE_BYTES / 1024 / 1024} MB starts at byte ${this.captureStart}; refusing to parse`);
    }
    return -1;
  }

  /** project() over buf[i, n): the index after the value, INCOMPLETE, or MALFORMED_VALUE. */
  private project(buf: Buffer, i: number, n: number, keep: KeySet): number {
    try {
      return project(buf, i, n, this.maxDepth - this.walk.length - this.skip.length, keep);
    } catch (err) {
      if (err === MALFORMED) return MALFORMED_VALUE;
      throw err;
    }
  }

  private finishCapture(buf: Buffer, from: number, end: number): void {
    this.token = NO_TOKEN;
    const keep = this.captureKeep;
    let bytes: Buffer | undefined;
    if (keep) {
      // A value that straddled chunks: assembled, it is projected like the others.
      this.captureKeep = undefined;
      bytes = this.pieces.length > 0 ? Buffer.concat([...this.pieces, buf.subarray(0, end)]) : buf.subarray(from, end);
      if (this.project(bytes, 0, bytes.length, keep) === bytes.length) {
        this.pieces = [];
        this.events.push({ kind: 'value', path: this.valuePath, value: projected });
        this.valueDone();
        return;
      }
    }
    const text = bytes ? bytes.toString('utf8') : this.pieces.length > 0 ? Buffer.concat([...this.pieces, buf.subarray(0, end)]).toString('utf8') : buf.toString('utf8', from, end);
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
  for await (const events of streamJsonBatches(file, options)) yield* events;
}

/**
 * streamJson, a chunk's events at a time: for a consumer of millions of small values, one
 * asynchronous step per event costs more than handling the event.
 */
export async function* streamJsonBatches(file: string, options: StreamJsonOptions): AsyncGenerator<readonly JsonEvent[]> {
  const { name, format } = options;
  const scanner = new Scanner(compile(options.select, options.keep), options.maxDepth ?? DEFAULT_MAX_DEPTH, name, format);
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
        yield events;
      }
    }
    if (!scanner.sawContent) throw new ReportError(name, format, undefined, 'the report is empty');
    scanner.end(offset);
    if (scanner.events.length > 0) yield scanner.events;
  } catch (err) {
    if (err instanceof ReportError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new ReportError(name, format, undefined, 'is a directory');
    if (code === 'ENOENT' || code === 'EACCES') {
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
