import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { MemoryStore } from 'hono-rate-limiter';
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
