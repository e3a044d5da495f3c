import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticatePassword, itsmActorName } from '../../access/identities.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { platformEnv, runCtem } from '../support/scripts.js';

// Identities and their API tokens through the real API: created, validated, issued once, stored
// hashed, expiring, revoked, disabled; owners and managers see only the tickets within their reach.

let platform: TestPlatform;

type Identity = { id: string; name: string; roles: string[]; hasPassword: boolean; disabledAt: string | null };
type Token = { id: string; prefix: string; expiresAt: string; lastUsedAt: string | null; revokedAt: string | null; token?: string };

const send = (path: string, body: unknown, method = 'POST') => platform.api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const bearer = (token: string, path: string, init: RequestInit = {}) => fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string; details?: { field?: string } } }).error;

async function identityWithToken(name: string, roles: string[], extra: Record<string, unknown> = {}): Promise<{ identity: Identity; token: string }> {
  const identity = await json<Identity>(send('/api/v1/identities', { name, roles, ...extra }));
  const issued = await json<Token>(send(`/api/v1/identities/${identity.id}/tokens`, { name: 'test' }));
  return { identity, token: issued.token! };
}

beforeAll(async () => {
  platform = await startTestPlatform({}, { api: true, worker: false });
}, 120_000);

afterAll(async () => {
  await platform?.stop();
});

