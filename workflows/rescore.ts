import { proxyActivities, upsertSearchAttributes, type RetryPolicy } from '@temporalio/workflow';
import type { MobilizationActivities } from '../activities/mobilization.js';
import type { RescoreActivities } from '../activities/rescore.js';
import { CTEM_PHASE } from './search-attributes.js';

// Re-scoring after a feed update, a policy change or a context change (id `rescore:<reason>`): one
// set-based pass over all open findings, then golden tickets re-planned only for the assets whose
// exposures changed tier or due date, then a noise-report snapshot. Only ids and counts travel here.

export interface RescoreInput {
  reason: string;
}

const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 };
const { rescoreAll, assetsWithExposureEvents, snapshotNoise } = proxyActivities<RescoreActivities>({ startToCloseTimeout: '15 minutes', retry });
const { mobilizeAssets } = proxyActivities<MobilizationActivities>({ startToCloseTimeout: '10 minutes', retry });

const BATCH = 500;

export async function rescoreWorkflow({ reason }: RescoreInput): Promise<Record<string, number>> {
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'prioritization' }]);
  const scored = await rescoreAll({ reason });
  let ticketsSignalled = 0;
  if (scored.toEventId >= scored.fromEventId) {
    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'mobilization' }]);
    // Paged by asset id: a feed update can touch most of the estate, and only a page of ids at a
    // time goes through the history.
    let afterAssetId = 0;
    for (;;) {
      const assetIds = await assetsWithExposureEvents({ fromEventId: scored.fromEventId, toEventId: scored.toEventId, afterAssetId, limit: BATCH });
      if (assetIds.length === 0) break;
      ticketsSignalled += (await mobilizeAssets({ assetIds })).ticketsSignalled ?? 0;
      afterAssetId = assetIds[assetIds.length - 1]!;
    }
  }
  await snapshotNoise();
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'done' }]);
  return { scored: scored.scored, changed: scored.changed, events: scored.events, ticketsSignalled };
}
