import type { Sql } from '../db/client.js';
import { ACTION_TIERS } from '../prioritization/policy.js';

// The promise of mobilization, checked: every urgent (act/attend) finding reaches a person, in one
// ticket per real fix. `unreached` must be empty; the shape counts show no image with two tickets
// for one layer and no host with two for one product.

export interface MobilizationAudit {
  urgentFindings: number;
  /** On a ticket that asks for an upgrade, rebuild, patch, configuration change or rotation. */
  onFixTicket: number;
  /** On a ticket that asks for compensating controls (no fix known). */
  onMitigationTicket: number;
  /** On a ticket in the orphan queue, assigned to the fallback owner. */
  inOrphanQueue: number;
  /** Urgent findings no person holds: no ticket, or an orphaned ticket with no fallback owner. Must be 0. */
  unreached: number;
  /** The first unreached findings, for a person to look at. */
  unreachedSample: { findingId: number; issueId: string; tier: string; assetKey: string; why: string }[];
  tickets: {
    open: number;
    byAction: Record<string, number>;
    /** Most open tickets one image has for one layer (its OS layer, one manifest): 1 when grouping holds. */
    maxPerImageLayer: number;
    /** Most open tickets one host has for one product upgrade, and one owner for OS patching. */
    maxPerHostProduct: number;
    maxPerOwnerPatchRun: number;
    /** Tickets planned per package before remediation actions existed, still open. */
    legacyPerPackage: number;
  };
}

const OPEN = `t.state not in ('verified', 'closed')`;

export async function mobilizationAudit(sql: Sql): Promise<MobilizationAudit> {
  const [reach] = await sql<{ urgent: number; fix: number; mitigation: number; orphan: number; unreached: number }[]>`
    select count(*)::int as urgent,
           count(*) filter (where t.owner is not null and t.orphan_reason is null and t.action <> 'mitigation')::int as fix,
           count(*) filter (where t.owner is not null and t.orphan_reason is null and t.action = 'mitigation')::int as mitigation,
           count(*) filter (where t.owner is not null and t.orphan_reason is not null)::int as orphan,
           count(*) filter (where t.key is null or t.owner is null)::int as unreached
    from findings f left join tickets t on t.key = f.ticket_key
    where f.status = 'open' and f.tier = any(${ACTION_TIERS as string[]})`;
  const sample = await sql<{ id: number; issue_id: string; tier: string; asset_key: string; why: string }[]>`
    select f.id, f.issue_id, f.tier, a.asset_key,
           case when t.key is null then 'no ticket' else 'orphaned: ' || coalesce(t.orphan_reason, 'no owner') || '; no fallback owner configured' end as why
    from findings f join assets a on a.id = f.asset_id left join tickets t on t.key = f.ticket_key
    where f.status = 'open' and f.tier = any(${ACTION_TIERS as string[]}) and (t.key is null or t.owner is null)
    order by f.tier, f.id limit 20`;
  const byAction = await sql<{ action: string; n: number }[]>`
    select t.action, count(*)::int as n from tickets t where ${sql.unsafe(OPEN)} group by t.action order by t.action`;
  const [shape] = await sql<{ image_layer: number; host_product: number; owner_patch: number }[]>`
    select
      coalesce((select max(n) from (select count(*) as n from tickets t join assets a on a.id = t.asset_id
        where ${sql.unsafe(OPEN)} and a.kind = 'container_image' and t.action in ('os-layer', 'base-image', 'manifest', 'package')
        group by t.asset_id, case when t.action = 'manifest' then 'manifest:' || lower(t.component) else 'os' end) x), 0)::int as image_layer,
      coalesce((select max(n) from (select count(*) as n from tickets t join assets a on a.id = t.asset_id
        where ${sql.unsafe(OPEN)} and a.kind = 'host' and t.action = 'product' group by t.asset_id, lower(t.component)) x), 0)::int as host_product,
      coalesce((select max(n) from (select count(*) as n from tickets t
        where ${sql.unsafe(OPEN)} and t.action = 'os-patch' group by coalesce(t.owner, t.asset_id::text)) x), 0)::int as owner_patch`;
  const counts = Object.fromEntries(byAction.map((r) => [r.action, r.n]));
  return {
    urgentFindings: reach!.urgent,
    onFixTicket: reach!.fix,
    onMitigationTicket: reach!.mitigation,
    inOrphanQueue: reach!.orphan,
    unreached: reach!.unreached,
    unreachedSample: sample.map((r) => ({ findingId: Number(r.id), issueId: r.issue_id, tier: r.tier, assetKey: r.asset_key, why: r.why })),
    tickets: {
      open: byAction.reduce((n, r) => n + r.n, 0),
      byAction: counts,
      maxPerImageLayer: shape!.image_layer,
      maxPerHostProduct: shape!.host_product,
      maxPerOwnerPatchRun: shape!.owner_patch,
      legacyPerPackage: counts['package'] ?? 0,
    },
  };
}
