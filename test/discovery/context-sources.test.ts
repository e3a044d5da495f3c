import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contextSources, contextSourceFor, pullServiceNowCmdb, ContextError, type ContextRecord } from '../../discovery/context/index.js';
import { readHead } from '../../discovery/context/common.js';
import { connectors, connectorFor, ReportError, type NormalizedFinding } from '../../discovery/connectors/index.js';
import { storedFingerprint } from './fingerprints.js';
import { createServiceNowSimulator, defaultDemoServers, type ServiceNowSimulator } from '../../mobilization/itsm/servicenow/simulator.js';

const examples = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'context');
const example = (name: string) => join(examples, name);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ctx-sources-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Writes a scratch file (string as is, anything else as JSON). */
function fixture(name: string, content: unknown): string {
  const file = join(tmp, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function parse(source: string, file: string): Promise<ContextRecord[]> {
  const src = contextSources.find((s) => s.source === source)!;
  const out: ContextRecord[] = [];
  for await (const r of src.parse(file)) out.push(r);
  return out;
}

async function parseError(source: string, file: string): Promise<ContextError> {
  try {
    await parse(source, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ContextError);
    return err as ContextError;
  }
  throw new Error(`expected ${source} to reject ${file}`);
}

const assets = (records: ContextRecord[]) => records.map((r) => (r.type === 'asset' ? r.asset : expect.fail(`not an asset: ${r.type}`)));

const WEB = { fqdn: 'web-01.prod.example.com', ip: '10.0.1.10', instanceId: 'i-0a1b2c3d4e5f60001', sg: 'sg-0a1b2c3d4e5f00001' };
const APP = { fqdn: 'app-01.prod.example.com', ip: '10.0.1.20', instanceId: 'i-0a1b2c3d4e5f60002', sg: 'sg-0a1b2c3d4e5f00002' };
const DB = { fqdn: 'db-01.prod.example.com', ip: '10.0.2.20', instanceId: 'i-0a1b2c3d4e5f60003', sg: 'sg-0a1b2c3d4e5f00003' };
const PAYMENTS_API = { image: 'registry.example.com/shop/payments-api:1.4.2', imageDigest: 'sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0' };
const NGINX = { image: 'docker.io/library/nginx:1.25.3', imageDigest: 'sha256:a484819eb60211f5299034ac80f6a681b06f89e65866ce91f356ed7c72af059c' };
const partOfPayments = { relation: 'part_of', target: {}, targetKind: 'business_service', targetName: 'Payments' };

// ---------------------------------------------------------------------------------------------

describe('example files', () => {
  it('cmdb.csv: business service, three hosts and two images with relations', async () => {
    const got = assets(await parse('cmdb-csv', example('cmdb.csv')));
    expect(got).toHaveLength(6);
    expect(got[0]).toEqual({
      identifiers: { cmdbId: '5d1f0c9e2b8a4e7f9c3d6a1b0e2f4c81' },
      kind: 'business_service',
      name: 'Payments',
      owner: 'alex.romero',
      businessService: 'Payments',
      criticality: 'critical',
      annualRevenue: 48_000_000,
      environment: 'production',
    });
    expect(got[1]).toEqual({
      identifiers: { fqdn: WEB.fqdn, hostname: 'web-01', ips: [WEB.ip], instanceId: WEB.instanceId, cmdbId: '7a3c9e1f4b2d4c6e8f0a1b3c5d7e9f01' },
      kind: 'host',
      name: 'web-01',
      owner: 'alex.romero',
      businessService: 'Payments',
      criticality: 'high',
      environment: 'production',
      tags: { tier: 'web', os: 'ubuntu-22.04' },
      relations: [partOfPayments],
    });
    // ServiceNow's "1 - most critical" and several IPs separated by ';'.
    expect(got[2]).toMatchObject({ name: 'app-01', criticality: 'critical' });
    expect(got[3]).toMatchObject({ name: 'db-01', owner: 'jonas.weber', identifiers: { ips: ['10.0.2.20', '10.0.2.21'] } });
    expect(got[4]).toEqual({
      identifiers: PAYMENTS_API,
      kind: 'container_image',
      name: PAYMENTS_API.image,
      owner: 'alex.romero',
      businessService: 'Payments',
      criticality: 'critical',
      environment: 'production',
      relations: [partOfPayments, { relation: 'runs_on', target: { fqdn: APP.fqdn }, targetKind: 'host', targetName: APP.fqdn }],
    });
    expect(got[5]).toMatchObject({ identifiers: NGINX, owner: 'priya.natarajan', criticality: 'medium', relations: [{ relation: 'runs_on', target: { fqdn: WEB.fqdn } }] });
  });

  it('servicenow-cmdb.json: live servers, owners as sys_id references, the retired CI skipped', async () => {
    const got = assets(await parse('servicenow-cmdb', example('servicenow-cmdb.json')));
    expect(got.map((a) => a.name)).toEqual(['web-01', 'app-01', 'db-01']);
    expect(got[0]).toEqual({
      identifiers: { fqdn: WEB.fqdn, hostname: 'web-01', ips: [WEB.ip], cmdbId: '7a3c9e1f4b2d4c6e8f0a1b3c5d7e9f01' },
      kind: 'host',
      name: 'web-01',
      owner: 'sys_id:1b2c3d4e5f60718293a4b5c6d7e8f901',
      businessService: 'Payments',
      criticality: 'high',
      environment: 'production',
      tags: { sys_class_name: 'cmdb_ci_linux_server', os: 'Linux Ubuntu' },
      relations: [partOfPayments],
    });
    expect(got[1]).toMatchObject({ criticality: 'critical', owner: 'sys_id:1b2c3d4e5f60718293a4b5c6d7e8f901' });
    // No owned_by: managed_by stands in.
    expect(got[2]).toMatchObject({ criticality: 'critical', owner: 'sys_id:1b2c3d4e5f60718293a4b5c6d7e8f902' });
  });

  it('aws-describe-instances.json: running instances with IPs, public IPs, groups and tag context', async () => {
    const got = assets(await parse('cloud-inventory', example('aws-describe-instances.json')));
    expect(got.map((a) => a.name)).toEqual(['web-01', 'app-01', 'db-01']); // the terminated web-00 is skipped
    expect(got[0]).toEqual({
      identifiers: { instanceId: WEB.instanceId, ips: [WEB.ip], fqdn: 'ip-10-0-1-10.eu-west-1.compute.internal' },
      kind: 'host',
      name: 'web-01',
      owner: 'alex.romero',
      businessService: 'Payments',
      environment: 'production',
      criticality: 'high',
      publicIps: ['203.0.113.10'],
      securityGroups: [WEB.sg],
      tags: { Name: 'web-01', Owner: 'alex.romero', Service: 'Payments', Environment: 'Production', Criticality: 'high' },
    });
    expect(got[1]).not.toHaveProperty('publicIps');
    expect(got[2]).toMatchObject({ identifiers: { instanceId: DB.instanceId, ips: [DB.ip, '10.0.2.21'] }, owner: 'jonas.weber', criticality: 'critical', securityGroups: [DB.sg] });
  });

  it('cloud-inventory.json: generic instances, and their containers as images running on them', async () => {
    const got = assets(await parse('cloud-inventory', example('cloud-inventory.json')));
    expect(got.map((a) => `${a.kind}:${a.name}`)).toEqual([
      'host:web-01', `container_image:${NGINX.image}`, 'host:app-01', `container_image:${PAYMENTS_API.image}`, 'host:db-01',
    ]);
    expect(got[0]).toMatchObject({ identifiers: { instanceId: WEB.instanceId, ips: [WEB.ip], fqdn: WEB.fqdn }, publicIps: ['203.0.113.10'], securityGroups: [WEB.sg], owner: 'alex.romero' });
    expect(got[3]).toEqual({
      identifiers: PAYMENTS_API,
      kind: 'container_image',
      name: PAYMENTS_API.image,
      relations: [{ relation: 'runs_on', target: { instanceId: APP.instanceId }, targetKind: 'host', targetName: 'app-01' }],
    });
    // The explicit criticality field, in ServiceNow's wording; owner as a field rather than a tag.
    expect(got[2]).toMatchObject({ criticality: 'critical', environment: 'production' });
    expect(got[4]).toMatchObject({ owner: 'jonas.weber', criticality: 'critical', identifiers: { ips: [DB.ip, '10.0.2.21'] } });
  });

  it('security-groups.json: inbound rules only, internet on 443 for web-01', async () => {
    const records = await parse('security-groups', example('security-groups.json'));
    // Each group is named before its rules, so a group without inbound rules is known too.
    expect(records.filter((r) => r.type === 'security_group')).toEqual([WEB.sg, APP.sg, DB.sg].map((securityGroup) => ({ type: 'security_group', securityGroup })));
    expect(records.every((r) => r.type === 'exposure_rule' || r.type === 'security_group')).toBe(true);
    expect(records.flatMap((r) => (r.type === 'exposure_rule' ? [r.rule] : []))).toEqual([
      { securityGroup: WEB.sg, protocol: 'tcp', fromPort: 443, toPort: 443, sources: ['0.0.0.0/0', '::/0'] },
      { securityGroup: WEB.sg, protocol: 'tcp', fromPort: 22, toPort: 22, sources: ['10.0.0.0/16'] },
      { securityGroup: APP.sg, protocol: 'tcp', fromPort: 8080, toPort: 8080, sources: [WEB.sg] },
      { securityGroup: DB.sg, protocol: 'tcp', fromPort: 5432, toPort: 5432, sources: ['10.0.1.0/24', APP.sg] },
      { securityGroup: DB.sg, protocol: 'icmp', fromPort: 0, toPort: 65535, sources: ['10.0.0.0/16'] },
      { securityGroup: DB.sg, protocol: 'all', fromPort: 0, toPort: 65535, sources: ['pl-0a1b2c3d4e5f00099'] },
    ]);
  });

  it('edr-runtime.jsonl and edr-runtime.csv: runtime evidence per host', async () => {
    const lines = await parse('edr-runtime', example('edr-runtime.jsonl'));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toEqual({
      type: 'runtime',
      evidence: { host: { fqdn: WEB.fqdn, ips: [WEB.ip] }, hostName: WEB.fqdn, package: 'nginx', version: '1.25.3', process: 'nginx', observedAt: '2026-11-20T08:00:12.000Z' },
    });
    expect(lines[2]).toMatchObject({ evidence: { host: { fqdn: APP.fqdn }, package: 'org.apache.logging.log4j:log4j-core', version: '2.14.1', process: 'java' } });
    expect(lines[3]).toMatchObject({ evidence: { host: { hostname: 'db-01' }, hostName: 'db-01' } });

    const rows = await parse('edr-runtime', example('edr-runtime.csv'));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toEqual({
      type: 'runtime',
      evidence: { host: { fqdn: APP.fqdn, ips: [APP.ip] }, hostName: APP.fqdn, package: 'libssl1.1', version: '1.1.1k-r0', process: 'java', observedAt: '2026-11-20T08:03:40.000Z' },
    });
    // Only an IP and a process; a time without a zone is UTC.
    expect(rows[2]).toEqual({ type: 'runtime', evidence: { host: { ips: [DB.ip] }, hostName: DB.ip, process: 'pg_dump', observedAt: '2026-11-20T02:00:00.000Z' } });
  });

  it('the sources agree on the estate: the same hosts by instance id, IP and FQDN', async () => {
    const cmdb = assets(await parse('cmdb-csv', example('cmdb.csv')));
    const aws = assets(await parse('cloud-inventory', example('aws-describe-instances.json')));
    const sn = assets(await parse('servicenow-cmdb', example('servicenow-cmdb.json')));
    for (const host of [WEB, APP, DB]) {
      const c = cmdb.find((a) => a.identifiers.fqdn === host.fqdn)!;
      expect(aws.find((a) => a.identifiers.instanceId === host.instanceId)?.identifiers.ips).toContain(host.ip);
      expect(c.identifiers.instanceId).toBe(host.instanceId);
      expect(sn.find((a) => a.identifiers.cmdbId === c.identifiers.cmdbId)?.identifiers.fqdn).toBe(host.fqdn);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const EXPECTED_SOURCE: Record<string, string> = {
  'cmdb.csv': 'cmdb-csv',
  'servicenow-cmdb.json': 'servicenow-cmdb',
  'aws-describe-instances.json': 'cloud-inventory',
  'cloud-inventory.json': 'cloud-inventory',
  'security-groups.json': 'security-groups',
  'edr-runtime.jsonl': 'edr-runtime',
  'edr-runtime.csv': 'edr-runtime',
  'network-segments.json': 'network-segments',
};

describe('detection', () => {
  it.each(Object.entries(EXPECTED_SOURCE))('%s is claimed by %s only, and by no scanner connector', async (name, source) => {
    const head = await readHead(example(name));
    expect(contextSources.filter((s) => s.detect(head)).map((s) => s.source)).toEqual([source]);
    expect((await contextSourceFor(example(name), name)).source).toBe(source);
    expect(connectors.filter((c) => c.detect(head)).map((c) => c.format)).toEqual([]);
  });

  it('the CNAPP example is a scanner report, not context', async () => {
    const head = await readHead(example('cnapp-findings.json'));
    expect(contextSources.filter((s) => s.detect(head))).toEqual([]);
    expect(connectors.filter((c) => c.detect(head)).map((c) => c.format)).toEqual(['cnapp']);
  });

  it('detects the empty-but-valid documents', async () => {
    expect((await contextSourceFor(fixture('sn-empty.json', { result: [] }), 'sn-empty.json')).source).toBe('servicenow-cmdb');
    expect((await contextSourceFor(fixture('sg-empty.json', { SecurityGroups: [] }), 'sg-empty.json')).source).toBe('security-groups');
    expect((await contextSourceFor(fixture('aws-empty.json', { Reservations: [] }), 'aws-empty.json')).source).toBe('cloud-inventory');
  });

  it('names the source or says why it cannot', async () => {
    expect((await contextSourceFor(example('cmdb.csv'), 'cmdb.csv', 'cmdb-csv')).source).toBe('cmdb-csv');
    await expect(contextSourceFor(example('cmdb.csv'), 'cmdb.csv', 'nope')).rejects.toThrow(/^cmdb\.csv: nope: unknown context source; supported: cmdb-csv, servicenow-cmdb, cloud-inventory, security-groups, edr-runtime, network-segments$/);
    const empty = fixture('empty.json', '  \n');
    await expect(contextSourceFor(empty, 'empty.json')).rejects.toThrow('empty.json: unknown: the file is empty');
    await expect(contextSourceFor(fixture('other.json', { hello: 'world' }), 'other.json')).rejects.toThrow(/other\.json: unknown: context format not recognised; supported: /);
    await expect(contextSourceFor(join(tmp, 'missing.csv'), 'missing.csv')).rejects.toThrow('missing.csv: unknown: cannot read the file (ENOENT)');
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad and empty input', () => {
  it('every source rejects an empty file by name', async () => {
    const file = fixture('blank.txt', '');
    for (const s of contextSources) {
      const err = await parseError(s.source, file);
      expect(err.message).toBe(`blank.txt: ${s.source}: the file is empty`);
    }
  });

  it('valid documents with nothing in them yield nothing', async () => {
    expect(await parse('cmdb-csv', fixture('header.csv', 'name,kind,owner\n'))).toEqual([]);
    expect(await parse('servicenow-cmdb', fixture('sn-empty.json', { result: [] }))).toEqual([]);
    expect(await parse('cloud-inventory', fixture('gen-empty.json', { instances: [] }))).toEqual([]);
    expect(await parse('security-groups', fixture('sg-empty.json', { SecurityGroups: [] }))).toEqual([]);
    expect(await parse('edr-runtime', fixture('edr-header.csv', 'host,package,observed_at\r\n'))).toEqual([]);
  });

  it('cmdb-csv: a missing required column names the column and the file', async () => {
    const err = await parseError('cmdb-csv', fixture('no-name.csv', 'hostname,owner,criticality\nweb-01,alex.romero,high\n'));
    expect(err).toMatchObject({ file: 'no-name.csv', source: 'cmdb-csv', where: 'name' });
    expect(err.message).toBe('no-name.csv: cmdb-csv: name: required column "name" is missing from the header row');
  });

  it('cmdb-csv: a bad value names its line and column', async () => {
    const csv = 'Name,Criticality,IP\nweb-01,high,10.0.1.10\n\n"db-01",urgent,10.0.2.20\n';
    const err = await parseError('cmdb-csv', fixture('bad-crit.csv', csv));
    expect(err).toMatchObject({ file: 'bad-crit.csv', where: 'line 4, column criticality' });
    expect(err.reason).toMatch(/^unknown criticality "urgent"; expected one of critical, high, medium, low, "1 - most critical"/);
    const ip = await parseError('cmdb-csv', fixture('bad-ip.csv', 'name,ip\nweb-01,10.0.1.10;10.0.1.999\n'));
    expect(ip.message).toBe('bad-ip.csv: cmdb-csv: line 2, column ip: "10.0.1.999" is not an IP address');
    const revenue = await parseError('cmdb-csv', fixture('bad-revenue.csv', 'name,kind,annual_revenue\nShop,business_service,"$4,000,000"\n'));
    expect(revenue.message).toBe('bad-revenue.csv: cmdb-csv: line 2, column annual_revenue: "$4,000,000" is not a yearly revenue figure (a number such as 12500000 or 12.5M)');
    const negative = await parseError('cmdb-csv', fixture('neg-revenue.csv', 'name,kind,revenue\nShop,business_service,-5\n'));
    expect(negative.where).toBe('line 2, column annual_revenue');
    // A decimal comma is refused, never read as a thousands separator (12,5M is not 125M).
    const comma = await parseError('cmdb-csv', fixture('comma-revenue.csv', 'name,kind,revenue\nShop,business_service,"12,5M"\n'));
    expect(comma.where).toBe('line 2, column annual_revenue');
    const spelled = assets(await parse('cmdb-csv', fixture('revenue.csv', 'name,kind,revenue\nShop,business_service,"12,500,000"\nBlog,business_service,1.5M\nWiki,business_service,250k\n')));
    expect(spelled.map((a) => a.annualRevenue)).toEqual([12_500_000, 1_500_000, 250_000]);
    const kind = await parseError('cmdb-csv', fixture('bad-kind.csv', 'name,kind\nweb-01,toaster\n'));
    expect(kind.message).toMatch(/^bad-kind\.csv: cmdb-csv: line 2, column kind: unknown kind "toaster"; expected one of host, /);
    const name = await parseError('cmdb-csv', fixture('empty-name.csv', 'name,owner\n,alex.romero\n'));
    expect(name.where).toBe('line 2, column name');
  });

  it('servicenow-cmdb: malformed, truncated, error answers and bad values', async () => {
    const malformed = await parseError('servicenow-cmdb', fixture('sn-bad.json', '{"result": [{"name": "web-01",}]}'));
    expect(malformed).toMatchObject({ file: 'sn-bad.json', source: 'servicenow-cmdb' });
    expect(malformed.reason).toMatch(/^not valid JSON: /);
    const truncated = await parseError('servicenow-cmdb', fixture('sn-cut.json', '{"result": [{"name": "web-01", "sys_id": "7a3c'));
    expect(truncated.reason).toMatch(/^not valid JSON: the file ends early .*truncated/);
    const answer = await parseError('servicenow-cmdb', fixture('sn-401.json', { error: { message: 'User Not Authenticated', detail: null }, status: 'failure' }));
    expect(answer.message).toBe('sn-401.json: servicenow-cmdb: error: the file is a ServiceNow error response: User Not Authenticated');
    const crit = await parseError('servicenow-cmdb', fixture('sn-crit.json', { result: [{ name: 'a' }, { name: 'b', business_criticality: '0 - mission critical' }] }));
    const revenue = await parseError('servicenow-cmdb', fixture('sn-revenue.json', { result: [{ name: 'Shop', sys_class_name: 'cmdb_ci_service', u_annual_revenue: 'lots' }] }));
    expect(revenue.where).toBe('result[0].u_annual_revenue');
    const service = assets(await parse('servicenow-cmdb', fixture('sn-service.json', { result: [{ name: 'Shop', sys_class_name: 'cmdb_ci_service', u_annual_revenue: '12500000' }] })));
    expect(service[0]).toMatchObject({ kind: 'business_service', annualRevenue: 12_500_000 });
    expect(crit.where).toBe('result[1].business_criticality');
    const noName = await parseError('servicenow-cmdb', fixture('sn-noname.json', { result: [{ sys_id: 'x' }] }));
    expect(noName.where).toBe('result[0].name');
    const notTable = await parseError('servicenow-cmdb', fixture('sn-other.json', { records: [] }));
    expect(notTable.message).toBe('sn-other.json: servicenow-cmdb: result: missing: not a ServiceNow Table API response');
  });

  it('servicenow-cmdb: display values and bare sys_ids are understood', async () => {
    const file = fixture('sn-display.json', {
      result: [
        { name: { display_value: 'web-01', value: 'web-01' }, owned_by: { display_value: 'Alex Romero', link: 'x', value: '1b2c3d4e5f60718293a4b5c6d7e8f901' }, u_business_service: { display_value: 'Payments', value: '5d1f0c9e2b8a4e7f9c3d6a1b0e2f4c81' } },
        { name: 'db-01', owned_by: '1b2c3d4e5f60718293a4b5c6d7e8f902', ip_address: 'N/A' },
        { name: 'app-01', owned_by: 'Alex Romero', sys_class_name: 'cmdb_ci_service' },
      ],
    });
    const got = assets(await parse('servicenow-cmdb', file));
    expect(got[0]).toMatchObject({
      name: 'web-01',
      owner: 'sys_id:1b2c3d4e5f60718293a4b5c6d7e8f901',
      businessService: 'Payments',
      relations: [{ relation: 'part_of', target: { cmdbId: '5d1f0c9e2b8a4e7f9c3d6a1b0e2f4c81' }, targetName: 'Payments' }],
    });
    expect(got[1]).toEqual({ identifiers: {}, kind: 'host', name: 'db-01', owner: 'sys_id:1b2c3d4e5f60718293a4b5c6d7e8f902' });
    expect(got[2]).toMatchObject({ kind: 'business_service', owner: 'Alex Romero' });
  });

  it('cloud-inventory: malformed, truncated, missing ids and bad tags', async () => {
    const truncated = await parseError('cloud-inventory', fixture('aws-cut.json', '{"Reservations": [{"Instances": [{"InstanceId": "i-1"'));
    expect(truncated).toMatchObject({ file: 'aws-cut.json', source: 'cloud-inventory' });
    expect(truncated.reason).toMatch(/^not valid JSON: the file ends early/);
    const malformed = await parseError('cloud-inventory', fixture('aws-bad.json', '{"Reservations": [{"Instances": [{"InstanceId": i-1}]}]}'));
    expect(malformed.reason).toMatch(/^not valid JSON/);
    const noId = await parseError('cloud-inventory', fixture('aws-noid.json', { Reservations: [{ Instances: [{ InstanceId: 'i-1' }, { PrivateIpAddress: '10.0.0.1' }] }] }));
    expect(noId.message).toBe('aws-noid.json: cloud-inventory: Reservations[0].Instances[1].InstanceId: missing');
    const tag = await parseError('cloud-inventory', fixture('aws-tag.json', { Reservations: [{ Instances: [{ InstanceId: 'i-1', Tags: [{ Key: 'criticality', Value: 'very' }] }] }] }));
    expect(tag.where).toBe('Reservations[0].Instances[0].Tags');
    expect(tag.reason).toMatch(/^tag "criticality": unknown criticality "very"/);
    const ip = await parseError('cloud-inventory', fixture('gen-ip.json', { instances: [{ id: 'vm-1', privateIp: 'ten' }] }));
    expect(ip.message).toBe('gen-ip.json: cloud-inventory: instances[0].privateIp: "ten" is not an IP address');
    const digest = await parseError('cloud-inventory', fixture('gen-digest.json', { instances: [{ id: 'vm-1', containers: [{ image: 'a:1', imageDigest: 'md5:1' }] }] }));
    expect(digest.where).toBe('instances[0].containers[0].imageDigest');
    const neither = await parseError('cloud-inventory', fixture('gen-none.json', { vms: [] }));
    expect(neither.reason).toMatch(/neither "Reservations" .* nor "instances" found/);
    const shape = await parseError('cloud-inventory', fixture('gen-shape.json', { instances: { a: 1 } }));
    expect(shape.message).toBe('gen-shape.json: cloud-inventory: instances: expected an array');
  });

  it('security-groups: malformed, missing GroupId, bad ports; exotic protocols skipped', async () => {
    const bad = await parseError('security-groups', fixture('sg-bad.json', '{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [}]}'));
    expect(bad.reason).toMatch(/^not valid JSON/);
    const noId = await parseError('security-groups', fixture('sg-noid.json', { SecurityGroups: [{ GroupName: 'x', IpPermissions: [] }] }));
    expect(noId.message).toBe('sg-noid.json: security-groups: SecurityGroups[0].GroupId: missing');
    const port = await parseError('security-groups', fixture('sg-port.json', { SecurityGroups: [{ GroupId: 'sg-1', IpPermissions: [{ IpProtocol: 'tcp', FromPort: 70000, ToPort: 70000, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }] }));
    expect(port.where).toBe('SecurityGroups[0].IpPermissions[0].FromPort');
    const rules = await parse('security-groups', fixture('sg-misc.json', {
      SecurityGroups: [{
        GroupId: 'sg-1',
        IpPermissions: [
          { IpProtocol: '50', IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
          { IpProtocol: '6', IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
          { IpProtocol: 'udp', FromPort: 53, ToPort: 53, IpRanges: [] },
        ],
      }],
    }));
    expect(rules).toEqual([{ type: 'security_group', securityGroup: 'sg-1' }, { type: 'exposure_rule', rule: { securityGroup: 'sg-1', protocol: 'tcp', fromPort: 0, toPort: 65535, sources: ['0.0.0.0/0'] } }]);
  });

  it('edr-runtime: each bad line names its line number', async () => {
    const jsonl = [
      '{"host":"web-01","package":"nginx","observed_at":"2026-11-20T08:00:00Z"}',
      '',
      '{"host":"web-01","package":"nginx",',
    ].join('\n');
    const malformed = await parseError('edr-runtime', fixture('edr-bad.jsonl', jsonl));
    expect(malformed).toMatchObject({ file: 'edr-bad.jsonl', source: 'edr-runtime', where: 'line 3' });
    expect(malformed.reason).toMatch(/^not valid JSON: /);
    const noTime = await parseError('edr-runtime', fixture('edr-time.jsonl', '{"host":"web-01","package":"nginx","observed_at":"2026-11-20T08:00:00Z"}\n{"host":"web-01","process":"sshd","observed_at":"yesterday"}\n'));
    expect(noTime.message).toBe('edr-time.jsonl: edr-runtime: line 2, observed_at: "yesterday" is not an ISO 8601 time or epoch');
    const nothing = await parseError('edr-runtime', fixture('edr-what.jsonl', '{"host":"web-01","observed_at":1763625600}\n'));
    expect(nothing.message).toBe('edr-what.jsonl: edr-runtime: line 1: neither package nor process given');
    const csv = await parseError('edr-runtime', fixture('edr-bad.csv', 'host,package,observed_at\nweb-01,nginx,2026-11-20T08:00:00Z\nweb-01,openssl,\n'));
    expect(csv.message).toBe('edr-bad.csv: edr-runtime: line 3, column observed_at: empty');
    const column = await parseError('edr-runtime', fixture('edr-col.csv', 'host,package,seen\nweb-01,nginx,2026-11-20\n'));
    expect(column.message).toBe('edr-col.csv: edr-runtime: observed_at: required column "observed_at" is missing from the header row');
    const epoch = await parse('edr-runtime', fixture('edr-epoch.jsonl', '{"host":"10.0.1.10","process":"sshd","observed_at":1763625600}\n'));
    expect(epoch).toEqual([{ type: 'runtime', evidence: { host: { ips: ['10.0.1.10'] }, hostName: '10.0.1.10', process: 'sshd', observedAt: '2025-11-20T08:00:00.000Z' } }]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('streaming', () => {
  async function writeBig(name: string, head: string, item: (i: number) => string, sep: string, tail: string, size: number) {
    const file = join(tmp, name);
    const out = createWriteStream(file);
    let bytes = 0;
    let n = 0;
    const write = async (s: string) => {
      bytes += s.length;
      if (!out.write(s)) await once(out, 'drain');
    };
    await write(head);
    while (bytes < size) await write((n > 0 ? sep : '') + item(n++));
    await write(tail);
    out.end();
    await once(out, 'finish');
    return { file, n };
  }

  async function measure(source: string, file: string) {
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let count = 0;
    for await (const _ of contextSources.find((s) => s.source === source)!.parse(file)) {
      if (++count % 5000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    return { count, growth: peak - baseline };
  }

  it('an ~60 MB describe-instances and an ~30 MB CMDB CSV parse in flat memory', async () => {
    const tags = Array.from({ length: 20 }, (_, t) => `{"Key":"k${t}","Value":"${'v'.repeat(40)}"}`).join(',');
    const aws = await writeBig(
      'big-aws.json',
      '{"Reservations":[{"ReservationId":"r-1","Instances":[',
      (i) => `{"InstanceId":"i-${i.toString(16).padStart(17, '0')}","PrivateIpAddress":"10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}","State":{"Name":"running"},"SecurityGroups":[{"GroupId":"sg-1","GroupName":"g"}],"Tags":[{"Key":"Name","Value":"h${i}"},{"Key":"Owner","Value":"alex.romero"},${tags}]}`,
      ',',
      ']}]}\n',
      60_000_000,
    );
    expect(statSync(aws.file).size).toBeGreaterThan(55_000_000);
    const a = await measure('cloud-inventory', aws.file);
    expect(a.count).toBe(aws.n);
    expect(a.growth).toBeLessThan(100 * 1024 * 1024);
    rmSync(aws.file);

    const csv = await writeBig(
      'big-cmdb.csv',
      'name,kind,fqdn,ip,owner,criticality,business_service\n',
      (i) => `h${i},host,h${i}.prod.example.com,10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},alex.romero,2 - somewhat critical,Payments ${'x'.repeat(40)}\n`,
      '',
      '',
      30_000_000,
    );
    const c = await measure('cmdb-csv', csv.file);
    expect(c.count).toBe(csv.n);
    expect(c.growth).toBeLessThan(100 * 1024 * 1024);
    rmSync(csv.file);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

describe('pullServiceNowCmdb against the ServiceNow simulator', () => {
  const creds = { user: 'ctem.integration', password: 'context pull secret' };
  let sim: ServiceNowSimulator;

  beforeAll(async () => {
    sim = createServiceNowSimulator({ credentials: creds });
    await sim.listen(0);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await sim?.close();
  });

  const pull = async (options?: Parameters<typeof pullServiceNowCmdb>[2], user = creds.user) => {
    const out: ContextRecord[] = [];
    for await (const r of pullServiceNowCmdb({ baseUrl: sim.url, user, password: creds.password }, 'cmdb_ci_server', options)) out.push(r);
    return out;
  };

  it('returns the seeded servers with owners resolved to user_name, paging and caching lookups', async () => {
    const calls: string[] = [];
    const real = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      calls.push(String(input));
      return real(input, init);
    });
    try {
      const got = assets(await pull({ pageSize: 2 }));
      const byName = new Map(got.map((a) => [a.name, a]));
      expect([...byName.keys()].sort()).toEqual(defaultDemoServers.map((s) => s.name).sort());
      const seeded = sim.records('cmdb_ci_server');
      expect(byName.get('web-01')).toEqual({
        identifiers: { fqdn: WEB.fqdn, hostname: 'web-01', ips: [WEB.ip], cmdbId: seeded.find((r) => r.name === 'web-01')!.sys_id },
        kind: 'host',
        name: 'web-01',
        owner: 'alex.romero',
        businessService: 'Payments',
        criticality: 'high',
        environment: 'production',
        tags: { sys_class_name: 'cmdb_ci_server', os: 'Linux Ubuntu' },
        relations: [partOfPayments],
      });
      expect(byName.get('app-01')).toMatchObject({ owner: 'alex.romero', criticality: 'critical' });
      expect(byName.get('db-01')).toMatchObject({ owner: 'jonas.weber', criticality: 'critical', identifiers: { ips: [DB.ip] } });
      // Three servers at two a page: two pages; two distinct owners: two sys_user reads.
      expect(calls.filter((u) => u.includes('/table/cmdb_ci_server?'))).toHaveLength(2);
      expect(calls.filter((u) => u.includes('/table/sys_user/'))).toHaveLength(2);
      expect(calls[0]).toMatch(/sysparm_limit=2&sysparm_offset=0/);
    } finally {
      spy.mockRestore();
    }
  });

  it('reads 100 a page by default, skips retired CIs and keeps unresolvable owners as sys_ids', async () => {
    const auth = `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`;
    const post = (table: string, body: unknown) =>
      fetch(`${sim.url}/api/now/table/${table}`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ result: { sys_id: string } }>);
    const leaver = await post('sys_user', { user_name: 'lee.leaver', name: 'Lee Leaver' });
    await post('cmdb_ci_server', { name: 'old-01', owned_by: leaver.result.sys_id, install_status: '7' });
    await post('cmdb_ci_server', { name: 'orphan-01', owned_by: leaver.result.sys_id, ip_address: '10.0.9.9' });
    await fetch(`${sim.url}/api/now/table/sys_user/${leaver.result.sys_id}`, { method: 'DELETE', headers: { Authorization: auth } });

    const got = assets(await pull());
    expect(got.map((a) => a.name).sort()).toEqual(['app-01', 'db-01', 'orphan-01', 'web-01']);
    expect(got.find((a) => a.name === 'orphan-01')?.owner).toBe(`sys_id:${leaver.result.sys_id}`);
  });

  it('a refused request is a ContextError naming the table and the page', async () => {
    const err = await pull(undefined, 'nobody').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextError);
    expect((err as ContextError).message).toBe('servicenow:cmdb_ci_server: servicenow-cmdb: offset 0: HTTP 401: User Not Authenticated');
    sim.injectFault({ status: 503, count: 1 });
    expect(assets(await pull()).length).toBeGreaterThanOrEqual(3); // one transient failure is retried
  });
});

// ---------------------------------------------------------------------------------------------

describe('cnapp connector', () => {
  async function findings(file: string): Promise<NormalizedFinding[]> {
    const c = await connectorFor(file, 'cnapp.json', 'cnapp');
    const out: NormalizedFinding[] = [];
    for await (const f of c.parse(file, {})) out.push(f);
    return out;
  }

  it('reads the example: findings on cloud resources, instances as hosts', async () => {
    expect((await connectorFor(example('cnapp-findings.json'), 'cnapp-findings.json')).format).toBe('cnapp');
    const got = await findings(example('cnapp-findings.json'));
    expect(got).toEqual([
      {
        asset: { assetKey: `cloud:${WEB.instanceId}`, kind: 'host', name: 'web-01' },
        kind: 'vulnerability',
        issueId: 'CVE-2023-0286',
        component: 'openssl',
        version: '3.0.2-0ubuntu1.7',
        location: '',
        fixedVersion: '3.0.2-0ubuntu1.8',
        fixSource: 'scanner',
        severity: 'high',
        cvssScore: 7.4,
        title: 'OpenSSL X.400 address type confusion',
        references: ['https://nvd.nist.gov/vuln/detail/CVE-2023-0286'],
      },
      {
        asset: { assetKey: 'cloud:arn:aws:s3:::example-payments-exports', kind: 'other', name: 'example-payments-exports' },
        kind: 'misconfiguration',
        issueId: 'S3.8',
        component: 'AWS::S3::Bucket',
        version: '',
        location: '',
        severity: 'high',
        title: 'S3 Block Public Access is not enabled on the bucket',
        description: 'The bucket allows public ACLs and policies; payment exports could be exposed.',
      },
      {
        asset: { assetKey: `cloud:${DB.instanceId}`, kind: 'host', name: 'db-01' },
        kind: 'misconfiguration',
        issueId: 'EC2.8',
        component: 'AWS::EC2::Instance',
        version: '',
        location: '',
        severity: 'medium',
        title: 'EC2 instance does not require IMDSv2',
        vendorStatus: 'will_not_fix',
      },
    ]);
    expect(new Set(got.map(storedFingerprint)).size).toBe(3);
  });

  it('empty, malformed and incomplete documents', async () => {
    expect(await findings(fixture('cnapp-empty.json', { findings: [] }))).toEqual([]);
    expect(connectors.filter((c) => c.detect(JSON.stringify({ findings: [] }))).map((c) => c.format)).toEqual(['cnapp']);
    const reject = async (name: string, content: unknown) => {
      const err = await findings(fixture(name, content)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReportError);
      return (err as ReportError).message;
    };
    expect(await reject('cnapp-cut.json', '{"findings": [{"id": "f-1", "resource": {"id": "i-1"')).toMatch(/^cnapp-cut\.json: cnapp: not valid JSON: the report ends early/);
    expect(await reject('cnapp-nores.json', { findings: [{ id: 'f-1', title: 't' }] })).toBe('cnapp-nores.json: cnapp: findings[0].resource: missing');
    expect(await reject('cnapp-sev.json', { findings: [{ id: 'f-1', resource: { id: 'r' }, severity: 'urgent' }] })).toBe('cnapp-sev.json: cnapp: findings[0].severity: unknown severity "urgent"');
    expect(await reject('cnapp-none.json', { items: [] })).toBe('cnapp-none.json: cnapp: findings: missing: not a CNAPP findings document');
  });
});
