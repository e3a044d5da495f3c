import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_FAILURES_ALLOWED } from '../../api/rate-limits.js';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

// Guessing the token is slowed: after 20 failed authentications from one address in 5 minutes, that
// address gets 429 (with Retry-After), even with the right token, until the window passes. Requests
// that authenticate never count, however many there are. A platform of its own: the lock-out
// would hold every other test's requests from 127.0.0.1.

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform({}, { api: true, worker: false });
});

afterAll(async () => {
  await platform?.stop();
});

describe('failed authentications', () => {
  it('never limit a client that authenticates, however busy', async () => {
    for (let i = 0; i < AUTH_FAILURES_ALLOWED + 5; i++) expect((await platform.api('/api/v1/scopes')).status).toBe(200);
  });

  it('lock the address out after 20 failures, bearer or sign-in form alike', async () => {
    const wrong = () => fetch(`${platform.apiUrl}/api/v1/scopes`, { headers: { authorization: 'Bearer guess' } });
    for (let i = 0; i < AUTH_FAILURES_ALLOWED - 1; i++) expect((await wrong()).status).toBe(401);
    const form = await fetch(`${platform.apiUrl}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: platform.apiUrl! },
      body: new URLSearchParams({ token: 'another-guess' }),
    });
    expect(form.status).toBe(401);
    const locked = await wrong();
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBe('300');
    expect(((await locked.json()) as { error: { code: string } }).error.code).toBe('too_many_failures');
    // The right token from the same address waits too: the guesser could be holding it by now.
    expect((await platform.api('/api/v1/scopes')).status).toBe(429);
  });
});
