import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import { auditAction, auditTarget } from '../access/audit-actions.js';
import { appendAudit, type AuditActor, type AuditChannel, type AuditOutcome } from '../access/audit-trail.js';
import { BOOTSTRAP_PRINCIPAL } from '../access/principal.js';
import type { ConsoleEnv } from '../console/env.js';
import type { AppEnv } from './context.js';
import { problem } from './problem.js';

/** What a handler can say about its change beyond the route: the target's name, the state before and after. */
export interface AuditChange {
  target?: string;
  before?: unknown;
  after?: unknown;
}

/** Not recorded: reads. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A caller that presented credentials the platform refused. */
export const REFUSED_CREDENTIALS: AuditActor = { id: 'anonymous', name: '(refused credentials)', kind: 'anonymous' };

export function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403) return 'denied';
  return status < 400 ? 'allowed' : 'failed';
}

/** The route the request was answered by: the last matched route of its own method (middleware match every method). */
export function answeringRoute(c: Context): string | undefined {
  const method = c.req.method.toUpperCase();
  return matchedRoutes(c)
    .filter((r) => r.method.toUpperCase() === method)
    .at(-1)?.path;
}

/**
 * Records the mutation a request made, once its response is decided. Shared by the API (channel
 * `api`) and the console's form posts (channel `console`). Requests that presented no credentials
 * at all are not recorded: they are unbounded noise, and the failed-authentication limit covers them.
 */
export function recordMutations(
  channel: AuditChannel,
  { actor, presentedCredentials }: { actor: (c: Context<AppEnv>) => AuditActor | undefined; presentedCredentials: (c: Context<AppEnv>) => boolean },
) {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (READS.has(c.req.method)) return next();
    await next();
    const principal = actor(c);
    if (!principal && !presentedCredentials(c)) return;
    const status = c.res.status;
    const pattern = answeringRoute(c);
    const change = c.get('auditChange');
    const entry = {
      actor: principal ?? REFUSED_CREDENTIALS,
      action: pattern ? auditAction(c.req.method, pattern) : `${channel}.unrouted`,
      target: change?.target ?? (pattern ? auditTarget(pattern, c.req.path) : `${c.req.method} ${c.req.path}`),
      outcome: outcomeOf(status),
      // A refused or failed request changed nothing: what the handler meant to write is not a change.
      ...(status < 400 && change ? { before: change.before, after: change.after } : {}),
      requestId: c.get('requestId') ?? null,
      channel,
    };
    try {
      await appendAudit(c.get('deps').database.sql, entry);
    } catch (err) {
      // Not the handler's transaction: most changes also reach Temporal or the ITSM, which no database
      // transaction can take back. So the change stands, and the caller hears that it is not on record
      // (a 503: the API's mutations are safe to repeat) instead of a success that left no trace.
      console.error(`audit: NOT RECORDED ${entry.action} target=${entry.target ?? '-'} by ${entry.actor.id} request=${entry.requestId ?? '-'} status=${status}: ${(err as Error).message}`);
      c.res = problem(c, 503, 'audit_unavailable', `the change was made (status ${status}) but could not be recorded in the audit trail; retry shortly`);
      c.res.headers.delete('content-length'); // the handler's, kept by Hono with its other headers
      c.header('Retry-After', '5');
    }
  });
}

/** API callers present a bearer token; anything else is an anonymous probe. */
export const recordApiMutations = recordMutations('api', {
  actor: (c) => c.get('principal') as AuditActor | undefined,
  presentedCredentials: (c) => /^Bearer\s+\S/i.test(c.req.header('authorization') ?? ''),
});

/** The console's signed-in viewer as an actor: the API token's holder is the bootstrap principal. */
export function viewerActor(viewer: { subject: string } | undefined): AuditActor | undefined {
  if (!viewer) return undefined;
  return viewer.subject === 'api-token' ? BOOTSTRAP_PRINCIPAL : { id: viewer.subject, name: viewer.subject, kind: 'user' };
}

/** Console form posts, after the viewer guard: a post without a session was redirected to sign in and is not recorded. */
export const recordConsoleMutations = recordMutations('console', {
  actor: (c) => viewerActor((c as unknown as Context<ConsoleEnv>).get('viewer')),
  presentedCredentials: () => false,
});

/** Adds to what the handler tells the audit trail about its change (call before and after the write). */
export function noteChange(c: Context<AppEnv>, change: AuditChange): void {
  c.set('auditChange', { ...c.get('auditChange'), ...change });
}
