import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { MemoryStore, rateLimiter } from 'hono-rate-limiter';
import { formatDuration } from '../config/duration.js';
import type { RateLimit } from '../config/rate-limit.js';
import type { AppEnv } from './context.js';
import { problem } from './problem.js';

// Guessing the API token (bearer or the console's sign-in form) is slowed down: a client address
// that failed authentication 20 times in 5 minutes is answered 429 until the window passes. Only
// failures count (401s), so a busy pipeline with a valid token is never limited, however many
// requests it has in flight. The count lives in each API process (a guesser spread over replicas
// gets 20 per replica per window); the address is the connection's own, never a forwarded header a
// client could forge.

export const AUTH_FAILURES_ALLOWED = 20;
const WINDOW_MS = 5 * 60_000;

function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // Served without a socket (app.request in tests): one shared bucket.
    return 'local';
  }
}

export function authFailureLimit(): MiddlewareHandler {
  // Failures are counted once the answer is known. The library's own middleware counts every
  // request while it is in flight and takes the successful ones back afterwards, so more than 20
  // concurrent requests from one address (a busy CI runner, a proxy) were refused with valid tokens.
  const failures = new MemoryStore();
  failures.init({ windowMs: WINDOW_MS } as Parameters<MemoryStore['init']>[0]);
  return async (c, next) => {
    const key = clientAddress(c);
    const seen = await failures.get(key);
    if (seen && seen.totalHits >= AUTH_FAILURES_ALLOWED && (seen.resetTime?.getTime() ?? Infinity) > Date.now()) {
      c.header('Retry-After', String(WINDOW_MS / 1000));
      return problem(c, 429, 'too_many_failures', `more than ${AUTH_FAILURES_ALLOWED} failed authentications from this address in 5 minutes; wait and retry`);
    }
    await next();
    if (c.res.status === 401) await failures.increment(key);
  };
}

// Each authenticated identity (the principal's id: a user, a service account, the bootstrap
// administrator) has a budget of requests per window on /api (CTEM_RATE_LIMIT, 600/min by default),
// so one runaway script or leaked token cannot take the API from everyone else. Counted after
// authentication; /healthz and /metrics are outside /api, and the signed ITSM webhooks are not an
// identity's calls (ServiceNow and Jira send as fast as their tickets change, and a 429 would only
// delay a ticket change they retry later), so they are not counted. Like the failure limit, the
// count lives in each API process: N replicas behind a balancer allow up to N times the budget.

export function identityRateLimit(budget: RateLimit): MiddlewareHandler<AppEnv> {
  const seconds = Math.ceil(budget.windowMs / 1000);
  return rateLimiter<AppEnv>({
    windowMs: budget.windowMs,
    limit: budget.limit,
    standardHeaders: 'draft-7', // RateLimit and RateLimit-Policy on every answer, Retry-After on a 429
    keyGenerator: (c) => `principal:${c.get('principal').id}`,
    handler: (c) =>
      problem(c, 429, 'rate_limited', `more than ${budget.limit} requests in ${formatDuration(budget.windowMs)} by this identity; retry after the time in Retry-After`, {
        limit: budget.limit,
        windowSeconds: seconds,
      }),
  }) as unknown as MiddlewareHandler<AppEnv>;
}
