import { patched, proxyActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../activities/audit.js';
import type { MetricsActivities } from '../activities/metrics.js';

// The day's program-metric snapshot (metrics/snapshot.ts), started each day by the Temporal
// Schedule `metrics-schedule:daily`, at start-up when the day has none (`metrics-snapshot:<day>`),
// or on demand. The numbers stay in PostgreSQL; history carries the day and the scopes written.
// The same daily run prunes the audit trail beyond its retention.

export interface MetricsSnapshotInput {
  /** YYYY-MM-DD; by default the UTC day of the workflow's start (a Schedule's run has no day of its own). */
  day?: string;
}

const { takeMetricsSnapshot } = proxyActivities<MetricsActivities>({
  // A large estate reads its findings a few times per scope.
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 6 },
});

const { pruneAuditTrail } = proxyActivities<AuditActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 6 },
});

export async function metricsSnapshotWorkflow(input: MetricsSnapshotInput = {}): Promise<{ day: string; scopes: string[] }> {
  // Workflow time is deterministic: the day the run started, also on replay.
  const day = input.day ?? new Date().toISOString().slice(0, 10);
  const snapshot = await takeMetricsSnapshot({ day });
  // The daily run also applies the audit trail's retention (CTEM_AUDIT_RETENTION); runs recorded
  // before it existed replay without it.
  if (patched('audit-retention')) await pruneAuditTrail();
  return snapshot;
}
