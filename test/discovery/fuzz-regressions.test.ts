import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { connectorFor } from '../../discovery/connectors/index.js';
import { rootElementOf } from '../../discovery/streams/xml.js';
import { parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Inputs the connector fuzzer (fuzz-connectors.test.ts) found mishandled, one test per input shape.

const fixture = scratchFiles('fuzz-regressions');
const MB = 1024 * 1024;

/** Writes head, then `size` bytes of `fill`, then tail, without building the whole file in memory. */
async function bigFile(name: string, head: string, fill: string, size: number, tail = ''): Promise<string> {
  const file = await fixture(name, head);
  const handle = await open(file, 'a');
  try {
    const block = Buffer.alloc(MB, fill);
    for (let written = 0; written < size; written += block.length) await handle.write(block, 0, Math.min(block.length, size - written));
    await handle.write(tail);
  } finally {
    await handle.close();
  }
  return file;
}

describe('CSV whose first line has no line break for megabytes', () => {
  // csv-parse looks for the line ending byte by byte until it finds one, allocating as it goes:
  // a 20 MB first line took 27 s to refuse (Qualys PCI seed, quote left open, 20 MB inserted).
  it('is refused at the record limit in seconds, naming the file and format', async () => {
    const file = await bigFile('long-first-line.csv', 'IP,QID,VULN TITLE', 'A', 20 * MB, '\n10.0.0.1,1,x\n');
    const started = performance.now();
    const err = await parseErrorAs('qualys-pci-csv', file);
    expect(performance.now() - started).toBeLessThan(8_000);
    expect(err.message).toMatch(/^long-first-line\.csv: qualys-pci-csv: not valid CSV \(Max Record Size/);
  });

  it('ordinary files keep their line ending (CRLF, LF or CR) and their quoted line breaks', async () => {
    for (const eol of ['\r\n', '\n', '\r']) {
      const file = await fixture('eol.csv', ['IP,QID,VULN TITLE,SEVERITY', '10.0.0.1,38173,"multi', 'line title",High', ''].join(eol));
      const findings = await parseAs('qualys-pci-csv', file);
      expect(findings.map((f) => [f.asset.assetKey, f.issueId, f.title]), JSON.stringify(eol)).toEqual([['host:10.0.0.1', 'qualys:38173', `multi${eol}line title`]]);
    }
  });
});

describe('detection on a hostile 64 KiB head', () => {
  // The XML detectors stripped the prolog with regular expressions that backtracked: a head of
  // `<!DOCTYPE` and 64 KiB of spaces took 9-30 s to be refused by detection, many `<?` or `<!--` a second.
  const heads = {
    'DOCTYPE and spaces': '<!DOCTYPE' + ' '.repeat(64 * 1024),
    'many <?': '<?'.repeat(32 * 1024),
    'many <!--': '<!--'.repeat(16 * 1024),
    'many <!DOCTYPE': '<!DOCTYPE '.repeat(6 * 1024),
    'many <report': '<report '.repeat(8 * 1024),
  };
  it.each(Object.entries(heads))('%s: refused in well under a second', async (_shape, head) => {
    const file = await fixture('head.xml', head);
    const started = performance.now();
    await expect(connectorFor(file, 'head.xml')).rejects.toThrow('head.xml: unknown: format not recognised');
    expect(performance.now() - started).toBeLessThan(400);
  });

  it('the root element is still found behind a BOM, declaration, comments, instructions and a DOCTYPE', () => {
    const prolog = '\uFEFF<?xml version="1.0"?>\n<!-- a > b -->\n<?pi x?>\n<!DOCTYPE r SYSTEM "r.dtd" [ <!ELEMENT r ANY> ]  >\n';
    expect(rootElementOf(`${prolog}<ns:ASSET_DATA_REPORT a="1">`)).toBe('ASSET_DATA_REPORT');
    expect(rootElementOf('<!DOCTYPE NessusClientData_v2>\n<NessusClientData_v2>')).toBe('NessusClientData_v2');
    expect(rootElementOf('<!-- never closed <NessusClientData_v2>')).toBeUndefined();
    expect(rootElementOf('<!DOCTYPE x [ <!ENTITY a "]"> ]><report>')).toBe('report');
  });
});

describe('an identity field made of NUL bytes', () => {
  // Ingest removes NUL from every field, so "\u0000" passed the non-empty check and reached the
  // store as an empty issue id (Trivy VulnerabilityID replaced by "\u0000").
  it('is refused like an empty one, naming the field', async () => {
    const report = { SchemaVersion: 2, ArtifactName: 'a:1', ArtifactType: 'container_image', Results: [{ Target: 'a:1 (alpine 3.19)', Type: 'alpine', Vulnerabilities: [{ VulnerabilityID: '\u0000', PkgName: 'zlib', InstalledVersion: '1.3-r0', Severity: 'HIGH' }] }] };
    expect((await parseErrorAs('trivy-json', await fixture('nul-id.json', report))).message)
      .toBe('nul-id.json: trivy-json: Results[0].Vulnerabilities[0].VulnerabilityID: expected a non-empty string');
    const grype = { matches: [{ vulnerability: { id: '\u0000 ', severity: 'High' }, artifact: { name: 'zlib', version: '1.3-r0', type: 'apk' } }], source: { type: 'image', target: { userInput: 'a:1' } } };
    expect((await parseErrorAs('grype', await fixture('nul-id-grype.json', grype))).message).toMatch(/^nul-id-grype\.json: grype: matches\[0\]\.vulnerability\.id: /);
  });

  it('a NUL inside a real value still passes through, for ingest to remove', async () => {
    const report = { SchemaVersion: 2, ArtifactName: 'a:1', ArtifactType: 'container_image', Results: [{ Target: 'a:1 (alpine 3.19)', Type: 'alpine', Vulnerabilities: [{ VulnerabilityID: 'CVE-2024-0001\u0000', PkgName: 'zlib', InstalledVersion: '1.3-r0', Severity: 'HIGH' }] }] };
    expect((await parseAs('trivy-json', await fixture('nul-inside.json', report))).map((f) => f.issueId)).toEqual(['CVE-2024-0001\u0000']);
  });
});

describe('a Snyk cvssScore outside 0-10', () => {
  // Every other connector drops a score outside the CVSS range; Snyk passed 11 on to prioritization.
  it('is no score, and the severity still comes from the report', async () => {
    const project = (cvssScore: unknown) => ({
      vulnerabilities: [{ id: 'SNYK-JS-LODASH-1040724', packageName: 'lodash', name: 'lodash', version: '4.17.11', packageManager: 'npm', severity: 'high', cvssScore, identifiers: { CVE: ['CVE-2021-23337'] }, from: ['app@1.0.0', 'lodash@4.17.11'] }],
      ok: false, packageManager: 'npm', projectName: 'app', displayTargetFile: 'package-lock.json', path: '/src/app',
    });
    const [eleven] = await parseAs('snyk-json', await fixture('snyk-11.json', project(11)));
    expect([eleven!.cvssScore, eleven!.severity]).toEqual([undefined, 'high']);
    const [negative] = await parseAs('snyk-json', await fixture('snyk-neg.json', project(-1)));
    expect(negative!.cvssScore).toBeUndefined();
    const [valid] = await parseAs('snyk-json', await fixture('snyk-ok.json', project(7.2)));
    expect(valid!.cvssScore).toBe(7.2);
  });
});

describe('an XML attribute of tens of megabytes', () => {
  // Element text is capped at 32 Mi characters, attributes were not: a 40 MB ReportHost name
  // became a 40 MB asset key.
  it('is refused naming the attribute and element, like element text', async () => {
    const tail = '"><HostProperties><tag name="host-ip">10.0.0.5</tag></HostProperties>'
      + '<ReportItem port="443" svc_name="www" protocol="tcp" severity="3" pluginID="42873" pluginName="SWEET32" pluginFamily="General"><cve>CVE-2016-2183</cve></ReportItem>'
      + '</ReportHost></Report></NessusClientData_v2>\n';
    const file = await bigFile('big-attr.nessus', '<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="r"><ReportHost name="', 'a', 40 * MB, tail);
    expect((await parseErrorAs('nessus', file)).message)
      .toBe('big-attr.nessus: nessus: NessusClientData_v2/Report: attribute name of <ReportHost> holds more than 33554432 characters');
  });
});

describe('an OSV vulnerability whose id is not a string', () => {
  // String(id) turned `"id": []` into an empty issue id, and `{}` into "[object Object]".
  it('has no id, and the error names where', async () => {
    const report = (id: unknown) => ({ results: [{ source: { path: '/src/app/package-lock.json', type: 'lockfile' }, packages: [{ package: { name: 'debug', version: '4.0.0', ecosystem: 'npm' }, vulnerabilities: [{ id, aliases: [] }] }] }] });
    for (const id of [[], {}, 42, null]) {
      expect((await parseErrorAs('osv-scanner', await fixture('osv-id.json', report(id)))).message, JSON.stringify(id))
        .toBe('osv-id.json: osv-scanner: results[0].packages[0].vulnerabilities[0]: no id');
    }
    expect((await parseAs('osv-scanner', await fixture('osv-ok.json', report('GHSA-gxpj-cx7g-858c')))).map((f) => f.issueId)).toEqual(['GHSA-gxpj-cx7g-858c']);
  });
});
