import { reportedHost } from '../../../discovery/connectors/nessus/host.js';
import { isObject, type Json } from '../../../discovery/connectors/common/json.js';
import { readHead } from '../../../discovery/connectors/common/head.js';
import { streamJson } from '../../../discovery/streams/json.js';
import { EvidenceError, type EvidenceParser, type EvidenceParseOptions, type EvidenceRecord } from '../model.js';
import {
  compact, cveId, cweId, endpointOf, evidenceRecords, excerpt, excerpts, fallbackTime, ipAddress, isoDateTime, jsonLines,
  portNumber, skipper, tcpPort, text, type Endpoint,
} from '../common.js';

// Nuclei's JSON output: one result object per line (`-jsonl`, `-json` before v3), or a JSON array
// of them (`-je`). A line is a template's match, or with `-ms` (matcher status) also a template
// that ran and did not match (`matcher-status: false`): attempted, not exploitable. One record
// per CVE the template names, else one for the template (`nuclei:<template-id>`).

const FORMAT = 'nuclei';

const TEMPLATE_ID = /"(?:template-id|templateID)"\s*:\s*"/;
const INFO = /"info"\s*:\s*\{/;

/** `template-id` from Nuclei v2.5 on; `templateID` and `matched` before it. */
const templateIdOf = (o: Json): string | undefined => text(o['template-id']) ?? text(o.templateID);

function listOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  return typeof value === 'string' ? value.split(',') : [];
}

/**
 * The host and port a result is about. The host: from `host`, else `matched-at`, else `url`
 * (Nuclei writes a URL, `host:port` or a bare name in each, and some results have only one);
 * the IP from `ip`. The port: `port`, else one written in `matched-at`, `host` or `url` (a
 * network template's `matched-at` is `host:22` while its `host` is the scanned URL), else the
 * scheme's usual port.
 */
function placeOf(o: Json): { asset: EvidenceRecord['asset'] | undefined; port?: string; target?: string } {
  const matchedAt = text(o['matched-at']) ?? text(o.matched);
  const endpoints = [matchedAt, text(o.host), text(o.url)]
    .map((v) => endpointOf(v?.replace(/^\/(?=[a-z][a-z0-9+.-]*:\/\/)/i, ''))) // `url` is sometimes `/http://host/`
    .filter((e): e is Endpoint => e !== undefined);
  const named = endpointOf(text(o.host)) ?? endpoints[0];
  const asset = reportedHost({ target: named?.host, ip: ipAddress(o.ip) }, undefined);
  const explicit = portNumber(o.port) ?? endpoints.find((e) => e.port !== undefined)?.port;
  const scheme = text(o.scheme) ?? endpoints.find((e) => e.scheme !== undefined)?.scheme;
  const target = matchedAt ?? text(o.url) ?? text(o.host);
  return { asset, ...compact({ port: tcpPort(explicit, scheme), target }) };
}

function recordsOf(o: Json, where: string, display: string, fallback: string, options: EvidenceParseOptions): EvidenceRecord[] {
  const fail = (field: string, reason: string): never => {
    throw new EvidenceError(display, FORMAT, `${where}, ${field}`, reason);
  };
  const templateId = templateIdOf(o) ?? fail('template-id', 'missing; not a Nuclei result');
  const info = isObject(o.info) ? o.info : {};
  const classification = isObject(info.classification) ? info.classification : {};
  const cves = [...new Set(listOf(classification['cve-id']).map(cveId).filter((c): c is string => c !== undefined))];
  const severity = text(info.severity)?.toLowerCase();
  const status = o['matcher-status'];
  if (status !== undefined && status !== null && typeof status !== 'boolean') fail('matcher-status', `${JSON.stringify(status)} is not true or false`);
  const skip = skipper(options);
  // A check that could not run (port closed, timeout) tested nothing.
  if (status === false && text(o.error) !== undefined) return (skip('errored'), []);
  // Technology and DNS detections, missing headers: facts about the target, not a vulnerability.
  if (severity === 'info' && cves.length === 0) return (skip('informational'), []);
  const { asset, port, target } = placeOf(o);
  if (!asset) return (skip('no_asset'), []);
  const timestamp = text(o.timestamp);
  const cwes = [...new Set(listOf(classification['cwe-id']).map(cweId).filter((c): c is string => c !== undefined))];
  const detail = compact({
    template: templateId,
    severity,
    type: text(o.type),
    matcher: text(o['matcher-name']),
    extractor: text(o['extractor-name']),
    matchedAt: text(o['matched-at']) ?? text(o.matched),
    extractedResults: excerpts(o['extracted-results']),
    // The request and response (and the curl command, which carries any credentials used) stay out.
    matchedLine: text(o['matched-line']) === undefined ? undefined : excerpt(text(o['matched-line'])!),
  });
  const rest = compact({
    result: status === false ? ('not_exploitable' as const) : ('confirmed' as const),
    tool: FORMAT,
    testedAt: (timestamp === undefined ? undefined : isoDateTime(timestamp)) ?? fallback,
    port,
    target,
    title: text(info.name),
    cwes: cwes.length > 0 ? cwes : undefined,
    detail,
  });
  const ids = cves.length > 0 ? cves : [`nuclei:${templateId}`];
  return ids.map((vulnerability) => ({ asset, vulnerability, ...rest }));
}

async function* fromLines(file: string, display: string, options: EvidenceParseOptions): AsyncGenerator<EvidenceRecord> {
  const fallback = fallbackTime(options);
  for await (const { line, value } of jsonLines(file, display, FORMAT)) {
    if (!isObject(value)) throw new EvidenceError(display, FORMAT, `line ${line}`, 'expected a JSON object (one Nuclei result per line)');
    yield* recordsOf(value, `line ${line}`, display, fallback, options);
  }
}

async function* fromArray(file: string, display: string, options: EvidenceParseOptions): AsyncGenerator<EvidenceRecord> {
  const fallback = fallbackTime(options);
  for await (const event of streamJson(file, { name: display, format: FORMAT, select: ['*'] })) {
    if (event.path.length === 0) continue;
    const index = event.path[0] as number;
    if (event.kind !== 'value' || !isObject(event.value)) {
      throw new EvidenceError(display, FORMAT, `[${index}]`, 'expected a JSON object (a Nuclei result)');
    }
    yield* recordsOf(event.value, `[${index}]`, display, fallback, options);
  }
}

const opening = (head: string): string => head.replace(/^\uFEFF/, '').trimStart();

export const nuclei: EvidenceParser = {
  format: FORMAT,
  description: 'Nuclei results: JSON lines (-jsonl, -json) or a JSON array (-je); matcher-status false (-ms) as not exploitable',
  detect(head) {
    const start = opening(head);
    return (start.startsWith('{') || /^\[\s*\{/.test(start)) && TEMPLATE_ID.test(head) && INFO.test(head);
  },
  parse(file, options) {
    return evidenceRecords(
      file,
      FORMAT,
      async function* (display) {
        const array = opening(await readHead(file)).startsWith('[');
        yield* array ? fromArray(file, display, options) : fromLines(file, display, options);
      },
      options.displayName,
    );
  },
};
