import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextSourceFor } from '../../discovery/context/index.js';
import type { Database } from '../../db/client.js';
import { ingestContext } from '../../discovery/store/context.js';
import { rescoreFindings } from '../../prioritization/scoring/rescore.js';
import type { ExplanationFactor } from '../../db/schema.js';
import { defaultPolicy, defaultPolicyDocument, parsePolicy, type PolicyDocument } from '../../prioritization/policy.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Business impact on real PostgreSQL: the example CMDB export (with the Payments service's yearly
// revenue) goes through the context path, then findings on its assets are scored. An asset whose
// business service carries at least the policy's revenueAtLeast is a critical asset: its due dates
// shrink by criticalAsset.dueFactor and its explanation names the service and the figure.

const example = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'context', 'cmdb.csv');
const DAY_SECONDS = 86_400;

afterAll(closeTestDatabases);

let db: Database;
const ids: Record<string, number> = {};

async function finding(asset: string, issueId: string): Promise<number> {
  const scan = randomUUID();
  const [row] = await db.sql<{ id: number }[]>`
    insert into findings (fingerprint, asset_id, kind, issue_id, component, version, severity, cvss_score, cvss_vector, first_scan_id, last_scan_id)
    values (${randomUUID()}, ${ids[asset]!}, 'vulnerability', ${issueId}, 'openssl', '3.0.1', 'high', 7.5,
            'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', ${scan}, ${scan})
    returning id`;
  return Number(row!.id);
}

interface Scored {
  tier: string;
  due_days: number;
  explanation: ExplanationFactor[];
}

async function scored(id: number): Promise<Scored> {
  const [row] = await db.sql<Scored[]>`
    select tier, extract(epoch from due_at - scored_at)::float8 / ${DAY_SECONDS} as due_days, f.explanation from findings f where id = ${id}`;
  return row!;
}

const factor = (s: Scored, name: string) => s.explanation.find((f) => f.factor === name);

beforeAll(async () => {
  db = await migratedTestDatabase();
  const source = await contextSourceFor(example, 'cmdb.csv');
  const scanId = randomUUID();
  await db.sql`
    insert into scans (id, source, format, report_name, status, workflow_id, report_path, report_sha256, report_bytes)
    values (${scanId}, 'cmdb', ${source.source}, 'cmdb.csv', 'running', 'test', ${example}, 'test', 0)`;
  await ingestContext(db.sql, { id: scanId, source: 'cmdb', format: source.source }, source.parse(example));
  for (const r of await db.sql<{ id: number; name: string }[]>`select id, name from assets`) ids[r.name] = Number(r.id);
  // Feeds: none of these CVEs is in KEV, so the decision table gives the same tier everywhere.
  await db.sql`
    insert into intel_feeds (kind, version, rows, sha256, status, activated_at)
    values ('kev', 'bi-kev-1', 1, 'k', 'active', now()), ('epss', 'bi-epss-1', 1, 'e', 'active', now())`;
  await db.sql`insert into kev_entries (feed_version, cve, date_added, known_ransomware) values ('bi-kev-1', 'CVE-2099-7777', '2099-01-02', false)`;
});

describe('business revenue from the CMDB', () => {
  it('stores the service’s yearly revenue with its source', async () => {
    const [service] = await db.sql`select annual_revenue, attribute_sources->>'annual_revenue' as source from assets where name = 'Payments'`;
    expect(service).toEqual({ annual_revenue: 48_000_000, source: 'cmdb' });
    const [host] = await db.sql`select annual_revenue, business_service, criticality from assets where name = 'web-01'`;
    expect(host).toEqual({ annual_revenue: null, business_service: 'Payments', criticality: 'high' });
  });

  it('makes an asset of a high-revenue service critical: due date halved, the explanation names the service and the figure', async () => {
    const web = await finding('web-01', 'CVE-2099-1001');
    const nginx = await finding('docker.io/library/nginx:1.25.3', 'CVE-2099-1002');
    const policy = defaultPolicy();
    await rescoreFindings(db.sql, policy, { all: true }, { reason: 'test' });

    const onWeb = await scored(web);
    const onNginx = await scored(nginx);
    // Same vulnerability data and exposure context: only the business impact differs.
    expect(onWeb.tier).toBe(onNginx.tier);
    const tierDays = policy.document.tiers[onWeb.tier as 'track'].dueDays;
    expect(onNginx.due_days).toBeCloseTo(tierDays, 3);
    expect(onWeb.due_days).toBeCloseTo(tierDays * policy.document.modifiers.criticalAsset!.dueFactor, 3);

    expect(factor(onWeb, 'business_impact')).toEqual({
      factor: 'business_impact',
      value: 48_000_000,
      source: 'asset context (cmdb)',
      effect: 'its business service Payments carries 48,000,000 a year in revenue (at least 10,000,000): a critical asset, due dates × 0.5',
    });
    expect(factor(onWeb, 'tier')?.effect).toMatch(/× 0\.5 for a critical asset\)$/);
    expect(factor(onNginx, 'business_impact')).toBeUndefined();
  });

  it('names the rating and the revenue when both make the asset critical', async () => {
    const app = await finding('app-01', 'CVE-2099-1003');
    await rescoreFindings(db.sql, defaultPolicy(), { assetIds: [ids['app-01']!] }, { reason: 'test' });
    expect(factor(await scored(app), 'business_impact')?.effect).toBe(
      'app-01 is rated critical; its business service Payments carries 48,000,000 a year in revenue (at least 10,000,000): a critical asset, due dates × 0.5',
    );
  });

  it('a policy with a higher revenue bar leaves the host at its full due date', async () => {
    const doc = structuredClone(defaultPolicyDocument()) as PolicyDocument;
    doc.version = 'revenue-bar-100m';
    doc.modifiers.criticalAsset!.revenueAtLeast = 100_000_000;
    const policy = parsePolicy(doc, 'test');
    const fresh = await finding('web-01', 'CVE-2099-1004');
    await rescoreFindings(db.sql, policy, { assetIds: [ids['web-01']!] }, { reason: 'test' });
    const onWeb = await scored(fresh);
    expect(onWeb.due_days).toBeCloseTo(policy.document.tiers[onWeb.tier as 'track'].dueDays, 3);
    expect(factor(onWeb, 'business_impact')).toBeUndefined();
    // A finding already due keeps its date while its tier stays (due dates move only with the
    // tier), but its explanation no longer claims the business impact.
    const [earlier] = await db.sql<{ id: number }[]>`select id from findings where issue_id = 'CVE-2099-1001'`;
    expect(factor(await scored(Number(earlier!.id)), 'business_impact')).toBeUndefined();
  });

  it('rejects a revenue bar that is not a positive number', () => {
    const doc = structuredClone(defaultPolicyDocument()) as PolicyDocument;
    (doc.modifiers.criticalAsset as Record<string, unknown>).revenueAtLeast = -1;
    expect(() => parsePolicy(doc, 'bad.json')).toThrow(/bad\.json: modifiers\.criticalAsset\.revenueAtLeast: /);
  });
});
