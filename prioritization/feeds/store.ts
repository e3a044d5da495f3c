import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import { CVE_MIN_RECORDS_DEFAULT, FEED_LABEL, FeedError, type EpssFeed, type FeedKind, type KevFeed } from './parse.js';
import type { CveRecordRow, CveRecordsFeed } from './cve-json5.js';
import { copyRows } from '../../discovery/store/copy.js';

// Feed versions live side by side in epss_scores / kev_entries / cve_records; intel_feeds says which one scoring
// reads (`active`). An import stores the file as `staged`, runs the checks below, then activates it
// or marks it `rejected` (one transaction), so a bad upstream file never changes a score.

export type FeedStatus = 'active' | 'staged' | 'rejected' | 'retired';

/**
 * The checks, in the order they are recorded. `schema` and `count` judge the file alone (kept from
 * the import); the others compare with what is stored and run again at promotion.
 */
export const FEED_CHECKS = ['schema', 'count', 'row-count', 'freshness', 'not-older', 'kev-epss'] as const;
export type FeedCheckName = (typeof FEED_CHECKS)[number];
const FILE_CHECKS: readonly FeedCheckName[] = ['schema', 'count'];

export interface FeedCheck {
  check: FeedCheckName;
  ok: boolean;
  detail: string;
  /** The check failed and `force` named it: it did not stop the activation. */
  overridden?: boolean;
}

const FEED_BOUNDS = {
  // EPSS scores every published CVE daily and only grows; a large drop is a partial file.
  // CISA withdraws a KEV entry only rarely (a handful in the catalog's history).
  // The CVE list never deletes a record (a withdrawn CVE stays, REJECTED): a drop is a partial list.
  maxRowDrop: { epss: 0.1, kev: 0.02, cve: 0.02 } as Record<FeedKind, number>,
  // Measured on the real pair (EPSS 2026-01-30 x KEV 2026.01.29): 0 of 1,501 KEV CVEs lack an EPSS
  // row (KEV 2025.08.25: 0 of 1,404). CISA can list a CVE before its first EPSS score, so a little slack.
  maxKevWithoutEpss: 0.02,
  /** Rows of this many retired versions per kind stay (shadow comparisons, rollback); older ones go. */
  keepRetired: 3,
};

export interface ValidationOptions {
  /** Feeds older than this (relative to `asOf`) fail the freshness check. */
  maxAgeMs: number;
  /** The instant freshness is judged at; default now (set it to import an old file on purpose). */
  asOf?: Date;
  /** Checks whose failure does not block activation; recorded as overridden. */
  force?: readonly string[];
}

export interface ImportOptions extends ValidationOptions {
  /** `never`: stage and check only; `promoteFeed` activates later. */
  activate?: 'if-valid' | 'never';
  /** A URL or `file:<name>`. */
  origin?: string | null;
  /** The file's name in error messages. */
  name?: string;
  /** CVE records: fewer records than this fail the `count` check (CTEM_CVE_MIN_RECORDS). */
  minRecords?: number;
}

/** How a CVE records version differs from the active one, by record file hash. */
export interface CveRecordChanges {
  new: number;
  changed: number;
  unchanged: number;
  removed: number;
  /** The active version compared with; null when there was none (every record is new). */
  against: string | null;
}

export interface FeedVersion {
  kind: FeedKind;
  version: string;
  status: FeedStatus;
  rows: number;
  sha256: string;
  publishedAt: string | null;
  origin: string | null;
  validation: FeedCheck[];
  importedAt: string;
  activatedAt: string | null;
  /** Whether its rows are still stored (retention deletes those of old retired and rejected versions). */
  stored: boolean;
}

export interface FeedImport {
  kind: FeedKind;
  version: string;
  rows: number;
  status: FeedStatus;
  validation: FeedCheck[];
  publishedAt: string | null;
  origin: string | null;
  /** False when this version was already known: importing it again changes nothing. */
  imported: boolean;
  /** True when this call made it the active version. */
  activated: boolean;
  /** CVE records imported now: records new, changed, unchanged and removed against the active version. */
  changes?: CveRecordChanges;
  /** What the caller should know though nothing failed: a known version offered again from a different file. */
  warnings?: string[];
}

