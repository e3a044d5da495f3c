import type { Context } from 'hono';
import { deleteCookie, getSignedCookie, setSignedCookie } from 'hono/cookie';
import * as client from 'openid-client';
import { identityForExternalSignIn, type ExternalClaims, type ExternalSignIn } from '../access/sign-in.js';
import type { OidcConfig } from '../config/index.js';
import type { ConsoleEnv } from './env.js';
import { insideConsole, sessionKey } from './session.js';

// Console sign-in with OpenID Connect (openid-client as the relying party): the authorization code
// flow with PKCE, state and nonce. What the callback must check is carried by the browser in a
// short-lived signed, HttpOnly cookie, not kept by the process, so any API replica can finish a
// sign-in another one started. The provider is discovered at the first sign-in, not at start: the
// console starts and serves local sign-in while the provider is down, and the OIDC button answers
// a page that says so.

export const OIDC_CALLBACK_PATH = '/console/sign-in/oidc/callback';
const FLOW_COOKIE = 'ctem_oidc';
const FLOW_MINUTES = 10;
const PROVIDER_TIMEOUT_SECONDS = 10;

/** What the callback checks, as the browser carries it between the two requests. */
interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  next: string;
  redirectUri: string;
  expiresAt: number;
}

/** A refusal, as the sign-in page shows it. */
export interface OidcRefusal {
  status: 400 | 401 | 403 | 502 | 503;
  message: string;
  /** For the audit trail: why, in a word, and the e-mail the provider named (if it got that far). */
  reason: string;
  email?: string;
}

// One discovery per configuration and process, kept once it succeeded; a failure is retried at the next sign-in.
const discovered = new WeakMap<OidcConfig, Promise<client.Configuration>>();

async function discover(config: OidcConfig): Promise<client.Configuration> {
  const issuer = new URL(config.issuer);
  // Plain http is accepted by configuration for a provider on a loopback address only (config/index.ts).
  const execute = issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [];
  const found = await client.discovery(issuer, config.clientId, { client_secret: config.clientSecret }, undefined, { timeout: PROVIDER_TIMEOUT_SECONDS, execute });
  // OpenID Connect's default client authentication is client_secret_basic; use post only when that is all the provider takes.
  const methods = found.serverMetadata().token_endpoint_auth_methods_supported;
  const auth = !methods || methods.includes('client_secret_basic') ? client.ClientSecretBasic(config.clientSecret) : client.ClientSecretPost(config.clientSecret);
  const configuration = new client.Configuration(found.serverMetadata(), config.clientId, { client_secret: config.clientSecret }, auth);
  configuration.timeout = PROVIDER_TIMEOUT_SECONDS;
  for (const step of execute) step(configuration);
  return configuration;
}

function provider(config: OidcConfig): Promise<client.Configuration> {
  let pending = discovered.get(config);
  if (!pending) {
    pending = discover(config);
    discovered.set(config, pending);
    pending.catch(() => discovered.delete(config));
  }
  return pending;
}

/** An error's own words and its cause's (what did not match, or a refused connection), never a response body. */
function reasonOf(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.message ?? e?.cause?.code;
  return [e?.message ?? String(err), cause && !e?.message?.includes(cause) ? `(${cause})` : ''].filter(Boolean).join(' ');
}

function unreachable(config: OidcConfig, err: unknown): OidcRefusal {
  console.error(`console: OpenID Connect provider ${config.issuer} unavailable: ${reasonOf(err)}`);
  return {
    status: 503,
    reason: 'provider-unavailable',
    message: `The identity provider (${config.issuer}) could not be reached or did not describe itself: ${reasonOf(err)}. Sign in with a local account or an API token, or try again later.`,
  };
}

/** The callback URL the provider returns to: configured, else this request's own origin. */
function redirectUri(c: Context<ConsoleEnv>, config: OidcConfig): string {
  return config.redirectUrl ?? `${new URL(c.req.url).origin}${OIDC_CALLBACK_PATH}`;
}

const cookieOptions = (c: Context<ConsoleEnv>) => ({
  httpOnly: true,
  // Lax, not Strict: the provider sends the browser back with a top-level navigation from its own site.
  sameSite: 'Lax' as const,
  secure: new URL(c.req.url).protocol === 'https:',
  path: '/console/sign-in/oidc',
});

