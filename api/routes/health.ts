import { Hono } from 'hono';
import type { AppEnv } from '../context.js';

async function check(probe: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await probe();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** 200 when both the database and Temporal answer, 503 otherwise; no token needed. */
export const healthRoutes = new Hono<AppEnv>().get('/healthz', async (c) => {
  const deps = c.get('deps');
  const [database, temporal] = await Promise.all([
    check(() => deps.database.sql`select 1`),
    check(() => deps.temporal.client.workflowService.getSystemInfo({})),
  ]);
  const ok = database.ok && temporal.ok;
  return c.json({ status: ok ? 'ok' : 'degraded', database, temporal }, ok ? 200 : 503);
});
