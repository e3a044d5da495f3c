// Who is acting: the authenticated identity every front resolves before it calls into a phase, and
// the one the audit trail records. Roles and what each may do live in access/roles.ts.

export type Role = 'admin' | 'secops' | 'owner' | 'manager' | 'read-only' | 'ci';

export const ROLES: readonly Role[] = ['admin', 'secops', 'owner', 'manager', 'read-only', 'ci'];

export interface Principal {
  /** The identity's id; `bootstrap` for CTEM_API_TOKEN, `system` for the platform itself. */
  id: string;
  kind: 'user' | 'service' | 'bootstrap' | 'system';
  /** Login or service account name: what the audit trail and tickets show. */
  name: string;
  email?: string;
  roles: Role[];
}

/** CTEM_API_TOKEN: the administrator's key that exists before any identity does (first start, CI, the tour). */
export const BOOTSTRAP_PRINCIPAL: Principal = { id: 'bootstrap', kind: 'bootstrap', name: 'api-token', roles: ['admin'] };

/** The platform acting on its own (schedules, workflows, reconciliation). */
export const SYSTEM_PRINCIPAL: Principal = { id: 'system', kind: 'system', name: 'ctem', roles: ['admin'] };
