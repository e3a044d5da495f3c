import { Hono } from 'hono';
import { getAuditEntry, listAudit, type AuditEntry, type AuditFilter, type AuditOutcome } from '../../access/audit-trail.js';
import { countLabel, CursorError } from '../../db/read-models/keyset.js';
import { Empty, Pager, Section } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// The audit trail: who changed what and when, filtered like GET /api/v1/audit (the same query), and
// one entry with what it changed, field by field, and its place in the hash chain.

const PAGE_SIZE = 50;
const OUTCOMES: readonly AuditOutcome[] = ['allowed', 'denied', 'failed'];
const FILTERS = ['actor', 'action', 'target', 'outcome', 'since', 'until'] as const;
type Params = Partial<Record<(typeof FILTERS)[number] | 'after', string>>;

const time = (iso: string) => iso.slice(0, 19).replace('T', ' ');
const who = (e: AuditEntry) => (e.actorName === e.actorId ? e.actorName : `${e.actorName} (${e.actorId})`);
const Outcome = ({ outcome }: { outcome: string }) => (outcome === 'allowed' ? <>{outcome}</> : <strong>{outcome}</strong>);

/** A date (YYYY-MM-DD, UTC) or a full ISO timestamp; undefined when it is neither. */
function instant(text: string, endOfDay: boolean): string | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return `${text}T${endOfDay ? '23:59:59.999' : '00:00:00'}Z`;
  return /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(text) && !Number.isNaN(Date.parse(text)) ? text : undefined;
}

type Leaf = string;

