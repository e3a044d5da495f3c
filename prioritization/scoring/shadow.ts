import type { Sql } from '../../db/client.js';
import type { ExplanationFactor } from '../../db/schema.js';
import type { Policy, Tier } from '../policy.js';
import { differingFactors, type FeedVersions } from './explanation.js';
import { scoringRelation } from './relation.js';
import { feedVersions, tuned, type ScoringScope, type Tx } from './sql.js';

// Shadow scoring: the scoring relation as a read-only SELECT, diffed against what the findings
// carry now. What a new policy, feed version or context document would move, before it applies.

export type TierTransition = `${Tier | 'unscored'}→${Tier}`;

export interface ShadowSample {
  findingId: number;
  issueId: string;
  asset: string;
  from: Tier | null;
  to: Tier;
  /** The factors whose values differ, in words. */
  reason: string;
}

export interface ShadowDiff {
  policyVersion: string;
  feeds: FeedVersions;
  scored: number;
  unchanged: number;
  movedUp: number;
  movedDown: number;
  /** Not scored yet: they would get their first tier. */
  unscored: number;
  dueChanged: number;
  transitions: Partial<Record<TierTransition, number>>;
  samples: ShadowSample[];
}

/**
 * What rescoring with this policy and these feed versions (the active ones unless given) would do
 * to the findings in scope, compared with what they carry now. Read-only: a SELECT in a read-only
 * transaction; no finding changes.
 */
export async function shadowScore(
  sql: Sql,
  policy: Policy,
  scope: ScoringScope,
  options: ShadowOptions = {},
): Promise<ShadowDiff> {
  return sql.begin('isolation level repeatable read read only', (tx) => shadowScoreIn(tx, policy, scope, options));
}

export interface ShadowOptions {
  /** Feed versions to score with instead of the active ones. */
  feeds?: { epss?: string; kev?: string };
  /** How many moved findings to explain. */
  samples?: number;
}

/**
 * shadowScore inside the caller's transaction: against what that transaction sees (a context
 * document merged in it and never committed, for one). Sets transaction-local planner settings.
 */
export async function shadowScoreIn(
  tx: Tx,
  policy: Policy,
  scope: ScoringScope,
  { feeds: given = {}, samples: sampleCount = 20 }: ShadowOptions = {},
): Promise<ShadowDiff> {
  await tuned(tx);
  const feeds = await feedVersions(tx, given);
  for (const kind of ['epss', 'kev'] as const) {
    const version = given[kind];
    if (version === undefined) continue;
    const [known] = await tx`select 1 from intel_feeds where kind = ${kind} and version = ${version}`;
    if (!known) throw new Error(`shadow scoring: no ${kind.toUpperCase()} feed version ${version}`);
  }
  const { ctes, rows } = scoringRelation(tx, policy, scope, feeds);
  const [summary] = await tx<{ scored: number; unchanged: number; moved_up: number; moved_down: number; unscored: number; due_changed: number; transitions: Record<string, number> | null; sample_ids: number[] | null }[]>`
    with ${ctes},
    diff as (
      select s.id, s.old_tier, s.tier,
             coalesce(array_position(array['track', 'track*', 'attend', 'act'], s.old_tier::text), 0) - 1 as r_old,
             array_position(array['track', 'track*', 'attend', 'act'], s.tier) - 1 as r_new,
             s.old_due is distinct from s.due_at as due_changed
      from (${rows}) s
    ),
    moved as (
      select id, old_tier, tier, row_number() over (partition by old_tier, tier order by id) as nth
      from diff where old_tier is distinct from tier
    )
    select count(*)::int as scored,
           (count(*) filter (where old_tier is not distinct from tier))::int as unchanged,
           (count(*) filter (where r_old >= 0 and r_new > r_old))::int as moved_up,
           (count(*) filter (where r_old >= 0 and r_new < r_old))::int as moved_down,
           (count(*) filter (where r_old < 0))::int as unscored,
           (count(*) filter (where due_changed))::int as due_changed,
           (select jsonb_object_agg(k, n) from (select coalesce(old_tier, 'unscored') || '→' || tier as k, count(*)::int as n from moved group by 1) t) as transitions,
           (select array_agg(id order by nth, id) from (select id, nth from moved order by nth, id limit ${sampleCount}) l) as sample_ids
    from diff`;
  const sampleIds = (summary?.sample_ids ?? []).map(Number);
  const samples: ShadowSample[] = [];
  if (sampleIds.length > 0) {
    const detail = scoringRelation(tx, policy, { findingIds: sampleIds }, feeds, { bodies: true });
    const found = await tx<{ id: number; issue_id: string; asset_name: string; old_tier: Tier | null; tier: Tier; old_explanation: ExplanationFactor[] | null; explanation: ExplanationFactor[] }[]>`
      with ${detail.ctes} select * from (${detail.rows}) s order by s.id`;
    const byId = new Map(found.map((r) => [Number(r.id), r]));
    for (const id of sampleIds) {
      const r = byId.get(id);
      if (!r) continue;
      samples.push({ findingId: Number(r.id), issueId: r.issue_id, asset: r.asset_name, from: r.old_tier, to: r.tier, reason: differingFactors(r.old_explanation, r.explanation) });
    }
  }
  return {
    policyVersion: policy.version,
    feeds,
    scored: summary?.scored ?? 0,
    unchanged: summary?.unchanged ?? 0,
    movedUp: summary?.moved_up ?? 0,
    movedDown: summary?.moved_down ?? 0,
    unscored: summary?.unscored ?? 0,
    dueChanged: summary?.due_changed ?? 0,
    transitions: (summary?.transitions ?? {}) as ShadowDiff['transitions'],
    samples,
  };
}
