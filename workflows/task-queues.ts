import type * as workflows from './index.js';

// Which task queue each workflow type runs on: the one map every start uses (fronts, schedules,
// activities that start workflows). Heavy, throughput-bound work (ingest, scoring, feeds,
// validation, hunting, metrics, campaigns) shares `<base>-bulk`; what people and the ITSM wait
// on (a ticket's workflow and the managers' escalation digests, which webhooks, Slack actions
// and Updates reach) runs on `<base>-remediation`, so a long ingest never delays them.
// `<base>` is CTEM_TASK_QUEUE, which is also the single queue of earlier versions ("legacy"):
// workflows started there keep running there (continue-as-new included) on a worker that polls it.
//
// Child workflows are started without a task queue and so run on their parent's: every parent
// and child here is bulk (test/platform/task-queues.test.ts checks that this stays true).
// Activities run on their workflow's queue.

export type WorkflowType = keyof typeof workflows;

export const QUEUE_KINDS = ['bulk', 'remediation'] as const;
export type QueueKind = (typeof QUEUE_KINDS)[number];

export const WORKFLOW_QUEUES = {
  campaignWorkflow: 'bulk',
  discoveryWorkflow: 'bulk',
  sourceDiscoveryWorkflow: 'bulk',
  rescoreWorkflow: 'bulk',
  intelFeedWorkflow: 'bulk',
  validationWorkflow: 'bulk',
  huntingWorkflow: 'bulk',
  metricsSnapshotWorkflow: 'bulk',
  orphanReportWorkflow: 'bulk',
  remediationWorkflow: 'remediation',
  escalationDigestWorkflow: 'remediation',
} as const satisfies Record<WorkflowType, QueueKind>;

/** The task queue of one kind under the configured base name (CTEM_TASK_QUEUE). */
export function queueName(base: string, kind: QueueKind): string {
  return `${base}-${kind}`;
}

/** The task queue a workflow type is started on: pass the workflow function or its type name. */
export function taskQueueFor(base: string, workflow: WorkflowType | { name: string }): string {
  const type = typeof workflow === 'string' ? workflow : workflow.name;
  const kind = (WORKFLOW_QUEUES as Record<string, QueueKind>)[type];
  if (!kind) throw new Error(`no task queue for workflow type ${JSON.stringify(type)}: add it to WORKFLOW_QUEUES in workflows/task-queues.ts`);
  return queueName(base, kind);
}
