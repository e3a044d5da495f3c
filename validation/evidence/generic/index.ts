import { isIP } from 'node:net';
import { reportedHost } from '../../../discovery/connectors/nessus/host.js';
import { isObject, type Json } from '../../../discovery/connectors/common/json.js';
import { readHead } from '../../../discovery/connectors/common/head.js';
import { csvRows, sniffCsvHeader, type CsvColumns } from '../../../discovery/streams/csv.js';
import { streamJson } from '../../../discovery/streams/json.js';
import { EvidenceError, type EvidenceParser, type EvidenceParseOptions, type EvidenceRecord } from '../model.js';
import { compact, cveId, endpointOf, evidenceRecords, excerpt, firstLine, isoDateTime, jsonLines, tcpPort } from '../common.js';

// Our own format for pentest and breach-and-attack-simulation results, where tools share no
// export: one row (CSV) or object (a JSON array, or JSON lines) per test, with the fields of
// validation/evidence/README.md. Strict on purpose: a result or date the platform would have to
// guess at is an error naming the file, the line or record, and the field.

const CSV_FORMAT = 'generic-csv';
const JSON_FORMAT = 'generic-json';

const RESULTS = ['exploited', 'confirmed', 'not_exploitable'] as const;
type GenericResult = (typeof RESULTS)[number];

const COLUMNS = {
  asset: { names: ['asset'], required: true },
  vulnerability: { names: ['vulnerability'], required: true },
  result: { names: ['result'], required: true },
  testedAt: { names: ['tested_at'], required: true },
  port: { names: ['port'] },
  tool: { names: ['tool'] },
  title: { names: ['title'] },
  notes: { names: ['notes'] },
} satisfies CsvColumns<string>;

type Field = keyof typeof COLUMNS;
const FIELD_NAMES: Record<Field, string> = { asset: 'asset', vulnerability: 'vulnerability', result: 'result', testedAt: 'tested_at', port: 'port', tool: 'tool', title: 'title', notes: 'notes' };

const MAX_ID = 200;
/** DNS labels (underscores occur in internal names); 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const MAX_NOTES = 4096;

/** One test's fields as written (trimmed); '' when absent. */
type Row = Record<Field, string>;

function recordOf(row: Row, fail: (field: string, reason: string) => never): EvidenceRecord {
  const need = (field: Field): string => row[field] || fail(FIELD_NAMES[field], 'empty; required');
  const assetText = need('asset');
  const endpoint = endpointOf(assetText);
  if (!endpoint || (isIP(endpoint.host) === 0 && !HOST_NAME.test(endpoint.host))) {
    fail('asset', `${JSON.stringify(excerpt(assetText, 80))} is not a host name, IP address or URL`);
  }
  const asset = reportedHost({ target: endpoint!.host }, undefined)!;

  const rawVulnerability = need('vulnerability');
  if (rawVulnerability.length > MAX_ID || /\s/.test(rawVulnerability)) fail('vulnerability', `${JSON.stringify(excerpt(rawVulnerability, 80))} is not an id (no spaces, ${MAX_ID} characters at most)`);
  const vulnerability = cveId(rawVulnerability) ?? rawVulnerability;

  const rawResult = need('result');
  const result = rawResult.toLowerCase() as GenericResult;
  if (!RESULTS.includes(result)) fail('result', `${JSON.stringify(rawResult)} is not one of ${RESULTS.join(', ')}`);

  const rawTestedAt = need('testedAt');
  const testedAt = isoDateTime(rawTestedAt) ?? fail('tested_at', `${JSON.stringify(rawTestedAt)} is not an ISO 8601 date or date-time (2026-03-01, 2026-03-01T14:30:00Z)`);

  let port: string | undefined;
  if (row.port !== '') {
    const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(row.port);
    const n = m ? Number(m[1]) : 0;
    if (!m || n < 1 || n > 65535) fail('port', `${JSON.stringify(row.port)} is not a port (443, 443/tcp, 53/udp)`);
    port = `${n}/${(m![2] ?? 'tcp').toLowerCase()}`;
  } else {
    port = tcpPort(endpoint!.port, endpoint!.scheme);
  }

  return compact({
    asset,
    vulnerability,
    result,
    tool: row.tool || 'generic',
    testedAt,
    port,
    target: endpoint!.scheme ? assetText : undefined,
    title: row.title ? excerpt(row.title, 512) : undefined,
    detail: row.notes ? { notes: excerpt(row.notes, MAX_NOTES) } : undefined,
  });
}

