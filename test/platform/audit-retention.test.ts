import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditVerification } from '../../access/audit-trail.js';
import { loadConfig } from '../../config/index.js';
import { startMetricsSnapshot } from '../../platform/schedules.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Retention runs in the daily metrics workflow: entries older than CTEM_AUDIT_RETENTION go, an
// audit.prune entry names how many and the last pruned hash, and the rest still verifies.

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform({ CTEM_AUDIT_RETENTION: '2s' });
});
afterAll(async () => {
  await platform?.stop();
});

const putScope = (name: string) =>
  platform.api(`/api/v1/scopes/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ selector: {} }) });

describe('audit retention', () => {
  it('the daily run prunes entries beyond retention and the chain still verifies', async () => {
    for (const name of ['old-1', 'old-2', 'old-3']) expect((await putScope(name)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await putScope('recent')).status).toBe(200);

    const client = platform.temporalClient;
    const workflowId = await startMetricsSnapshot(client, platform.env.CTEM_TASK_QUEUE!, '2026-12-08');
    await client.workflow.getHandle(workflowId).result();

    const items = (await json<{ items: AuditEntry[] }>(platform.api('/api/v1/audit?limit=100'))).items;
    expect(items.map((e) => e.target)).not.toContain('old-1');
    expect(items.find((e) => e.target === 'recent')).toBeDefined();
    const prune = items.find((e) => e.action === 'audit.prune')!;
    expect(prune).toMatchObject({ actorId: 'system', channel: 'system', outcome: 'allowed', after: { pruned: 3, retentionDays: 0 } });
    const verified = await json<AuditVerification>(platform.api('/api/v1/audit/verify'));
    expect(verified).toMatchObject({ ok: true, anchor: (prune.after as { lastPrunedHash: string }).lastPrunedHash });
    expect(verified.checked).toBe(items.length);
  });

  it('reads CTEM_AUDIT_RETENTION as a duration, 400 days by default, and refuses nonsense naming the variable', () => {
    expect(loadConfig({}).auditRetentionMs).toBe(400 * 86_400_000);
    expect(loadConfig({ CTEM_AUDIT_RETENTION: '2w' }).auditRetentionMs).toBe(14 * 86_400_000);
    expect(() => loadConfig({ CTEM_AUDIT_RETENTION: '0s' })).toThrow(/CTEM_AUDIT_RETENTION: must be longer than 0/);
    expect(() => loadConfig({ CTEM_AUDIT_RETENTION: 'soon' })).toThrow(/CTEM_AUDIT_RETENTION: "soon" is not a duration/);
  });
});
