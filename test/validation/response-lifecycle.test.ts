import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.js';
import { setTicketState } from '../../mobilization/store.js';
import { ticketResponse } from '../../validation/response.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// The ticket row keeps what the response's speed and adequacy are measured by, as the remediation
// workflow writes its states: the first acknowledgement (a re-opening clears acknowledged_at), when
// the fix was verified, and how often a resolved ticket went back to work.

let database: Database;
const hour = 3_600_000;
const t0 = Date.parse('2026-11-02T08:00:00Z');
const at = (h: number) => new Date(t0 + h * hour);

beforeAll(async () => {
  database = await migratedTestDatabase();
});
afterAll(closeTestDatabases);

describe('the ticket lifecycle the response is measured by', () => {
  it('keeps the first acknowledgement, counts a failed verification and records the verification time', async () => {
    const sql = database.sql;
    const [asset] = await sql<{ id: string }[]>`insert into assets (asset_key, kind, name) values ('image:lifecycle:1', 'container_image', 'lifecycle:1') returning id`;
    const key = `lifecycle-${randomUUID()}`;
    await sql`
      insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at, created_at)
      values (${key}, ${`remediation:${key}`}, ${asset!.id}, 'openssl', '3.0.8', 'alex.romero', 'new', 'act', ${at(24)}, ${at(24 * 15)}, ${at(0)})`;
    await setTicketState(database.db, key, 'in_progress', at(2), 0);
    await setTicketState(database.db, key, 'resolved', at(30), 0);
    // The next scan still finds the package: the ticket goes back to work.
    await setTicketState(database.db, key, 'in_progress', at(40), 0);
    await setTicketState(database.db, key, 'resolved', at(50), 0);
    await setTicketState(database.db, key, 'verified', at(60), 0);
    const [row] = await sql`select first_acknowledged_at, acknowledged_at, verified_at, reopen_count from tickets where key = ${key}`;
    expect(row).toMatchObject({ first_acknowledged_at: at(2), acknowledged_at: at(40), verified_at: at(60), reopen_count: 1 });

    const response = await ticketResponse(sql, key, at(100));
    expect(response).toMatchObject({ acknowledgedAt: at(2).toISOString(), verifiedAt: at(60).toISOString(), reopened: true });
  });

  it('does not count an expired risk acceptance as a failed fix', async () => {
    const sql = database.sql;
    const [asset] = await sql<{ id: string }[]>`insert into assets (asset_key, kind, name) values ('image:lifecycle:2', 'container_image', 'lifecycle:2') returning id`;
    const key = `lifecycle-${randomUUID()}`;
    await sql`
      insert into tickets (key, workflow_id, asset_id, component, fixed_version, owner, state, tier, ack_due_at, due_at, created_at)
      values (${key}, ${`remediation:${key}`}, ${asset!.id}, 'openssl', '3.0.8', 'alex.romero', 'new', 'act', ${at(24)}, ${at(24 * 15)}, ${at(0)})`;
    await setTicketState(database.db, key, 'in_progress', at(1), 0);
    await setTicketState(database.db, key, 'risk_accepted', at(3), 0);
    await setTicketState(database.db, key, 'new', at(200), 0);
    const [row] = await sql`select first_acknowledged_at, acknowledged_at, reopen_count from tickets where key = ${key}`;
    expect(row).toMatchObject({ first_acknowledged_at: at(1), acknowledged_at: null, reopen_count: 0 });
  });
});
