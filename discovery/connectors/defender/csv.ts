import { ReportError } from '../../model.js';
import type { CsvColumns } from '../../streams/csv.js';
import { csvConnector } from '../shared/csv-connector.js';
import { defenderSeverity, isOperatingSystem, isVulnerabilityId, updateFacts } from './common.js';

// Microsoft Defender for Endpoint (Defender Vulnerability Management) software vulnerabilities as
// CSV: the advanced hunting table DeviceTvmSoftwareVulnerabilities exported from the portal, with
// its documented column names (DeviceId, DeviceName, OSPlatform, SoftwareVendor, SoftwareName,
// SoftwareVersion, CveId, VulnerabilitySeverityLevel, RecommendedSecurityUpdate[Id]); a join with
// DeviceTvmSoftwareVulnerabilitiesKB adds CvssScore and VulnerabilityDescription. One row is one
// finding: the device (a host), the CVE and the installed software version.

const FORMAT = 'defender-endpoint-csv';

const COLUMNS = {
  // DeviceName is the device's FQDN; DeviceId names a device the export gives no name for.
  device: { names: ['DeviceName', 'DeviceId'], required: true },
  deviceName: { names: ['DeviceName'] },
  deviceId: { names: ['DeviceId'] },
  cve: { names: ['CveId'], required: true },
  software: { names: ['SoftwareName'], required: true },
  vendor: { names: ['SoftwareVendor'] },
  version: { names: ['SoftwareVersion'] },
  severity: { names: ['VulnerabilitySeverityLevel'] },
  cvss: { names: ['CvssScore'] },
  update: { names: ['RecommendedSecurityUpdate'] },
  updateId: { names: ['RecommendedSecurityUpdateId'] },
  description: { names: ['VulnerabilityDescription'] },
} satisfies CsvColumns<string>;

const scoreOf = (raw: string): number | undefined => {
  const n = raw === '' ? NaN : Number(raw);
  return Number.isFinite(n) && n >= 0 && n <= 10 ? n : undefined;
};

export const defenderEndpointCsv = csvConnector({
  format: FORMAT,
  description: 'Microsoft Defender for Endpoint software vulnerabilities CSV (DeviceTvmSoftwareVulnerabilities: DeviceName, CveId, SoftwareName...): one finding per device, CVE and software version',
  columns: COLUMNS,
  *rowFindings({ values: v, line }, name, options, host) {
    if (!isVulnerabilityId(v.cve)) {
      throw new ReportError(name, FORMAT, COLUMNS.cve.names[0], v.cve === '' ? `empty on line ${line}` : `"${v.cve}" on line ${line} is not a CVE or TVM id`);
    }
    if (v.software === '') throw new ReportError(name, FORMAT, COLUMNS.software.names[0], `empty on line ${line}`);
    const asset = host({ fqdn: v.deviceName, machineId: v.deviceId }, options.target);
    if (!asset) throw new ReportError(name, FORMAT, COLUMNS.device.names[0], `no device name or id on line ${line}`);
    if (v.cvss !== '' && scoreOf(v.cvss) === undefined) {
      throw new ReportError(name, FORMAT, COLUMNS.cvss.names[0], `"${v.cvss}" on line ${line} is not a CVSS score (0-10)`);
    }
    const cvssScore = scoreOf(v.cvss);
    const update = [v.update, v.updateId && v.updateId !== v.update ? `(${v.updateId})` : ''].filter(Boolean).join(' ');
    const os = isOperatingSystem(v.vendor, v.software);
    yield {
      asset,
      kind: 'vulnerability',
      issueId: v.cve.toUpperCase(),
      component: v.software,
      version: v.version,
      location: '',
      severity: defenderSeverity(v.severity, cvssScore),
      ...(cvssScore !== undefined ? { cvssScore } : {}),
      title: `${v.cve.toUpperCase()} - ${v.vendor ? `${v.vendor} ` : ''}${v.software}${v.version ? ` ${v.version}` : ''}`,
      ...updateFacts(update, v.description),
      packageClass: os ? 'os' : 'app',
      sourcePackage: v.software,
    };
  },
});
