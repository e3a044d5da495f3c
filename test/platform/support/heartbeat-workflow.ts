import { proxyActivities } from '@temporalio/workflow';

// A workflow for the heartbeat test: one quiet activity that outlasts its heartbeat timeout.
const { quiet } = proxyActivities<{ quiet(ms: number): Promise<string> }>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '1 second',
  retry: { maximumAttempts: 1 },
});

export async function quietActivityWorkflow(ms: number): Promise<string> {
  return quiet(ms);
}
