// Audit action names, derived from the route a request matched so that every mutating route,
// including ones added later (identities, tokens), is named without a table to keep up to date:
// the static segments after /api/v1/ joined by dots, then what the method does.
//   POST   /api/v1/policies                          -> policies.create
//   POST   /api/v1/policies/{version}/activate       -> policies.activate   (a verb after a parameter)
//   PUT    /api/v1/scopes/{name}                     -> scopes.put
//   DELETE /api/v1/controls/{name}                   -> controls.delete
//   POST   /api/v1/intel/feeds/{kind}/{version}/promote -> intel.feeds.promote
// Console form posts read the same way after /console/ (tickets/{key}/acknowledge -> tickets.acknowledge).
// ACTION_OVERRIDES names the few routes where that reading would mislead.

const METHOD_VERB: Record<string, string> = { POST: 'create', PUT: 'put', PATCH: 'update', DELETE: 'delete' };

/** Route (`METHOD /path/{param}`) -> action, where the derived name would mislead. */
export const ACTION_OVERRIDES: Readonly<Record<string, string>> = {
  'POST /api/v1/intel/{kind}': 'intel.import',
  'POST /api/v1/intel/feeds/{kind}/runs': 'intel.feeds.run',
  'POST /api/v1/sources/{name}/runs': 'sources.run',
  'POST /api/v1/events/deploy': 'events.deploy',
  'POST /api/v1/gate': 'gate.check',
  'POST /api/v1/identities/{id}/tokens': 'tokens.issue',
  'DELETE /api/v1/identities/{id}/tokens/{tokenId}': 'tokens.revoke',
  'POST /api/v1/assets/merges/{id}/undo': 'assets.merge.undo',
};

/** `/api/v1/policies/:version{[a-z]+}/activate` (Hono) or `.../{version}/...` (OpenAPI) -> segments, parameters as `{name}`. */
function segments(pattern: string): string[] {
  return pattern
    .replace(/^\/(api\/v\d+|console)\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => (s.startsWith(':') ? `{${s.slice(1).replace(/\{.*\}$/, '').replace(/\?$/, '')}}` : s));
}

const isParam = (s: string) => s.startsWith('{');

/** The audit action of a request that matched `pattern` (a Hono or OpenAPI route path). */
export function auditAction(method: string, pattern: string): string {
  const m = method.toUpperCase();
  const segs = segments(pattern);
  const override = ACTION_OVERRIDES[`${m} /api/v1/${segs.join('/')}`];
  if (override) return override;
  const names = segs.filter((s) => !isParam(s)).map((s) => s.toLowerCase().replace(/[^a-z0-9-]/g, '-'));
  const last = segs.at(-1);
  // A POST to a fixed word after a parameter is an action on that resource (activate, acknowledge).
  const verbAfterParam = m === 'POST' && last !== undefined && !isParam(last) && segs.some(isParam);
  const verb = verbAfterParam ? [] : [METHOD_VERB[m] ?? m.toLowerCase()];
  return [...(names.length ? names : ['api']), ...verb].join('.');
}

/** The values of the route's parameters in `path`, in the pattern's order, joined by `/`; null without any. */
export function auditTarget(pattern: string, path: string): string | null {
  const pat = pattern.split('/');
  const got = path.split('/');
  const values: string[] = [];
  pat.forEach((s, i) => {
    if (s.startsWith(':') && got[i] !== undefined) {
      try {
        values.push(decodeURIComponent(got[i]!));
      } catch {
        values.push(got[i]!);
      }
    }
  });
  return values.length ? values.join('/') : null;
}

/**
 * Sign-ins through an identity provider, which no form post names: `sign-in.oidc` (allowed, or
 * denied with the reason) and `identities.provision` when an opted-in sign-in created the user.
 */
export const SIGN_IN_ACTIONS = { oidc: 'sign-in.oidc', provision: 'identities.provision' } as const;
