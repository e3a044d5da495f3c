import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { huntingWorkflow } from '../workflows/hunting.js';
import { intelFeedWorkflow } from '../workflows/intel-feed.js';
import { metricsSnapshotWorkflow } from '../workflows/metrics-snapshot.js';
import { orphanReportWorkflow } from '../workflows/orphan-report.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';
import { sourceDiscoveryWorkflow } from '../workflows/source-discovery.js';
import { validationWorkflow } from '../workflows/validation.js';
import { taskQueueFor, WORKFLOW_QUEUES } from '../workflows/task-queues.js';
import { parseDuration } from '../config/duration.js';

// Temporal Schedules the platform owns: one per pulled discovery source (daily unless configured),
// the weekly orphan-asset report, and one per fetched threat-intel feed. Creating is idempotent: an
// existing schedule is updated.

export const sourceScheduleId = (source: string) => `discovery-schedule:${source}`;
export const ORPHAN_REPORT_SCHEDULE_ID = 'report-schedule:orphan-assets';
export const intelScheduleId = (kind: 'epss' | 'kev') => `intel-schedule:${kind}`;
export const VALIDATION_SCHEDULE_ID = 'validation-schedule:estate';
export const METRICS_SCHEDULE_ID = 'metrics-schedule:daily';

/** `1d`, `6h`... are intervals; anything else is a cron expression. */
function specOf(schedule: string): ScheduleOptions['spec'] {
  try {
    return { intervals: [{ every: parseDuration(schedule) }] };
  } catch {
    return { cronExpressions: [schedule] };
  }
}

async function upsertSchedule(client: Client, options: ScheduleOptions): Promise<void> {
  try {
    await client.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(options.scheduleId).update((previous) => ({ ...previous, spec: options.spec, action: options.action }));
  }
}

export async function upsertSourceSchedule(client: Client, baseQueue: string, source: string, schedule: string): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: sourceScheduleId(source),
    spec: specOf(schedule),
    action: {
      type: 'startWorkflow',
      workflowType: sourceDiscoveryWorkflow,
      workflowId: `discovery-source:${source}`,
      taskQueue: taskQueueFor(baseQueue, sourceDiscoveryWorkflow),
      args: [{ source }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'discovery' }],
    },
    // A slow source never piles up runs behind itself.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  });
}

export async function deleteSourceSchedule(client: Client, source: string): Promise<void> {
  try {
    await client.schedule.getHandle(sourceScheduleId(source)).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

export async function nextRuns(client: Client, source: string): Promise<string[]> {
  try {
    const description = await client.schedule.getHandle(sourceScheduleId(source)).describe();
    return description.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString());
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return [];
    throw err;
  }
}

export async function ensureOrphanReportSchedule(client: Client, baseQueue: string, cron: string): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: ORPHAN_REPORT_SCHEDULE_ID,
    spec: specOf(cron),
    action: { type: 'startWorkflow', workflowType: orphanReportWorkflow, workflowId: 'report:orphan-assets', taskQueue: taskQueueFor(baseQueue, orphanReportWorkflow), args: [] },
    policies: { overlap: ScheduleOverlapPolicy.SKIP },
  });
}

/** Fetches a threat-intel feed on a schedule (CTEM_INTEL_SCHEDULE); the URL is the worker's configuration. */
export async function ensureIntelFeedSchedule(client: Client, baseQueue: string, kind: 'epss' | 'kev', schedule: string): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: intelScheduleId(kind),
    spec: specOf(schedule),
    action: {
      type: 'startWorkflow',
      workflowType: intelFeedWorkflow,
      workflowId: `intel-feed:${kind}`,
      taskQueue: taskQueueFor(baseQueue, intelFeedWorkflow),
      args: [{ kind }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'prioritization' }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  });
}

/**
 * Validates the whole estate on a schedule (CTEM_VALIDATION_SCHEDULE; `off` removes it): the attack
 * graph, the allowed active checks and the compensating controls.
 */