export class UnknownCheckError extends Error {
  constructor(names: string[]) {
    super(`unknown check${names.length > 1 ? 's' : ''} ${names.join(', ')}; known: ${FEED_CHECKS.join(', ')}`);
    this.name = 'UnknownCheckError';
  }
}

/** The version cannot be promoted in its state (rejected, rows deleted, unknown). */
export class FeedStateError extends Error {
  constructor(
    message: string,
    readonly reason: 'not_found' | 'not_promotable',
  ) {
    super(message);
    this.name = 'FeedStateError';
  }
}

/** Validates `force` names; `undefined` or empty means none. */
export function parseForce(force: readonly string[] | string | undefined): FeedCheckName[] {
  const names = (typeof force === 'string' ? force.split(',') : (force ?? [])).map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(FEED_CHECKS as readonly string[]).includes(n));
  if (unknown.length) throw new UnknownCheckError(unknown);
  return [...new Set(names)] as FeedCheckName[];
}

const feedPassed = (checks: readonly FeedCheck[]) => checks.every((c) => c.ok || c.overridden);

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);
const TABLES: Record<FeedKind, string> = { epss: 'epss_scores', kev: 'kev_entries', cve: 'cve_records' };
const table = (kind: FeedKind) => TABLES[kind];

type Row = Record<string, unknown>;

function toVersion(r: Row): FeedVersion {
  return {
    kind: r.kind as FeedKind,
    version: r.version as string,
    status: r.status as FeedStatus,
    rows: r.rows as number,
    sha256: r.sha256 as string,
    publishedAt: iso(r.published_at as Date | null),
    origin: (r.origin as string | null) ?? null,
    validation: (r.validation as FeedCheck[]) ?? [],
    importedAt: iso(r.imported_at as Date)!,
    activatedAt: iso(r.activated_at as Date | null),
    stored: Boolean(r.stored),
  };
}

const SELECT_VERSION = (sql: Sql | postgres.TransactionSql) => sql`
  select f.*, case f.kind
      when 'epss' then exists (select 1 from epss_scores e where e.feed_version = f.version)
      when 'cve' then exists (select 1 from cve_records c where c.feed_version = f.version)
      else exists (select 1 from kev_entries k where k.feed_version = f.version) end as stored
  from intel_feeds f`;

export async function getFeedVersion(sql: Sql | postgres.TransactionSql, kind: FeedKind, version: string): Promise<FeedVersion | undefined> {
  const [row] = await sql`${SELECT_VERSION(sql)} where f.kind = ${kind} and f.version = ${version}`;
  return row ? toVersion(row) : undefined;
}

/** Every version seen, newest first per kind. */
export async function listFeedVersions(sql: Sql, filter: { kind?: FeedKind; status?: FeedStatus } = {}): Promise<FeedVersion[]> {
  const rows = await sql`
    ${SELECT_VERSION(sql)}
    where (${filter.kind ?? null}::text is null or f.kind = ${filter.kind ?? null})
      and (${filter.status ?? null}::text is null or f.status = ${filter.status ?? null})
    order by f.kind, coalesce(f.published_at, f.imported_at) desc, f.version desc`;
  return rows.map(toVersion);
}

function asImport(v: FeedVersion, imported: boolean, activated: boolean): FeedImport {
  const { kind, version, rows, status, validation, publishedAt, origin } = v;
  return { kind, version, rows, status, validation, publishedAt, origin, imported, activated };
}

