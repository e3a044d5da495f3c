import { z } from 'zod';
import type { Sql } from '../db/client.js';

// Compensating controls (a WAF rule, segmentation, a disabled feature...): what they mitigate, where,
// and with what effect on the policy. Scoring reads them directly; expired ones are ignored there.

const list = z.array(z.string().min(1)).min(1).optional();

export const ControlInput = z
  .strictObject({
    name: z.string().min(1).max(200),
    kind: z.enum(['waf', 'segmentation', 'edr', 'feature_disabled', 'other']),
    /** A finding matching any listed value is mitigated (ports: every internet-exposed port of its asset is listed). */
    mitigates: z
      .strictObject({
        issueIds: list,
        cwes: z.array(z.string().regex(/^CWE-\d+$/, 'expected CWE-<number>')).min(1).optional(),
        components: list,
        ports: z.array(z.string().regex(/^(\d+(-\d+)?\/[a-z]+|all)$/, 'expected like 443/tcp')).min(1).optional(),
      })
      .refine((m) => m.issueIds || m.cwes || m.components || m.ports, 'name at least one of issueIds, cwes, components, ports'),
    appliesTo: z
      .strictObject({ assetKeys: list, businessServices: list, environments: list, all: z.boolean().optional() })
      .refine((a) => a.assetKeys || a.businessServices || a.environments || a.all, 'name at least one of assetKeys, businessServices, environments, or all: true'),
    /** not_exposed: blocks the path from the internet; not_exploitable: blocks exploitation outright. */
    effect: z.enum(['not_exposed', 'not_exploitable']),
    description: z.string().optional(),
    expiresAt: z.iso.datetime({ offset: true }).nullable().optional(),
  });
export type ControlInput = z.infer<typeof ControlInput>;

export interface Control extends Omit<ControlInput, 'expiresAt'> {
  id: number;
  expiresAt: Date | null;
  createdAt: Date;
  /** False once expiresAt has passed: scoring no longer counts it. */
  active: boolean;
  /**
   * What a validation probe found of the claim (validation/control-checks.ts): `failed` (the probe
   * got through) makes scoring ignore the control; a changed control is `unverified` again.
   */
  verification: 'verified' | 'failed' | 'unverified';
  verifiedAt: Date | null;
  verificationDetail: Record<string, unknown> | null;
}

/** A control that cannot be stored, with the JSON path and the reason. */
export class ControlError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`compensating control: ${path || '(document)'}: ${reason}`);
    this.name = 'ControlError';
  }
}

export function parseControl(input: unknown): ControlInput {
  const parsed = ControlInput.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [...issue.path, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]!] : [])]
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`))
    .join('');
  throw new ControlError(path, issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message);
}

type Row = {
  id: number;
  name: string;
  kind: ControlInput['kind'];
  mitigates: ControlInput['mitigates'];
  applies_to: ControlInput['appliesTo'];
  effect: ControlInput['effect'];
  description: string | null;
  expires_at: Date | null;
  created_at: Date;
  active: boolean;
  verification: Control['verification'];
  verified_at: Date | null;
  verification_detail: Record<string, unknown> | null;
};

const toControl = (r: Row): Control => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  mitigates: r.mitigates,
  appliesTo: r.applies_to,
  effect: r.effect,
  ...(r.description !== null ? { description: r.description } : {}),
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  active: r.active,
  verification: r.verification,
  verifiedAt: r.verified_at,
  verificationDetail: r.verification_detail,
});

/** Creates the control, or replaces the one with the same name. */
export async function saveControl(sql: Sql, input: unknown): Promise<Control> {
  const c = parseControl(input);
  const [row] = await sql<Row[]>`
    insert into compensating_controls (name, kind, mitigates, applies_to, effect, description, expires_at)
    values (${c.name}, ${c.kind}, ${sql.json(c.mitigates)}, ${sql.json(c.appliesTo)}, ${c.effect}, ${c.description ?? null}, ${c.expiresAt ?? null})
    on conflict (name) do update set kind = excluded.kind, mitigates = excluded.mitigates, applies_to = excluded.applies_to,
      effect = excluded.effect, description = excluded.description, expires_at = excluded.expires_at,
      -- A changed claim has not been checked yet.
      verification = 'unverified', verified_at = null, verification_detail = null
    returning *, (expires_at is null or expires_at > now()) as active`;
  return toControl(row!);
}

export async function getControl(sql: Sql, name: string): Promise<Control | undefined> {
  const [row] = await sql<Row[]>`select *, (expires_at is null or expires_at > now()) as active from compensating_controls where name = ${name}`;
  return row ? toControl(row) : undefined;
}

/** All controls by name; `activeOnly` leaves out the expired ones. */
export async function listControls(sql: Sql, { activeOnly = false }: { activeOnly?: boolean } = {}): Promise<Control[]> {
  const rows = await sql<Row[]>`
    select *, (expires_at is null or expires_at > now()) as active from compensating_controls
    where ${activeOnly} = false or expires_at is null or expires_at > now()
    order by name`;
  return rows.map(toControl);
}

/** Removes a control; true when it existed. Findings change on their next rescore. */
export async function deleteControl(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql`delete from compensating_controls where name = ${name} returning 1`;
  return rows.length > 0;
}
