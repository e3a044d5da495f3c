import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Sql } from '../db/client.js';
import { ROLES, type Principal, type Role } from './principal.js';

// People and service accounts. A person may have a local console password (scrypt, verified in
// constant time); service accounts sign in only with API tokens (access/tokens.ts).

export interface Identity {
  id: string;
  kind: 'user' | 'service';
  name: string;
  displayName: string | null;
  email: string | null;
  roles: Role[];
  hasPassword: boolean;
  disabledAt: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

/** A request the caller got wrong: which field, and why. */
export class IdentityError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly code: 'invalid' | 'conflict' | 'not_found' = 'invalid',
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9][a-z0-9._@-]{1,99}$/i;
export const MIN_PASSWORD_LENGTH = 12;

// scrypt cost: N=2^15 takes ~50 ms and 32 MiB, enough to slow guessing and cheap for a sign-in.
const SCRYPT: ScryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64url): the parameters travel with the hash, so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem! });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

// A hash of nothing anyone knows: an unknown name costs as much as a wrong password (no user enumeration by timing).
let decoy: Promise<string> | undefined;

function checkRoles(roles: unknown): Role[] {
  if (!Array.isArray(roles) || roles.length === 0) throw new IdentityError('roles', `at least one role is required (${ROLES.join(', ')})`);
  for (const role of roles) if (!ROLES.includes(role as Role)) throw new IdentityError('roles', `unknown role ${JSON.stringify(role)}; roles are ${ROLES.join(', ')}`);
  return [...new Set(roles as Role[])];
}

function checkEmail(email: string | null | undefined): string | null {
  if (email === undefined || email === null || email === '') return null;
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new IdentityError('email', `${JSON.stringify(email)} is not an e-mail address`);
  return email;
}

function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH) throw new IdentityError('password', `a password has ${MIN_PASSWORD_LENGTH} characters or more`);
  return password;
}

function identityRow(r: Record<string, unknown>): Identity {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    id: r.id as string,
    kind: r.kind as Identity['kind'],
    name: r.name as string,
    displayName: r.display_name as string | null,
    email: r.email as string | null,
    roles: r.roles as Role[],
    hasPassword: r.password_hash !== null,
    disabledAt: iso(r.disabled_at),
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

export function principalOf(identity: Pick<Identity, 'id' | 'kind' | 'name' | 'email' | 'roles'>): Principal {
  return { id: identity.id, kind: identity.kind, name: identity.name, ...(identity.email ? { email: identity.email } : {}), roles: identity.roles };
}

const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

function uniqueViolation(err: unknown): IdentityError | undefined {
  const e = err as { code?: string; constraint_name?: string };
  if (e?.code !== '23505') return undefined;
  return e.constraint_name?.includes('email')
    ? new IdentityError('email', 'another identity has this e-mail address', 'conflict')
    : new IdentityError('name', 'another identity has this name', 'conflict');
}

export interface NewIdentity {
  kind: 'user' | 'service';
  name: string;
  displayName?: string | undefined;
  email?: string | undefined;
  roles: Role[];
  password?: string | undefined;
}

export async function createIdentity(sql: Sql, input: NewIdentity, by: Principal): Promise<Identity> {
  if (!NAME.test(input.name)) throw new IdentityError('name', 'a name is 2 to 100 letters, digits, dots, dashes, underscores or @');
  if (input.kind === 'service' && input.password) throw new IdentityError('password', 'service accounts sign in with API tokens, not passwords');
  const roles = checkRoles(input.roles);
  const email = checkEmail(input.email);
  const passwordHash = input.password ? await hashPassword(checkPassword(input.password)) : null;
  try {
    const [row] = await sql`
      insert into identities (kind, name, display_name, email, roles, password_hash, created_by)
      values (${input.kind}, ${input.name}, ${input.displayName ?? null}, ${email}, ${roles}, ${passwordHash}, ${by.name})
      returning *`;
    return identityRow(row!);
  } catch (err) {
    throw uniqueViolation(err) ?? err;
  }
}

export async function listIdentities(sql: Sql): Promise<Identity[]> {
  // Identities are people and service accounts: hundreds, not millions.
  return (await sql`select * from identities order by name`).map(identityRow);
}

export async function getIdentity(sql: Sql, id: string): Promise<Identity | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await sql`select * from identities where id = ${id}`;
  return row ? identityRow(row) : undefined;
}

