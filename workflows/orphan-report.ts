import { proxyActivities } from '@temporalio/workflow';
import type { SourceActivities } from '../activities/sources.js';

// The weekly report of assets without an owner (their fixes wait in the orphan queue), started by
// the `report-schedule:orphan-assets` Temporal Schedule.

const { buildOrphanReport } = proxyActivities<SourceActivities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5 } });

export async function orphanReportWorkflow(): Promise<{ reportId: number; orphanAssets: number; actionFindings: number }> {
  return buildOrphanReport();
}
