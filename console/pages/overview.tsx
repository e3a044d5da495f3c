import { Hono, type Context } from 'hono';
import type { Child, FC } from 'hono/jsx';
import type { Sql } from '../../db/client.js';
import { DEFAULT_RISK_APPETITE } from '../../metrics/executive.js';
import { dayOf, takeSnapshot } from '../../metrics/snapshot.js';
import { overviewView, resolveViewScope, type OverviewView, type ViewScope } from '../../metrics/views.js';
import { listScopes } from '../../scoping/scopes.js';
import { Chart, Empty, Figure, Section, TierBadge, percent } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page, type NavPath } from '../layout.js';
import { count, instant } from './metrics-format.js';

// The overview: the exploitable backlog and its trend against the risk appetite, the noise the
// policy cut, SLA attainment, escalations and the newest KEV hits. Figures come from the latest
// daily snapshot (metrics/); escalations and KEV hits are small live reads.

/** Where the snapshot form comes back to: a metrics page, with its scope. */
const backTo = (path: string, scope: string) => (scope === '*' ? path : `${path}?scope=${encodeURIComponent(scope)}`);

export const SnapshotNote: FC<{ view: { scope: string; snapshot: { day: string; takenAt: string } | null }; live?: string; path: string }> = ({ view, live, path }) =>
  view.snapshot ? (
    <div class="muted" id="snapshot-note" style="display:flex;gap:.75rem;align-items:center;margin-bottom:1rem">
      <span>Figures from the daily snapshot of {view.snapshot.day}, taken {instant(view.snapshot.takenAt)}.{live ? ` ${live}` : ''}</span>
      <form method="post" action="/console/metrics/snapshot" style="margin:0">
        <input type="hidden" name="back" value={backTo(path, view.scope)} />
        <button type="submit">Take a snapshot now</button>
      </form>
    </div>
  ) : (
    <div class="notice" id="no-snapshot" style="display:flex;gap:.75rem;align-items:center">
      <span>No snapshot yet: the first is taken at start-up, then one every day (CTEM_METRICS_SCHEDULE).</span>
      <form method="post" action="/console/metrics/snapshot" style="margin:0">
        <input type="hidden" name="back" value={backTo(path, view.scope)} />
        <button type="submit">Take the first snapshot now</button>
      </form>
    </div>
  );

/** Which scope the figures are for: the estate or a saved scope (each has its own daily snapshot). */
export const ScopePicker: FC<{ path: string; scope: string; scopes: string[] }> = ({ path, scope, scopes }) =>
  scopes.length ? (
    <form class="filters" method="get" action={path} id="scope-picker">
      <label>
        Scope
        <select name="scope">
          <option value="*" selected={scope === '*'}>Whole estate</option>
          {scopes.map((s) => (
            <option value={s} selected={s === scope}>{s}</option>
          ))}
        </select>
      </label>
      <button type="submit">Show</button>
    </form>
  ) : null;

/** An unknown scope in the address: said plainly, with the way back. */
export const UnknownScope: FC<{ name: string; path: string }> = ({ name, path }) => (
  <p class="error" role="alert">
    There is no saved scope named “{name}”. <a href={path}>Show the whole estate</a>
  </p>
);

export const AppetiteNote: FC<{ appetite: OverviewView['appetite'] }> = ({ appetite }) => {
  if (appetite.status === 'unknown') return null;
  const over = appetite.status === 'above';
  return (
    <p class={over ? 'error' : 'notice'} id="appetite">
      {over
        ? `The exploitable backlog (${count(appetite.current)}) is ${count(-appetite.headroom!)} above the stated risk appetite of ${count(appetite.appetite)} open act + attend exposures.`
        : `The exploitable backlog (${count(appetite.current)}) is within the stated risk appetite of ${count(appetite.appetite)} open act + attend exposures (${count(appetite.headroom)} to spare).`}
      {appetite.daysRecorded > 1 ? ` Above it on ${appetite.daysAbove} of the last ${appetite.daysRecorded} days recorded.` : ''}
    </p>
  );
};

