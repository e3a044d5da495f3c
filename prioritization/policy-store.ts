import type postgres from 'postgres';
import type { Sql } from '../db/client.js';
import { defaultPolicy, parsePolicy, PolicyError, shippedPolicy, SHIPPED_POLICIES, type Policy } from './policy.js';

// Policies in the database: documents are validated before they are stored, a version is immutable
// once saved, exactly one is active (the one scoring uses), others are shadow (evaluated only) or
// retired. Changing the policy is saving a new document and activating it: no code change.

export type PolicyStatus = 'active' | 'shadow' | 'retired';

export interface StoredPolicy {
  version: string;
  name: string;
  status: PolicyStatus;
  createdAt: Date;
  activatedAt: Date | null;
}

// Serialises activation and seeding across workers (no two active policies).
const POLICY_LOCK_ID = 0x706f6c;

const where = (version: string) => `policy ${version}`;

async function lock(tx: postgres.TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${POLICY_LOCK_ID})`;
}

/** The active policy; when none is active yet, the shipped default is saved and activated. */
export async function activePolicy(sql: Sql): Promise<Policy> {
  const [row] = await sql<{ version: string; document: unknown }[]>`
    select version, document from policies where status = 'active' order by activated_at desc nulls last limit 1`;
  if (row) return parsePolicy(row.document, where(row.version));
  const seed = defaultPolicy();
  await sql.begin(async (tx) => {
    await lock(tx);
    const [again] = await tx`select 1 from policies where status = 'active'`;
    if (again) return;
    await insertOrCheck(tx, seed);
    await tx`update policies set status = 'active', activated_at = now() where version = ${seed.version}`;
  });
  await seedShippedPolicies(sql);
  return activePolicy(sql);
}

/**
 * Saves every shipped policy the database does not have yet, as shadow: the others (CISA BOD 26-04)
 * stay available to evaluate and activate. Which one is active is never changed here: an estate
 * that runs an older default keeps it until someone activates another.
 */
export async function seedShippedPolicies(sql: Sql): Promise<string[]> {
  const added: string[] = [];
  for (const file of SHIPPED_POLICIES) {
    const policy = shippedPolicy(file);
    const [row] = await sql`
      insert into policies (version, document, status) values (${policy.version}, ${sql.json(policy.document as postgres.JSONValue)}, 'shadow')
      on conflict (version) do nothing returning version`;
    if (row) added.push(policy.version);
  }
  return added;
}

/** Stores the document unless this version exists; a different document under a saved version is an error. */
async function insertOrCheck(tx: postgres.TransactionSql, policy: Policy, status: PolicyStatus = 'shadow'): Promise<boolean> {
  const [inserted] = await tx`
    insert into policies (version, document, status) values (${policy.version}, ${tx.json(policy.document as postgres.JSONValue)}, ${status})
    on conflict (version) do nothing returning version`;
  if (inserted) return true;
  const [same] = await tx`select document = ${tx.json(policy.document as postgres.JSONValue)} as same from policies where version = ${policy.version}`;
  if (!same?.same) {
    throw new PolicyError(where(policy.version), 'version', 'already saved with a different document; versions are immutable, save the change under a new version', 'conflict');
  }
  return false;
}

/**
 * Validates and stores a policy document. Saving the same document again changes nothing; saving a
 * different one under an existing version fails. `active` also activates it.
 */
export async function savePolicy(sql: Sql, document: unknown, status: PolicyStatus = 'shadow'): Promise<{ policy: Policy; created: boolean }> {
  const policy = parsePolicy(document, typeof (document as { version?: unknown })?.version === 'string' ? where((document as { version: string }).version) : 'policy document');
  const created = await sql.begin(async (tx) => {
    await lock(tx);
    const created = await insertOrCheck(tx, policy, status === 'active' ? 'shadow' : status);
    if (status === 'active') await activate(tx, policy.version);
    return created;
  });
  return { policy, created };
}

async function activate(tx: postgres.TransactionSql, version: string): Promise<void> {
  await tx`update policies set status = 'retired' where status = 'active' and version <> ${version}`;
  await tx`update policies set status = 'active', activated_at = now() where version = ${version} and status <> 'active'`;
}

/** Makes a saved version the active one; the previously active version is retired. */
export async function activatePolicy(sql: Sql, version: string): Promise<Policy> {
  return sql.begin(async (tx) => {
    await lock(tx);
    const [row] = await tx<{ document: unknown }[]>`select document from policies where version = ${version}`;
    if (!row) throw new PolicyError(where(version), 'version', 'no such policy version', 'not_found');
    const policy = parsePolicy(row.document, where(version));
    await activate(tx, version);
    return policy;
  });
}

/** One stored version, parsed (for shadow scoring a candidate). */
export async function getPolicy(sql: Sql, version: string): Promise<Policy | undefined> {
  const [row] = await sql<{ document: unknown }[]>`select document from policies where version = ${version}`;
  return row ? parsePolicy(row.document, where(version)) : undefined;
}

/** Every stored version, the active one first, then newest first. */
export async function listPolicies(sql: Sql): Promise<StoredPolicy[]> {
  const rows = await sql<{ version: string; name: string | null; status: PolicyStatus; created_at: Date; activated_at: Date | null }[]>`
    select version, document->>'name' as name, status, created_at, activated_at from policies
    order by status = 'active' desc, created_at desc, version`;
  return rows.map((r) => ({ version: r.version, name: r.name ?? r.version, status: r.status, createdAt: r.created_at, activatedAt: r.activated_at }));
}
