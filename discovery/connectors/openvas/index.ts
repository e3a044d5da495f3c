import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { ReportError, type AssetRef, type NormalizedFinding, type Severity } from '../../model.js';
import { child, childrenNamed, childText, prologEnd, rootElementOf, type XmlNode } from '../../streams/xml.js';
import { rootedXmlEvents } from '../shared/xml-document.js';
import { hostNamer, type HostNamer } from '../nessus/host.js';
import { cveList, hostCheckFindings, type AffectedPackage } from '../nessus/findings.js';
import { cvss3Vector } from '../common/cvss.js';
import { severityFromScore } from '../common/identity.js';

// OpenVAS / Greenbone (GVM) report XML: `<report>` (the GMP envelope) holding a `<report>` whose
// `<results>` list one `<result>` per host, port and NVT. Streamed per result. Findings take the
// Nessus / Qualys shape (`hostCheckFindings`): one per host x port x NVT x CVE, on the same
// `host:<name>` asset the other network scanners give the machine.

const FORMAT = 'openvas-xml';
const ROOT = 'report';

const THREATS: Record<string, Severity> = {
  critical: 'critical', high: 'high', medium: 'medium', low: 'low', log: 'info', debug: 'info',
};

/** The `tags` field of an NVT: `key=value|key=value`, values may span lines. */
function nvtTags(raw: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of raw.split('|')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return tags;
}

const num = (raw: string): number | undefined => {
  if (raw.trim() === '') return undefined;
  const n = Number(raw.trim());
  return Number.isFinite(n) ? n : undefined;
};

/** The result's description says which version is installed and which fixes it (`Installed version: 116.0.3`). */
function installed(description: string, name: string): AffectedPackage[] {
  const version = /^\s*Installed version\s*:\s*(\S.*?)\s*$/im.exec(description)?.[1];
  if (!version) return [];
  const fixed = /^\s*Fixed version\s*:\s*(\S.*?)\s*$/im.exec(description)?.[1];
  return [{ component: name, version, ...(fixed && !/^none$/i.test(fixed) ? { fixedVersion: fixed } : {}) }];
}

function resultFindings(file: string, result: XmlNode, target: string | undefined, hostOf: HostNamer): Iterable<NormalizedFinding> {
  const host = child(result, 'host');
  const ip = host?.text.trim();
  const hostname = childText(host, 'hostname');
  const asset: AssetRef | undefined = hostOf({ hostname, ip }, target);
  if (!asset) throw new ReportError(file, FORMAT, 'result.host', `missing (result ${result.attrs.id ?? ''}; pass a target to name the host)`.replace(' ;', ';'));
  const nvt = child(result, 'nvt');
  const oid = nvt?.attrs.oid?.trim();
  if (!oid) throw new ReportError(file, FORMAT, 'result.nvt@oid', `missing (result ${result.attrs.id ?? ''} on ${asset.name})`);
  const name = childText(nvt, 'name') || childText(result, 'name') || `OpenVAS NVT ${oid}`;
  const refs = childrenNamed(child(nvt, 'refs'), 'ref');
  const cves = cveList([...refs.filter((r) => r.attrs.type?.toLowerCase() === 'cve').map((r) => r.attrs.id ?? ''), childText(nvt, 'cve')]);
  const references = refs.filter((r) => r.attrs.type?.toLowerCase() === 'url').map((r) => r.attrs.id ?? '').filter((u) => /^https?:\/\//.test(u));
  const tags = nvtTags(childText(nvt, 'tags'));
  // The port is `443/tcp`, or `general/tcp` for host-level checks.
  const [port = '', protocol = ''] = childText(result, 'port').split('/');
  const threat = childText(result, 'threat').toLowerCase();
  const score = num(childText(result, 'severity'));
  const falsePositive = threat === 'false positive' || score === -1;
  const severity: Severity = THREATS[threat]
    ?? (falsePositive ? THREATS[childText(result, 'original_threat').toLowerCase()] : undefined)
    ?? (score !== undefined && score >= 0 ? (score === 0 ? 'info' : severityFromScore(score)) : 'unknown');
  // CVSS v3: GVM 21.4+ lists it under `severities`; older reports only in the tags' vector (v2 there is not kept).
  const v3 = childrenNamed(child(nvt, 'severities'), 'severity').find((s) => /^cvss_base_v3/.test(s.attrs.type ?? ''));
  const cvssVector = cvss3Vector(childText(v3, 'value')) ?? cvss3Vector(tags.get('cvss_base_vector'));
  const v3Score = num(childText(v3, 'score')) ?? (cvssVector ? num(childText(nvt, 'cvss_base')) : undefined);
  const description = childText(result, 'description');
  return hostCheckFindings(asset, {
    fallbackId: `openvas:${oid}`,
    name,
    cves,
    port,
    protocol,
    packages: installed(description, name),
    severity,
    cvssScore: cvssVector && v3Score !== undefined && v3Score >= 0 && v3Score <= 10 ? v3Score : undefined,
    cvssVector,
    ...(falsePositive ? { vendorStatus: 'false_positive' as const } : {}),
    description: [tags.get('summary'), description].filter(Boolean).join('\n\n') || undefined,
    references,
    solution: childText(nvt, 'solution') || tags.get('solution'),
  });
}

export const openvasXml: Connector = {
  format: FORMAT,
  description: 'OpenVAS / Greenbone (GVM) report XML: one finding per host, port, NVT and CVE',
  detect(head) {
    if (rootElementOf(head) !== ROOT) return false;
    // The GMP report envelope: an export format id on the root and a nested report, or results of
    // NVTs. Only the root tag is searched for the attribute: a regular expression over the whole
    // head took a second on one of many `<report ` without a `>`.
    const root = prologEnd(head);
    const close = head.indexOf('>', root);
    const rootTag = head.slice(root, close < 0 ? undefined : close);
    return /\bformat_id="/.test(rootTag) && (/<report_format\b/.test(head) || /<nvt\s+oid="/.test(head));
  },
  async *parse(file, options) {
    const name = basename(file);
    let sawResults = false;
    const host = hostNamer();
    const events = rootedXmlEvents(file, ROOT, {
      format: FORMAT,
      collect: (el, path) => el === 'result' && path[path.length - 1] === 'results' && path[path.length - 2] === 'report',
    });
    for await (const event of events) {
      if (event.type === 'open' && event.name === 'results' && event.path[event.path.length - 2] === 'report') sawResults = true;
      if (event.type === 'node') yield* resultFindings(name, event.node, options.target, host);
    }
    if (!sawResults) throw new ReportError(name, FORMAT, 'report/results', 'missing: not an OpenVAS / Greenbone report (export it with the XML report format)');
  },
};
