import { raw } from 'hono/html';
import type { Child, FC } from 'hono/jsx';
import { mayOpen, type Viewer } from './session.js';

// The frame of every console page: navigation, the signed-in viewer, the page's heading.

export const NAV = [
  { path: '/console', label: 'Overview' },
  { path: '/console/exposures', label: 'Exposures' },
  { path: '/console/tickets', label: 'Tickets' },
  { path: '/console/executive', label: 'Executive' },
  { path: '/console/hunting', label: 'Hunting' },
  { path: '/console/program', label: 'Program' },
  { path: '/console/audit', label: 'Audit' },
  { path: '/console/api', label: 'API' },
  { path: '/console/identities', label: 'Identities' },
] as const;

export type NavPath = (typeof NAV)[number]['path'];

export const Page: FC<{ title: string; active?: NavPath; viewer?: Viewer; children?: Child }> = ({ title, active, viewer, children }) => (
  <>
    {raw('<!doctype html>')}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · CTEM`}</title>
        <link rel="stylesheet" href="/console/assets/console.css" />
        <script src="/console/assets/chart.js" defer></script>
        <script src="/console/assets/console.js" defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/console">CTEM</a>
          {viewer ? (
            <nav>
              {NAV.filter((n) => mayOpen(viewer, n.path)).map((n) => (
                <a href={n.path} class={n.path === active ? 'active' : undefined} aria-current={n.path === active ? 'page' : undefined}>
                  {n.label}
                </a>
              ))}
            </nav>
          ) : null}
          {viewer ? (
            <form method="post" action="/console/sign-out" class="signout">
              <span class="who">{viewer.subject}</span>
              <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  </>
);
