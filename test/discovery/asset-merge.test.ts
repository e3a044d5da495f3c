import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { connectorFor } from '../../discovery/connectors/index.js';
import { contextSourceFor } from '../../discovery/context/index.js';
import { ingestContext } from '../../discovery/store/context.js';
import { refreshInternetExposure } from '../../discovery/store/exposure.js';
import { resolveAssets, stageContextIdentifiers } from '../../discovery/store/identity.js';
import { fingerprint, ingestFindings } from '../../discovery/store/ingest.js';
import { ASSET_REFERENCES, assetMergeHistory, mergeAssets, MergeUndoError, undoMerge } from '../../discovery/store/merge.js';
import { getAsset } from '../../db/read-models/inventory.js';
import { defaultPolicy } from '../../prioritization/policy.js';
import { rescoreChanged } from '../../prioritization/scoring/incremental.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Asset merge on real PostgreSQL, with real report and context files: a record naming identifiers
// of two existing assets merges them (findings, sources, context, tickets...), once; the merge is
// recorded, shown in the asset's history, and an undo puts back exactly what was there.

const tmp = mkdtempSync(join(tmpdir(), 'asset-merge-'));
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

const SWEET32 = `<ReportItem port="443" svc_name="www" protocol="tcp" severity="3" pluginID="42873" pluginName="SSL Medium Strength Cipher Suites Supported (SWEET32)" pluginFamily="General">
<cve>CVE-2016-2183</cve><cve>CVE-2016-6329</cve><cvss3_base_score>7.5</cvss3_base_score><risk_factor>Medium</risk_factor></ReportItem>`;
const KIBANA = `<ReportItem port="8080" svc_name="www" protocol="tcp" severity="2" pluginID="200798" pluginName="Kibana &lt; 7.17.22" pluginFamily="CGI abuses">
<cve>CVE-2024-23443</cve><cvss3_base_score>4.9</cvss3_base_score><plugin_output>Installed version : 7.13.2
  Fixed version : 7.17.22</plugin_output></ReportItem>`;
const OPENSSL = `<ReportItem port="0" svc_name="general" protocol="tcp" severity="4" pluginID="160000" pluginName="RHEL 7 : openssl (RHSA-2022:0000)" pluginFamily="Red Hat Local Security Checks">
<cve>CVE-2022-0778</cve><cvss3_base_score>9.8</cvss3_base_score><risk_factor>Critical</risk_factor>
<plugin_output>Remote package installed : openssl-1.0.2k-19.el7
Should be                : openssl-1.0.2k-25.el7</plugin_output></ReportItem>`;

/** A Nessus v2 report of one host, named by the tags given. */
function nessus(name: string, host: string, tags: Record<string, string>, items: string[]): string {
  const properties = Object.entries(tags).map(([k, v]) => `<tag name="${k}">${v}</tag>`).join('');
  return write(name, `<?xml version="1.0" ?>
<NessusClientData_v2><Report name="merge fixture">
<ReportHost name="${host}"><HostProperties>${properties}</HostProperties>
${items.join('\n')}
</ReportHost></Report></NessusClientData_v2>`);
}

const CMDB_HEADER = 'name,kind,sys_id,fqdn,hostname,ip,owner,business_service,criticality,environment';
function cmdb(name: string, rows: string[]): string {
  return write(name, [CMDB_HEADER, ...rows, ''].join('\n'));
}

async function scan(file: string, source: string, owner?: string) {
  const connector = await connectorFor(file, file);
  const id = randomUUID();
  const counts = await ingestFindings(database.sql, { id, source, owner: owner ?? null }, connector.parse(file, {}));
  return { id, counts };
}

async function importContext(file: string, source = 'cmdb-csv') {
  const context = await contextSourceFor(file, file, 'cmdb-csv');
  return ingestContext(database.sql, { id: randomUUID(), source, format: 'cmdb-csv', complete: null }, context.parse(file));
}

async function assetId(kind: string, value: string): Promise<number> {
  const [row] = await database.sql<{ asset_id: string }[]>`select asset_id from asset_identifiers where kind = ${kind} and value = ${value}`;
  if (!row) throw new Error(`no asset has ${kind} ${value}`);
  return Number(row.asset_id);
}

