import { basename } from 'node:path';
import type { Connector } from '../index.js';
import { ReportError } from '../../model.js';
import { csvRows, sniffCsvHeader, type CsvColumns } from '../../streams/csv.js';
import { readHead } from '../common/head.js';
import { cveList, cvssScore, nessusFindings, nessusSeverity } from '../nessus/findings.js';
import { hostNamer } from '../nessus/host.js';
import { cvss3Vector } from '../common/cvss.js';

// Tenable Vulnerability Management (Tenable.io) CSV exports with the API's dotted column names
// (`asset.host_name`, `definition.id`, `definition.cve`, `definition.cvss3.base_score`...), as the
// workbench and vulnerability export write them: `;`-separated, sometimes `,`. Same identity as the
// Nessus XML and Tenable CSV connectors: one finding per host, plugin, port and CVE.

const FORMAT = 'tenable-vm-csv';
const DELIMITERS = [';', ','] as const;

const COLUMNS = {
  pluginId: { names: ['definition.id', 'plugin.id'], required: true },
  name: { names: ['definition.name', 'plugin.name'], required: true },
  // Any one of the asset's names or addresses identifies it; the best present is chosen below.
  host: {
    names: ['asset.host_name', 'asset.hostname', 'asset.display_fqdn', 'asset.fqdn', 'asset.display_ipv4_address', 'asset.ipv4_addresses', 'asset.ipv4', 'asset.name'],
    required: true,
  },
  hostName: { names: ['asset.host_name', 'asset.hostname'] },
  fqdn: { names: ['asset.display_fqdn', 'asset.fqdn', 'asset.fqdns'] },
  netbios: { names: ['asset.netbios_name'] },
  ip: { names: ['asset.display_ipv4_address', 'asset.ipv4_addresses', 'asset.ipv4', 'asset.display_ipv6_address', 'asset.ipv6_addresses', 'asset.ipv6'] },
  cve: { names: ['definition.cve', 'plugin.cve'] },
  port: { names: ['port', 'port.port'] },
  protocol: { names: ['protocol', 'port.protocol'] },
  severity: { names: ['severity'] },
  definitionSeverity: { names: ['definition.severity', 'plugin.risk_factor'] },
  cvss3: { names: ['definition.cvss3.base_score', 'plugin.cvss3_base_score'] },
  cvss3Vector: { names: ['definition.cvss3.base_vector', 'plugin.cvss3_vector.raw'] },
  output: { names: ['output'] },
  state: { names: ['state'] },
  description: { names: ['definition.description', 'plugin.description'] },
  synopsis: { names: ['definition.synopsis', 'plugin.synopsis'] },
  seeAlso: { names: ['definition.see_also', 'plugin.see_also'] },
  family: { names: ['definition.family', 'plugin.family'] },
  cpe: { names: ['definition.cpe', 'plugin.cpe'] },
  solution: { names: ['definition.solution', 'plugin.solution'] },
} satisfies CsvColumns<string>;

/** The separator whose header row holds the required columns, if either does. */
const delimiterOf = (head: string) => DELIMITERS.find((d) => sniffCsvHeader(head, COLUMNS, 20, d));

/** The first name or address of a cell that may list several (`10.0.0.1, 10.0.0.2`, or `["a", "b"]`). */
const firstAddress = (raw: string) => raw.replace(/[[\]"']/g, '').split(/[\s,;]+/).find((a) => a !== '') ?? '';

export const tenableVmCsv: Connector = {
  format: FORMAT,
  description: 'Tenable Vulnerability Management CSV export with dotted columns (asset.host_name, definition.cve; `;` or `,`): one finding per host, plugin, port and CVE',
  detect: (head) => delimiterOf(head) !== undefined,
  async *parse(file, options) {
    const name = basename(file);
    // An unreadable file falls through to csvRows, which names the reason.
    const delimiter = delimiterOf(await readHead(file).catch(() => '')) ?? DELIMITERS[0];
    const host = hostNamer();
    for await (const { values: v, line } of csvRows(file, { format: FORMAT, columns: COLUMNS, delimiter })) {
      if (v.pluginId === '') throw new ReportError(name, FORMAT, COLUMNS.pluginId.names[0], `empty on line ${line}`);
      // Every address of the IP cell is the host's (the first its identity when it has no name).
      const asset = host({ fqdn: firstAddress(v.fqdn), hostname: v.hostName, netbios: v.netbios, ip: v.ip, target: firstAddress(v.host) }, options.target);
      if (!asset) throw new ReportError(name, FORMAT, COLUMNS.host.names[0], `no host name or IP on line ${line}`);
      yield* nessusFindings(asset, {
        pluginId: v.pluginId,
        pluginName: v.name || `Nessus plugin ${v.pluginId}`,
        cves: cveList(v.cve),
        port: v.port,
        protocol: v.protocol,
        pluginOutput: v.output,
        // `severity` is the finding's (after recast rules); the definition's is the plugin's default.
        severity: nessusSeverity(v.severity, v.definitionSeverity),
        cvssScore: cvssScore(v.cvss3),
        cvssVector: cvss3Vector(v.cvss3Vector),
        description: v.description || v.synopsis,
        seeAlso: v.seeAlso,
        family: v.family,
        cpe: v.cpe,
        solution: v.solution,
        ...(v.state.toLowerCase() === 'fixed' ? { vendorStatus: 'fixed' as const } : {}),
      });
    }
  },
};
