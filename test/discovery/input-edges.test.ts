import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectorFor, connectors, ReportError, type NormalizedFinding, type ParseOptions } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';
import { parseCommand } from '../../cli/commands/parse.js';
import { ingestCommand } from '../../cli/commands/ingest.js';
import type { Config } from '../../config/index.js';

// Input the connectors used to let through or mangle: NUL bytes, short CSV rows, odd field
// encodings, missing severities, URLs as host names, huge JSON strings, directories as input.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctem-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function parse(format: string, file: string, options: ParseOptions = {}): Promise<NormalizedFinding[]> {
  const connector = connectors.find((c) => c.format === format)!;
  const out: NormalizedFinding[] = [];
  for await (const finding of connector.parse(file, options)) out.push(finding);
  return out;
}

async function parseError(format: string, file: string): Promise<ReportError> {
  try {
    await parse(format, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ReportError);
    return err as ReportError;
  }
  throw new Error(`${format} accepted ${file}`);
}

describe.skipIf(!hasCorpus)(`NUL bytes in report fields${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  let database: Database;
  beforeAll(async () => {
    database = await migratedTestDatabase();
  });
  afterAll(closeTestDatabases);

  it('are removed on the way into the store, not a failed report', async () => {
    // Real Grype output, with a NUL written inside one artifact version and one title, as some Grype versions do.
    const report = JSON.parse(await readFile(corpusFile('scanners', 'defectdojo', 'anchore_grype', 'check_all_fields.json'), 'utf8'));
    const match = report.matches[0];
    const version: string = match.artifact.version;
    match.artifact.version = `${version}\u0000`;
    match.vulnerability.description = 'before\u0000after';
    const file = join(dir, 'grype-nul.json');
    await writeFile(file, JSON.stringify(report));
    const parsed = await parse('grype', file);
    expect(parsed.some((f) => f.version.includes('\u0000'))).toBe(true);

    const connector = await connectorFor(file, file);
    const counts = await ingestFindings(database.sql, { id: randomUUID(), source: 'grype' }, connector.parse(file, {}));
    expect(counts.findings).toBe(5);
    const rows = await database.sql`select version from findings where component = ${match.artifact.name} and issue_id = ${match.vulnerability.id}`;
    expect(rows.map((r) => r.version)).toEqual([version]);
  });
});

describe('CSV rows against the header', () => {
  const header = 'Plugin ID,CVE,Risk,Host,Protocol,Port,Name';

  it('a row with fewer or more columns than the header is an error naming the line and counts', async () => {
    // The second data row lost the comma between Host and Protocol: before, it became a finding on `host:tcp`.
    const short = join(dir, 'short-row.csv');
    await writeFile(short, [header, '42873,CVE-2016-2183,High,web01,tcp,443,SWEET32', '42873,CVE-2016-6329,High,web01tcp,443,SWEET32', ''].join('\n'));
    expect((await parseError('tenable-csv', short)).message).toBe('short-row.csv: tenable-csv: line 3 has 6 columns, the header row (line 1) has 7');
    const long = join(dir, 'long-row.csv');
    await writeFile(long, [header, '42873,CVE-2016-2183,High,web01,tcp,443,SWEET32,extra', ''].join('\n'));
    expect((await parseError('tenable-csv', long)).message).toBe('long-row.csv: tenable-csv: line 2 has 8 columns, the header row (line 1) has 7');
  });

  it('rows as wide as the header still parse, quoted multi-line cells included', async () => {
    const file = join(dir, 'ok.csv');
    await writeFile(file, [header, '42873,CVE-2016-2183,High,web01,tcp,443,"SWEET32,\nsecond line"', ''].join('\n'));
    const [finding] = await parse('tenable-csv', file);
    expect(finding!.asset.assetKey).toBe('host:web01');
  });
});

describe.skipIf(!hasCorpus)('npm audit v1 cwe', () => {
  it('reads a list written JSON-encoded in a string', async () => {
    // Real npm audit v1 output; advisory 106 (negotiator) with its cwe as some npm versions write it.
    const report = JSON.parse(await readFile(corpusFile('scanners', 'defectdojo', 'npm_audit', 'many_vuln.json'), 'utf8'));
    expect(report.advisories['106'].cwe).toBe('CWE-400');
    report.advisories['106'].cwe = JSON.stringify(['CWE-79', 'CWE-400']);
    report.advisories['521'].cwe = '[]';
    const file = join(dir, 'npm-cwe.json');
    await writeFile(file, JSON.stringify(report));
    const findings = await parse('npm-audit', file, { target: 'app' });
    expect(findings.find((f) => f.component === 'negotiator')!.cwes).toEqual(['CWE-79', 'CWE-400']);
    const other = findings.find((f) => f.issueId === 'NPM-521' || f.component === report.advisories['521'].module_name);
    expect(other).toBeDefined();
    expect(other!.cwes).toBeUndefined();
  });
});

describe.skipIf(!hasCorpus)('Grype severity', () => {
  it('comes from the CVSS v3 base score when the match states none', async () => {
    // Real Grype output with the severities taken away: absent, `Unknown`, and on a v2-only match.
    const report = JSON.parse(await readFile(corpusFile('scanners', 'defectdojo', 'anchore_grype', 'check_all_fields.json'), 'utf8'));
    delete report.matches[2].vulnerability.severity; // libc-bin CVE-2021-33574, NVD v3.1 9.8
    report.matches[1].vulnerability.severity = 'Unknown'; // redis CVE-2021-32626, NVD v3.1 8.8
    report.matches[4].vulnerability.severity = ''; // Django GHSA-v6rh-hp5x-86rv, v3.1 7.3
    report.matches[0].vulnerability.severity = 'Unknown'; // krb5 CVE-2004-0971, v2 2.1 only
    const file = join(dir, 'grype-no-severity.json');
    await writeFile(file, JSON.stringify(report));
    const findings = await parse('grype', file);
    const of = (component: string) => findings.find((f) => f.component === component)!;
    expect([of('libc-bin').severity, of('libc-bin').cvssScore]).toEqual(['critical', 9.8]);
    expect([of('redis').severity, of('redis').cvssScore]).toEqual(['high', 8.8]);
    expect(findings.filter((f) => f.component === 'django').map((f) => [f.severity, f.cvssScore])).toEqual([['high', 7.3], ['high', 7.3]]);
    expect(of('libgssapi-krb5-2').severity).toBe('unknown');
    // A stated severity is kept even where the score would say otherwise.
    expect(of('libc6').severity).toBe('critical');
  });
});

describe.skipIf(!hasCorpus)('Nessus WAS host', () => {
  it('is the host name of the URL Nessus WAS writes as the host FQDN', async () => {
    // Real Nessus WAS export (ReportHost and host-fqdn `http://google.com/`), given one finding.
    const xml = await readFile(corpusFile('scanners', 'defectdojo', 'tenable', 'nessus_was', 'nessus_was_no_vuln.xml'), 'utf8');
    expect(xml).toContain('<tag name="host-fqdn">http://google.com/</tag>');
    const item = '<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="98000" pluginName="Missing Content Security Policy" pluginFamily="Web Applications"><description>d</description></ReportItem>';
    const file = join(dir, 'was.xml');
    await writeFile(file, xml.replace('</HostProperties>', `</HostProperties>${item}`));
    const findings = await parse('nessus', file);
    expect(findings.map((f) => [f.asset.assetKey, f.asset.name, f.location])).toEqual([['host:google.com', 'google.com', '443/tcp']]);
    // With a port and path, and when only the ReportHost name is a URL.
    const other = join(dir, 'was-port.xml');
    await writeFile(other, xml.replace('<tag name="host-fqdn">http://google.com/</tag>', '')
      .replaceAll('http://google.com/', 'https://App.Example.com:8443/login').replace('</HostProperties>', `</HostProperties>${item}`));
    expect((await parse('nessus', other)).map((f) => f.asset.assetKey)).toEqual(['host:app.example.com']);
  });
});

