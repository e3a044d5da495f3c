import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_PERMISSIONS } from '../../access/route-permissions.js';
import { ROLES, type Role } from '../../access/principal.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Every route of the OpenAPI document, called with a token of every role: allowed (anything but
// 401/403) or denied (403 forbidden) exactly as this table says. The table is written out here, not
// derived from the code's permission table, so a change to who may do what shows up as a test change.

const A = 'admin';
const S = 'secops';
const R = 'read-only';
const O = 'owner';
const M = 'manager';
const C = 'ci';
const READERS = [A, S, R];
const TICKETS = [A, S, R, O, M];
const ACTORS = [A, S, O, M];
const WRITERS = [A, S];
const EVERYONE = [A, S, R, O, M, C];

const EXPECTED: Record<string, readonly string[]> = {
  'GET /api/v1/me': EVERYONE,
  'GET /api/v1/assets': READERS,
  'GET /api/v1/assets/{id}': READERS,
  'GET /api/v1/assets/{id}/history': READERS,
  'POST /api/v1/assets/merges/{id}/undo': [A],
  'GET /api/v1/owners': READERS,
  'GET /api/v1/exposures': READERS,
  'GET /api/v1/exposures/{id}': READERS,
  'GET /api/v1/exposures/{id}/attack-path': READERS,
  'GET /api/v1/attack-paths': READERS,
  'GET /api/v1/scopes': READERS,
  'PUT /api/v1/scopes/{name}': WRITERS,
  'DELETE /api/v1/scopes/{name}': WRITERS,
  'GET /api/v1/hypotheses': READERS,
  'GET /api/v1/hypotheses/{name}': READERS,
  'GET /api/v1/hypotheses/{name}/results': READERS,
  'GET /api/v1/hypotheses/{name}/exposures': READERS,
  'GET /api/v1/hypotheses/{name}/campaigns': READERS,
  'PUT /api/v1/hypotheses/{name}': WRITERS,
  'DELETE /api/v1/hypotheses/{name}': WRITERS,
  'POST /api/v1/hypotheses/{name}/run': WRITERS,
  'POST /api/v1/hypotheses/{name}/campaign': WRITERS,
  'GET /api/v1/campaigns': READERS,
  'GET /api/v1/campaigns/{id}': READERS,
  'POST /api/v1/campaigns': WRITERS,
  'POST /api/v1/backtests': WRITERS,
  'POST /api/v1/scans': [A, S, C],
  'GET /api/v1/scans/{id}': READERS,
  'POST /api/v1/events/deploy': [A, S, C],
  'GET /api/v1/sources': READERS,
  'PUT /api/v1/sources/{name}': WRITERS,
  'DELETE /api/v1/sources/{name}': WRITERS,
  'POST /api/v1/sources/{name}/runs': WRITERS,
  'POST /api/v1/context': WRITERS,
  'POST /api/v1/context/shadow': WRITERS,
  'GET /api/v1/policies': READERS,
  'GET /api/v1/policies/{version}': READERS,
  'GET /api/v1/policies/{version}/shadow': READERS,
  'POST /api/v1/policies': WRITERS,
  'POST /api/v1/policies/{version}/activate': WRITERS,
  'GET /api/v1/controls': READERS,
  'PUT /api/v1/controls/{name}': WRITERS,
  'DELETE /api/v1/controls/{name}': WRITERS,
  'GET /api/v1/intel/feeds': READERS,
  'GET /api/v1/intel/feeds/{kind}/{version}/shadow': READERS,
  'POST /api/v1/intel/{kind}': WRITERS,
  'POST /api/v1/intel/feeds/{kind}/{version}/promote': WRITERS,
  'POST /api/v1/intel/feeds/{kind}/runs': WRITERS,
  'POST /api/v1/gate': [A, S, C],
  'GET /api/v1/validation/evidence': READERS,
  'POST /api/v1/validation/evidence': WRITERS,
  'GET /api/v1/validations': READERS,
  'GET /api/v1/validations/{id}': READERS,
  'POST /api/v1/validations': WRITERS,
  'GET /api/v1/tickets': TICKETS,
  'GET /api/v1/tickets/{key}': TICKETS,
  'POST /api/v1/tickets/{key}/acknowledge': ACTORS,
  'POST /api/v1/tickets/{key}/resolve': ACTORS,
  'POST /api/v1/tickets/{key}/risk-acceptance': WRITERS,
  'GET /api/v1/escalation-digests': READERS,
  'GET /api/v1/metrics/overview': READERS,
  'GET /api/v1/metrics/executive': READERS,
  'GET /api/v1/metrics/snapshots': READERS,
  'POST /api/v1/metrics/snapshots': WRITERS,
  'GET /api/v1/metrics/scan-coverage': READERS,
  'GET /api/v1/metrics/mobilization': READERS,
  'GET /api/v1/metrics/response': READERS,
  'GET /api/v1/reports/noise': READERS,
  'POST /api/v1/reports/noise/snapshots': WRITERS,
  'GET /api/v1/reports/orphan-assets': READERS,
  'POST /api/v1/reports/orphan-assets': WRITERS,
  'GET /api/v1/identities': [A],
  'POST /api/v1/identities': [A],
  'GET /api/v1/identities/{id}': [A],
  'PATCH /api/v1/identities/{id}': [A],
  'GET /api/v1/identities/{id}/tokens': [A],
  'POST /api/v1/identities/{id}/tokens': [A],
  'DELETE /api/v1/identities/{id}/tokens/{tokenId}': [A],
  'GET /api/v1/audit': WRITERS,
  'GET /api/v1/audit/verify': WRITERS,
  'GET /api/v1/audit/{id}': WRITERS,
};

