import { basename } from 'node:path';
import type { Connector } from '../index.js';
import type { NormalizedFinding } from '../../model.js';
import type { JsonPath } from '../../streams/json.js';
import { isArrayOrNull, jsonStart, objectEvents, reportFail, type ReportFail } from '../shared/json-report.js';
import { isObject, str } from '../common/json.js';
import { reportedHost } from '../nessus/host.js';
import { defenderSeverity, isOperatingSystem, isVulnerabilityId, updateFacts } from './common.js';

// Microsoft Defender for Endpoint's API JSON, as `GET /api/vulnerabilities/machinesVulnerabilities`
// returns one page of it: `{"@odata.context": ".../api/$metadata#...", "value": [{id, cveId,
// machineId, fixingKbId, productName, productVendor, productVersion, severity}], "@odata.nextLink"}`.
// Streamed one entry at a time; one finding per machine, vulnerability and product version. The
// API names a machine by its id only (names come from /api/machines), so the machine id is the host.

const FORMAT = 'defender-endpoint-json';

const fail: ReportFail = reportFail(FORMAT);

/** The OData context of Defender's API (`api.securitycenter.microsoft.com`, regional `api-eu.securitycenter.windows.com`, `api.security.microsoft.com`). */
const CONTEXT = /"@odata\.context"\s*:\s*"https:\/\/api[a-z0-9-]*\.(securitycenter\.(windows|microsoft)\.com|security\.microsoft\.com)\//;

function findingOf(file: string, entry: unknown, path: JsonPath, target: string | undefined): NormalizedFinding {
  if (!isObject(entry)) fail(file, path, 'expected an object');
  const text = (key: string, required: boolean): string => {
    const value = entry[key];
    if (value === null || value === undefined) return required ? fail(file, [...path, key], 'missing') : '';
    if (typeof value !== 'string') fail(file, [...path, key], `expected a string, got ${JSON.stringify(value)}`);
    return value.trim();
  };
  const cve = text('cveId', true);
  if (!isVulnerabilityId(cve)) fail(file, [...path, 'cveId'], `"${cve}" is not a CVE or TVM id`);
  const product = text('productName', true);
  if (product === '') fail(file, [...path, 'productName'], 'empty');
  const asset = reportedHost({ target: text('machineId', false) }, target);
  if (!asset) fail(file, [...path, 'machineId'], 'missing: no machine id and no target');
  const vendor = text('productVendor', false);
  const version = text('productVersion', false);
  const kb = text('fixingKbId', false);
  return {
    asset,
    kind: 'vulnerability',
    issueId: cve.toUpperCase(),
    component: product,
    version,
    location: '',
    severity: defenderSeverity(str(entry.severity), undefined),
    title: `${cve.toUpperCase()} - ${vendor ? `${vendor} ` : ''}${product}${version ? ` ${version}` : ''}`,
    ...updateFacts(kb ? `KB${kb.replace(/^KB/i, '')}` : ''),
    packageClass: isOperatingSystem(vendor, product) ? 'os' : 'app',
    sourcePackage: product,
  };
}

export const defenderEndpointJson: Connector = {
  format: FORMAT,
  description: 'Microsoft Defender for Endpoint API JSON (/api/vulnerabilities/machinesVulnerabilities: {"value": [...]}): one finding per machine, vulnerability and product version',
  detect: (head) => jsonStart(head).startsWith('{') && CONTEXT.test(head),
  async *parse(file, options) {
    const name = basename(file);
    let sawValue = false;
    const events = objectEvents(file, { name, format: FORMAT, select: ['value.*'] }, () => fail(name, [], 'expected a JSON object {"value": [...]}'));
    for await (const event of events) {
      const { path } = event;
      if (path.length === 1) {
        if (path[0] !== 'value') continue;
        if (!isArrayOrNull(event)) fail(name, path, 'expected an array');
        sawValue = true;
        continue;
      }
      if (event.kind === 'value') yield findingOf(name, event.value, path, options.target);
    }
    if (!sawValue) fail(name, ['value'], 'missing: not a Defender for Endpoint API response');
  },
};
