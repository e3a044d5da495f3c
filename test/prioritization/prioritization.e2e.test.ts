import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRescoreActivities } from '../../activities/rescore.js';
import { eventually, json, startTestPlatform, type TestPlatform, SAMPLE_FEEDS_ENV } from '../support/platform.js';

// Prioritization as users drive it through the API: a new policy version is evaluated in shadow
// mode without touching live tiers, then promoted, which re-scores through a workflow and leaves a
// history per exposure; a compensating control takes a finding out of `act`; exposures, scopes and
// the noise report read the result.

const fixtures = join(import.meta.dirname, '..', 'fixtures');
// Its own image (name and digest): golden-ticket workflow ids are business keys, unique per
// Temporal namespace, and other test files share this server with the fixture's own image.
const IMAGE = 'registry.example.com/shop/prioritization:1.4.2';
const report = (() => {
  const r = JSON.parse(readFileSync(join(fixtures, 'trivy-payments-api.json'), 'utf8'));
  r.ArtifactName = IMAGE;
  r.Metadata.ImageID = `sha256:${'ab'.repeat(32)}`;
  r.Metadata.RepoDigests = [`registry.example.com/shop/prioritization@sha256:${'cd'.repeat(32)}`];
  return JSON.stringify(r);
})();
const defaultPolicy = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'prioritization', 'policies', 'exploitability-2.json'), 'utf8'));

let platform: TestPlatform;

type Exposure = { id: number; issueId: string; tier: string; dueAt: string; explanation: Array<{ factor: string; effect: string }> };

async function exposures(query = ''): Promise<Exposure[]> {
  return (await json<{ items: Exposure[] }>(platform.api(`/api/v1/exposures?limit=1000${query}`))).items;
}

