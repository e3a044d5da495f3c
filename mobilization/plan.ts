import type { Sql } from '../db/client.js';
import { remediationWorkflowId } from './golden-tickets.js';
import { ACTION_TIERS } from '../prioritization/policy.js';
import { actionLines, groupIntoActions, type Action, type ActionableFinding, type ActionLine, type RemediationAction } from './actions.js';

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
  /** Why it sits in the orphan queue, when it does. */
  orphanReason: string | null;
}

export type TicketScope = { scanId: string } | { assetIds: number[] };

/** The acknowledgement time and escalation interval of a ticket, from its tier and its asset's criticality. */
export type SlaOf = (ticket: { tier: string; criticality: string | null }) => { ackMs: number; escalationIntervalMs: number };

/** Who a ticket goes to: its owner, or the fallback owner with the reason it is in the orphan queue. */
export interface Assignment {
  owner: string | null;
  orphanReason: string | null;
}

/**
 * The remediation actions (mobilization/actions.ts) that fix the open act/attend findings of a
 * scope's assets. OS patch runs span an owner's hosts, so the other hosts of the scope's owners are
 * read too: a scan of one host never shrinks the patch run. Findings still on a ticket planned per
 * package (before actions existed) stay there until it closes.
 */
export async function actionsInScope(sql: Sql, scope: TicketScope, { patchRunOwners }: { patchRunOwners?: string[] } = {}): Promise<RemediationAction[]> {
  const scoped =
    'scanId' in scope
      ? sql`select asset_id as id from scan_assets where scan_id = ${scope.scanId}`
      : sql`select unnest(${sql.array(scope.assetIds)}::bigint[]) as id`;
  const rows = await sql<
    {
      id: number; asset_id: number; asset_key: string; asset_name: string; asset_kind: string; owner: string | null; criticality: string | null;
      kind: string; issue_id: string; component: string; version: string; location: string; fixed_version: string | null;
      ecosystem: string | null; package_class: 'os' | 'app' | null; manifest: string; source_package: string | null; tier: string; due_at: Date;
      base_id: number | null; base_key: string | null; base_name: string | null; base_owner: string | null;
    }[]
  >`
    with scoped as (${scoped}),
    owners as (${
      patchRunOwners
        ? sql`select unnest(${sql.array(patchRunOwners)}::text[]) as owner`
        : sql`select distinct a.owner from assets a join scoped s on s.id = a.id where a.kind = 'host' and a.owner is not null`
    })
    select f.id, f.asset_id, a.asset_key, a.name as asset_name, a.kind as asset_kind, a.owner, a.criticality, f.kind, f.issue_id, f.component,
           f.version, f.location, f.fixed_version, f.ecosystem, f.package_class, f.manifest, f.source_package, f.tier, coalesce(f.due_at, now()) as due_at,
           b.id as base_id, b.asset_key as base_key, b.name as base_name, b.owner as base_owner
    from findings f join assets a on a.id = f.asset_id
    left join asset_relations r on r.asset_id = a.id and r.relation = 'built_from'
    left join assets b on b.id = r.target_id
    where f.status = 'open' and f.tier = any(${ACTION_TIERS as string[]})
      and (f.asset_id in (select id from scoped) or (a.kind = 'host' and a.owner in (select owner from owners)))
      and not exists (select 1 from tickets t where t.key = f.ticket_key and t.action = 'package' and t.state <> 'verified')
    order by f.id`;
  const findings: ActionableFinding[] = rows.map((r) => ({
    id: Number(r.id),
    assetId: Number(r.asset_id),
    assetKey: r.asset_key,
    assetName: r.asset_name,
    assetKind: r.asset_kind,
    owner: r.owner,
    criticality: r.criticality,
    kind: r.kind,
    issueId: r.issue_id,
    component: r.component,
    version: r.version,
    location: r.location,
    fixedVersion: r.fixed_version,
    ecosystem: r.ecosystem,
    packageClass: r.package_class,
    manifest: r.manifest,
    sourcePackage: r.source_package,
    tier: r.tier,
    dueAt: r.due_at,
    baseImage: r.base_id === null ? null : { assetId: Number(r.base_id), assetKey: r.base_key!, assetName: r.base_name!, owner: r.base_owner },
  }));
  return groupIntoActions(findings);
}

/**
 * The actions of a scope's assets that hold a finding whose tier or due date changed since `since`,
 * or whose ticket such a finding was on (it left the action tiers): after an incremental rescoring,
 * the only tickets that can have changed. The other hosts of an owner are read only for the owners
 * whose OS patch run holds such a finding (all the scope's owners when a finding left a ticket these
 * actions do not name), where actionsInScope reads them for every owner in scope.
 */
