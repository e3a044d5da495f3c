import { reportedHost } from '../../../discovery/connectors/nessus/host.js';
import { isObject, type Json } from '../../../discovery/connectors/common/json.js';
import { streamJson } from '../../../discovery/streams/json.js';
import { child, childrenNamed, childText, rootElementOf, xmlEvents, type XmlNode } from '../../../discovery/streams/xml.js';
import { EvidenceError, type EvidenceParser, type EvidenceParseOptions, type EvidenceRecord } from '../model.js';
import { compact, cweId, endpointOf, evidenceRecords, excerpt, fallbackTime, isoDateTime, portNumber, skipper, tcpPort, text } from '../common.js';

// OWASP ZAP's traditional reports, JSON (`site[].alerts[]`) and XML (`OWASPZAPReport/site/alerts/
// alertitem`), with or without requests and responses. One record per alert of a site: the alert
// is the rule's finding on that site, its instances the URLs where it showed (summarised).
//
// What counts as evidence, by ZAP's own scales: risk 0 (Informational) is not a vulnerability;
// confidence 0 is an alert a user marked a false positive; confidence 1 (Low) and 2 (Medium) are
// a rule's suspicion, which ZAP asks a person to confirm; confidence 3 (High) and 4 (User
// Confirmed) are proof the issue answers from where ZAP tested: `confirmed`. ZAP reports no
// "tried and failed", so it never gives `not_exploitable`. Skipped alerts are counted by reason.

const JSON_FORMAT = 'zap-json';
const XML_FORMAT = 'zap-xml';

/** How many instances an alert's detail lists (all are counted). */
const INSTANCES_SHOWN = 5;

interface Site {
  name?: string;
  host?: string;
  port?: string;
  ssl?: string;
}

interface Instance {
  uri?: string;
  method?: string;
  param?: string;
  attack?: string;
  evidence?: string;
}

