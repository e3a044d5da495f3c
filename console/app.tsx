import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono, type Context } from 'hono';
import { raw } from 'hono/html';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import { authenticatePassword } from '../access/identities.js';
import { can } from '../access/roles.js';
import { CONSOLE_ROUTE_PERMISSIONS } from '../access/route-permissions.js';
import { resolveToken } from '../access/tokens.js';
import { tokensMatch } from '../api/auth.js';
import { SIGN_IN_ACTIONS } from '../access/audit-actions.js';
import { appendAudit } from '../access/audit-trail.js';
import { recordConsoleMutations, REFUSED_CREDENTIALS } from '../api/audit.js';
import type { AppEnv } from '../api/context.js';
import { beginOidcSignIn, finishOidcSignIn, OIDC_CALLBACK_PATH, type OidcOutcome } from './oidc.js';
import { Page } from './layout.js';
import type { ConsoleEnv } from './env.js';
import { API_TOKEN_SUBJECT, endSession, insideConsole, readViewer, sameOrigin, startSession } from './session.js';

// The web console: server-rendered pages (Hono JSX) on the API's port, read from the same phase
// modules and read models the API uses. Each page is a small Hono app under `pages/`; this file
// holds sign-in, the guard and the static assets.

const require = createRequire(import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  // The UMD build is not in chart.js's exports map; it sits beside the CommonJS entry.
  'chart.js': { file: join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), type: 'text/javascript; charset=utf-8' },
  'console.js': { file: join(import.meta.dirname, 'assets', 'console.js'), type: 'text/javascript; charset=utf-8' },
  'console.css': { file: join(import.meta.dirname, 'assets', 'console.css'), type: 'text/css; charset=utf-8' },
};
const assetCache = new Map<string, Buffer>();

const SignIn = ({ error, next, name, sso }: { error?: string; next?: string; name?: string; sso?: string | undefined }) => (
  <Page title="Sign in">
    <div class="signin panel">
      {error ? <p class="error" role="alert">{error}</p> : null}
      {sso ? (
        <>
          <a class="button sso" href={`/console/sign-in/oidc?next=${encodeURIComponent(next ?? '/console')}`}>
            Sign in with {sso}
          </a>
          <p class="muted">or with a local account</p>
        </>
      ) : null}
      <form method="post" action="/console/sign-in">
        <label>
          Name or e-mail
          <input name="name" autocomplete="username" value={name ?? ''} autofocus />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" />
        </label>
        <p class="muted">or</p>
        <label>
          API token
          <input type="password" name="token" autocomplete="off" />
        </label>
        <input type="hidden" name="next" value={next ?? '/console'} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">A local account's name and password, or an API token: yours, or the platform's (CTEM_API_TOKEN).</p>
    </div>
  </Page>
);


