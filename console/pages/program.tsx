import { Hono } from 'hono';
import { listSources } from '../../discovery/store/sources.js';
import { backtest, BacktestError, laterKevVersion } from '../../prioritization/backtest.js';
import { listFeedVersions } from '../../prioritization/feeds/store.js';
import { activePolicy, getPolicy, listPolicies } from '../../prioritization/policy-store.js';
import { shadowScore } from '../../prioritization/scoring/rescore.js';
import { listScopes } from '../../scoping/scopes.js';
import { listSchedules, nextRuns } from '../../platform/schedules.js';
import { Empty, percent, Section } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// The program: what is in scope, what runs when (sources and every Temporal Schedule), which feed
// versions are active and what their checks said, and the policies. A shadow policy's diff and its
// backtest score the whole estate, so they are computed when asked for, on their own page.

const time = (iso: string | Date | null | undefined) => (iso ? (iso instanceof Date ? iso.toISOString() : iso).slice(0, 16).replace('T', ' ') : '–');
const FEED_NAMES: Record<string, string> = { epss: 'FIRST EPSS', kev: 'CISA KEV', cve: 'CVE records' };

export const programPages = new Hono<ConsoleEnv>()
  .get('/console/program', async (c) => {
    const deps = c.get('deps');
    const sql = deps.database.sql;
    await activePolicy(sql); // seeds the shipped policies on a fresh database, as the API does
    const [scopes, sources, feeds, policies, schedules] = await Promise.all([
      listScopes(sql),
      listSources(deps.database.db),
      listFeedVersions(sql),
      listPolicies(sql),
      listSchedules(deps.temporal.client),
    ]);
    const sourceRuns = await Promise.all(sources.map((s) => nextRuns(deps.temporal.client, s.name)));
    // The active version of each feed and the newest others (staged, rejected, retired) beside it.
    const shownFeeds = feeds.filter((f, i) => f.status === 'active' || feeds.findIndex((g) => g.kind === f.kind && g.status !== 'active') === i);
    return c.html(
      <Page title="Program" active="/console/program" viewer={c.get('viewer')}>
        <Section title="Scopes" id="scopes">
          {scopes.length ? (
            <table>
              <thead><tr><th>Scope</th><th>Selector</th><th>Description</th><th></th></tr></thead>
              <tbody>
                {scopes.map((s) => (
                  <tr>
                    <td>{s.name}</td>
                    <td><code>{Object.entries(s.selector).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`).join('; ') || 'everything'}</code></td>
                    <td>{s.description ?? ''}</td>
                    <td><a href={`/console/exposures?scope=${encodeURIComponent(s.name)}`}>exposures</a></td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>No scopes saved (PUT /api/v1/scopes/&#123;name&#125;).</Empty>}
        </Section>
        <Section title="Discovery sources" id="sources">
          {sources.length ? (
            <table>
              <thead><tr><th>Source</th><th>Kind</th><th>Schedule</th><th>Next runs</th></tr></thead>
              <tbody>
                {sources.map((s, i) => (
                  <tr><td>{s.name}</td><td>{s.kind}</td><td><code>{s.schedule ?? 'on demand'}</code></td><td>{sourceRuns[i]!.map(time).join(', ') || '–'}</td></tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>No pulled sources; reports arrive by upload (POST /api/v1/scans).</Empty>}
        </Section>
        <Section title="What runs when" id="schedules">
          {schedules.length ? (
            <table>
              <thead><tr><th>Schedule</th><th>Starts</th><th>Next runs</th><th>Last run</th></tr></thead>
              <tbody>
                {schedules.map((s) => (
                  <tr><td>{s.id}</td><td>{s.workflowType ?? '–'}{s.paused ? ' (paused)' : ''}</td><td>{s.nextRuns.map(time).join(', ') || '–'}</td><td>{time(s.lastRun)}</td></tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>No Temporal Schedules in this namespace.</Empty>}
        </Section>
        <Section title="Threat-intel feeds" id="feeds">
          {shownFeeds.length ? (
            <table>
              <thead><tr><th>Feed</th><th>Version</th><th>Status</th><th class="num">Rows</th><th>Published</th><th>Activated</th><th>Checks</th></tr></thead>
              <tbody>
                {shownFeeds.map((f) => (
                  <tr>
                    <td>{FEED_NAMES[f.kind] ?? f.kind}</td>
                    <td class="nowrap"><code>{f.version}</code></td>
                    <td>{f.status}</td>
                    <td class="num">{f.rows.toLocaleString('en')}</td>
                    <td>{time(f.publishedAt)}</td>
                    <td>{time(f.activatedAt)}</td>
                    <td>
                      <ul class="checks">
                        {f.validation.map((v) => <li class={v.ok ? undefined : 'failed'}>{v.ok ? '✓' : v.overridden ? '⚠' : '✗'} {v.check}: {v.detail}</li>)}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>No feed imported yet.</Empty>}
          <p class="muted">FIRST EPSS, CISA KEV, CVE records (CVE Program, CISA Vulnrichment).</p>
        </Section>
        <Section title="Prioritization policies" id="policies">
          <table>
            <thead><tr><th>Version</th><th>Name</th><th>Status</th><th>Saved</th><th>Activated</th><th></th></tr></thead>
            <tbody>
              {policies.map((p) => (
                <tr>
                  <td class="nowrap"><code>{p.version}</code></td>
                  <td>{p.name}</td>
                  <td>{p.status}</td>
                  <td>{time(p.createdAt)}</td>
                  <td>{time(p.activatedAt)}</td>
                  <td>{p.status === 'active' ? '' : <a href={`/console/program/policies/${encodeURIComponent(p.version)}/shadow`}>shadow diff and backtest</a>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </Page>,
    );
  })
  .get('/console/program/policies/:version/shadow', async (c) => {
    const sql = c.get('deps').database.sql;
    const version = c.req.param('version');
    const laterKev = c.req.query('laterKev')?.trim() || undefined;
    const policy = await getPolicy(sql, version);
    if (!policy) {
      return c.html(
        <Page title="Policy not found" active="/console/program" viewer={c.get('viewer')}>
          <p class="error" role="alert">There is no policy version {version}.</p>
        </Page>,
        404,
      );
    }
    const diff = await shadowScore(sql, policy, { all: true }, {});
    const kevVersions = (await listFeedVersions(sql, { kind: 'kev' })).filter((v) => v.stored);
    let result: Awaited<ReturnType<typeof backtest>> | undefined;
    let error: string | undefined;
    if (laterKev) {
      try {
        const active = await activePolicy(sql);
        result = await backtest(sql, { policies: active.version === version ? [policy] : [active, policy], laterKev: await laterKevVersion(sql, laterKev), universe: 'estate' });
      } catch (err) {
        if (!(err instanceof BacktestError)) throw err;
        error = `laterKev: ${err.message}`;
      }
    }
    return c.html(
      <Page title={`Policy ${version} in shadow`} active="/console/program" viewer={c.get('viewer')}>
        <Section title="Against the live tiers" id="shadow">
          <dl class="facts">
            <dt>Scored</dt><dd>{diff.scored.toLocaleString('en')} findings with feeds {Object.entries(diff.feeds).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ')}</dd>
            <dt>Unchanged</dt><dd>{diff.unchanged.toLocaleString('en')}</dd>
            <dt>Would move up</dt><dd>{diff.movedUp.toLocaleString('en')}</dd>
            <dt>Would move down</dt><dd>{diff.movedDown.toLocaleString('en')}</dd>
            <dt>First tier</dt><dd>{diff.unscored.toLocaleString('en')}</dd>
            <dt>Due date changes</dt><dd>{diff.dueChanged.toLocaleString('en')}</dd>
          </dl>
          {Object.keys(diff.transitions).length ? (
            <table>
              <thead><tr><th>Move</th><th class="num">Findings</th></tr></thead>
              <tbody>{Object.entries(diff.transitions).map(([k, n]) => <tr><td>{k}</td><td class="num">{n}</td></tr>)}</tbody>
            </table>
          ) : null}
          {diff.samples.length ? (
            <table>
              <thead><tr><th>Finding</th><th>Asset</th><th>From</th><th>To</th><th>Why</th></tr></thead>
              <tbody>
                {diff.samples.map((s) => (
                  <tr><td><a href={`/console/exposures/${s.findingId}`}>{s.issueId}</a></td><td>{s.asset}</td><td>{s.from ?? 'unscored'}</td><td>{s.to}</td><td>{s.reason}</td></tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </Section>
        <Section title="Backtest against a later CISA KEV" id="backtest">
          <form class="filters" method="get">
            <label>
              Later KEV version
              <select name="laterKev">
                {kevVersions.map((v) => <option value={v.version} selected={v.version === laterKev}>{v.version} ({v.status})</option>)}
              </select>
            </label>
            <button type="submit">Backtest</button>
          </form>
          {error ? <p class="error" role="alert">{error}</p> : null}
          {result ? (
            <table>
              <thead><tr><th>Policy or baseline</th><th class="num">Flagged</th><th class="num">Effort</th><th class="num">Caught</th><th class="num">Coverage</th><th class="num">Efficiency</th></tr></thead>
              <tbody>
                {result.rows.map((r) => (
                  <tr><td>{r.name}</td><td class="num">{r.flagged}</td><td class="num">{percent(r.effort, 1)}</td><td class="num">{r.caught}</td><td class="num">{percent(r.coverage, 1)}</td><td class="num">{percent(r.efficiency, 1)}</td></tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </Section>
      </Page>,
    );
  });
