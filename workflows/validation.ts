import { ApplicationFailure, CancellationScope, executeChild, isCancellation, patched, proxyActivities, type RetryPolicy, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ValidationActivities } from '../activities/validation.js';
import { CTEM_PHASE } from './search-attributes.js';

// A validation run (id `validation:<scope>:<id>`): the safe active checks the allow-list permits
// (off by default), the compensating controls a probe can check, a rescoring of what changed, the
// attack graph refreshed from what discovery and prioritization know, then the results recorded
// and announced. Started on a
// schedule, after a rescoring that moved act/attend, from a campaign, from Slack or the API. Only
// counts travel here; evidence and paths stay in PostgreSQL.

export interface ValidationInput {
  /** A saved scope, or `estate` for the whole inventory. */
  scope: string;
  trigger: 'schedule' | 'rescore' | 'campaign' | 'slack' | 'api';
  /** `slack:<user id>`, an API caller, or the workflow that started it. */
  requestedBy?: string;
  /** Slack channel the results go to (a campaign's, or the one the command came from). */
  channel?: string;
}

const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 };
const { startValidationRun, finishValidationRun, failValidationRun } = proxyActivities<ValidationActivities>({ startToCloseTimeout: '5 minutes', retry });
// Long steps heartbeat, so a lost worker is noticed in a minute, not at the timeout.
const { refreshAttackGraph } = proxyActivities<ValidationActivities>({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '1 minute', retry });
const { runActiveChecks, verifyControls } = proxyActivities<ValidationActivities>({ startToCloseTimeout: '30 minutes', heartbeatTimeout: '1 minute', retry });

export async function validationWorkflow(input: ValidationInput): Promise<Record<string, unknown>> {
  const { workflowId: runId, startTime } = workflowInfo();
  const phase = (value: string) => upsertSearchAttributes([{ key: CTEM_PHASE, value }]);
  try {
    phase('validation');
    await startValidationRun({ runId, scope: input.scope, trigger: input.trigger, ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}) });
    // Runs recorded before the rescoring step refreshed the graph first and went straight to the results.
    const rescores = patched('validation-rescore');
    let graph = rescores ? undefined : await refreshAttackGraph({ runId });
    const probes = await runActiveChecks({ runId, scope: input.scope });
    const controls = await verifyControls({ runId, scope: input.scope });
    if (rescores) {
      // Tiers follow what changed since the estate was last scored (evidence that expired, a control
      // whose check failed; incremental: nothing changed reads no finding), then the graph follows
      // the tiers. By name: rescore.ts starts this workflow, and the two must not import each other.
      phase('prioritization');
      await executeChild('rescoreWorkflow', { workflowId: `rescore:${runId}`, args: [{ reason: `validation ${runId}` }] });
      phase('validation');
      graph = await refreshAttackGraph({ runId });
    }
    const results = await finishValidationRun({
      runId,
      scope: input.scope,
      trigger: input.trigger,
      since: startTime.toISOString(),
      ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
      ...(input.channel ? { channel: input.channel } : {}),
      graph: graph!,
      probes,
      controls,
    });
    phase('done');
    return results;
  } catch (err) {
    const cancelled = isCancellation(err);
    const cause = (err as { cause?: unknown }).cause;
    const error = cancelled ? 'cancelled' : cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
    phase('failed');
    await CancellationScope.nonCancellable(() => failValidationRun({ runId, scope: input.scope, error, ...(input.channel ? { channel: input.channel } : {}) }));
    if (cancelled) throw err;
    throw ApplicationFailure.nonRetryable(`validation ${runId} failed: ${error}`, 'ValidationFailed');
  }
}
