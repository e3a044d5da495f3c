import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { ReportError, type AssetRef, type NormalizedFinding } from '../../model.js';
import { childText, childrenNamed, rootElementOf, type XmlNode } from '../../streams/xml.js';
import { cveList, cvssScore, nessusFindings, nessusSeverity } from './findings.js';
import { cvss3Vector } from '../common/cvss.js';
import { reportedHost } from './host.js';
import { cweId } from '../common/identity.js';
import { rootedXmlEvents } from '../shared/xml-document.js';

// Nessus v2 XML (`.nessus`, NessusClientData_v2), from Nessus, Tenable.io/.sc and Nessus WAS.
// Streamed per ReportItem; only one host's properties are held at a time.

const FORMAT = 'nessus';
const ROOT = 'NessusClientData_v2';

function hostTags(properties: XmlNode | undefined): Map<string, string> {
  const tags = new Map<string, string>();
  for (const tag of childrenNamed(properties, 'tag')) {
    const name = tag.attrs.name;
    if (name) tags.set(name, tag.text.trim());
  }
  return tags;
}

function itemFindings(file: string, asset: AssetRef, item: XmlNode): Iterable<NormalizedFinding> {
  const a = item.attrs;
  const pluginId = a.pluginID?.trim();
  if (!pluginId) throw new ReportError(file, FORMAT, 'ReportItem@pluginID', `missing (host ${asset.name})`);
  const pluginName = a.pluginName?.trim() || childText(item, 'plugin_name') || `Nessus plugin ${pluginId}`;
  return nessusFindings(asset, {
    pluginId,
    pluginName,
    cves: cveList(childrenNamed(item, 'cve').map((c) => c.text)),
    port: a.port ?? '',
    protocol: a.protocol ?? '',
    pluginOutput: childText(item, 'plugin_output'),
    severity: nessusSeverity(a.severity, childText(item, 'risk_factor')),
    cvssScore: cvssScore(childText(item, 'cvss3_base_score')),
    cvssVector: cvss3Vector(childText(item, 'cvss3_vector')),
    description: childText(item, 'description') || childText(item, 'synopsis'),
    seeAlso: childText(item, 'see_also'),
    cwes: childrenNamed(item, 'cwe').map((c) => cweId(c.text.trim())).filter((c): c is string => c !== undefined),
    family: a.pluginFamily,
    cpe: childrenNamed(item, 'cpe').map((c) => c.text).join(' '),
    solution: childText(item, 'solution'),
  });
}

export const nessus: Connector = {
  format: FORMAT,
  description: 'Nessus v2 XML (.nessus) from Nessus, Tenable.io/Tenable.sc and Nessus WAS: one finding per host, plugin, port and CVE',
  detect(head) {
    return rootElementOf(head) === ROOT;
  },
  async *parse(file, options) {
    const name = basename(file);
    let host: { target: string; asset?: AssetRef; pending: XmlNode[] } | undefined;
    const resolve = (tags: Map<string, string>): AssetRef => {
      const names = {
        fqdn: tags.get('host-fqdn'),
        hostname: tags.get('hostname'),
        netbios: tags.get('netbios-name'),
        ip: tags.get('host-ip'),
        target: host?.target,
      };
      const asset = reportedHost(names, options.target);
      if (!asset) throw new ReportError(name, FORMAT, 'ReportHost', 'a host has no name, FQDN or IP (pass a target to name it)');
      return asset;
    };
    const events = rootedXmlEvents(file, ROOT, {
      format: FORMAT,
      collect: (el, path) => path[path.length - 1] === 'ReportHost' && (el === 'HostProperties' || el === 'ReportItem'),
    });
    for await (const event of events) {
      if (event.type === 'open' && event.name === 'ReportHost') {
        host = { target: event.attrs.name ?? '', pending: [] };
      } else if (event.type === 'node' && host) {
        const { node } = event;
        if (node.name === 'HostProperties') {
          host.asset = resolve(hostTags(node));
          for (const item of host.pending.splice(0)) yield* itemFindings(name, host.asset, item);
        } else if (host.asset) {
          yield* itemFindings(name, host.asset, node);
        } else {
          // Items before the host's properties wait for them, so the host is named the same way throughout.
          host.pending.push(node);
        }
      } else if (event.type === 'close' && event.name === 'ReportHost' && host) {
        if (host.pending.length > 0) {
          const asset = resolve(new Map());
          for (const item of host.pending) yield* itemFindings(name, asset, item);
        }
        host = undefined;
      }
    }
  },
};