describe.skipIf(!hasCorpus)('JSON string size', () => {
  const grype = () => readFile(corpusFile('scanners', 'defectdojo', 'anchore_grype', 'check_all_fields.json'), 'utf8').then((t) => JSON.parse(t));

  it('a string over 16 MiB inside a finding is refused with the file and the limit', async () => {
    const report = await grype();
    report.matches[1].vulnerability.description = 'A'.repeat(17 * 1024 * 1024);
    const file = join(dir, 'grype-huge.json');
    const text = JSON.stringify(report);
    await writeFile(file, text);
    const err = await parseError('grype', file);
    const at = Buffer.byteLength(text.slice(0, text.indexOf('"AAAA')));
    expect(err.message).toBe(`grype-huge.json: grype: a string longer than 16 MiB starts at byte ${at} (after matches); refusing to parse`);
  });

  it('so is one in a walked header, and a skipped one', async () => {
    const report = await grype();
    report.source.target.userInput = 'B'.repeat(17 * 1024 * 1024);
    const file = join(dir, 'grype-huge-header.json');
    await writeFile(file, JSON.stringify(report));
    expect((await parseError('grype', file)).message).toMatch(/^grype-huge-header\.json: grype: a string longer than 16 MiB starts at byte \d+ .*; refusing to parse$/);
    const skipped = join(dir, 'grype-huge-skipped.json');
    await writeFile(skipped, JSON.stringify({ unrelated: 'C'.repeat(17 * 1024 * 1024), ...(await grype()) }));
    expect((await parseError('grype', skipped)).message).toMatch(/^grype-huge-skipped\.json: grype: a string longer than 16 MiB starts at byte 13 \(after unrelated\); refusing to parse$/);
  });

  it('strings under the limit, across many chunks, still parse', async () => {
    const report = await grype();
    report.matches[1].vulnerability.description = 'D'.repeat(2 * 1024 * 1024);
    const file = join(dir, 'grype-long.json');
    await writeFile(file, JSON.stringify(report));
    expect(await parse('grype', file)).toHaveLength(6);
  });
});

