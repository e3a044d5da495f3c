import { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { listExposures } from '../../db/read-models/exposures.js';
import { startHypothesisCampaign } from '../../scoping/hypothesis-campaigns.js';
import {
  describeQuery,
  getHypothesis,
  hypothesisCampaigns,
  HypothesisInvalidError,
  hypothesisTrend,
  listHypotheses,
  runHypothesis,
  saveHypothesis,
  type FieldError,
  type HypothesisCampaign,
  type HypothesisQuery,
  type HypothesisResult,
  type HypothesisSummary,
} from '../../scoping/hypotheses.js';
import { Chart, Empty, Figure, Section, TierBadge, dateOnly } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// The hunting workbench: saved hypotheses with their result now and a trend, a form to save one
// (conditions as fields), and per hypothesis its residual exposure over time, what it matches, and
// the campaigns started from it with what each removed. Reads and writes through scoping/hypotheses.ts.

const TIERS = ['act', 'attend', 'track*', 'track'] as const;
const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
const KINDS = ['host', 'container_image', 'container', 'repository', 'filesystem'] as const;
const TREND_DAYS = 90;

/** What the form's fields hold, as typed (kept when the form comes back with errors). */
type FormValues = Record<string, string | string[]>;

const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
const list = (v: string | string[] | undefined) => (Array.isArray(v) ? v : v ? [v] : []);
const words = (v: string | string[] | undefined) =>
  list(v).flatMap((s) => s.split(/[,\n]/)).map((s) => s.trim()).filter((s) => s !== '');
const tri = (v: string | string[] | undefined) => (v === 'yes' ? true : v === 'no' ? false : undefined);

/** The form's fields as a hypothesis query: empty fields say nothing. */
export function queryFromForm(f: FormValues): HypothesisQuery {
  const q: Record<string, unknown> = {};
  const scope: Record<string, unknown> = {};
  const set = (target: Record<string, unknown>, key: string, value: unknown) => {
    if (value !== undefined && !(Array.isArray(value) && value.length === 0) && value !== '') target[key] = value;
  };
  set(q, 'issueIds', words(f.issueIds));
  set(q, 'components', words(f.components));
  set(q, 'versions', words(f.versions));
  set(q, 'tiers', list(f.tiers));
  set(q, 'severities', list(f.severities));
  set(q, 'kev', tri(f.kev));
  set(q, 'publiclyExposed', tri(f.publiclyExposed));
  set(q, 'runtime', typeof f.runtime === 'string' && f.runtime !== 'any' ? f.runtime : undefined);
  set(q, 'vendorStatuses', words(f.vendorStatuses));
  set(scope, 'assetKinds', list(f.assetKinds));
  set(scope, 'internetFacing', tri(f.internetFacing));
  set(scope, 'environments', words(f.environments));
  set(scope, 'businessServices', words(f.businessServices));
  set(scope, 'owners', words(f.owners));
  set(scope, 'assetNamePrefix', typeof f.assetNamePrefix === 'string' ? f.assetNamePrefix.trim() : undefined);
  if (Object.keys(scope).length) q.scope = scope;
  return q as HypothesisQuery;
}

const LABELS: Record<string, string> = {
  name: 'Name', statement: 'Statement', 'query.issueIds': 'Issue ids', 'query.components': 'Component patterns', 'query.versions': 'Version patterns', 'query.tiers': 'Tiers',
  'query.severities': 'Severities', 'query.kev': 'CISA KEV', 'query.publiclyExposed': 'Publicly exposed', 'query.runtime': 'Runtime',
  'query.vendorStatuses': 'Vendor statuses', 'query.scope.assetKinds': 'Asset kinds', 'query.scope.internetFacing': 'Internet-facing',
  'query.scope.environments': 'Environments', 'query.scope.businessServices': 'Business services', 'query.scope.owners': 'Owners',
  'query.scope.assetNamePrefix': 'Asset name prefix',
};
/** `query.issueIds.1` -> `Issue ids (2nd value)`: the field as the form names it. */
function fieldLabel(field: string): string {
  const m = /^(.*?)(?:\.(\d+))?$/.exec(field)!;
  const label = LABELS[m[1]!] ?? field;
  return m[2] !== undefined ? `${label} (value ${Number(m[2]) + 1})` : label;
}

const Sparkline: FC<{ values: number[] }> = ({ values }) => {
  if (values.length < 2) return <span class="muted">{values.length ? String(values[0]) : '–'}</span>;
  const w = 110, h = 26, max = Math.max(...values, 1);
  const points = values.map((v, i) => `${((i / (values.length - 1)) * (w - 4) + 2).toFixed(1)},${(h - 3 - (v / max) * (h - 6)).toFixed(1)}`).join(' ');
  return (
    <svg class="sparkline" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`urgent over the last ${values.length} results: ${values.join(', ')}`}>
      <polyline points={points} fill="none" stroke="#b71c1c" stroke-width="2" />
    </svg>
  );
};

