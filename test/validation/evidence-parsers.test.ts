import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportedHost } from '../../discovery/connectors/nessus/host.js';
import { readHead } from '../../discovery/connectors/index.js';
import {
  EvidenceError, evidenceParserFor, evidenceParsers, parseEvidence, type EvidenceRecord,
} from '../../validation/evidence/index.js';
import type { EvidenceSkipCounts } from '../../validation/evidence/index.js';
import { zapGeneratedTime } from '../../validation/evidence/zap/index.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { dataFiles, detectedFormats, fixtureFile, fixtureRoot, scratchFiles } from '../support/connectors.js';

// The evidence parsers (Nuclei, OWASP ZAP, the generic pentest/BAS format) on real reports
// (test/fixtures/nuclei, zap) and our own samples, their skip counts, their errors, and detection
// against every scanner fixture and corpus report. Pure parsing: no database.

const UPLOADED = '2026-12-07T12:00:00.000Z';
const write = scratchFiles('evidence');

interface Parsed {
  format: string;
  records: EvidenceRecord[];
  skipped: EvidenceSkipCounts;
}

async function parse(file: string, format?: string, displayName = 'upload.dat'): Promise<Parsed> {
  const imported = await parseEvidence(file, { displayName, testedAt: UPLOADED, ...(format ? { format } : {}) });
  const records: EvidenceRecord[] = [];
  for await (const r of imported.records) records.push(r);
  return { format: imported.format, records, skipped: { ...imported.skipped } };
}

async function parseError(file: string, format?: string, displayName = 'upload.dat'): Promise<EvidenceError> {
  try {
    await parse(file, format, displayName);
  } catch (err) {
    expect(err).toBeInstanceOf(EvidenceError);
    return err as EvidenceError;
  }
  throw new Error(`accepted ${file}`);
}

const noSkips: EvidenceSkipCounts = { informational: 0, false_positive: 0, low_confidence: 0, errored: 0, no_asset: 0 };
const skips = (counts: Partial<EvidenceSkipCounts>): EvidenceSkipCounts => ({ ...noSkips, ...counts });
const nucleiFixture = (name: string) => fixtureFile('nuclei', name);
const zapFixture = (name: string) => fixtureFile('zap', name);
const genericFixture = (name: string) => fixtureFile('evidence-generic', name);