const days = (ms: number) => `${(ms / 86_400_000).toFixed(1)}d`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The checks that compare a stored version with the active one and with the other feed. */
async function relativeChecks(tx: postgres.TransactionSql, kind: FeedKind, version: string, options: ValidationOptions): Promise<FeedCheck[]> {
  const [candidate] = await tx`select rows, published_at from intel_feeds where kind = ${kind} and version = ${version}`;
  const [active] = await tx`
    select version, rows, published_at from intel_feeds where kind = ${kind} and status = 'active' and version <> ${version}`;
  if (!candidate) throw new FeedStateError(`no ${FEED_LABEL[kind]} version ${version}`, 'not_found');
  const rows = candidate.rows as number;
  const publishedAt = candidate.published_at as Date | null;
  const checks: FeedCheck[] = [];

  const maxDrop = FEED_BOUNDS.maxRowDrop[kind];
  if (rows === 0) checks.push({ check: 'row-count', ok: false, detail: 'the feed has no rows' });
  else if (!active) checks.push({ check: 'row-count', ok: true, detail: `${rows} rows; no active version to compare with` });
  else {
    const drop = (active.rows - rows) / active.rows;
    checks.push({
      check: 'row-count',
      ok: drop <= maxDrop,
      detail: `${rows} rows against ${active.rows} in active ${active.version}` + (drop > 0 ? ` (${pct(drop)} fewer; at most ${pct(maxDrop)} allowed)` : ''),
    });
  }

  const asOf = options.asOf ?? new Date();
  if (!publishedAt) checks.push({ check: 'freshness', ok: false, detail: 'the feed carries no publication date' });
  else {
    const age = asOf.getTime() - publishedAt.getTime();
    checks.push({
      check: 'freshness',
      ok: age <= options.maxAgeMs,
      detail: `published ${publishedAt.toISOString()}, ${days(Math.max(age, 0))} before ${asOf.toISOString()}; at most ${days(options.maxAgeMs)} allowed`,
    });
  }

  if (!active) checks.push({ check: 'not-older', ok: true, detail: 'no active version' });
  else {
    const activePublished = active.published_at as Date | null;
    // Legacy rows have no date: their versions (2026-01-30, 2026.01.29) sort by date as text.
    const older = publishedAt && activePublished ? publishedAt < activePublished : version < (active.version as string);
    checks.push({
      check: 'not-older',
      ok: !older,
      detail: older
        ? `older than active ${active.version} (${iso(activePublished) ?? 'undated'}): going back needs force`
        : `not older than active ${active.version}`,
    });
  }

  if (kind === 'cve') return checks;
  // Every KEV CVE should have an EPSS score: compare with the active version of the other feed,
  // or its newest staged one when none is active yet.
  const other: FeedKind = kind === 'epss' ? 'kev' : 'epss';
  const [reference] = await tx`
    select version from intel_feeds where kind = ${other} and status in ('active', 'staged') and rows > 0
    order by status = 'active' desc, coalesce(published_at, imported_at) desc limit 1`;
  if (!reference) checks.push({ check: 'kev-epss', ok: true, detail: `no ${FEED_LABEL[other]} version to compare with` });
  else {
    const kevVersion = kind === 'kev' ? version : (reference.version as string);
    const epssVersion = kind === 'epss' ? version : (reference.version as string);
    const [m] = await tx`
      select count(*)::int as total, count(*) filter (where e.cve is null)::int as missing,
             (array_agg(k.cve order by k.cve) filter (where e.cve is null))[1:5] as sample
      from kev_entries k left join epss_scores e on e.cve = k.cve and e.feed_version = ${epssVersion}
      where k.feed_version = ${kevVersion}`;
    const allowed = Math.floor(m!.total * FEED_BOUNDS.maxKevWithoutEpss);
    checks.push({
      check: 'kev-epss',
      ok: m!.missing <= allowed,
      detail:
        `${m!.missing} of ${m!.total} CISA KEV ${kevVersion} CVEs have no FIRST EPSS ${epssVersion} score (at most ${allowed} allowed)` +
        (m!.missing ? `: ${(m!.sample as string[]).join(', ')}${m!.missing > 5 ? ', ...' : ''}` : ''),
    });
  }
  return checks;
}

/** Rows of retired versions beyond the newest few per kind are deleted; their intel_feeds record stays. */
async function pruneFeedRows(sql: Sql | postgres.TransactionSql, kind: FeedKind): Promise<string[]> {
  const old = await sql`
    select version from intel_feeds where kind = ${kind} and status = 'retired'
    order by activated_at desc nulls last, coalesce(published_at, imported_at) desc, version desc
    offset ${FEED_BOUNDS.keepRetired}`;
  const versions = old.map((r) => r.version as string);
  if (versions.length) await sql.unsafe(`delete from ${table(kind)} where feed_version = any($1::text[])`, [versions]);
  return versions;
}

