import { executeChild, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SourceActivities } from '../activities/sources.js';
import { discoveryWorkflow, type DiscoveryResult } from './discovery.js';
import { CTEM_PHASE } from './search-attributes.js';

// One run of a pulled discovery source (id `discovery-source:<name>...`), started by its Temporal
// Schedule (daily by default), on demand, or by a deploy event for one target. It fetches the
// source's report (or opens a CMDB pull) and hands the scan to the ordinary discovery workflow.

export interface SourceDiscoveryInput {
  source: string;
  /** Rescan only this target (a deploy event's image); the source's URL carries `{target}`. */
  target?: string;
}

const { prepareSourceScan } = proxyActivities<SourceActivities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8 },
});

export async function sourceDiscoveryWorkflow(input: SourceDiscoveryInput): Promise<DiscoveryResult> {
  upsertSearchAttributes([{ key: CTEM_PHASE, value: 'discovery' }]);
  const { scanId, workflowId } = await prepareSourceScan({ ...input, runId: workflowInfo().runId });
  return executeChild(discoveryWorkflow, { workflowId, args: [{ scanId }] });
}
