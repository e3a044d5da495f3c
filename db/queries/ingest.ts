import type { Sql } from '../client.js';
import type { NormalizedFinding } from '../../connectors/index.js';
import { resolveAssets, stageAssetRef, type StagedAsset } from './assets.js';
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
  'asset_key', 'kind', 'issue_id', 'component', 'version', 'location', 'fixed_version', 'severity', 'cvss_score', 'title', 'vendor_status',
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
        asset_key text, kind text, issue_id text, component text, version text, location text, fixed_version text,
        severity text, cvss_score real, title text, vendor_status text
      ) on commit drop`;
    // Assets are few even when findings are millions: collect them on the way, resolve them once.
    const seen = new Map<string, StagedAsset>();
    const rows = await copyRows(tx, 'staging_findings', STAGING_COLUMNS, findings, (f) => {
      if (!seen.has(f.asset.assetKey)) seen.set(f.asset.assetKey, stageAssetRef(f.asset));
      return [f.asset.assetKey, f.kind, f.issueId, f.component, f.version, f.location, f.fixedVersion, f.severity, f.cvssScore, f.title, f.vendorStatus];
    });
    const resolved = await resolveAssets(tx, [...seen.values()], 'scan');
    const scannedIds = [...resolved.values()];
    if (rows === 0 && scan.target) {
      const [byName] = await tx`select id from assets where name = ${scan.target} order by id limit 1`;
      if (byName) scannedIds.push(Number(byName.id));
    }
    await tx`insert into scan_assets (scan_id, asset_id) select ${scan.id}, unnest(${tx.array(scannedIds)}::bigint[]) on conflict do nothing`;
    // A scan's owner parameter is the weakest ownership claim: CMDB or cloud tags win over it.
    await tx`
      update assets set
        last_seen_at = case when id = any(${tx.array([...resolved.values()])}::bigint[]) then now() else last_seen_at end,
        last_scanned_at = now(),
        owner = case when ${scan.owner ?? null}::text is not null and coalesce(attribute_sources->>'owner', 'scan') = 'scan'
                     then ${scan.owner ?? null}::text else owner end,
        attribute_sources = case when ${scan.owner ?? null}::text is not null and attribute_sources->>'owner' is null
                                 then attribute_sources || '{"owner":"scan"}' else attribute_sources end
      where id = any(${tx.array(scannedIds)}::bigint[])`;
    // distinct on: a report may list the same package twice (e.g. two layers); one finding it is.
    // `prior` reads the table as it was before this statement, which tells re-opened findings apart.
    const [merged] = await tx`
      with keyed as (
        select s.*, r.asset_id,
               encode(sha256(convert_to(concat_ws(chr(31), r.asset_id, s.kind, s.issue_id, s.component, s.version, s.location), 'UTF8')), 'hex') as fingerprint
        from staging_findings s join resolved_assets r on r.asset_key = s.asset_key
      ),
      incoming as (
        select distinct on (fingerprint) * from keyed order by fingerprint, cvss_score desc nulls last
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
          select unnest(${tx.array(scannedIds)}::bigint[]) as id
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
      assets: resolved.size,
    };
  });
}