describe('nuclei: real results', () => {
  it('many_findings_new.json: a CVE template by its CVE, another by its template id, ports from matched-at and scheme', async () => {
    const { format, records, skipped } = await parse(nucleiFixture('many_findings_new.json'));
    expect(format).toBe('nuclei');
    expect(skipped).toEqual(noSkips);
    expect(records).toHaveLength(2);
    const [cve, metrics] = records;
    expect(cve).toEqual({
      // The host name outranks the IP, as in a Nessus scan of the same machine.
      asset: reportedHost({ fqdn: 'nuclei-example.com', ip: '127.0.0.1' }, undefined),
      vulnerability: 'CVE-2018-15473',
      result: 'confirmed',
      tool: 'nuclei',
      testedAt: '2022-03-21T01:43:31.231Z',
      // A network template: matched-at is host:22, while host is the scanned https URL.
      port: '22/tcp',
      target: 'nuclei-example.com:22',
      title: 'OpenSSH Username Enumeration v7.7',
      cwes: ['CWE-362'],
      detail: {
        template: 'CVE-2018-15473', severity: 'medium', type: 'network', matchedAt: 'nuclei-example.com:22',
        extractedResults: { values: ['SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7\n'], total: 1 },
      },
    });
    expect(cve!.asset.assetKey).toBe('host:nuclei-example.com');
    expect(metrics).toMatchObject({ vulnerability: 'nuclei:prometheus-metrics', result: 'confirmed', port: '443/tcp', target: 'https://nuclei-example.com/metrics', testedAt: '2022-03-21T01:48:35.345Z' });
    expect(metrics!.cwes).toBeUndefined();
    // The curl command is never kept.
    expect(JSON.stringify(records)).not.toContain('curl');
  });

  it('many_findings.json (Nuclei before 2.5: templateID, matched): 2 records, 16 info results skipped', async () => {
    const { records, skipped } = await parse(nucleiFixture('many_findings.json'));
    expect(skipped).toEqual(skips({ informational: 16 }));
    expect(records.map((r) => [r.vulnerability, r.asset.assetKey, r.port, r.detail?.severity])).toEqual([
      ['nuclei:openssh5.3-detect', 'host:nuclei-example.com', '22/tcp', 'low'],
      ['nuclei:phpmyadmin-setup', 'host:nuclei-example.com', '443/tcp', 'medium'],
    ]);
  });

  it('issue_14071.json (v3, no host field): the host from matched-at, the port from port, credentials left out', async () => {
    const { records, skipped } = await parse(nucleiFixture('issue_14071.json'));
    expect(skipped).toEqual(skips({ informational: 23 }));
    expect(records.map((r) => r.vulnerability)).toEqual(['nuclei:dvwa-default-login', 'nuclei:phpinfo-files', 'nuclei:git-config', 'nuclei:dockerfile-hidden-disclosure']);
    expect(new Set(records.map((r) => `${r.asset.assetKey} ${r.port}`))).toEqual(new Set(['host:dvwa_dvwa_1 80/tcp']));
    expect(records[0]).toMatchObject({ cwes: ['CWE-798'], target: 'http://dvwa_dvwa_1/index.php', testedAt: '2026-01-12T13:46:54.716Z', detail: { severity: 'critical' } });
    // The template logged in with admin/password: neither the meta nor the request is kept.
    const text = JSON.stringify(records);
    expect(text).not.toContain('password');
    expect(text).not.toContain('POST /login.php');
  });

  it('multiple_v3.json (-je array) and multiple_matches.json: only info results, all counted', async () => {
    const array = await parse(nucleiFixture('multiple_v3.json'));
    expect(array).toMatchObject({ format: 'nuclei', records: [], skipped: skips({ informational: 6 }) });
    const lines = await parse(nucleiFixture('multiple_matches.json'));
    expect(lines).toMatchObject({ records: [], skipped: skips({ informational: 2 }) });
  });

  it('a -je array of real results gives what their JSON lines give', async () => {
    const lines = (await readFile(nucleiFixture('many_findings_new.json'), 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const file = await write('array.json', `[\n${lines.join(',\n')}\n]\n`);
    const fromArray = await parse(file);
    expect(fromArray.records).toEqual((await parse(nucleiFixture('many_findings_new.json'))).records);
    expect(fromArray.records).toHaveLength(2);
  });
});

describe('nuclei: matcher-status (-ms)', () => {
  it('false is a dated not_exploitable test, true a confirmation; a check that errored and an info template are counted', async () => {
    const { records, skipped } = await parse(nucleiFixture('matcher-status.jsonl'));
    expect(skipped).toEqual(skips({ errored: 1, informational: 1 }));
    expect(records.map((r) => [r.vulnerability, r.result, r.asset.assetKey, r.port, r.testedAt])).toEqual([
      ['CVE-2021-44228', 'not_exploitable', 'host:app.example.com', '8443/tcp', '2026-11-30T09:15:02.418Z'],
      ['CVE-2021-44228', 'confirmed', 'host:192.0.2.20', '443/tcp', '2026-11-30T09:15:04.902Z'],
      // Written host:port, with no port field.
      ['nuclei:tomcat-default-login', 'not_exploitable', 'host:app.example.com', '8443/tcp', '2026-11-30T09:15:08.500Z'],
    ]);
    expect(records[0]!.cwes).toEqual(['CWE-502', 'CWE-400', 'CWE-20']);
    expect(records[1]!.detail).toMatchObject({ matcher: 'header', extractedResults: { values: ['192.0.2.20', 'Java/1.8.0_181'], total: 2 } });
  });

  it('one record per CVE named; extracted results bounded; no timestamp takes the upload time', async () => {
    const long = 'x'.repeat(3000);
    const line = {
      'template-id': 'multi', info: { name: 'Two CVEs', severity: 'high', classification: { 'cve-id': ['cve-2024-0001', 'CVE-2024-0002', 'not-a-cve'], 'cwe-id': ['cwe-79', 'nvd-cve-other'] } },
      type: 'http', host: 'https://[2001:db8::5]:9443', 'extracted-results': Array.from({ length: 15 }, () => long),
    };
    const { records } = await parse(await write('multi.jsonl', `${JSON.stringify(line)}\n`));
    expect(records.map((r) => r.vulnerability)).toEqual(['CVE-2024-0001', 'CVE-2024-0002']);
    expect(records[0]).toMatchObject({ asset: { assetKey: 'host:2001:db8::5' }, port: '9443/tcp', testedAt: UPLOADED, cwes: ['CWE-79'] });
    const extracted = records[0]!.detail!.extractedResults as { values: string[]; total: number };
    expect(extracted.total).toBe(15);
    expect(extracted.values).toHaveLength(10);
    for (const v of extracted.values) expect(v.length).toBeLessThan(1100);
  });

  it('a result naming no host is counted, not kept', async () => {
    const line = { 'template-id': 'orphan', info: { name: 'x', severity: 'high' }, type: 'http', 'matcher-status': true };
    expect(await parse(await write('orphan.jsonl', `${JSON.stringify(line)}\n`))).toMatchObject({ records: [], skipped: skips({ no_asset: 1 }) });
  });
});

describe('nuclei: bad input', () => {
  it('a truncated file fails at the cut line', async () => {
    const text = await readFile(nucleiFixture('many_findings_new.json'), 'utf8');
    const file = await write('cut.jsonl', text.slice(0, text.indexOf('\n') + 200));
    const err = await parseError(file, undefined, 'nuclei-run.jsonl');
    expect(err).toMatchObject({ file: 'nuclei-run.jsonl', format: 'nuclei', field: 'line 2' });
    expect(err.reason).toMatch(/not valid JSON/);
  });

  it('a line without a template id, a bad matcher-status, a non-object element, a truncated array', async () => {
    const ok = JSON.stringify({ 'template-id': 't', info: { severity: 'low' }, host: 'a.example.com' });
    expect(await parseError(await write('noid.jsonl', `${ok}\n{"info":{"severity":"low"},"host":"a.example.com"}\n`), 'nuclei'))
      .toMatchObject({ field: 'line 2, template-id' });
    expect(await parseError(await write('status.jsonl', `${ok}\n${ok.replace('{', '{"matcher-status":"yes",')}\n`)))
      .toMatchObject({ field: 'line 2, matcher-status' });
    expect(await parseError(await write('scalar.json', `[${ok}, 42]`), 'nuclei')).toMatchObject({ field: '[1]' });
    const truncated = await parseError(await write('open.json', `[${ok}, ${ok.slice(0, 30)}`), 'nuclei');
    expect(truncated.reason).toMatch(/truncated|ends early/);
  });

  it('a line nested deeper than the JSON bound is refused', async () => {
    const deep = `{"template-id":"t","info":{"severity":"low"},"host":"a.example.com","x":${'['.repeat(300)}${']'.repeat(300)}}`;
    expect((await parseError(await write('deep.jsonl', `${deep}\n`), 'nuclei')).reason).toMatch(/nested deeper than 256/);
  });
});

describe('zap: real reports', () => {
  it('petstore-api-scan.json (2020 weekly, JSON): 3 confirmed alerts, 2 informational and 2 low-confidence counted', async () => {
    const { format, records, skipped } = await parse(zapFixture('petstore-api-scan.json'));
    expect(format).toBe('zap-json');
    expect(skipped).toEqual(skips({ informational: 2, low_confidence: 2 }));
    expect(records.map((r) => [r.vulnerability, r.cwes, r.detail?.confidence, r.detail?.risk])).toEqual([
      ['zap:10036', ['CWE-200'], 3, 1],
      ['zap:100001', undefined, 3, 1],
      ['zap:100000', ['CWE-388'], 3, 1],
    ]);
    for (const r of records) {
      expect(r).toMatchObject({
        asset: { assetKey: 'host:swagger-petstore.demo-targets.svc', kind: 'host' }, result: 'confirmed', tool: 'zap', port: '80/tcp',
        target: 'http://swagger-petstore.demo-targets.svc', testedAt: '2020-06-29T09:56:27.000Z',
      });
    }
    const server = records[0]!;
    expect(server.title).toBe('Server Leaks Version Information via "Server" HTTP Response Header Field');
    expect(server.detail).toMatchObject({ pluginId: '10036', wascId: '13', instanceCount: 20 });
    const instances = server.detail!.instances as { uri: string; method: string; evidence: string }[];
    expect(instances).toHaveLength(5);
    expect(instances[0]).toEqual({ uri: 'http://swagger-petstore.demo-targets.svc/v2/pet/10/uploadImage', method: 'POST', evidence: 'Jetty(9.2.9.v20150224)' });
  });

  it('basic-traditional-json.json (ZAP\'s own template output): a risk-3 alert of medium confidence is not proof', async () => {
    expect(await parse(zapFixture('basic-traditional-json.json'))).toMatchObject({ format: 'zap-json', records: [], skipped: skips({ low_confidence: 1 }) });
  });

  it('dvwa_baseline_dojo_subset.xml: 2 confirmed alerts on an IP-named site, the rest counted', async () => {
    const { format, records, skipped } = await parse(zapFixture('dvwa_baseline_dojo_subset.xml'));
    expect(format).toBe('zap-xml');
    expect(skipped).toEqual(skips({ informational: 4, low_confidence: 4 }));
    expect(records.map((r) => [r.vulnerability, r.asset.assetKey, r.port, r.cwes, r.testedAt])).toEqual([
      ['zap:10038', 'host:172.17.0.2', '80/tcp', ['CWE-16'], '2021-04-26T07:03:32.000Z'],
      ['zap:10036', 'host:172.17.0.2', '80/tcp', ['CWE-200'], '2021-04-26T07:03:32.000Z'],
    ]);
    expect(records[0]!.detail).toMatchObject({ alertRef: '10038', risk: 2, confidence: 3, instanceCount: 11 });
    expect(records[0]!.title).toBe('Content Security Policy (CSP) Header Not Set');
  });

  it('zap-xml-plus-format.xml (German date, requests and responses): confidence 2 skipped; raised to 3 it is evidence', async () => {
    expect(await parse(zapFixture('zap-xml-plus-format.xml'))).toMatchObject({ records: [], skipped: skips({ low_confidence: 1 }) });
    const text = await readFile(zapFixture('zap-xml-plus-format.xml'), 'utf8');
    const raised = text.replace('<confidence>2</confidence>', '<confidence>3</confidence>');
    expect(raised).not.toBe(text);
    const { records } = await parse(await write('plus-raised.xml', raised));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      asset: { assetKey: 'host:localhost' }, vulnerability: 'zap:90028', port: '8080/tcp', cwes: ['CWE-200'],
      testedAt: '2022-09-30T08:40:35.000Z', title: 'Insecure HTTP Method - PUT',
    });
    // The request and response bodies of the plus format stay out of the detail.
    expect(JSON.stringify(records[0])).not.toMatch(/requestheader|HTTP\/1\.1/i);
  });

  it('ZAP 2.15+ JSON: created wins over @generated; ssl without a port gives 443; user-confirmed and false positives', async () => {
    const report = {
      '@programName': 'ZAP', '@version': '2.16.1', '@generated': 'Wed, 25 Feb 2026 11:09:49', created: '2026-02-25T11:09:49.007472780Z',
      site: [{
        '@name': 'https://app.example.com', '@host': 'APP.example.com', '@ssl': 'true',
        alerts: [
          { pluginid: '40018', alertRef: '40018', alert: 'SQL Injection', riskcode: '3', confidence: '4', cweid: '89', wascid: '19', instances: [{ uri: 'https://app.example.com/item?id=1', method: 'GET', param: 'id', attack: "1' OR '1'='1", evidence: 'x'.repeat(5000) }] },
          { pluginid: '10202', alert: 'Absence of Anti-CSRF Tokens', riskcode: '1', confidence: '0', cweid: '352', instances: [] },
          { pluginid: '10109', alert: 'Modern Web Application', riskcode: '0', confidence: '3', cweid: '-1', instances: [] },
        ],
      }],
    };
    const { records, skipped } = await parse(await write('zap216.json', JSON.stringify(report, null, 2)));
    expect(skipped).toEqual(skips({ false_positive: 1, informational: 1 }));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ asset: { assetKey: 'host:app.example.com' }, vulnerability: 'zap:40018', port: '443/tcp', cwes: ['CWE-89'], testedAt: '2026-02-25T11:09:49.007Z' });
    const [instance] = records[0]!.detail!.instances as { evidence: string }[];
    expect(instance!.evidence.length).toBeLessThan(1100);
  });

  it('reads ZAP generated dates as UTC; unreadable ones fall back', () => {
    expect(zapGeneratedTime('Thu, 18 Jun 2020 15:16:03')).toBe('2020-06-18T15:16:03.000Z');
    expect(zapGeneratedTime('Fr., 30 Sep. 2022 08:40:35')).toBe('2022-09-30T08:40:35.000Z');
    expect(zapGeneratedTime('Di., 3 Okt. 2022 08:40:35')).toBeUndefined();
    expect(zapGeneratedTime('Mon, 31 Feb 2022 08:40:35')).toBeUndefined();
  });
});

