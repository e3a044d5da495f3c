import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import type { NormalizedFinding } from '../connectors/index.js';
import { resolveAssets, stageAssetRef, type StagedAsset } from './identity.js';
import { stageRows, type StageColumn } from './copy.js';
import { recordScannedBaseImages } from './base-images.js';
import type { BaseImage } from '../connectors/common/base-image.js';
import { learnAliases, ReportIds } from './aliases.js';

export interface IngestCounts {
  /** Findings in the report after in-report duplicates are merged. */
  findings: number;
  newFindings: number;
  reopenedFindings: number;
  closedFindings: number;
  assets: number;
}

export interface ScanToIngest {
  id: string;
  source: string;
  owner?: string | null;
  target?: string | null;
  /** null: complete unless the report is empty (see scans.complete). */
  complete?: boolean | null;
}

/**
 * A finding's identity: its resolved asset, kind, issue (the canonical id: a GHSA that
 * `vulnerability_aliases` links to a CVE is keyed by the CVE), component, version and location, and
 * nothing a scanner may reword (titles, descriptions, severities), so re-imports never churn
 * findings. The merge below computes the same hash in SQL over the staging table; this is it in
 * TypeScript, for code that names a finding outside ingest (the two are tested to agree).
 */
export function fingerprint(assetId: number, f: Pick<NormalizedFinding, 'kind' | 'issueId' | 'component' | 'version' | 'location'>): string {
  return createHash('sha256').update([assetId, f.kind, f.issueId, f.component, f.version, f.location].join('\x1f')).digest('hex');
}

/**
 * A copy of `value` without U+0000 in any string (the same object when there is none). PostgreSQL
 * text cannot hold NUL (`invalid byte sequence for encoding "UTF8": 0x00`), and some scanners write
 * one inside a field (Grype in some artifact versions): one such byte must not fail the whole report.
 * Removing it, rather than replacing it, keeps the value equal to what another scanner reports.
 */
export function withoutNul<T>(value: T): T {
  if (typeof value === 'string') return (value.includes('\0') ? value.replaceAll('\0', '') : value) as T;
  if (value === null || typeof value !== 'object') return value;
  // The hot path of every ingest: no allocation unless a NUL is found.
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'number') continue;
      const clean = withoutNul(item);
      if (clean !== item) (out ??= [...value])[i] = clean;
    }
    return (out ?? value) as T;
  }
  const object = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key in object) {
    const item = object[key];
    if (typeof item === 'number' || item === undefined) continue;
    const clean = withoutNul(item);
    if (clean !== item) (out ??= { ...object })[key] = clean;
  }
  return (out ?? value) as T;
}

async function* nulFree(findings: AsyncIterable<NormalizedFinding>): AsyncGenerator<NormalizedFinding> {
  for await (const finding of findings) yield withoutNul(finding);
}

const STAGING_COLUMNS: readonly StageColumn[] = [
  ['asset_key', 'text'], ['kind', 'text'], ['issue_id', 'text'], ['component', 'text'], ['version', 'text'], ['location', 'text'],
  ['fixed_version', 'text'], ['severity', 'text'], ['cvss_score', 'real'], ['cvss_vector', 'text'], ['title', 'text'], ['vendor_status', 'text'],
  ['ecosystem', 'text'], ['package_class', 'text'], ['manifest', 'text'], ['source_package', 'text'], ['fix_source', 'text'],
  // The finding's aliases joined by U+001F (no alias holds one): one text column stages alike by COPY and by unnest().
  ['aliases', 'text'],
];

/**
 * Stores one scan's findings: stream -> staging table (one INSERT for a small report, COPY for a
 * large one; emptied at commit) -> set-based merges into assets, findings and finding_sources. A
 * complete scan then closes what its source no longer reports on the scanned assets (a finding
 * closes when no source reports it any more) and what comes back is re-opened. All of it is one
 * transaction, so a report that fails half-way stores nothing, and merging the same report again
 * changes no finding's identity or state: a complete rescan that reports a finding as it already is
 * writes nothing for it (its last seen comes from source_coverage), a partial one only its
 * last_seen_at / last_scan_id (and its source row's).
 */
