import fc from 'fast-check';
import type { Family, Seed } from './fuzz-seeds.js';

// Mutations of a seed report, as plain data so that a failing case prints (and shrinks) as what was
// done to which seed. Positions are any natural number, taken modulo the report's length.

/** A value written in place of another: what a broken or hostile exporter might put in a field. */
export type Payload =
  | { kind: 'deep-array' | 'deep-object'; depth: number }
  | { kind: 'long-string'; length: number }
  | { kind: 'text'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'literal'; text: 'null' | 'true' | 'false' | '{}' | '[]' | '""' };

export type Mutation =
  | { op: 'truncate'; at: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; length: number }
  | { op: 'nul'; at: number }
  | { op: 'bad-utf8'; at: number; sequence: number }
  | { op: 'duplicate'; from: number; length: number; to: number }
  | { op: 'bom' }
  | { op: 'line-endings'; to: 'crlf' | 'cr' | 'lf' }
  | { op: 'long-line'; at: number; length: number }
  | { op: 'replace-value'; nth: number; payload: Payload }
  /** The first `keep` bytes of this report followed by another format's report: a head that detection reads wrongly. */
  | { op: 'graft'; other: number; keep: number }
  | { op: 'xml'; attack: XmlAttack }
  | { op: 'csv'; attack: CsvAttack }
  /** 64 KiB of a pattern before the report: all that detection reads, made to trip backtracking. */
  | { op: 'hostile-head'; pattern: number };

/** Opening patterns, each repeated over the 64 KiB head that detection reads. */
export const HOSTILE_HEADS: readonly { start: string; repeat: string }[] = [
  { start: '<!DOCTYPE', repeat: ' ' },
  { start: '<!DOCTYPE x [', repeat: ' ]' },
  { start: '', repeat: '<?' },
  { start: '', repeat: '<!--' },
  { start: '', repeat: '<!DOCTYPE ' },
  { start: '', repeat: '<report ' },
  { start: '<bom ', repeat: 'xmlns ' },
  { start: '{"findings": [', repeat: ' ' },
  { start: '{', repeat: '"findingArn": "arn:aws:inspector2:' },
  { start: '', repeat: '"a,' },
  { start: 'IP,QID,', repeat: ',' },
  { start: '', repeat: '{"a":' },
];

export type XmlAttack = 'billion-laughs' | 'external-entity' | 'parameter-entity' | 'external-dtd' | 'undeclared-entity' | 'unclosed-cdata' | 'deep-elements' | 'processing-instruction';
export type CsvAttack = 'open-quote' | 'extra-column' | 'missing-column' | 'quote-in-cell' | 'many-columns' | 'lone-cr';

/** Byte sequences that are not UTF-8: a lone continuation, truncated leads, an overlong slash, a surrogate, 0xFF. */
export const BAD_UTF8: readonly number[][] = [[0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf4, 0x90, 0x80, 0x80]];

const position = fc.nat({ max: 1 << 20 });

const payload: fc.Arbitrary<Payload> = fc.oneof(
  fc.record({ kind: fc.constantFrom('deep-array' as const, 'deep-object' as const), depth: fc.integer({ min: 1, max: 100_000 }) }),
  fc.record({ kind: fc.constant('long-string' as const), length: fc.integer({ min: 1, max: 2_000_000 }) }),
  fc.record({ kind: fc.constant('text' as const), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('\u0000', '\\u0000', '\\ud800', '\ud800', '\u202e', '', ' ', '&amp;', '&#0;', '&#x10FFFF;', ']]>', '"', '\\', '\r\n')) }),
  fc.record({ kind: fc.constant('number' as const), text: fc.constantFrom('1e309', '-1e309', '-0', '1e-400', '123456789012345678901234567890', '0.1e', '01', 'NaN', 'Infinity', '-', '1.', '11') }),
  fc.record({ kind: fc.constant('literal' as const), text: fc.constantFrom('null' as const, 'true' as const, 'false' as const, '{}' as const, '[]' as const, '""' as const) }),
);

