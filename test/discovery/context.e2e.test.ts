import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Context on the real platform: the example estate's CMDB, cloud inventory, security groups and EDR
// evidence are identity-resolved onto the assets scanners found, ownership follows precedence, and
// a CMDB that names an orphan's owner opens its waiting golden tickets.

const examples = join(import.meta.dirname, '..', '..', 'examples', 'context');
const trivy = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));
const IMAGE = 'registry.example.com/shop/payments-api:1.4.2';

let platform: TestPlatform;


async function completed(res: Promise<Response>): Promise<Record<string, number>> {
  const { scanId } = await json<{ scanId: string }>(res);
  const scan = await eventually(
    async () => {
      const s = await json<{ status: string; counts: Record<string, number>; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    },
    { what: `scan ${scanId}` },
  );
  if (scan.status !== 'completed') throw new Error(`scan failed: ${scan.error}`);
  return scan.counts;
}

const upload = (file: string, query = '') =>
  completed(platform.api(`/api/v1/context?filename=${file}${query}`, { method: 'POST', body: readFileSync(join(examples, file)) }));

async function asset(name: string) {
  const [row] = await platform.database.sql`select * from assets where name = ${name}`;
  return row;
}

beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform?.stop());

describe('context sources on the platform', () => {
  it('a CMDB naming an orphan image’s owner hands its golden tickets over to them', async () => {
    const scan = await completed(platform.api('/api/v1/scans?filename=trivy-payments-api.json', { method: 'POST', body: trivy }));
    // No KEV catalog is loaded here, so the policy falls back to severity: the CVSS >= 9 findings
    // attend, in two actions (the image's OS layer, its Java libraries), held by the fallback owner.
    expect(scan).toMatchObject({ goldenTickets: 2, orphanedTickets: 2 });
    const queued = await eventually(
      async () => {
        const list = await json<{ items: Array<{ asset: { name: string }; owner: string; externalSysId: string | null }> }>(platform.api('/api/v1/tickets?orphaned=true'));
        const mine = list.items.filter((t) => t.asset.name === IMAGE);
        return mine.length === 2 && mine.every((t) => t.externalSysId) ? mine : undefined;
      },
      { what: 'orphaned tickets opened for the fallback owner' },
    );
    expect(queued.map((t) => t.owner)).toEqual(['sam.okafor', 'sam.okafor']);

    const cmdb = await upload('cmdb.csv');
    expect(cmdb.assets).toBeGreaterThanOrEqual(6);
    const image = await asset(IMAGE);
    expect(image).toMatchObject({ owner: 'alex.romero', business_service: 'Payments', criticality: 'critical', environment: 'production' });
    expect(image!.attribute_sources).toMatchObject({ owner: 'cmdb', criticality: 'cmdb' });

    const tickets = await eventually(
      async () => {
        const list = await json<{ items: Array<{ asset: { name: string }; state: string; externalSysId: string; owner: string; orphanReason: string | null }> }>(
          platform.api('/api/v1/tickets'),
        );
        const mine = list.items.filter((t) => t.asset.name === IMAGE);
        return mine.length === 2 && mine.every((t) => t.owner === 'alex.romero' && t.orphanReason === null) ? mine : undefined;
      },
      { what: 'tickets handed over to the owner after the CMDB import' },
    );
    expect(tickets.every((t) => t.state === 'new')).toBe(true);
    // Reassigned in ServiceNow too, with a work note saying why.
    const alex = platform.simulator!.instance.records('sys_user').find((u) => u.user_name === 'alex.romero')!;
    for (const t of tickets) {
      expect(platform.simulator!.instance.records('incident').find((i) => i.sys_id === t.externalSysId)!.assigned_to).toBe(alex.sys_id);
      const notes = platform.simulator!.instance.records('sys_journal_field').filter((r) => r.element_id === t.externalSysId && r.element === 'work_notes');
      expect(notes.some((n) => n.value?.startsWith('Owner found: alex.romero. This ticket leaves the orphan queue (the asset has no owner)'))).toBe(true);
    }

    const relations = await platform.database.sql`
      select r.relation, t.name from asset_relations r join assets t on t.id = r.target_id
      where r.asset_id = ${image!.id} order by r.relation, t.name`;
    // The CMDB says the image runs on app-01.prod.example.com: resolved to the app-01 host by its FQDN.
    expect(relations.map((r) => `${r.relation} ${r.name}`)).toEqual(['part_of Payments', 'runs_on app-01']);
  });

  it('a scan’s owner parameter never overrides the CMDB', async () => {
    await completed(platform.api('/api/v1/scans?owner=priya.natarajan', { method: 'POST', body: trivy }));
    expect((await asset(IMAGE))!.owner).toBe('alex.romero');
  });

  it('cloud inventory and security groups resolve onto the CMDB hosts and mark what the internet reaches', async () => {
    const hostsBefore = (await platform.database.sql`select count(*)::int as n from assets where kind = 'host'`)[0]!.n;
    await upload('aws-describe-instances.json');
    await upload('security-groups.json');
    const hostsAfter = (await platform.database.sql`select count(*)::int as n from assets where kind = 'host'`)[0]!.n;
    expect(hostsAfter).toBe(hostsBefore); // same instances, same hosts: resolved by instance id
    const web = await asset('web-01');
    expect(web).toMatchObject({ internet_facing: true, exposed_ports: ['443/tcp'], public_ips: ['203.0.113.10'], owner: 'alex.romero' });
    expect(web!.criticality).toBe('high'); // the CMDB's rating wins over the cloud tag
    expect((await asset('db-01'))!.internet_facing).toBe(false);
    expect((await asset('app-01'))!.internet_facing).toBe(false);
  });

  it('EDR evidence lands on the same hosts', async () => {
    const edr = await upload('edr-runtime.csv');
    expect(edr.runtimeEvidence).toBeGreaterThan(0);
    const running = await platform.database.sql`
      select a.name, r.package, r.process from runtime_evidence r join assets a on a.id = r.asset_id
      where r.package = 'org.springframework:spring-beans' order by a.name`;
    expect(running.map((r) => `${r.name} ${r.package} ${r.process}`)).toEqual(['app-01 org.springframework:spring-beans java']);
  });

  it('pulls the ServiceNow CMDB as a scheduled source and merges it onto the same hosts', async () => {
    const hostsBefore = (await platform.database.sql`select count(*)::int as n from assets where kind = 'host'`)[0]!.n;
    await json(platform.api('/api/v1/sources/cmdb', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'servicenow-cmdb', config: { table: 'cmdb_ci_server' }, schedule: null }),
    }));
    const run = await json<{ workflowId: string }>(platform.api('/api/v1/sources/cmdb/runs', { method: 'POST' }));
    const result = await platform.temporalClient.workflow.getHandle(run.workflowId).result();
    expect(result.counts.assets).toBeGreaterThanOrEqual(3);
    const hostsAfter = (await platform.database.sql`select count(*)::int as n from assets where kind = 'host'`)[0]!.n;
    expect(hostsAfter).toBe(hostsBefore);
    expect((await asset('db-01'))!.owner).toBe('jonas.weber');
  });

  it('evaluates a context document in shadow first: which tiers it would move and why, keeping nothing', async () => {
    const tiers = () => platform.database.sql<{ id: number; tier: string; due_at: Date }[]>`
      select f.id, f.tier, f.due_at from findings f join assets a on a.id = f.asset_id where a.name = ${IMAGE} and f.status = 'open' order by f.id`;
    const before = await tiers();
    const lowerable = before.filter((f) => f.tier !== 'track').length;
    expect(lowerable).toBeGreaterThanOrEqual(3);
    // The CMDB would move the image to staging: the policy lowers non-production findings one tier.
    const csv = `name,kind,image,environment\n${IMAGE},container_image,${IMAGE},staging\n`;
    const res = await platform.api('/api/v1/context/shadow?filename=staging.csv&samples=50', { method: 'POST', body: csv });
    expect(res.status).toBe(200);
    const shadow = await json<{ source: string; counts: { assets: number }; diff: { movedUp: number; movedDown: number; transitions: Record<string, number>; samples: Array<{ findingId: number; asset: string; reason: string }> } }>(res);
    expect(shadow.source).toBe('cmdb-csv');
    expect(shadow.counts.assets).toBe(1);
    expect(shadow.diff).toMatchObject({ movedUp: 0, movedDown: lowerable });
    expect(shadow.diff.transitions['attend→track*']).toBe(before.filter((f) => f.tier === 'attend').length);
    expect(shadow.diff.samples).toHaveLength(lowerable);
    for (const sample of shadow.diff.samples) {
      expect(sample.asset).toBe(IMAGE);
      expect(sample.reason).toMatch(/environment now applies: .* runs in staging, not production: 1 tier lower/);
    }
    // Nothing was kept: the asset is still in production and every tier and due date is as it was.
    expect(await asset(IMAGE)).toMatchObject({ environment: 'production' });
    expect(await tiers()).toEqual(before);

    const broken = await platform.api('/api/v1/context/shadow?filename=broken.csv&source=cmdb-csv', { method: 'POST', body: 'hostname,owner\nweb-99,alice\n' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { message: string } }).error.message).toMatch(/^broken\.csv: cmdb-csv: name: /);
  });

  it('fails a context document it cannot read, naming the file and the column, and stores nothing', async () => {
    const before = (await platform.database.sql`select count(*)::int as n from assets`)[0]!.n;
    await expect(
      completed(platform.api('/api/v1/context?filename=broken.csv&source=cmdb-csv', { method: 'POST', body: 'hostname,owner\nweb-99,alice\n' })),
    ).rejects.toThrow(/scan failed: broken\.csv: cmdb-csv: .*name/);
    expect((await platform.database.sql`select count(*)::int as n from assets`)[0]!.n).toBe(before);
    const unknown = await platform.api('/api/v1/context?filename=notes.txt', { method: 'POST', body: 'just some notes' });
    expect(unknown.status).toBe(400);
  });
});
