import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .openapi('Error');

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

const Tier = z.enum(['act', 'attend', 'track*', 'track']);

/** What a policy, feed version or context document would change against the live tiers (nothing is written). */
export const ShadowDiffSchema = z
  .object({
    policyVersion: z.string(),
    feeds: z.object({ epss: z.string().nullable(), kev: z.string().nullable() }),
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
  })
  .openapi('ShadowDiff');
