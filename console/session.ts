import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getSignedCookie, setSignedCookie } from 'hono/cookie';
import type { ConsoleEnv } from './env.js';

// Console sign-in. Until the platform has identities and roles, a person signs in with the API
// token; the session is a signed cookie (no server-side state, so any API replica can read it),
// HttpOnly and SameSite=Strict, which with the Origin check on forms keeps other sites from acting.

export const SESSION_COOKIE = 'ctem_session';
const SESSION_HOURS = 12;

export interface Viewer {
  /** Who signed in: `api-token` until the platform has identities. */
  subject: string;
  expiresAt: number;
}

/** The cookie-signing key: derived from the API token, so rotating the token signs everyone out. */
function sessionKey(c: Context<ConsoleEnv>): string {
  return createHash('sha256').update(`ctem-console-session:${c.get('deps').apiToken}`).digest('hex');
}

export async function readViewer(c: Context<ConsoleEnv>): Promise<Viewer | undefined> {
  const raw = await getSignedCookie(c, sessionKey(c), SESSION_COOKIE);
  if (!raw) return undefined;
  try {
    const viewer = JSON.parse(raw) as Viewer;
    return typeof viewer.subject === 'string' && typeof viewer.expiresAt === 'number' && viewer.expiresAt > Date.now() ? viewer : undefined;
  } catch {
    return undefined;
  }
}

export async function startSession(c: Context<ConsoleEnv>, subject: string): Promise<void> {
  const viewer: Viewer = { subject, expiresAt: Date.now() + SESSION_HOURS * 3_600_000 };
  await setSignedCookie(c, SESSION_COOKIE, JSON.stringify(viewer), sessionKey(c), {
    httpOnly: true,
    sameSite: 'Strict',
    secure: new URL(c.req.url).protocol === 'https:',
    path: '/console',
    maxAge: SESSION_HOURS * 3600,
  });
}

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