export function mutationArbitrary(family: Family, seeds: number): fc.Arbitrary<Mutation> {
  const generic: fc.Arbitrary<Mutation>[] = [
    fc.record({ op: fc.constant('truncate' as const), at: position }),
    fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
    fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 4096 }) }),
    fc.record({ op: fc.constant('nul' as const), at: position }),
    fc.record({ op: fc.constant('bad-utf8' as const), at: position, sequence: fc.nat({ max: BAD_UTF8.length - 1 }) }),
    fc.record({ op: fc.constant('duplicate' as const), from: position, length: fc.integer({ min: 1, max: 8192 }), to: position }),
    fc.constant({ op: 'bom' as const }),
    fc.record({ op: fc.constant('line-endings' as const), to: fc.constantFrom('crlf' as const, 'cr' as const, 'lf' as const) }),
    fc.record({ op: fc.constant('long-line' as const), at: position, length: fc.integer({ min: 1, max: 4_000_000 }) }),
    fc.record({ op: fc.constant('replace-value' as const), nth: fc.nat({ max: 400 }), payload }),
    fc.record({ op: fc.constant('graft' as const), other: fc.nat({ max: seeds - 1 }), keep: fc.nat({ max: 70_000 }) }),
    fc.record({ op: fc.constant('hostile-head' as const), pattern: fc.nat({ max: HOSTILE_HEADS.length - 1 }) }),
  ];
  if (family === 'xml') {
    generic.push(fc.record({ op: fc.constant('xml' as const), attack: fc.constantFrom<XmlAttack>('billion-laughs', 'external-entity', 'parameter-entity', 'external-dtd', 'undeclared-entity', 'unclosed-cdata', 'deep-elements', 'processing-instruction') }));
  }
  if (family === 'csv') {
    generic.push(fc.record({ op: fc.constant('csv' as const), attack: fc.constantFrom<CsvAttack>('open-quote', 'extra-column', 'missing-column', 'quote-in-cell', 'many-columns', 'lone-cr') }));
  }
  return fc.oneof(...generic);
}

const splice = (bytes: Buffer, at: number, remove: number, insert: Buffer | string) =>
  Buffer.concat([bytes.subarray(0, at), typeof insert === 'string' ? Buffer.from(insert) : insert, bytes.subarray(at + remove)]);

/** The payload written as the family writes a value. */
export function render(p: Payload, family: Family): string {
  switch (p.kind) {
    case 'deep-array':
    case 'deep-object': {
      if (family === 'xml') return '<a>'.repeat(p.depth) + '</a>'.repeat(p.depth);
      const open = p.kind === 'deep-array' ? '[' : '{"a":';
      const close = p.kind === 'deep-array' ? ']' : '}';
      const nested = open.repeat(p.depth) + (p.kind === 'deep-object' ? '1' : '') + close.repeat(p.depth);
      return family === 'json' ? nested : `"${nested.replaceAll('"', '""')}"`;
    }
    case 'long-string':
      return family === 'json' || family === 'csv' ? `"${'A'.repeat(p.length)}"` : 'A'.repeat(p.length);
    case 'text':
      // A text starting with a backslash is a JSON escape written as is (`\u0000`, a lone `\ud800`).
      if (family === 'json') return p.text.startsWith('\\') ? `"${p.text}"` : JSON.stringify(p.text);
      if (family === 'csv') return `"${p.text.replaceAll('"', '""')}"`;
      return p.text;
    default:
      return p.text;
  }
}

/** Where values sit: JSON scalars after a colon or in a list, XML text and attribute values, CSV cells. */
function valueSpans(text: string, family: Family): [number, number][] {
  const spans: [number, number][] = [];
  const pattern = family === 'json' ? /(?<=[:[,]\s*)("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null)/g
    : family === 'xml' ? /(?<=>)([^<]+)(?=<)|(?<==")([^"]*)(?=")/g
    : /("(?:[^"]|"")*"|[^,;\r\n"]+)/g;
  for (const m of text.matchAll(pattern)) {
    spans.push([m.index, m.index + m[0].length]);
    if (spans.length > 2000) break;
  }
  return spans;
}

const XML_DOCTYPES: Record<Exclude<XmlAttack, 'unclosed-cdata' | 'deep-elements' | 'processing-instruction'>, (root: string) => string> = {
  'billion-laughs': (root) => `<!DOCTYPE ${root} [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>`,
  'external-entity': (root) => `<!DOCTYPE ${root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`,
  'parameter-entity': (root) => `<!DOCTYPE ${root} [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>`,
  'external-dtd': (root) => `<!DOCTYPE ${root} SYSTEM "http://127.0.0.1:9/evil.dtd">`,
  'undeclared-entity': () => '',
};

