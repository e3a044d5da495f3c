import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import type { ValidationConfig } from '../config/index.js';
import type { Database } from '../db/client.js';
import { workflowUrl } from '../scoping/campaigns.js';
import { runActiveChecks, type ActiveCheckCounts } from '../validation/active-checks.js';
import { verifyControls, type ControlCounts } from '../validation/control-checks.js';
import { fixesByPathsCut, refreshAttackGraph } from '../validation/graph/index.js';
import {
  recordRunEnd,
  recordRunStart,
  scopeAssetIds,
  tierMovesSince,
  ValidationNotFoundError,
  type ValidationPublisher,
  type ValidationResults,
} from '../validation/runs.js';

// The validation workflow's activities over validation/. Workflows receive counts, never findings,
// evidence or paths.

export interface ValidationDeps {
  database: Database;
  config: ValidationConfig;
  temporal: { namespace: string; uiUrl?: string };
  publisher?: ValidationPublisher;
}

/** A scope that is not there will not appear on a retry. */
function notFound<T>(run: () => Promise<T>): Promise<T> {
  return run().catch((err: unknown) => {
    throw err instanceof ValidationNotFoundError ? ApplicationFailure.nonRetryable(err.message, 'NotFound') : err;
  });
}

export type GraphSummary = NonNullable<ValidationResults['graph']>;

export function createValidationActivities({ database, config, temporal, publisher }: ValidationDeps) {
  const sql = database.sql;
  return {
    async startValidationRun(input: { runId: string; scope: string; trigger: string; requestedBy?: string }): Promise<{ assets: number }> {
      await recordRunStart(sql, { id: input.runId, scope: input.scope, trigger: input.trigger, requestedBy: input.requestedBy ?? null });
      return { assets: (await notFound(() => scopeAssetIds(sql, input.scope))).length };
    },

    /** Recomputes the exposure graph (incremental: only what changed since the last refresh). */
    async refreshAttackGraph(_input: { runId: string }): Promise<GraphSummary> {
      heartbeat();
      const r = await refreshAttackGraph(sql);
      return { paths: r.paths, jewels: r.jewels, chokePoints: r.chokePoints.length, compromisable: r.nodes, full: r.full, durationMs: r.durationMs };
    },

    /** Safe active checks of the scope's urgent exposures, on allow-listed targets only (none by default). */
    async runActiveChecks(input: { runId: string; scope: string }): Promise<ActiveCheckCounts> {
      const assetIds = await notFound(() => scopeAssetIds(sql, input.scope));
      const ctx = Context.current();
      return runActiveChecks(sql, config, { runId: input.runId, assetIds, heartbeat: (progress) => ctx.heartbeat(progress), signal: ctx.cancellationSignal });
    },

    /** Checks the compensating controls on the scope's assets that a probe can check. */
    async verifyControls(input: { runId: string; scope: string }): Promise<ControlCounts> {
      const assetIds = await notFound(() => scopeAssetIds(sql, input.scope));
      const ctx = Context.current();
      return verifyControls(sql, config, { assetIds, heartbeat: (progress) => ctx.heartbeat(progress), signal: ctx.cancellationSignal });
    },

    /** Records what the run found and announces it (once per run: the publisher is idempotent). */
    async finishValidationRun(input: {
      runId: string;
      scope: string;
      trigger: string;
      since: string;
      requestedBy?: string;
      channel?: string;
      graph: GraphSummary;
      probes: ActiveCheckCounts;
      controls: ControlCounts;
    }): Promise<Record<string, unknown>> {
      const assetIds = await notFound(() => scopeAssetIds(sql, input.scope));
      const url = workflowUrl(temporal, input.runId);
      const results: ValidationResults = {
        runId: input.runId,
        scope: input.scope,
        trigger: input.trigger,
        requestedBy: input.requestedBy ?? null,
        ...(input.channel ? { channel: input.channel } : {}),
        ...(url ? { workflowUrl: url } : {}),
        graph: input.graph,
        probes: input.probes,
        controls: input.controls,
        tiersMoved: await tierMovesSince(sql, assetIds, new Date(input.since)),
        topFixes: (await fixesByPathsCut(sql, { limit: 5, examples: 0 })).map((f) => ({ ticketKey: f.ticketKey, pathsCut: f.pathsCut })),
      };
      await recordRunEnd(sql, input.runId, { status: 'completed', results });
      // Runs after each rescoring would flood the channel; their results are in the API and the run's record.
      if (publisher && input.trigger !== 'rescore') await publisher.validationResults(results);
      return { paths: results.graph?.paths ?? 0, chokePoints: results.graph?.chokePoints ?? 0, probed: results.probes.probed, evidence: results.probes.evidence, tiersMoved: results.tiersMoved };
    },

    async failValidationRun(input: { runId: string; scope: string; channel?: string; error: string }): Promise<void> {
      await recordRunEnd(sql, input.runId, { status: 'failed', error: input.error });
    },

    /**
     * Whether a rescoring that started at `since` moved findings into or out of act/attend, and
     * validation after rescoring is on (never for the rescoring a validation run started itself).
     */
    async validationAfterRescore(input: { since: string; workflowId?: string }): Promise<{ validate: boolean; moved: number }> {
      // A validation's own rescoring does not start another validation.
      if (input.workflowId?.startsWith('rescore:validation:')) return { validate: false, moved: 0 };
      const [row] = await sql<{ moved: number }[]>`
        select count(*)::int as moved from score_history
        where at >= ${new Date(input.since)} and (tier in ('act', 'attend')) <> (coalesce(old_tier, 'track') in ('act', 'attend'))`;
      const moved = row?.moved ?? 0;
      return { validate: config.afterRescore && moved > 0, moved };
    },
  };
}

export type ValidationActivities = ReturnType<typeof createValidationActivities>;
