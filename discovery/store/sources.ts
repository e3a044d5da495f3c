import { and, desc, eq } from 'drizzle-orm';
import type { OrphanQueueEntry } from '../../mobilization/store.js';
import type { Db, Sql } from '../../db/client.js';
import { discoverySources, reports } from '../../db/schema.js';

export type DiscoverySource = typeof discoverySources.$inferSelect;

export async function upsertSource(db: Db, source: Omit<typeof discoverySources.$inferInsert, 'createdAt' | 'updatedAt'>): Promise<DiscoverySource> {
  const [row] = await db
    .insert(discoverySources)
    .values(source)
    .onConflictDoUpdate({
      target: discoverySources.name,
      set: { kind: source.kind, config: source.config, schedule: source.schedule ?? null, updatedAt: new Date() },
    })
    .returning();
  return row!;
}

export async function getSource(db: Db, name: string): Promise<DiscoverySource | undefined> {
  const [row] = await db.select().from(discoverySources).where(eq(discoverySources.name, name));
  return row;
}

export async function listSources(db: Db): Promise<DiscoverySource[]> {
  return db.select().from(discoverySources).orderBy(discoverySources.name);
}

export async function deleteSource(db: Db, name: string): Promise<boolean> {
  const rows = await db.delete(discoverySources).where(eq(discoverySources.name, name)).returning();
  return rows.length > 0;
}


/**
 * Assets nobody owns, with what is open on them, and the tickets waiting in the orphan queue (no
 * owner, or an owner the ITSM does not know): the weekly orphan report.
 */
export async function buildOrphanReport(sql: Sql, orphanTickets: OrphanQueueEntry[] = []) {
  const rows = await sql`
    select a.id, a.name, a.asset_key, a.kind, a.business_service, a.criticality, a.internet_facing, a.last_seen_at,
           count(f.id) filter (where f.status = 'open')::int as open_findings,
           count(f.id) filter (where f.status = 'open' and f.tier in ('act', 'attend'))::int as action_findings
    from assets a left join findings f on f.asset_id = a.id
    where a.owner is null and a.kind <> 'business_service'
    group by a.id order by action_findings desc, open_findings desc, a.name`;
  const body = {
    generatedAt: new Date().toISOString(),
    orphanAssets: rows.length,
    actionFindings: rows.reduce((n, r) => n + (r.action_findings as number), 0),
    orphanTickets,
    assets: rows.map((r) => ({
      id: Number(r.id),
      name: r.name as string,
      key: r.asset_key as string,
      kind: r.kind as string,
      businessService: r.business_service as string | null,
      criticality: r.criticality as string | null,
      internetFacing: r.internet_facing as boolean | null,
      openFindings: r.open_findings as number,
      actionFindings: r.action_findings as number,
      lastSeenAt: (r.last_seen_at as Date).toISOString(),
    })),
  };
  const [stored] = await sql`insert into reports (kind, body) values ('orphan-assets', ${sql.json(body)}) returning id`;
  return { id: Number(stored!.id), ...body };
}

export async function latestReport(db: Db, kind: string) {
  const [row] = await db.select().from(reports).where(eq(reports.kind, kind)).orderBy(desc(reports.id)).limit(1);
  return row;
}

export async function getReport(db: Db, id: number, kind: string) {
  const [row] = await db.select().from(reports).where(and(eq(reports.id, id), eq(reports.kind, kind)));
  return row;
}

/** Share of assets scanned within their scan SLA, per criticality (the scan-coverage KPI). */
export async function scanCoverage(sql: Sql, slaMs: Record<string, number>) {
  const rows = await sql`
    select coalesce(criticality, 'unknown') as criticality, count(*)::int as assets,
           count(*) filter (where last_scanned_at >= now() - (case criticality
               when 'critical' then ${`${slaMs.critical} milliseconds`} when 'high' then ${`${slaMs.high} milliseconds`}
               when 'medium' then ${`${slaMs.medium} milliseconds`} else ${`${slaMs.low} milliseconds`} end)::interval)::int as scanned_within_sla
    from assets where kind <> 'business_service'
    group by 1 order by 1`;
  return rows.map((r) => ({
    criticality: r.criticality as string,
    assets: r.assets as number,
    scannedWithinSla: r.scanned_within_sla as number,
    share: (r.assets as number) === 0 ? null : Math.round(((r.scanned_within_sla as number) / (r.assets as number)) * 1000) / 1000,
  }));
}
