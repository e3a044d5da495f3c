import { readHead } from './common/head.js';
import { vulnerabilityIds, type Warn } from './common/warnings.js';
import { ReportError, type NormalizedFinding } from '../model.js';
import { trivy } from './trivy/index.js';
import { grype } from './grype/index.js';
import { sarif } from './sarif/index.js';
import { cyclonedxJson } from './cyclonedx-json/index.js';
import { dependencyTrack } from './dependency-track/index.js';
import { npmAudit } from './npm-audit/index.js';
import { osvScanner } from './osv-scanner/index.js';
import { snyk } from './snyk/index.js';
import { gitlabDependencyScanning, gitlabContainerScanning } from './gitlab/index.js';
import { nessus } from './nessus/index.js';
import { tenableCsv } from './tenable-csv/index.js';
import { tenableVmCsv } from './tenable-vm-csv/index.js';
import { qualysXml, qualysCsv, qualysPciCsv } from './qualys/index.js';
import { cyclonedxXml } from './cyclonedx-xml/index.js';
import { cnapp } from './cnapp/index.js';
import { awsInspector2 } from './aws-inspector2/index.js';
import { openvasXml } from './openvas/index.js';
import { defenderCloudJson, defenderEndpointCsv, defenderEndpointJson } from './defender/index.js';

export interface ParseOptions {
  /** Overrides the asset name the report gives (or supplies one where the report has none). */
  target?: string;
  /** Hears what the connector read but did not understand or skipped (`ctem parse --strict` fails on it). */
  warn?: Warn;
}

/** One source format: recognise it from the first bytes, then stream normalized findings. */
export interface Connector {
  format: string;
  description: string;
  detect(head: string): boolean;
  parse(file: string, options: ParseOptions): AsyncIterable<NormalizedFinding>;
}

/** Every supported format. A new format is one folder and one line here. */
export const connectors: readonly Connector[] = [trivy, grype, sarif, cyclonedxJson, dependencyTrack, npmAudit, osvScanner, snyk, gitlabDependencyScanning, gitlabContainerScanning, nessus, tenableCsv, tenableVmCsv, qualysXml, qualysCsv, qualysPciCsv, cyclonedxXml, cnapp, awsInspector2, openvasXml, defenderEndpointCsv, defenderEndpointJson, defenderCloudJson];

export { readHead };

/** Picks the connector for a report: the one named, or the first that recognises the file. */
export async function connectorFor(file: string, displayName: string, format?: string): Promise<Connector> {
  if (format) {
    const named = connectors.find((c) => c.format === format);
    if (!named) {
      throw new ReportError(displayName, format, undefined, `unknown format; supported: ${connectors.map((c) => c.format).join(', ')}`);
    }
    return named;
  }
  const head = await readHead(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EISDIR') throw new ReportError(displayName, 'unknown', undefined, 'is a directory');
    throw err;
  });
  if (head.trim() === '') throw new ReportError(displayName, 'unknown', undefined, 'the report is empty');
  const detected = connectors.find((c) => c.detect(head));
  if (!detected) {
    throw new ReportError(displayName, 'unknown', undefined, `format not recognised; supported: ${connectors.map((c) => c.format).join(', ')}`);
  }
  return detected;
}

/**
 * A connector's findings, plus the check every format shares: a report that yields nothing although
 * it names vulnerability ids was most likely not understood, and says so.
 */
export async function* parseReport(connector: Connector, file: string, displayName: string, options: ParseOptions): AsyncGenerator<NormalizedFinding> {
  let n = 0;
  for await (const finding of connector.parse(file, options)) {
    n++;
    yield finding;
  }
  if (n > 0 || !options.warn) return;
  const ids = await vulnerabilityIds(file);
  if (ids.count > 0) {
    options.warn({ file: displayName, format: connector.format, reason: `0 findings, yet the document names ${ids.count} vulnerability id${ids.count > 1 ? 's' : ''} (e.g. ${ids.first})` });
  }
}

export { warningLine, type ParseWarning, type Warn } from './common/warnings.js';
export { ReportError, type NormalizedFinding, type AssetRef } from '../model.js';
