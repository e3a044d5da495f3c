import type { Context } from 'hono';
import { Hono } from 'hono';
import { createIdentity, IdentityError, listIdentities, updateIdentity } from '../../access/identities.js';
import { ROLES, type Role } from '../../access/principal.js';
import { issueToken, listTokens } from '../../access/tokens.js';
import { dateOnly, Empty, Section } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// Identities and their tokens, for administrators: the same functions as /api/v1/identities. An
// issued token is shown on the page that issued it, once.

type Notice = { kind: 'notice' | 'error'; text: string; token?: string };

async function identitiesPage(c: Context<ConsoleEnv>, notice?: Notice, status: 200 | 400 | 404 | 409 = 200) {
  const sql = c.get('deps').database.sql;
  const identities = await listIdentities(sql);
  const tokens = await Promise.all(identities.map((i) => listTokens(sql, i.id)));
  const now = Date.now();
  return c.html(
    <Page title="Identities" active="/console/identities" viewer={c.get('viewer')}>
      {notice ? (
        <div class={notice.kind} role={notice.kind === 'error' ? 'alert' : 'status'}>
          <p>{notice.text}</p>
          {notice.token ? <p><code id="issued-token">{notice.token}</code></p> : null}
        </div>
      ) : null}
      <Section title={`${identities.length} identities`} id="identities">
        {identities.length ? (
          <table>
            <thead><tr><th>Name</th><th>Kind</th><th>Roles</th><th>E-mail</th><th>Tokens</th><th>Status</th><th></th></tr></thead>
            <tbody>
              {identities.map((i, n) => {
                const live = tokens[n]!.filter((t) => !t.revokedAt && Date.parse(t.expiresAt) > now);
                const base = `/console/identities/${i.id}`;
                return (
                  <tr data-name={i.name}>
                    <td>{i.displayName ? `${i.name} (${i.displayName})` : i.name}</td>
                    <td>{i.kind}</td>
                    <td>{i.roles.join(', ')}</td>
                    <td>{i.email ?? '–'}</td>
                    <td>{live.length ? live.map((t) => `${t.name} (until ${dateOnly(t.expiresAt)})`).join(', ') : <span class="muted">none</span>}</td>
                    <td>{i.disabledAt ? `disabled ${dateOnly(i.disabledAt)}` : 'active'}</td>
                    <td class="actions">
                      <form method="post" action={`${base}/${i.disabledAt ? 'enable' : 'disable'}`} class="inline">
                        <button type="submit">{i.disabledAt ? 'Enable' : 'Disable'}</button>
                      </form>
                      {i.disabledAt ? null : (
                        <form method="post" action={`${base}/tokens`} class="inline">
                          <input name="name" placeholder="token for..." required aria-label={`token name for ${i.name}`} />
                          <button type="submit">Issue token</button>
                        </form>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : <Empty>No identities yet: the platform's API token is the only way in.</Empty>}
      </Section>
      <section class="panel" id="create-identity">
        <h2>New identity</h2>
        <form method="post" action="/console/identities">
          <label>Name<input name="name" required /></label>
          <label>Kind<select name="kind"><option value="user">user</option><option value="service">service account</option></select></label>
          <label>E-mail<input name="email" type="email" /></label>
          <fieldset>
            <legend>Roles</legend>
            {ROLES.map((r) => (
              <label class="check"><input type="checkbox" name="roles" value={r} /> {r}</label>
            ))}
          </fieldset>
          <label>Console password (users; 12 characters or more)<input name="password" type="password" autocomplete="new-password" /></label>
          <button type="submit">Create</button>
        </form>
      </section>
    </Page>,
    status,
  );
}

const text = (form: Record<string, unknown>, name: string) => (typeof form[name] === 'string' ? (form[name] as string).trim() : '');

function refused(c: Context<ConsoleEnv>, err: unknown) {
  if (!(err instanceof IdentityError)) throw err;
  return identitiesPage(c, { kind: 'error', text: `${err.field}: ${err.message}` }, err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 400);
}

export const identitiesPages = new Hono<ConsoleEnv>()
  .get('/console/identities', (c) => identitiesPage(c))
  .post('/console/identities', async (c) => {
    const form = await c.req.parseBody({ all: true });
    const roles = ([] as unknown[]).concat(form.roles ?? []).filter((r): r is Role => typeof r === 'string');
    const password = typeof form.password === 'string' ? form.password : '';
    try {
      const created = await createIdentity(
        c.get('deps').database.sql,
        { kind: text(form, 'kind') === 'service' ? 'service' : 'user', name: text(form, 'name'), email: text(form, 'email') || undefined, roles, password: password || undefined },
        c.get('viewer').principal,
      );
      return identitiesPage(c, { kind: 'notice', text: `Created ${created.name} (${created.roles.join(', ')}).` });
    } catch (err) {
      return refused(c, err);
    }
  })
  .post('/console/identities/:id/disable', async (c) => {
    try {
      const i = await updateIdentity(c.get('deps').database.sql, c.req.param('id'), { disabled: true });
      return identitiesPage(c, { kind: 'notice', text: `Disabled ${i.name}: its tokens and sessions stopped working.` });
    } catch (err) {
      return refused(c, err);
    }
  })
  .post('/console/identities/:id/enable', async (c) => {
    try {
      const i = await updateIdentity(c.get('deps').database.sql, c.req.param('id'), { disabled: false });
      return identitiesPage(c, { kind: 'notice', text: `Enabled ${i.name}.` });
    } catch (err) {
      return refused(c, err);
    }
  })
  .post('/console/identities/:id/tokens', async (c) => {
    const form = await c.req.parseBody();
    try {
      const issued = await issueToken(c.get('deps').database.sql, c.req.param('id'), { name: text(form, 'name') });
      return identitiesPage(c, { kind: 'notice', text: `Token "${issued.name}" issued, valid until ${dateOnly(issued.expiresAt)}. Copy it now: it is not shown again.`, token: issued.token });
    } catch (err) {
      return refused(c, err);
    }
  });
