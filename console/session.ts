import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getSignedCookie, setSignedCookie } from 'hono/cookie';
import { getIdentity, principalOf } from '../access/identities.js';
import { BOOTSTRAP_PRINCIPAL, type Principal } from '../access/principal.js';
import { can } from '../access/roles.js';
import { CONSOLE_ROUTE_PERMISSIONS } from '../access/route-permissions.js';
import type { ConsoleEnv } from './env.js';

// Console sign-in: a local account (name and password), an issued API token, or the platform's API
// token. The session is a signed cookie naming the identity (no server-side state, so any API
// replica can read it), HttpOnly and SameSite=Strict, which with the Origin check on forms keeps
// other sites from acting. Each request re-reads the identity: a disabled one is signed out at once,
// and changed roles apply at once.

export const SESSION_COOKIE = 'ctem_session';
const SESSION_HOURS = 12;

/** What the cookie holds: who (an identity id, or `api-token`) and until when. */
interface Session {
  subject: string;
  expiresAt: number;
}

export interface Viewer {
  /** Who signed in, as pages show and record it: the identity's name, or `api-token`. */
  subject: string;
  /** The identity acting, with its roles (the bootstrap administrator for the API token). */
  principal: Principal;
  expiresAt: number;
}

export const API_TOKEN_SUBJECT = 'api-token';

/** The cookie-signing key: derived from the API token, so rotating the token signs everyone out. */
export function sessionKey(c: Context<ConsoleEnv>): string {
  return createHash('sha256').update(`ctem-console-session:${c.get('deps').apiToken}`).digest('hex');
}

export async function readViewer(c: Context<ConsoleEnv>): Promise<Viewer | undefined> {
  const raw = await getSignedCookie(c, sessionKey(c), SESSION_COOKIE);
  if (!raw) return undefined;
  let session: Session;
  try {
    session = JSON.parse(raw) as Session;
  } catch {
    return undefined;
  }
  if (typeof session.subject !== 'string' || typeof session.expiresAt !== 'number' || session.expiresAt <= Date.now()) return undefined;
  if (session.subject === API_TOKEN_SUBJECT) return { subject: API_TOKEN_SUBJECT, principal: BOOTSTRAP_PRINCIPAL, expiresAt: session.expiresAt };
  const identity = await getIdentity(c.get('deps').database.sql, session.subject);
  if (!identity || identity.disabledAt) return undefined;
  return { subject: identity.name, principal: principalOf(identity), expiresAt: session.expiresAt };
}

/** `subject`: the identity's id, or API_TOKEN_SUBJECT. */
export async function startSession(c: Context<ConsoleEnv>, subject: string): Promise<void> {
  const session: Session = { subject, expiresAt: Date.now() + SESSION_HOURS * 3_600_000 };
  await setSignedCookie(c, SESSION_COOKIE, JSON.stringify(session), sessionKey(c), {
    httpOnly: true,
    sameSite: 'Strict',
    secure: new URL(c.req.url).protocol === 'https:',
    path: '/console',
    maxAge: SESSION_HOURS * 3600,
  });
}

/** Only paths inside the console are followed after sign-in (no open redirect). */
export const insideConsole = (next: unknown) => (typeof next === 'string' && /^\/console(\/[\w\-./?=&%*:]*)?$/.test(next) && !next.startsWith('//') ? next : '/console');

export function endSession(c: Context<ConsoleEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/console' });
}

/**
 * A form post must come from the console's own pages (a second guard beside SameSite). Browsers say
 * so in Sec-Fetch-Site; the Origin header is not enough alone, because with Referrer-Policy
 * no-referrer (set by the security headers) a browser sends `Origin: null` on form posts.
 */
export function sameOrigin(c: Context<ConsoleEnv>): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site) return site === 'same-origin' || site === 'none';
  const origin = c.req.header('origin');
  return !origin || origin === new URL(c.req.url).origin;
}

/** Whether the viewer's roles open this console page (the navigation shows only those). */
export function mayOpen(viewer: Viewer, path: string): boolean {
  const permission = CONSOLE_ROUTE_PERMISSIONS[`GET ${path}`];
  return !!permission && can(viewer.principal, permission);
}