interface Alert {
  pluginid?: string;
  alertRef?: string;
  alert?: string;
  name?: string;
  riskcode?: string;
  confidence?: string;
  cweid?: string;
  wascid?: string;
  instances: Instance[];
  instanceCount: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * ZAP's `generated` date, `Thu, 18 Jun 2020 15:16:03`, in the ZAP host's local time of unknown
 * zone: read as UTC. A localised one (`Fr., 30 Sep. 2022 08:40:35`) is read when its month is
 * spelt as in English; otherwise undefined (the upload's time is used).
 */
export function zapGeneratedTime(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const iso = isoDateTime(value);
  if (iso) return iso;
  const m = /^(?:[^\d,]+,\s*)?(\d{1,2})\s+([a-z]{3})[a-z]*\.?\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})$/i.exec(value.trim());
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) return undefined;
  const pad = (n: number | string) => String(n).padStart(2, '0');
  return isoDateTime(`${m[3]}-${pad(month + 1)}-${pad(m[1]!)}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/** A score on ZAP's scale, or an EvidenceError naming the field. */
function score(value: string | undefined, field: string, max: number, fail: (field: string, reason: string) => never): number {
  const n = value === undefined || !/^-?\d+$/.test(value.trim()) ? undefined : Number(value);
  if (n === undefined || n < 0 || n > max) return fail(field, `${value === undefined ? 'missing' : JSON.stringify(value)}; expected 0 to ${max}`);
  return n;
}

function recordOf(site: Site, alert: Alert, testedAt: string, fail: (field: string, reason: string) => never, options: EvidenceParseOptions): EvidenceRecord | undefined {
  const pluginId = text(alert.pluginid);
  if (pluginId === undefined || !/^-?\d+$/.test(pluginId)) fail('pluginid', pluginId === undefined ? 'missing' : `${JSON.stringify(pluginId)} is not a ZAP rule id`);
  const risk = score(alert.riskcode, 'riskcode', 3, fail);
  const confidence = score(alert.confidence, 'confidence', 4, fail);
  const skip = skipper(options);
  if (confidence === 0) return (skip('false_positive'), undefined);
  if (risk === 0) return (skip('informational'), undefined);
  if (confidence < 3) return (skip('low_confidence'), undefined);
  const url = endpointOf(site.name);
  const asset = reportedHost({ target: text(site.host) ?? url?.host }, undefined);
  if (!asset) return (skip('no_asset'), undefined);
  const ssl = text(site.ssl)?.toLowerCase();
  const scheme = ssl === 'true' ? 'https' : ssl === 'false' ? 'http' : url?.scheme;
  const cwe = cweId(alert.cweid);
  const wasc = text(alert.wascid);
  return compact({
    asset,
    vulnerability: `zap:${pluginId}`,
    result: 'confirmed' as const,
    tool: 'zap',
    testedAt,
    port: tcpPort(portNumber(site.port) ?? url?.port, scheme),
    target: text(site.name),
    title: text(alert.alert) ?? text(alert.name),
    cwes: cwe ? [cwe] : undefined,
    detail: compact({
      pluginId,
      alertRef: text(alert.alertRef),
      risk,
      confidence,
      wascId: wasc && Number(wasc) > 0 ? wasc : undefined,
      instanceCount: alert.instanceCount,
      instances: alert.instances.length > 0 ? alert.instances : undefined,
    }),
  });
}

/** One instance as the detail shows it: where, and ZAP's evidence, bounded. */
function instanceOf(fields: Record<string, unknown>): Instance {
  const field = (name: string, max = 1024) => {
    const value = text(fields[name]);
    return value === undefined ? undefined : excerpt(value, max);
  };
  return compact({ uri: field('uri', 2048), method: field('method', 16), param: field('param', 256), attack: field('attack'), evidence: field('evidence') });
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;

const ALERT_FIELDS = ['pluginid', 'alertRef', 'alert', 'name', 'riskcode', 'confidence', 'cweid', 'wascid'] as const;
const SITE_FIELDS = { '@name': 'name', '@host': 'host', '@port': 'port', '@ssl': 'ssl' } as const;

async function* fromJson(file: string, display: string, options: EvidenceParseOptions): AsyncGenerator<EvidenceRecord> {
  const fallback = fallbackTime(options);
  let testedAt = fallback;
  // Filled in document order: ZAP writes the dates and a site's attributes before its alerts.
  let site: Site = {};
  let alert: Alert | undefined;
  let where = '';
  const fail = (field: string, reason: string): never => {
    throw new EvidenceError(display, JSON_FORMAT, `${where}.${field}`, reason);
  };
  const flush = function* () {
    if (!alert) return;
    const record = recordOf(site, alert, testedAt, fail, options);
    alert = undefined;
    if (record) yield record;
  };
  const events = streamJson(file, {
    name: display,
    format: JSON_FORMAT,
    // Containers on the way (the site list, a site, its alerts, an alert) arrive as `open` events.
    select: ['@generated', 'created', ...Object.keys(SITE_FIELDS).map((k) => `site.*.${k}`), ...ALERT_FIELDS.map((k) => `site.*.alerts.*.${k}`), 'site.*.alerts.*.instances.*'],
    keep: { 'site.*.alerts.*.instances.*': ['uri', 'method', 'param', 'attack', 'evidence'] },
  });
  for await (const event of events) {
    const { path } = event;
    if (path.length === 0) {
      if (event.kind !== 'open' || event.type !== 'object') throw new EvidenceError(display, JSON_FORMAT, undefined, 'expected a ZAP report object');
      continue;
    }
    if (path.length === 1) {
      if (event.kind === 'value' && path[0] === 'created') testedAt = (typeof event.value === 'string' ? isoDateTime(event.value) : undefined) ?? testedAt;
      else if (event.kind === 'value' && path[0] === '@generated' && testedAt === fallback) testedAt = zapGeneratedTime(str(event.value)) ?? testedAt;
      else if (path[0] === 'site' && (event.kind !== 'open' || event.type !== 'array')) throw new EvidenceError(display, JSON_FORMAT, 'site', 'expected a list of sites');
      continue;
    }
    if (path.length === 2) {
      yield* flush();
      if (event.kind !== 'open' || event.type !== 'object') throw new EvidenceError(display, JSON_FORMAT, `site[${path[1]}]`, 'expected a site object');
      site = {};
      continue;
    }
    if (path.length === 3) {
      const key = path[2] as string;
      if (key === 'alerts') {
        if (event.kind !== 'open' || event.type !== 'array') throw new EvidenceError(display, JSON_FORMAT, `site[${path[1]}].alerts`, 'expected a list of alerts');
      } else if (event.kind === 'value' && key in SITE_FIELDS) {
        site[SITE_FIELDS[key as keyof typeof SITE_FIELDS]] = str(event.value);
      }
      continue;
    }
    if (path.length === 4) {
      yield* flush();
      where = `site[${path[1]}].alerts[${path[3]}]`;
      if (event.kind !== 'open' || event.type !== 'object') throw new EvidenceError(display, JSON_FORMAT, where, 'expected an alert object');
      alert = { instances: [], instanceCount: 0 };
      continue;
    }
    if (!alert) continue;
    const key = path[4] as string;
    if (path.length === 5 && event.kind === 'value' && (ALERT_FIELDS as readonly string[]).includes(key)) {
      alert[key as (typeof ALERT_FIELDS)[number]] = str(event.value);
    } else if (path.length === 6 && key === 'instances' && event.kind === 'value' && isObject(event.value)) {
      alert.instanceCount++;
      if (alert.instances.length < INSTANCES_SHOWN) alert.instances.push(instanceOf(event.value as Json));
    }
  }
  yield* flush();
}

function alertOfXml(node: XmlNode): Alert {
  const instanceNodes = childrenNamed(child(node, 'instances'), 'instance');
  const fields: Partial<Alert> = {};
  for (const name of ALERT_FIELDS) {
    const value = child(node, name);
    if (value) fields[name] = value.text.trim();
  }
  const instances = instanceNodes.slice(0, INSTANCES_SHOWN).map((i) =>
    instanceOf(Object.fromEntries(['uri', 'method', 'param', 'attack', 'evidence'].map((n) => [n, childText(i, n)]))),
  );
  // Reports before 2.8 put one instance's uri and param on the alert itself.
  if (instanceNodes.length === 0 && childText(node, 'uri') !== '') {
    instances.push(instanceOf({ uri: childText(node, 'uri'), param: childText(node, 'param'), attack: childText(node, 'attack'), evidence: childText(node, 'evidence') }));
  }
  return { ...fields, instances, instanceCount: Math.max(instanceNodes.length, instances.length) };
}

async function* fromXml(file: string, display: string, options: EvidenceParseOptions): AsyncGenerator<EvidenceRecord> {
  let testedAt = fallbackTime(options);
  let site: Site = {};
  let sites = 0;
  let alerts = 0;
  const events = xmlEvents(file, {
    format: XML_FORMAT,
    collect: (name, path) => name === 'alertitem' && path.length === 3 && path[1] === 'site' && path[2] === 'alerts',
  });
  for await (const event of events) {
    if (event.type === 'open' && event.path.length === 1) {
      if (event.name !== 'OWASPZAPReport') throw new EvidenceError(display, XML_FORMAT, event.name, 'not a ZAP XML report (root element is not OWASPZAPReport)');
      testedAt = zapGeneratedTime(event.attrs.generated) ?? testedAt;
    } else if (event.type === 'open' && event.path.length === 2 && event.name === 'site') {
      site = { name: event.attrs.name, host: event.attrs.host, port: event.attrs.port, ssl: event.attrs.ssl };
      sites++;
      alerts = 0;
    } else if (event.type === 'node') {
      alerts++;
      const where = `site[${sites}]/alertitem[${alerts}]`;
      const record = recordOf(site, alertOfXml(event.node), testedAt, (field, reason) => {
        throw new EvidenceError(display, XML_FORMAT, `${where}/${field}`, reason);
      }, options);
      if (record) yield record;
    }
  }
}

const jsonStart = (head: string): string => head.replace(/^\uFEFF/, '').trimStart();

export const zapJson: EvidenceParser = {
  format: JSON_FORMAT,
  description: 'OWASP ZAP traditional JSON report (site[].alerts[]), with or without requests and responses',
  detect(head) {
    // Every traditional JSON report opens with @programName (2.11 on) or @version, and lists sites.
    return /^\{\s*"@(?:programName|version)"\s*:/.test(jsonStart(head)) && /"site"\s*:\s*\[/.test(head);
  },
  parse(file, options) {
    return evidenceRecords(file, JSON_FORMAT, (display) => fromJson(file, display, options), options.displayName);
  },
};

export const zapXml: EvidenceParser = {
  format: XML_FORMAT,
  description: 'OWASP ZAP traditional XML report (OWASPZAPReport/site/alerts/alertitem), with or without requests and responses',
  detect: (head) => rootElementOf(head) === 'OWASPZAPReport',
  parse(file, options) {
    return evidenceRecords(file, XML_FORMAT, (display) => fromXml(file, display, options), options.displayName);
  },
};