export async function actionsWithMovedFindings(sql: Sql, assetIds: number[], since: Date): Promise<RemediationAction[]> {
  const moved = await sql<{ id: string; ticket_key: string | null }[]>`
    select id, ticket_key from findings
    where asset_id = any(${sql.array(assetIds)}::bigint[]) and status = 'open' and changed_at >= ${since}`;
  if (moved.length === 0) return [];
  const ids = new Set(moved.map((m) => Number(m.id)));
  const keys = new Set(moved.map((m) => m.ticket_key).filter((k): k is string => k !== null));
  const holds = (a: RemediationAction) => keys.has(a.key) || a.findingIds.some((id) => ids.has(id));
  const own = await actionsInScope(sql, { assetIds }, { patchRunOwners: [] });
  const named = new Set(own.map((a) => a.key));
  const owners = [...keys].some((k) => !named.has(k))
    ? undefined
    : [...new Set(own.filter((a) => holds(a) && a.scope.kind === 'owner').map((a) => (a.scope as { owner: string }).owner))];
  const actions = owners && owners.length === 0 ? own : await actionsInScope(sql, { assetIds }, owners ? { patchRunOwners: owners } : {});
  return actions.filter(holds);
}

/**
 * Upserts the actions as golden tickets and links their findings. A ticket whose findings change
 * is marked changed (its workflow writes a work note, never a sibling ticket), and so is a ticket
 * that lost findings to another action. Re-running it with nothing new changes nothing.
 */
export async function saveTickets(
  sql: Sql,
  actions: RemediationAction[],
  slaOf: SlaOf,
  assign: (action: RemediationAction) => Assignment,
): Promise<PlannedTicket[]> {
  if (actions.length === 0) return [];
  const planned = actions.map((a) => ({ ...a, ...assign(a), sla: slaOf({ tier: a.tier, criticality: a.criticality }) }));
  const slaByKey = new Map(planned.map((p) => [p.key, p.sla]));
  return sql.begin(async (tx) => {
    const rows = await tx<
      { key: string; workflow_id: string; owner: string | null; tier: string; finding_count: number; due_at: Date; ack_due_at: Date; orphan_reason: string | null; changed: boolean }[]
    >`
      with planned as (
        select * from unnest(
          ${tx.array(planned.map((p) => p.key))}::text[], ${tx.array(planned.map((p) => p.assetId))}::bigint[],
          ${tx.array(planned.map((p) => p.subject))}::text[], ${tx.array(planned.map((p) => p.target))}::text[],
          ${tx.array(planned.map((p) => p.owner ?? ''))}::text[], ${tx.array(planned.map((p) => p.tier))}::text[],
          ${tx.array(planned.map((p) => p.dueAt.toISOString()))}::timestamptz[], ${tx.array(planned.map((p) => p.findingIds.length))}::int[],
          ${tx.array(planned.map((p) => p.sla.ackMs))}::bigint[], ${tx.array(planned.map((p) => p.action))}::text[],
          ${tx.array(planned.map((p) => p.orphanReason ?? ''))}::text[]
        ) as p(key, asset_id, component, fixed_version, owner, tier, due_at, finding_count, ack_ms, action, orphan_reason)
      ),
      upserted as (
        insert into tickets as t (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at, finding_count, action, orphan_reason)
        select key, 'remediation:' || key, asset_id, component, fixed_version, nullif(owner, ''),
               case when owner = '' then 'orphaned' else 'opening' end, tier,
               now() + ack_ms * interval '1 millisecond', due_at, finding_count, action, nullif(orphan_reason, '')
        from planned
        on conflict (key) do update set
          finding_count = excluded.finding_count,
          tier = excluded.tier,
          fixed_version = excluded.fixed_version,
          due_at = least(t.due_at, excluded.due_at),
          owner = coalesce(t.owner, excluded.owner),
          orphan_reason = case when t.owner is null then excluded.orphan_reason else t.orphan_reason end,
          state = case when t.state = 'orphaned' and excluded.owner is not null then 'opening' else t.state end,
          updated_at = now()
        where t.finding_count is distinct from excluded.finding_count or t.tier is distinct from excluded.tier
           or t.due_at > excluded.due_at or (t.owner is null and excluded.owner is not null)
           or t.fixed_version is distinct from excluded.fixed_version
        returning t.key, t.workflow_id, t.owner, t.tier, t.finding_count, t.due_at, t.ack_due_at, t.orphan_reason, true as changed
      )
      select * from upserted
      union all
      select t.key, t.workflow_id, t.owner, t.tier, t.finding_count, t.due_at, t.ack_due_at, t.orphan_reason, false
      from tickets t join planned p using (key) where t.key not in (select key from upserted)`;
    // Findings that move to another action (a fix became known, a manifest was named) leave their
    // old ticket smaller: its count is recomputed and its workflow told.
    const links = { keys: planned.flatMap((p) => p.findingIds.map(() => p.key)), ids: planned.flatMap((p) => p.findingIds) };
    const left = await tx<{ ticket_key: string }[]>`
      select distinct f.ticket_key from findings f
      join unnest(${tx.array(links.keys)}::text[], ${tx.array(links.ids)}::bigint[]) as p(key, id) on f.id = p.id
      where f.ticket_key is not null and f.ticket_key <> p.key`;
    await tx`
      update findings f set ticket_key = p.key
      from unnest(${tx.array(links.keys)}::text[], ${tx.array(links.ids)}::bigint[]) as p(key, id)
      where f.id = p.id and f.ticket_key is distinct from p.key`;
    const shrunk = left.length
      ? await tx<{ key: string; workflow_id: string; owner: string | null; tier: string; finding_count: number; due_at: Date; ack_due_at: Date; orphan_reason: string | null }[]>`
          update tickets t set finding_count = (select count(*)::int from findings f where f.ticket_key = t.key and f.status = 'open'), updated_at = now()
          where t.key = any(${tx.array(left.map((l) => l.ticket_key))}::text[])
          returning t.key, t.workflow_id, t.owner, t.tier, t.finding_count, t.due_at, t.ack_due_at, t.orphan_reason`
      : [];
    const toPlanned = (r: (typeof rows)[number], changed: boolean): PlannedTicket => {
      const sla = slaByKey.get(r.key) ?? slaOf({ tier: r.tier, criticality: null });
      return {
        key: r.key,
        workflowId: r.workflow_id ?? remediationWorkflowId(r.key),
        owner: r.owner,
        tier: r.tier,
        findingCount: r.finding_count,
        dueAt: r.due_at.toISOString(),
        ackDueAt: r.ack_due_at.toISOString(),
        ackMs: sla.ackMs,
        escalationIntervalMs: sla.escalationIntervalMs,
        changed,
        orphanReason: r.orphan_reason,
      };
    };
    return [...rows.map((r) => toPlanned(r, r.changed)), ...shrunk.filter((s) => !slaByKey.has(s.key)).map((s) => toPlanned({ ...s, changed: true }, true))];
  });
}