interface Decision {
  /** Activate when the checks pass (import with if-valid, promote). */
  activate: boolean;
  /** Mark rejected when they fail (import with if-valid); otherwise the status stays. */
  rejectOnFailure: boolean;
}

/** Imports and promotions of one kind run one at a time: the active version a check compares with is the one retired. */
const lockKind = (tx: postgres.TransactionSql, kind: FeedKind) => tx`select pg_advisory_xact_lock(hashtext(${`ctem:intel:${kind}`}))`;

/** Runs the checks on a stored version and acts on them; returns whether it became active. */
async function judge(tx: postgres.TransactionSql, kind: FeedKind, version: string, fileChecks: FeedCheck[], options: ValidationOptions, decision: Decision): Promise<boolean> {
  const force = parseForce(options.force);
  const checks = [...fileChecks, ...(await relativeChecks(tx, kind, version, options))].map((c): FeedCheck => {
    const { overridden: _, ...plain } = c;
    return !c.ok && force.includes(c.check) ? { ...plain, overridden: true } : plain;
  });
  const passed = feedPassed(checks);
  const validation = tx.json(checks as unknown as postgres.JSONValue);
  if (passed && decision.activate) {
    await tx`update intel_feeds set status = 'retired' where kind = ${kind} and status = 'active'`;
    await tx`update intel_feeds set status = 'active', activated_at = now(), validation = ${validation} where kind = ${kind} and version = ${version}`;
    // Under the same lock, so a promotion never activates a version whose rows are going.
    await pruneFeedRows(tx, kind);
    return true;
  }
  if (!passed && decision.rejectOnFailure) {
    await tx`update intel_feeds set status = 'rejected', validation = ${validation} where kind = ${kind} and version = ${version}`;
    // Rejected versions never take effect; their record (with the failed checks) is what stays.
    await tx.unsafe(`delete from ${table(kind)} where feed_version = $1`, [version]);
    return false;
  }
  await tx`update intel_feeds set validation = ${validation} where kind = ${kind} and version = ${version}`;
  return false;
}

/** A rejected version keeps only its record: a corrected file, or the same one with force, replaces it. */
function replaceable(known: { status: FeedStatus; sha256: string }, sha256: string, force: readonly string[] | undefined): boolean {
  return known.status === 'rejected' && (known.sha256 !== sha256 || parseForce(force).length > 0);
}

interface VersionInput {
  kind: FeedKind;
  version: string;
  sha256: string;
  publishedAt?: Date | undefined;
  /** Stores the rows under the version; returns their number. Throws FeedError on bad input. */
  copy(tx: postgres.TransactionSql): Promise<number>;
  /** Checks of the file alone, once its rows are counted. */
  fileChecks(rows: number): FeedCheck[];
  /** Releases the input when it is not read. */
  close?(): void;
}

/**
 * Stages a version (its rows under its version, `staged`), judges it and activates or rejects it,
 * all in one transaction: a parse error halfway through stores nothing, and an import that stops
 * leaves no half-judged version behind. A version already known is not read again.
 */
