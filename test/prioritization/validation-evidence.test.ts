import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { activePolicy } from '../../prioritization/policy-store.js';
import type { Policy } from '../../prioritization/policy.js';
import { rescoreChanged } from '../../prioritization/scoring/incremental.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Validation evidence moves tiers on real PostgreSQL with the shipped default policy: an exploit
// proven on a finding's asset raises it to act, and the explanation names the test; a newer failed
// test lowers it to track until that test expires; when every test has expired the finding returns
// to what the feeds and context alone give it. Each move is a score history entry with its reason.

afterAll(closeTestDatabases);

let db: Database;
let policy: Policy;
let assetId: number;
let findingId: number;
const CVE = 'CVE-2023-0286';
const OTHER = 'CVE-2022-37434';

async function finding(id = findingId) {
  const [row] = await db.sql<{ tier: string; score: number; explanation: ExplanationFactor[]; change_reason: string }[]>`
    select f.tier, f.score, f.explanation, f.change_reason from findings f where f.id = ${id}`;
  return row!;
}

async function addEvidence(result: string, tool: string, source: string, testedAt: string, expiresAt: string, extra: { target?: string; port?: string } = {}) {
  const [row] = await db.sql<{ id: string }[]>`
    insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, target, port, tested_at, expires_at)
    values (${randomUUID()}, ${assetId}, ${CVE}, ${result}, ${tool}, ${source}, ${extra.target ?? null}, ${extra.port ?? null}, ${testedAt}, ${expiresAt})
    returning id`;
  return Number(row!.id);
}

const history = async () =>
  (await db.sql<{ tier: string; old_tier: string | null; reason: string }[]>`
    select tier, old_tier, reason from score_history where finding_id = ${findingId} order by at, id`).map((r) => [r.old_tier, r.tier, r.reason]);

