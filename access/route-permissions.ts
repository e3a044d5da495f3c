import type { Permission } from './roles.js';

// Every /api route and the one permission it needs, keyed `METHOD /path` with the OpenAPI
// document's `{param}` syntax. A route missing here is refused to everyone (deny by default), so a
// new route is unusable until someone decides who may call it.

export const ROUTE_PERMISSIONS: Readonly<Record<string, Permission>> = {
  'GET /api/v1/me': 'self.read',

  'GET /api/v1/assets': 'exposures.read',
  'GET /api/v1/assets/{id}': 'exposures.read',
  'GET /api/v1/assets/{id}/history': 'exposures.read',
  'POST /api/v1/assets/merges/{id}/undo': 'assets.undo-merge',
  'GET /api/v1/owners': 'exposures.read',
  'GET /api/v1/exposures': 'exposures.read',
  'GET /api/v1/exposures/{id}': 'exposures.read',
  'GET /api/v1/exposures/{id}/attack-path': 'exposures.read',
  'GET /api/v1/attack-paths': 'exposures.read',
  'GET /api/v1/scopes': 'exposures.read',
  'PUT /api/v1/scopes/{name}': 'scopes.write',
  'DELETE /api/v1/scopes/{name}': 'scopes.write',
  'GET /api/v1/hypotheses': 'exposures.read',
  'GET /api/v1/hypotheses/{name}': 'exposures.read',
  'GET /api/v1/hypotheses/{name}/results': 'exposures.read',
  'GET /api/v1/hypotheses/{name}/exposures': 'exposures.read',
  'GET /api/v1/hypotheses/{name}/campaigns': 'exposures.read',
  'PUT /api/v1/hypotheses/{name}': 'scopes.write',
  'DELETE /api/v1/hypotheses/{name}': 'scopes.write',
  'POST /api/v1/hypotheses/{name}/run': 'campaigns.run',
  'POST /api/v1/hypotheses/{name}/campaign': 'campaigns.run',
  'GET /api/v1/campaigns': 'exposures.read',
  'GET /api/v1/campaigns/{id}': 'exposures.read',
  'POST /api/v1/campaigns': 'campaigns.run',
  'POST /api/v1/backtests': 'campaigns.run',

  'POST /api/v1/scans': 'scans.upload',
  'GET /api/v1/scans/{id}': 'exposures.read',
  'POST /api/v1/events/deploy': 'scans.upload',
  'GET /api/v1/sources': 'exposures.read',
  'PUT /api/v1/sources/{name}': 'sources.write',
  'DELETE /api/v1/sources/{name}': 'sources.write',
  'POST /api/v1/sources/{name}/runs': 'sources.write',
  'POST /api/v1/context': 'context.write',
  'POST /api/v1/context/shadow': 'context.write',

  'GET /api/v1/policies': 'exposures.read',
  'GET /api/v1/policies/{version}': 'exposures.read',
  'GET /api/v1/policies/{version}/shadow': 'exposures.read',
  'POST /api/v1/policies': 'policies.write',
  'POST /api/v1/policies/{version}/activate': 'policies.write',
  'GET /api/v1/controls': 'exposures.read',
  'PUT /api/v1/controls/{name}': 'controls.write',
  'DELETE /api/v1/controls/{name}': 'controls.write',
  'GET /api/v1/intel/feeds': 'exposures.read',
  'GET /api/v1/intel/feeds/{kind}/{version}/shadow': 'exposures.read',
  'POST /api/v1/intel/{kind}': 'feeds.write',
  'POST /api/v1/intel/feeds/{kind}/{version}/promote': 'feeds.write',
  'POST /api/v1/intel/feeds/{kind}/runs': 'feeds.write',
  'POST /api/v1/gate': 'gate.run',

  'GET /api/v1/validation/evidence': 'exposures.read',
  'POST /api/v1/validation/evidence': 'validation.write',
  'GET /api/v1/validations': 'exposures.read',
  'GET /api/v1/validations/{id}': 'exposures.read',
  'POST /api/v1/validations': 'validation.write',

  'GET /api/v1/tickets': 'tickets.read',
  'GET /api/v1/tickets/{key}': 'tickets.read',
  'POST /api/v1/tickets/{key}/acknowledge': 'tickets.act',
  'POST /api/v1/tickets/{key}/resolve': 'tickets.act',
  'POST /api/v1/tickets/{key}/risk-acceptance': 'risk.accept',
  // Digests name managers and the tickets of many owners: not scoped per owner, so not a ticket read.
  'GET /api/v1/escalation-digests': 'exposures.read',

  'GET /api/v1/metrics/overview': 'exposures.read',
  'GET /api/v1/metrics/executive': 'exposures.read',
  'GET /api/v1/metrics/snapshots': 'exposures.read',
  'POST /api/v1/metrics/snapshots': 'reports.write',
  'GET /api/v1/metrics/scan-coverage': 'exposures.read',
  'GET /api/v1/metrics/mobilization': 'exposures.read',
  'GET /api/v1/metrics/response': 'exposures.read',
  'GET /api/v1/reports/noise': 'exposures.read',
  'POST /api/v1/reports/noise/snapshots': 'reports.write',
  'GET /api/v1/reports/orphan-assets': 'exposures.read',
  'POST /api/v1/reports/orphan-assets': 'reports.write',
  'GET /api/v1/openapi.json': 'self.read',

  'GET /api/v1/identities': 'identities.admin',
  'POST /api/v1/identities': 'identities.admin',
  'GET /api/v1/identities/{id}': 'identities.admin',
  'PATCH /api/v1/identities/{id}': 'identities.admin',
  'GET /api/v1/identities/{id}/tokens': 'identities.admin',
  'POST /api/v1/identities/{id}/tokens': 'identities.admin',
  'DELETE /api/v1/identities/{id}/tokens/{tokenId}': 'identities.admin',
  'GET /api/v1/audit': 'audit.read',
  'GET /api/v1/audit/verify': 'audit.read',
  'GET /api/v1/audit/{id}': 'audit.read',
};

