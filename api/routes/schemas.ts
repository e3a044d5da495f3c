import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .openapi('Error');

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

/** Keyset-paginated lists: `after` is the previous page's `next`; `offset` is kept for older clients. */
export const KeysetQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().max(4000).optional().openapi({ description: "the previous page's `next` cursor (opaque)" }),
  offset: z.coerce.number().int().min(0).optional().openapi({ deprecated: true, description: 'deprecated: rows to skip (after the cursor, if any); use `after`' }),
});

export const CountEstimateSchema = z
  .object({
    count: z.number().int().openapi({ description: "rows matching the filters: counted up to 1,000, beyond that PostgreSQL's planner estimate" }),
    exact: z.boolean().openapi({ description: "true: counted; false: more than 1,000 rows and `count` is the planner's estimate" }),
  })
  .openapi('CountEstimate', { description: 'Lists never count a whole table per page: they count up to 1,000 rows, then estimate' });

/** The body of a keyset-paginated list. */
export const keysetPage = <T extends z.ZodTypeAny>(item: T) =>
  z.object({
    items: z.array(item),
    next: z.string().nullable().openapi({ description: 'pass as `after` for the next page; null on the last page' }),
    estimate: CountEstimateSchema,
  });

const Tier = z.enum(['act', 'attend', 'track*', 'track']);

/** What a policy, feed version or context document would change against the live tiers (nothing is written). */
// A backtest's answer (prioritization/backtest.ts), for POST /api/v1/backtests and the policy shadow.
const BacktestRowSchema = z.object({
  name: z.string(),
  flagged: z.number().int(),
  effort: z.number().openapi({ description: 'flagged / population' }),
  caught: z.number().int().openapi({ description: 'later-KEV items flagged' }),
  coverage: z.number().openapi({ description: 'caught / positives' }),
  efficiency: z.number().openapi({ description: 'caught / flagged' }),
});

export const BacktestSchema = z
  .object({
    universe: z.enum(['cves', 'records', 'estate']),
    feeds: z.object({ epss: z.string(), kev: z.string(), cve: z.string().nullable() }),
    population: z.number().int().openapi({ description: 'CVEs (or open findings) not in KEV at t0' }),
    positives: z.number().int().openapi({ description: 'of those, listed in the later KEV catalog' }),
    withCvss: z.number().int().openapi({ description: 'of those, carrying a CVSS score (the CVSS baselines judge only these)' }),
    rows: z.array(BacktestRowSchema),
    credit: z.string(),
  })
  .openapi('Backtest');

export const ShadowDiffSchema = z
  .object({
    policyVersion: z.string(),
    feeds: z.object({ epss: z.string().nullable(), kev: z.string().nullable(), cve: z.string().nullable().optional() }),
    scored: z.number().int(),
    unchanged: z.number().int(),
    movedUp: z.number().int(),
    movedDown: z.number().int(),
    unscored: z.number().int().openapi({ description: 'not scored yet: they would get their first tier' }),
    dueChanged: z.number().int(),
    transitions: z.record(z.string(), z.number().int()).openapi({ description: 'count per `from→to` tier move, e.g. `track→attend`', example: { 'track→attend': 3 } }),
    samples: z.array(
      z.object({
        findingId: z.number().int(),
        issueId: z.string(),
        asset: z.string(),
        from: Tier.nullable(),
        to: Tier,
        reason: z.string().openapi({ description: 'the factors whose values differ, in words' }),
      }),
    ),
    backtest: BacktestSchema.optional().openapi({ description: 'with ?laterKev=: the active and this policy backtested on the estate against that later KEV version' }),
  })
  .openapi('ShadowDiff');
