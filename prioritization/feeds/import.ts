import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Database } from '../../db/client.js';
import { downloadToFile, fileIn, redactUrl } from '../../discovery/streams/to-file.js';
import { activePolicy } from '../policy-store.js';
import { shadowScore, type ShadowDiff } from '../scoring/rescore.js';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import { CTEM_PHASE } from '../../workflows/search-attributes.js';
import { FEED_LABEL, feedMaxAge, openEpssFeed, readKevFeed, sha256File, type FeedKind, type FeedMaxAge } from './parse.js';
import { openCveRecords } from './cve-json5.js';
import { getFeedVersion, importCveRecords, importEpssFeed, importKevFeed, type FeedImport, type ImportOptions } from './store.js';
import type { ShadowOptions } from '../scoring/shadow.js';
import { taskQueueFor } from '../../workflows/task-queues.js';

// Threat-intel feeds in: files (start-time configuration, the API, the CLI) and downloads (the
// intelFeedWorkflow's activity, through the same import). Every path stages, checks, then activates
// or rejects (store.ts); a newly active version re-scores the open findings.

export interface FeedFileOptions extends Omit<ImportOptions, 'maxAgeMs'> {
  maxAgeMs: FeedMaxAge;
}

/**
 * Imports one feed of a known kind: an EPSS or KEV file, or a list of CVE records (a directory or
 * a .zip / .tar.gz of one). A malformed feed throws FeedError and stores nothing.
 */
export async function importFeedFile(database: Database, kind: FeedKind, file: string, options: FeedFileOptions): Promise<FeedImport> {
  const name = options.name ?? basename(file);
  const common: ImportOptions = { ...options, name, maxAgeMs: feedMaxAge(kind, options.maxAgeMs), origin: options.origin ?? `file:${name}` };
  if (kind === 'epss') return importEpssFeed(database.sql, await openEpssFeed(file, { name }), await sha256File(file), common);
  if (kind === 'cve') return importCveRecords(database.sql, await openCveRecords(file, { name }), common);
  return importKevFeed(database.sql, await readKevFeed(file, { name }), common);
}

export interface IntelFiles {
  epssFile?: string | undefined;
  kevFile?: string | undefined;
  /** A directory or archive of CVE records (CTEM_CVE_RECORDS). */
  cveRecords?: string | undefined;
}

/** Imports the EPSS, KEV and CVE records configured at start (a version already known is skipped). */
export async function importIntelFiles(database: Database, files: IntelFiles, options: FeedFileOptions): Promise<FeedImport[]> {
  const results: FeedImport[] = [];
  // EPSS first: the KEV x EPSS check then compares with the EPSS just imported.
  if (files.epssFile) results.push(await importFeedFile(database, 'epss', files.epssFile, options));
  if (files.kevFile) results.push(await importFeedFile(database, 'kev', files.kevFile, options));
  if (files.cveRecords) results.push(await importFeedFile(database, 'cve', files.cveRecords, options));
  return results;
}

/**
 * The feeds configured at start (CTEM_EPSS_FILE, CTEM_KEV_FILE, CTEM_CVE_RECORDS), checked like any
 * import; a rejected one is logged and the platform runs on the active version. A newly active
 * version re-scores the open findings, if there are any.
 */
export async function importStartupFeeds(
  database: Database,
  temporal: { client: Client; taskQueue: string },
  intel: IntelFiles & { maxAgeMs: FeedMaxAge; cveMinRecords?: number | undefined },
  log: (line: string) => void,
): Promise<FeedImport[]> {
  const results = await importIntelFiles(database, intel, { maxAgeMs: intel.maxAgeMs, ...(intel.cveMinRecords !== undefined ? { minRecords: intel.cveMinRecords } : {}) });
  for (const feed of results) log(describeFeedImport(feed));
  const activated = results.filter((f) => f.activated);
  const [open] = activated.length ? await database.sql`select exists (select 1 from findings where status = 'open') as any` : [];
  if (open?.any) for (const f of activated) await startRescoreAfterFeedChange(temporal.client, temporal.taskQueue, f.kind, f.version);
  return results;
}

