import { WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { listExposures } from '../../db/read-models/exposures.js';
import { getTicket, listTickets, ticketWithin, type TicketFilter } from '../../db/read-models/inventory.js';
import { actorName } from '../../access/identities.js';
import { ticketReach } from '../../access/roles.js';
import { countLabel, CursorError } from '../../db/read-models/keyset.js';
import { createExceptionRequest } from '../../mobilization/exception-requests.js';
import { riskAcceptanceRefusal } from '../../mobilization/risk-acceptance.js';
import { acknowledgeTicket } from '../../mobilization/ticket-actions.js';
import { workflowUrl } from '../../scoping/campaigns.js';
import { statusQuery, type RemediationState } from '../../workflows/remediation/messages.js';
import { dateOnly, Empty, Pager, Section, TierBadge } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';
import { can } from '../roles.js';

// Golden tickets: the list (state, owner, overdue), and one ticket with its findings, escalations,
// links to its workflow in the Temporal UI and to its ITSM record, and the forms to acknowledge it
// (the remediation workflow's Update, as POST /api/v1/tickets/{key}/acknowledge does) or to request
// an exception (the same request Slack's exception modal records).

const STATES = ['orphaned', 'opening', 'new', 'in_progress', 'on_hold', 'risk_accepted', 'resolved', 'closed', 'verified'] as const;
const PAGE_SIZE = 50;
const FILTERS = ['state', 'owner', 'overdue'] as const;
type Params = Partial<Record<(typeof FILTERS)[number] | 'after', string>>;

const time = (iso: string | null | undefined) => (iso ? iso.slice(0, 16).replace('T', ' ') : '–');

type Notice = { kind: 'notice' | 'error'; text: string };

async function ticketPage(c: Context<ConsoleEnv>, key: string, notice?: Notice, status: 200 | 404 | 409 | 422 | 400 = 200) {
  const deps = c.get('deps');
  const sql = deps.database.sql;
  const viewer = c.get('viewer');
  const reach = ticketReach(viewer.principal);
  const found = await getTicket(sql, key);
  // Outside an owner's or manager's reach a ticket is answered as unknown.
  const t = found && (reach.kind === 'all' || (await ticketWithin(sql, key, reach))) ? found : undefined;
  if (!t) {
    return c.html(
      <Page title="Ticket not found" active="/console/tickets" viewer={viewer}>
        <p class="error" role="alert">There is no golden ticket {key}.</p>
        <a href="/console/tickets">All tickets</a>
      </Page>,
      404,
    );
  }
  let live: RemediationState | undefined;
  let liveError: string | undefined;
  try {
    live = await deps.temporal.client.workflow.getHandle(t.workflowId).query(statusQuery);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) liveError = (err as Error).message;
  }
  const findings = await listExposures(sql, { ticket: t.key, status: 'all', limit: 100 });
  const temporalUrl = workflowUrl(deps.temporal, t.workflowId);
  const base = `/console/tickets/${encodeURIComponent(t.key)}`;
  const inAWeek = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  return c.html(
    <Page title={`Ticket ${t.externalNumber ?? t.key}`} active="/console/tickets" viewer={viewer}>
      {notice ? <p class={notice.kind} role={notice.kind === 'error' ? 'alert' : 'status'}>{notice.text}</p> : null}
      <section class="panel">
        <p><TierBadge tier={t.tier} /> <strong>{live && live.phase !== 'opening' ? live.phase.replaceAll('-', ' ') : t.state}</strong> — {t.action}: <code>{t.fix.component}</code>{t.fix.fixedVersion ? <> → <code>{t.fix.fixedVersion}</code></> : null} on {t.asset.name}</p>
        <dl class="facts">
          <dt>Key</dt><dd><code>{t.key}</code></dd>
          <dt>Owner</dt><dd>{t.owner ?? 'none'}{t.orphanReason ? <span class="muted"> (orphan queue: {t.orphanReason})</span> : null}</dd>
          <dt>Acknowledge by</dt><dd>{time(t.ackDueAt)}{t.acknowledgedAt ? ` (acknowledged ${time(t.acknowledgedAt)})` : ''}</dd>
          <dt>Fix by</dt><dd>{time(t.dueAt)}{t.resolvedAt ? ` (resolved ${time(t.resolvedAt)})` : ''}</dd>
          <dt>Escalation</dt><dd>level {t.escalationLevel} now, peak {t.escalationPeak}, {t.escalationCount} in all</dd>
          <dt>Workflow</dt>
          <dd>
            {temporalUrl ? <a href={temporalUrl} id="temporal-link">{t.workflowId} in the Temporal UI</a> : <code>{t.workflowId}</code>}
            {live ? <span class="muted"> ({live.phase})</span> : liveError ? <span class="muted"> (state unavailable: {liveError})</span> : <span class="muted"> (ended)</span>}
          </dd>
          <dt>{t.itsm === 'jira' ? 'Jira' : 'ServiceNow'}</dt>
          <dd>{t.externalUrl ? <a href={t.externalUrl} id="itsm-link">{t.externalNumber ?? 'the record'}</a> : <span class="muted">not opened yet</span>}</dd>
        </dl>
      </section>
      <div class="grid">
        {can(viewer, 'ticket.acknowledge') ? (
          <section class="panel" id="acknowledge">
            <h2>Acknowledge</h2>
            <form method="post" action={`${base}/acknowledge`}>
              {viewer.principal.kind === 'bootstrap' ? (
                <label>Who acknowledges (ITSM user)<input name="by" value={t.owner ?? ''} required /></label>
              ) : (
                <p class="muted">Acknowledging as {viewer.subject}.</p>
              )}
              <label>Note<input name="note" /></label>
              <button type="submit">Acknowledge</button>
            </form>
          </section>
        ) : null}
        {can(viewer, 'ticket.request-exception') ? (
          <section class="panel" id="exception">
            <h2>Request an exception</h2>
            <form method="post" action={`${base}/exception-request`}>
              <label>Requested by<input name="requester" value={t.owner ?? ''} required /></label>
              <label>Reason<textarea name="reason" required minlength={10}></textarea></label>
              <label>Until<input type="date" name="expires" value={inAWeek} required /></label>
              <button type="submit">Request exception</button>
            </form>
          </section>
        ) : null}
      </div>
      <Section title={`Findings (${countLabel(findings.estimate)})`} id="findings">
        {findings.items.length ? (
          <table>
            <thead><tr><th>Tier</th><th>Issue</th><th>Component</th><th>Status</th><th>Due</th></tr></thead>
            <tbody>
              {findings.items.map((e) => (
                <tr><td><TierBadge tier={e.tier} /></td><td><a href={`/console/exposures/${e.id}`}>{e.issueId}</a></td><td><code>{e.component}@{e.version}</code></td><td>{e.status}</td><td>{dateOnly(e.dueAt)}</td></tr>
              ))}
            </tbody>
          </table>
        ) : <Empty>No findings on this ticket.</Empty>}
      </Section>
      <Section title="Escalations" id="escalations">
        {t.escalations.length ? (
          <table>
            <thead><tr><th>Level</th><th>Who</th><th>When</th><th>Phase</th><th>Why</th></tr></thead>
            <tbody>
              {t.escalations.map((e) => (
                <tr><td class="num">{e.level}</td><td>{e.notifiedName ?? e.notifiedUser ?? '–'}</td><td>{time(e.at)}</td><td>{e.phase}</td><td>{e.reason}</td></tr>
              ))}
            </tbody>
          </table>
        ) : <Empty>Never escalated.</Empty>}
      </Section>
      {t.riskAcceptances.length ? (
        <Section title="Risk acceptances">
          <table>
            <thead><tr><th>Requested by</th><th>Approved by</th><th>Reason</th><th>Accepted</th><th>Expires</th><th>Ended</th></tr></thead>
            <tbody>
              {t.riskAcceptances.map((r) => (
                <tr><td>{r.requester}</td><td>{r.approver}</td><td>{r.reason}</td><td>{time(r.acceptedAt)}</td><td>{time(r.expiresAt)}</td><td>{time(r.endedAt)}</td></tr>
              ))}
            </tbody>
          </table>
        </Section>
      ) : null}
    </Page>,
    status,
  );
}