async function importVersion(sql: Sql, input: VersionInput, options: ImportOptions): Promise<FeedImport> {
  const { kind, version } = input;
  parseForce(options.force);
  const decision: Decision = { activate: (options.activate ?? 'if-valid') === 'if-valid', rejectOnFailure: (options.activate ?? 'if-valid') === 'if-valid' };
  const known = await getFeedVersion(sql, kind, version);
  const outcome =
    known && !replaceable(known, input.sha256, options.force)
      ? 'known'
      : await sql.begin(async (tx) => {
          await lockKind(tx, kind);
          const [existing] = await tx`select status, sha256 from intel_feeds where kind = ${kind} and version = ${version}`;
          if (existing) {
            // Another import got here first.
            if (!replaceable(existing as { status: FeedStatus; sha256: string }, input.sha256, options.force)) return 'known' as const;
            await tx`delete from intel_feeds where kind = ${kind} and version = ${version}`;
            await tx.unsafe(`delete from ${table(kind)} where feed_version = $1`, [version]);
          }
          await tx`
            insert into intel_feeds (kind, version, status, rows, sha256, published_at, origin, validation)
            values (${kind}, ${version}, 'staged', 0, ${input.sha256}, ${input.publishedAt ?? null}, ${options.origin ?? null}, '[]'::jsonb)`;
          const rows = await input.copy(tx);
          await tx`update intel_feeds set rows = ${rows} where kind = ${kind} and version = ${version}`;
          return (await judge(tx, kind, version, input.fileChecks(rows), options, decision)) ? ('activated' as const) : ('judged' as const);
        });
  if (outcome === 'known') {
    input.close?.();
    const current = (await getFeedVersion(sql, kind, version))!;
    // The same version from other bytes (a re-published day, a decompressed copy, a tampered mirror):
    // the stored version stays, and the caller hears that this file was not read.
    const warnings = current.sha256 !== input.sha256
      ? [`${FEED_LABEL[kind]} ${version} is already ${current.status} from a file with sha256 ${current.sha256.slice(0, 12)}…; this file (sha256 ${input.sha256.slice(0, 12)}…) differs and was not read`]
      : [];
    // A stage-only version is activated by importing it again without stage-only.
    if (current.status === 'staged' && decision.activate) return { ...(await promoteFeed(sql, kind, version, options)), imported: false, ...(warnings.length ? { warnings } : {}) };
    return { ...asImport(current, false, false), ...(warnings.length ? { warnings } : {}) };
  }
  return asImport((await getFeedVersion(sql, kind, version))!, true, outcome === 'activated');
}

/** Imports a FIRST EPSS version: staged, checked, then activated or rejected (see `ImportOptions`). */
export async function importEpssFeed(sql: Sql, feed: EpssFeed, sha256: string, options: ImportOptions): Promise<FeedImport> {
  const name = options.name ?? feed.version;
  return importVersion(
    sql,
    {
      kind: 'epss',
      version: feed.version,
      sha256,
      publishedAt: feed.publishedAt,
      // Through a transaction-local table without a key: a CVE listed twice is then found by a
      // query, where a key violation inside COPY would leave the stream waiting.
      async copy(tx) {
        await tx`create temporary table epss_import (cve text not null, epss float8 not null, percentile float8 not null) on commit drop`;
        const rows = await copyRows(tx, 'epss_import', ['cve', 'epss', 'percentile'], feed.rows, (r) => [r.cve, r.epss, r.percentile]);
        const [twice] = await tx`select cve from epss_import group by cve having count(*) > 1 order by cve limit 1`;
        if (twice) throw new FeedError(name, 'EPSS', '', `${twice.cve} listed twice`);
        await tx`insert into epss_scores (feed_version, cve, epss, percentile) select ${feed.version}, cve, epss, percentile from epss_import`;
        return rows;
      },
      fileChecks: (rows) => [{ check: 'schema', ok: true, detail: `${rows} rows parsed (model ${feed.modelVersion})` }],
      close: () => feed.close(),
    },
    options,
  );
}

/** Imports a CISA KEV version: staged, checked, then activated or rejected. */
export async function importKevFeed(sql: Sql, feed: KevFeed, options: ImportOptions): Promise<FeedImport> {
  const seen = new Set<string>();
  for (const e of feed.entries) {
    if (seen.has(e.cve)) throw new FeedError(options.name ?? feed.version, 'KEV', '', `${e.cve} listed twice`);
    seen.add(e.cve);
  }
  const n = feed.entries.length;
  return importVersion(
    sql,
    {
      kind: 'kev',
      version: feed.version,
      sha256: feed.sha256,
      publishedAt: feed.publishedAt,
      copy: (tx) =>
        copyRows(tx, 'kev_entries', ['cve', 'vendor', 'product', 'date_added', 'due_date', 'known_ransomware', 'feed_version'], feed.entries, (e) => [
          e.cve, e.vendor, e.product, e.dateAdded, e.dueDate, e.knownRansomware, feed.version,
        ]),
      fileChecks: () => [
        { check: 'schema', ok: true, detail: `${n} entries parsed` },
        feed.declaredCount === undefined
          ? { check: 'count', ok: false, detail: `the catalog declares no count (lists ${n})` }
          : feed.declaredCount === n
            ? { check: 'count', ok: true, detail: `declares ${n}, lists ${n}` }
            : { check: 'count', ok: false, detail: `says ${feed.declaredCount} but the catalog lists ${n} (truncated?)` },
      ],
    },
    options,
  );
}

