import { Hono } from 'hono';
import type { Sql } from '../../db/client.js';
import type { FC } from 'hono/jsx';
import { getExposure, listExposures, type ExposureFilter, type ExposureListItem } from '../../db/read-models/exposures.js';
import { countLabel, CursorError } from '../../db/read-models/keyset.js';
import { getScope, listScopes } from '../../scoping/scopes.js';
import { attackPathOf, type AttackPath } from '../../validation/graph/read.js';
import { Chart, dateOnly, Empty, Pager, Section, TierBadge } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// Exposures: the prioritized list with its filters, and one exposure with the explanation of its
// tier (the heart of the product), its sources, its score history, its attack path and its ticket.
// Both read the same functions as GET /api/v1/exposures and /api/v1/exposures/{id}.

const TIERS = ['act', 'attend', 'track*', 'track'] as const;
const PAGE_SIZE = 50;
const FILTERS = ['tier', 'scope', 'owner', 'businessService', 'kev', 'internetFacing', 'q'] as const;
type Params = Partial<Record<(typeof FILTERS)[number] | 'after', string>>;

/** Turns the query string into a list filter, or says which field is wrong. */
async function filterOf(sql: Sql, p: Params): Promise<{ filter: ExposureFilter; error?: undefined } | { error: string; filter?: undefined }> {
  const f: ExposureFilter = { limit: PAGE_SIZE };
  if (p.tier) {
    if (!(TIERS as readonly string[]).includes(p.tier)) return { error: `tier: expected one of ${TIERS.join(', ')}` };
    f.tier = p.tier;
  }
  if (p.scope) {
    const scope = await getScope(sql, p.scope);
    if (!scope) return { error: `scope: no scope named ${p.scope}` };
    f.scope = scope.selector;
  }
  if (p.owner) f.owner = p.owner;
  if (p.businessService) f.businessService = p.businessService;
  for (const flag of ['kev', 'internetFacing'] as const) {
    if (!p[flag]) continue;
    if (p[flag] !== 'true' && p[flag] !== 'false') return { error: `${flag}: expected yes or no` };
    f[flag] = p[flag] === 'true';
  }
  if (p.q) f.q = p.q;
  if (p.after) f.after = p.after;
  return { filter: f };
}

const fix = (e: { component: string; version: string; fixedVersion: string | null }) => (
  <>
    <code>{e.component}@{e.version}</code>
    {e.fixedVersion ? <> → <code>{e.fixedVersion}</code></> : <span class="muted"> no fix known</span>}
  </>
);

const ExposureTable: FC<{ items: ExposureListItem[] }> = ({ items }) => (
  <table id="exposures">
    <thead>
      <tr><th>Tier</th><th>Issue</th><th>Component → fix</th><th>Asset</th><th>Owner</th><th>Due</th><th>Ticket</th></tr>
    </thead>
    <tbody>
      {items.map((e) => (
        <tr>
          <td><TierBadge tier={e.tier} /></td>
          <td class="nowrap"><a href={`/console/exposures/${e.id}`}>{e.issueId}</a>{e.kev ? <span class="muted"> KEV</span> : null}</td>
          <td>{fix(e)}</td>
          <td>{e.asset.name}</td>
          <td>{e.asset.owner ?? <span class="muted">none</span>}</td>
          <td class="nowrap">{dateOnly(e.dueAt)}</td>
          <td>{e.ticketKey ? <a href={`/console/tickets/${encodeURIComponent(e.ticketKey)}`}>{e.ticketKey}</a> : <span class="muted">–</span>}</td>
        </tr>
      ))}
    </tbody>
  </table>
);

const Select: FC<{ name: string; label: string; value: string | undefined; options: Array<[string, string]> }> = ({ name, label, value, options }) => (
  <label>
    {label}
    <select name={name}>
      {options.map(([v, text]) => <option value={v} selected={v === (value ?? '')}>{text}</option>)}
    </select>
  </label>
);

/** Factor names as people read them: `in_kev` -> In kev, with a few spelled out. */
const FACTOR_NAMES: Record<string, string> = { in_kev: 'In CISA KEV', epss: 'EPSS', cvss: 'CVSS', ssvc: 'SSVC', publicly_exposed: 'Publicly exposed' };
export const factorName = (f: string) => FACTOR_NAMES[f] ?? f.charAt(0).toUpperCase() + f.slice(1).replaceAll('_', ' ');
const valueText = (v: unknown) => (v === null || v === undefined ? '–' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : typeof v === 'object' ? JSON.stringify(v) : String(v));

