import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Sql } from '../db/client.js';
import { getScope, scopeCondition, type ScopeSelector } from '../scoping/scopes.js';
import { validationWorkflow, type ValidationInput } from '../workflows/validation.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';
import { taskQueueFor } from '../workflows/task-queues.js';

// Validation runs (`validation:<scope>:<id>`): each refreshes the attack graph, runs the safe active
// checks allowed for the scope and verifies compensating controls, then records and announces what
// it found. The scope `estate` is the whole inventory (scheduled runs and runs after a rescoring).

export const ESTATE_SCOPE = 'estate';

/** A scope or run a step needs is not there (any more): a retry will not make it appear. */
export class ValidationNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationNotFoundError';
  }
}

/** The selector of a saved scope, or everything for `estate`. */
export async function scopeSelector(sql: Sql, scope: string): Promise<ScopeSelector> {
  if (scope === ESTATE_SCOPE) return {};
  const saved = await getScope(sql, scope);
  if (!saved) throw new ValidationNotFoundError(`no scope named ${scope}`);
  return saved.selector;
}

/** Asset ids of a scope: the probes and the report read only these. */
export async function scopeAssetIds(sql: Sql, scope: string): Promise<number[]> {
  const selector = await scopeSelector(sql, scope);
  const rows = await sql<{ id: string }[]>`select a.id from assets a where true ${scopeCondition(sql, selector)} order by a.id`;
  return rows.map((r) => Number(r.id));
}

export interface ValidationResults {
  runId: string;
  scope: string;
  trigger: string;
  requestedBy: string | null;
  channel?: string;
  workflowUrl?: string;
  /** The attack graph after the refresh. */
  graph: { paths: number; jewels: number; chokePoints: number; compromisable: number; full: boolean; durationMs: number } | null;
  /** Safe active checks: off unless an allow-list is configured. */
  probes: { enabled: boolean; targets: number; probed: number; outsideAllowList: number; reachable: number; unreachable: number; versionChanged: number; evidence: number };
  controls: { checked: number; verified: number; failed: number; unverified: number };
  /** Findings in scope whose tier moved during the run (evidence re-scored), by direction. */
  tiersMoved: { up: number; down: number };
  /** The top golden tickets by attack paths cut. */
  topFixes: Array<{ ticketKey: string; pathsCut: number }>;
}

/** Where validation results are announced (the Slack bot); idempotent per run id. */
export interface ValidationPublisher {
  validationResults(results: ValidationResults): Promise<void>;
}

export async function recordRunStart(sql: Sql, run: { id: string; scope: string; trigger: string; requestedBy?: string | null }): Promise<void> {
  await sql`
    insert into validation_runs (id, scope, trigger, requested_by) values (${run.id}, ${run.scope}, ${run.trigger}, ${run.requestedBy ?? null})
    on conflict (id) do nothing`;
}

export async function recordRunEnd(sql: Sql, id: string, end: { status: 'completed' | 'failed'; results?: ValidationResults; error?: string }): Promise<void> {
  await sql`
    update validation_runs set status = ${end.status}, results = ${end.results ? sql.json(end.results as never) : null}, error = ${end.error ?? null}, finished_at = now()
    where id = ${id}`;
}

/** Tier moves of findings in the scope since the run started (their score history). */
export async function tierMovesSince(sql: Sql, assetIds: number[], since: Date): Promise<{ up: number; down: number }> {
  const [row] = await sql<{ up: number; down: number }[]>`
    with ranks(tier, r) as (values ('track', 0), ('track*', 1), ('attend', 2), ('act', 3)),
    moved as (
      select h.finding_id, (select r from ranks where tier = h.tier) - coalesce((select r from ranks where tier = h.old_tier), -1) as d
      from score_history h
      where h.at >= ${since} and h.old_tier is not null and h.old_tier <> h.tier and h.asset_id = any(${sql.array(assetIds)}::bigint[])
    )
    select count(*) filter (where d > 0)::int as up, count(*) filter (where d < 0)::int as down from moved`;
  return row ?? { up: 0, down: 0 };
}

export interface RunRow {
  id: string;
  scope: string;
  trigger: string;
  requestedBy: string | null;
  status: 'running' | 'completed' | 'failed';
  results: ValidationResults | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

const runColumns = (sql: Sql) =>
  sql`id, scope, trigger, requested_by as "requestedBy", status, results, error, started_at as "startedAt", finished_at as "finishedAt"`;

type RawRun = Omit<RunRow, 'startedAt' | 'finishedAt'> & { startedAt: Date; finishedAt: Date | null };
const toRun = (r: RawRun): RunRow => ({ ...r, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt?.toISOString() ?? null });

export async function getRun(sql: Sql, id: string): Promise<RunRow | undefined> {
  const [row] = await sql<RawRun[]>`select ${runColumns(sql)} from validation_runs where id = ${id}`;
  return row ? toRun(row) : undefined;
}

export async function listRuns(sql: Sql, { scope, limit }: { scope?: string; limit: number }): Promise<RunRow[]> {
  const rows = await sql<RawRun[]>`
    select ${runColumns(sql)} from validation_runs ${scope ? sql`where scope = ${scope}` : sql``}
    order by started_at desc limit ${limit}`;
  return rows.map(toRun);
}

/** Starts a validation run, its id readable in the Temporal UI (`validation:<scope>:<short id>`). */
export async function startValidation(temporal: { client: Client; taskQueue: string }, input: ValidationInput): Promise<{ workflowId: string }> {
  const workflowId = `validation:${input.scope}:${randomBytes(4).toString('hex')}`;
  await temporal.client.workflow.start(validationWorkflow, {
    workflowId,
    taskQueue: taskQueueFor(temporal.taskQueue, validationWorkflow),
    args: [input],
    typedSearchAttributes: [{ key: CTEM_PHASE, value: 'validation' }],
  });
  return { workflowId };
}