const CVE_COLUMNS = [
  'state', 'date_published', 'date_updated', 'cna_vector', 'cna_score', 'cna_v4_vector', 'cna_v4_score', 'adp_vector', 'adp_score',
  'adp_provider', 'cwes', 'ssvc_exploitation', 'ssvc_automatable', 'ssvc_technical_impact', 'ssvc_assessed_at', 'affected', 'sha256',
] as const;

const copyDate = (d: Date | null) => (d ? d.toISOString() : null);

/** Malformed records named one by one in the schema check's detail (force=schema); the rest are counted. */
const MAX_SKIPPED_LISTED = 100;

function cveRecordFields(r: CveRecordRow): unknown[] {
  return [
    r.state, copyDate(r.datePublished), copyDate(r.dateUpdated), r.cnaVector, r.cnaScore, r.cnaV4Vector, r.cnaV4Score, r.adpVector, r.adpScore,
    r.adpProvider, `{${r.cwes.map((c) => `"${c}"`).join(',')}}`, r.ssvcExploitation, r.ssvcAutomatable, r.ssvcTechnicalImpact,
    copyDate(r.ssvcAssessedAt), r.affected ? JSON.stringify(r.affected) : null, r.sha256,
  ];
}

/**
 * Imports a CVE records version, incrementally: every record file was hashed when the list was
 * opened (openCveRecords); only those whose hash differs from the active version's are parsed and
 * copied in, the unchanged ones are copied from the active version in one INSERT ... SELECT, and a
 * record absent from the list is not carried over. A malformed record refuses the list whole
 * (FeedError naming the file and the JSON path; nothing stored), like a bad row in EPSS or KEV.
 */