/** Hono's `/a/:id` as the OpenAPI document writes it, `/a/{id}`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)(\{[^}]*\})?/g, '{$1}');

export function routePermission(method: string, openApiPathname: string): Permission | undefined {
  return ROUTE_PERMISSIONS[`${method.toUpperCase()} ${openApiPathname}`];
}

/** The console's pages and forms, keyed `METHOD /path` in Hono's `:param` syntax; missing ones are refused. */
export const CONSOLE_ROUTE_PERMISSIONS: Readonly<Record<string, Permission>> = {
  'GET /console': 'exposures.read',
  'GET /console/exposures': 'exposures.read',
  'GET /console/exposures/:id': 'exposures.read',
  'GET /console/executive': 'exposures.read',
  'GET /console/program': 'exposures.read',
  'GET /console/program/policies/:version/shadow': 'exposures.read',
  'GET /console/hunting': 'exposures.read',
  'GET /console/hunting/:name': 'exposures.read',
  'GET /console/api': 'self.read',
  'GET /console/tickets': 'tickets.read',
  'GET /console/tickets/:key': 'tickets.read',
  'POST /console/tickets/:key/acknowledge': 'tickets.act',
  'POST /console/tickets/:key/exception-request': 'tickets.act',
  'POST /console/hunting': 'scopes.write',
  'POST /console/hunting/:name/run': 'campaigns.run',
  'POST /console/hunting/:name/campaign': 'campaigns.run',
  'POST /console/metrics/snapshot': 'reports.write',
  'GET /console/identities': 'identities.admin',
  'POST /console/identities': 'identities.admin',
  'POST /console/identities/:id/disable': 'identities.admin',
  'POST /console/identities/:id/enable': 'identities.admin',
  'POST /console/identities/:id/tokens': 'identities.admin',
  'GET /console/audit': 'audit.read',
  'GET /console/audit/:id{[0-9]+}': 'audit.read',
};

/**
 * Console routes open without a session: signing in and out, and the static assets. Everything
 * else under /console needs a viewer and a permission from the table above.
 */
export const CONSOLE_PUBLIC_ROUTES: readonly string[] = [
  'GET /',
  'GET /console/assets/:name',
  'GET /console/sign-in',
  'POST /console/sign-in',
  'POST /console/sign-out',
  'GET /console/sign-in/oidc',
  'GET /console/sign-in/oidc/callback',
];
