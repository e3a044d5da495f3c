import { availableParallelism } from 'node:os';
import type { Sql } from '../../db/client.js';

/** Concurrent shares of a full rescoring: one per core, up to four (the writes then contend). */
export const DEFAULT_PARALLEL = Math.max(1, Math.min(4, availableParallelism()));

/**
 * The block ranges that split the open findings into `n` shares of about equal size, from the blocks of
 * a sample of the table: about a thousand blocks, all of a small table, at least 1% of a large one
 * (updates that move rows leave the open findings unevenly spread, so equal block counts would not
 * do). The first share starts at block 0 and the last one is open, so every row is in exactly one
 * share: each finding's row version as of a share's snapshot lies in one block, so each is scored
 * once even when an update moves it to another. Each share reads only its blocks (a TID range
 * scan), where a split by asset read the whole table in every share, twice.
 */
export async function shareBlocks(sql: Sql, n: number): Promise<{ from: number; to: number | null }[]> {
  const [size] = await sql<{ blocks: number }[]>`select (pg_relation_size('findings') / current_setting('block_size')::int)::float8 as blocks`;
  const percent = Math.min(100, Math.max(1, 100_000 / Math.max(1, size?.blocks ?? 0)));
  const [sample] = await sql<{ cuts: number[] | null }[]>`
    select percentile_disc(${Array.from({ length: n - 1 }, (_, i) => (i + 1) / n)}::float8[]) within group (order by block) as cuts
    from (select (ctid::text::point)[0] as block from findings tablesample system (${percent}::float4) where status = 'open') s`;
  const cuts = [...new Set((sample?.cuts ?? []).map(Number).filter((b) => b > 0))].sort((a, b) => a - b);
  return [0, ...cuts].map((from, i) => ({ from, to: cuts[i] ?? null }));
}