/** By login name or e-mail (case-insensitive), as Slack and the ITSMs name people. */
export async function findIdentity(sql: Sql, nameOrEmail: string): Promise<Identity | undefined> {
  const [row] = await sql`select * from identities where name = ${nameOrEmail} or lower(email) = lower(${nameOrEmail}) order by (name = ${nameOrEmail}) desc limit 1`;
  return row ? identityRow(row) : undefined;
}

export interface IdentityUpdate {
  displayName?: string | null | undefined;
  email?: string | null | undefined;
  roles?: Role[] | undefined;
  password?: string | null | undefined;
  /** true disables (tokens and sessions stop working at once); false enables again. */
  disabled?: boolean | undefined;
}

export async function updateIdentity(sql: Sql, id: string, update: IdentityUpdate): Promise<Identity> {
  const current = await getIdentity(sql, id);
  if (!current) throw new IdentityError('id', 'no such identity', 'not_found');
  if (update.password && current.kind === 'service') throw new IdentityError('password', 'service accounts sign in with API tokens, not passwords');
  const set: Record<string, unknown> = {};
  if (update.displayName !== undefined) set.display_name = update.displayName;
  if (update.email !== undefined) set.email = checkEmail(update.email);
  if (update.roles !== undefined) set.roles = checkRoles(update.roles);
  if (update.password !== undefined) set.password_hash = update.password === null ? null : await hashPassword(checkPassword(update.password));
  if (update.disabled !== undefined) set.disabled_at = update.disabled ? (current.disabledAt ? new Date(current.disabledAt) : new Date()) : null;
  if (Object.keys(set).length === 0) return current;
  try {
    const [row] = await sql`update identities set ${sql(set)}, updated_at = now() where id = ${id} returning *`;
    return identityRow(row!);
  } catch (err) {
    throw uniqueViolation(err) ?? err;
  }
}

/** A console sign-in with name (or e-mail) and password: the identity, or undefined (wrong, unknown, disabled or no password). */
export async function authenticatePassword(sql: Sql, nameOrEmail: string, password: string): Promise<Identity | undefined> {
  const [row] = await sql`select * from identities where kind = 'user' and (name = ${nameOrEmail} or lower(email) = lower(${nameOrEmail})) limit 1`;
  if (!row?.password_hash) {
    await verifyPassword(password, await (decoy ??= hashPassword(randomBytes(16).toString('hex'))));
    return undefined;
  }
  const ok = await verifyPassword(password, row.password_hash as string);
  return ok && !row.disabled_at ? identityRow(row) : undefined;
}

/**
 * The name a ticket, policy or hypothesis records for an action. An identity's own name; the
 * bootstrap token (CTEM_API_TOKEN) stands for no one in particular, so a name its caller gives is kept
 * as the display name, as before identities existed.
 */
export function actorName(principal: Principal, claimed?: string | undefined): string {
  if (principal.kind === 'bootstrap' || principal.kind === 'system') return claimed?.trim() || principal.name;
  return principal.name;
}

/**
 * The identity with this e-mail address (case-insensitive), as Slack and the ITSMs name people:
 * its principal, `disabled`, or undefined when no identity has the address.
 */
export async function identityByEmail(sql: Sql, email: string): Promise<Principal | 'disabled' | undefined> {
  const [row] = await sql`select * from identities where lower(email) = lower(${email})`;
  if (!row) return undefined;
  return row.disabled_at ? 'disabled' : principalOf(identityRow(row));
}

/**
 * How a change made in the ITSM records who made it: the identity with the person's e-mail (or, for
 * ServiceNow, whose name is their user name), else the ITSM's own name for them as a display name.
 */
export async function itsmActorName(sql: Sql, user: { userName?: string | undefined; email?: string | undefined; displayName?: string | undefined }): Promise<string | undefined> {
  const byEmail = user.email ? await identityByEmail(sql, user.email) : undefined;
  if (byEmail && byEmail !== 'disabled') return byEmail.name;
  if (user.userName) {
    const [row] = await sql`select name from identities where name = ${user.userName} and disabled_at is null`;
    if (row) return row.name as string;
  }
  return user.userName || user.email || user.displayName || undefined;
}