describe('a directory given as the report', () => {
  async function stderrOf(run: () => Promise<number>): Promise<{ code: number; lines: string[] }> {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const code = await run();
      return { code, lines: spy.mock.calls.map((c) => c.join(' ')) };
    } finally {
      spy.mockRestore();
    }
  }

  it('ctem parse and ctem ingest say `<path>: is a directory`', async () => {
    const reports = join(dir, 'reports');
    await mkdir(reports);
    expect(await stderrOf(() => parseCommand({ file: reports }))).toEqual({ code: 1, lines: [`${reports}: is a directory`] });
    expect(await stderrOf(() => parseCommand({ file: reports, format: 'grype' }))).toEqual({ code: 1, lines: [`${reports}: is a directory`] });
    // Checked before the platform is contacted, so no configuration is needed.
    expect(await stderrOf(() => ingestCommand({} as Config, { file: reports, wait: false }))).toEqual({ code: 1, lines: [`${reports}: is a directory`] });
  });

  it('detection and every stream reader say so too, naming the file and format', async () => {
    const reports = join(dir, 'reports-lib');
    await mkdir(reports);
    await expect(connectorFor(reports, 'reports-lib')).rejects.toThrow(new ReportError('reports-lib', 'unknown', undefined, 'is a directory'));
    for (const format of ['grype', 'nessus', 'tenable-csv']) {
      expect((await parseError(format, reports)).message).toBe(`reports-lib: ${format}: is a directory`);
    }
  });
});