function xmlAttack(bytes: Buffer, attack: XmlAttack): Buffer {
  const text = bytes.toString('utf8');
  const rootAt = text.search(/<[A-Za-z_]/);
  if (rootAt < 0) return bytes;
  const root = /<([A-Za-z_][\w:.-]*)/.exec(text.slice(rootAt))![1]!;
  const rootTag = /^<[^>]*>/.exec(text.slice(rootAt))?.[0];
  if (rootTag === undefined) return bytes; // cut inside the root tag
  const body = text.slice(rootAt + rootTag.length);
  // The reference lands in the first text the connector is likely to read.
  const withRef = (ref: string) => body.replace(/>([^<\s][^<]*)</, `>$1${ref}<`);
  const prolog = text.slice(0, rootAt).replace(/<!DOCTYPE[^>]*>/, '');
  switch (attack) {
    case 'billion-laughs':
      return Buffer.from(prolog + XML_DOCTYPES[attack](root) + rootTag + withRef('&i;'));
    case 'external-entity':
      return Buffer.from(prolog + XML_DOCTYPES[attack](root) + rootTag + withRef('&xxe;'));
    case 'parameter-entity':
    case 'external-dtd':
      return Buffer.from(prolog + XML_DOCTYPES[attack](root) + rootTag + body);
    case 'undeclared-entity':
      return Buffer.from(prolog + rootTag + withRef('&nope;'));
    case 'unclosed-cdata':
      return Buffer.from(prolog + rootTag + withRef('<![CDATA[never closed'));
    case 'deep-elements':
      return Buffer.from(prolog + rootTag + '<x>'.repeat(100_000) + body);
    case 'processing-instruction':
      return Buffer.from(prolog + rootTag + withRef('<?php system("id"); ?>'));
  }
}

function csvAttack(bytes: Buffer, attack: CsvAttack): Buffer {
  const lines = bytes.toString('utf8').split('\n');
  const last = Math.max(0, lines.length - 2);
  switch (attack) {
    case 'open-quote':
      lines[last] = `${lines[last]},"never closed`;
      break;
    case 'extra-column':
      lines[last] = `${lines[last]},extra`;
      break;
    case 'missing-column':
      lines[last] = lines[last]!.replace(/,[^,]*$/, '');
      break;
    case 'quote-in-cell':
      lines[last] = lines[last]!.replace(/,/, ',a"b"c');
      break;
    case 'many-columns':
      lines[last] = `${lines[last]}${','.repeat(200_000)}`;
      break;
    case 'lone-cr':
      return Buffer.from(lines.join('\r'));
  }
  return Buffer.from(lines.join('\n'));
}

/** The seed with the mutations applied in order. */
export function mutate(seed: Seed, family: Family, mutations: readonly Mutation[], seeds: readonly Seed[]): Buffer {
  let bytes = seed.bytes;
  for (const m of mutations) {
    const at = (n: number) => (bytes.length === 0 ? 0 : n % (bytes.length + 1));
    switch (m.op) {
      case 'truncate':
        bytes = bytes.subarray(0, at(m.at));
        break;
      case 'flip': {
        if (bytes.length === 0) break;
        const i = m.at % bytes.length;
        bytes = Buffer.from(bytes);
        bytes[i] = bytes[i]! ^ (1 << m.bit);
        break;
      }
      case 'insert':
        bytes = splice(bytes, at(m.at), 0, Buffer.from(m.bytes));
        break;
      case 'delete':
        bytes = splice(bytes, at(m.at), m.length, '');
        break;
      case 'nul':
        bytes = splice(bytes, at(m.at), 0, Buffer.from([0]));
        break;
      case 'bad-utf8':
        bytes = splice(bytes, at(m.at), 0, Buffer.from(BAD_UTF8[m.sequence]!));
        break;
      case 'duplicate': {
        const from = at(m.from);
        bytes = splice(bytes, at(m.to), 0, Buffer.from(bytes.subarray(from, from + m.length)));
        break;
      }
      case 'bom':
        bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
        break;
      case 'line-endings': {
        const lf = bytes.toString('latin1').replace(/\r\n?/g, '\n');
        bytes = Buffer.from(m.to === 'lf' ? lf : lf.replace(/\n/g, m.to === 'crlf' ? '\r\n' : '\r'), 'latin1');
        break;
      }
      case 'long-line':
        bytes = splice(bytes, at(m.at), 0, Buffer.alloc(m.length, 0x41));
        break;
      case 'replace-value': {
        const text = bytes.toString('utf8');
        const spans = valueSpans(text, family);
        if (spans.length === 0) break;
        const [start, end] = spans[m.nth % spans.length]!;
        bytes = Buffer.from(text.slice(0, start) + render(m.payload, family) + text.slice(end));
        break;
      }
      case 'graft': {
        const other = seeds[m.other % seeds.length]!;
        bytes = Buffer.concat([bytes.subarray(0, at(m.keep)), other.bytes]);
        break;
      }
      case 'xml':
        bytes = xmlAttack(bytes, m.attack);
        break;
      case 'csv':
        bytes = csvAttack(bytes, m.attack);
        break;
      case 'hostile-head': {
        const { start, repeat } = HOSTILE_HEADS[m.pattern % HOSTILE_HEADS.length]!;
        const head = start + repeat.repeat(Math.ceil((64 * 1024 - start.length) / repeat.length));
        bytes = Buffer.concat([Buffer.from(head), bytes]);
        break;
      }
    }
  }
  return bytes;
}