const Check: FC<{ name: string; value: string; values: FormValues; label?: string }> = ({ name, value, values, label }) => (
  <label class="check">
    <input type="checkbox" name={name} value={value} checked={list(values[name]).includes(value)} /> {label ?? value}
  </label>
);

const Choice: FC<{ name: string; label: string; values: FormValues; options: Array<[string, string]> }> = ({ name, label, values, options }) => (
  <label>
    {label}
    <select name={name}>
      {options.map(([v, text]) => <option value={v} selected={values[name] === v}>{text}</option>)}
    </select>
  </label>
);

const Text: FC<{ name: string; label: string; values: FormValues; placeholder?: string; required?: boolean; wide?: boolean }> = ({ name, label, values, placeholder, required, wide }) => (
  <label class={wide ? 'wide' : undefined}>
    {label}
    <input type="text" name={name} value={typeof values[name] === 'string' ? (values[name] as string) : ''} placeholder={placeholder} required={required} />
  </label>
);

const SaveForm: FC<{ values: FormValues; errors?: FieldError[] }> = ({ values, errors }) => (
  <Section title="Save a hypothesis" id="save">
    {errors?.length ? (
      <div class="error" role="alert">
        <strong>The hypothesis was not saved:</strong>
        <ul>{errors.map((e) => <li>{`${fieldLabel(e.field)}: ${e.message}`}</li>)}</ul>
      </div>
    ) : null}
    <form method="post" action="/console/hunting" class="hypothesis-form">
      <fieldset>
        <legend>The question</legend>
        <Text name="name" label="Name" values={values} placeholder="log4shell-runtime-internet" required />
        <Text name="statement" label="Statement" values={values} placeholder="Log4Shell in runtime on internet-facing hosts" required wide />
      </fieldset>
      <fieldset>
        <legend>Exposures</legend>
        <Text name="issueIds" label="Issue ids (CVE or GHSA, comma-separated)" values={values} placeholder="CVE-2021-44228, CVE-2021-45046" wide />
        <Text name="components" label="Component patterns (* for any run of characters)" values={values} placeholder="linux-image-4.*" wide />
        <Text name="versions" label="Version patterns" values={values} placeholder="3.10.*" />
        <Choice name="kev" label="CISA KEV" values={values} options={[['any', 'any'], ['yes', 'in KEV'], ['no', 'not in KEV']]} />
        <Choice name="publiclyExposed" label="Publicly exposed (as the policy decided)" values={values} options={[['any', 'any'], ['yes', 'exposed'], ['no', 'not exposed']]} />
        <Choice name="runtime" label="Runtime (EDR)" values={values} options={[['any', 'any'], ['loaded', 'seen loaded'], ['not_loaded', 'covered, never seen loaded']]} />
        <Text name="vendorStatuses" label="Vendor statuses" values={values} placeholder="will_not_fix" />
        <div class="checks"><span>Tiers</span>{TIERS.map((t) => <Check name="tiers" value={t} values={values} />)}</div>
        <div class="checks"><span>Severities</span>{SEVERITIES.map((s) => <Check name="severities" value={s} values={values} />)}</div>
      </fieldset>
      <fieldset>
        <legend>Assets (a scope)</legend>
        <div class="checks"><span>Asset kinds</span>{KINDS.map((k) => <Check name="assetKinds" value={k} values={values} label={k.replace('_', ' ')} />)}</div>
        <Choice name="internetFacing" label="Internet-facing (the asset itself)" values={values} options={[['any', 'any'], ['yes', 'yes'], ['no', 'no']]} />
        <Text name="environments" label="Environments" values={values} placeholder="production" />
        <Text name="businessServices" label="Business services" values={values} />
        <Text name="owners" label="Owners" values={values} />
        <Text name="assetNamePrefix" label="Asset name prefix" values={values} />
      </fieldset>
      <button type="submit">Save hypothesis</button>
    </form>
  </Section>
);

