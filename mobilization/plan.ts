import type { Sql } from '../db/client.js';
import { fixKey, remediationWorkflowId } from './golden-tickets.js';
import { ACTION_TIERS } from '../prioritization/policy.js';
import { fixAvailable } from '../validation/feasibility.js';

export interface PlannedTicket {
  key: string;
  workflowId: string;
  owner: string | null;
  tier: string;
  findingCount: number;
  dueAt: string;
  ackDueAt: string;
  /** Escalation interval of this ticket (per tier and asset criticality). */
  escalationIntervalMs: number;
  ackMs: number;
  /** True when the ticket is new or its findings changed: its workflow must hear of it. */
  changed: boolean;
}

/**
 * Groups the open act/attend findings of a scan's assets by fix (package and fixed version, per asset,
 * or per owner across hosts) into golden tickets, upserts them and links their findings. Findings without a fixed version have no
 * upgrade to ask for and stay on the exposure list. Re-running it with nothing new changes nothing.
 */
export type TicketScope = { scanId: string } | { assetIds: number[] };

/** The acknowledgement time and escalation interval of a ticket, from its tier and its asset's criticality. */
export type SlaOf = (ticket: { tier: string; criticality: string | null }) => { ackMs: number; escalationIntervalMs: number };

export async function planGoldenTickets(sql: Sql, scope: TicketScope, slaOf: SlaOf): Promise<PlannedTicket[]> {
  const assets =
    'scanId' in scope
      ? sql`f.asset_id in (select asset_id from scan_assets where scan_id = ${scope.scanId})`
      : sql`f.asset_id = any(${sql.array(scope.assetIds)}::bigint[])`;
  const actionable = sql`f.status = 'open' and f.tier = any(${ACTION_TIERS as string[]}) and ${fixAvailable(sql)}`;
  const mostCritical = sql`(array_agg(a.criticality order by case a.criticality when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end))[1]`;
  // One action per owner: the same package patched to the same version on many hosts of one owner is
  // one golden ticket (one change, one maintenance window); on images and other assets the fix is
  // per asset (one image rebuild covers every container that runs it). Host groups are counted over
  // all the owner's hosts, not only the scanned ones, so a scan of one host never shrinks the ticket.
  const groups = await sql<
    {
      asset_id: number; asset_key: string; asset_name: string; owner: string | null; criticality: string | null; component: string;
      fixed_version: string; tier: string; due_at: Date; finding_ids: number[]; asset_count: number;
    }[]
  >`
    select a.id as asset_id, a.asset_key, a.name as asset_name, a.owner, a.criticality, f.component, f.fixed_version,
           case when bool_or(f.tier = 'act') then 'act' else 'attend' end as tier,
           min(f.due_at) as due_at, array_agg(f.id order by f.id) as finding_ids, 1 as asset_count
    from findings f join assets a on a.id = f.asset_id
    where ${actionable} and ${assets} and not (a.kind = 'host' and a.owner is not null)
    group by a.id, f.component, f.fixed_version
    union all
    select min(a.id) as asset_id, 'owner:' || t.owner as asset_key, 'hosts of ' || t.owner as asset_name, t.owner, ${mostCritical} as criticality,
           t.component, t.fixed_version,
           case when bool_or(f.tier = 'act') then 'act' else 'attend' end as tier,
           min(f.due_at) as due_at, array_agg(f.id order by f.id) as finding_ids, count(distinct a.id)::int as asset_count
    from (
      select distinct a.owner, f.component, f.fixed_version
      from findings f join assets a on a.id = f.asset_id
      where ${actionable} and ${assets} and a.kind = 'host' and a.owner is not null
    ) t
    join assets a on a.owner = t.owner and a.kind = 'host'
    join findings f on f.asset_id = a.id and f.component = t.component and f.fixed_version = t.fixed_version and ${actionable}
    group by t.owner, t.component, t.fixed_version`;
  if (groups.length === 0) return [];
  const planned = groups.map((g) => ({
    ...g,
    key: fixKey({ assetKey: g.asset_key, assetName: g.asset_name, component: g.component, fixedVersion: g.fixed_version }),
    sla: slaOf({ tier: g.tier, criticality: g.criticality }),
  }));
  const slaByKey = new Map(planned.map((p) => [p.key, p.sla]));
  return sql.begin(async (tx) => {
    const rows = await tx<{ key: string; workflow_id: string; owner: string | null; tier: string; finding_count: number; due_at: Date; ack_due_at: Date; changed: boolean }[]>`
      with planned as (
        select * from unnest(
          ${tx.array(planned.map((p) => p.key))}::text[], ${tx.array(planned.map((p) => p.asset_id))}::bigint[],
          ${tx.array(planned.map((p) => p.component))}::text[], ${tx.array(planned.map((p) => p.fixed_version))}::text[],
          ${tx.array(planned.map((p) => p.owner ?? ''))}::text[], ${tx.array(planned.map((p) => p.tier))}::text[],
          ${tx.array(planned.map((p) => p.due_at.toISOString()))}::timestamptz[], ${tx.array(planned.map((p) => p.finding_ids.length))}::int[],
          ${tx.array(planned.map((p) => p.sla.ackMs))}::bigint[]
        ) as p(key, asset_id, component, fixed_version, owner, tier, due_at, finding_count, ack_ms)
      ),
      upserted as (
        insert into tickets as t (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at, finding_count)
        select key, 'remediation:' || key, asset_id, component, fixed_version, nullif(owner, ''),
               case when owner = '' then 'orphaned' else 'opening' end, tier,
               now() + ack_ms * interval '1 millisecond', due_at, finding_count
        from planned
        on conflict (key) do update set
          finding_count = excluded.finding_count,
          tier = excluded.tier,
          due_at = least(t.due_at, excluded.due_at),
          owner = coalesce(t.owner, excluded.owner),
          state = case when t.state = 'orphaned' and excluded.owner is not null then 'opening' else t.state end,
          updated_at = now()
        where t.finding_count is distinct from excluded.finding_count or t.tier is distinct from excluded.tier
           or t.due_at > excluded.due_at or (t.owner is null and excluded.owner is not null)
        returning t.key, t.workflow_id, t.owner, t.tier, t.finding_count, t.due_at, t.ack_due_at, true as changed
      )
      select * from upserted
      union all
      select t.key, t.workflow_id, t.owner, t.tier, t.finding_count, t.due_at, t.ack_due_at, false
      from tickets t join planned p using (key) where t.key not in (select key from upserted)`;
    await tx`
      update findings f set ticket_key = p.key
      from unnest(${tx.array(planned.flatMap((p) => p.finding_ids.map(() => p.key)))}::text[],
                  ${tx.array(planned.flatMap((p) => p.finding_ids))}::bigint[]) as p(key, id)
      where f.id = p.id and f.ticket_key is distinct from p.key`;
    return rows.map((r) => ({
      key: r.key,
      workflowId: r.workflow_id ?? remediationWorkflowId(r.key),
      owner: r.owner,
      tier: r.tier,
      findingCount: r.finding_count,
      dueAt: r.due_at.toISOString(),
      ackDueAt: r.ack_due_at.toISOString(),
      ackMs: slaByKey.get(r.key)!.ackMs,
      escalationIntervalMs: slaByKey.get(r.key)!.escalationIntervalMs,
      changed: r.changed,
    }));
  });
}

