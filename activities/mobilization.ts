import { log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import type { SlaConfig } from '../config/index.js';
import { adoptAssignee, escalateOnIncident, handOverIncident, openIncident, readIncidentBack, syncIncident } from '../mobilization/incidents.js';
import { mobilize } from '../mobilization/mobilize.js';
import { queueForDigest } from '../mobilization/escalation-digests.js';
import { setTicketState } from '../mobilization/store.js';
import { ITSM_LABEL, type Itsm, type TicketState } from '../mobilization/itsm/index.js';
import type { RecordedTicketState, RemediationState, TicketChange, TicketEvent } from '../workflows/remediation/messages.js';

export interface MobilizationDeps {
  database: Database;
  /** The ITSM holding golden tickets (ServiceNow or Jira). */
  itsm: Itsm;
  temporal: { client: Client; taskQueue: string };
  sla: SlaConfig;
  /** Who holds the orphan queue (CTEM_FALLBACK_OWNER). */
  fallbackOwner?: string;
}

// The remediation workflow's activities, over mobilization/: names and signatures are part of
// running workflows' histories and do not change.
export function createMobilizationActivities({ database, itsm, temporal, sla, fallbackOwner }: MobilizationDeps) {
  const incidents = { database, itsm };
  // Owners are checked in the ITSM's directory before a ticket is planned for them.
  const directory = { name: ITSM_LABEL[itsm.name], findUser: (userName: string) => itsm.findUser(userName) };
  const handOver = (ticketKey: string, owner: string) => handOverIncident(incidents, ticketKey, owner);
  const planning = { database, temporal, sla, directory, handOver, ...(fallbackOwner ? { fallbackOwner } : {}), warn: (message: string, fields: Record<string, unknown>) => log.warn(message, fields) };
  return {
    /** Golden tickets for the assets a scan covered. */
    async mobilizeScan({ scanId }: { scanId: string }): Promise<Record<string, number>> {
      return mobilize(planning, { scanId });
    },

    /**
     * The same for assets whose exposures changed tier or due date (after a re-score); with
     * `changedSince` (an incremental re-score), only the tickets of the findings that moved since.
     */
    async mobilizeAssets({ assetIds, changedSince }: { assetIds: number[]; changedSince?: string }): Promise<Record<string, number>> {
      if (!assetIds.length) return { goldenTickets: 0, ticketsSignalled: 0, orphanedTickets: 0 };
      return mobilize(planning, { assetIds }, changedSince ? { changedSince: new Date(changedSince) } : {});
    },

    async openTicket({ ticketKey }: { ticketKey: string }): Promise<{ sysId: string; number: string; assignedTo?: string }> {
      return openIncident(incidents, ticketKey);
    },

    /** Escalates on the incident, then queues the escalation for the manager's digest (one message per round, not one per ticket). */
    async escalate(input: { ticketKey: string; phase: 'acknowledgement' | 'resolution'; level: number; cycle?: number; slaDeadline: string }) {
      const { notice, ...result } = await escalateOnIncident(incidents, input);
      if (notice) await queueForDigest(temporal, notice, sla.digestWindowMs);
      return result;
    },

    async syncTicket(input: { ticketKey: string; change: TicketChange; riskAcceptance?: RemediationState['riskAcceptance'] }): Promise<{ sequence: number; state?: TicketState; assignedTo: string }> {
      return syncIncident(incidents, input);
    },

    async reassignTicket({ ticketKey, assignedTo }: { ticketKey: string; assignedTo: string }): Promise<{ owner: string | null }> {
      return adoptAssignee(incidents, ticketKey, assignedTo);
    },

    async reconcileTicket({ ticketKey }: { ticketKey: string }): Promise<TicketEvent | null> {
      return readIncidentBack(incidents, ticketKey);
    },

    /** Mirrors the workflow's view of a ticket into the read model the API lists. */
    async recordTicketState(input: { ticketKey: string; state: RecordedTicketState; at: string; escalationLevel: number; ackDueAt?: string; dueAt?: string }): Promise<void> {
      await setTicketState(database.db, input.ticketKey, input.state, new Date(input.at), input.escalationLevel, {
        ...(input.ackDueAt ? { ackDueAt: new Date(input.ackDueAt) } : {}),
        ...(input.dueAt ? { dueAt: new Date(input.dueAt) } : {}),
      });
    },
  };
}

export type MobilizationActivities = ReturnType<typeof createMobilizationActivities>;
