import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import { createMiddleware } from 'hono/factory';
import { tokensMatch } from '../api/auth.js';
import { recordConsoleMutations } from '../api/audit.js';
import { Page } from './layout.js';
import type { ConsoleEnv } from './env.js';
import { endSession, readViewer, sameOrigin, startSession } from './session.js';

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

const SignIn = ({ error, next }: { error?: string; next?: string }) => (
  <Page title="Sign in">
    <div class="signin panel">
      {error ? <p class="error" role="alert">{error}</p> : null}
      <form method="post" action="/console/sign-in">
        <label>
          API token
          <input type="password" name="token" autocomplete="current-password" required autofocus />
        </label>
        <input type="hidden" name="next" value={next ?? '/console'} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The platform's API token (CTEM_API_TOKEN) signs you in until identities and roles are configured.</p>
    </div>
  </Page>
);

/** Only paths inside the console are followed after sign-in (no open redirect). */
const insideConsole = (next: unknown) => (typeof next === 'string' && /^\/console(\/[\w\-./?=&%*:]*)?$/.test(next) && !next.startsWith('//') ? next : '/console');

const requireViewer = createMiddleware<ConsoleEnv>(async (c, next) => {
  const viewer = await readViewer(c);
  if (!viewer) {
    const url = new URL(c.req.url);
    return c.redirect(`/console/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !sameOrigin(c)) return c.text('cross-site form posts are refused', 403);
  c.set('viewer', viewer);
  await next();
});

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
  app.get('/console/sign-in', (c) => c.html(<SignIn next={insideConsole(c.req.query('next'))} />));
  app.post('/console/sign-in', async (c) => {
    if (!sameOrigin(c)) return c.text('cross-site form posts are refused', 403);
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token : '';
    if (!token || !tokensMatch(token, c.get('deps').apiToken)) {
      return c.html(<SignIn error="That token is not the platform's API token." next={insideConsole(form.next)} />, 401);
    }
    await startSession(c, 'api-token');
    return c.redirect(insideConsole(form.next), 303);
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
