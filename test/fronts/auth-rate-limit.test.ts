import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_FAILURES_ALLOWED } from '../../api/rate-limits.js';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

// Guessing the token is slowed: after 20 failed authentications from one address in 5 minutes, that
// address gets 429 (with Retry-After), even with the right token, until the window passes. Requests
// that authenticate never count, however many there are or are in flight at once. A platform of its
// own: the lock-out would hold every other test's requests from 127.0.0.1.

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

  it('never limit a client that authenticates, however many of its requests are in flight at once', async () => {
    // The scopes table is locked, so every request stays in flight until the lock goes.
    const sql = postgres(platform.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const locked = new Promise<void>((holding) => {
        void sql.begin(async (tx) => {
          await tx`lock table scopes in access exclusive mode`;
          holding();
          await released;
        });
      });
      await locked;
      const answers = Array.from({ length: AUTH_FAILURES_ALLOWED * 3 }, async () => {
        const response = await platform.api('/api/v1/scopes');
        await response.arrayBuffer();
        return response.status;
      });
      // Wait until the API's pool is blocked on the lock: the other requests wait behind it, in flight.
      const waiting = postgres(platform.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
      for (let i = 0; i < 200; i++) {
        const [row] = await waiting<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`;
        if (row!.n > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 500));
      await waiting.end();
      release();
      const statuses = await Promise.all(answers);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    } finally {
      await sql.end();
    }
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