/** Starts a sign-in: the provider's authorization URL to send the browser to, or why not. */
export async function beginOidcSignIn(c: Context<ConsoleEnv>, config: OidcConfig, next: unknown): Promise<{ ok: true; url: string } | { ok: false; refusal: OidcRefusal }> {
  let configuration: client.Configuration;
  try {
    configuration = await provider(config);
  } catch (err) {
    return { ok: false, refusal: unreachable(config, err) };
  }
  const flow: Flow = {
    state: client.randomState(),
    nonce: client.randomNonce(),
    verifier: client.randomPKCECodeVerifier(),
    next: insideConsole(next),
    redirectUri: redirectUri(c, config),
    expiresAt: Date.now() + FLOW_MINUTES * 60_000,
  };
  const url = client.buildAuthorizationUrl(configuration, {
    redirect_uri: flow.redirectUri,
    scope: config.scopes.join(' '),
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
    code_challenge_method: 'S256',
    state: flow.state,
    nonce: flow.nonce,
  });
  await setSignedCookie(c, FLOW_COOKIE, JSON.stringify(flow), sessionKey(c), { ...cookieOptions(c), maxAge: FLOW_MINUTES * 60 });
  return { ok: true, url: url.href };
}

async function readFlow(c: Context<ConsoleEnv>): Promise<Flow | undefined> {
  const raw = await getSignedCookie(c, sessionKey(c), FLOW_COOKIE);
  if (!raw) return undefined;
  try {
    const flow = JSON.parse(raw) as Flow;
    return typeof flow.state === 'string' && typeof flow.nonce === 'string' && typeof flow.verifier === 'string' && flow.expiresAt > Date.now() ? flow : undefined;
  } catch {
    return undefined;
  }
}

export type OidcOutcome = { ok: true; signIn: Extract<ExternalSignIn, { ok: true }>; next: string } | { ok: false; refusal: OidcRefusal; next: string };

/**
 * Finishes a sign-in at the callback: openid-client checks the state, exchanges the code with the
 * PKCE verifier, and verifies the ID token (signature, issuer, audience, expiry, nonce); the person
 * is then the identity with the verified e-mail (access/sign-in.ts). The flow cookie is spent either way.
 */
export async function finishOidcSignIn(c: Context<ConsoleEnv>, config: OidcConfig): Promise<OidcOutcome> {
  const flow = await readFlow(c);
  deleteCookie(c, FLOW_COOKIE, cookieOptions(c));
  if (!flow) {
    return { ok: false, next: '/console', refusal: { status: 400, reason: 'no-flow', message: 'This sign-in was not started here, has expired (it has 10 minutes) or was already used. Start it again.' } };
  }
  const next = flow.next;
  let configuration: client.Configuration;
  try {
    configuration = await provider(config);
  } catch (err) {
    return { ok: false, next, refusal: unreachable(config, err) };
  }
  // The URL the provider was told to return to, with the answer's parameters (a proxy may have changed the request's own).
  const current = new URL(flow.redirectUri);
  current.search = new URL(c.req.url).search;
  let claims: ExternalClaims;
  try {
    const tokens = await client.authorizationCodeGrant(configuration, current, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
    const idClaims = tokens.claims()!;
    claims = idClaims as unknown as ExternalClaims;
    // Many providers put the e-mail in the UserInfo answer only; it must name the same subject.
    if (typeof claims.email !== 'string' && tokens.access_token) {
      const info = await client.fetchUserInfo(configuration, tokens.access_token, idClaims.sub);
      claims = { ...info, sub: idClaims.sub };
    }
  } catch (err) {
    if (err instanceof client.AuthorizationResponseError) {
      const said = [err.error, err.error_description].filter(Boolean).join(': ');
      return { ok: false, next, refusal: { status: 401, reason: 'provider-refused', message: `The identity provider did not sign you in (${said}).` } };
    }
    const network = (err as { name?: string }).name === 'TypeError' || (err as { name?: string }).name === 'TimeoutError';
    if (network) return { ok: false, next, refusal: unreachable(config, err) };
    console.error(`console: OpenID Connect sign-in refused: ${reasonOf(err)}`);
    return { ok: false, next, refusal: { status: 401, reason: 'not-verified', message: `The identity provider's answer did not verify (${reasonOf(err)}). Start the sign-in again.` } };
  }
  const signIn = await identityForExternalSignIn(c.get('deps').database.sql, claims, {
    requireVerifiedEmail: config.requireVerifiedEmail,
    ...(config.provisionRole ? { provisionRole: config.provisionRole } : {}),
  });
  if (!signIn.ok) return { ok: false, next, refusal: { status: 403, reason: signIn.reason, message: signIn.message, ...(signIn.email ? { email: signIn.email } : {}) } };
  return { ok: true, signIn, next };
}