async function findingsOf(id: number) {
  return database.sql<{ id: string; issue_id: string; fingerprint: string; sources: string[]; first_seen_at: Date }[]>`
    select f.id, f.issue_id, f.fingerprint, f.first_seen_at,
           array(select source from finding_sources s where s.finding_id = f.id order by source) as sources
    from findings f where f.asset_id = ${id} order by f.issue_id, f.id`;
}

describe('cross-scanner: one host known by IP to one Nessus, by FQDN to another', () => {
  let byIp: number;
  let byFqdn: number;

  it('a CMDB record naming both merges them into the older, folding the finding both reported', async () => {
    await scan(nessus('dmz.nessus', '10.0.0.5', { 'host-ip': '10.0.0.5' }, [SWEET32, KIBANA]), 'nessus-dmz');
    await scan(nessus('corp.nessus', 'web01.corp', { 'host-fqdn': 'web01.corp' }, [SWEET32, OPENSSL]), 'nessus-corp');
    byIp = await assetId('ip', '10.0.0.5');
    byFqdn = await assetId('fqdn', 'web01.corp');
    expect(byIp).toBeLessThan(byFqdn);
    const before = { ip: await findingsOf(byIp), fqdn: await findingsOf(byFqdn) };
    expect(before.ip.map((f) => f.issue_id)).toEqual(['CVE-2016-2183', 'CVE-2016-6329', 'CVE-2024-23443']);
    expect(before.fqdn.map((f) => f.issue_id)).toEqual(['CVE-2016-2183', 'CVE-2016-6329', 'CVE-2022-0778']);

    await importContext(cmdb('link.csv', ['web01,host,sys-web01,web01.corp,web01,10.0.0.5,alice@corp,Shop,high,production']));

    const survivor = await getAsset(database.sql, byIp);
    const merged = await getAsset(database.sql, byFqdn);
    expect(merged).toMatchObject({ mergedInto: byIp, identifiers: [], openFindings: 0, owner: null });
    expect(survivor).toMatchObject({ mergedInto: null, owner: 'alice@corp', criticality: 'high', openFindings: 4 });
    expect(survivor!.identifiers.map((i) => `${i.kind}:${i.value}`).sort()).toEqual(
      ['cmdb_id:sys-web01', 'fqdn:web01.corp', 'hostname:web01', 'ip:10.0.0.5', 'key:host:10.0.0.5', 'key:host:web01.corp'],
    );
    const after = await findingsOf(byIp);
    // 3 + 3 findings, the two SWEET32 CVEs reported by both folded: 4, each with the sources of both.
    expect(after.map((f) => f.issue_id)).toEqual(['CVE-2016-2183', 'CVE-2016-6329', 'CVE-2022-0778', 'CVE-2024-23443']);
    for (const f of after.filter((x) => x.issue_id.startsWith('CVE-2016'))) {
      expect(f.sources).toEqual(['nessus-corp', 'nessus-dmz']);
      const earliest = Math.min(...[...before.ip, ...before.fqdn].filter((b) => b.issue_id === f.issue_id).map((b) => b.first_seen_at.getTime()));
      expect(f.first_seen_at.getTime()).toBe(earliest);
    }
    // The moved finding carries the survivor in its fingerprint, as ingest computes it.
    const openssl = after.find((f) => f.issue_id === 'CVE-2022-0778')!;
    expect(openssl.id).toBe(before.fqdn.find((f) => f.issue_id === 'CVE-2022-0778')!.id);
    const [row] = await database.sql`select kind, component, version, location from findings where id = ${openssl.id}`;
    expect(openssl.fingerprint).toBe(fingerprint(byIp, { kind: row!.kind, issueId: 'CVE-2022-0778', component: row!.component, version: row!.version, location: row!.location }));

    const [merge] = await assetMergeHistory(database.sql, byIp);
    expect(merge).toMatchObject({ direction: 'into', survivorId: byIp, mergedId: byFqdn, undoneAt: null, counts: { findings: 1, folded: 2 } });
    expect(merge!.reason).toMatchObject({
      source: 'cmdb-csv',
      record: 'host:web01.corp',
      matched: { [byIp]: ['ip:10.0.0.5'], [byFqdn]: ['fqdn:web01.corp', 'key:host:web01.corp'] },
    });
    expect(await assetMergeHistory(database.sql, byFqdn)).toEqual([{ ...merge, direction: 'out' }]);
  });

  it('later scans by either name land on the survivor, and the same linking record again merges nothing', async () => {
    const again = await scan(nessus('corp-2.nessus', 'web01.corp', { 'host-fqdn': 'web01.corp' }, [SWEET32, OPENSSL]), 'nessus-corp');
    expect(again.counts).toMatchObject({ newFindings: 0, assets: 1 });
    await importContext(cmdb('link-again.csv', ['web01,host,sys-web01,web01.corp,web01,10.0.0.5,,,,']));
    const merges = await database.sql`select id from asset_merges where survivor_id = ${byIp} or merged_id = ${byIp}`;
    expect(merges).toHaveLength(1);
    expect((await findingsOf(byIp)).length).toBe(4);
    expect((await findingsOf(byFqdn)).length).toBe(0);
    // The inventory lists the survivor only.
    const listed = await database.sql`select id from assets where merged_into is null and id in (${byIp}, ${byFqdn})`;
    expect(listed.map((r) => Number(r.id))).toEqual([byIp]);
  });
});

