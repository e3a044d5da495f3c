import { proxyActivities } from '@temporalio/workflow';
import type { SourceActivities } from '../activities/sources.js';

// The weekly report of assets without an owner (their fixes wait in the orphan queue), started by
// the `report-schedule:orphan-assets` Temporal Schedule, then announced to security operations
// when a notifier (the Slack bot) is configured.

const { buildOrphanReport, notifyOrphanReport } = proxyActivities<SourceActivities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5 } });

export async function orphanReportWorkflow(): Promise<{ reportId: number; orphanAssets: number; actionFindings: number; notified: boolean }> {
  const report = await buildOrphanReport();
  // Posted once per report id, so a retried run does not announce it twice.
  const { notified } = await notifyOrphanReport({ reportId: report.reportId });
  return { ...report, notified };
}
