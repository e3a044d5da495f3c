import type { Client } from '@temporalio/client';
import type { Sql } from '../db/client.js';
import { escalationDigestWorkflow, escalationQueuedSignal, type EscalationQueued } from '../workflows/escalation-digest.js';
import type { DigestedEscalation, EscalationDigestNotice, EscalationNotice, Person } from './notifier.js';
import { taskQueueFor } from '../workflows/task-queues.js';

// Managers hear of escalations once per round: every escalation recorded for a manager waits
// (escalations.digest_key null) until their round's digest names it. A round is one run of the
// manager's `escalation-digest:<manager>` workflow; its digest is one escalation_digests row keyed
// `<manager>:<round start>`, composed once, so a retry finds it instead of composing another.

const DAY_MS = 86_400_000;

export const escalationDigestWorkflowId = (manager: string) => `escalation-digest:${manager}`;

/** Tells the manager's round about an escalation just recorded: starts the round when none is open. */
export async function queueForDigest(temporal: { client: Client; taskQueue: string }, notice: EscalationNotice, windowMs: number): Promise<void> {
  const line: EscalationQueued = { ticketKey: notice.ticketKey, owner: notice.owner, ...(notice.ticketUrl ? { ticketUrl: notice.ticketUrl } : {}) };
  await temporal.client.workflow.signalWithStart(escalationDigestWorkflow, {
    workflowId: escalationDigestWorkflowId(notice.manager.userName),
    taskQueue: taskQueueFor(temporal.taskQueue, escalationDigestWorkflow),
    args: [{ manager: notice.manager, windowMs }],
    signal: escalationQueuedSignal,
    signalArgs: [line],
  });
}

export interface ComposedDigest {
  key: string;
  ticketKeys: string[];
  sentAt: Date | null;
}

/**
 * The round's digest: the one already composed under its key, or a new one taking every escalation
 * to the manager not yet told, in one transaction (null: nothing to tell).
 */
export async function composeDigest(sql: Sql, manager: string, roundAt: Date): Promise<ComposedDigest | null> {
  const key = `${manager}:${roundAt.toISOString()}`;
  return sql.begin(async (tx) => {
    const [existing] = await tx<{ ticket_keys: string[]; sent_at: Date | null }[]>`
      select ticket_keys, sent_at from escalation_digests where key = ${key}`;
    if (existing) return { key, ticketKeys: existing.ticket_keys, sentAt: existing.sent_at };
    const taken = await tx<{ ticket_key: string }[]>`
      update escalations set digest_key = ${key}
      where id in (select id from escalations where notified_user = ${manager} and digest_key is null for update)
      returning ticket_key`;
    if (taken.length === 0) return null;
    const ticketKeys = [...new Set(taken.map((r) => r.ticket_key))].sort();
    await tx`
      insert into escalation_digests (key, manager, round_at, ticket_keys)
      values (${key}, ${manager}, ${roundAt}, ${tx.array(ticketKeys)})`;
    return { key, ticketKeys, sentAt: null };
  });
}

/** The notice for a composed digest: one line per escalation it took, the most overdue first. */
export async function digestNotice(
  sql: Sql,
  key: string,
  manager: Person,
  roundAt: string,
  known: Record<string, { ticketUrl?: string; owner?: Person }>,
  at: number,
): Promise<EscalationDigestNotice> {
  const rows = await sql<
    {
      ticket_key: string;
      phase: 'acknowledgement' | 'resolution';
      level: number;
      external_number: string | null;
      external_url: string | null;
      tier: string;
      owner: string | null;
      component: string;
      fixed_version: string;
      asset_name: string;
      sla_deadline: Date;
    }[]
  >`
    select e.ticket_key, e.phase, e.level, t.external_number, t.external_url, t.tier, t.owner, t.component, t.fixed_version,
           a.name as asset_name,
           case when e.phase = 'acknowledgement' then least(t.ack_due_at, t.due_at) else t.due_at end as sla_deadline
    from escalations e join tickets t on t.key = e.ticket_key join assets a on a.id = t.asset_id
    where e.digest_key = ${key}
    order by sla_deadline, t.external_number, e.ticket_key, e.level`;
  const escalations: DigestedEscalation[] = rows.map((r) => {
    const extra = known[r.ticket_key];
    const ticketUrl = extra?.ticketUrl ?? r.external_url ?? undefined;
    return {
      ticketKey: r.ticket_key,
      ticketNumber: r.external_number ?? r.ticket_key,
      ...(ticketUrl ? { ticketUrl } : {}),
      fix: `${r.component} to ${r.fixed_version} on ${r.asset_name}`,
      tier: r.tier,
      owner: extra?.owner ?? { userName: r.owner ?? '', name: r.owner ?? 'nobody' },
      phase: r.phase,
      level: r.level,
      slaDeadline: r.sla_deadline.toISOString(),
      daysOverdue: Math.max(0, Math.round(((at - r.sla_deadline.getTime()) / DAY_MS) * 10) / 10),
    };
  });
  return { id: key, manager, roundAt, escalations };
}

export async function markDigestSent(sql: Sql, key: string): Promise<void> {
  await sql`update escalation_digests set sent_at = now() where key = ${key} and sent_at is null`;
}

export interface DigestFilter {
  manager?: string;
  limit: number;
  offset: number;
}

/** Digests, newest round first: what managers were told, and when. */
export async function listEscalationDigests(sql: Sql, f: DigestFilter) {
  const rows = await sql<{ key: string; manager: string; round_at: Date; ticket_keys: string[]; sent_at: Date | null; created_at: Date; total: string }[]>`
    select key, manager, round_at, ticket_keys, sent_at, created_at, count(*) over () as total
    from escalation_digests
    where true ${f.manager ? sql`and manager = ${f.manager}` : sql``}
    order by round_at desc, key
    limit ${f.limit} offset ${f.offset}`;
  return {
    total: Number(rows[0]?.total ?? 0),
    items: rows.map((r) => ({
      key: r.key,
      manager: r.manager,
      roundAt: r.round_at.toISOString(),
      ticketKeys: r.ticket_keys,
      sentAt: r.sent_at?.toISOString() ?? null,
      createdAt: r.created_at.toISOString(),
    })),
  };
}
