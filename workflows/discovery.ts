import { ApplicationFailure, executeChild, log, proxyActivities, upsertSearchAttributes, type RetryPolicy } from '@temporalio/workflow';
import type { DiscoveryActivities } from '../activities/discovery.js';
import type { MobilizationActivities } from '../activities/mobilization.js';
import type { PrioritizationActivities } from '../activities/prioritization.js';
import { rescoreWorkflow } from './rescore.js';
import { CTEM_PHASE } from './search-attributes.js';

// One run per uploaded report (id `discovery:<source>:<scan id>`): ingest it, score what it found,
// and hand findings that need action to their golden tickets. Only ids and counts travel through
// Temporal; the report itself stays on disk and the findings in PostgreSQL.

export interface DiscoveryInput {
  scanId: string;
}

export interface DiscoveryResult {
  scanId: string;
  counts: Record<string, number>;
}

// A database or worker outage is waited out (retries every minute for up to six hours) rather than
// failing the scan after ten attempts; bad input fails at once (activities throw it non-retryable).
const retry: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' };
const OUTAGE = '6 hours';

const { ingestReport, completeScan } = proxyActivities<DiscoveryActivities>({
  startToCloseTimeout: '30 minutes',
  scheduleToCloseTimeout: OUTAGE,
  heartbeatTimeout: '2 minutes',
  retry,
});
// Recording the failure outlasts the outage that caused it: a scan never stays "running".
const { failScan } = proxyActivities<DiscoveryActivities>({ startToCloseTimeout: '1 minute', scheduleToCloseTimeout: '7 days', retry });
// Long set-based statements: the worker heartbeats while they run (platform/heartbeat.ts).
const { scoreScan } = proxyActivities<PrioritizationActivities>({ startToCloseTimeout: '10 minutes', scheduleToCloseTimeout: OUTAGE, heartbeatTimeout: '1 minute', retry });
const { mobilizeScan } = proxyActivities<MobilizationActivities>({ startToCloseTimeout: '10 minutes', scheduleToCloseTimeout: OUTAGE, heartbeatTimeout: '1 minute', retry });

export async function discoveryWorkflow({ scanId }: DiscoveryInput): Promise<DiscoveryResult> {
  try {
    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'discovery' }]);
    const ingested = await ingestReport({ scanId });

    if (ingested.kind === 'context') {
      // Context (ownership, exposure, runtime) can move findings on assets the document never named
      // (an image on a host that became internet-facing): re-score everything, set-based.
      const rescored = await executeChild(rescoreWorkflow, { workflowId: `rescore:context:${scanId}`, args: [{ reason: `context import ${scanId}` }] });
      // New owners change no tier, yet orphaned golden tickets on the named assets can now open.
      const mobilized = await mobilizeScan({ scanId });
      const counts = { ...ingested.counts, ...rescored, ...mobilized };
      await completeScan({ scanId, counts });
      upsertSearchAttributes([{ key: CTEM_PHASE, value: 'done' }]);
      return { scanId, counts };
    }

    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'prioritization' }]);
    const scored = await scoreScan({ scanId });

    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'mobilization' }]);
    const mobilized = await mobilizeScan({ scanId });

    const counts = { ...ingested.counts, ...scored, ...mobilized };
    await completeScan({ scanId, counts });
    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'done' }]);
    return { scanId, counts };
  } catch (err) {
    const cause = err instanceof ApplicationFailure ? err : (err as { cause?: unknown }).cause;
    const message = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
    log.warn('scan failed', { scanId, reason: message });
    await failScan({ scanId, error: message });
    throw err;
  }
}