describe('CMDB: a hostname and a CMDB id link a scanned host and a CMDB item', () => {
  it('merges them, and the owner comes from the higher-precedence source', async () => {
    await scan(nessus('app02.nessus', 'app02', { hostname: 'app02' }, [KIBANA]), 'nessus-dmz', 'scan.owner@corp');
    await importContext(cmdb('cmdb-item.csv', ['app02-ci,host,sys-app02,,,10.9.9.9,cmdb.owner@corp,Billing,critical,production']));
    const scanned = await assetId('hostname', 'app02');
    const item = await assetId('cmdb_id', 'sys-app02');
    expect(scanned).toBeLessThan(item);
    expect((await getAsset(database.sql, scanned))!.owner).toBe('scan.owner@corp');

    // The linking row states no owner: the merge alone decides it.
    await importContext(cmdb('cmdb-link.csv', ['app02,host,sys-app02,,app02,,,,,']));
    const survivor = await getAsset(database.sql, scanned);
    expect(survivor).toMatchObject({ owner: 'cmdb.owner@corp', businessService: 'Billing', criticality: 'critical', openFindings: 1, mergedInto: null });
    const [sources] = await database.sql`select attribute_sources from assets where id = ${scanned}`;
    expect(sources!.attribute_sources).toMatchObject({ owner: 'cmdb', business_service: 'cmdb', criticality: 'cmdb' });
    expect((await getAsset(database.sql, item))!.mergedInto).toBe(scanned);
  });
});

describe('a scanner report as the linking record', () => {
  it('a Trivy report naming an image by tag and digest merges the image scanned by tag with the CMDB item known by digest', async () => {
    const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8'));
    const byTag = structuredClone(fixture);
    delete byTag.Metadata;
    const first = await scan(write('by-tag.json', JSON.stringify(byTag)), 'trivy-ci');
    expect(first.counts.newFindings).toBeGreaterThan(0);
    const digest = 'sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0';
    const item = write('images.csv', ['name,kind,image_digest,owner', `payments-api build,container_image,${digest},payments@corp`, ''].join('\n'));
    await importContext(item);
    const image = await assetId('image', 'registry.example.com/shop/payments-api:1.4.2');
    const build = await assetId('image_digest', digest);
    expect(image).toBeLessThan(build);

    const linking = await scan(write('with-digest.json', JSON.stringify(fixture)), 'trivy-ci');
    expect(linking.counts).toMatchObject({ newFindings: 0, assets: 1 });
    expect(await getAsset(database.sql, image)).toMatchObject({ owner: 'payments@corp', openFindings: first.counts.findings, mergedInto: null });
    expect((await getAsset(database.sql, build))!.mergedInto).toBe(image);
    const [merge] = await assetMergeHistory(database.sql, image);
    expect(merge!.reason).toMatchObject({ source: 'trivy-ci', scanId: linking.id, record: 'image:registry.example.com/shop/payments-api:1.4.2' });
    // The scan covered the survivor: scoring and mobilization of the scan reach the merged findings.
    const [covered] = await database.sql`select count(*)::int as n from scan_assets where scan_id = ${linking.id} and asset_id = ${image}`;
    expect(covered!.n).toBe(1);
  });
});

