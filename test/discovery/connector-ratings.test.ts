import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';

// Ratings the connectors used to lose or take from the wrong place: Grype's legacy cvssV3 vector,
// Qualys's vector in the CVSS3 base cell, SARIF's security-severity as a score, and a CycloneDX
// VEX's environmental score standing in for the base score.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctem-ratings-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function parse(format: string, file: string): Promise<NormalizedFinding[]> {
  const connector = connectors.find((c) => c.format === format)!;
  const out: NormalizedFinding[] = [];
  for await (const finding of connector.parse(file, { target: 'ratings-test' })) out.push(finding);
  return out;
}

async function fixture(name: string, content: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const rating = (f: NormalizedFinding | undefined) => f && { severity: f.severity, cvssScore: f.cvssScore, cvssVector: f.cvssVector };

describe.skipIf(!hasCorpus)(`ratings from the real corpus${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {

  it('grype: the legacy cvssV3 form keeps its vector beside its score (many_vulns3.json)', async () => {
    const findings = await parse('grype', corpusFile('scanners', 'defectdojo', 'anchore_grype', 'many_vulns3.json'));
    const protobuf = findings.find((f) => f.issueId === 'CVE-2015-5237' && f.component === 'protobuf');
    expect(rating(protobuf)).toMatchObject({ cvssScore: 8.8, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H' });
    // Every legacy v3 rating with a vector keeps it.
    expect(findings.filter((f) => f.cvssVector).length).toBeGreaterThan(50);
  });

  it('qualys xml and csv: "9.0 (AV:N/...)" keeps the vector, prefixed CVSS:3.0', async () => {
    for (const ext of ['xml', 'csv']) {
      const findings = await parse(`qualys-${ext}`, corpusFile('scanners', 'defectdojo', 'qualys', `Qualys_Sample_Report.${ext}`));
      const withVector = findings.filter((f) => f.cvssVector);
      expect(withVector.length, ext).toBeGreaterThan(0);
      for (const f of withVector) expect(f.cvssVector, ext).toMatch(/^CVSS:3\.0\/AV:[NALP]\/AC:[LH]\/PR:[NLH]\/UI:[NR]\/S:[UC]\/C:[HLN]\/I:[HLN]\/A:[HLN]$/);
      // The temporal cell (E:U/RL:U/RC:C) is never taken for the base vector.
      expect(findings.some((f) => f.cvssVector?.includes('E:')), ext).toBe(false);
    }
    const xml = await parse('qualys-xml', corpusFile('scanners', 'defectdojo', 'qualys', 'Qualys_Sample_Report.xml'));
    expect(xml.some((f) => f.cvssScore === 9 && f.cvssVector === 'CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H')).toBe(true);
  });

  it('sarif: security-severity is the finding’s CVSS score (Trivy 0.49.1 container log)', async () => {
    const findings = await parse('sarif', corpusFile('scanners', 'more', 'sarif', 'trivy-0.49.1-container.sarif'));
    const first = findings.find((f) => f.issueId === 'CVE-2024-26597');
    expect(rating(first)).toMatchObject({ severity: 'high', cvssScore: 8 });
    expect(findings.every((f) => f.cvssScore !== undefined)).toBe(true);
  });

  it('cyclonedx vex: an environmental 0.0 beside a 10.0 vector gives the base score (CISA Case-6)', async () => {
    const findings = await parse('cyclonedx-json', corpusFile('scanners', 'more', 'cyclonedx-vex', 'CISA-Use-Cases', 'Case-6', 'vex.json'));
    const log4shell = findings.filter((f) => f.issueId === 'CVE-2021-44228');
    expect(log4shell.length).toBeGreaterThan(1);
    for (const f of log4shell) {
      expect(rating(f)).toEqual({ severity: 'critical', cvssScore: 10, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H' });
    }
    // The VEX statement itself is kept: the not-affected product stays not affected.
    expect(new Set(log4shell.map((f) => f.vendorStatus))).toEqual(new Set(['affected', 'not_affected']));
  });
});

describe('ratings from small fixtures', () => {
  it('sarif: a result’s level gives the severity when no security-severity is stated, and no score', async () => {
    const file = await fixture('levels.sarif', {
      version: '2.1.0',
      runs: [{
        tool: { driver: { name: 'lint', rules: [{ id: 'R1' }, { id: 'R2', properties: { 'security-severity': '9.8' } }] } },
        results: [
          { ruleId: 'R1', level: 'error', message: { text: 'one' }, locations: [{ physicalLocation: { artifactLocation: { uri: 'a.js' } } }] },
          { ruleId: 'R2', message: { text: 'two' }, locations: [{ physicalLocation: { artifactLocation: { uri: 'b.js' } } }] },
        ],
      }],
    });
    const [r1, r2] = await parse('sarif', file);
    expect(rating(r1)).toEqual({ severity: 'high', cvssScore: undefined, cvssVector: undefined });
    expect(rating(r2)).toEqual({ severity: 'critical', cvssScore: 9.8, cvssVector: undefined });
  });

  it('cyclonedx: an "other" or environmental rating never replaces the v3 base rating', async () => {
    const file = await fixture('vex.json', {
      bomFormat: 'CycloneDX', specVersion: '1.5', version: 1,
      metadata: { component: { type: 'application', name: 'app', 'bom-ref': 'app' } },
      vulnerabilities: [
        {
          id: 'CVE-2021-44228',
          ratings: [
            { score: 0.0, severity: 'none', method: 'other' },
            { score: 0.0, severity: 'none', method: 'CVSSv31', vector: 'AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/MC:N/MI:N/MA:N' },
          ],
          affects: [{ ref: 'app' }],
        },
        {
          // No score on the rating: computed from its vector.
          id: 'CVE-2021-45046', ratings: [{ method: 'CVSSv31', vector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H' }], affects: [{ ref: 'app' }],
        },
      ],
    });
    const findings = await parse('cyclonedx-json', file);
    expect(findings.map(rating)).toEqual([
      { severity: 'critical', cvssScore: 10, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H' },
      { severity: 'critical', cvssScore: 9, cvssVector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H' },
    ]);
  });
});
