import type { Principal, Role } from './principal.js';

// What each role may do. Every route names one permission (access/route-permissions.ts); a
// principal may use a route when one of its roles grants that permission. Owners and managers hold
// the ticket permissions for some tickets only (ticketReach below): their own, or their reports'.

export const PERMISSIONS = [
  /** Every read of the estate: exposures, assets, scopes, policies, feeds, metrics, reports, validation, campaigns. */
  'exposures.read',
  'tickets.read',
  /** Acknowledge and resolve golden tickets. */
  'tickets.act',
  'risk.accept',
  'policies.write',
  'controls.write',
  'feeds.write',
  /** Scopes and hunting hypotheses (saved selectors). */
  'scopes.write',
  'sources.write',
  'context.write',
  /** Scan reports and deploy events. */
  'scans.upload',
  /** Validation evidence and validation runs. */
  'validation.write',
  /** Campaigns, hypothesis runs, backtests. */
  'campaigns.run',
  /** Stored report and metric snapshots. */
  'reports.write',
  'gate.run',
  'identities.admin',
  /** Undoing an asset merge rewrites what every source said about two assets: administrators only. */
  'assets.undo-merge',
  'audit.read',
  /** One's own identity (GET /api/v1/me). */
  'self.read',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const ALL: readonly Permission[] = PERMISSIONS;

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  admin: ALL,
  secops: ALL.filter((p) => p !== 'identities.admin' && p !== 'assets.undo-merge'),
  // Ticket permissions of owners and managers reach only some tickets (ticketReach).
  owner: ['tickets.read', 'tickets.act', 'self.read'],
  manager: ['tickets.read', 'tickets.act', 'self.read'],
  'read-only': ['exposures.read', 'tickets.read', 'self.read'],
  // A pipeline decides its image before deploy and uploads what it scanned and deployed.
  ci: ['gate.run', 'scans.upload', 'self.read'],
};

export function can(principal: Principal | undefined, permission: Permission): boolean {
  return !!principal && principal.roles.some((role) => ROLE_PERMISSIONS[role]?.includes(permission));
}

/** Which tickets a principal's ticket permission reaches. */
export type TicketReach =
  | { kind: 'all' }
  /** Tickets owned by one of `names`; with `reports`, also those of owners whose tickets escalated to one of `names`. */
  | { kind: 'some'; names: string[]; reports: boolean };

const SCOPED_ROLES: ReadonlySet<Role> = new Set(['owner', 'manager']);

export function ticketReach(principal: Principal, permission: 'tickets.read' | 'tickets.act' = 'tickets.read'): TicketReach {
  const everywhere = principal.roles.some((role) => !SCOPED_ROLES.has(role) && ROLE_PERMISSIONS[role].includes(permission));
  if (everywhere) return { kind: 'all' };
  // Tickets name their owner by ITSM user name or e-mail: either may be the principal's.
  const names = [principal.name, ...(principal.email ? [principal.email] : [])];
  return { kind: 'some', names, reports: principal.roles.includes('manager') };
}
