import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Campaigns through the HTTP API: a real campaign workflow over a saved scope, on the real Temporal
// server and PostgreSQL, without Slack configured.

const trivy = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'));
const IMAGE = 'campaign-api/payments-api:1.4.2';

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform();
  const { scanId } = await json<{ scanId: string }>(
    platform.api(`/api/v1/scans?filename=trivy.json&target=${encodeURIComponent(IMAGE)}`, { method: 'POST', body: trivy }),
  );
  await eventually(async () => ((await json<{ status: string }>(platform.api(`/api/v1/scans/${scanId}`))).status === 'completed' ? true : undefined), {
    what: 'the scan',
  });
  const saved = await platform.api('/api/v1/scopes/campaign-api', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ selector: { assetNamePrefix: 'campaign-api/' } }),
  });
  expect(saved.status).toBe(200);
});
afterAll(async () => platform?.stop());

const post = (body: unknown) =>
  platform.api('/api/v1/campaigns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('campaigns API', () => {
  it('starts a campaign over a scope and reports its results', async () => {
    const res = await post({ scope: 'campaign-api', hypothesis: 'Is CVE-2024-5535 open on the payments images?', requestedBy: 'alice' });
    expect(res.status).toBe(202);
    const { campaignId, workflowId } = (await res.json()) as { campaignId: string; workflowId: string };
    expect(workflowId).toMatch(/^campaign:campaign-api:[0-9a-f]{8}$/);
    expect(campaignId).toBe(workflowId);

    const done = await eventually(
      async () => {
        const r = await platform.api(`/api/v1/campaigns/${encodeURIComponent(campaignId)}`);
        if (r.status !== 200) return undefined;
        const c = (await r.json()) as { status: string; results: { openExposures: number; top: number[]; hypothesisMatches?: { cves: string[] } } | null };
        return c.status === 'running' ? undefined : c;
      },
      { what: 'the campaign to finish', timeoutMs: 60_000 },
    );
    expect(done).toMatchObject({ status: 'completed', requestedBy: 'alice', scope: 'campaign-api' });
    const [open] = await platform.database.sql`
      select count(*)::int as n from findings f join assets a on a.id = f.asset_id where a.name = ${IMAGE} and f.status = 'open'`;
    expect(done.results!.openExposures).toBe(open!.n);
    expect(done.results!.top.length).toBeGreaterThan(0);
    expect(done.results!.hypothesisMatches?.cves).toEqual(['CVE-2024-5535']);

    // The workflow really ran on Temporal, and the list shows the campaign. The record says
    // completed a moment before the workflow itself returns: wait for its result first.
    const handle = platform.temporalClient.workflow.getHandle(workflowId);
    await handle.result();
    const described = await handle.describe();
    expect(described.status.name).toBe('COMPLETED');
    const list = await json<{ items: Array<{ id: string }> }>(platform.api('/api/v1/campaigns?scope=campaign-api'));
    expect(list.items.map((c) => c.id)).toContain(campaignId);
  });

  it('refuses an unknown scope and a malformed request, starting nothing', async () => {
    const unknown = await post({ scope: 'no-such-scope' });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toMatch(/no scope named no-such-scope/);
    const malformed = await post({ scope: 'bad scope name!' });
    expect(malformed.status).toBe(400);
    const [count] = await platform.database.sql`select count(*)::int as n from campaigns where scope <> 'campaign-api'`;
    expect(count!.n).toBe(0);
    expect((await platform.api('/api/v1/campaigns/campaign:none:00000000')).status).toBe(404);
  });
});