beforeAll(async () => {
  db = await migratedTestDatabase();
  policy = await activePolicy(db.sql);
  await db.sql`insert into intel_feeds (kind, version, rows, sha256, status, activated_at) values ('kev', 'kev-1', 0, 'k', 'active', now()), ('epss', 'epss-1', 2, 'e', 'active', now())`;
  await db.sql`insert into epss_scores (feed_version, cve, epss, percentile) values ('epss-1', ${CVE}, 0.004, 0.7), ('epss-1', ${OTHER}, 0.004, 0.7)`;
  const [asset] = await db.sql<{ id: string }[]>`
    insert into assets (asset_key, kind, name, internet_facing, environment, criticality, attribute_sources)
    values ('host:shop-01', 'host', 'shop-01', true, 'production', 'high', ${db.sql.json({ internet_facing: 'firewall' })}) returning id`;
  assetId = Number(asset!.id);
  const scan = randomUUID();
  const ids: number[] = [];
  for (const cve of [CVE, OTHER]) {
    const [row] = await db.sql<{ id: string }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, cvss_vector, first_scan_id, last_scan_id)
      values (${randomUUID()}, ${assetId}, 'vulnerability', ${cve}, 'openssl', '3.0.1', 'high', 7.4, 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H', ${scan}, ${scan})
      returning id`;
    ids.push(Number(row!.id));
  }
  findingId = ids[0]!;
});

describe('validation evidence in scoring', () => {
  it('the shipped default reads it', () => {
    expect(policy.version).toBe('exploitability-2');
    expect(policy.document.modifiers.validation?.proven?.to).toBe('act');
  });

  it('an exploit raises the finding to act and its explanation names the test; an expiry returns it', async () => {
    await rescoreChanged(db.sql, policy, { reason: 'first' });
    const before = await finding();
    // Not exploited, exposed, not automatable (AC:H): the table's track*.
    expect(before.tier).toBe('track*');
    expect(before.explanation.some((f) => f.factor === 'validation')).toBe(false);

    // Reachable alone moves nothing, and is not a change scoring sees on the finding.
    await addEvidence('reachable', 'probe', 'validation:run-1', '2026-11-29T08:00:00Z', '2099-01-01T00:00:00Z');
    await rescoreChanged(db.sql, policy, { reason: 'probe' });
    expect((await finding()).tier).toBe('track*');

    const exploit = await addEvidence('exploited', 'pentest-kit', 'report Q4.pdf', '2026-11-30T09:00:00Z', '2099-02-28T00:00:00Z', { target: 'https://shop-01/login', port: '443/tcp' });
    expect(await rescoreChanged(db.sql, policy, { reason: 'pentest report' })).toMatchObject({ mode: 'partial', assetIds: 1, scored: 2, events: 1 });
    const raised = await finding();
    expect(raised.tier).toBe('act');
    expect(raised.explanation.find((f) => f.factor === 'validation')).toEqual({
      factor: 'validation', value: 'exploited', source: 'validation evidence (pentest-kit)',
      effect: 'Exploited by pentest-kit at https://shop-01/login (443/tcp) on 2026-11-30 (expires 2099-02-28), from report Q4.pdf: raised to act',
    });
    expect(raised.explanation.find((f) => f.factor === 'tier')?.effect).toBe('due in 3 days (act; the table gave track*)');
    // The other vulnerability on the same asset has no evidence: untouched.
    expect((await db.sql<{ tier: string }[]>`select tier from findings where issue_id = ${OTHER}`)[0]!.tier).toBe('track*');

    // A later failed attempt lowers it to track until it expires; the score takes its factor.
    const failed = await addEvidence('not_exploitable', 'bas-sim', 'validation:run-2', '2026-12-01T09:00:00Z', '2099-03-01T00:00:00Z');
    await rescoreChanged(db.sql, policy, { reason: 'bas run' });
    const lowered = await finding();
    expect(lowered.tier).toBe('track');
    expect(lowered.explanation.find((f) => f.factor === 'validation')?.effect).toBe(
      'Not exploitable by bas-sim on 2026-12-01 (expires 2099-03-01), from validation:run-2: lowered to track until 2099-03-01 (score × 0.2)',
    );
    expect(lowered.explanation.find((f) => f.factor === 'score')?.effect).toMatch(/× 0\.2 \(the factors above\)$/);

    // The failed test expires: the exploit decides again.
    await db.sql`update validation_evidence set expires_at = now() - interval '1 second' where id = ${failed}`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'bas run expired' })).toMatchObject({ mode: 'partial', assetIds: 1, events: 1 });
    expect((await finding()).tier).toBe('act');

    // The exploit expires too: back to what the feeds and context alone give it, word for word.
    await db.sql`update validation_evidence set expires_at = now() - interval '1 second' where id = ${exploit}`;
    expect(await rescoreChanged(db.sql, policy, { reason: 'pentest expired' })).toMatchObject({ mode: 'partial', events: 1 });
    const after = await finding();
    expect({ tier: after.tier, score: after.score, explanation: after.explanation }).toEqual({ tier: before.tier, score: before.score, explanation: before.explanation });
    expect(await history()).toEqual([
      [null, 'track*', 'first'],
      ['track*', 'act', 'pentest report'],
      ['act', 'track', 'bas run'],
      ['track', 'act', 'bas run expired'],
      ['act', 'track*', 'pentest expired'],
    ]);
  });

  it('a vendor status that says the code is not there still wins over a proven exploit', async () => {
    await addEvidence('confirmed', 'nuclei', 'nuclei.jsonl', '2026-12-02T09:00:00Z', '2099-03-01T00:00:00Z');
    await db.sql`update findings set vendor_status = 'not_affected' where id = ${findingId}`;
    await rescoreChanged(db.sql, policy, { reason: 'nuclei' });
    const f = await finding();
    expect(f.tier).toBe('track');
    expect(f.explanation.map((x) => x.factor)).toEqual(expect.arrayContaining(['validation', 'vendor_status']));
    expect(f.explanation.findIndex((x) => x.factor === 'validation')).toBeLessThan(f.explanation.findIndex((x) => x.factor === 'vendor_status'));
  });
});
