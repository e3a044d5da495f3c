import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import type { SlaConfig } from '../config/index.js';
import { findingsChangedSignal, verificationScanSignal } from '../workflows/remediation/messages.js';
import { remediationWorkflow } from '../workflows/remediation/workflow.js';
import { CTEM_ESCALATION_LEVEL, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from '../workflows/search-attributes.js';
import { planGoldenTickets, type TicketScope } from './plan.js';
import { slaFor } from './sla.js';
import { scanCoverage, ticketsAwaitingVerification } from './store.js';

// From prioritized findings to running remediation workflows: plan the golden tickets of a scope and
// tell each ticket's workflow (signal-with-start opens it when new, signals it when it exists); a
// scan of a resolved ticket's asset is that ticket's verification.

export interface MobilizeDeps {
  database: Database;
  temporal: { client: Client; taskQueue: string };
  sla: SlaConfig;
}

export async function mobilize({ database, temporal, sla }: MobilizeDeps, scope: TicketScope): Promise<Record<string, number>> {
  const planned = await planGoldenTickets(database.sql, scope, (t) => slaFor(sla.policy, sla, t));
  let started = 0;
  for (const t of planned) {
    if (!t.changed || !t.owner) continue;
    await temporal.client.workflow.signalWithStart(remediationWorkflow, {
      workflowId: t.workflowId,
      taskQueue: temporal.taskQueue,
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
    orphanedTickets: planned.filter((t) => !t.owner).length,
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
