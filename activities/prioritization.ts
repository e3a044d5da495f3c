import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Database } from '../db/client.js';
import { importEpssFeed, importKevFeed, type FeedImport } from '../db/queries/intel.js';
import { scoreScanFindings } from '../db/queries/scoring.js';
import { openEpssFeed, readKevFeed } from '../prioritization/intel-feeds.js';
import type { Policy } from '../prioritization/policy.js';

export function createPrioritizationActivities({ database, policy }: { database: Database; policy: Policy }) {
  return {
    /** Scores (set-based) every open finding on the assets a scan touched. */
    async scoreScan({ scanId }: { scanId: string }): Promise<Record<string, number>> {
      const { scored, changed } = await scoreScanFindings(database.sql, policy, scanId);
      return { scored, rescored: changed };
    },
  };
}

export type PrioritizationActivities = ReturnType<typeof createPrioritizationActivities>;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Imports EPSS and KEV feed files (validated while read; a version already active is skipped). */
export async function importIntelFiles(database: Database, files: { epssFile?: string; kevFile?: string }): Promise<FeedImport[]> {
  const results: FeedImport[] = [];
  if (files.epssFile) results.push(await importEpssFeed(database.sql, await openEpssFeed(files.epssFile), await sha256File(files.epssFile)));
  if (files.kevFile) results.push(await importKevFeed(database.sql, await readKevFeed(files.kevFile)));
  return results;
}
