import type { Sql } from '../db/client.js';
import { scopeCondition, type ScopeSelector } from './scopes.js';

// Campaigns: one on-demand run of discovery and prioritization over a scope. The workflow holds
// the live state; this table keeps the record (who, when, what it surfaced) for lists and history.

export interface CampaignRecord {
  id: string;
  scope: string;
  hypothesis: string | null;
  requestedBy: string;
  status: 'running' | 'completed' | 'failed';
  results: Record<string, unknown> | null;
  startedAt: string;
  finishedAt: string | null;
}

function campaignRow(r: Record<string, unknown>): CampaignRecord {
  return {
    id: r.id as string,
    scope: r.scope as string,
    hypothesis: r.hypothesis as string | null,
    requestedBy: r.requested_by as string,
    status: r.status as CampaignRecord['status'],
    results: r.results as Record<string, unknown> | null,
    startedAt: (r.started_at as Date).toISOString(),
    finishedAt: (r.finished_at as Date | null)?.toISOString() ?? null,
  };
}

/** Idempotent: a retried activity finds the record it wrote. */
export async function recordCampaignStart(sql: Sql, c: { id: string; scope: string; hypothesis: string | null; requestedBy: string }): Promise<CampaignRecord> {
  await sql`
    insert into campaigns (id, scope, hypothesis, requested_by) values (${c.id}, ${c.scope}, ${c.hypothesis}, ${c.requestedBy})
    on conflict (id) do nothing`;
  return (await getCampaign(sql, c.id))!;
}

export async function finishCampaign(sql: Sql, id: string, status: 'completed' | 'failed', results: Record<string, unknown>): Promise<void> {
  await sql`update campaigns set status = ${status}, results = ${sql.json(results as never)}, finished_at = coalesce(finished_at, now()) where id = ${id}`;
}

export async function getCampaign(sql: Sql, id: string): Promise<CampaignRecord | undefined> {
  const [row] = await sql`select * from campaigns where id = ${id}`;
  return row ? campaignRow(row) : undefined;
}

export async function listCampaigns(sql: Sql, { scope, limit = 20 }: { scope?: string; limit?: number } = {}): Promise<CampaignRecord[]> {
  const rows = await sql`
    select * from campaigns where true ${scope ? sql`and scope = ${scope}` : sql``} order by started_at desc, id limit ${limit}`;
  return rows.map(campaignRow);
}

/** The images a scope selects (the targets of rescans) and how many assets it covers. */
export async function scopeImages(sql: Sql, selector: ScopeSelector, limit: number): Promise<{ images: string[]; assets: number }> {
  const [count] = await sql`select count(*)::int as n from assets a where a.kind <> 'business_service' ${scopeCondition(sql, selector)}`;
  const rows = await sql`
    select a.name from assets a where a.kind = 'container_image' ${scopeCondition(sql, selector)} order by a.last_seen_at desc, a.name limit ${limit}`;
  return { images: rows.map((r) => r.name as string), assets: (count?.n as number) ?? 0 };
}

/** Open exposures in a scope that carry one of these issue ids (a campaign's hypothesis). */
export async function countOpenWithIssues(sql: Sql, selector: ScopeSelector, issueIds: string[]): Promise<number> {
  const [row] = await sql`
    select count(*)::int as n from findings f join assets a on a.id = f.asset_id
    where f.status = 'open' and f.issue_id = any(${issueIds}) ${scopeCondition(sql, selector)}`;
  return (row?.n as number) ?? 0;
}
