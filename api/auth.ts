import { timingSafeEqual } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { BOOTSTRAP_PRINCIPAL } from '../access/principal.js';
import type { AppEnv } from './context.js';
import { problem } from './problem.js';

export function tokensMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Bearer-token guard for /api; the ServiceNow webhook authenticates with its own signature instead. */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header('authorization') ?? '';
  const token = /^Bearer\s+(.+)$/i.exec(header)?.[1];
  if (!token || !tokensMatch(token, c.get('deps').apiToken)) {
    c.header('WWW-Authenticate', 'Bearer realm="ctem"');
    return problem(c, 401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <CTEM_API_TOKEN>)');
  }
  c.set('principal', BOOTSTRAP_PRINCIPAL);
  await next();
});
