import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { planGoldenTickets, ticketDetail, type TicketDetail, type TicketScope } from '../db/queries/tickets.js';
import { recordEscalation, markEscalationNoted, setTicketOpened, setTicketState } from '../db/queries/ticket-state.js';
import type { SlaConfig } from '../platform/config.js';
import type { ServiceNowClient } from '../servicenow/client.js';
import { findingsChangedSignal, remediationWorkflow } from '../workflows/remediation.js';
import { CTEM_ESCALATION_LEVEL, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from '../workflows/search-attributes.js';

export interface MobilizationDeps {
  database: Database;
  serviceNow: ServiceNowClient;
  temporal: { client: Client; taskQueue: string };
  sla: SlaConfig;
}

const URGENCY: Record<string, string> = { act: '1', attend: '2' };

function describe(t: TicketDetail): { short_description: string; description: string } {
  const ids = t.findings.map((f) => f.issueId);
  const lines = t.findings.map(
    (f) =>
      `- ${f.issueId} (${f.severity}${f.cvss !== null ? `, CVSS ${f.cvss}` : ''}${f.epss !== null ? `, EPSS ${f.epss}` : ''}${f.kev ? ', in CISA KEV' : ''}; tier ${f.tier})`,
  );
  return {
    short_description: `Upgrade ${t.component} to ${t.fixedVersion} on ${t.assetName} (${ids.length} vulnerabilit${ids.length === 1 ? 'y' : 'ies'}, ${t.tier})`,
    description: [
      `Fix: upgrade ${t.component} to ${t.fixedVersion}.`,
      `Asset: ${t.assetName} (${t.assetKey}).`,
      `Due: ${t.dueAt.toISOString()}.`,
      '',
      'Why it matters (prioritized with CVSS, FIRST EPSS and CISA KEV):',
      ...lines,
    ].join('\n'),
  };
}

export function createMobilizationActivities({ database, serviceNow, temporal, sla }: MobilizationDeps) {
  /**
   * Groups act/attend findings into golden tickets and tells each ticket's workflow: signal-with-start
   * opens the workflow when it is new and signals it when it exists.
   */
  async function mobilize(scope: TicketScope): Promise<Record<string, number>> {
    const planned = await planGoldenTickets(database.sql, scope, sla.ackMs);
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
            escalationIntervalMs: sla.escalationIntervalMs,
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
    return { goldenTickets: planned.length, ticketsSignalled: started, orphanedTickets: planned.filter((t) => !t.owner).length };
  }

  return {
    /** Golden tickets for the assets a scan covered. */
    async mobilizeScan({ scanId }: { scanId: string }): Promise<Record<string, number>> {
      return mobilize({ scanId });
    },

    /** The same for assets whose exposures changed tier or due date (after a re-score). */
    async mobilizeAssets({ assetIds }: { assetIds: number[] }): Promise<Record<string, number>> {
      return assetIds.length ? mobilize({ assetIds }) : { goldenTickets: 0, ticketsSignalled: 0, orphanedTickets: 0 };
    },

    /** Opens the ITSM ticket; keyed by correlation_id, so a retry finds the ticket instead of opening a second. */
    async openTicket({ ticketKey }: { ticketKey: string }): Promise<{ sysId: string; number: string }> {
      const t = await ticketDetail(database.sql, ticketKey);
      if (!t) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} does not exist`, 'NotFound');
      if (!t.owner) throw ApplicationFailure.nonRetryable(`golden ticket ${ticketKey} has no owner`, 'NoOwner');
      const owner = await serviceNow.getUser(t.owner);
      const incident = await serviceNow.createIncident({
        correlation_id: ticketKey,
        correlation_display: 'CTEM golden ticket',
        ...describe(t),
        ...(owner ? { assigned_to: owner.sys_id } : {}),
        urgency: URGENCY[t.tier] ?? '3',
        impact: URGENCY[t.tier] ?? '3',
        category: 'security',
      });
      await setTicketOpened(database.db, ticketKey, incident.sys_id, incident.number);
      return { sysId: incident.sys_id, number: incident.number };
    },

    /**
     * Notifies the owner's `level`-th manager: a work note on the ticket, the manager on its watch
     * list and the escalation recorded once. Reports when the chain has no one left to notify.
     */
    async escalate(input: { ticketKey: string; phase: 'acknowledgement' | 'resolution'; level: number; slaDeadline: string }) {
      const t = await ticketDetail(database.sql, input.ticketKey);
      if (!t?.owner || !t.externalSysId) throw ApplicationFailure.nonRetryable(`golden ticket ${input.ticketKey} is not open`, 'NotOpen');
      const chain = await serviceNow.managementChain(t.owner);
      const target = chain[input.level];
      if (!target) return { notified: null, topOfChainReached: true };
      const reason = `${input.phase} SLA breached (deadline ${input.slaDeadline})`;
      const escalation = await recordEscalation(database.db, {
        ticketKey: input.ticketKey,
        phase: input.phase,
        level: input.level,
        notifiedUser: target.user_name,
        notifiedName: target.name,
        reason,
      });
      if (!escalation.ticketNotedAt) {
        const incident = await serviceNow.getIncident(t.externalSysId);
        const watchers = (incident?.watch_list ?? '').split(',').filter(Boolean);
        await serviceNow.updateIncident(t.externalSysId, {
          work_notes: `Escalation level ${input.level}: ${reason}. Escalated to ${target.name} (${target.user_name}), manager level ${input.level} above the owner ${t.owner}.`,
          escalation: String(Math.min(input.level, 3)),
          watch_list: [...new Set([...watchers, target.sys_id])].join(','),
        });
        await markEscalationNoted(database.db, escalation.id);
      }
      return {
        notified: { userName: target.user_name, name: target.name },
        topOfChainReached: input.level >= chain.length - 1,
      };
    },

    /** Mirrors the workflow's view of a ticket into the read model the API lists. */
    async recordTicketState(input: { ticketKey: string; state: string; at: string; escalationLevel: number }): Promise<void> {
      await setTicketState(database.db, input.ticketKey, input.state, new Date(input.at), input.escalationLevel);
    },
  };
}

export type MobilizationActivities = ReturnType<typeof createMobilizationActivities>;