const OverviewPage: FC<{ view: OverviewView }> = ({ view }) => {
  const b = view.backlog;
  const noise = view.noise;
  const escalated = view.escalations.reduce((n, l) => n + l.tickets, 0);
  return (
    <>
      <SnapshotNote view={view} path="/console" live="Escalations and KEV hits are live." />
      {b ? (
        <div class="figures">
          <Figure id="fig-backlog" label="Exploitable backlog" value={count(b.actAttend)} note={`${count(b.act)} act · ${count(b.attend)} attend`} />
          <Figure id="fig-kev" label="Known exploited (KEV)" value={count(b.kev)} note={`${count(b.kevActAttend)} of them act/attend`} />
          <Figure id="fig-internet" label="Internet-facing, exploitable" value={count(b.internetFacing)} note="act/attend on internet-facing assets" />
          <Figure
            id="fig-noise"
            label="Noise cut"
            value={percent(noise?.reduction ?? null)}
            note={noise ? `${count(noise.criticalHighByCvss - noise.criticalHighActAttend)} of ${count(noise.criticalHighByCvss)} critical/high set aside` : undefined}
          />
          <Figure
            id="fig-sla"
            label="Fixed within SLA"
            value={percent(view.sla?.fixed.share ?? null)}
            note={view.sla?.fixed.due ? `${count(view.sla.fixed.met)} of ${count(view.sla.fixed.due)} tickets due · ${count(view.sla.overdue)} overdue` : 'no ticket has reached its due date yet'}
          />
          <Figure id="fig-escalated" label="Escalated now" value={count(escalated)} note="open tickets up the management chain" />
        </div>
      ) : null}
      <AppetiteNote appetite={view.appetite} />
      <Section title="Exploitable backlog, last 90 days" id="trend">
        {view.trend.length > 1 ? (
          <Chart
            label="Open act + attend, KEV and internet-facing exploitable exposures per day, against the risk appetite"
            spec={{
              type: 'line',
              labels: view.trend.map((p) => p.day),
              datasets: [
                { label: 'Act + attend', data: view.trend.map((p) => p.actAttend), color: '#c62828' },
                { label: 'In KEV', data: view.trend.map((p) => p.kev), color: '#6a1b9a' },
                { label: 'Internet-facing, act/attend', data: view.trend.map((p) => p.internetFacing), color: '#1565c0' },
              ],
              threshold: { label: `Risk appetite (${view.appetite.appetite})`, value: view.appetite.appetite },
            }}
            height={260}
          />
        ) : (
          <Empty>
            {view.trend.length ? `One day recorded so far (${view.trend[0]!.day}): the trend draws from the second daily snapshot.` : 'No trend yet: each daily snapshot adds a point.'}
          </Empty>
        )}
      </Section>
      <div class="grid">
        <Section title="Open escalations by level" id="escalations">
          {view.escalations.length ? (
            <table>
              <thead>
                <tr><th>Level</th><th class="num">Tickets</th></tr>
              </thead>
              <tbody>
                {view.escalations.map((l) => (
                  <tr>
                    <td>{l.level === 1 ? 'Level 1 (owner’s manager)' : `Level ${l.level}`}</td>
                    <td class="num">{count(l.tickets)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No open ticket is escalated: every owner is within the acknowledgement and fix deadlines.</Empty>
          )}
        </Section>
        <Section title="Newest KEV hits in the estate" id="kev-hits">
          {view.newestKevHits.length ? (
            <table>
              <thead>
                <tr><th>CVE</th><th>Added to KEV</th><th>Asset</th><th>Tier</th><th>Owner</th></tr>
              </thead>
              <tbody>
                {view.newestKevHits.map((h) => (
                  <tr>
                    <td>
                      <a href={`/console/exposures/${h.findingId}`}>{h.cve}</a>
                      {h.knownRansomware ? <span class="muted"> · ransomware</span> : null}
                    </td>
                    <td>{h.kevDateAdded ?? '–'}</td>
                    <td>{h.assetName}{h.internetFacing ? <span class="muted"> · internet-facing</span> : null}</td>
                    <td><TierBadge tier={h.tier} /></td>
                    <td>{h.owner ?? <span class="muted">no owner</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No open finding is in CISA KEV. Import the KEV feed (CTEM_KEV_FILE or CTEM_KEV_URL) if it is not active yet.</Empty>
          )}
        </Section>
      </div>
      {noise ? (
        <Section title="Noise cut by the policy" id="noise">
          <dl class="facts">
            <dt>Open findings</dt><dd>{count(noise.openFindings)}</dd>
            <dt>Critical or high by CVSS</dt><dd>{count(noise.criticalHighByCvss)}</dd>
            <dt>Of those, act or attend</dt><dd>{count(noise.criticalHighActAttend)} ({percent(noise.reduction)} set aside)</dd>
            <dt>Exploited and exposed, missed</dt><dd>{count(noise.exploitedExposedMissed)} of {count(noise.exploitedExposed)} (0 is the goal)</dd>
          </dl>
        </Section>
      ) : null}
    </>
  );
};

/**
 * A metrics page of one scope (`?scope=`, the estate by default): the scope picker above what
 * `render` draws, and 404 naming the scope when nobody saved one by that name.
 */
export async function scopedMetricsPage(
  c: Context<ConsoleEnv>,
  page: { title: string; path: NavPath },
  render: (scope: ViewScope, sql: Sql, riskAppetite: number) => Promise<Child>,
) {
  const deps = c.get('deps');
  const name = c.req.query('scope');
  const [scope, scopes] = await Promise.all([resolveViewScope(deps.database.sql, name), listScopes(deps.database.sql)]);
  if (!scope) {
    return c.html(
      <Page title={page.title} active={page.path} viewer={c.get('viewer')}>
        <UnknownScope name={name!} path={page.path} />
      </Page>,
      404,
    );
  }
  const body = await render(scope, deps.database.sql, deps.riskAppetite ?? DEFAULT_RISK_APPETITE);
  return c.html(
    <Page title={scope.name === '*' ? page.title : `${page.title} · ${scope.name}`} active={page.path} viewer={c.get('viewer')}>
      <ScopePicker path={page.path} scope={scope.name} scopes={scopes.map((s) => s.name)} />
      {body}
    </Page>,
  );
}

export const overviewPage = new Hono<ConsoleEnv>();

overviewPage.get('/console', (c) =>
  scopedMetricsPage(c, { title: 'Overview', path: '/console' }, async (scope, sql, appetite) => (
    <OverviewPage view={await overviewView(sql, { scope, riskAppetite: appetite })} />
  )),
);

/** Only the metric pages, with a scope name, are followed after a snapshot (no open redirect). */
const metricsPage = (back: unknown) => (typeof back === 'string' && /^\/console(\/executive)?(\?scope=[\w.%*-]+)?$/.test(back) ? back : '/console');

// Today's snapshot on demand (the same as POST /api/v1/metrics/snapshots), then back to the page.
overviewPage.post('/console/metrics/snapshot', async (c) => {
  await takeSnapshot(c.get('deps').database.sql, dayOf(new Date()));
  const form = await c.req.parseBody();
  return c.redirect(metricsPage(form.back), 303);
});
