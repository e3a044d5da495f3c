import { Hono } from 'hono';
import type { AppEnv } from '../context.js';

/** Whether a dependency answers; the reason stays in the server's log (it names hosts, users and ports). */
async function check(name: string, probe: () => Promise<unknown>, timeoutMs = 3000): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([probe(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)))]);
    return { ok: true };
  } catch (err) {
    console.error(`healthz: ${name} unavailable: ${(err as Error).message}`);
    return { ok: false, error: 'unavailable' };
  } finally {
    clearTimeout(timer);
  }
}

/** 200 when both the database and Temporal answer, 503 otherwise; no token needed. */
export const healthRoutes = new Hono<AppEnv>().get('/healthz', async (c) => {
  const deps = c.get('deps');
  const [database, temporal] = await Promise.all([
    check('database', () => deps.database.sql`select 1`),
    check('temporal', () => deps.temporal.client.workflowService.getSystemInfo({})),
  ]);
  const ok = database.ok && temporal.ok;
  return c.json({ status: ok ? 'ok' : 'degraded', database, temporal }, ok ? 200 : 503);
});
