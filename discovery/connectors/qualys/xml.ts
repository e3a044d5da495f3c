import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { ReportError, type Severity } from '../../model.js';
import { at, child, childText, rootElementOf } from '../../streams/xml.js';
import { cveList } from '../nessus/findings.js';
import { hostNamer } from '../nessus/host.js';
import { qualysCvss3, qualysFindings, qualysSeverity } from './common.js';
import { rootedXmlEvents } from '../shared/xml-document.js';

// Qualys VM asset data report XML (ASSET_DATA_REPORT). Per-QID details (title, severity, CVEs,
// CVSS) sit in a GLOSSARY after the host list, so the file is streamed twice: first the glossary
// (one small entry per distinct QID), then the hosts' detections.

const FORMAT = 'qualys-xml';
const ROOT = 'ASSET_DATA_REPORT';

interface QidDetails {
  title: string;
  severity: Severity;
  cves: string[];
  cvssScore?: number | undefined;
  cvssVector?: string | undefined;
  description: string;
  solution: string;
  category: string;
}

export const qualysXml: Connector = {
  format: FORMAT,
  description: 'Qualys VM asset data report XML (ASSET_DATA_REPORT): one finding per host, QID, port and CVE',
  detect(head) {
    return rootElementOf(head) === ROOT;
  },
  async *parse(file, options) {
    const name = basename(file);
    const glossary = new Map<string, QidDetails>();
    const inGlossary = (name: string, path: readonly string[]) => name === 'VULN_DETAILS' && path[path.length - 1] === 'VULN_DETAILS_LIST';
    for await (const event of rootedXmlEvents(file, ROOT, { format: FORMAT, collect: inGlossary })) {
      if (event.type !== 'node') continue;
      const details = event.node;
      const qid = childText(details, 'QID');
      if (!qid) continue;
      const cves = cveList((child(details, 'CVE_ID_LIST')?.children ?? []).map((c) => childText(c, 'ID')));
      glossary.set(qid, {
        title: childText(details, 'TITLE') || `QID ${qid}`,
        severity: qualysSeverity(childText(details, 'SEVERITY')),
        cves,
        ...qualysCvss3(at(details, 'CVSS3_SCORE', 'CVSS3_BASE')?.text),
        description: childText(details, 'THREAT'),
        solution: childText(details, 'SOLUTION'),
        category: childText(details, 'CATEGORY'),
      });
    }

    let names: { ip?: string; dns?: string; netbios?: string } = {};
    const host = hostNamer();
    const HOST_FIELDS = new Set(['IP', 'DNS', 'NETBIOS']);
    const inHosts = (el: string, path: readonly string[]) => {
      const parent = path[path.length - 1];
      return (parent === 'HOST' && HOST_FIELDS.has(el)) || (parent === 'VULN_INFO_LIST' && el === 'VULN_INFO');
    };
    for await (const event of rootedXmlEvents(file, ROOT, { format: FORMAT, collect: inHosts })) {
      if (event.type === 'open' && event.name === 'HOST') names = {};
      if (event.type !== 'node') continue;
      const { node } = event;
      if (node.name === 'IP') names.ip = node.text;
      else if (node.name === 'DNS') names.dns = node.text;
      else if (node.name === 'NETBIOS') names.netbios = node.text;
      else {
        const qid = childText(node, 'QID');
        if (!qid) throw new ReportError(name, FORMAT, 'VULN_INFO/QID', `missing (host ${names.ip ?? '?'})`);
        const details = glossary.get(qid);
        if (!details) throw new ReportError(name, FORMAT, 'GLOSSARY', `QID ${qid} has no VULN_DETAILS entry`);
        // Qualys's DNS name is the host's FQDN when it has one; the per-detection FQDN names virtual hosts, not the machine.
        const asset = host({ hostname: names.dns, netbios: names.netbios, ip: names.ip }, options.target);
        if (!asset) throw new ReportError(name, FORMAT, 'HOST/IP', 'a host has no IP, DNS or NetBIOS name');
        yield* qualysFindings(asset, {
          qid,
          title: details.title,
          cves: details.cves,
          port: childText(node, 'PORT'),
          protocol: childText(node, 'PROTOCOL'),
          severity: details.severity,
          cvssScore: details.cvssScore,
          cvssVector: details.cvssVector,
          status: childText(node, 'VULN_STATUS'),
          description: details.description,
          solution: details.solution,
          category: details.category,
        });
      }
    }
  },
};
