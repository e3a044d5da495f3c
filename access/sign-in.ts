import type { Sql } from '../db/client.js';
import { createIdentity, getIdentity, IdentityError, type Identity } from './identities.js';
import { SYSTEM_PRINCIPAL, type Role } from './principal.js';

// Who a person signing in through an identity provider is: the enabled user whose e-mail equals the
// provider's verified `email` claim, compared case-insensitively. The provider vouches for the
// address; roles stay ours. Nobody is created unless the operator opted in (CTEM_OIDC_PROVISION_ROLE),
// and then only with that role.

/** What the provider said about the person, after openid-client verified the response. */
export interface ExternalClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  name?: unknown;
  preferred_username?: unknown;
}

export interface ExternalSignInRules {
  requireVerifiedEmail: boolean;
  provisionRole?: Role;
}

export type ExternalSignIn =
  | { ok: true; identity: Identity; provisioned: boolean }
  | { ok: false; email?: string; reason: 'no-email' | 'unverified-email' | 'unknown' | 'disabled' | 'service-account'; message: string };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A login name for a provisioned person, from the e-mail's local part (made unique with a suffix). */
function provisionedName(email: string): string {
  const local = email.split('@')[0]!.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '');
  return (local.length >= 2 ? local : `user-${local}`).slice(0, 90);
}

export async function identityForExternalSignIn(sql: Sql, claims: ExternalClaims, rules: ExternalSignInRules): Promise<ExternalSignIn> {
  const email = typeof claims.email === 'string' ? claims.email.trim() : '';
  if (!email || !EMAIL.test(email)) {
    return { ok: false, reason: 'no-email', message: 'The identity provider did not give an e-mail address for this account, and the console knows people by their e-mail address. Ask the provider\'s administrator to release the email claim to this client.' };
  }
  if (rules.requireVerifiedEmail && claims.email_verified !== true) {
    return { ok: false, email, reason: 'unverified-email', message: `The identity provider has not verified the e-mail address ${email}, so it cannot stand for a console account.` };
  }
  const [row] = await sql`select id from identities where lower(email) = lower(${email})`;
  const found = row ? await getIdentity(sql, row.id as string) : undefined;
  if (found) {
    if (found.kind !== 'user') return { ok: false, email, reason: 'service-account', message: `${email} belongs to a service account, which signs in with API tokens only.` };
    if (found.disabledAt) return { ok: false, email, reason: 'disabled', message: `The console account for ${email} is disabled. An administrator can enable it again.` };
    return { ok: true, identity: found, provisioned: false };
  }
  if (!rules.provisionRole) {
    return { ok: false, email, reason: 'unknown', message: `No console account has the e-mail address ${email}. An administrator adds people on the Identities page (with this e-mail address).` };
  }
  const displayName = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : undefined;
  const base = provisionedName(email);
  for (let attempt = 0; attempt < 5; attempt++) {
    const name = attempt === 0 ? base : `${base}-${attempt + 1}`;
    try {
      const identity = await createIdentity(sql, { kind: 'user', name, email, displayName, roles: [rules.provisionRole] }, SYSTEM_PRINCIPAL);
      return { ok: true, identity, provisioned: true };
    } catch (err) {
      if (!(err instanceof IdentityError && err.code === 'conflict')) throw err;
      // Someone else signed in with this address at the same moment: theirs is the identity.
      if (err.field === 'email') return identityForExternalSignIn(sql, claims, { requireVerifiedEmail: rules.requireVerifiedEmail });
    }
  }
  return { ok: false, email, reason: 'unknown', message: `No console account has the e-mail address ${email}, and no free login name was found to create one. An administrator can add it.` };
}