describe('zap: bad input', () => {
  it('an out-of-scale risk names the alert and field', async () => {
    const text = await readFile(zapFixture('petstore-api-scan.json'), 'utf8');
    const bad = text.replace('"riskcode": "2"', '"riskcode": "7"');
    expect(bad).not.toBe(text);
    const err = await parseError(await write('risk.json', bad), undefined, 'scan.json');
    expect(err).toMatchObject({ file: 'scan.json', format: 'zap-json', field: 'site[0].alerts[1].riskcode' });
    expect(err.reason).toMatch(/"7"; expected 0 to 3/);
  });

  it('a missing plugin id in XML names the alert item', async () => {
    const text = await readFile(zapFixture('dvwa_baseline_dojo_subset.xml'), 'utf8');
    const bad = text.replace('<pluginid>10020</pluginid>', '');
    expect((await parseError(await write('noplugin.xml', bad))).field).toBe('site[1]/alertitem[1]/pluginid');
  });

  it('truncated JSON and XML, and an entity declaration, are refused', async () => {
    const json = await readFile(zapFixture('petstore-api-scan.json'), 'utf8');
    expect((await parseError(await write('cut.json', json.slice(0, json.length / 2)))).format).toBe('zap-json');
    const xml = await readFile(zapFixture('dvwa_baseline_dojo_subset.xml'), 'utf8');
    expect((await parseError(await write('cut.xml', xml.slice(0, xml.length / 2)))).reason).toMatch(/not well-formed/);
    const bomb = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><OWASPZAPReport version="2.9.0"><site name="http://a" host="a" port="80"><alerts/></site></OWASPZAPReport>`;
    expect((await parseError(await write('bomb.xml', bomb), 'zap-xml')).reason).toMatch(/entity/i);
  });

  it('a site list that is not a list', async () => {
    expect(await parseError(await write('sites.json', '{"@version":"2.9.0","site":{"@name":"x"}}'), 'zap-json')).toMatchObject({ field: 'site' });
  });
});

describe('generic pentest / BAS format', () => {
  it('pentest.csv: every column, a URL asset, a lower-case CVE, a date without time', async () => {
    const { format, records, skipped } = await parse(genericFixture('pentest.csv'));
    expect(format).toBe('generic-csv');
    expect(skipped).toEqual(noSkips);
    expect(records).toEqual([
      {
        asset: { assetKey: 'host:web01.corp.example.com', kind: 'host', name: 'web01.corp.example.com' }, vulnerability: 'CVE-2021-44228', result: 'exploited',
        tool: 'manual pentest', testedAt: '2026-11-20T14:05:00.000Z', port: '8080/tcp', title: 'Log4Shell on the admin API',
        detail: { notes: 'JNDI lookup via X-Api-Version; reverse shell as tomcat, see report section 4.2' },
      },
      {
        asset: { assetKey: 'host:10.20.0.15', kind: 'host', name: '10.20.0.15' }, vulnerability: 'CVE-2023-46604', result: 'not_exploitable',
        tool: 'manual pentest', testedAt: '2026-11-21T00:00:00.000Z', port: '61616/tcp', title: 'ActiveMQ OpenWire deserialisation',
        detail: { notes: 'Broker patched to 5.18.3, exploit attempt failed' },
      },
      {
        asset: { assetKey: 'host:shop.example.com', kind: 'host', name: 'shop.example.com' }, vulnerability: 'PT-2026-017', result: 'confirmed',
        tool: 'manual pentest', testedAt: '2026-11-21T08:30:00.000Z', port: '443/tcp', target: 'https://shop.example.com/checkout', title: 'Price tampering in checkout',
      },
    ]);
  });

  it('bas.json (array) and the same tests as JSON lines', async () => {
    const array = await parse(genericFixture('bas.json'));
    expect(array.format).toBe('generic-json');
    expect(array.records.map((r) => [r.asset.assetKey, r.vulnerability, r.result, r.port, r.tool, r.testedAt])).toEqual([
      ['host:db02.corp.example.com', 'CVE-2022-21661', 'not_exploitable', '443/tcp', 'bas-nightly', '2026-11-25T03:00:00.000Z'],
      ['host:192.0.2.44', 'bas:lateral-movement-smb', 'exploited', '445/tcp', 'bas-nightly', '2026-11-25T03:10:00.000Z'],
    ]);
    const objects = JSON.parse(await readFile(genericFixture('bas.json'), 'utf8')) as unknown[];
    const lines = await parse(await write('bas.jsonl', objects.map((o) => JSON.stringify(o)).join('\n')));
    expect(lines.format).toBe('generic-json');
    expect(lines.records).toEqual(array.records);
  });

  const csv = (...rows: string[]) => ['asset,vulnerability,result,tested_at,port', ...rows].join('\n');

  it.each([
    ['an unknown result', csv('a.example.com,CVE-2024-1,exploited,2026-01-01,', 'b.example.com,CVE-2024-2,pwned,2026-01-01,'), 'line 3, column result', /"pwned" is not one of exploited, confirmed, not_exploitable/],
    ['an empty tested_at', csv('a.example.com,CVE-2024-1,not_exploitable,,'), 'line 2, column tested_at', /empty; required/],
    ['an impossible date', csv('a.example.com,CVE-2024-1,not_exploitable,2026-02-30,'), 'line 2, column tested_at', /"2026-02-30" is not an ISO 8601/],
    ['a date in another order', csv('a.example.com,CVE-2024-1,confirmed,03/01/2026,'), 'line 2, column tested_at', /not an ISO 8601/],
    ['a port out of range', csv('a.example.com,CVE-2024-1,confirmed,2026-01-01,70000'), 'line 2, column port', /"70000" is not a port/],
    ['an asset that is no host', csv('not a host!,CVE-2024-1,confirmed,2026-01-01,'), 'line 2, column asset', /is not a host name/],
    ['an asset with characters no host has', csv('db*01.example.com,CVE-2024-1,confirmed,2026-01-01,'), 'line 2, column asset', /"db\*01.example.com" is not a host name/],
    ['an id with spaces', csv('a.example.com,SQL injection,confirmed,2026-01-01,'), 'line 2, column vulnerability', /not an id/],
    ['no tested_at column', 'asset,vulnerability,result\na.example.com,CVE-2024-1,confirmed', 'tested_at', /required column "tested_at" is missing/],
  ])('CSV: %s', async (_, content, field, reason) => {
    const err = await parseError(await write('bad.csv', content), 'generic-csv', 'pentest-2026.csv');
    expect(err).toMatchObject({ file: 'pentest-2026.csv', format: 'generic-csv', field });
    expect(err.reason).toMatch(reason);
  });

  it('JSON: the record or line and the field', async () => {
    const good = { asset: 'a.example.com', vulnerability: 'CVE-2024-1', result: 'confirmed', tested_at: '2026-01-01' };
    const arrayErr = await parseError(await write('bad.json', JSON.stringify([good, { ...good, result: 'maybe' }])), undefined, 'bas.json');
    expect(arrayErr).toMatchObject({ file: 'bas.json', format: 'generic-json', field: 'record 2, result' });
    const linesErr = await parseError(await write('bad.jsonl', [good, { ...good, tested_at: 'yesterday' }].map((o) => JSON.stringify(o)).join('\n')));
    expect(linesErr).toMatchObject({ format: 'generic-json', field: 'line 2, tested_at' });
    const typeErr = await parseError(await write('type.json', JSON.stringify([{ ...good, port: [443] }])), 'generic-json');
    expect(typeErr).toMatchObject({ field: 'record 1, port' });
  });
});

describe('the registry', () => {
  it('empty file, directory, unknown content, unknown format name', async () => {
    const empty = await write('empty.json', '\uFEFF  \n');
    expect(await evidenceParserFor(empty, 'empty.json').catch((e: unknown) => e)).toMatchObject({ file: 'empty.json', reason: 'the file is empty' });
    const dir = join(await write('x', ''), '..', 'a-directory');
    await mkdir(dir, { recursive: true });
    expect(await evidenceParserFor(dir, 'results').catch((e: unknown) => e)).toMatchObject({ file: 'results', reason: 'is a directory' });
    const unknown = await evidenceParserFor(await write('other.json', '{"hello": "world"}'), 'other.json').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(EvidenceError);
    expect((unknown as EvidenceError).reason).toBe('format not recognised; supported: nuclei, zap-json, zap-xml, generic-csv, generic-json');
    expect(await evidenceParserFor(empty, 'x', 'burp').catch((e: unknown) => e)).toMatchObject({ format: 'burp', reason: expect.stringMatching(/^unknown format; supported: nuclei, /) });
    expect((await evidenceParserFor(zapFixture('petstore-api-scan.json'), 'p', 'zap-json')).format).toBe('zap-json');
    // The parsers check for themselves too, when called with a named format.
    expect(await parseError(empty, 'zap-xml')).toMatchObject({ format: 'zap-xml', reason: 'the file is empty' });
  });

  it('random bytes are no format, and each parser forced on them fails with an EvidenceError', async () => {
    let seed = 0x2545f491;
    const bytes = Buffer.alloc(8192);
    for (let i = 0; i < bytes.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    const file = await write('random.bin', '');
    await writeFile(file, bytes);
    expect(evidenceParsers.filter((p) => p.detect(bytes.toString('utf8')))).toEqual([]);
    expect((await evidenceParserFor(file, 'random.bin').catch((e: unknown) => e))).toBeInstanceOf(EvidenceError);
    for (const parser of evidenceParsers) {
      const err = await parseError(file, parser.format, 'random.bin');
      expect(err, parser.format).toMatchObject({ file: 'random.bin', format: parser.format });
    }
  });

  it('the skip counts are read after the records', async () => {
    const imported = await parseEvidence(zapFixture('petstore-api-scan.json'), { displayName: 'petstore.json', testedAt: UPLOADED });
    expect(imported.skipped).toEqual(noSkips);
    let n = 0;
    for await (const _ of imported.records) n++;
    expect(n).toBe(3);
    expect(imported.skipped).toEqual(skips({ informational: 2, low_confidence: 2 }));
  });
});

describe('detection: exclusive among evidence formats, apart from the scanner formats', () => {
  const own: Record<string, (path: string) => string> = {
    nuclei: () => 'nuclei',
    zap: (path) => (path.endsWith('.xml') ? 'zap-xml' : 'zap-json'),
    'evidence-generic': (path) => (path.endsWith('.csv') ? 'generic-csv' : 'generic-json'),
  };
  const evidenceFormatsOf = async (file: string) => {
    const head = await readHead(file);
    return evidenceParsers.filter((p) => p.detect(head)).map((p) => p.format);
  };

  it.each(dataFiles(fixtureRoot))('fixtures/%s', async (path) => {
    const file = join(fixtureRoot, path);
    const folder = path.split('/')[0]!;
    const owner = own[folder];
    expect(await evidenceFormatsOf(file), path).toEqual(owner ? [owner(path)] : []);
    // No scanner connector claims an evidence report.
    if (owner) expect(await detectedFormats(file), path).toEqual([]);
  });

  it.skipIf(!hasCorpus)(`claims no corpus scanner report${hasCorpus ? '' : ` (${corpusSkipReason})`}`, async () => {
    const files = dataFiles(corpusFile('scanners'));
    expect(files.length).toBeGreaterThan(70);
    const claimed: string[] = [];
    for (const path of files) if ((await evidenceFormatsOf(corpusFile('scanners', path))).length > 0) claimed.push(path);
    expect(claimed).toEqual([]);
  });
});
