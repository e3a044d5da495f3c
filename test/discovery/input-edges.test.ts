import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor, connectors, ReportError, type NormalizedFinding } from '../../discovery/connectors/index.js';
import type { Database } from '../../db/client.js';
import { ingestFindings } from '../../discovery/store/ingest.js';
import { corpusFile, corpusSkipReason, hasCorpus } from '../support/corpus.js';
import { closeTestDatabases, migratedTestDatabase } from '../support/platform.js';

// Input the connectors used to let through or mangle: NUL bytes, short CSV rows, odd field
// encodings, missing severities, URLs as host names, huge JSON strings, directories as input.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctem-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function parse(format: string, file: string): Promise<NormalizedFinding[]> {
  const connector = connectors.find((c) => c.format === format)!;
  const out: NormalizedFinding[] = [];
  for await (const finding of connector.parse(file, {})) out.push(finding);
  return out;
}

async function parseError(format: string, file: string): Promise<ReportError> {
  try {
    await parse(format, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ReportError);
    return err as ReportError;
  }
  throw new Error(`${format} accepted ${file}`);
}

describe.skipIf(!hasCorpus)(`NUL bytes in report fields${hasCorpus ? '' : ` (${corpusSkipReason})`}`, () => {
  let database: Database;
  beforeAll(async () => {
    database = await migratedTestDatabase();
  });
  afterAll(closeTestDatabases);

  it('are removed on the way into the store, not a failed report', async () => {
    // Real Grype output, with a NUL written inside one artifact version and one title, as some Grype versions do.
    const report = JSON.parse(await readFile(corpusFile('scanners', 'defectdojo', 'anchore_grype', 'check_all_fields.json'), 'utf8'));
    const match = report.matches[0];
    const version: string = match.artifact.version;
    match.artifact.version = `${version}\u0000`;
    match.vulnerability.description = 'before\u0000after';
    const file = join(dir, 'grype-nul.json');
    await writeFile(file, JSON.stringify(report));
    const parsed = await parse('grype', file);
    expect(parsed.some((f) => f.version.includes('\u0000'))).toBe(true);

    const connector = await connectorFor(file, file);
    const counts = await ingestFindings(database.sql, { id: randomUUID(), source: 'grype' }, connector.parse(file, {}));
    expect(counts.findings).toBe(5);
    const rows = await database.sql`select version from findings where component = ${match.artifact.name} and issue_id = ${match.vulnerability.id}`;
    expect(rows.map((r) => r.version)).toEqual([version]);
  });
});