/** One line for logs: `FIRST EPSS 2026-01-30: 313089 rows, active` or why it was rejected. */
export function describeFeedImport(feed: FeedImport): string {
  const head = `${FEED_LABEL[feed.kind]} ${feed.version}`;
  const failed = feed.validation.filter((c) => !c.ok);
  const why = failed.map((c) => `${c.check}${c.overridden ? ' (overridden)' : ''}: ${c.detail}`).join('; ');
  if (!feed.imported) return `${head}: already known (${feed.status})${feed.warnings?.length ? `; ${feed.warnings.join('; ')}` : ''}`;
  const c = feed.changes;
  const delta = c?.against ? ` (${c.new} new, ${c.changed} changed, ${c.unchanged} unchanged, ${c.removed} removed)` : '';
  return `${head}: ${feed.rows} rows${delta}, ${feed.status}${why ? ` (${why})` : ''}`;
}

// --- re-scoring after a feed change ------------------------------------------------------------

export interface RescoreStart {
  started: boolean;
  workflowId?: string;
  reason?: string;
}

/**
 * Re-scores every open finding once a feed version became active (the policy engine's
 * rescoreWorkflow). One run per activation: a second start while it runs is the same re-score.
 */
export async function startRescoreAfterFeedChange(client: Client, taskQueue: string, kind: FeedKind, version: string): Promise<RescoreStart> {
  const workflowId = `rescore:intel:${kind}:${version}`;
  try {
    await client.workflow.start(rescoreWorkflow, {
      workflowId,
      taskQueue: taskQueueFor(taskQueue, rescoreWorkflow),
      args: [{ reason: `${FEED_LABEL[kind]} ${version} activated` }],
      typedSearchAttributes: [{ key: CTEM_PHASE, value: 'prioritization' }],
    });
    return { started: true, workflowId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { started: false, workflowId, reason: 'already running' };
    throw err;
  }
}

// --- shadow evaluation -------------------------------------------------------------------------

/** Scoring of every open finding with this feed version instead of the active one, under the active policy. Read-only. */
export async function shadowFeedVersion(database: Database, kind: FeedKind, version: string, samples = 20): Promise<ShadowDiff> {
  // ShadowOptions names epss and kev; the scoring resolves cve from the same object (feedVersions).
  const feeds = { [kind]: version } as ShadowOptions['feeds'];
  return shadowScore(database.sql, await activePolicy(database.sql), { all: true }, { feeds, samples });
}

// --- downloads -----------------------------------------------------------------------------------

export interface IntelFetchResult {
  kind: FeedKind;
  /** disabled: no URL; unchanged: this version is already known; otherwise what became of it. */
  outcome: 'disabled' | 'unchanged' | 'activated' | 'staged' | 'rejected';
  version?: string;
  rows?: number;
  /** Failed checks, for rejected versions. */
  failed?: string[];
}

/** The largest feed download accepted (the EPSS CSV is some 10 MB gzipped, 50 MB plain). */
const MAX_FEED_BYTES = 512 * 1024 * 1024;

/**
 * Downloads a feed and imports it (stage, check, activate or reject); the file is removed after.
 * `activatedSince`: a version this import finds already known counts as activated by it when it
 * became active after that instant (a retry whose previous attempt activated it, so the re-score
 * still starts). Throws FeedError (bad content), HttpStatusError and TooLargeError.
 */
export async function fetchFeed(
  database: Database,
  kind: FeedKind,
  url: string,
  { dir, maxAgeMs, activatedSince }: { dir: string; maxAgeMs: FeedMaxAge; activatedSince: number },
): Promise<IntelFetchResult> {
  const file = await fileIn(dir, `intel-${kind}-${randomUUID()}.download`);
  try {
    await downloadToFile(url, file, { maxBytes: MAX_FEED_BYTES });
    const origin = redactUrl(url);
    const result = await importFeedFile(database, kind, file, { name: origin, origin, maxAgeMs });
    const failed = result.validation.filter((c) => !c.ok && !c.overridden).map((c) => `${c.check}: ${c.detail}`);
    const base = { kind, version: result.version, rows: result.rows };
    if (result.activated) return { ...base, outcome: 'activated' };
    if (!result.imported) {
      const known = await getFeedVersion(database.sql, kind, result.version);
      if (known?.status === 'active' && known.activatedAt && Date.parse(known.activatedAt) >= activatedSince) return { ...base, outcome: 'activated' };
      return { ...base, outcome: 'unchanged' };
    }
    return { ...base, outcome: result.status === 'rejected' ? 'rejected' : 'staged', ...(failed.length ? { failed } : {}) };
  } finally {
    await rm(file, { force: true });
  }
}
