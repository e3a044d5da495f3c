import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';
import { problem } from './problem.js';

// Guessing the API token (bearer or the console's sign-in form) is slowed down: a client address
// that failed authentication 20 times in 5 minutes is answered 429 until the window passes. Only
// failures count (401s), so a busy pipeline with a valid token is never limited. The count lives in
// each API process (a guesser spread over replicas gets 20 per replica per window); the address is
// the connection's own, never a forwarded header a client could forge.

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
  return rateLimiter({
    windowMs: WINDOW_MS,
    limit: AUTH_FAILURES_ALLOWED,
    standardHeaders: 'draft-7',
    keyGenerator: clientAddress,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (c) => c.res.status !== 401,
    handler: (c) => {
      c.header('Retry-After', String(WINDOW_MS / 1000));
      return problem(c, 429, 'too_many_failures', `more than ${AUTH_FAILURES_ALLOWED} failed authentications from this address in 5 minutes; wait and retry`);
    },
  }) as unknown as MiddlewareHandler;
}