describe('identities', () => {
  it('refuses bad input naming the field, and a name or e-mail already taken', async () => {
    const badRole = await send('/api/v1/identities', { name: 'pat', roles: ['root'] });
    expect(badRole.status).toBe(400);
    const shortPassword = await send('/api/v1/identities', { name: 'pat', roles: ['owner'], password: 'short' });
    expect(shortPassword.status).toBe(400);
    expect(await errorOf(shortPassword)).toMatchObject({ details: { field: 'password' } });
    const badEmail = await send('/api/v1/identities', { name: 'pat', roles: ['owner'], email: 'not-an-address' });
    expect(await errorOf(badEmail)).toMatchObject({ details: { field: 'email' } });
    const servicePassword = await send('/api/v1/identities', { kind: 'service', name: 'pat-ci', roles: ['ci'], password: 'a-long-enough-password' });
    expect(await errorOf(servicePassword)).toMatchObject({ message: 'password: service accounts sign in with API tokens, not passwords' });

    expect((await send('/api/v1/identities', { name: 'pat', roles: ['owner'], email: 'Pat@Example.com' })).status).toBe(201);
    const again = await send('/api/v1/identities', { name: 'pat', roles: ['owner'] });
    expect(again.status).toBe(409);
    expect(await errorOf(again)).toMatchObject({ code: 'conflict', details: { field: 'name' } });
    const sameEmail = await send('/api/v1/identities', { name: 'pat2', roles: ['owner'], email: 'pat@example.com' });
    expect(await errorOf(sameEmail)).toMatchObject({ code: 'conflict', details: { field: 'email' } });
  });

  it('stores a console password as a scrypt hash and checks it', async () => {
    const created = await json<Identity>(send('/api/v1/identities', { name: 'rosa', roles: ['read-only'], password: 'correct horse battery' }));
    expect(created).toMatchObject({ hasPassword: true, roles: ['read-only'] });
    expect(JSON.stringify(created)).not.toContain('correct horse');
    const [row] = await platform.database.sql`select password_hash from identities where id = ${created.id}`;
    expect(row!.password_hash).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect((await authenticatePassword(platform.database.sql, 'rosa', 'correct horse battery'))?.id).toBe(created.id);
    expect(await authenticatePassword(platform.database.sql, 'rosa', 'correct horse battery!')).toBeUndefined();
    expect(await authenticatePassword(platform.database.sql, 'nobody', 'correct horse battery')).toBeUndefined();
  });

  it('issues a token once, keeps only its hash, and answers who it stands for', async () => {
    const { identity, token } = await identityWithToken('sam.lee', ['secops'], { email: 'sam.lee@example.com' });
    expect(token).toMatch(new RegExp(`^ctem_${identity.id.replace(/-/g, '').slice(0, 8)}_[\\w-]{43}$`));
    const listed = await json<{ items: Token[] }>(platform.api(`/api/v1/identities/${identity.id}/tokens`));
    expect(listed.items).toHaveLength(1);
    expect(listed.items[0]).not.toHaveProperty('token');
    expect(token.startsWith(listed.items[0]!.prefix)).toBe(true);
    const expires = Date.parse(listed.items[0]!.expiresAt) - Date.now();
    expect(Math.round(expires / 86_400_000)).toBe(90);
    const [row] = await platform.database.sql`select secret_hash from api_tokens where id = ${listed.items[0]!.id}`;
    expect(row!.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.secret_hash).not.toContain(token);

    const me = await json<{ name: string; roles: string[]; permissions: string[] }>(bearer(token, '/api/v1/me'));
    expect(me).toMatchObject({ id: identity.id, kind: 'user', name: 'sam.lee', email: 'sam.lee@example.com', roles: ['secops'] });
    expect(me.permissions).toContain('risk.accept');
    expect(me.permissions).not.toContain('identities.admin');
    // Written once a minute at most: the second call leaves it.
    const used = (await json<{ items: Token[] }>(platform.api(`/api/v1/identities/${identity.id}/tokens`))).items[0]!.lastUsedAt;
    expect(used).not.toBeNull();
    await json(bearer(token, '/api/v1/me'));
    expect((await json<{ items: Token[] }>(platform.api(`/api/v1/identities/${identity.id}/tokens`))).items[0]!.lastUsedAt).toBe(used);
  });

  it('refuses an expiry in the past or beyond a year', async () => {
    const { identity } = await identityWithToken('exp', ['read-only']);
    const past = await send(`/api/v1/identities/${identity.id}/tokens`, { name: 'old', expiresAt: '2020-01-01T00:00:00Z' });
    expect(await errorOf(past)).toMatchObject({ message: 'expiresAt: the expiry must be in the future', details: { field: 'expiresAt' } });
    const far = await send(`/api/v1/identities/${identity.id}/tokens`, { name: 'far', expiresAt: new Date(Date.now() + 400 * 86_400_000).toISOString() });
    expect(far.status).toBe(400);
    expect(await errorOf(far)).toMatchObject({ message: 'expiresAt: a token lasts one year at most' });
  });

  it('stops a token when it expires, is revoked, or its identity is disabled', async () => {
    const { identity, token } = await identityWithToken('temp', ['read-only']);
    const soon = await json<Token>(send(`/api/v1/identities/${identity.id}/tokens`, { name: 'short', expiresAt: new Date(Date.now() + 1500).toISOString() }));
    expect((await bearer(soon.token!, '/api/v1/me')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    const expired = await bearer(soon.token!, '/api/v1/me');
    expect(expired.status).toBe(401);
    expect(await errorOf(expired)).toMatchObject({ message: 'the token has expired; issue a new one' });

    const disabled = await json<Identity>(send(`/api/v1/identities/${identity.id}`, { disabled: true }, 'PATCH'));
    expect(disabled.disabledAt).not.toBeNull();
    expect(await errorOf(await bearer(token, '/api/v1/me'))).toMatchObject({ message: "the token's identity is disabled" });
    expect((await send(`/api/v1/identities/${identity.id}/tokens`, { name: 'more' })).status).toBe(409);
    await json(send(`/api/v1/identities/${identity.id}`, { disabled: false }, 'PATCH'));
    expect((await bearer(token, '/api/v1/me')).status).toBe(200);

    const tokenId = (await json<{ items: Token[] }>(platform.api(`/api/v1/identities/${identity.id}/tokens`))).items.find((t) => token.startsWith(t.prefix))!.id;
    const revoked = await json<Token>(platform.api(`/api/v1/identities/${identity.id}/tokens/${tokenId}`, { method: 'DELETE' }));
    expect(revoked.revokedAt).not.toBeNull();
    // Revoking again keeps the first time.
    expect((await json<Token>(platform.api(`/api/v1/identities/${identity.id}/tokens/${tokenId}`, { method: 'DELETE' }))).revokedAt).toBe(revoked.revokedAt);
    expect(await errorOf(await bearer(token, '/api/v1/me'))).toMatchObject({ message: 'the token has been revoked' });
    expect((await bearer('ctem_00000000_made-up', '/api/v1/me')).status).toBe(401);
  });

  it('shows owners their own tickets and managers their reports', async () => {
    const sql = platform.database.sql;
    const [asset] = await sql`insert into assets (asset_key, kind, name) values ('image:reach/app', 'image', 'reach/app') returning id`;
    const ticket = (key: string, owner: string) =>
      sql`insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at)
          values (${key}, ${`remediation:${key}`}, ${asset!.id}, 'openssl', '3.0.9', ${owner}, 'new', 'act', now() + interval '1 day', now() + interval '7 days')`;
    await ticket('reach-alex-1', 'alex.romero');
    await ticket('reach-alex-2', 'Alex.Romero@example.com');
    await ticket('reach-kim-1', 'kim.ng');
    await ticket('reach-lou-1', 'lou.ma');
    // kim.ng's ticket escalated to jo.park: kim reports to jo.
    await sql`insert into escalations (ticket_key, phase, level, notified_user, reason) values ('reach-kim-1', 'acknowledgement', 1, 'jo.park', 'not acknowledged')`;

    const owner = await identityWithToken('alex.romero', ['owner'], { email: 'alex.romero@example.com' });
    const manager = await identityWithToken('jo.park', ['manager']);
    const keys = async (token: string) => (await json<{ items: Array<{ key: string }> }>(bearer(token, '/api/v1/tickets?limit=100'))).items.map((t) => t.key).filter((k) => k.startsWith('reach-')).sort();
    expect(await keys(owner.token)).toEqual(['reach-alex-1', 'reach-alex-2']);
    expect(await keys(manager.token)).toEqual(['reach-kim-1']);
    expect(await keys(platform.env.CTEM_API_TOKEN!)).toEqual(['reach-alex-1', 'reach-alex-2', 'reach-kim-1', 'reach-lou-1']);

    expect((await bearer(owner.token, '/api/v1/tickets/reach-kim-1')).status).toBe(404);
    const outside = await bearer(owner.token, '/api/v1/tickets/reach-lou-1/acknowledge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(outside.status).toBe(404);
    // Within reach the request gets past authorisation to the workflow (none runs in this test).
    const own = await bearer(owner.token, '/api/v1/tickets/reach-alex-1/acknowledge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(own.status).toBe(409);
    expect(await errorOf(own)).toMatchObject({ code: 'not_running' });
  });

  it('is run from the ctem command: create, issue, list and revoke', async () => {
    const env = platformEnv(platform);
    const created = await runCtem(['identities', 'create', 'ci-pipeline', '--service', '--role', 'ci', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ kind: 'service', name: 'ci-pipeline', roles: ['ci'] });
    const issued = await runCtem(['identities', 'token', 'issue', 'ci-pipeline', '--name', 'deploy gate'], env);
    expect(issued.code, issued.stderr).toBe(0);
    const token = issued.stdout.split('\n')[0]!;
    expect(token).toMatch(/^ctem_[0-9a-f]{8}_[\w-]{43}$/);
    expect(await json(bearer(token, '/api/v1/me'))).toMatchObject({ name: 'ci-pipeline', roles: ['ci'], permissions: ['scans.upload', 'gate.run', 'self.read'] });
    const listed = await runCtem(['identities', 'token', 'list', 'ci-pipeline', '--json'], env);
    const [row] = (JSON.parse(listed.stdout) as { items: Token[] }).items;
    expect(listed.stdout).not.toContain(token);
    const revoked = await runCtem(['identities', 'token', 'revoke', 'ci-pipeline', row!.id], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await bearer(token, '/api/v1/me')).status).toBe(401);
    const list = await runCtem(['identities', 'list'], env);
    expect(list.stdout).toMatch(/^ci-pipeline\s+service\s+ci\s/m);
    const bad = await runCtem(['identities', 'create', 'x', '--role', 'root'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ctem identities create x failed: HTTP 400/);
  });

  it('names an ITSM user by the identity with their e-mail or user name, else as the ITSM does', async () => {
    const sql = platform.database.sql;
    await json(send('/api/v1/identities', { name: 'morgan', email: 'Morgan.Blake@example.com', roles: ['owner'] }));
    expect(await itsmActorName(sql, { email: 'morgan.blake@example.com', displayName: 'Morgan Blake' })).toBe('morgan');
    expect(await itsmActorName(sql, { userName: 'morgan' })).toBe('morgan');
    expect(await itsmActorName(sql, { email: 'priya@example.com', displayName: 'Priya Natarajan' })).toBe('priya@example.com');
    expect(await itsmActorName(sql, { displayName: 'Priya Natarajan' })).toBe('Priya Natarajan');
  });
});
