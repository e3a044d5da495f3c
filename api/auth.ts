import { timingSafeEqual } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import { BOOTSTRAP_PRINCIPAL, type Principal } from '../access/principal.js';
import { can } from '../access/roles.js';
import { openApiPath, routePermission } from '../access/route-permissions.js';
import { resolveToken } from '../access/tokens.js';
import type { Database } from '../db/client.js';
import type { AppEnv } from './context.js';
import { problem } from './problem.js';

export function tokensMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const REFUSALS = {
  unknown: 'a valid bearer token is required (Authorization: Bearer <token>)',
  expired: 'the token has expired; issue a new one',
  revoked: 'the token has been revoked',
  disabled: "the token's identity is disabled",
} as const;

/** Who a bearer token stands for: CTEM_API_TOKEN is the bootstrap administrator, any other token must be an issued one. */
export async function authenticateBearer(database: Database, apiToken: string, token: string): Promise<{ ok: true; principal: Principal } | { ok: false; message: string }> {
  if (tokensMatch(token, apiToken)) return { ok: true, principal: BOOTSTRAP_PRINCIPAL };
  const resolved = await resolveToken(database.sql, token);
  return resolved.ok ? { ok: true, principal: resolved.principal } : { ok: false, message: REFUSALS[resolved.reason] };
}

/** Bearer-token guard for /api; the ServiceNow and Jira webhooks authenticate with their own signatures instead. */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header('authorization') ?? '';
  const token = /^Bearer\s+(.+)$/i.exec(header)?.[1];
  const deps = c.get('deps');
  const result = token ? await authenticateBearer(deps.database, deps.apiToken, token) : undefined;
  if (!result?.ok) {
    c.header('WWW-Authenticate', 'Bearer realm="ctem"');
    return problem(c, 401, 'unauthorized', result?.message ?? REFUSALS.unknown);
  }
  c.set('principal', result.principal);
  await next();
});

/**
 * Deny by default: the route that will answer must be in access/route-permissions.ts and the
 * principal must hold its permission. A path no route matches goes on to the 404.
 */
export const requirePermission = createMiddleware<AppEnv>(async (c, next) => {
  // The answering route is the last one matched that is not a middleware (`app.use` registers ALL).
  const route = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1);
  if (!route) return next();
  const path = openApiPath(route.path);
  const permission = routePermission(route.method, path);
  if (!permission) return problem(c, 403, 'forbidden', `${route.method} ${path} is not open to any role (no permission is assigned to it)`);
  if (!can(c.get('principal'), permission)) return problem(c, 403, 'forbidden', `this needs the permission ${permission}, which your roles do not grant`, { permission });
  await next();
});