const PathTable: FC<{ path: AttackPath }> = ({ path }) =>
  !path.reachable ? (
    <Empty>Not reachable from the internet in the exposure graph.</Empty>
  ) : (
    <>
      <p>
        {path.onPath ? 'On an attack path to a crown jewel' : 'Reachable from the internet, no crown jewel beyond'}: {path.hopsFromInternet} hop(s) from the internet
        {path.hopsToJewel !== null ? `, ${path.hopsToJewel} to the nearest jewel` : ''}; {path.pathsThrough} shortest path(s) through it; confidence {path.confidence ?? '–'}.
      </p>
      <table>
        <thead><tr><th>Step</th><th>Asset</th><th>How</th><th>Exposure</th><th>ATT&amp;CK</th><th>Confidence</th></tr></thead>
        <tbody>
          {path.steps.map((s, i) => (
            <tr>
              <td class="num">{i + 1}</td>
              <td>{s.name}</td>
              <td>{s.edgeKind}{s.ports?.length ? ` (${s.ports.join(', ')})` : ''} via {s.via}</td>
              <td>{s.findingId ? <a href={`/console/exposures/${s.findingId}`}>{s.issueId}</a> : '–'}</td>
              <td>{s.techniques.map((t) => t.id).join(', ') || '–'}</td>
              <td>{s.confidence}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );

export const exposurePages = new Hono<ConsoleEnv>()
  .get('/console/exposures', async (c) => {
    const sql = c.get('deps').database.sql;
    const params = Object.fromEntries([...FILTERS, 'after'].map((k) => [k, c.req.query(k)?.trim() || undefined])) as Params;
    const scopes = await listScopes(sql);
    const parsed = await filterOf(sql, params);
    let page: Awaited<ReturnType<typeof listExposures>> | undefined;
    let error = parsed.error;
    if (parsed.filter) {
      try {
        page = await listExposures(sql, parsed.filter);
      } catch (err) {
        if (!(err instanceof CursorError)) throw err;
        error = `after: ${err.message}`;
      }
    }
    const yesNo: Array<[string, string]> = [['', 'any'], ['true', 'yes'], ['false', 'no']];
    return c.html(
      <Page title="Exposures" active="/console/exposures" viewer={c.get('viewer')}>
        <form class="filters" method="get" action="/console/exposures">
          <Select name="tier" label="Tier" value={params.tier} options={[['', 'any'], ...TIERS.map((t): [string, string] => [t, t])]} />
          <Select name="scope" label="Scope" value={params.scope} options={[['', 'whole estate'], ...scopes.map((s): [string, string] => [s.name, s.name])]} />
          <label>Owner<input name="owner" value={params.owner ?? ''} /></label>
          <label>Business service<input name="businessService" value={params.businessService ?? ''} /></label>
          <Select name="kev" label="In KEV" value={params.kev} options={yesNo} />
          <Select name="internetFacing" label="Internet-facing" value={params.internetFacing} options={yesNo} />
          <label>Issue or component<input name="q" value={params.q ?? ''} placeholder="CVE-2021-44228 or openssl" /></label>
          <button type="submit">Filter</button>
        </form>
        {error ? <p class="error" role="alert">{error}</p> : null}
        {page ? (
          <Section title={`${countLabel(page.estimate)} open exposure${page.estimate.count === 1 ? '' : 's'}`}>
            {page.items.length ? <ExposureTable items={page.items} /> : <Empty>No open exposure matches these filters.</Empty>}
            <Pager path="/console/exposures" params={params} next={page.next} />
          </Section>
        ) : null}
      </Page>,
      error ? 400 : 200,
    );
  })
  .get('/console/exposures/:id', async (c) => {
    const sql = c.get('deps').database.sql;
    const id = Number(c.req.param('id'));
    const e = Number.isSafeInteger(id) && id > 0 ? await getExposure(sql, id) : undefined;
    if (!e) {
      return c.html(
        <Page title="Exposure not found" active="/console/exposures" viewer={c.get('viewer')}>
          <p class="error" role="alert">There is no exposure {c.req.param('id')}.</p>
          <a href="/console/exposures">All exposures</a>
        </Page>,
        404,
      );
    }
    let path: AttackPath | undefined;
    try {
      path = await attackPathOf(sql, e.id);
    } catch {
      path = undefined; // no exposure graph built yet
    }
    const history = e.history;
    return c.html(
      <Page title={`${e.issueId} on ${e.asset.name}`} active="/console/exposures" viewer={c.get('viewer')}>
        <section class="panel">
          <p><TierBadge tier={e.tier} /> score <strong>{e.score ?? '–'}</strong>, due <strong>{dateOnly(e.dueAt)}</strong>, {e.status}{e.title ? ` — ${e.title}` : ''}</p>
          <dl class="facts">
            {e.aliases.length ? <><dt>Also known as</dt><dd>{e.aliases.join(', ')}</dd></> : null}
            <dt>Component</dt><dd>{fix(e)}{e.location ? <span class="muted"> in {e.location}</span> : null}</dd>
            <dt>Asset</dt><dd>{e.asset.name} <span class="muted">({e.asset.key})</span></dd>
            <dt>Owner</dt><dd>{e.asset.owner ?? 'none (orphan)'}</dd>
            <dt>Business service</dt><dd>{e.asset.businessService ?? '–'}</dd>
            <dt>Criticality, environment</dt><dd>{e.asset.criticality ?? '–'}, {e.asset.environment ?? '–'}</dd>
            <dt>Publicly exposed</dt><dd>{e.publiclyExposed === null ? 'not scored' : e.publiclyExposed ? 'yes' : 'no'}</dd>
            <dt>CISA KEV, FIRST EPSS, CVSS</dt><dd>{e.kev ? 'in KEV' : 'not in KEV'}, {e.epss ?? '–'}, {e.cvssScore ?? '–'} ({e.severity})</dd>
            <dt>Seen</dt><dd>first {dateOnly(e.firstSeenAt)}, last {dateOnly(e.lastSeenAt)}</dd>
            <dt>Golden ticket</dt><dd>{e.ticketKey ? <a href={`/console/tickets/${encodeURIComponent(e.ticketKey)}`}>{e.ticketKey}</a> : 'none yet'}</dd>
          </dl>
        </section>
        <Section title="Why this tier" id="explanation">
          {e.explanation?.length ? (
            <table>
              <thead><tr><th>Factor</th><th>Value</th><th>Source</th><th>Effect</th></tr></thead>
              <tbody>
                {e.explanation.map((f) => (
                  <tr><td>{factorName(f.factor)}</td><td>{valueText(f.value)}</td><td class="muted">{f.source}</td><td>{f.effect}</td></tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>Not scored yet.</Empty>}
        </Section>
        <Section title="Sources" id="sources">
          <table>
            <thead><tr><th>Source</th><th>Reports it</th><th>Severity</th><th>CVSS</th><th>First seen</th><th>Last seen</th></tr></thead>
            <tbody>
              {e.sources.map((s) => (
                <tr><td>{s.source}</td><td>{s.present ? 'yes' : 'no longer'}</td><td>{s.severity ?? '–'}</td><td>{s.cvssScore ?? '–'}</td><td>{dateOnly(s.firstSeenAt)}</td><td>{dateOnly(s.lastSeenAt)}</td></tr>
              ))}
            </tbody>
          </table>
        </Section>
        <Section title="Score history" id="history">
          {history.length > 1 ? (
            <Chart label="Score over time" height={180} spec={{ type: 'line', labels: history.map((h) => dateOnly(h.at)), datasets: [{ label: 'score', data: history.map((h) => h.score) }] }} />
          ) : null}
          {history.length ? (
            <table>
              <thead><tr><th>When</th><th>Tier</th><th>Score</th><th>Due</th><th>Policy</th><th>Why</th></tr></thead>
              <tbody>
                {history.map((h) => (
                  <tr><td>{h.at.slice(0, 16).replace('T', ' ')}</td><td><TierBadge tier={h.tier} /></td><td class="num">{h.score}</td><td>{dateOnly(h.dueAt)}</td><td>{h.policyVersion}</td><td>{h.reason}</td></tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>No score recorded yet.</Empty>}
        </Section>
        <Section title="Attack path" id="path">{path ? <PathTable path={path} /> : <Empty>No exposure graph yet.</Empty>}</Section>
      </Page>,
    );
  });
