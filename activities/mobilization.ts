import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { planGoldenTickets, ticketDetail, type TicketDetail, type TicketScope } from '../mobilization/plan.js';
import {
  endRiskAcceptance,
  markEscalationNoted,
  recordEscalation,
  recordRiskAcceptance,
  setTicketOpened,
  setTicketOwner,
  setTicketState,
  ticketsAwaitingVerification,
} from '../mobilization/store.js';
import type { EscalationNotice, Notifier } from '../mobilization/notifier.js';
import { slaFor } from '../mobilization/sla.js';
import type { SlaConfig } from '../config/index.js';
import type { IncidentFields, ServiceNowClient } from '../mobilization/itsm/servicenow/client.js';
import { serviceNowStates, type TicketState } from '../mobilization/itsm/index.js';
import {
  findingsChangedSignal,
  ticketStateOf,
  verificationScanSignal,
  type RecordedTicketState,
  type RemediationState,
  type TicketChange,
  type TicketEvent,
} from '../workflows/remediation/messages.js';
import { remediationWorkflow } from '../workflows/remediation/workflow.js';
import { CTEM_ESCALATION_LEVEL, CTEM_OWNER, CTEM_PHASE, CTEM_SLA_DEADLINE, CTEM_TIER } from '../workflows/search-attributes.js';

export interface MobilizationDeps {
  database: Database;
  serviceNow: ServiceNowClient;
  temporal: { client: Client; taskQueue: string };
  sla: SlaConfig;
  /** Told about every escalation (a Slack DM to the manager); optional. */
  notifier?: Notifier;
}

/** A notifier that keeps failing does not hold the escalation ladder: after this many attempts it is skipped. */
const NOTIFIER_ATTEMPTS = 5;
const DAY_MS = 86_400_000;

const URGENCY: Record<string, string> = { act: '1', attend: '2' };

function describe(t: TicketDetail): { short_description: string; description: string } {
  const ids = t.findings.map((f) => f.issueId);
  const lines = t.findings.map(
    (f) =>
      `- ${f.issueId} (${f.severity}${f.cvss !== null ? `, CVSS ${f.cvss}` : ''}${f.epss !== null ? `, EPSS ${f.epss}` : ''}${f.kev ? ', in CISA KEV' : ''}; tier ${f.tier})`,
  );
  const where = t.assets.length > 1 ? `${t.assets.length} hosts` : t.assetName;
  return {
    short_description: `Upgrade ${t.component} to ${t.fixedVersion} on ${where} (${ids.length} vulnerabilit${ids.length === 1 ? 'y' : 'ies'}, ${t.tier})`,
    description: [
      `Fix: upgrade ${t.component} to ${t.fixedVersion}.`,
      t.assets.length > 1 ? `Assets: ${t.assets.join(', ')}.` : `Asset: ${t.assetName} (${t.assetKey}).`,
      `Due: ${t.dueAt.toISOString()}.`,
      '',
      'Why it matters (prioritized with CVSS, FIRST EPSS and CISA KEV):',
      ...lines,
    ].join('\n'),
  };
}

