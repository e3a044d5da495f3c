import type { Sql } from '../client.js';
import { fingerprint, type NormalizedFinding } from '../../connectors/index.js';
import { copyRows } from './copy.js';

export interface IngestCounts {
  /** Findings in the report after in-report duplicates are merged. */
  findings: number;
  newFindings: number;
  assets: number;
}

const STAGING_COLUMNS = [
  'fingerprint', 'asset_key', 'asset_kind', 'asset_name', 'asset_digest', 'kind', 'issue_id', 'component',
  'version', 'location', 'fixed_version', 'severity', 'cvss_score', 'title',
] as const;

/**
 * Stores one scan's findings: stream -> COPY into a transaction-local staging table -> one
 * set-based merge into assets and findings. All of it is one transaction, so a report that fails
 * half-way stores nothing, and merging the same report again changes no finding's identity or state.
 */
export async function ingestFindings(
  sql: Sql,
  scan: { id: string; owner?: string | null },
  findings: AsyncIterable<NormalizedFinding>,
): Promise<IngestCounts> {
  return sql.begin(async (tx) => {
    await tx`
      create temp table staging_findings (
        fingerprint text, asset_key text, asset_kind text, asset_name text, asset_digest text, kind text,
        issue_id text, component text, version text, location text, fixed_version text, severity text,
        cvss_score real, title text
      ) on commit drop`;
    await copyRows(tx, 'staging_findings', STAGING_COLUMNS, findings, (f) => [
      fingerprint(f), f.asset.assetKey, f.asset.kind, f.asset.name, f.asset.digest, f.kind, f.issueId, f.component,
      f.version, f.location, f.fixedVersion, f.severity, f.cvssScore, f.title,
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
    const [merged] = await tx`
      with merged as (
        insert into findings (fingerprint, asset_id, kind, issue_id, component, version, location, fixed_version,
                              severity, cvss_score, title, first_scan_id, last_scan_id)
        select distinct on (s.fingerprint) s.fingerprint, a.id, s.kind, s.issue_id, s.component, s.version, s.location,
               s.fixed_version, s.severity, s.cvss_score, s.title, ${scan.id}, ${scan.id}
        from staging_findings s join assets a on a.asset_key = s.asset_key
        order by s.fingerprint, s.cvss_score desc nulls last
        on conflict (fingerprint) do update set
          last_seen_at = now(),
          last_scan_id = excluded.last_scan_id,
          fixed_version = coalesce(excluded.fixed_version, findings.fixed_version),
          severity = excluded.severity,
          cvss_score = coalesce(excluded.cvss_score, findings.cvss_score),
          title = coalesce(excluded.title, findings.title),
          status = 'open'
        returning (xmax = 0) as inserted
      )
      select count(*)::int as findings,
             count(*) filter (where inserted)::int as new_findings
      from merged`;
    return {
      findings: merged?.findings ?? 0,
      newFindings: merged?.new_findings ?? 0,
      assets: assets?.count ?? 0,
    };
  });
}