export interface TicketDetail {
  key: string;
  owner: string | null;
  tier: string;
  assetName: string;
  assetKey: string;
  component: string;
  fixedVersion: string;
  dueAt: Date;
  externalSysId: string | null;
  externalNumber: string | null;
  /** Names of the assets the open findings are on (several for an OS patch across an owner's hosts). */
  assets: string[];
  findings: { issueId: string; version: string; severity: string; cvss: number | null; tier: string | null; kev: boolean; epss: number | null }[];
}

export async function ticketDetail(sql: Sql, key: string): Promise<TicketDetail | undefined> {
  const [t] = await sql`
    select t.key, t.owner, t.tier, t.component, t.fixed_version, t.due_at, t.external_sys_id, t.external_number, a.name as asset_name, a.asset_key
    from tickets t join assets a on a.id = t.asset_id where t.key = ${key}`;
  if (!t) return undefined;
  const findings = await sql`
    select f.issue_id, f.version, f.severity, f.cvss_score, f.tier, k.cve is not null as kev, e.epss, fa.name as asset_name
    from findings f
    join assets fa on fa.id = f.asset_id
    left join kev_entries k on k.cve = f.issue_id and k.feed_version = (select version from intel_feeds where kind = 'kev' and status = 'active')
    left join epss_scores e on e.cve = f.issue_id and e.feed_version = (select version from intel_feeds where kind = 'epss' and status = 'active')
    where f.ticket_key = ${key} and f.status = 'open' order by f.score desc nulls last, f.issue_id`;
  return {
    key: t.key,
    owner: t.owner,
    tier: t.tier,
    assetName: t.asset_name,
    assetKey: t.asset_key,
    component: t.component,
    fixedVersion: t.fixed_version,
    dueAt: t.due_at,
    externalSysId: t.external_sys_id,
    externalNumber: t.external_number,
    assets: [...new Set(findings.map((f) => f.asset_name as string))].sort(),
    findings: findings.map((f) => ({ issueId: f.issue_id, version: f.version, severity: f.severity, cvss: f.cvss_score, tier: f.tier, kev: f.kev, epss: f.epss })),
  };
}
