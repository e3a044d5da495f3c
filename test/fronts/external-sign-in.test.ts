import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdentity, updateIdentity } from '../../access/identities.js';
import { BOOTSTRAP_PRINCIPAL } from '../../access/principal.js';
import { identityForExternalSignIn } from '../../access/sign-in.js';
import type { Database } from '../../db/client.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Who a person signing in through an identity provider is, on PostgreSQL: the rule alone, with the
// opt-in provisioning the browser test does not reach.

let database: Database;
const strict = { requireVerifiedEmail: true };

beforeAll(async () => {
  database = await migratedTestDatabase();
  await createIdentity(database.sql, { kind: 'user', name: 'sam.lee', email: 'Sam.Lee@example.com', roles: ['secops'] }, BOOTSTRAP_PRINCIPAL);
  await createIdentity(database.sql, { kind: 'service', name: 'deploy-bot', email: 'deploy@example.com', roles: ['ci'] }, BOOTSTRAP_PRINCIPAL);
  await createIdentity(database.sql, { kind: 'user', name: 'new.person', roles: ['owner'] }, BOOTSTRAP_PRINCIPAL);
}, 60_000);

afterAll(closeTestDatabases);

describe('identity for an external sign-in', () => {
  it('maps a verified e-mail case-insensitively, and refuses what it must', async () => {
    const found = await identityForExternalSignIn(database.sql, { sub: 'x', email: 'sam.lee@EXAMPLE.com', email_verified: true }, strict);
    expect(found).toMatchObject({ ok: true, provisioned: false, identity: { name: 'sam.lee', roles: ['secops'] } });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'sam.lee@example.com' }, strict)).toMatchObject({ ok: false, reason: 'unverified-email' });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'sam.lee@example.com' }, { requireVerifiedEmail: false })).toMatchObject({ ok: true });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email_verified: true }, strict)).toMatchObject({ ok: false, reason: 'no-email' });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'deploy@example.com', email_verified: true }, strict)).toMatchObject({ ok: false, reason: 'service-account' });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'nobody@example.com', email_verified: true }, strict)).toMatchObject({ ok: false, reason: 'unknown' });
    const [{ count }] = (await database.sql`select count(*)::int as count from identities`) as unknown as [{ count: number }];
    expect(count).toBe(3);
  });

  it('creates an unknown person only when asked, with that role, and once', async () => {
    const rules = { requireVerifiedEmail: true, provisionRole: 'read-only' as const };
    // The login name new.person is taken, so the new identity gets the next free one.
    const created = await identityForExternalSignIn(database.sql, { sub: 'x', email: 'New.Person@example.com', email_verified: true, name: 'New Person' }, rules);
    expect(created).toMatchObject({ ok: true, provisioned: true, identity: { kind: 'user', name: 'new.person-2', email: 'New.Person@example.com', displayName: 'New Person', roles: ['read-only'], hasPassword: false } });
    const again = await identityForExternalSignIn(database.sql, { sub: 'x', email: 'new.person@example.com', email_verified: true }, rules);
    expect(again).toMatchObject({ ok: true, provisioned: false, identity: { name: 'new.person-2' } });
    // Never for an unverified address, and a disabled identity stays refused.
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'other@example.com', email_verified: false }, rules)).toMatchObject({ ok: false, reason: 'unverified-email' });
    if (created.ok) await updateIdentity(database.sql, created.identity.id, { disabled: true });
    expect(await identityForExternalSignIn(database.sql, { sub: 'x', email: 'new.person@example.com', email_verified: true }, rules)).toMatchObject({ ok: false, reason: 'disabled' });
  });
});