export async function ingestFindings(
  sql: Sql,
  scan: ScanToIngest,
  findings: AsyncIterable<NormalizedFinding>,
  /** Runs last, inside the same transaction (the scan records what it ingested: see ingest-scan.ts). */
  finish?: (tx: postgres.TransactionSql, counts: IngestCounts) => Promise<unknown>,
): Promise<IngestCounts> {
  return sql.begin(async (tx) => {
    // A crash before commit only means the scan is retried, so the commit need not wait for the WAL
    // flush; a report of a million findings should sort and hash in memory, not on disk; and every
    // report is planned for its own size against the tables as they are now, never with a generic
    // plan cached while they were small (index lookups, not scans of every finding, per report).
    // The staging table is kept for the session and emptied at every commit: creating and dropping
    // a table per report costs more catalog work than merging a small report. Both statements in one
    // round trip (the simple protocol takes several; neither has parameters).
    await tx`
      select set_config('synchronous_commit', 'off', true), set_config('work_mem', '64MB', true),
             set_config('plan_cache_mode', 'force_custom_plan', true);
      create temp table if not exists staging_findings (
        asset_key text, kind text, issue_id text, component text, version text, location text, fixed_version text,
        severity text, cvss_score real, cvss_vector text, title text, vendor_status text,
        ecosystem text, package_class text, manifest text, source_package text, fix_source text, aliases text
      ) on commit delete rows`.simple();
    // Assets are few even when findings are millions: collect them on the way, resolve them once.
    const seen = new Map<string, StagedAsset>();
    const bases = new Map<string, BaseImage>();
    const ids = new ReportIds();
    // Every text the store receives from a report passes here first: NUL is removed (withoutNul).
    const rows = await stageRows(tx, 'staging_findings', STAGING_COLUMNS, nulFree(findings), (f) => {
      if (!seen.has(f.asset.assetKey)) {
        seen.set(f.asset.assetKey, stageAssetRef(f.asset));
        if (f.asset.builtFrom) bases.set(f.asset.assetKey, f.asset.builtFrom);
      }
      ids.add(f.issueId, f.aliases);
      return [f.asset.assetKey, f.kind, f.issueId, f.component, f.version, f.location, f.fixedVersion, f.severity, f.cvssScore, f.cvssVector, f.title, f.vendorStatus,
        f.ecosystem, f.packageClass, f.manifest, f.sourcePackage, f.fixedVersion !== undefined ? f.fixSource : undefined,
        f.aliases?.length ? f.aliases.join('\x1f') : undefined];
    });
    const resolved = await resolveAssets(tx, [...seen.values()], 'scan', { source: scan.source, scanId: scan.id });
    const scannedIds = [...resolved.values()];
    if (rows === 0 && scan.target) {
      const [byName] = await tx`select id from assets where name = ${scan.target} order by id limit 1`;
      if (byName) scannedIds.push(Number(byName.id));
    }
    // A scan's owner parameter is the weakest ownership claim: CMDB or cloud tags win over it.
    await tx`
      with scanned as (
        insert into scan_assets (scan_id, asset_id) select ${scan.id}, unnest(${tx.array(scannedIds)}::bigint[]) on conflict do nothing
      )
      update assets set
        last_seen_at = case when id = any(${tx.array([...resolved.values()])}::bigint[]) then now() else last_seen_at end,
        last_scanned_at = now(),
        owner = case when ${scan.owner ?? null}::text is not null and coalesce(attribute_sources->>'owner', 'scan') = 'scan'
                     then ${scan.owner ?? null}::text else owner end,
        attribute_sources = case when ${scan.owner ?? null}::text is not null and attribute_sources->>'owner' is null
                                 then attribute_sources || '{"owner":"scan"}' else attribute_sources end
      where id = any(${tx.array(scannedIds)}::bigint[])`;
    // After the update above: the images' rows are locked, so a concurrent import naming another base waits.
    await recordScannedBaseImages(tx, resolved, bases, scan.source);
    const complete = scan.complete ?? rows > 0;
    // distinct on: a report may list the same package twice (e.g. two layers); one finding it is.
    // The package facts (ecosystem, class, manifest, source package) and where the fixed version came
    // from follow the latest report like the fixed version: one that states them wins, one that omits
    // them keeps the stored ones; fix_source always goes with the fixed version it describes.
    // Ratings: each source's own (severity, CVSS score and vector) is kept on its finding_sources
    // row, a report that omits the score or vector keeping the one the source stated before. The
    // finding's rating is a function of its present sources' ratings, never of which scanned last
    // (Trivy and Grype rate one CVE from different sources, NVD or a distribution): see
    // findingRating() in ratings.ts. A finding only this source reports (the common case, and every new one)
    // takes this source's rating as it is; only findings another present source also reports pool
    // the ratings, in subqueries the others never run.
    // `known` looks each incoming finding and its source row up once (as they were before this
    // statement): new ones are inserted, changed or re-opened ones rewritten. A plain insert, not an
    // upsert (a third cheaper per row): a concurrent scan of the same asset cannot insert the same
    // fingerprint (it includes the asset) in between, because the update of the scanned assets above
    // holds their rows until commit, so that scan waits there and then reads these findings. Unchanged ones are not written at all by a
    // complete scan (it records itself once per asset in source_coverage, which is what their last
    // seen derives from); a partial scan, which says nothing about what it does not list, gives
    // them last_seen_at / last_scan_id, an in-page (HOT) update thanks to fillfactor 50. Rows are
    // reached by key lists and per-row probes, not joins: right after a bulk load there are no
    // statistics yet, and a join plan would read all of finding_sources for every report.
    const src = scan.source;
    // Pieces of the merge below. ownSame: this source's rating of a known finding is the one its row
    // holds. pooled: findingRating()'s score or vector over the other present sources' ratings and
    // this source's new one (`b`: one row per incoming finding).
    const ownSame = tx`coalesce(fs.present and fs.severity is not distinct from i.severity and fs.cvss_score is not distinct from s.source_score
                                and fs.cvss_vector is not distinct from s.source_vector, false)`;
    const pooled = (column: 'cvss_score' | 'cvss_vector') => tx`(
      select p.${tx(column)} from (select o.cvss_score, o.cvss_vector from finding_sources o where o.finding_id = b.finding_id and o.present and o.source <> ${src}
                                   union all select b.source_score, b.source_vector) p(cvss_score, cvss_vector)
      order by p.cvss_vector is null, p.cvss_score desc nulls last, p.cvss_vector collate "C" limit 1)`;
    // Aliases (aliases.ts): the links the report states are learned first, re-keying the stored
    // findings they make duplicates; then each finding is keyed by its canonical id, and keeps the
    // ids it was reported under as aliases. A report that names no alias and no aliased id merges
    // exactly as before (the fragments below are empty).
    const { links } = await learnAliases(tx, scan.source, ids);
    const aliased = ids.hasAliases || links.size > 0;
    const keyedIssue = links.size ? tx`coalesce(m.canonical, s.issue_id)` : tx`s.issue_id`;
    const canonicalJoin = links.size
      ? tx`left join unnest(${tx.array([...links.keys()])}::text[], ${tx.array([...links.values()])}::text[]) as m(alias, canonical) on m.alias = s.issue_id`
      : tx``;
    const rowAliases = !aliased ? tx``
      : links.size ? tx`, nullif(concat_ws(chr(31), s.aliases, case when m.canonical is not null then s.issue_id end), '') as row_aliases`
      : tx`, s.aliases as row_aliases`;
    // Duplicates in one report (two ids of one vulnerability on one package) pool their aliases.
    const allAliases = aliased ? tx`, string_agg(row_aliases, chr(31)) over (partition by fingerprint) as all_aliases` : tx``;
    const aliasArray = aliased
      ? tx`, case when d.all_aliases is null then '{}'::text[]
                  else array(select distinct a collate "C" from unnest(string_to_array(d.all_aliases, chr(31))) a where a <> d.issue_id order by 1) end as aliases`
      : tx``;
    // The merge's alias parts: compared, inserted and unioned only when the report has any.
    const storedAliases = aliased ? tx`, f.aliases` : tx``;
    const keptAliases = aliased ? tx`, b.aliases` : tx``;
    // A report adds aliases, never removes one another source gave.
    const sameAliases = aliased ? tx`and f.aliases @> i.aliases` : tx``;
    const insertAliases = aliased ? tx`, aliases` : tx``;
    const unionAliases = aliased
      ? tx`aliases = case when f.aliases @> k.aliases then f.aliases
                          else array(select distinct a collate "C" from unnest(f.aliases || k.aliases) a order by 1) end,`
      : tx``;
    const [merged] = await tx`
      with incoming as materialized (
        select d.* ${aliasArray}
        from (
          select distinct on (fingerprint) * ${allAliases}
          from (
            -- fingerprint() above, in SQL.
            select encode(sha256(convert_to(concat_ws(chr(31), r.asset_id, s.kind, ${keyedIssue}, s.component, s.version, s.location), 'UTF8')), 'hex') as fingerprint,
                   r.asset_id, s.kind, ${keyedIssue} as issue_id, s.component, s.version, s.location, s.fixed_version, s.severity, s.cvss_score, s.cvss_vector,
                   s.title, s.vendor_status, s.ecosystem, s.package_class, s.manifest, s.source_package, s.fix_source ${rowAliases}
            from staging_findings s
            join unnest(${tx.array([...resolved.keys()])}::text[], ${tx.array([...resolved.values()])}::bigint[]) as r(asset_key, asset_id)
              on r.asset_key = s.asset_key
            ${canonicalJoin}
          ) keyed
          -- The worst rating of the duplicates, its vector with it (one rating, so they agree).
          order by fingerprint, cvss_score desc nulls last, cvss_vector nulls last
        ) d
      ),
      -- The scanned assets' findings, through the asset index: rows stored together, where looking
      -- up each fingerprint (random hashes) would touch a different index page per finding.
      existing as materialized (
        select f.id, f.fingerprint, f.status, f.severity, f.fixed_version, f.cvss_score, f.cvss_vector, f.title, f.vendor_status,
               f.ecosystem, f.package_class, f.manifest, f.source_package, f.fix_source ${storedAliases}
        from findings f where f.asset_id = any(${tx.array(scannedIds)}::bigint[])
      ),
      known as materialized (
        -- The finding's rating (findingRating()): unchanged when this source's is (the stored one
        -- already is that function of the sources), this source's when no other present source
        -- reports the finding, else pooled. CASE is lazy: the subqueries run for shared findings only.
        select b.fingerprint, b.asset_id, b.kind, b.issue_id, b.component, b.version, b.location, b.fixed_version, b.severity,
               b.cvss_score, b.cvss_vector, b.title, b.vendor_status, b.ecosystem, b.package_class, b.manifest, b.source_package,
               b.fix_source ${keptAliases}, b.finding_id, b.prior_status, b.source_score, b.source_vector, b.unchanged, b.source_unchanged,
               case when b.finding_id is null then b.severity when b.own_same then b.prior_severity when not b.shared then b.severity else (
                 select (array['unknown', 'info', 'low', 'medium', 'high', 'critical'])[1 + max(
                          case p.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2
                                          when 'info' then 1 when 'negligible' then 1 else 0 end)]
                 from (select o.severity from finding_sources o where o.finding_id = b.finding_id and o.present and o.source <> ${src}
                       union all select b.severity) p
               ) end as rated_severity,
               case when b.finding_id is null then b.cvss_score when b.own_same then b.prior_cvss_score
                    when not b.shared then b.source_score else ${pooled('cvss_score')} end as rated_score,
               case when b.finding_id is null then b.cvss_vector when b.own_same then b.prior_cvss_vector
                    when not b.shared then b.source_vector else ${pooled('cvss_vector')} end as rated_vector
        from (
          select i.*, f.id as finding_id, f.status as prior_status, f.severity as prior_severity,
                 f.cvss_score as prior_cvss_score, f.cvss_vector as prior_cvss_vector, s.source_score, s.source_vector,
                 ${ownSame} as own_same,
                 -- Whether another present source reports it: asked only of known findings whose
                 -- rating from this source changed.
                 case when f.id is null or ${ownSame} then false
                      else exists (select from finding_sources o where o.finding_id = f.id and o.source <> ${src} and o.present) end as shared,
                 -- A finding whose rating from this source changed is rewritten, even in the rare case
                 -- where another source's rating keeps the finding's as it was.
                 f.status = 'open' and ${ownSame}
                   and f.fixed_version is not distinct from coalesce(i.fixed_version, f.fixed_version)
                   and f.title is not distinct from coalesce(i.title, f.title)
                   and f.vendor_status is not distinct from coalesce(i.vendor_status, f.vendor_status)
                   and f.fix_source is not distinct from case when i.fixed_version is null then f.fix_source else i.fix_source end
                   and f.ecosystem is not distinct from coalesce(i.ecosystem, f.ecosystem)
                   and f.package_class is not distinct from coalesce(i.package_class, f.package_class)
                   and f.manifest = coalesce(i.manifest, f.manifest)
                   and f.source_package is not distinct from coalesce(i.source_package, f.source_package)
                   ${sameAliases} as unchanged,
                 coalesce(fs.present and fs.vendor_status is not distinct from i.vendor_status, false) and ${ownSame} as source_unchanged
          from incoming i
          left join existing f on f.fingerprint = i.fingerprint
          left join lateral (
            -- A new finding (no id) skips the probe altogether: a one-time filter on the outer row.
            select present, vendor_status, severity, cvss_score, cvss_vector from finding_sources
            where f.id is not null and finding_id = f.id and source = ${scan.source} limit 1
          ) fs on true
          cross join lateral (
            -- This source's score and vector: a report that omits one keeps what the source stated
            -- before (on a row from before ratings were kept per source, what the finding had).
            select coalesce(i.cvss_score, fs.cvss_score, case when fs.present is not null and fs.severity is null then f.cvss_score end) as source_score,
                   coalesce(i.cvss_vector, fs.cvss_vector, case when fs.present is not null and fs.severity is null then f.cvss_vector end) as source_vector
          ) s
          -- Computed once per row: inlined, the subquery of shared would be repeated in each
          -- rating above, and planning that per report would cost more than merging a small report.
          offset 0
        ) b
      ),
      created as (
        insert into findings as f (fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version,
                                   severity, cvss_score, cvss_vector, title, vendor_status,
                                   ecosystem, package_class, manifest, source_package, fix_source ${insertAliases}, first_scan_id, last_scan_id)
        select fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version,
               severity, cvss_score, cvss_vector, title, vendor_status,
               ecosystem, package_class, coalesce(manifest, ''), source_package, fix_source ${insertAliases}, ${scan.id}, ${scan.id}
        from known where finding_id is null
        returning f.id, f.vendor_status, f.severity, f.cvss_score, f.cvss_vector
      ),
      changed as (
        update findings f set
          last_seen_at = now(),
          last_scan_id = ${scan.id},
          fixed_version = coalesce(k.fixed_version, f.fixed_version),
          severity = k.rated_severity,
          cvss_score = k.rated_score,
          cvss_vector = k.rated_vector,
          title = coalesce(k.title, f.title),
          vendor_status = coalesce(k.vendor_status, f.vendor_status),
          fix_source = case when k.fixed_version is null then f.fix_source else k.fix_source end,
          ecosystem = coalesce(k.ecosystem, f.ecosystem),
          package_class = coalesce(k.package_class, f.package_class),
          manifest = coalesce(k.manifest, f.manifest),
          source_package = coalesce(k.source_package, f.source_package),
          ${unionAliases}
          status = 'open',
          reopen_count = f.reopen_count + case when f.status = 'closed' then 1 else 0 end,
          closed_at = null, closed_reason = null, closed_by_scan_id = null
        from known k
        where f.id = any(array(select finding_id from known where not unchanged)) and f.id = k.finding_id
      ),
      touched as (
        update findings f set last_seen_at = now(), last_scan_id = ${scan.id}
        where not ${complete}::boolean and f.id = any(array(select finding_id from known where unchanged))
      ),
      -- A finding inserted by this statement has no source row anywhere yet: a plain insert.
      new_sources as (
        insert into finding_sources (finding_id, source, present, vendor_status, severity, cvss_score, cvss_vector, last_scan_id)
        select c.id, ${scan.source}, true, c.vendor_status, c.severity, c.cvss_score, c.cvss_vector, ${scan.id}
        from created c
      ),
      sources as (
        insert into finding_sources as fs (finding_id, source, present, vendor_status, severity, cvss_score, cvss_vector, last_scan_id)
        select finding_id, ${scan.source}::text, true, vendor_status, severity, source_score, source_vector, ${scan.id}::uuid
        from known where finding_id is not null and not source_unchanged
        on conflict (finding_id, source) do update set
          present = true, vendor_status = excluded.vendor_status, severity = excluded.severity, cvss_score = excluded.cvss_score,
          cvss_vector = excluded.cvss_vector, last_seen_at = now(), last_scan_id = excluded.last_scan_id
      ),
      sources_touched as (
        update finding_sources fs set last_seen_at = now(), last_scan_id = ${scan.id}
        where not ${complete}::boolean
          and fs.finding_id = any(array(select finding_id from known where source_unchanged)) and fs.source = ${scan.source}
      )
      select (select count(*) from known)::int as findings,
             (select count(*) from created)::int as new_findings,
             (select count(*) from known where prior_status = 'closed')::int as reopened,
             -- What the scanned assets had and this report does not list: what a complete scan closes.
             case when ${complete}::boolean then array(
               select e.id from existing e where not exists (select 1 from known k where k.finding_id = e.id)
             ) end as unreported`;

    let closed = 0;
    if (complete) {
      const unreported = ((merged?.unreported ?? []) as Array<number | string>).map(Number);
      if (unreported.length > 0) {
        // The source's row goes absent, keeping as its last sighting the previous complete scan of
        // the asset (which did report it); the finding keeps it too, and closes when no source
        // reports it any more.
        const [result] = await tx`
          with absent as (
            update finding_sources fs set present = false,
              last_seen_at = greatest(fs.last_seen_at, coalesce(sc.last_complete_at, fs.last_seen_at))
            from findings f left join source_coverage sc on sc.asset_id = f.asset_id and sc.source = ${scan.source}
            where fs.finding_id = any(${tx.array(unreported)}::bigint[]) and fs.source = ${scan.source} and fs.present
              and f.id = fs.finding_id
            returning fs.finding_id, fs.last_seen_at
          ),
          decided as (
            select a.finding_id, a.last_seen_at,
                   f.status <> 'closed' and (select true from finding_sources o
                                             where o.finding_id = f.id and o.present and o.source <> ${scan.source} limit 1) is null as closes
            from absent a join findings f on f.id = a.finding_id
          ),
          -- A finding that stays open loses this source's rating: findingRating() over the other sources
          -- still reporting it (those that stated one: rows from before ratings were kept have none).
          -- The statement sees finding_sources as it was before the update above, hence the source filter.
          rerated as (
            select d.finding_id,
                   (select (array['unknown', 'info', 'low', 'medium', 'high', 'critical'])[1 + max(
                             case o.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2
                                             when 'info' then 1 when 'negligible' then 1 else 0 end)]
                    from finding_sources o where o.finding_id = d.finding_id and o.present and o.source <> ${scan.source} and o.severity is not null) as severity,
                   best.cvss_score, best.cvss_vector
            from decided d
            left join lateral (
              select o.cvss_score, o.cvss_vector from finding_sources o
              where o.finding_id = d.finding_id and o.present and o.source <> ${scan.source} and o.severity is not null
              order by o.cvss_vector is null, o.cvss_score desc nulls last, o.cvss_vector collate "C" limit 1
            ) best on true
            where not d.closes
          ),
          updated as (
            update findings f set
              severity = coalesce(r.severity, f.severity),
              cvss_score = case when r.severity is null then f.cvss_score else r.cvss_score end,
              cvss_vector = case when r.severity is null then f.cvss_vector else r.cvss_vector end,
              last_seen_at = greatest(f.last_seen_at, d.last_seen_at),
              status = case when d.closes then 'closed' else f.status end,
              closed_at = case when d.closes then now() else f.closed_at end,
              closed_by_scan_id = case when d.closes then ${scan.id}::uuid else f.closed_by_scan_id end,
              closed_reason = case when d.closes then ${`no longer reported by a complete scan of ${scan.source}`} else f.closed_reason end
            from decided d left join rerated r on r.finding_id = d.finding_id
            where f.id = d.finding_id
            returning d.closes
          )
          select (count(*) filter (where closes))::int as closed from updated`;
        closed = result?.closed ?? 0;
      }
      // After closing, which needed the previous complete scan's time.
      await tx`
        insert into source_coverage (asset_id, source, last_complete_scan_id, last_complete_at)
        select unnest(${tx.array(scannedIds)}::bigint[]), ${scan.source}, ${scan.id}, now()
        on conflict (asset_id, source) do update set
          last_complete_scan_id = excluded.last_complete_scan_id, last_complete_at = excluded.last_complete_at`;
    }
    const counts: IngestCounts = {
      findings: merged?.findings ?? 0,
      newFindings: merged?.new_findings ?? 0,
      reopenedFindings: merged?.reopened ?? 0,
      closedFindings: closed,
      assets: resolved.size,
    };
    if (finish) await finish(tx, counts);
    return counts;
  });
}
