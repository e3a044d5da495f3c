import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFunctions, functionFiles, type Database } from '../../db/client.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// db/functions/<name>.sql is each SQL function's source of truth: applied after the migrations,
// re-created only when its file changed (checksum in sql_functions), all in one transaction.

afterAll(closeTestDatabases);

let db: Database;
beforeAll(async () => {
  db = await migratedTestDatabase();
});

const probe = (body: string) => ({ name: 'ctem_probe', text: `create or replace function ctem_probe() returns int language sql immutable as $$ ${body} $$;`, checksum: body });

describe('SQL functions from db/functions', () => {
  it('a migrated database has every file applied, with its checksum, and the database runs the file text', async () => {
    const files = functionFiles();
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['explanation', 'explanation_assemble']));
    const rows = await db.sql<{ name: string; checksum: string }[]>`select name, checksum from sql_functions order by name`;
    expect(rows.map((r) => ({ name: r.name, checksum: r.checksum }))).toEqual(files.map((f) => ({ name: f.name, checksum: f.checksum })));
    // The assembler in the database is the file's, not migration 0012's (which had no header comment to lose, so compare bodies).
    const [def] = await db.sql<{ src: string }[]>`select prosrc as src from pg_proc where proname = 'explanation_assemble'`;
    const file = files.find((f) => f.name === 'explanation_assemble')!.text;
    expect(file).toContain(def!.src.trim());
  });

  it('an unchanged file is not re-created; a changed one is, in place', async () => {
    expect(await applyFunctions(db.sql)).toEqual([]);
    const oid = async () => (await db.sql<{ oid: number }[]>`select oid::int from pg_proc where proname = 'explanation_assemble'`)[0]!.oid;
    const before = await oid();

    expect(await applyFunctions(db.sql, [probe('select 1')])).toEqual(['ctem_probe']);
    expect((await db.sql`select ctem_probe() as v`)[0]!.v).toBe(1);
    expect(await applyFunctions(db.sql, [probe('select 1')])).toEqual([]);
    expect(await applyFunctions(db.sql, [probe('select 2')])).toEqual(['ctem_probe']);
    expect((await db.sql`select ctem_probe() as v`)[0]!.v).toBe(2);
    expect(await oid()).toBe(before);
  });

  it('a file that fails leaves every function and checksum as they were (one transaction)', async () => {
    const broken = { name: 'zz_broken', text: 'create or replace function zz_broken( returns int', checksum: 'x' };
    await expect(applyFunctions(db.sql, [probe('select 3'), broken])).rejects.toThrow();
    expect((await db.sql`select ctem_probe() as v`)[0]!.v).toBe(2);
    expect((await db.sql`select checksum from sql_functions where name = 'ctem_probe'`)[0]!.checksum).toBe('select 2');
  });
});
