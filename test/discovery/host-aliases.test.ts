import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { connectorFor } from '../../discovery/connectors/index.js';
import { reportedHost } from '../../discovery/connectors/nessus/host.js';
import { contextSourceFor } from '../../discovery/context/index.js';
import type { AssetRef } from '../../discovery/model.js';
import { ingestContext } from '../../discovery/store/context.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// A scanner record's other names for a host (its IP beside its FQDN, an instance id beside its
// addresses, a Defender device id beside its name): parsed from real reports, recorded on the asset,
// and resolved by the identity rule: IPs are weak, so a later scan by IP only finds the host, but
// two named hosts that trade addresses (DHCP) stay two assets and the address moves.

const fixture = (...parts: string[]) => join(import.meta.dirname, '..', 'fixtures', ...parts);

/** Every asset of a report (by key) with its other names, and how many AssetRef objects carried them. */
async function assetsOf(file: string) {
  const connector = await connectorFor(file, file);
  const assets = new Map<string, AssetRef['alsoKnownAs']>();
  const refs = new Set<AssetRef>();
  let findings = 0;
  for await (const f of connector.parse(file, {})) {
    findings++;
    refs.add(f.asset);
    assets.set(f.asset.assetKey, f.asset.alsoKnownAs);
  }
  return { assets, refs: refs.size, findings };
}

describe('parsing: the other names real reports give a host', () => {
  it('a record keeps its IP addresses and other FQDNs, and short names only when it has no FQDN', () => {
    expect(reportedHost({ fqdn: 'Web1.Corp.', hostname: 'web1', netbios: 'WEB1', ip: '10.0.0.5', target: '10.0.0.5' }, undefined))
      .toEqual({ assetKey: 'host:web1.corp', kind: 'host', name: 'web1.corp', alsoKnownAs: [['ip', '10.0.0.5']] });
    expect(reportedHost({ hostname: 'db7', netbios: 'DB7-OLD', ip: '10.0.0.7' }, undefined)!.alsoKnownAs)
      .toEqual([['hostname', 'db7-old'], ['ip', '10.0.0.7']]);
    // A cell listing several addresses: the first is the identity of an unnamed host, all are its.
    expect(reportedHost({ ip: '["10.0.0.8", "192.168.9.8"]' }, undefined))
      .toEqual({ assetKey: 'host:10.0.0.8', kind: 'host', name: '10.0.0.8', alsoKnownAs: [['ip', '192.168.9.8']] });
    // A management tool's machine id is always an alias, even beside an FQDN.
    expect(reportedHost({ fqdn: 'ws1.corp', machineId: 'ABC123' }, undefined)!.alsoKnownAs).toEqual([['hostname', 'abc123']]);
    expect(reportedHost({ ip: '10.0.0.9' }, undefined)!.alsoKnownAs).toBeUndefined();
  });

  it('fixtures: Tenable VM, OpenVAS, Qualys PCI, Inspector and Defender name each host one way, with its other names, one AssetRef per host', async () => {
    const tenable = await assetsOf(fixture('tenable-vm-csv', 'nessus_new.csv'));
    expect(tenable).toMatchObject({ findings: 236, refs: 99 });
    expect(tenable.assets.size).toBe(99);
    expect(tenable.assets.get('host:blah1')).toEqual([['ip', '10.0.0.1']]);
    expect([...tenable.assets.values()].every((a) => a?.length === 1 && a[0]![0] === 'ip')).toBe(true);

    const openvas = await assetsOf(fixture('openvas-xml', 'report_detail_v2.xml'));
    expect(openvas).toMatchObject({ findings: 93, refs: 1 });
    expect(openvas.assets.get('host:server99')).toEqual([['ip', '10.99.99.99']]);
    // `192.168.1.1001` is no IP address, and no name either.
    expect((await assetsOf(fixture('openvas-xml', 'many_vuln.xml'))).assets.get('host:b6b9f466d63')).toBeUndefined();

    const pci = await assetsOf(fixture('qualys-pci-csv', 'many_finding.csv'));
    expect(pci.assets.get('host:help.example.co')).toEqual([['ip', '18.238.109.17']]);

    const inspector = await assetsOf(fixture('aws-inspector2', 'aws_inspector2_many_vul.json'));
    expect(inspector.assets.get('host:i-0b22a22eec53b9321'))
      .toEqual([['instance_id', 'i-0b22a22eec53b9321'], ['ip', '8.84.11.16'], ['ip', '10.52.88.71']]);

    const defender = await assetsOf(fixture('defender-endpoint-csv', 'device-tvm-software-vulnerabilities.csv'));
    expect(defender.assets.get('host:ws-0142.corp.contoso.com')).toEqual([['hostname', 'c5a964f8b1e3d2a7f0946b8e2d1c3a5f7e9b0d24']]);
    expect(defender.refs).toBe(3);
  });

  it.skipIf(!hasCorpus)(`corpus: Nessus and Qualys hosts named by FQDN or host name carry their IP${hasCorpus ? '' : ` (${corpusSkipReason})`}`, async () => {
    const nessus = await assetsOf(corpusFile('scanners', 'defectdojo', 'tenable', 'nessus', 'nessus_v_unknown.xml'));
    expect(nessus).toMatchObject({ findings: 296, refs: 7 });
    expect(nessus.assets.get('host:qa3app09')).toEqual([['ip', '10.31.112.29']]);
    const qualys = await assetsOf(corpusFile('scanners', 'defectdojo', 'qualys', 'Qualys_Sample_Report.xml'));
    expect(qualys).toMatchObject({ findings: 353, refs: 7 });
    expect(qualys.assets.get('host:demo14.s02.sjc01.qualys.com')).toEqual([['ip', '64.41.200.244']]);
    const csv = await assetsOf(corpusFile('scanners', 'defectdojo', 'qualys', 'Qualys_Sample_Report.csv'));
    expect(csv).toMatchObject({ findings: 28, refs: 4 });
    expect(csv.assets.get('host:ip-10-98-57-180.eu-west-1.compute.internal')).toEqual([['ip', '10.98.57.180']]);
  });
});

const tmp = mkdtempSync(join(tmpdir(), 'host-aliases-'));
let database: Database;

beforeAll(async () => {
  database = await migratedTestDatabase();
});
afterAll(closeTestDatabases);

function write(name: string, content: string): string {
  const file = join(tmp, name);
  writeFileSync(file, content);
  return file;
}

const item = (pluginId: string, cve: string, port = '443') =>
  `<ReportItem port="${port}" svc_name="www" protocol="tcp" severity="3" pluginID="${pluginId}" pluginName="Plugin ${pluginId}" pluginFamily="General">
<cve>${cve}</cve><cvss3_base_score>7.5</cvss3_base_score><risk_factor>High</risk_factor></ReportItem>`;

/** A Nessus v2 report; each host is [ReportHost name, tags, items]. */
function nessus(name: string, hosts: Array<[string, Record<string, string>, string[]]>): string {
  const body = hosts.map(([host, tags, items]) => `<ReportHost name="${host}"><HostProperties>${
    Object.entries(tags).map(([k, v]) => `<tag name="${k}">${v}</tag>`).join('')}</HostProperties>
${items.join('\n')}
</ReportHost>`).join('\n');
  return write(name, `<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="aliases">\n${body}\n</Report></NessusClientData_v2>`);
}

// The Qualys VM CSV's real header (Qualys_Sample_Report.csv), with rows that name a host by IP only.
const QUALYS_HEADER = '"IP","Network","DNS","NetBIOS","Tracking Method","OS","IP Status","QID","Title","Vuln Status","Type","Severity","Port","Protocol","FQDN","SSL","First Detected","Last Detected","Times Detected","Date Last Fixed","CVE ID","Vendor Reference","Bugtraq ID","CVSS3","CVSS3 Base","CVSS3 Temporal","Threat","Impact","Solution","Exploitability","Associated Malware","PCI Vuln","Ticket State","Instance","OS CPE","Category","Associated Tags"';
function qualysByIp(name: string, rows: Array<[ip: string, qid: string, cve: string]>): string {
  return write(name, [QUALYS_HEADER, ...rows.map(([ip, qid, cve]) =>
    `"${ip}","Global Default Network",,,"IP","Linux","host scanned, found vuln","${qid}","Qualys check ${qid}","Active","Vuln","4","22","tcp",,,,,,,"${cve}",,,,,,"threat",,,,,,,,,"General",`), ''].join('\n'));
}

async function scan(file: string, source: string) {
  const connector = await connectorFor(file, file);
  return ingestFindings(database.sql, { id: randomUUID(), source, complete: false }, connector.parse(file, {}));
}

async function holder(kind: string, value: string): Promise<number | undefined> {
  const [row] = await database.sql<{ asset_id: string }[]>`select asset_id from asset_identifiers where kind = ${kind} and value = ${value}`;
  return row ? Number(row.asset_id) : undefined;
}

async function findingsOf(assetId: number): Promise<Array<{ issue_id: string; sources: string[] }>> {
  return database.sql<{ issue_id: string; sources: string[] }[]>`
    select f.issue_id, array(select source from finding_sources s where s.finding_id = f.id order by source) as sources
    from findings f where f.asset_id = ${assetId} order by f.issue_id`;
}

async function mergesOf(ids: number[]): Promise<number> {
  const [row] = await database.sql<{ n: number }[]>`
    select count(*)::int as n from asset_merges where survivor_id = any(${ids}::bigint[]) or merged_id = any(${ids}::bigint[])`;
  return row!.n;
}

const liveAssets = async (keys: string[]) =>
  (await database.sql<{ n: number }[]>`select count(*)::int as n from assets where asset_key = any(${keys}::text[]) and merged_into is null`)[0]!.n;

describe('a host named by FQDN with its IP, then scanned by IP only', () => {
  it('the IP-only scan lands on the named host: one asset, the findings of both', async () => {
    const first = await scan(nessus('web1.nessus', [['web1.alias.corp', { 'host-fqdn': 'web1.alias.corp', 'host-ip': '10.40.0.5' }, [item('1001', 'CVE-2024-1001')]]]), 'nessus');
    expect(first).toMatchObject({ assets: 1, newFindings: 1 });
    const web1 = (await holder('fqdn', 'web1.alias.corp'))!;
    expect(await holder('ip', '10.40.0.5')).toBe(web1);

    const second = await scan(qualysByIp('by-ip.csv', [['10.40.0.5', '38001', 'CVE-2024-1001'], ['10.40.0.5', '38002', 'CVE-2024-1002']]), 'qualys');
    // Qualys names its checks and ports differently from Nessus: its findings are its own, on the same asset.
    expect(second).toMatchObject({ assets: 1, findings: 2, newFindings: 2 });
    // No second asset: the Qualys record's key is recorded on the named host.
    expect(await liveAssets(['host:10.40.0.5'])).toBe(0);
    expect(await holder('key', 'host:10.40.0.5')).toBe(web1);
    expect((await findingsOf(web1)).map((f) => `${f.issue_id} ${f.sources.join(',')}`).sort())
      .toEqual(['CVE-2024-1001 nessus', 'CVE-2024-1001 qualys', 'CVE-2024-1002 qualys']);
    expect(await mergesOf([web1])).toBe(0);
  });

  it.skipIf(!hasCorpus)(`the real Qualys CSV names hosts by DNS and IP; a Nessus scan of one of them by IP finds it${hasCorpus ? '' : ` (${corpusSkipReason})`}`, async () => {
    const qualys = await scan(corpusFile('scanners', 'defectdojo', 'qualys', 'Qualys_Sample_Report.csv'), 'qualys-corpus');
    expect(qualys).toMatchObject({ assets: 4, findings: 28 });
    const named = (await holder('fqdn', 'ip-10-98-57-180.eu-west-1.compute.internal'))!;
    const before = (await findingsOf(named)).length;
    const byIp = await scan(nessus('by-ip.nessus', [['10.98.57.180', { 'host-ip': '10.98.57.180' }, [item('2001', 'CVE-2024-2001')]]]), 'nessus-dmz');
    expect(byIp).toMatchObject({ assets: 1, newFindings: 1 });
    expect(await liveAssets(['host:10.98.57.180'])).toBe(0);
    expect((await findingsOf(named)).length).toBe(before + 1);
  });
});

describe('DHCP: two named hosts trade addresses', () => {
  let app1: number;
  let app2: number;

  it('still two assets, never merged; each address now on the host that reported it last', async () => {
    await scan(nessus('dhcp-1.nessus', [
      ['app1.dhcp.corp', { 'host-fqdn': 'app1.dhcp.corp', 'host-ip': '10.50.0.11' }, [item('3001', 'CVE-2024-3001')]],
      ['app2.dhcp.corp', { 'host-fqdn': 'app2.dhcp.corp', 'host-ip': '10.50.0.12' }, [item('3002', 'CVE-2024-3002')]],
    ]), 'nessus');
    app1 = (await holder('fqdn', 'app1.dhcp.corp'))!;
    app2 = (await holder('fqdn', 'app2.dhcp.corp'))!;
    expect(app1).not.toBe(app2);
    // A scan by IP meanwhile: .11 is app1's, and its key goes there.
    expect(await scan(qualysByIp('dhcp-ip-1.csv', [['10.50.0.11', '38011', 'CVE-2024-3011']]), 'qualys')).toMatchObject({ assets: 1, newFindings: 1 });
    expect(await holder('key', 'host:10.50.0.11')).toBe(app1);

    // Next week, one report at a time: app1 has .12 (app2's), then app2 has .11 (app1's).
    expect(await scan(nessus('dhcp-2a.nessus', [['app1.dhcp.corp', { 'host-fqdn': 'app1.dhcp.corp', 'host-ip': '10.50.0.12' }, [item('3001', 'CVE-2024-3001')]]]), 'nessus'))
      .toMatchObject({ assets: 1, newFindings: 0 });
    expect(await holder('ip', '10.50.0.12')).toBe(app1);
    expect(await scan(nessus('dhcp-2b.nessus', [['app2.dhcp.corp', { 'host-fqdn': 'app2.dhcp.corp', 'host-ip': '10.50.0.11' }, [item('3002', 'CVE-2024-3002')]]]), 'nessus'))
      .toMatchObject({ assets: 1, newFindings: 0 });
    expect(await holder('ip', '10.50.0.11')).toBe(app2);
    // The key an IP-only scan gave .11 moved with it.
    expect(await holder('key', 'host:10.50.0.11')).toBe(app2);
    expect(await mergesOf([app1, app2])).toBe(0);
    expect(await liveAssets(['host:app1.dhcp.corp', 'host:app2.dhcp.corp'])).toBe(2);

    // The scan by IP now finds app2, and the finding it reported before stays on app1.
    expect(await scan(qualysByIp('dhcp-ip-2.csv', [['10.50.0.11', '38011', 'CVE-2024-3011']]), 'qualys')).toMatchObject({ assets: 1, newFindings: 1 });
    expect((await findingsOf(app1)).map((f) => f.issue_id)).toEqual(['CVE-2024-3001', 'CVE-2024-3011']);
    expect((await findingsOf(app2)).map((f) => f.issue_id)).toEqual(['CVE-2024-3002', 'CVE-2024-3011']);
  });

  it('swapped back within one report: both move, nothing merges', async () => {
    const counts = await scan(nessus('dhcp-3.nessus', [
      ['app1.dhcp.corp', { 'host-fqdn': 'app1.dhcp.corp', 'host-ip': '10.50.0.11' }, [item('3001', 'CVE-2024-3001')]],
      ['app2.dhcp.corp', { 'host-fqdn': 'app2.dhcp.corp', 'host-ip': '10.50.0.12' }, [item('3002', 'CVE-2024-3002')]],
    ]), 'nessus');
    expect(counts).toMatchObject({ assets: 2, findings: 2, newFindings: 0 });
    expect([await holder('ip', '10.50.0.11'), await holder('ip', '10.50.0.12')]).toEqual([app1, app2]);
    expect(await holder('key', 'host:10.50.0.11')).toBe(app1);
    expect(await mergesOf([app1, app2])).toBe(0);
  });

  it('one record naming two addresses held by two named hosts links neither to the other', async () => {
    // A Tenable VM row naming the host only by its address list: it is the first address's host.
    const header = 'asset.ipv4_addresses;definition.id;definition.name;definition.cve;port;protocol;severity';
    const counts = await scan(write('two-ips.csv', [header, '10.50.0.12, 10.50.0.11;4001;Plugin 4001;CVE-2024-4001;22;TCP;high', ''].join('\n')), 'tenable');
    expect(counts).toMatchObject({ assets: 1, newFindings: 1 });
    expect((await findingsOf(app2)).map((f) => f.issue_id)).toContain('CVE-2024-4001');
    expect(await mergesOf([app1, app2])).toBe(0);
    // The record reported both addresses last: both are app2's now.
    expect([await holder('ip', '10.50.0.11'), await holder('ip', '10.50.0.12')]).toEqual([app2, app2]);
  });
});

describe('strong identifiers still merge', () => {
  const cmdb = (name: string, rows: string[]) =>
    write(name, ['name,kind,sys_id,fqdn,hostname,ip,owner,business_service,criticality,environment', ...rows, ''].join('\n'));
  const importContext = async (file: string) => {
    const context = await contextSourceFor(file, file, 'cmdb-csv');
    return ingestContext(database.sql, { id: randomUUID(), source: 'cmdb-csv', format: 'cmdb-csv', complete: null }, context.parse(file));
  };

  it('a CMDB row naming a host name and an FQDN merges the two named assets; its IP alone links nothing', async () => {
    // Known by its short name to one scanner and by its FQDN to another, one IP between them.
    await scan(nessus('db7-short.nessus', [['db7', { hostname: 'db7', 'host-ip': '10.60.0.7' }, [item('5001', 'CVE-2024-5001')]]]), 'nessus-a');
    await scan(nessus('db7-fqdn.nessus', [['db7.corp', { 'host-fqdn': 'db7.corp', 'host-ip': '10.60.0.7' }, [item('5002', 'CVE-2024-5002')]]]), 'nessus-b');
    const short = (await holder('hostname', 'db7'))!;
    const full = (await holder('fqdn', 'db7.corp'))!;
    // The IP did not make them one (each has a name of its own): it moved to the later.
    expect(short).not.toBe(full);
    expect(await mergesOf([short, full])).toBe(0);
    expect(await holder('ip', '10.60.0.7')).toBe(full);

    await importContext(cmdb('db7.csv', ['db7,host,sys-db7,db7.corp,db7,10.60.0.7,dba@corp,,high,production']));
    const [merge] = await database.sql<{ survivor_id: string; merged_id: string; reason: { matched: Record<string, string[]> } }[]>`
      select survivor_id, merged_id, reason from asset_merges where merged_id = ${full}`;
    expect([Number(merge!.survivor_id), Number(merge!.merged_id)]).toEqual([short, full]);
    expect(merge!.reason.matched[String(short)]).toEqual(['hostname:db7']);
    expect(merge!.reason.matched[String(full)]).toEqual(['fqdn:db7.corp', 'key:host:db7.corp']);
    expect((await findingsOf(short)).map((f) => f.issue_id)).toEqual(['CVE-2024-5001', 'CVE-2024-5002']);
    for (const [kind, value] of [['cmdb_id', 'sys-db7'], ['fqdn', 'db7.corp'], ['hostname', 'db7'], ['ip', '10.60.0.7']] as const) {
      expect(await holder(kind, value), `${kind}:${value}`).toBe(short);
    }

    // Another machine's CMDB row with that IP: a new asset, not a merge; the IP is its now.
    await importContext(cmdb('mail7.csv', ['mail7,host,sys-mail7,mail7.corp,mail7,10.60.0.7,,,,']));
    const mail7 = (await holder('cmdb_id', 'sys-mail7'))!;
    expect(mail7).not.toBe(short);
    expect(await holder('ip', '10.60.0.7')).toBe(mail7);
    expect(await mergesOf([mail7])).toBe(0);
    expect(await mergesOf([short])).toBe(1);
  });

  it('a CMDB row known only by its id and the IP finds the host scanned by name: its id and owner go there', async () => {
    await scan(nessus('files8.nessus', [['files8.corp', { 'host-fqdn': 'files8.corp', 'host-ip': '10.60.0.8' }, [item('7001', 'CVE-2024-7101')]]]), 'nessus');
    const files8 = (await holder('fqdn', 'files8.corp'))!;
    await importContext(cmdb('files8.csv', ['files8-ci,host,sys-files8,,,10.60.0.8,ops@corp,,,']));
    expect(await holder('cmdb_id', 'sys-files8')).toBe(files8);
    expect(await liveAssets(['host:10.60.0.8'])).toBe(0);
    const [row] = await database.sql<{ owner: string }[]>`select owner from assets where id = ${files8}`;
    expect(row!.owner).toBe('ops@corp');
    expect(await mergesOf([files8])).toBe(0);
  });

  it('an asset known only by its IP is merged into the host a record names with it', async () => {
    await scan(qualysByIp('bare.csv', [['10.60.0.9', '38090', 'CVE-2024-6001']]), 'qualys');
    const bare = (await holder('ip', '10.60.0.9'))!;
    await scan(nessus('cache9.nessus', [['cache9.corp', { 'host-fqdn': 'cache9.corp' }, [item('6002', 'CVE-2024-6002')]]]), 'nessus');
    const named = (await holder('fqdn', 'cache9.corp'))!;
    expect(named).not.toBe(bare);
    // The next scan gives the name and the address together: the address-only asset is that host.
    await scan(nessus('cache9-2.nessus', [['cache9.corp', { 'host-fqdn': 'cache9.corp', 'host-ip': '10.60.0.9' }, [item('6002', 'CVE-2024-6002')]]]), 'nessus');
    expect(await mergesOf([bare, named])).toBe(1);
    expect((await findingsOf(bare)).map((f) => f.issue_id)).toEqual(['CVE-2024-6001', 'CVE-2024-6002']);
    expect(await holder('fqdn', 'cache9.corp')).toBe(bare);
  });
});

describe('Defender: the CSV names a device by name and id, the API by id', () => {
  it('both exports of one device are one asset', async () => {
    await scan(fixture('defender-endpoint-csv', 'device-tvm-software-vulnerabilities.csv'), 'defender');
    const device = (await holder('fqdn', 'srv-web01.corp.contoso.com'))!;
    const page = write('machines.json', JSON.stringify({
      '@odata.context': 'https://api.securitycenter.microsoft.com/api/$metadata#Collection(microsoft.windowsDefenderATP.api.PublicVulnerabilityDto)',
      value: [{ id: 'x', cveId: 'CVE-2024-7001', machineId: '7d0f13e2a9b84c56e1f2a3b4c5d6e7f8091a2b3c', productName: 'tool', productVendor: 'vendor', productVersion: '1.0', severity: 'High' }],
    }));
    expect(await scan(page, 'defender')).toMatchObject({ assets: 1, newFindings: 1 });
    expect(await liveAssets(['host:7d0f13e2a9b84c56e1f2a3b4c5d6e7f8091a2b3c'])).toBe(0);
    expect((await findingsOf(device)).map((f) => f.issue_id)).toContain('CVE-2024-7001');
  });
});