/** Plans and saves the golden tickets of a scope; owners as the assets name them (see mobilize.ts for the directory check). */
export async function planGoldenTickets(sql: Sql, scope: TicketScope, slaOf: SlaOf, assign?: (action: RemediationAction) => Assignment): Promise<PlannedTicket[]> {
  const actions = await actionsInScope(sql, scope);
  return saveTickets(sql, actions, slaOf, assign ?? ((a) => ({ owner: a.owner, orphanReason: a.owner ? null : 'no owner' })));
}

export interface TicketDetail {
  key: string;
  owner: string | null;
  tier: string;
  /** The remediation action (mobilization/actions.ts) and what it is on. */
  action: Action;
  assetName: string;
  assetKey: string;
  /** The action's subject: a package for tickets planned per package, `OS packages`, a manifest, a product... */
  component: string;
  /** The one version asked for, when there is one; '' otherwise (see lines). */
  fixedVersion: string;
  dueAt: Date;
  externalSysId: string | null;
  externalNumber: string | null;
  orphanReason: string | null;
  /** Names of the assets the open findings are on (several for an OS patch across an owner's hosts). */
  assets: string[];
  /** What to change, one line per package and installed version. */
  lines: ActionLine[];
  findings: { issueId: string; aliases?: string[]; component: string; version: string; severity: string; cvss: number | null; tier: string | null; kev: boolean; epss: number | null; location: string; cwes: string[]; assetKey: string }[];
}

export async function ticketDetail(sql: Sql, key: string): Promise<TicketDetail | undefined> {
  const [t] = await sql`
    select t.key, t.owner, t.tier, t.action, t.component, t.fixed_version, t.due_at, t.external_sys_id, t.external_number, t.orphan_reason,
           a.name as asset_name, a.asset_key
    from tickets t join assets a on a.id = t.asset_id where t.key = ${key}`;
  if (!t) return undefined;
  const findings = await sql`
    select f.issue_id, f.aliases, f.component, f.version, f.fixed_version, f.source_package, f.location, coalesce(f.cwes, '{}') as cwes, f.severity, f.cvss_score, f.tier,
           k.cve is not null as kev, e.epss, fa.name as asset_name, fa.asset_key
    from findings f
    join assets fa on fa.id = f.asset_id
    left join kev_entries k on k.cve = f.issue_id and k.feed_version = (select version from intel_feeds where kind = 'kev' and status = 'active')
    left join epss_scores e on e.cve = f.issue_id and e.feed_version = (select version from intel_feeds where kind = 'epss' and status = 'active')
    where f.ticket_key = ${key} and f.status = 'open' order by f.score desc nulls last, f.issue_id`;
  const action = t.action as Action;
  return {
    key: t.key,
    owner: t.owner,
    tier: t.tier,
    action,
    assetName: t.asset_name,
    assetKey: t.asset_key,
    component: t.component,
    fixedVersion: t.fixed_version,
    dueAt: t.due_at,
    externalSysId: t.external_sys_id,
    externalNumber: t.external_number,
    orphanReason: t.orphan_reason,
    assets: [...new Set(findings.map((f) => f.asset_name as string))].sort(),
    lines: actionLines(
      action,
      findings.map((f) => ({ component: f.component, version: f.version, sourcePackage: f.source_package, issueId: f.issue_id, fixedVersion: f.fixed_version })),
    ),
    findings: findings.map((f) => ({
      issueId: f.issue_id,
      aliases: f.aliases,
      component: f.component,
      version: f.version,
      severity: f.severity,
      cvss: f.cvss_score,
      tier: f.tier,
      kev: f.kev,
      epss: f.epss,
      location: f.location,
      cwes: f.cwes,
      assetKey: f.asset_key,
    })),
  };
}