const field = (form: Record<string, unknown>, name: string) => (typeof form[name] === 'string' ? (form[name] as string).trim() : '');

export const ticketPages = new Hono<ConsoleEnv>()
  .get('/console/tickets', async (c) => {
    const sql = c.get('deps').database.sql;
    const params = Object.fromEntries([...FILTERS, 'after'].map((k) => [k, c.req.query(k)?.trim() || undefined])) as Params;
    const reach = ticketReach(c.get('viewer').principal);
    const f: TicketFilter = { limit: PAGE_SIZE, ...(reach.kind === 'some' ? { reach } : {}) };
    let error: string | undefined;
    if (params.state) (STATES as readonly string[]).includes(params.state) ? (f.state = params.state) : (error = `state: expected one of ${STATES.join(', ')}`);
    if (params.owner) f.owner = params.owner;
    if (params.overdue) params.overdue === 'true' ? (f.overdue = true) : (error = 'overdue: expected true or nothing');
    if (params.after) f.after = params.after;
    let page: Awaited<ReturnType<typeof listTickets>> | undefined;
    if (!error) {
      try {
        page = await listTickets(sql, f);
      } catch (err) {
        if (!(err instanceof CursorError)) throw err;
        error = `after: ${err.message}`;
      }
    }
    return c.html(
      <Page title="Tickets" active="/console/tickets" viewer={c.get('viewer')}>
        <form class="filters" method="get" action="/console/tickets">
          <label>
            State
            <select name="state">
              <option value="">any</option>
              {STATES.map((s) => <option value={s} selected={s === params.state}>{s}</option>)}
            </select>
          </label>
          <label>Owner<input name="owner" value={params.owner ?? ''} /></label>
          <label class="check"><input type="checkbox" name="overdue" value="true" checked={params.overdue === 'true'} /> Overdue only</label>
          <button type="submit">Filter</button>
        </form>
        {error ? <p class="error" role="alert">{error}</p> : null}
        {page ? (
          <Section title={`${countLabel(page.estimate)} golden ticket${page.estimate.count === 1 ? '' : 's'}`}>
            {page.items.length ? (
              <table id="tickets">
                <thead><tr><th>Ticket</th><th>Tier</th><th>State</th><th>Owner</th><th>Fix</th><th>Asset</th><th>Due</th><th class="num">Escalation</th><th class="num">Findings</th></tr></thead>
                <tbody>
                  {page.items.map((t) => {
                    const overdue = new Date(t.dueAt).getTime() < Date.now() && !['resolved', 'closed', 'verified'].includes(t.state);
                    return (
                      <tr>
                        <td><a href={`/console/tickets/${encodeURIComponent(t.key)}`}>{t.externalNumber ?? t.key}</a></td>
                        <td><TierBadge tier={t.tier} /></td>
                        <td>{t.state}</td>
                        <td>{t.owner ?? <span class="muted">none</span>}</td>
                        <td><code>{t.fix.component}</code>{t.fix.fixedVersion ? ` → ${t.fix.fixedVersion}` : ''}</td>
                        <td>{t.asset.name}</td>
                        <td class={overdue ? 'overdue' : undefined}>{dateOnly(t.dueAt)}{overdue ? ' (overdue)' : ''}</td>
                        <td class="num">{t.escalationLevel}{t.escalationPeak > t.escalationLevel ? ` (peak ${t.escalationPeak})` : ''}</td>
                        <td class="num">{t.findingCount}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            ) : <Empty>No golden ticket matches these filters.</Empty>}
            <Pager path="/console/tickets" params={params} next={page.next} />
          </Section>
        ) : null}
      </Page>,
      error ? 400 : 200,
    );
  })
  .get('/console/tickets/:key', (c) => ticketPage(c, c.req.param('key')))
  .post('/console/tickets/:key/acknowledge', async (c) => {
    const key = c.req.param('key');
    if (!can(c.get('viewer'), 'ticket.acknowledge')) return ticketPage(c, key, { kind: 'error', text: 'Your role may not acknowledge tickets.' }, 400);
    const reach = ticketReach(c.get('viewer').principal, 'tickets.act');
    if (!(await getTicket(c.get('deps').database.sql, key)) || (reach.kind === 'some' && !(await ticketWithin(c.get('deps').database.sql, key, reach)))) return ticketPage(c, key);
    const form = await c.req.parseBody();
    // An identity acknowledges as itself; the shared API token names who acts.
    const by = actorName(c.get('viewer').principal, field(form, 'by'));
    if (!by) return ticketPage(c, key, { kind: 'error', text: 'by: say who acknowledges (an ITSM user name or e-mail).' }, 400);
    const note = field(form, 'note');
    // The console is served by the API: the same Update, recorded as coming through it.
    const result = await acknowledgeTicket(c.get('deps').temporal.client, key, { by, via: 'api', ...(note ? { note } : {}) });
    if (!result.ok) return ticketPage(c, key, { kind: 'error', text: `Not acknowledged: ${result.message}` }, 409);
    return ticketPage(c, key, { kind: 'notice', text: `Acknowledged by ${by}: the ticket is ${result.state.phase === 'awaiting-resolution' ? 'awaiting its fix' : result.state.phase}.` });
  })
  .post('/console/tickets/:key/exception-request', async (c) => {
    const key = c.req.param('key');
    const sql = c.get('deps').database.sql;
    if (!can(c.get('viewer'), 'ticket.request-exception')) return ticketPage(c, key, { kind: 'error', text: 'Your role may not request exceptions.' }, 400);
    const reach = ticketReach(c.get('viewer').principal, 'tickets.act');
    if (!(await getTicket(sql, key)) || (reach.kind === 'some' && !(await ticketWithin(sql, key, reach)))) return ticketPage(c, key);
    const form = await c.req.parseBody();
    const requester = field(form, 'requester');
    const reason = field(form, 'reason');
    const expires = field(form, 'expires');
    // A date means the end of that day (UTC); the rules are the workflow's own (mobilization/risk-acceptance.ts).
    const expiresAt = /^\d{4}-\d{2}-\d{2}$/.test(expires) ? `${expires}T23:59:59Z` : expires;
    const refusal = riskAcceptanceRefusal({ requester, reason, expiresAt }, Date.now(), ['requester', 'reason', 'expiresAt']);
    const wrong = refusal ? `${refusal.field === 'expiresAt' ? 'expires' : refusal.field}: ${refusal.message}` : undefined;
    if (wrong) return ticketPage(c, key, { kind: 'error', text: wrong }, 422);
    const { created, request } = await createExceptionRequest(sql, { ticketKey: key, requester, reason, expiresAt: new Date(expiresAt).toISOString() });
    return ticketPage(c, key, {
      kind: 'notice',
      text: created
        ? `Exception request #${request.id} recorded, pending approval until ${dateOnly(request.expiresAt)}.`
        : `Request #${request.id} by ${request.requester} is already pending for this ticket.`,
    });
  });
