import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import type { SlaConfig } from '../config/index.js';
import { findingsChangedSignal, verificationScanSignal } from '../workflows/remediation/messages.js';
import { remediationWorkflow } from '../workflows/remediation/workflow.js';
import { CTEM_ESCALATION_LEVEL, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from '../workflows/search-attributes.js';
import { actionsInScope, actionsWithMovedFindings, saveTickets, type Assignment, type TicketScope } from './plan.js';
import type { RemediationAction } from './actions.js';
import { slaFor } from './sla.js';
import { scanCoverage, ticketsAwaitingVerification } from './store.js';
import { taskQueueFor } from '../workflows/task-queues.js';

// From prioritized findings to running remediation workflows: plan the golden tickets of a scope and
// tell each ticket's workflow (signal-with-start opens it when new, signals it when it exists); a
// scan of a resolved ticket's asset is that ticket's verification.

/** The ITSM's people directory: who exists and is active (an unknown owner is never assigned a ticket). */
export interface Directory {
  /** The ITSM's name, for the orphan reason (`not found in ServiceNow`). */
  name: string;
  findUser(userName: string): Promise<{ active: boolean } | null>;
}

export interface MobilizeDeps {
  database: Database;
  temporal: { client: Client; taskQueue: string };
  sla: SlaConfig;
  /** Without one, owners are taken as the assets name them. */
  directory?: Directory;
  /** Who holds the orphan queue's tickets (CTEM_FALLBACK_OWNER); without one they wait unassigned. */
  fallbackOwner?: string;
  /** Reassigns an orphaned ticket to the owner found since (mobilization/incidents.ts handOverIncident). */
  handOver?: (ticketKey: string, owner: string) => Promise<void>;
  /** Where an owner the directory does not know is reported (the activity's log). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * Who each action goes to. An owner the directory does not know (a typo such as `alex.romer0`) or
 * marks inactive never gets a ticket: it goes to the orphan queue, assigned to the fallback owner
 * when one is configured, with the reason on the ticket.
 */
async function assignments(
  actions: RemediationAction[],
  fallbackOwner: string | undefined,
  directory?: Directory,
): Promise<{ assign: (a: RemediationAction) => Assignment; notFound: string[] }> {
  const status = new Map<string, 'ok' | 'unknown' | 'inactive'>();
  for (const owner of new Set(actions.map((a) => a.owner).filter((o): o is string => !!o))) {
    if (!directory) {
      status.set(owner, 'ok');
      continue;
    }
    const user = await directory.findUser(owner);
    status.set(owner, !user ? 'unknown' : user.active ? 'ok' : 'inactive');
  }
  const orphan = (reason: string): Assignment => ({ owner: fallbackOwner ?? null, orphanReason: reason });
  const assign = (a: RemediationAction): Assignment => {
    if (!a.owner) return orphan('the asset has no owner');
    const s = status.get(a.owner);
    if (s === 'unknown') return orphan(`owner ${a.owner} not found in ${directory!.name}`);
    if (s === 'inactive') return orphan(`owner ${a.owner} is inactive in ${directory!.name}`);
    return { owner: a.owner, orphanReason: null };
  };
  return { assign, notFound: [...status].filter(([, s]) => s !== 'ok').map(([owner]) => owner) };
}

/**
 * `changedSince`: only the actions that hold a finding of the scope whose tier or due date changed
 * since then, or whose ticket such a finding was on (plan.ts actionsWithMovedFindings). An
 * incremental rescoring that moved a few findings thus reads, saves and signals their tickets, not
 * the tens of thousands the scope's assets and their owners' patch runs carry; the other actions'
 * findings did not move, so their tickets are as they were.
 */
export async function mobilize(
  { database, temporal, sla, directory, fallbackOwner, handOver, warn }: MobilizeDeps,
  scope: TicketScope,
  { changedSince }: { changedSince?: Date } = {},
): Promise<Record<string, number>> {
  const actions = changedSince && 'assetIds' in scope ? await actionsWithMovedFindings(database.sql, scope.assetIds, changedSince) : await actionsInScope(database.sql, scope);
  const { assign, notFound } = await assignments(actions, fallbackOwner, directory);
  if (notFound.length) warn?.('owners not found in the ITSM directory: their tickets go to the orphan queue', { owners: notFound, fallbackOwner: fallbackOwner ?? null });
  // Orphaned tickets whose owner is known now: handed over once saved.
  const orphaned = await database.sql<{ key: string }[]>`
    select key from tickets where key = any(${database.sql.array(actions.map((a) => a.key))}::text[]) and orphan_reason is not null and state not in ('verified', 'closed')`;
  const handovers = orphaned.flatMap(({ key }) => {
    const a = actions.find((x) => x.key === key)!;
    const to = assign(a);
    return to.owner && !to.orphanReason ? [{ key, owner: to.owner }] : [];
  });
  const planned = await saveTickets(database.sql, actions, (t) => slaFor(sla.policy, sla, t), assign);
  for (const h of handovers) await handOver?.(h.key, h.owner);
  let started = 0;
  for (const t of planned) {
    if (!t.changed || !t.owner) continue;
    await temporal.client.workflow.signalWithStart(remediationWorkflow, {
      workflowId: t.workflowId,
      taskQueue: taskQueueFor(temporal.taskQueue, remediationWorkflow),
      args: [
        {
          ticketKey: t.key,
          owner: t.owner,
          tier: t.tier,
          findingCount: t.findingCount,
          ackDueAt: t.ackDueAt,
          dueAt: t.dueAt,
          escalationIntervalMs: t.escalationIntervalMs,
          ackSlaMs: t.ackMs,
          ...(sla.reconcileIntervalMs ? { reconcileIntervalMs: sla.reconcileIntervalMs } : {}),
        },
      ],
      signal: findingsChangedSignal,
      signalArgs: [{ findingCount: t.findingCount, tier: t.tier, dueAt: t.dueAt }],
      typedSearchAttributes: [
        { key: CTEM_PHASE, value: 'mobilization' },
        { key: CTEM_TIER, value: t.tier },
        { key: CTEM_OWNER, value: t.owner },
        { key: CTEM_ESCALATION_LEVEL, value: 0 },
        { key: CTEM_SLA_DEADLINE, value: new Date(Math.min(Date.parse(t.ackDueAt), Date.parse(t.dueAt))) },
      ],
    });
    started++;
  }
  const verified = 'scanId' in scope ? await verifyResolved({ database, temporal }, scope.scanId) : 0;
  return {
    goldenTickets: planned.length,
    ticketsSignalled: started,
    orphanedTickets: planned.filter((t) => t.orphanReason).length,
    ...(notFound.length ? { ownersNotFound: notFound.length } : {}),
    ...(handovers.length ? { orphansHandedOver: handovers.length } : {}),
    ...(verified ? { ticketsVerified: verified } : {}),
  };
}

/** A scan of the asset of a resolved ticket verifies the fix: its workflow closes or re-opens the ticket. */
async function verifyResolved({ database, temporal }: Pick<MobilizeDeps, 'database' | 'temporal'>, scanId: string): Promise<number> {
  const scan = await scanCoverage(database.sql, scanId);
  const awaiting = await ticketsAwaitingVerification(database.sql, scan.assetIds);
  for (const t of awaiting) {
    try {
      await temporal.client.workflow.getHandle(t.workflowId).signal(verificationScanSignal, {
        scanId,
        scannedAt: (scan.receivedAt ?? new Date()).toISOString(),
        openFindings: t.openFindings,
      });
    } catch (err) {
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
    }
  }
  return awaiting.length;
}