let platform: TestPlatform;
const tokens = new Map<Role, string>();
let routes: string[] = [];

const asRole = (role: Role, path: string, init: RequestInit = {}) =>
  fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${tokens.get(role)}`, ...(init.headers ?? {}) } });

/** A request that reaches the route: path parameters filled with names that exist nowhere, an empty JSON body. */
function requestFor(route: string): { path: string; init: RequestInit } {
  const [method, template] = route.split(' ') as [string, string];
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'id' || name === 'tokenId' ? '00000000-0000-4000-8000-000000000000' : `matrix-${name}`));
  return { path, init: { method, ...(method === 'GET' || method === 'DELETE' ? {} : { headers: { 'content-type': 'application/json' }, body: '{}' }) } };
}

beforeAll(async () => {
  // With a worker: some routes wait for the workflow they start (the orphan-asset report).
  platform = await startTestPlatform();
  for (const role of ROLES) {
    const identity = await json<{ id: string }>(
      platform.api('/api/v1/identities', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'service', name: `matrix-${role}`, roles: [role] }) }),
    );
    const issued = await json<{ token: string }>(
      platform.api(`/api/v1/identities/${identity.id}/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'matrix' }) }),
    );
    tokens.set(role, issued.token);
  }
  const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(platform.api('/api/v1/openapi.json'));
  routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
}, 120_000);

afterAll(async () => {
  await platform?.stop();
});

describe('the role matrix', () => {
  it('has an expected row and a permission for every route of the OpenAPI document, and nothing more', () => {
    expect(routes.length).toBeGreaterThan(70);
    expect(routes.filter((r) => !(r in EXPECTED))).toEqual([]);
    expect(routes.filter((r) => !(r in ROUTE_PERMISSIONS))).toEqual([]);
    expect(Object.keys(EXPECTED).filter((r) => !routes.includes(r))).toEqual([]);
  });

  it('allows and denies every route to every role as the table says', async () => {
    const mismatches: string[] = [];
    for (const route of routes) {
      const { path, init } = requestFor(route);
      for (const role of ROLES) {
        let res: Response;
        try {
          res = await asRole(role, path, { ...init, signal: AbortSignal.timeout(30_000) });
        } catch (err) {
          mismatches.push(`${route} as ${role}: ${(err as Error).message}`);
          continue;
        }
        const body = await res.text();
        const allowed = EXPECTED[route]!.includes(role);
        if (allowed && (res.status === 401 || res.status === 403)) mismatches.push(`${route} as ${role}: ${res.status} ${body}`);
        if (!allowed) {
          if (res.status !== 403) mismatches.push(`${route} as ${role}: expected 403, got ${res.status} ${body.slice(0, 200)}`);
          else expect(JSON.parse(body).error.code).toBe('forbidden');
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 300_000);

  it('refuses a route that has no permission to everyone, the administrator too (deny by default)', async () => {
    const table = ROUTE_PERMISSIONS as Record<string, string>;
    const kept = table['GET /api/v1/owners']!;
    expect((await asRole('admin', '/api/v1/owners')).status).toBe(200);
    delete table['GET /api/v1/owners'];
    try {
      for (const res of [await asRole('admin', '/api/v1/owners'), await platform.api('/api/v1/owners')]) {
        expect(res.status).toBe(403);
        expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'forbidden', message: 'GET /api/v1/owners is not open to any role (no permission is assigned to it)' });
      }
    } finally {
      table['GET /api/v1/owners'] = kept;
    }
  });

  it('names the permission a role lacks, and answers 404 (not 403) for a path no route has', async () => {
    const res = await asRole('read-only', '/api/v1/policies', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'forbidden', details: { permission: 'policies.write' } });
    expect((await asRole('ci', '/api/v1/no-such-route')).status).toBe(404);
  });
});
