import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { getFeedVersion, importEpssFeed, importKevFeed, type FeedImport, type ImportOptions } from '../prioritization/feeds/store.js';
import { activePolicy } from '../prioritization/policy-store.js';
import { shadowScore, type ShadowDiff } from '../prioritization/scoring/rescore.js';
import { rescoreWorkflow } from '../workflows/rescore.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';
import { FEED_LABEL, FeedError, openEpssFeed, readKevFeed, sha256File, type FeedKind } from '../prioritization/feeds/parse.js';

// Threat-intel feeds in: files (start-time configuration, the API, the CLI) and scheduled downloads
// (intelFeedWorkflow). Every path stages, checks, then activates or rejects (prioritization/feeds/store.ts).

export interface IntelSettings {
  /** Where to fetch each feed; unset: that feed is not fetched. */
  urls: Partial<Record<FeedKind, string>>;
  maxAgeMs: Record<FeedKind, number>;
}

export interface FeedFileOptions extends Omit<ImportOptions, 'maxAgeMs'> {
  maxAgeMs: Record<FeedKind, number>;
}

/** Imports one feed file of a known kind. A malformed file throws FeedError and stores nothing. */
export async function importFeedFile(database: Database, kind: FeedKind, file: string, options: FeedFileOptions): Promise<FeedImport> {
  const name = options.name ?? basename(file);
  const common: ImportOptions = { ...options, name, maxAgeMs: options.maxAgeMs[kind], origin: options.origin ?? `file:${name}` };
  if (kind === 'epss') return importEpssFeed(database.sql, await openEpssFeed(file, { name }), await sha256File(file), common);
  return importKevFeed(database.sql, await readKevFeed(file, { name }), common);
}

/** Imports the EPSS and KEV files configured at start (a version already known is skipped). */
export async function importIntelFiles(
  database: Database,
  files: { epssFile?: string | undefined; kevFile?: string | undefined },
  options: FeedFileOptions,
): Promise<FeedImport[]> {
  const results: FeedImport[] = [];
  // EPSS first: the KEV x EPSS check then compares with the EPSS just imported.
  if (files.epssFile) results.push(await importFeedFile(database, 'epss', files.epssFile, options));
  if (files.kevFile) results.push(await importFeedFile(database, 'kev', files.kevFile, options));
  return results;
}

/**
 * The feed files configured at start (CTEM_EPSS_FILE, CTEM_KEV_FILE), checked like any import; a
 * rejected file is logged and the platform runs on the active version. A newly active version
 * re-scores the open findings, if there are any.
 */
export async function importStartupFeeds(
  database: Database,
  temporal: { client: Client; taskQueue: string },
  intel: { epssFile?: string | undefined; kevFile?: string | undefined; maxAgeMs: Record<FeedKind, number> },
  log: (line: string) => void,
): Promise<FeedImport[]> {
  const results = await importIntelFiles(database, intel, { maxAgeMs: intel.maxAgeMs });
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
  if (!feed.imported) return `${head}: already known (${feed.status})`;
  return `${head}: ${feed.rows} rows, ${feed.status}${why ? ` (${why})` : ''}`;
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
      taskQueue,
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
  return shadowScore(database.sql, await activePolicy(database.sql), { all: true }, { feeds: { [kind]: version }, samples });
}

// --- scheduled downloads -----------------------------------------------------------------------

export interface IntelFetchResult {
  kind: FeedKind;
  /** disabled: no URL; unchanged: this version is already known; otherwise what became of it. */
  outcome: 'disabled' | 'unchanged' | 'activated' | 'staged' | 'rejected';
  version?: string;
  rows?: number;
  /** Failed checks, for rejected versions. */
  failed?: string[];
}

const MAX_FEED_BYTES = 512 * 1024 * 1024;

/** The URL as recorded: without credentials or query (tokens travel there). */
export const redactUrl = (url: string) => {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
};

async function download(url: string, file: string): Promise<void> {
  const where = redactUrl(url);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10 * 60_000) });
  } catch (err) {
    throw new Error(`GET ${where}: ${(err as Error).message}`);
  }
  if ([401, 403, 404, 410].includes(res.status)) throw ApplicationFailure.nonRetryable(`GET ${where} answered ${res.status}`, 'FeedUnavailable');
  if (!res.ok || !res.body) throw new Error(`GET ${where} answered ${res.status}`);
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(bytes > MAX_FEED_BYTES ? ApplicationFailure.nonRetryable(`GET ${where}: larger than ${MAX_FEED_BYTES} bytes`, 'FeedTooLarge') : null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as never), meter, createWriteStream(file));
}

export function createIntelActivities({
  database,
  temporal,
  reportsDir,
  intel,
}: {
  database: Database;
  temporal: { client: Client; taskQueue: string };
  reportsDir: string;
  intel: IntelSettings;
}) {
  return {
    /** Downloads the feed from its configured URL and imports it (stage, check, activate or reject). */
    async fetchIntelFeed({ kind }: { kind: FeedKind }): Promise<IntelFetchResult> {
      const url = intel.urls[kind];
      if (!url) return { kind, outcome: 'disabled' };
      await mkdir(reportsDir, { recursive: true });
      const file = join(reportsDir, `intel-${kind}-${randomUUID()}.download`);
      try {
        await download(url, file);
        const origin = redactUrl(url);
        const result = await importFeedFile(database, kind, file, { name: origin, origin, maxAgeMs: intel.maxAgeMs });
        const failed = result.validation.filter((c) => !c.ok && !c.overridden).map((c) => `${c.check}: ${c.detail}`);
        const base = { kind, version: result.version, rows: result.rows };
        if (result.activated) return { ...base, outcome: 'activated' };
        if (!result.imported) {
          // A retry may find the activation its previous attempt made: still report it, so the
          // workflow starts the re-score.
          const info = Context.current().info;
          const known = await getFeedVersion(database.sql, kind, result.version);
          if (known?.status === 'active' && known.activatedAt && Date.parse(known.activatedAt) >= info.scheduledTimestampMs) {
            return { ...base, outcome: 'activated' };
          }
          return { ...base, outcome: 'unchanged' };
        }
        return { ...base, outcome: result.status === 'rejected' ? 'rejected' : 'staged', ...(failed.length ? { failed } : {}) };
      } catch (err) {
        if (err instanceof FeedError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidFeed');
        throw err;
      } finally {
        await rm(file, { force: true });
      }
    },

    /** Starts the re-score of open findings for a newly active feed version. */
    async startFeedRescore({ kind, version }: { kind: FeedKind; version: string }): Promise<RescoreStart> {
      return startRescoreAfterFeedChange(temporal.client, temporal.taskQueue, kind, version);
    },
  };
}

export type IntelActivities = ReturnType<typeof createIntelActivities>;

