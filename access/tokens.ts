import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from '../db/client.js';
import { getIdentity, IdentityError, principalOf } from './identities.js';
import type { Principal, Role } from './principal.js';

// API tokens of identities. The secret is shown once, when issued; the platform keeps its SHA-256
// (tokens are 32 random bytes, so a fast hash is enough) and a short prefix to recognise it by.

export const TOKEN_PREFIX = 'ctem_';
const DAY_MS = 86_400_000;
export const DEFAULT_TOKEN_DAYS = 90;
export const MAX_TOKEN_DAYS = 366;
/** last_used_at is written at most this often per token: a busy CI token must not write on every call. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiToken {
  id: string;
  identityId: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface IssuedToken extends ApiToken {
  /** The whole token: returned here only, never again. */
  token: string;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Looks like one of ours (a recognisable prefix lets secret scanners and people spot a leaked one). */
export const isIssuedToken = (token: string) => token.startsWith(TOKEN_PREFIX);

function tokenRow(r: Record<string, unknown>): ApiToken {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    id: r.id as string,
    identityId: r.identity_id as string,
    name: r.name as string,
    prefix: r.prefix as string,
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at)!,
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
  };
}

/** The expiry of a new token: 90 days by default, in the future and within a year (a year of 366 days tolerates leap years). */
export function tokenExpiry(expiresAt: string | undefined, now = Date.now()): Date {
  if (expiresAt === undefined) return new Date(now + DEFAULT_TOKEN_DAYS * DAY_MS);
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) throw new IdentityError('expiresAt', 'the expiry must be an ISO date-time');
  if (at <= now) throw new IdentityError('expiresAt', 'the expiry must be in the future');
  if (at > now + MAX_TOKEN_DAYS * DAY_MS) throw new IdentityError('expiresAt', 'a token lasts one year at most');
  return new Date(at);
}

export async function issueToken(sql: Sql, identityId: string, input: { name: string; expiresAt?: string | undefined }): Promise<IssuedToken> {
  const identity = await getIdentity(sql, identityId);
  if (!identity) throw new IdentityError('id', 'no such identity', 'not_found');
  if (identity.disabledAt) throw new IdentityError('id', 'the identity is disabled; enable it before issuing a token', 'conflict');
  const name = input.name.trim();
  if (!name || name.length > 100) throw new IdentityError('name', 'a token needs a name of 1 to 100 characters (what it is for)');
  const expiresAt = tokenExpiry(input.expiresAt);
  // ctem_<8 hex of the identity id>_<43 base64url characters of randomness>.
  const token = `${TOKEN_PREFIX}${identity.id.replace(/-/g, '').slice(0, 8)}_${randomBytes(32).toString('base64url')}`;
  const [row] = await sql`
    insert into api_tokens (identity_id, name, prefix, secret_hash, expires_at)
    values (${identity.id}, ${name}, ${token.slice(0, TOKEN_PREFIX.length + 13)}, ${hashToken(token)}, ${expiresAt})
    returning *`;
  return { ...tokenRow(row!), token };
}

export async function listTokens(sql: Sql, identityId: string): Promise<ApiToken[]> {
  return (await sql`select * from api_tokens where identity_id = ${identityId} order by created_at desc, id`).map(tokenRow);
}

/** Revokes a token of the identity; revoking twice keeps the first time. Undefined when the identity has no such token. */
export async function revokeToken(sql: Sql, identityId: string, tokenId: string): Promise<ApiToken | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(tokenId) || !/^[0-9a-f-]{36}$/i.test(identityId)) return undefined;
  const [row] = await sql`
    update api_tokens set revoked_at = coalesce(revoked_at, now())
    where id = ${tokenId} and identity_id = ${identityId}
    returning *`;
  return row ? tokenRow(row) : undefined;
}

export type TokenResolution = { ok: true; principal: Principal; tokenId: string } | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'disabled' };

/** The principal a presented token stands for, or why it stands for none. */
export async function resolveToken(sql: Sql, token: string, now = new Date()): Promise<TokenResolution> {
  if (!isIssuedToken(token)) return { ok: false, reason: 'unknown' };
  const [row] = await sql`
    select t.id as token_id, t.expires_at, t.revoked_at, t.last_used_at, i.id, i.kind, i.name, i.email, i.roles, i.disabled_at
    from api_tokens t join identities i on i.id = t.identity_id
    where t.secret_hash = ${hashToken(token)}`;
  if (!row) return { ok: false, reason: 'unknown' };
  if (row.revoked_at) return { ok: false, reason: 'revoked' };
  if ((row.expires_at as Date) <= now) return { ok: false, reason: 'expired' };
  if (row.disabled_at) return { ok: false, reason: 'disabled' };
  const lastUsed = row.last_used_at as Date | null;
  if (!lastUsed || now.getTime() - lastUsed.getTime() >= LAST_USED_RESOLUTION_MS) {
    // The condition repeats in SQL so concurrent replicas write once per minute between them.
    await sql`
      update api_tokens set last_used_at = ${now}
      where id = ${row.token_id as string} and (last_used_at is null or last_used_at <= ${new Date(now.getTime() - LAST_USED_RESOLUTION_MS)})`;
  }
  return {
    ok: true,
    tokenId: row.token_id as string,
    principal: principalOf({ id: row.id as string, kind: row.kind as 'user' | 'service', name: row.name as string, email: row.email as string | null, roles: row.roles as Role[] }),
  };
}
