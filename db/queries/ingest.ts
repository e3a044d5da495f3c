import type { Sql } from '../client.js';
import { fingerprint, type NormalizedFinding } from '../../connectors/index.js';
import { copyRows } from './copy.js';

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

const STAGING_COLUMNS = [
  'fingerprint', 'asset_key', 'asset_kind', 'asset_name', 'asset_digest', 'kind', 'issue_id', 'component',
  'version', 'location', 'fixed_version', 'severity', 'cvss_score', 'title', 'vendor_status',
] as const;

/**
 * Stores one scan's findings: stream -> COPY into a transaction-local staging table -> set-based
 * merges into assets, findings and finding_sources. A complete scan then closes what its source no
 * longer reports on the scanned assets (a finding closes when no source reports it any more) and
 * what comes back is re-opened. All of it is one transaction, so a report that fails half-way stores
 * nothing, and merging the same report again changes no finding's identity or state.
 */
export async function ingestFindings(sql: Sql, scan: ScanToIngest, findings: AsyncIterable<NormalizedFinding>): Promise<IngestCounts> {
  return sql.begin(async (tx) => {
    await tx`
      create temp table staging_findings (
        fingerprint text, asset_key text, asset_kind text, asset_name text, asset_digest text, kind text,
        issue_id text, component text, version text, location text, fixed_version text, severity text,
        cvss_score real, title text, vendor_status text
      ) on commit drop`;
    const rows = await copyRows(tx, 'staging_findings', STAGING_COLUMNS, findings, (f) => [
      fingerprint(f), f.asset.assetKey, f.asset.kind, f.asset.name, f.asset.digest, f.kind, f.issueId, f.component,
      f.version, f.location, f.fixedVersion, f.severity, f.cvssScore, f.title, f.vendorStatus,
    ]);
    const [assets] = await tx`
      with upserted as (
        insert into assets (asset_key, kind, name, digest, owner)
        select distinct on (asset_key) asset_key, asset_kind, asset_name, asset_digest, ${scan.owner ?? null}
        from staging_findings order by asset_key
        on conflict (asset_key) do update set
          last_seen_at = now(),
          digest = coalesce(excluded.digest, assets.digest),
          owner = coalesce(excluded.owner, assets.owner)
        returning 1
      ) select count(*)::int as count from upserted`;
    // distinct on: a report may list the same package twice (e.g. two layers); one finding it is.
    // `prior` reads the table as it was before this statement, which tells re-opened findings apart.
    const [merged] = await tx`
      with incoming as (
        select distinct on (s.fingerprint) s.*, a.id as asset_id
        from staging_findings s join assets a on a.asset_key = s.asset_key
        order by s.fingerprint, s.cvss_score desc nulls last
      ),
      prior as (
        select f.id, f.status from findings f join incoming i on i.fingerprint = f.fingerprint
      ),
      merged as (
        insert into findings as f (fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version,
                                   severity, cvss_score, title, vendor_status, first_scan_id, last_scan_id)
        select fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version,
               severity, cvss_score, title, vendor_status, ${scan.id}, ${scan.id}
        from incoming
        on conflict (fingerprint) do update set
          last_seen_at = now(),
          last_scan_id = excluded.last_scan_id,
          fixed_version = coalesce(excluded.fixed_version, f.fixed_version),
          severity = excluded.severity,
          cvss_score = coalesce(excluded.cvss_score, f.cvss_score),
          title = coalesce(excluded.title, f.title),
          vendor_status = coalesce(excluded.vendor_status, f.vendor_status),
          status = 'open',
          reopen_count = f.reopen_count + case when f.status = 'closed' then 1 else 0 end,
          closed_at = null, closed_reason = null, closed_by_scan_id = null
        returning f.id, f.fingerprint, (xmax = 0) as inserted
      ),
      sources as (
        insert into finding_sources as fs (finding_id, source, present, vendor_status, last_scan_id)
        select m.id, ${scan.source}, true, i.vendor_status, ${scan.id}
        from merged m join incoming i using (fingerprint)
        on conflict (finding_id, source) do update set
          present = true, vendor_status = excluded.vendor_status, last_seen_at = now(), last_scan_id = excluded.last_scan_id
        returning 1
      )
      select (select count(*) from merged)::int as findings,
             (select count(*) from merged where inserted)::int as new_findings,
             (select count(*) from prior where status = 'closed')::int as reopened,
             (select count(*) from sources)::int as sources`;

    const complete = scan.complete ?? rows > 0;
    let closed = 0;
    if (complete) {
      // The scanned assets: those in the report, or the declared target of an empty complete report.
      const [result] = await tx`
        with scanned as (
          select id from assets where asset_key in (select asset_key from staging_findings)
          union
          select id from assets where ${rows === 0} and name = ${scan.target ?? null}
        ),
        absent as (
          update finding_sources fs set present = false
          from findings f
          where fs.finding_id = f.id and fs.source = ${scan.source} and fs.present and fs.last_scan_id <> ${scan.id}
            and f.asset_id in (select id from scanned)
          returning fs.finding_id
        ),
        closed as (
          update findings f set
            status = 'closed', closed_at = now(), closed_by_scan_id = ${scan.id},
            closed_reason = ${`no longer reported by a complete scan of ${scan.source}`}
          where f.id in (select finding_id from absent) and f.status = 'open'
            and not exists (select 1 from finding_sources o where o.finding_id = f.id and o.present and o.source <> ${scan.source})
          returning 1
        )
        select count(*)::int as closed from closed`;
      closed = result?.closed ?? 0;
    }
    return {
      findings: merged?.findings ?? 0,
      newFindings: merged?.new_findings ?? 0,
      reopenedFindings: merged?.reopened ?? 0,
      closedFindings: closed,
      assets: assets?.count ?? 0,
    };
  });
}
