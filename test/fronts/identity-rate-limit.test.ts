import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Each authenticated identity has its own budget of /api requests per window (CTEM_RATE_LIMIT):
// one identity that exhausts it gets 429 with Retry-After and RateLimit headers while another goes
// on, and the window passes. Health, metrics and the signed ITSM webhooks are not counted. Over
// real HTTP, on an API of its own with a small budget (10 requests per 4 seconds).

const LIMIT = 10;
const WINDOW_S = 4;

let platform: TestPlatform;
const tokens: Record<'a' | 'b', string> = { a: '', b: '' };

const as = (token: string, path: string, init: RequestInit = {}) => fetch(`${platform.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  platform = await startTestPlatform({ CTEM_RATE_LIMIT: `${LIMIT}/${WINDOW_S}s` }, { api: true, worker: false });
  for (const name of ['a', 'b'] as const) {
    const identity = await json<{ id: string }>(
      platform.api('/api/v1/identities', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'service', name: `rate-${name}`, roles: ['read-only'] }) }),
    );
    tokens[name] = (
      await json<{ token: string }>(
        platform.api(`/api/v1/identities/${identity.id}/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'rate' }) }),
      )
    ).token;
  }
}, 120_000);

afterAll(async () => {
  await platform?.stop();
});

describe('the per-identity rate limit', () => {
  it('answers 429 to the identity over its budget while another identity still gets 200, until the window passes', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const res = await as(tokens.a, '/api/v1/scopes');
      expect(res.status).toBe(200);
      remaining.push(/remaining=(\d+)/.exec(res.headers.get('ratelimit') ?? '')?.[1] ?? '?');
    }
    expect(remaining).toEqual(Array.from({ length: LIMIT }, (_, i) => String(LIMIT - 1 - i)));

    const refused = await as(tokens.a, '/api/v1/scopes');
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW_S);
    expect(refused.headers.get('ratelimit')).toMatch(new RegExp(`^limit=${LIMIT}, remaining=0, reset=\\d+$`));
    expect(refused.headers.get('ratelimit-policy')).toBe(`${LIMIT};w=${WINDOW_S}`);
    const body = (await refused.json()) as { error: { code: string; message: string; details: unknown } };
    expect(body.error).toEqual({
      code: 'rate_limited',
      message: `more than ${LIMIT} requests in ${WINDOW_S}s by this identity; retry after the time in Retry-After`,
      details: { limit: LIMIT, windowSeconds: WINDOW_S },
    });
    // Any route of A is refused, not only the one it hammered.
    expect((await as(tokens.a, '/api/v1/exposures?limit=1')).status).toBe(429);

    // B is another identity: its own budget, untouched.
    const other = await as(tokens.b, '/api/v1/scopes');
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit')).toMatch(new RegExp(`^limit=${LIMIT}, remaining=${LIMIT - 1}, `));

    // The window passes: A is served again, with a fresh budget.
    await sleep(retryAfter * 1000 + 300);
    const again = await as(tokens.a, '/api/v1/scopes');
    expect(again.status).toBe(200);
    expect(again.headers.get('ratelimit')).toMatch(new RegExp(`^limit=${LIMIT}, remaining=${LIMIT - 1}, `));
  }, 30_000);

  it('does not count /healthz, /metrics or the signed ITSM webhooks', async () => {
    await sleep(WINDOW_S * 1000 + 300); // the bootstrap identity's setup requests are in a past window
    for (let i = 0; i < LIMIT + 5; i++) {
      expect((await fetch(`${platform.apiUrl}/healthz`)).status).toBe(200);
      expect((await platform.api('/metrics')).status).toBe(200);
      // Authenticated by the API token (as ServiceNow may be), but no identity's call: never limited.
      const hook = await platform.api('/api/v1/webhooks/servicenow', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event_id: `e${i}`, state: '2' }) });
      expect(hook.status).toBe(200);
      expect(hook.headers.get('ratelimit')?.startsWith(`limit=${LIMIT},`) ?? false).toBe(false);
    }
    const res = await platform.api('/api/v1/scopes');
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit')).toMatch(new RegExp(`^limit=${LIMIT}, remaining=${LIMIT - 1}, `));
  }, 30_000);
});

describe('CTEM_RATE_LIMIT', () => {
  const parse = (value?: string) => loadConfig(value === undefined ? {} : { CTEM_RATE_LIMIT: value }).rateLimit;
  const refusal = (value: string) => {
    try {
      parse(value);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`${value} was accepted`);
  };

  it('is 600 requests a minute per identity by default, and reads units and durations', () => {
    expect(parse()).toEqual({ limit: 600, windowMs: 60_000 });
    expect(parse('50/10s')).toEqual({ limit: 50, windowMs: 10_000 });
    expect(parse('10000/hour')).toEqual({ limit: 10_000, windowMs: 3_600_000 });
    expect(parse(' 5 / sec ')).toEqual({ limit: 5, windowMs: 1_000 });
  });

  it('is disabled by off or 0', () => {
    expect(parse('off')).toBeUndefined();
    expect(parse('OFF')).toBeUndefined();
    expect(parse('0')).toBeUndefined();
  });

  it('refuses what is not a rate, naming the variable and why', () => {
    expect(refusal('fast')).toBe('invalid configuration:\n  CTEM_RATE_LIMIT: "fast" is not a rate: write requests per window, e.g. 600/min, 50/10s, 10000/1h, or off');
    expect(refusal('600')).toMatch(/CTEM_RATE_LIMIT: "600" is not a rate/);
    expect(refusal('0/min')).toMatch(/CTEM_RATE_LIMIT: "0\/min": the number of requests must be a whole number of at least 1/);
    expect(refusal('10/fortnight')).toMatch(/CTEM_RATE_LIMIT: "10\/fortnight": "fortnight" is not a window/);
    expect(refusal('10/500ms')).toMatch(/the window must be at least one second/);
  });
});