/** JSON flattened to `path -> printed value`, so two states compare field by field. */
function flatten(value: unknown, path = '', out = new Map<string, Leaf>()): Map<string, Leaf> {
  if (value !== null && typeof value === 'object' && !(Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object'))) {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
    if (!entries.length) out.set(path || '(value)', Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flatten(v, path ? `${path}.${k}` : k, out);
  } else if (value !== undefined) {
    out.set(path || '(value)', JSON.stringify(value));
  }
  return out;
}

export interface FieldChange {
  field: string;
  before?: string;
  after?: string;
}

/** The fields that differ between two states (added, removed, changed), in field order. */
export function diffStates(before: unknown, after: unknown): FieldChange[] {
  const b = before === null || before === undefined ? new Map<string, Leaf>() : flatten(before);
  const a = after === null || after === undefined ? new Map<string, Leaf>() : flatten(after);
  const fields = [...new Set([...b.keys(), ...a.keys()])].sort();
  return fields.filter((f) => b.get(f) !== a.get(f)).map((field) => ({ field, ...(b.has(field) ? { before: b.get(field)! } : {}), ...(a.has(field) ? { after: a.get(field)! } : {}) }));
}

export const auditPage = new Hono<ConsoleEnv>()
  .get('/console/audit', async (c) => {
    const params = Object.fromEntries([...FILTERS, 'after'].map((k) => [k, c.req.query(k)?.trim() || undefined])) as Params;
    const f: AuditFilter = { limit: PAGE_SIZE };
    const errors: string[] = [];
    if (params.actor) f.actor = params.actor;
    if (params.action) f.action = params.action;
    if (params.target) f.target = params.target;
    if (params.outcome) (OUTCOMES as readonly string[]).includes(params.outcome) ? (f.outcome = params.outcome as AuditOutcome) : errors.push(`outcome: expected one of ${OUTCOMES.join(', ')}`);
    for (const [key, endOfDay] of [['since', false], ['until', true]] as const) {
      const text = params[key];
      if (!text) continue;
      const at = instant(text, endOfDay);
      at ? (f[key] = at) : errors.push(`${key}: expected a date (YYYY-MM-DD) or an ISO timestamp, got "${text}"`);
    }
    if (params.after) f.after = params.after;
    let page: Awaited<ReturnType<typeof listAudit>> | undefined;
    if (!errors.length) {
      try {
        page = await listAudit(c.get('deps').database.sql, f);
      } catch (err) {
        if (!(err instanceof CursorError)) throw err;
        errors.push(`after: ${err.message}`);
      }
    }
    return c.html(
      <Page title="Audit trail" active="/console/audit" viewer={c.get('viewer')}>
        <form class="filters" method="get" action="/console/audit">
          <label>Who<input name="actor" value={params.actor ?? ''} placeholder="id or name" /></label>
          <label>Action<input name="action" value={params.action ?? ''} placeholder="policies, tickets.acknowledge" /></label>
          <label>Target<input name="target" value={params.target ?? ''} /></label>
          <label>
            Outcome
            <select name="outcome">
              <option value="">any</option>
              {OUTCOMES.map((o) => <option value={o} selected={o === params.outcome}>{o}</option>)}
            </select>
          </label>
          <label>From<input name="since" value={params.since ?? ''} placeholder="YYYY-MM-DD" size={10} /></label>
          <label>To<input name="until" value={params.until ?? ''} placeholder="YYYY-MM-DD" size={10} /></label>
          <button type="submit">Filter</button>
        </form>
        {errors.map((e) => <p class="error" role="alert">{e}</p>)}
        {page ? (
          <Section title={`${countLabel(page.estimate)} entr${page.estimate.count === 1 ? 'y' : 'ies'}`}>
            {page.items.length ? (
              <table id="audit">
                <thead><tr><th>When (UTC)</th><th>Who</th><th>Action</th><th>Target</th><th>Outcome</th><th>Via</th><th>Request id</th></tr></thead>
                <tbody>
                  {page.items.map((e) => (
                    <tr>
                      <td><a href={`/console/audit/${e.id}`}>{time(e.at)}</a></td>
                      <td>{who(e)}</td>
                      <td><code>{e.action}</code></td>
                      <td>{e.target ?? <span class="muted">–</span>}</td>
                      <td class={e.outcome === 'allowed' ? undefined : 'overdue'}>{e.outcome}</td>
                      <td>{e.channel}</td>
                      <td><code>{e.requestId ?? '–'}</code></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : <Empty>No audit entry matches these filters.</Empty>}
            <Pager path="/console/audit" params={params} next={page.next} />
          </Section>
        ) : null}
      </Page>,
      errors.length ? 400 : 200,
    );
  })
  .get('/console/audit/:id{[0-9]+}', async (c) => {
    const e = await getAuditEntry(c.get('deps').database.sql, Number(c.req.param('id')));
    if (!e) {
      return c.html(
        <Page title="Audit entry not found" active="/console/audit" viewer={c.get('viewer')}>
          <p class="error" role="alert">There is no audit entry {c.req.param('id')} (it may have been pruned).</p>
          <a href="/console/audit">The audit trail</a>
        </Page>,
        404,
      );
    }
    const changes = diffStates(e.before, e.after);
    return c.html(
      <Page title={`Audit entry ${e.id}`} active="/console/audit" viewer={c.get('viewer')}>
        <section class="panel">
          <p><code>{e.action}</code> on <strong>{e.target ?? '–'}</strong> by {who(e)}: <Outcome outcome={e.outcome} /></p>
          <dl class="facts">
            <dt>When</dt><dd>{e.at}</dd>
            <dt>Who</dt><dd>{e.actorName} <span class="muted">({e.actorKind === e.actorId ? e.actorKind : `${e.actorKind} ${e.actorId}`})</span></dd>
            <dt>Via</dt><dd>{e.channel}</dd>
            <dt>Request id</dt><dd><code>{e.requestId ?? '–'}</code></dd>
            <dt>Hash</dt><dd><code>{e.hash}</code></dd>
            <dt>Previous hash</dt><dd><code>{e.prevHash}</code></dd>
          </dl>
        </section>
        <Section title="What changed" id="changes">
          {changes.length ? (
            <table id="diff">
              <thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>
              <tbody>
                {changes.map((d) => (
                  <tr>
                    <td><code>{d.field}</code></td>
                    <td>{d.before !== undefined ? <del><code>{d.before}</code></del> : <span class="muted">–</span>}</td>
                    <td>{d.after !== undefined ? <ins><code>{d.after}</code></ins> : <span class="muted">–</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <Empty>This entry records no before or after.</Empty>}
        </Section>
        <a href="/console/audit">The audit trail</a>
      </Page>,
    );
  });