export function createMobilizationActivities({ database, serviceNow, temporal, sla, notifier }: MobilizationDeps) {
  /**
   * Groups act/attend findings into golden tickets and tells each ticket's workflow: signal-with-start
   * opens the workflow when it is new and signals it when it exists.
   */
  async function mobilize(scope: TicketScope): Promise<Record<string, number>> {
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
    const verified = 'scanId' in scope ? await verifyResolved(scope.scanId) : 0;
    return {
      goldenTickets: planned.length,
      ticketsSignalled: started,
      orphanedTickets: planned.filter((t) => !t.owner).length,
      ...(verified ? { ticketsVerified: verified } : {}),
    };
  }

  /** A scan of the asset of a resolved ticket verifies the fix: its workflow closes or re-opens the ticket. */
  async function verifyResolved(scanId: string): Promise<number> {
    const [scan] = await database.sql<{ created_at: Date }[]>`select created_at from scans where id = ${scanId}`;
    const assets = await database.sql<{ asset_id: number }[]>`select asset_id from scan_assets where scan_id = ${scanId}`;
    const awaiting = await ticketsAwaitingVerification(database.sql, assets.map((a) => Number(a.asset_id)));
    for (const t of awaiting) {
      try {
        await temporal.client.workflow.getHandle(t.workflowId).signal(verificationScanSignal, {
          scanId,
          scannedAt: (scan?.created_at ?? new Date()).toISOString(),
          openFindings: t.openFindings,
        });
      } catch (err) {
        if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      }
    }
    return awaiting.length;
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
    async openTicket({ ticketKey }: { ticketKey: string }): Promise<{ sysId: string; number: string; assignedTo?: string }> {
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
      return { sysId: incident.sys_id, number: incident.number, ...(incident.assigned_to ? { assignedTo: incident.assigned_to } : {}) };
    },

    /**
     * Notifies the owner's `level`-th manager: a work note on the ticket, the manager on its watch
     * list and the escalation recorded once, then the Notifier (a Slack DM) with a notice id stable
     * per (ticket, phase, level, re-opening). Reports when the chain has no one left to notify.
     */
    async escalate(input: { ticketKey: string; phase: 'acknowledgement' | 'resolution'; level: number; cycle?: number; slaDeadline: string }) {
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
        cycle: input.cycle ?? 0,
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
      if (notifier) {
        const owner = chain[0]!;
        const notice: EscalationNotice = {
          id: `escalation:${input.ticketKey}:${input.phase}:${input.level}${input.cycle ? `:reopened-${input.cycle}` : ''}`,
          ticketKey: input.ticketKey,
          ticketNumber: t.externalNumber ?? '',
          ticketUrl: serviceNow.incidentUrl(t.externalSysId),
          summary: describe(t).short_description,
          tier: t.tier,
          owner: person(owner),
          manager: person(target),
          level: input.level,
          phase: input.phase,
          slaDeadline: input.slaDeadline,
          daysOverdue: Math.max(0, Math.round(((Date.now() - Date.parse(input.slaDeadline)) / DAY_MS) * 10) / 10),
          ask:
            input.phase === 'acknowledgement'
              ? `Make sure ${owner.name} acknowledges ${t.externalNumber ?? input.ticketKey}: acknowledgement was due ${input.slaDeadline}.`
              : `Make sure ${owner.name} resolves ${t.externalNumber ?? input.ticketKey}: the fix was due ${input.slaDeadline}.`,
        };
        try {
          await notifier.escalation(notice);
        } catch (err) {
          if (Context.current().info.attempt < NOTIFIER_ATTEMPTS) throw err;
          log.warn('escalation notice not delivered; the ITSM work note stands', { id: notice.id, error: (err as Error).message });
        }
      }
      return {
        notified: { userName: target.user_name, name: target.name },
        topOfChainReached: input.level >= chain.length - 1,
      };
    },

    /**
     * Tells the ITSM about a change made outside it (an acknowledgement or resolution from the API or
     * Slack, a risk acceptance, its expiry, a verification): the incident state and a work note.
     * Returns the record's version, so the workflow can ignore the webhook of its own write.
     */
    async syncTicket(input: {
      ticketKey: string;
      change: TicketChange;
      riskAcceptance?: RemediationState['riskAcceptance'];
    }): Promise<{ sequence: number; state?: TicketState; assignedTo: string }> {
      const t = await ticketDetail(database.sql, input.ticketKey);
      if (!t?.externalSysId) throw ApplicationFailure.nonRetryable(`golden ticket ${input.ticketKey} is not open`, 'NotOpen');
      const at = new Date(input.change.at);
      if (input.change.kind === 'risk-accepted' && input.riskAcceptance) {
        const r = input.riskAcceptance;
        // A renewal replaces the acceptance it extends.
        await endRiskAcceptance(database.db, input.ticketKey, at, new Date(r.expiresAt));
        await recordRiskAcceptance(database.db, {
          ticketKey: input.ticketKey,
          requester: r.requester,
          approver: r.approver,
          reason: r.reason,
          acceptedAt: new Date(r.acceptedAt),
          expiresAt: new Date(r.expiresAt),
        });
      } else if (input.change.kind !== 'acknowledged' && input.change.kind !== 'membership') {
        await endRiskAcceptance(database.db, input.ticketKey, at);
      }
      // Changes queued by older runs carry a ServiceNow code instead of a neutral state.
      const target = ticketStateOf(input.change.state);
      const fields: IncidentFields = { work_notes: input.change.workNote, ...(target ? { state: serviceNowStates.toItsm(target) } : {}) };
      if (input.change.kind === 'resolved' || input.change.kind === 'verified') {
        fields.close_code = 'Solved (Permanently)';
        fields.close_notes = input.change.workNote;
      }
      const incident = await serviceNow.updateIncident(t.externalSysId, fields);
      const state = serviceNowStates.fromItsm(incident.state);
      return { sequence: Number(incident.sys_mod_count) || 0, ...(state ? { state } : {}), assignedTo: incident.assigned_to };
    },

    /** The incident was reassigned in the ITSM: its assignee becomes the ticket's owner (and escalation chain). */
    async reassignTicket({ ticketKey, assignedTo }: { ticketKey: string; assignedTo: string }): Promise<{ owner: string | null }> {
      const user = await serviceNow.getUser(assignedTo);
      if (!user?.user_name) return { owner: null };
      await setTicketOwner(database.db, ticketKey, user.user_name);
      return { owner: user.user_name };
    },

    /** Reads the incident back from the ITSM: catches a state change whose webhook never arrived. */
    async reconcileTicket({ ticketKey }: { ticketKey: string }): Promise<TicketEvent | null> {
      const t = await ticketDetail(database.sql, ticketKey);
      if (!t?.externalSysId) return null;
      const incident = await serviceNow.getIncident(t.externalSysId);
      if (!incident) return null;
      const sequence = Number(incident.sys_mod_count) || 0;
      const state = serviceNowStates.fromItsm(incident.state);
      return {
        eventId: `reconcile:${incident.sys_id}:${sequence}`,
        ...(state ? { state } : {}),
        at: new Date().toISOString(),
        sequence,
        ...(incident.assigned_to ? { assignedTo: incident.assigned_to } : {}),
      };
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

function person(u: { user_name: string; name: string; email: string }) {
  return { userName: u.user_name, name: u.name, ...(u.email ? { email: u.email } : {}) };
}

export type MobilizationActivities = ReturnType<typeof createMobilizationActivities>;
