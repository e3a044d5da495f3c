import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  type RetryPolicy,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CampaignActivities, DiscoveryRun } from '../activities/campaign.js';
import type { HuntingActivities } from '../activities/hunting.js';
import { rescoreWorkflow } from './rescore.js';
import { CTEM_PHASE } from './search-attributes.js';
import { sourceDiscoveryWorkflow } from './source-discovery.js';
import { validationWorkflow } from './validation.js';

// A campaign (id `campaign:<scope>:<short id>`): discovery of one scope on demand (its sources as
// child workflows), prioritization (a re-score), then the results (top exposures and why) posted to
// security operations. Only run descriptions and counts travel here; exposures stay in PostgreSQL.

export interface CampaignInput {
  scope: string;
  hypothesis?: string;
  /** The saved hunting hypothesis it was started from: its result is recorded before and after. */
  hypothesisName?: string;
  /** Who started it: `slack:<user id>` or an API caller. */
  requestedBy: string;
  /** Slack channel the results go to (the one the campaign was started from). */
  channel?: string;
}

export type CampaignPhase = 'scoping' | 'discovery' | 'prioritization' | 'validation' | 'reporting' | 'done' | 'failed';

export interface CampaignState {
  phase: CampaignPhase;
  scope: string;
  hypothesis?: string;
  assets: number;
  discovery: { runs: number; completed: number; failed: number };
  rescored?: number;
  /** The validation run of the scope (its results go to the campaign's channel), and whether it failed. */
  validation?: { workflowId: string; failed: boolean };
  openExposures?: number;
  /** From a hypothesis: its urgent findings before and after, and what left act/attend or closed. */
  hunt?: { urgentBefore: number; urgentAfter?: number; removed?: number };
  error?: string;
}

export const campaignStatusQuery = defineQuery<CampaignState>('status');

const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 };
const { planCampaign, publishCampaignResults, failCampaign } = proxyActivities<CampaignActivities>({ startToCloseTimeout: '5 minutes', retry });
const { recordHypothesisResult } = proxyActivities<HuntingActivities>({ startToCloseTimeout: '5 minutes', retry });

/** Discovery runs at once: sources are other people's servers. */
const PARALLEL_RUNS = 4;

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignState> {
  const campaignId = workflowInfo().workflowId;
  const state: CampaignState = {
    phase: 'scoping',
    scope: input.scope,
    ...(input.hypothesis ? { hypothesis: input.hypothesis } : {}),
    assets: 0,
    discovery: { runs: 0, completed: 0, failed: 0 },
  };
  setHandler(campaignStatusQuery, () => state);
  const enter = (phase: CampaignPhase) => {
    state.phase = phase;
    upsertSearchAttributes([{ key: CTEM_PHASE, value: phase }]);
  };

  // Only campaigns started from a hypothesis take these steps; histories of the others have no marker.
  const hunting = input.hypothesisName !== undefined && patched('campaign-hypothesis-results');

  try {
    enter('scoping');
    if (hunting) {
      const before = await recordHypothesisResult({ hypothesis: input.hypothesisName!, campaignId, phase: 'before' });
      state.hunt = { urgentBefore: before.urgent };
    }
    const plan = await planCampaign({ campaignId, scope: input.scope, requestedBy: input.requestedBy, ...(input.hypothesis ? { hypothesis: input.hypothesis } : {}) });
    state.assets = plan.assets;
    state.discovery.runs = plan.runs.length;

    enter('discovery');
    // A source that fails (unreachable, a report it cannot serve) is counted, not fatal: the
    // campaign reports on what the others found.
    const runOne = async (run: DiscoveryRun) => {
      try {
        await executeChild(sourceDiscoveryWorkflow, { workflowId: run.workflowId, args: [{ source: run.source, ...(run.target ? { target: run.target } : {}) }] });
        state.discovery.completed++;
      } catch (err) {
        if (isCancellation(err)) throw err;
        state.discovery.failed++;
      }
    };
    for (let i = 0; i < plan.runs.length; i += PARALLEL_RUNS) {
      await Promise.all(plan.runs.slice(i, i + PARALLEL_RUNS).map(runOne));
    }

    enter('prioritization');
    const rescored = await executeChild(rescoreWorkflow, { workflowId: `rescore:${campaignId}`, args: [{ reason: campaignId }] });
    state.rescored = rescored.scored ?? 0;

    // Histories recorded before validation existed went straight to reporting.
    if (patched('campaign-validation')) {
      enter('validation');
      const workflowId = `validation:${input.scope}:${campaignId.split(':').pop()}`;
      // A failed validation is reported by itself; the campaign still reports what it found.
      try {
        await executeChild(validationWorkflow, {
          workflowId,
          args: [{ scope: input.scope, trigger: 'campaign', requestedBy: campaignId, ...(input.channel ? { channel: input.channel } : {}) }],
        });
        state.validation = { workflowId, failed: false };
      } catch (err) {
        if (isCancellation(err)) throw err;
        state.validation = { workflowId, failed: true };
      }
    }

    enter('reporting');
    if (hunting) {
      const after = await recordHypothesisResult({ hypothesis: input.hypothesisName!, campaignId, phase: 'after' });
      state.hunt = { ...state.hunt!, urgentAfter: after.urgent, ...(after.removed !== undefined ? { removed: after.removed } : {}) };
    }
    const published = await publishCampaignResults({
      campaignId,
      ...(input.channel ? { channel: input.channel } : {}),
      discovery: { runs: state.discovery.runs, failed: state.discovery.failed },
    });
    state.openExposures = published.openExposures;
    enter('done');
    return state;
  } catch (err) {
    const cancelled = isCancellation(err);
    const cause = (err as { cause?: unknown }).cause;
    state.error = cancelled ? 'cancelled' : cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
    enter('failed');
    // Recorded and announced even when the campaign was cancelled.
    await CancellationScope.nonCancellable(() => failCampaign({ campaignId, scope: input.scope, error: state.error!, ...(input.channel ? { channel: input.channel } : {}) }));
    if (cancelled) throw err;
    throw ApplicationFailure.nonRetryable(`campaign ${campaignId} failed: ${state.error}`, 'CampaignFailed');
  }
}