export async function importCveRecords(sql: Sql, feed: CveRecordsFeed, options: ImportOptions): Promise<FeedImport> {
  const minRecords = options.minRecords ?? CVE_MIN_RECORDS_DEFAULT;
  // force=schema: malformed records are left out, each named in the schema check, instead of refusing the list.
  const skipMalformed = parseForce(options.force).includes('schema');
  const skipped: Array<{ name: string; error: string }> = [];
  let changes: CveRecordChanges | undefined;
  let rejected = 0;
  const result = await importVersion(
    sql,
    {
      kind: 'cve',
      version: feed.version,
      sha256: feed.sha256,
      publishedAt: feed.publishedAt,
      async copy(tx) {
        const [active] = await tx`select version from intel_feeds where kind = 'cve' and status = 'active' and version <> ${feed.version}`;
        const against = (active?.version as string | undefined) ?? null;
        await tx`create temporary table cve_import (cve text primary key, sha256 text not null, name text not null) on commit drop`;
        await copyRows(tx, 'cve_import', ['cve', 'sha256', 'name'], feed.files, (f) => [f.cve, f.sha256, f.name]);
        let unchanged = 0;
        let removed = 0;
        let toRead: Array<{ name: string; known: boolean }> = feed.files.map((f) => ({ name: f.name, known: false }));
        if (against) {
          // The same file as in the active version is the same row: copied server-side, not parsed again.
          const copied = await tx.unsafe(
            `insert into cve_records (feed_version, cve, ${CVE_COLUMNS.join(', ')})
             select $1, a.cve, ${CVE_COLUMNS.map((c) => `a.${c}`).join(', ')}
             from cve_records a join cve_import t on t.cve = a.cve and t.sha256 = a.sha256
             where a.feed_version = $2`,
            [feed.version, against],
          );
          unchanged = copied.count;
          toRead = (await tx`
            select t.name, a.cve is not null as known from cve_import t
            left join cve_records a on a.feed_version = ${against} and a.cve = t.cve
            where a.sha256 is distinct from t.sha256`) as unknown as Array<{ name: string; known: boolean }>;
          const [gone] = await tx`
            select count(*)::int as n from cve_records a
            where a.feed_version = ${against} and not exists (select 1 from cve_import t where t.cve = a.cve)`;
          removed = gone!.n as number;
        }
        const skip = skipMalformed ? (name: string, error: FeedError) => skipped.push({ name, error: error.message }) : undefined;
        const rows = feed.read(new Set(toRead.map((r) => r.name)), skip);
        const parsed = toRead.length ? await copyRows(tx, 'cve_records', ['feed_version', 'cve', ...CVE_COLUMNS], rows, (r) => [feed.version, r.cve, ...cveRecordFields(r)]) : 0;
        // A file hashed in the first pass and gone in the second (a checkout pulled meanwhile) must not vanish.
        if (parsed + skipped.length !== toRead.length) throw new FeedError(feed.label, 'CVE records', '', `${toRead.length - parsed - skipped.length} record files disappeared while being imported`);
        const left = new Set(skipped.map((s) => s.name));
        const changed = toRead.filter((r) => r.known && !left.has(r.name)).length;
        changes = { new: parsed - changed, changed, unchanged, removed, against };
        const [counts] = await tx`select count(*) filter (where state = 'REJECTED')::int as rejected from cve_records where feed_version = ${feed.version}`;
        rejected = counts!.rejected as number;
        return unchanged + parsed;
      },
      fileChecks: (rows) => [
        {
          check: 'schema',
          ok: skipped.length === 0,
          detail:
            `${rows} records (${rejected} REJECTED)` +
            (changes?.against
              ? `; against active ${changes.against}: ${changes.new} new, ${changes.changed} changed, ${changes.unchanged} unchanged, ${changes.removed} removed`
              : '; all new (no active version)') +
            (skipped.length
              ? `; ${skipped.length} malformed record${skipped.length > 1 ? 's' : ''} left out: ${skipped.slice(0, MAX_SKIPPED_LISTED).map((s) => s.error).join('; ')}` +
                (skipped.length > MAX_SKIPPED_LISTED ? `; and ${skipped.length - MAX_SKIPPED_LISTED} more` : '')
              : ''),
        },
        rows >= minRecords
          ? { check: 'count', ok: true, detail: `${rows} records; at least ${minRecords} expected` }
          : { check: 'count', ok: false, detail: `${rows} records in ${feed.label}; at least ${minRecords} expected (a partial list?)` },
      ],
    },
    options,
  );
  return result.imported && changes ? { ...result, changes } : result;
}

/**
 * Activates a staged version (or a retired one whose rows are still stored: a rollback) after
 * running the checks again against the current active version. A failed check leaves the status as
 * it was, unless `force` names it.
 */
export async function promoteFeed(sql: Sql, kind: FeedKind, version: string, options: ValidationOptions): Promise<FeedImport> {
  parseForce(options.force);
  const v = await getFeedVersion(sql, kind, version);
  if (!v) throw new FeedStateError(`no ${FEED_LABEL[kind]} version ${version}`, 'not_found');
  if (v.status === 'active') return asImport(v, false, false);
  if (v.status === 'rejected') {
    throw new FeedStateError(`${FEED_LABEL[kind]} ${version} was rejected and its rows deleted: import the file again (with force to override checks)`, 'not_promotable');
  }
  if (!v.stored && v.rows > 0) throw new FeedStateError(`${FEED_LABEL[kind]} ${version}: its rows were deleted by retention; import the file again`, 'not_promotable');
  const fileChecks = v.validation.filter((c) => FILE_CHECKS.includes(c.check));
  const activated = await sql.begin(async (tx) => {
    await lockKind(tx, kind);
    const [current] = await tx`select status from intel_feeds where kind = ${kind} and version = ${version}`;
    // Activated meanwhile by another request: nothing left to do.
    if (current?.status === 'active') return false;
    const [rows] = await tx.unsafe(`select exists (select 1 from ${table(kind)} where feed_version = $1) as stored`, [version]);
    if (!rows?.stored && v.rows > 0) throw new FeedStateError(`${FEED_LABEL[kind]} ${version}: its rows were deleted by retention; import the file again`, 'not_promotable');
    return judge(tx, kind, version, fileChecks, options, { activate: true, rejectOnFailure: false });
  });
  return asImport((await getFeedVersion(sql, kind, version))!, false, activated);
}