describe('concurrent imports', () => {
  it('two imports of the linking record at once merge the assets once, and both succeed', async () => {
    await scan(nessus('race-a.nessus', '10.6.0.1', { 'host-ip': '10.6.0.1' }, [KIBANA]), 'nessus-dmz');
    await scan(nessus('race-b.nessus', 'race.corp', { 'host-fqdn': 'race.corp' }, [OPENSSL]), 'nessus-corp');
    const a = await assetId('ip', '10.6.0.1');
    const b = await assetId('fqdn', 'race.corp');
    const link = cmdb('race-link.csv', ['race,host,sys-race,race.corp,race,10.6.0.1,,,,']);
    // The first import merges and holds its transaction open while the second looks for links (it
    // still sees them) and waits on the assets' rows; then the first commits.
    const staged = stageContextIdentifiers('host', 'race', { fqdn: 'race.corp', ips: ['10.6.0.1'] });
    let merged!: () => void;
    const mergedYet = new Promise<void>((resolve) => (merged = resolve));
    const first = database.sql.begin(async (tx) => {
      await resolveAssets(tx, [staged], 'cmdb-csv');
      merged();
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    await mergedYet;
    await Promise.all([first, importContext(link)]);
    expect((await assetMergeHistory(database.sql, a)).map((h) => [h.survivorId, h.mergedId])).toEqual([[a, b]]);
    expect(await getAsset(database.sql, a)).toMatchObject({ openFindings: 2, mergedInto: null });
  });
});

describe('three assets, one record', () => {
  it('merges all three into the oldest, one merge each', async () => {
    await scan(nessus('three-a.nessus', '10.3.0.1', { 'host-ip': '10.3.0.1' }, [KIBANA]), 'nessus-dmz');
    await scan(nessus('three-b.nessus', 'db03.corp', { 'host-fqdn': 'db03.corp' }, [OPENSSL]), 'nessus-corp');
    await importContext(cmdb('three-c.csv', ['db03-ci,host,sys-db03,,,10.3.0.99,dba@corp,,,']));
    const [a, b, c] = [await assetId('ip', '10.3.0.1'), await assetId('fqdn', 'db03.corp'), await assetId('cmdb_id', 'sys-db03')];
    await importContext(cmdb('three-link.csv', ['db03,host,sys-db03,db03.corp,db03,10.3.0.1,,,,']));
    const history = await assetMergeHistory(database.sql, a);
    expect(history.map((h) => [h.survivorId, h.mergedId]).sort()).toEqual([[a, b], [a, c]].sort());
    expect(await getAsset(database.sql, a)).toMatchObject({ owner: 'dba@corp', openFindings: 2, mergedInto: null });
    for (const id of [b, c]) expect((await getAsset(database.sql, id))!.mergedInto).toBe(a);
    // Merges into one asset are undone newest first.
    const [newest, older] = history;
    await expect(undoMerge(database.sql, older!.id, 'admin')).rejects.toThrow(/undo it first/);
    await undoMerge(database.sql, newest!.id, 'admin');
    await undoMerge(database.sql, older!.id, 'admin');
    expect((await database.sql`select id from assets where id in (${a}, ${b}, ${c}) and merged_into is null`).length).toBe(3);
  });
});

/** Every row that points at either asset, in a stable order: what an undo must give back exactly. */
async function snapshot(ids: number[]) {
  const sql = database.sql;
  const findingIds = sql`select id from findings where asset_id = any(${ids}::bigint[])`;
  const [rows] = await sql`
    select
      (select jsonb_agg(to_jsonb(a) order by id) from assets a where id = any(${ids}::bigint[])) as assets,
      (select jsonb_agg(to_jsonb(i) order by kind, value) from asset_identifiers i where asset_id = any(${ids}::bigint[])) as identifiers,
      (select jsonb_agg(to_jsonb(f) order by id) from findings f where asset_id = any(${ids}::bigint[])) as findings,
      (select jsonb_agg(to_jsonb(s) order by finding_id, source) from finding_sources s where finding_id in (${findingIds})) as sources,
      (select jsonb_agg(to_jsonb(c) order by asset_id, source) from source_coverage c where asset_id = any(${ids}::bigint[])) as coverage,
      (select jsonb_agg(to_jsonb(s) order by scan_id, asset_id) from scan_assets s where asset_id = any(${ids}::bigint[])) as scans,
      (select jsonb_agg(to_jsonb(r) order by asset_id, package) from runtime_evidence r where asset_id = any(${ids}::bigint[])) as runtime,
      (select jsonb_agg(to_jsonb(o) order by asset_id, port) from observed_ports o where asset_id = any(${ids}::bigint[])) as ports,
      (select jsonb_agg(to_jsonb(r) order by asset_id, relation, target_id) from asset_relations r
       where asset_id = any(${ids}::bigint[]) or target_id = any(${ids}::bigint[])) as relations,
      (select jsonb_agg(to_jsonb(t) - 'updated_at' order by key) from tickets t where asset_id = any(${ids}::bigint[])) as tickets,
      (select jsonb_agg(to_jsonb(e) order by id) from validation_evidence e where asset_id = any(${ids}::bigint[])) as evidence,
      (select jsonb_agg(to_jsonb(c) order by id) from score_changes c where asset_id = any(${ids}::bigint[])) as score_changes`;
  return rows!;
}

describe('undo', () => {
  it('puts back exactly the rows there were before the merge, once', async () => {
    const sql = database.sql;
    await scan(nessus('undo-a.nessus', '10.4.0.1', { 'host-ip': '10.4.0.1' }, [SWEET32, KIBANA]), 'nessus-dmz', 'ops@corp');
    await scan(nessus('undo-b.nessus', 'mail.corp', { 'host-fqdn': 'mail.corp' }, [SWEET32, OPENSSL]), 'nessus-corp');
    await importContext(cmdb('undo-ctx.csv', ['mail,host,sys-mail,mail.corp,mail,,mail-team@corp,Mail,medium,production']));
    const a = await assetId('ip', '10.4.0.1');
    const b = await assetId('fqdn', 'mail.corp');
    const [other] = await sql`insert into assets (asset_key, kind, name) values ('image:mail:1', 'container_image', 'mail:1') returning id`;
    const image = Number(other!.id);
    // Rows of every kind on the merged asset, and some on the survivor that the merge meets.
    await sql`insert into asset_relations (asset_id, relation, target_id, source) values (${image}, 'runs_on', ${b}, 'test'), (${image}, 'runs_on', ${a}, 'test')`;
    await sql`insert into runtime_evidence (asset_id, package, version, process, source, observed_at) values
      (${b}, 'openssl', '1.0.2k', 'postfix', 'edr', '2026-12-01T00:00:00Z'), (${a}, 'openssl', '1.0.2k', 'postfix', 'edr', '2026-11-01T00:00:00Z')`;
    await sql`insert into observed_ports (asset_id, source, port, scan_id, observed_at) values (${b}, 'edge', '25/tcp', ${randomUUID()}, now())`;
    await sql`insert into source_coverage (asset_id, source, last_complete_scan_id, last_complete_at) values
      (${b}, 'nessus-dmz', ${randomUUID()}, '2026-12-05T00:00:00Z'), (${a}, 'nessus-dmz', ${randomUUID()}, '2026-12-01T00:00:00Z')
      on conflict (asset_id, source) do update set last_complete_at = excluded.last_complete_at`;
    await sql`insert into tickets (key, workflow_id, asset_id, component, fixed_version, state, tier, ack_due_at, due_at, finding_count)
      values ('product~openssl~mail~0000', 'remediation:product~openssl~mail~0000', ${b}, 'openssl', '1.0.2k-25', 'new', 'act', now(), now(), 1)`;
    await sql`update findings set ticket_key = 'product~openssl~mail~0000' where asset_id = ${b} and issue_id = 'CVE-2022-0778'`;
    await sql`insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, tested_at, expires_at)
      values ('undo-test', ${b}, 'CVE-2016-2183', 'confirmed', 'nuclei', 'test', now(), now() + interval '30 days')`;
    // Exposure as an internet scan's import leaves it: derived from the observed port.
    await sql.begin((tx) => refreshInternetExposure(tx));
    const before = await snapshot([a, b, image]);

    const result = (await sql.begin((tx) => mergeAssets(tx, a, b, { source: 'test' })))!;
    expect(result.counts).toMatchObject({ findings: 1, folded: 2, tickets: 1, evidence: 1 });
    const merged = await snapshot([a, b, image]);
    expect(merged).not.toEqual(before);
    expect(await getAsset(sql, a)).toMatchObject({ owner: 'mail-team@corp', businessService: 'Mail', openFindings: 4, internetFacing: true });
    const [ticket] = await sql`select asset_id from tickets where key = 'product~openssl~mail~0000'`;
    expect(Number(ticket!.asset_id)).toBe(a);
    const [runtime] = await sql`select observed_at from runtime_evidence where asset_id = ${a} and package = 'openssl'`;
    expect((runtime!.observed_at as Date).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect((await sql`select target_id from asset_relations where asset_id = ${image}`).map((r) => Number(r.target_id))).toEqual([a]);

    const undone = await undoMerge(sql, result.mergeId, 'api-token');
    expect(undone).toMatchObject({ mergeId: result.mergeId, survivorId: a, mergedId: b, undoneBy: 'api-token' });
    expect(await snapshot([a, b, image])).toEqual(before);
    const [history] = await assetMergeHistory(sql, b);
    expect(history).toMatchObject({ id: result.mergeId, direction: 'out', undoneBy: 'api-token' });
    expect(history!.undoneAt).not.toBeNull();

    // A second undo is refused and changes nothing.
    const error = await undoMerge(sql, result.mergeId, 'api-token').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MergeUndoError);
    expect((error as MergeUndoError).status).toBe(409);
    expect(await snapshot([a, b, image])).toEqual(before);
    await expect(undoMerge(sql, 999_999, 'api-token')).rejects.toMatchObject({ status: 404 });
  });

  it('after an undo, the same linking record merges the two again', async () => {
    const a = await assetId('ip', '10.4.0.1');
    const b = await assetId('fqdn', 'mail.corp');
    await importContext(cmdb('undo-link.csv', ['mail,host,sys-mail,mail.corp,mail,10.4.0.1,,,,']));
    expect((await getAsset(database.sql, b))!.mergedInto).toBe(a);
    const history = await assetMergeHistory(database.sql, a);
    expect(history.map((h) => h.undoneAt === null)).toEqual([true, false]);
  });
});

describe('rescoring', () => {
  it('the next incremental rescoring rescores the survivor, moved findings included', async () => {
    const sql = database.sql;
    const policy = defaultPolicy();
    await scan(nessus('score-a.nessus', '10.5.0.1', { 'host-ip': '10.5.0.1' }, [KIBANA]), 'nessus-dmz');
    await scan(nessus('score-b.nessus', 'pay.corp', { 'host-fqdn': 'pay.corp' }, [OPENSSL]), 'nessus-corp');
    await importContext(cmdb('score-ctx.csv', ['pay-ip,host,sys-pay,,,10.5.0.1,pay@corp,Payments,critical,production']));
    await rescoreChanged(sql, policy, { reason: 'before the merge' });
    const a = await assetId('ip', '10.5.0.1');
    const b = await assetId('fqdn', 'pay.corp');
    const contexts = async () => (await sql`select distinct explanation_asset from findings where asset_id = ${a} and status = 'open'`).length;

    await sql.begin((tx) => mergeAssets(tx, a, b, { source: 'test' }));
    expect(await contexts()).toBe(2);
    const result = await rescoreChanged(sql, policy, { reason: 'after the merge' });
    expect(result.mode).toBe('partial');
    expect(result.assetIds).toBeGreaterThanOrEqual(1);
    expect(await contexts()).toBe(1);
  });
});

describe('coverage of the schema', () => {
  it('every column that points at assets is one the merge handles', async () => {
    const rows = await database.sql<{ column: string }[]>`
      select tc.table_name || '.' || kcu.column_name as column
      from information_schema.table_constraints tc
      join information_schema.key_column_usage kcu on kcu.constraint_name = tc.constraint_name and kcu.table_schema = tc.table_schema
      join information_schema.constraint_column_usage ccu on ccu.constraint_name = tc.constraint_name and ccu.table_schema = tc.table_schema
      where tc.constraint_type = 'FOREIGN KEY' and ccu.table_name = 'assets' and tc.table_schema = 'public'
      union
      select table_name || '.' || column_name from information_schema.columns
      where table_schema = 'public' and table_name not like '\\_\\_%'
        and (column_name ~ '(^|_)asset_ids?$' or column_name in ('merged_into', 'survivor_id', 'merged_id', 'from_id', 'to_id', 'parent_id', 'next_id', 'target_id'))
      order by 1`;
    expect(rows.map((r) => r.column)).toEqual(Object.keys(ASSET_REFERENCES).sort());
  });
});
