import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { createIdentity, getIdentity, IdentityError, listIdentities, updateIdentity, type IdentityUpdate, type NewIdentity } from '../../access/identities.js';
import { ROLES } from '../../access/principal.js';
import { can, PERMISSIONS } from '../../access/roles.js';
import { DEFAULT_TOKEN_DAYS, issueToken, listTokens, revokeToken } from '../../access/tokens.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema } from './schemas.js';

const RoleEnum = z.enum(ROLES as [string, ...string[]]);

const IdentitySchema = z
  .object({
    id: z.string(),
    kind: z.enum(['user', 'service']),
    name: z.string(),
    displayName: z.string().nullable(),
    email: z.string().nullable(),
    roles: z.array(RoleEnum),
    hasPassword: z.boolean().openapi({ description: 'true: can sign in to the console with a password' }),
    disabledAt: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Identity');

const TokenSchema = z
  .object({
    id: z.string(),
    identityId: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "the token's first characters, to recognise it" }),
    createdAt: z.string(),
    expiresAt: z.string(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable().openapi({ description: 'to the minute' }),
  })
  .openapi('ApiToken');

const NewIdentityBody = z.object({
  kind: z.enum(['user', 'service']).default('user'),
  name: z.string().min(2).max(100),
  displayName: z.string().max(200).optional(),
  email: z.string().max(320).optional(),
  roles: z.array(RoleEnum).min(1),
  password: z.string().max(1000).optional().openapi({ description: 'a local console password (users only), 12 characters or more' }),
});

const IdentityPatchBody = z.object({
  displayName: z.string().max(200).nullable().optional(),
  email: z.string().max(320).nullable().optional(),
  roles: z.array(RoleEnum).min(1).optional(),
  password: z.string().max(1000).nullable().optional().openapi({ description: 'a new console password; null removes it' }),
  disabled: z.boolean().optional().openapi({ description: 'true: its tokens and console sessions stop working at once' }),
});

const IdParam = z.object({ id: z.string().min(1) });
const errors = {
  400: { description: 'Invalid request; details.field names the field', content: { 'application/json': { schema: ErrorSchema } } },
  404: { description: 'Unknown identity', content: { 'application/json': { schema: ErrorSchema } } },
  409: { description: 'Conflict (name or e-mail taken, identity disabled)', content: { 'application/json': { schema: ErrorSchema } } },
};

const listRoute = createRoute({
  method: 'get',
  path: '/api/v1/identities',
  summary: 'Users and service accounts with their roles',
  responses: { 200: { description: 'Identities by name', content: { 'application/json': { schema: z.object({ items: z.array(IdentitySchema) }) } } } },
});
const createIdentityRoute = createRoute({
  method: 'post',
  path: '/api/v1/identities',
  summary: 'Create a user or service account',
  request: { body: { content: { 'application/json': { schema: NewIdentityBody } }, required: true } },
  responses: { 201: { description: 'Created', content: { 'application/json': { schema: IdentitySchema } } }, ...errors },
});
const getRoute = createRoute({
  method: 'get',
  path: '/api/v1/identities/{id}',
  summary: 'One identity',
  request: { params: IdParam },
  responses: { 200: { description: 'The identity', content: { 'application/json': { schema: IdentitySchema } } }, 404: errors[404] },
});
const patchRoute = createRoute({
  method: 'patch',
  path: '/api/v1/identities/{id}',
  summary: 'Change roles, e-mail, password; disable or enable',
  request: { params: IdParam, body: { content: { 'application/json': { schema: IdentityPatchBody } }, required: true } },
  responses: { 200: { description: 'The identity', content: { 'application/json': { schema: IdentitySchema } } }, ...errors },
});
const listTokensRoute = createRoute({
  method: 'get',
  path: '/api/v1/identities/{id}/tokens',
  summary: "An identity's API tokens (never the secret)",
  request: { params: IdParam },
  responses: { 200: { description: 'Tokens, newest first', content: { 'application/json': { schema: z.object({ items: z.array(TokenSchema) }) } } }, 404: errors[404] },
});
const issueTokenRoute = createRoute({
  method: 'post',
  path: '/api/v1/identities/{id}/tokens',
  summary: `Issue an API token: the answer carries it once (expiry ${DEFAULT_TOKEN_DAYS} days by default, one year at most)`,
  request: {
    params: IdParam,
    body: {
      content: {
        'application/json': {
          schema: z.object({ name: z.string().min(1).max(100).openapi({ description: 'what the token is for' }), expiresAt: z.string().optional().openapi({ description: 'ISO date-time' }) }),
        },
      },
      required: true,
    },
  },
  responses: {
    201: { description: 'The token, shown this once', content: { 'application/json': { schema: TokenSchema.extend({ token: z.string() }).openapi('IssuedApiToken') } } },
    ...errors,
  },
});
const revokeTokenRoute = createRoute({
  method: 'delete',
  path: '/api/v1/identities/{id}/tokens/{tokenId}',
  summary: 'Revoke a token (at once; revoking again changes nothing)',
  request: { params: z.object({ id: z.string().min(1), tokenId: z.string().min(1) }) },
  responses: { 200: { description: 'The revoked token', content: { 'application/json': { schema: TokenSchema } } }, 404: { description: 'Unknown token', content: { 'application/json': { schema: ErrorSchema } } } },
});
const meRoute = createRoute({
  method: 'get',
  path: '/api/v1/me',
  summary: 'Who the token stands for, its roles and permissions',
  responses: {
    200: {
      description: 'The caller',
      content: {
        'application/json': {
          schema: z
            .object({ id: z.string(), kind: z.string(), name: z.string(), email: z.string().optional(), roles: z.array(RoleEnum), permissions: z.array(z.enum(PERMISSIONS)) })
            .openapi('Me'),
        },
      },
    },
  },
});

function refusal(c: Parameters<typeof problem>[0], err: unknown) {
  if (!(err instanceof IdentityError)) throw err;
  const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 400;
  return problem(c, status, err.code === 'invalid' ? 'invalid_request' : err.code, `${err.field}: ${err.message}`, { field: err.field });
}

export const identityRoutes = new OpenAPIHono<AppEnv>()
  .openapi(meRoute, (c) => {
    const principal = c.get('principal');
    const permissions = PERMISSIONS.filter((p) => can(principal, p));
    return c.json({ ...principal, permissions, roles: [...principal.roles] }, 200);
  })
  .openapi(listRoute, async (c) => c.json({ items: await listIdentities(c.get('deps').database.sql) }, 200))
  .openapi(createIdentityRoute, async (c) => {
    try {
      return c.json(await createIdentity(c.get('deps').database.sql, c.req.valid('json') as NewIdentity, c.get('principal')), 201);
    } catch (err) {
      return refusal(c, err);
    }
  })
  .openapi(getRoute, async (c) => {
    const identity = (await getIdentity(c.get('deps').database.sql, c.req.valid('param').id));
    return identity ? c.json(identity, 200) : problem(c, 404, 'not_found', 'no such identity');
  })
  .openapi(patchRoute, async (c) => {
    try {
      return c.json(await updateIdentity(c.get('deps').database.sql, c.req.valid('param').id, c.req.valid('json') as IdentityUpdate), 200);
    } catch (err) {
      return refusal(c, err);
    }
  })
  .openapi(listTokensRoute, async (c) => {
    const sql = c.get('deps').database.sql;
    const { id } = c.req.valid('param');
    if (!(await getIdentity(sql, id))) return problem(c, 404, 'not_found', 'no such identity');
    return c.json({ items: await listTokens(sql, id) }, 200);
  })
  .openapi(issueTokenRoute, async (c) => {
    try {
      return c.json(await issueToken(c.get('deps').database.sql, c.req.valid('param').id, c.req.valid('json')), 201);
    } catch (err) {
      return refusal(c, err);
    }
  })
  .openapi(revokeTokenRoute, async (c) => {
    const { id, tokenId } = c.req.valid('param');
    const token = await revokeToken(c.get('deps').database.sql, id, tokenId);
    return token ? c.json(token, 200) : problem(c, 404, 'not_found', 'no such token of this identity');
  });
