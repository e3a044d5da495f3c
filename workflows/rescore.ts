import { ParentClosePolicy, patched, proxyActivities, startChild, upsertSearchAttributes, workflowInfo, type RetryPolicy } from '@temporalio/workflow';
import type { MobilizationActivities } from '../activities/mobilization.js';
import type { RescoreActivities } from '../activities/rescore.js';
import type { ValidationActivities } from '../activities/validation.js';
import { CTEM_PHASE } from './search-attributes.js';
import { validationWorkflow } from './validation.js';

// Re-scoring after a feed update, a policy change or a context change (id `rescore:<reason>`): the
// findings whose inputs changed since the estate was last scored (nothing, a few CVEs' or assets',
// or all), then golden tickets re-planned only for the assets whose exposures changed tier or due
// date, then a noise-report snapshot. Only ids and counts travel here.

export interface RescoreInput {
  reason: string;
}

const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 };
// Long set-based statements: the worker heartbeats while they run (platform/heartbeat.ts), so a lost worker is noticed in a minute.
const { rescoreAll, rescoreChanged, assetsWithExposureEvents, snapshotNoise } = proxyActivities<RescoreActivities>({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '1 minute', retry });
const { mobilizeAssets } = proxyActivities<MobilizationActivities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '1 minute', retry });
const { validationAfterRescore } = proxyActivities<ValidationActivities>({ startToCloseTimeout: '1 minute', retry });

const BATCH = 500;

type Scored = Awaited<ReturnType<RescoreActivities['rescoreAll']>> & Partial<Pick<Awaited<ReturnType<RescoreActivities['rescoreChanged']>>, 'mode' | 'assetIds' | 'changedSince'>>;

export async function rescoreWorkflow({ reason }: RescoreInput): Promise<Record<string, number>> {
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'prioritization' }]);
  // Histories recorded before incremental rescoring scored everything each time.
  const scored: Scored = patched('incremental-rescore') ? await rescoreChanged({ reason }) : await rescoreAll({ reason });
  if (scored.mode === 'unchanged' && !scored.assetIds?.length && scored.toEventId < scored.fromEventId) {
    // Nothing changed since the estate was last scored: nothing to re-plan, and the noise is as it was.
    upsertSearchAttributes([{ key: CTEM_PHASE, value: 'done' }]);
    return { scored: 0, changed: 0, events: 0, ticketsSignalled: 0 };
  }
  let ticketsSignalled = 0;
  if (scored.assetIds) {
    // Few assets (a handful of CVEs or assets changed): their ids came back with the scoring.
    if (scored.assetIds.length > 0) upsertSearchAttributes([{ key: CTEM_PHASE, value: 'mobilization' }]);
    for (let i = 0; i < scored.assetIds.length; i += BATCH) {
      const assetIds = scored.assetIds.slice(i, i + BATCH);
      ticketsSignalled += (await mobilizeAssets(scored.changedSince ? { assetIds, changedSince: scored.changedSince } : { assetIds })).ticketsSignalled ?? 0;
    }
  } else if (scored.toEventId >= scored.fromEventId) {
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
  // Findings that entered or left act/attend may open or close attack paths: the estate is
  // validated again (the run outlives this workflow). Histories recorded before validation did not.
  if (patched('validate-after-rescore')) {
    const { workflowId, startTime } = workflowInfo();
    const after = await validationAfterRescore({ since: startTime.toISOString(), workflowId });
    if (after.validate) {
      await startChild(validationWorkflow, {
        workflowId: `validation:estate:after-${workflowId}`,
        args: [{ scope: 'estate', trigger: 'rescore', requestedBy: workflowId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    }
  }
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'done' }]);
  return { scored: scored.scored, changed: scored.changed, events: scored.events, ticketsSignalled };
}