const send = (method: string, path: string, body: unknown) =>
  platform.api(path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

async function rescored(workflowId: string) {
  return platform.temporalClient.workflow.getHandle(workflowId).result();
}

beforeAll(async () => {
  platform = await startTestPlatform({
    ...SAMPLE_FEEDS_ENV,
  });
  const upload = await json<{ scanId: string }>(platform.api('/api/v1/scans?owner=alex.romero&filename=trivy-payments-api.json', { method: 'POST', body: report }));
  await eventually(async () => {
    const scan = await json<{ status: string }>(platform.api(`/api/v1/scans/${upload.scanId}`));
    return scan.status === 'completed' ? scan : undefined;
  }, { what: 'the scan' });
});
afterAll(async () => platform?.stop());

describe('policies', () => {
  it('ships the exploitability policy as the active one, BOD 26-04 beside it', async () => {
    const policies = await json<{ items: Array<{ version: string; status: string }> }>(platform.api('/api/v1/policies'));
    expect(policies.items).toContainEqual(expect.objectContaining({ version: defaultPolicy.version, status: 'active' }));
    const active = await json<{ version: string }>(platform.api('/api/v1/policies/active'));
    expect(active.version).toBe(defaultPolicy.version);
    expect(policies.items).toContainEqual(expect.objectContaining({ version: 'bod-26-04+epss-2', status: 'shadow' }));
  });

  it('shows a candidate policy backtested beside its diff, against a later KEV version', async () => {
    // A later catalog adds CVE-2021-3711 (OpenSSL, EPSS low here): staged, as a newer KEV would arrive.
    await platform.database.sql`insert into intel_feeds (kind, version, rows, sha256, status) values ('kev', '2099.01.01', 3, 'later', 'staged')`;
    await platform.database.sql`
      insert into kev_entries (feed_version, cve) values ('2099.01.01', 'CVE-2021-44228'), ('2099.01.01', 'CVE-2022-22965'), ('2099.01.01', 'CVE-2021-3711')`;
    const res = await platform.api('/api/v1/policies/bod-26-04+epss-2/shadow?laterKev=2099.01.01');
    expect(res.status).toBe(200);
    const diff = (await res.json()) as { backtest: { population: number; positives: number; rows: Array<{ name: string; flagged: number; caught: number }> } };
    // Log4Shell and Spring4Shell were in KEV at t0: the population is the other findings, one of them later exploited.
    expect(diff.backtest.positives).toBe(1);
    expect(diff.backtest.rows.map((r) => r.name)).toEqual(expect.arrayContaining([`policy ${defaultPolicy.version}`, 'policy bod-26-04+epss-2', 'EPSS >= 0.1', 'CVSS >= 7']));
    expect((await platform.api('/api/v1/policies/bod-26-04+epss-2/shadow?laterKev=1999.01.01')).status).toBe(422);
  });

  it('rejects an invalid policy, naming the path', async () => {
    const broken = structuredClone(defaultPolicy);
    broken.version = 'broken-1';
    broken.timelines['14D'].tier = 'urgent';
    const res = await send('POST', '/api/v1/policies', broken);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('timelines');
  });

  it('evaluates a new version in shadow mode without touching live tiers, then promotes it', async () => {
    const before = await exposures();
    const stricter = structuredClone(defaultPolicy);
    stricter.version = 'exploitability-strict';
    // What the table leaves to the next system upgrade is tracked closely instead.
    stricter.timelines.FSU.tier = 'track*';
    expect((await send('POST', '/api/v1/policies', stricter)).status).toBe(201);

    const diff = await json<{ movedUp: number; movedDown: number; transitions: Record<string, number>; samples: Array<{ reason: string }> }>(
      platform.api('/api/v1/policies/exploitability-strict/shadow'),
    );
    const wouldMove = before.filter((e) => e.tier === 'track' && e.explanation.some((f) => /fix on system upgrade → track$/.test(f.effect))).length;
    expect(wouldMove).toBeGreaterThan(0); // e.g. CVE-2021-3712: not in KEV, not exposed, not automatable, partial: row 0
    expect(diff.movedUp).toBe(wouldMove);
    expect(diff.movedDown).toBe(0);
    expect(await exposures()).toEqual(before); // shadow mode wrote nothing

    const activated = await json<{ workflowId: string }>(send('POST', '/api/v1/policies/exploitability-strict/activate', {}));
    expect(activated.workflowId).toBe('rescore:policy:exploitability-strict');
    const result = (await rescored(activated.workflowId)) as { changed: number; events: number };
    expect(result.events).toBe(wouldMove);
    // Mobilization reads the assets whose exposures moved a page at a time (ids never pile up in the workflow).
    const { assetsWithExposureEvents } = createRescoreActivities({ database: platform.database });
    const everyAsset = (await platform.database.sql`select distinct asset_id from score_history order by asset_id`).map((r) => Number(r.asset_id));
    const paged: number[] = [];
    for (;;) {
      const page = await assetsWithExposureEvents({ fromEventId: 0, toEventId: Number.MAX_SAFE_INTEGER, afterAssetId: paged.at(-1) ?? 0, limit: 1 });
      if (page.length === 0) break;
      paged.push(...page);
    }
    expect(everyAsset.length).toBeGreaterThan(0);
    expect(paged).toEqual(everyAsset);
    const after = await exposures();
    expect(after.filter((e) => e.tier === 'track*').length).toBe(before.filter((e) => e.tier === 'track*').length + wouldMove);

    const moved = after.find((a) => a.tier === 'track*' && before.find((b) => b.id === a.id)?.tier === 'track')!;
    const detail = await json<{ history: Array<{ tier: string; policyVersion: string }> }>(platform.api(`/api/v1/exposures/${moved.id}`));
    expect(detail.history.map((h) => [h.tier, h.policyVersion])).toEqual([
      ['track', defaultPolicy.version],
      ['track*', 'exploitability-strict'],
    ]);
  });
});

describe('compensating controls', () => {
  it('a control that blocks exploitation takes a KEV finding out of act, with the reason', async () => {
    const log4j = (await exposures('&kev=true')).find((e) => e.issueId === 'CVE-2021-44228')!;
    expect(log4j.tier).toBe('act');
    const saved = await json<{ workflowId: string }>(
      send('PUT', '/api/v1/controls/log4j-jndi-disabled', {
        kind: 'feature_disabled',
        mitigates: { issueIds: ['CVE-2021-44228'] },
        appliesTo: { assetKeys: [`image:${IMAGE}`] },
        effect: 'not_exploitable',
        description: 'log4j2.formatMsgNoLookups=true and JndiLookup removed from the classpath',
      }),
    );
    await rescored(saved.workflowId);
    const after = (await exposures()).find((e) => e.id === log4j.id)!;
    expect(after.tier).toBe('track');
    expect(after.explanation.map((f) => f.effect).join(' ')).toContain('log4j-jndi-disabled');
    const bad = await send('PUT', '/api/v1/controls/nothing', { kind: 'waf', mitigates: {}, appliesTo: { all: true }, effect: 'not_exposed' });
    expect(bad.status).toBe(400);
  });
});

describe('exposures, scopes and the noise report', () => {
  it('filter by tier, KEV and scope, and report the reduction', async () => {
    const all = await exposures();
    expect(all.length).toBe(6);
    for (const e of await exposures('&tier=attend')) expect(e.tier).toBe('attend');
    expect((await exposures('&kev=true')).map((e) => e.issueId).sort()).toEqual(['CVE-2021-44228', 'CVE-2022-22965']);

    await json(send('PUT', '/api/v1/scopes/payments', { selector: { assetNamePrefix: 'registry.example.com/shop/' }, description: 'the payments images' }));
    expect((await exposures('&scope=payments')).length).toBe(6);
    await json(send('PUT', '/api/v1/scopes/nothing', { selector: { environments: ['staging'] } }));
    expect((await exposures('&scope=nothing')).length).toBe(0);
    expect((await platform.api('/api/v1/exposures?scope=unknown')).status).toBe(404);

    expect((await platform.api('/api/v1/reports/noise/snapshots', { method: 'POST' })).status).toBe(201);
    const noise = await json<{ now: { openFindings: number; criticalHighByCvss: number; actAttend: number; reduction: number }; history: unknown[] }>(
      platform.api('/api/v1/reports/noise?scope=payments'),
    );
    expect(noise.now.openFindings).toBe(6);
    expect(noise.now.criticalHighByCvss).toBe(5); // everything but the CVSS 5.5 musl finding
    expect(noise.now.actAttend).toBe(all.filter((e) => e.tier === 'act' || e.tier === 'attend').length);
    expect(noise.now.reduction).toBeCloseTo(1 - noise.now.actAttend / 5, 3);
    expect(noise.history.length).toBeGreaterThan(0);
  });
});