const requireViewer = createMiddleware<ConsoleEnv>(async (c, next) => {
  const viewer = await readViewer(c);
  if (!viewer) {
    const url = new URL(c.req.url);
    return c.redirect(`/console/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !sameOrigin(c)) return c.text('cross-site form posts are refused', 403);
  c.set('viewer', viewer);
  // Deny by default, as on /api: the page or form must be in the table and the viewer's roles must grant it.
  const route = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1);
  if (route) {
    const permission = CONSOLE_ROUTE_PERMISSIONS[`${route.method} ${route.path}`];
    if (!permission || !can(viewer.principal, permission)) {
      // Owners and managers start at their tickets.
      if (route.path === '/console' && can(viewer.principal, 'tickets.read')) return c.redirect('/console/tickets', 303);
      return c.html(
        <Page title="Not allowed" viewer={viewer}>
          <p class="error" role="alert">{permission ? `This needs the permission ${permission}, which your roles (${viewer.principal.roles.join(', ')}) do not grant.` : 'This page is not open to any role.'}</p>
        </Page>,
        403,
      );
    }
  }
  await next();
});

/** After a sign-in from another site: continues to `next` as this site's own navigation. */
const Continue = ({ next }: { next: string }) => (
  <>
    {raw('<!doctype html>')}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content={`0;url=${next}`} />
        <title>Signed in · CTEM</title>
        <link rel="stylesheet" href="/console/assets/console.css" />
      </head>
      <body>
        <main class="signin panel">
          <p>
            Signed in. <a href={next}>Continue</a>
          </p>
        </main>
      </body>
    </html>
  </>
);

/** OIDC sign-ins and refusals in the audit trail; a stray callback (no flow cookie) or an unreachable provider presented no identity. */
async function recordOidcSignIn(c: Context<ConsoleEnv>, issuer: string, outcome: OidcOutcome): Promise<void> {
  const sql = c.get('deps').database.sql;
  const requestId = ((c as unknown as Context<AppEnv>).get('requestId') as string | undefined) ?? null;
  if (!outcome.ok) {
    if (outcome.refusal.reason === 'no-flow' || outcome.refusal.reason === 'provider-unavailable') return;
    await appendAudit(sql, { actor: REFUSED_CREDENTIALS, action: SIGN_IN_ACTIONS.oidc, target: outcome.refusal.email ?? null, outcome: 'denied', after: { method: 'oidc', issuer, reason: outcome.refusal.reason }, requestId, channel: 'console' });
    return;
  }
  const { identity, provisioned } = outcome.signIn;
  const actor = { id: identity.id, name: identity.name, kind: identity.kind };
  if (provisioned) {
    await appendAudit(sql, { actor, action: SIGN_IN_ACTIONS.provision, target: identity.name, outcome: 'allowed', after: { name: identity.name, email: identity.email, roles: identity.roles, issuer }, requestId, channel: 'console' });
  }
  await appendAudit(sql, { actor, action: SIGN_IN_ACTIONS.oidc, target: identity.email, outcome: 'allowed', after: { method: 'oidc', issuer }, requestId, channel: 'console' });
}

export function consoleRoutes(pages: Array<Hono<ConsoleEnv>>): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();
  app.get('/', (c) => c.redirect('/console', 302));
  app.get('/console/assets/:name', async (c) => {
    const asset = ASSETS[c.req.param('name')];
    if (!asset) return c.text('not found', 404);
    let body = assetCache.get(asset.file);
    if (!body) assetCache.set(asset.file, (body = await readFile(asset.file)));
    return c.body(new Uint8Array(body), 200, { 'content-type': asset.type, 'cache-control': 'public, max-age=3600' });
  });
  const sso = (c: Context<ConsoleEnv>) => c.get('deps').oidc?.name;
  app.get('/console/sign-in', (c) => c.html(<SignIn next={insideConsole(c.req.query('next'))} sso={sso(c)} />));
  app.get('/console/sign-in/oidc', async (c) => {
    const oidc = c.get('deps').oidc;
    const next = insideConsole(c.req.query('next'));
    if (!oidc) return c.html(<SignIn error="Single sign-on is not configured here (CTEM_OIDC_ISSUER)." next={next} />, 404);
    const begun = await beginOidcSignIn(c, oidc, next);
    if (!begun.ok) return c.html(<SignIn error={begun.refusal.message} next={next} sso={oidc.name} />, begun.refusal.status);
    return c.redirect(begun.url, 302);
  });
  app.get(OIDC_CALLBACK_PATH, async (c) => {
    const oidc = c.get('deps').oidc;
    if (!oidc) return c.html(<SignIn error="Single sign-on is not configured here (CTEM_OIDC_ISSUER)." />, 404);
    const outcome = await finishOidcSignIn(c, oidc);
    try {
      await recordOidcSignIn(c, oidc.issuer, outcome);
    } catch (err) {
      console.error(`audit: NOT RECORDED ${SIGN_IN_ACTIONS.oidc}: ${(err as Error).message}`);
      return c.html(<SignIn error="The sign-in could not be recorded in the audit trail, so it was not completed. Try again shortly." next={outcome.next} sso={oidc.name} />, 503);
    }
    if (!outcome.ok) return c.html(<SignIn error={outcome.refusal.message} next={outcome.next} sso={oidc.name} />, outcome.refusal.status);
    await startSession(c, outcome.signIn.identity.id);
    // A page, not a redirect: the browser arrived from the provider's site, and a redirect would still
    // count as that site's navigation, which a SameSite=Strict session cookie is not sent with.
    return c.html(<Continue next={outcome.next} />);
  });
  app.post('/console/sign-in', async (c) => {
    if (!sameOrigin(c)) return c.text('cross-site form posts are refused', 403);
    const form = await c.req.parseBody();
    const text = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
    const token = text('token').trim();
    const name = text('name').trim();
    const next = insideConsole(form.next);
    const refuse = (error: string) => c.html(<SignIn error={error} next={next} name={name} />, 401);
    const sql = c.get('deps').database.sql;
    if (token) {
      if (tokensMatch(token, c.get('deps').apiToken)) {
        await startSession(c, API_TOKEN_SUBJECT);
        return c.redirect(next, 303);
      }
      const resolved = await resolveToken(sql, token);
      if (!resolved.ok) return refuse(resolved.reason === 'unknown' ? "That token is not the platform's API token." : `That token is ${resolved.reason === 'disabled' ? "of a disabled identity" : resolved.reason}.`);
      await startSession(c, resolved.principal.id);
      return c.redirect(next, 303);
    }
    if (!name || !text('password')) return refuse('Enter your name and password, or an API token.');
    const identity = await authenticatePassword(sql, name, text('password'));
    // One answer for an unknown name, a wrong password and a disabled account: nothing to learn from it.
    if (!identity) return refuse('That name and password do not match an active account.');
    await startSession(c, identity.id);
    return c.redirect(next, 303);
  });
  app.post('/console/sign-out', (c) => {
    if (!sameOrigin(c)) return c.text('cross-site form posts are refused', 403);
    endSession(c);
    return c.redirect('/console/sign-in', 303);
  });
  app.use('/console', requireViewer);
  app.use('/console/*', requireViewer);
  app.use('/console/*', recordConsoleMutations as never);
  for (const page of pages) app.route('/', page);
  return app;
}