/** A JSON object's fields as strings (numbers allowed for port); anything else is an error. */
function rowOf(o: Json, fail: (field: string, reason: string) => never): Row {
  const row = {} as Row;
  for (const field of Object.keys(COLUMNS) as Field[]) {
    const value = o[FIELD_NAMES[field]];
    if (value === undefined || value === null) row[field] = '';
    else if (typeof value === 'string') row[field] = value.trim();
    else if (typeof value === 'number' && field === 'port') row[field] = String(value);
    else fail(FIELD_NAMES[field], `expected a string, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return row;
}

async function* fromCsv(file: string, display: string): AsyncGenerator<EvidenceRecord> {
  for await (const { line, values } of csvRows(file, { format: CSV_FORMAT, columns: COLUMNS })) {
    if (Object.values(values).every((cell) => cell === '')) continue;
    yield recordOf(values, (field, reason) => {
      throw new EvidenceError(display, CSV_FORMAT, `line ${line}, column ${field}`, reason);
    });
  }
}

async function* fromJson(file: string, display: string): AsyncGenerator<EvidenceRecord> {
  const array = (await readHead(file)).replace(/^\uFEFF/, '').trimStart().startsWith('[');
  if (!array) {
    for await (const { line, value } of jsonLines(file, display, JSON_FORMAT)) {
      const fail = (field: string | undefined, reason: string): never => {
        throw new EvidenceError(display, JSON_FORMAT, `line ${line}${field ? `, ${field}` : ''}`, reason);
      };
      if (!isObject(value)) fail(undefined, 'expected a JSON object');
      yield recordOf(rowOf(value as Json, fail), fail);
    }
    return;
  }
  for await (const event of streamJson(file, { name: display, format: JSON_FORMAT, select: ['*'] })) {
    if (event.path.length === 0) continue;
    const where = `record ${(event.path[0] as number) + 1}`;
    const fail = (field: string | undefined, reason: string): never => {
      throw new EvidenceError(display, JSON_FORMAT, `${where}${field ? `, ${field}` : ''}`, reason);
    };
    if (event.kind !== 'value' || !isObject(event.value)) fail(undefined, 'expected a JSON object');
    yield recordOf(rowOf((event as { value: Json }).value, fail), fail);
  }
}

const DETECT_JSON_FIELDS = [/"vulnerability"\s*:/, /"result"\s*:/, /"tested_at"\s*:/, /"asset"\s*:/];

export const genericCsv: EvidenceParser = {
  format: CSV_FORMAT,
  description: 'Pentest / BAS results as CSV: asset, vulnerability, result, tested_at[, port, tool, title, notes]',
  detect: (head) => sniffCsvHeader(head, COLUMNS),
  parse(file, options: EvidenceParseOptions) {
    return evidenceRecords(file, CSV_FORMAT, (display) => fromCsv(file, display), options.displayName);
  },
};

export const genericJson: EvidenceParser = {
  format: JSON_FORMAT,
  description: 'Pentest / BAS results as a JSON array or JSON lines of {asset, vulnerability, result, tested_at[, port, tool, title, notes]}',
  detect(head) {
    const start = head.replace(/^\uFEFF/, '').trimStart();
    // The first record must show every required field: in the head, within its first line or object.
    const first = start.startsWith('[') ? start.slice(1).trimStart() : firstLine(start) ?? '';
    const object = first.startsWith('{') ? first.slice(0, first.indexOf('}') + 1 || undefined) : '';
    return object !== '' && DETECT_JSON_FIELDS.every((re) => re.test(object));
  },
  parse(file, options: EvidenceParseOptions) {
    return evidenceRecords(file, JSON_FORMAT, (display) => fromJson(file, display), options.displayName);
  },
};