const HuntingList: FC<{ items: HypothesisSummary[] }> = ({ items }) => (
  <Section title="Hypotheses" id="hypotheses">
    {items.length === 0 ? (
      <Empty>No hypothesis saved yet. Save one below, or see the examples in docs/hunting.md.</Empty>
    ) : (
      <table>
        <thead>
          <tr><th>Hypothesis</th><th class="num">Matched</th><th class="num">Urgent</th><th>Urgent over time</th><th>Last asked</th></tr>
        </thead>
        <tbody>
          {items.map((h) => (
            <tr>
              <td><a href={`/console/hunting/${encodeURIComponent(h.name)}`}>{h.name}</a><div class="muted">{h.statement}</div></td>
              <td class="num">{h.latest?.matched ?? '–'}</td>
              <td class="num">{h.latest?.urgent ?? '–'}</td>
              <td><Sparkline values={h.recentUrgent} /></td>
              <td>{h.latest ? `${when(h.latest.at)} (${h.latest.trigger})` : <span class="muted">not asked yet</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </Section>
);

function trendSpec(results: HypothesisResult[]) {
  return {
    type: 'line' as const,
    labels: results.map((r) => when(r.at)),
    datasets: [
      { label: 'Urgent (act + attend)', data: results.map((r) => r.urgent), color: '#b71c1c' },
      { label: 'Matched', data: results.map((r) => r.matched), color: '#1565c0' },
    ],
  };
}

const Campaigns: FC<{ items: HypothesisCampaign[] }> = ({ items }) =>
  items.length === 0 ? (
    <Empty>No campaign started from this hypothesis yet.</Empty>
  ) : (
    <table id="campaigns">
      <thead>
        <tr><th>Campaign</th><th>Status</th><th>Started</th><th class="num">Urgent before</th><th class="num">Urgent after</th><th class="num">Removed</th><th class="num">Closed</th><th class="num">Rescored out</th><th class="num">Urgent, no longer matching</th><th class="num">New urgent</th></tr>
      </thead>
      <tbody>
        {items.map((k) => (
          <tr>
            <td><code>{k.campaignId}</code></td>
            <td>{k.status ?? '–'}</td>
            <td>{k.startedAt ? when(k.startedAt) : when(k.before.at)}</td>
            <td class="num">{k.removal?.urgentBefore ?? k.before.urgent}</td>
            <td class="num">{k.after?.urgent ?? '–'}</td>
            <td class="num"><strong>{k.removal?.removed ?? '–'}</strong></td>
            <td class="num">{k.removal?.removedClosed ?? '–'}</td>
            <td class="num">{k.removal?.removedRescored ?? '–'}</td>
            <td class="num">{k.removal?.leftHypothesis ?? '–'}</td>
            <td class="num">{k.removal?.added ?? '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

export const huntingPage = new Hono<ConsoleEnv>();

huntingPage.get('/console/hunting', async (c) => {
  const items = await listHypotheses(c.get('deps').database.sql);
  return c.html(
    <Page title="Hunting" active="/console/hunting" viewer={c.get('viewer')}>
      <HuntingList items={items} />
      <SaveForm values={{}} />
    </Page>,
  );
});

huntingPage.post('/console/hunting', async (c) => {
  const values = (await c.req.parseBody({ all: true })) as unknown as FormValues;
  const name = typeof values.name === 'string' ? values.name.trim() : '';
  try {
    await saveHypothesis(c.get('deps').database.sql, {
      name,
      statement: typeof values.statement === 'string' ? values.statement : '',
      query: queryFromForm(values),
      createdBy: `console:${c.get('viewer').subject}`,
    });
  } catch (err) {
    if (!(err instanceof HypothesisInvalidError)) throw err;
    const items = await listHypotheses(c.get('deps').database.sql);
    return c.html(
      <Page title="Hunting" active="/console/hunting" viewer={c.get('viewer')}>
        <HuntingList items={items} />
        <SaveForm values={values} errors={err.errors} />
      </Page>,
      400,
    );
  }
  return c.redirect(`/console/hunting/${encodeURIComponent(name)}?saved=1`, 303);
});

huntingPage.get('/console/hunting/:name', async (c) => {
  const sql = c.get('deps').database.sql;
  const name = c.req.param('name');
  const [h] = await listHypotheses(sql, { name });
  if (!h) {
    return c.html(
      <Page title="Hunting" active="/console/hunting" viewer={c.get('viewer')}>
        <p class="error" role="alert">No hypothesis named {name}. <a href="/console/hunting">All hypotheses</a></p>
      </Page>,
      404,
    );
  }
  const now = new Date();
  const [trend, exposures, campaigns] = await Promise.all([
    hypothesisTrend(sql, name, new Date(now.getTime() - TREND_DAYS * 86_400_000), now),
    // The latest result says how many match; the page is the most urgent few.
    listExposures(sql, { hypothesis: h.query, limit: 25 }),
    hypothesisCampaigns(sql, name),
  ]);
  const latest = h.latest;
  const notice = c.req.query('saved') ? 'Saved. Run it now to record its first result.' : c.req.query('ran') ? 'Asked again; the result is recorded.'
    : c.req.query('campaign') ? `Campaign ${c.req.query('campaign')} started: it rescans, rescores and validates, then records what it removed.` : undefined;
  const path = `/console/hunting/${encodeURIComponent(name)}`;
  return c.html(
    <Page title={name} active="/console/hunting" viewer={c.get('viewer')}>
      {notice ? <p class="notice" role="status">{notice}</p> : null}
      <Section title="The hypothesis" id="statement">
        <p class="statement">{h.statement}</p>
        <dl class="facts">
          <dt>Asks for</dt><dd>{describeQuery(h.query).join('; ')}</dd>
          <dt>Saved by</dt><dd>{h.createdBy}, {dateOnly(h.createdAt)}{h.updatedAt !== h.createdAt ? `, changed ${dateOnly(h.updatedAt)}` : ''}</dd>
        </dl>
        <div class="actions">
          <form method="post" action={`${path}/run`}><button type="submit">Run now</button></form>
          <form method="post" action={`${path}/campaign`}><button type="submit" class="secondary">Start campaign</button></form>
        </div>
      </Section>
      <div class="figures" id="result">
        <Figure id="matched" label="Matched now" value={latest?.matched ?? null} note={latest ? `asked ${when(latest.at)} (${latest.trigger})` : 'not asked yet'} />
        <Figure id="urgent" label="Urgent (act + attend)" value={latest?.urgent ?? null} />
        <Figure label="Act" value={latest?.counts.act ?? null} />
        <Figure label="Attend" value={latest?.counts.attend ?? null} />
        <Figure label="Assets" value={latest?.counts.assets ?? null} />
      </div>
      <Section title={`Residual exposure over time (last ${TREND_DAYS} days)`} id="trend">
        {trend.length ? <Chart spec={trendSpec(trend)} label={`urgent and matched exposures of ${name} over time`} /> : <Empty>No result yet: run it now, or wait for the daily run.</Empty>}
      </Section>
      <Section title={latest ? `Matching exposures (${latest.matched} at the latest result)` : 'Matching exposures'} id="exposures">
        {exposures.items.length === 0 ? <Empty>Nothing open matches.</Empty> : (
          <table>
            <thead><tr><th>Tier</th><th class="num">Score</th><th>Issue</th><th>Component</th><th>Asset</th><th>Due</th></tr></thead>
            <tbody>
              {exposures.items.map((e) => (
                <tr>
                  <td><TierBadge tier={e.tier} /></td>
                  <td class="num">{e.score ?? '–'}</td>
                  <td><a href={`/console/exposures/${e.id}`}>{e.issueId}</a>{e.kev ? <span class="muted"> KEV</span> : null}</td>
                  <td>{e.component} {e.version}</td>
                  <td>{e.asset.name}</td>
                  <td>{dateOnly(e.dueAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {exposures.items.length === 25 ? <p class="muted">The 25 most urgent; the API lists them all (<code>GET /api/v1/hypotheses/{name}/exposures</code>).</p> : null}
      </Section>
      <Section title="Campaigns from this hypothesis" id="campaign-list">
        <p class="muted">Removed: the findings urgent when the campaign started (their ids are kept) that are now closed or out of act/attend.</p>
        <Campaigns items={campaigns} />
      </Section>
    </Page>,
  );
});

huntingPage.post('/console/hunting/:name/run', async (c) => {
  const sql = c.get('deps').database.sql;
  const name = c.req.param('name');
  if (!(await getHypothesis(sql, name))) return c.text(`no hypothesis named ${name}`, 404);
  await runHypothesis(sql, name, 'console');
  return c.redirect(`/console/hunting/${encodeURIComponent(name)}?ran=1`, 303);
});

huntingPage.post('/console/hunting/:name/campaign', async (c) => {
  const deps = c.get('deps');
  const name = c.req.param('name');
  if (!(await getHypothesis(deps.database.sql, name))) return c.text(`no hypothesis named ${name}`, 404);
  const { workflowId } = await startHypothesisCampaign(deps.database.sql, deps.temporal, { hypothesis: name, requestedBy: `console:${c.get('viewer').subject}` });
  return c.redirect(`/console/hunting/${encodeURIComponent(name)}?campaign=${encodeURIComponent(workflowId)}`, 303);
});