export async function ensureValidationSchedule(client: Client, baseQueue: string, schedule: string): Promise<void> {
  if (schedule === 'off') {
    try {
      await client.schedule.getHandle(VALIDATION_SCHEDULE_ID).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    return;
  }
  await upsertSchedule(client, {
    scheduleId: VALIDATION_SCHEDULE_ID,
    spec: specOf(schedule),
    action: {
      type: 'startWorkflow',
      workflowType: validationWorkflow,
      workflowId: 'validation:estate:scheduled',
      taskQueue: taskQueueFor(baseQueue, validationWorkflow),
      args: [{ scope: 'estate', trigger: 'schedule', requestedBy: VALIDATION_SCHEDULE_ID }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'validation' }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  });
}

/**
 * The daily program-metric snapshot (CTEM_METRICS_SCHEDULE, `1d`: each midnight UTC; `off` removes
 * it). A Schedule's runs are named `metrics-snapshot:daily-<time>` by Temporal.
 */
export async function ensureMetricsSchedule(client: Client, baseQueue: string, schedule: string): Promise<void> {
  if (schedule === 'off') {
    try {
      await client.schedule.getHandle(METRICS_SCHEDULE_ID).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    return;
  }
  await upsertSchedule(client, {
    scheduleId: METRICS_SCHEDULE_ID,
    spec: specOf(schedule),
    action: { type: 'startWorkflow', workflowType: metricsSnapshotWorkflow, workflowId: 'metrics-snapshot:daily', taskQueue: taskQueueFor(baseQueue, metricsSnapshotWorkflow), args: [{}] },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  });
}

/** Starts `metrics-snapshot:<day>` (idempotent: a run of that id already going or done is left alone). */
export async function startMetricsSnapshot(client: Client, baseQueue: string, day: string): Promise<string> {
  const workflowId = `metrics-snapshot:${day}`;
  try {
    await client.workflow.start(metricsSnapshotWorkflow, { workflowId, taskQueue: taskQueueFor(baseQueue, metricsSnapshotWorkflow), args: [{ day }] });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return workflowId;
}

/**
 * Schedules written before the task queues were split start their workflows on the single queue of
 * earlier versions (`baseQueue` itself). Each one still aimed there is pointed at its workflow
 * type's queue (the ensure* functions do this for theirs; this also covers the per-source schedules,
 * which only change when their source does). Returns the ids moved.
 */
export async function moveSchedulesOffLegacyQueue(client: Client, baseQueue: string): Promise<string[]> {
  const moved: string[] = [];
  for await (const summary of client.schedule.list()) {
    const type = summary.action?.workflowType;
    if (!type || !(type in WORKFLOW_QUEUES)) continue;
    const handle = client.schedule.getHandle(summary.scheduleId);
    const { action } = await handle.describe();
    if (action.type !== 'startWorkflow' || action.taskQueue !== baseQueue) continue;
    await handle.update((previous) => ({ ...previous, action: { ...(previous.action as typeof action), taskQueue: taskQueueFor(baseQueue, type as keyof typeof WORKFLOW_QUEUES) } }));
    moved.push(summary.scheduleId);
  }
  return moved.sort();
}

/** Every Temporal Schedule of the namespace, what it starts and when it runs next (the console's program page). */
export async function listSchedules(client: Client): Promise<Array<{ id: string; workflowType: string | null; paused: boolean; nextRuns: string[]; lastRun: string | null }>> {
  const out = [];
  for await (const s of client.schedule.list()) {
    out.push({
      id: s.scheduleId,
      workflowType: s.action?.workflowType ?? null,
      paused: s.state.paused,
      nextRuns: s.info.nextActionTimes.slice(0, 3).map((d) => d.toISOString()),
      lastRun: s.info.recentActions.at(-1)?.takenAt.toISOString() ?? null,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export const HUNTING_SCHEDULE_ID = 'hunting-schedule:daily';

/**
 * Asks every saved hunting hypothesis again on a schedule (CTEM_HUNTING_SCHEDULE; `off` removes it),
 * so each one's residual exposure has a trend. Runs are `hunting-<scheduled time>`.
 */
export async function ensureHuntingSchedule(client: Client, baseQueue: string, schedule: string): Promise<void> {
  if (schedule === 'off') {
    try {
      await client.schedule.getHandle(HUNTING_SCHEDULE_ID).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    return;
  }
  await upsertSchedule(client, {
    scheduleId: HUNTING_SCHEDULE_ID,
    spec: specOf(schedule),
    action: {
      type: 'startWorkflow',
      workflowType: huntingWorkflow,
      workflowId: 'hunting',
      taskQueue: taskQueueFor(baseQueue, huntingWorkflow),
      args: [],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'scoping' }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
  });
}
