import { z } from 'zod';
import { likeLiteral, type Sql } from '../db/client.js';

// Scopes: named, saved selectors over the asset inventory. Exposure lists, noise reports (and later
// campaigns) run inside one.

export const ScopeSelector = z
  .object({
    businessServices: z.array(z.string().min(1)).optional(),
    environments: z.array(z.string().min(1)).optional(),
    owners: z.array(z.string().min(1)).optional(),
    assetKinds: z.array(z.enum(['container_image', 'filesystem', 'repository', 'host', 'other', 'container'])).optional(),
    internetFacing: z.boolean().optional(),
    criticalities: z.array(z.enum(['critical', 'high', 'medium', 'low'])).optional(),
    assetNamePrefix: z.string().min(1).optional(),
  })
  .strict();
export type ScopeSelector = z.infer<typeof ScopeSelector>;

export interface Scope {
  name: string;
  selector: ScopeSelector;
  description: string | null;
}

/** A SQL condition on the `assets` row aliased `a`; every value is a bind parameter. */
export function scopeCondition(sql: Sql, s: ScopeSelector) {
  return sql`
    ${s.businessServices ? sql`and a.business_service = any(${s.businessServices})` : sql``}
    ${s.environments ? sql`and a.environment = any(${s.environments})` : sql``}
    ${s.owners ? sql`and a.owner = any(${s.owners})` : sql``}
    ${s.assetKinds ? sql`and a.kind = any(${s.assetKinds})` : sql``}
    ${s.criticalities ? sql`and a.criticality = any(${s.criticalities})` : sql``}
    ${s.internetFacing !== undefined ? sql`and coalesce(a.internet_facing, false) = ${s.internetFacing}` : sql``}
    ${s.assetNamePrefix ? sql`and a.name like ${likeLiteral(s.assetNamePrefix) + '%'}` : sql``}`;
}

export async function saveScope(sql: Sql, scope: Scope): Promise<Scope> {
  const [row] = await sql`
    insert into scopes (name, selector, description) values (${scope.name}, ${sql.json(scope.selector)}, ${scope.description})
    on conflict (name) do update set selector = excluded.selector, description = excluded.description
    returning name, selector, description`;
  return row as Scope;
}

export async function getScope(sql: Sql, name: string): Promise<Scope | undefined> {
  const [row] = await sql`select name, selector, description from scopes where name = ${name}`;
  return row as Scope | undefined;
}

export async function listScopes(sql: Sql): Promise<Scope[]> {
  return (await sql`select name, selector, description from scopes order by name`) as unknown as Scope[];
}

export async function deleteScope(sql: Sql, name: string): Promise<boolean> {
  return (await sql`delete from scopes where name = ${name}`).count > 0;
}
