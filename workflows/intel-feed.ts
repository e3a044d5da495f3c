import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { IntelActivities, IntelFetchResult, RescoreStart } from '../activities/intel.js';
import { CTEM_PHASE } from './search-attributes.js';

// One fetch of a threat-intel feed (FIRST EPSS or CISA KEV), started by its Temporal Schedule
// `intel-schedule:<kind>` or on demand. The activity downloads, stages, checks and activates or
// rejects the version; only a newly active version starts a re-score. The file never enters history.

export interface IntelFeedInput {
  kind: 'epss' | 'kev';
}

export interface IntelFeedResult extends IntelFetchResult {
  rescore?: RescoreStart;
}

const { fetchIntelFeed } = proxyActivities<IntelActivities>({
  startToCloseTimeout: '30 minutes',
  // An unreachable upstream is retried for about an hour; the next scheduled run tries again.
  retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '15 minutes', maximumAttempts: 6 },
});
const { startFeedRescore } = proxyActivities<IntelActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10 } });

export async function intelFeedWorkflow({ kind }: IntelFeedInput): Promise<IntelFeedResult> {
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'prioritization' }]);
  const result = await fetchIntelFeed({ kind });
  if (result.outcome === 'activated' && result.version) {
    return { ...result, rescore: await startFeedRescore({ kind, version: result.version }) };
  }
  return result;
}
