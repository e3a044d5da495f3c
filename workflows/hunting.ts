import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { HuntingActivities } from '../activities/hunting.js';

// The hunting run (started by the `hunting-schedule:daily` Temporal Schedule): every saved
// hypothesis is asked again and its result recorded, so each one's residual exposure has a trend.
// Only counts travel here; the results stay in PostgreSQL.

const { runScheduledHypotheses } = proxyActivities<HuntingActivities>({ startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5 } });

export async function huntingWorkflow(): Promise<{ hypotheses: number; recorded: number }> {
  // The run's start is the instant a retried activity compares with: what it recorded since is not recorded again.
  return runScheduledHypotheses({ since: workflowInfo().startTime.toISOString() });
}
