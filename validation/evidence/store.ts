import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import { findAssets, stageAssetRef } from '../../discovery/store/identity.js';
import type { EvidenceRecord, EvidenceResult } from './model.js';

// Validation evidence into PostgreSQL. A record names an asset the way a scanner would (`host:<name>`
// from a URL) and a vulnerability the way findings carry it; it is stored on every asset where a
// finding of that vulnerability lives: the host itself, and the images running on it (a DAST tool
// tests the host's port, the vulnerable package sits in the container behind it). Nothing is
// overwritten and nothing is dropped: a record whose asset nobody knows is reported back, a record
// that matches no open finding is stored (it applies if a scanner reports the finding later).

/** How long evidence counts after its test, by result: a proven exploit ages slower than a failed attempt. */
export const EVIDENCE_DAYS: Record<EvidenceResult, number> = {
  exploited: 90,
  confirmed: 90,
  not_exploitable: 30,
  reachable: 7,
  unreachable: 7,
};

/** A file this size of evidence is not a test report: refused before anything is written. */
const MAX_RECORDS = 1_000_000;
const SAMPLES = 20;

export interface EvidenceImportResult {
  /** Records the file held. */
  records: number;
  /** Evidence rows written now (one record can land on a host and the images on it). */
  stored: number;
  /** Rows already stored by an earlier import of the same results. */
  duplicates: number;
  /** Open findings the new evidence applies to. */
  findings: number;
  byResult: Partial<Record<EvidenceResult, number>>;
  /** Records whose test is older than the evidence lasts: stored, but they move nothing. */
  expired: number;
  /** Records naming an asset the inventory does not know (not stored), with examples. */
  unknownAssets: { count: number; samples: Array<{ asset: string; vulnerability: string }> };
  /** Records stored on a known asset where no open finding has their vulnerability, with examples. */
  withoutFinding: { count: number; samples: Array<{ asset: string; vulnerability: string }> };
  /** The assets whose findings the evidence touches: what a rescoring needs to read. */
  assetIds: number[];
}

export interface ImportOptions {
  /** The uploaded file's name or the validation run's id. */
  source: string;
  /** Overrides EVIDENCE_DAYS per result. */
  days?: Partial<Record<EvidenceResult, number>>;
}

export interface EvidenceRowInput {
  key: string;
  assetId: number;
  /** The record as tested; the asset it names is already resolved to assetId. */
  record: Omit<EvidenceRecord, 'asset'>;
  testedAt: string;
  expiresAt: string;
}

/** Writes evidence rows once each (by key); returns the rows that are new. */
export async function insertEvidence(
  tx: postgres.TransactionSql,
  rows: EvidenceRowInput[],
  source: string,
): Promise<Array<{ assetId: number; vulnerability: string; result: EvidenceResult; expiresAt: Date }>> {
  const out: Array<{ assetId: number; vulnerability: string; result: EvidenceResult; expiresAt: Date }> = [];
  for (let i = 0; i < rows.length; i += 5_000) {
    const chunk = rows.slice(i, i + 5_000);
    const inserted = await tx<{ asset_id: string; vulnerability: string; result: EvidenceResult; expires_at: Date }[]>`
      insert into validation_evidence (evidence_key, asset_id, vulnerability, result, tool, source, target, port, tested_at, expires_at, detail)
      select k, a, v, r, t, ${source}, nullif(tg, ''), nullif(p, ''), ta, ea, d from unnest(
        ${tx.array(chunk.map((c) => c.key))}::text[], ${tx.array(chunk.map((c) => c.assetId))}::bigint[],
        ${tx.array(chunk.map((c) => c.record.vulnerability))}::text[], ${tx.array(chunk.map((c) => c.record.result))}::text[],
        ${tx.array(chunk.map((c) => c.record.tool))}::text[],
        ${tx.array(chunk.map((c) => c.record.target ?? ''))}::text[], ${tx.array(chunk.map((c) => c.record.port ?? ''))}::text[],
        ${tx.array(chunk.map((c) => c.testedAt))}::timestamptz[], ${tx.array(chunk.map((c) => c.expiresAt))}::timestamptz[],
        ${tx.array(chunk.map((c) => JSON.stringify({ ...(c.record.title ? { title: c.record.title } : {}), ...(c.record.cwes?.length ? { cwes: c.record.cwes } : {}), ...c.record.detail })))}::jsonb[])
        as x(k, a, v, r, t, tg, p, ta, ea, d)
      on conflict (evidence_key) do nothing
      returning asset_id, vulnerability, result, expires_at`;
    out.push(...inserted.map((r) => ({ assetId: Number(r.asset_id), vulnerability: r.vulnerability, result: r.result, expiresAt: r.expires_at })));
  }
  return out;
}

/** The row key: the same result of the same test stored twice is one row. */
export const evidenceKey = (r: EvidenceRecord, assetId: number, testedAt: string) =>
  createHash('sha256').update(JSON.stringify([r.tool, assetId, r.vulnerability, r.port ?? '', r.result, testedAt])).digest('hex');

/** Reads every record first (a parse error stores nothing), then writes in one transaction. */
export async function importEvidence(sql: Sql, records: AsyncIterable<EvidenceRecord>, options: ImportOptions): Promise<EvidenceImportResult> {
  const all: EvidenceRecord[] = [];
  for await (const r of records) {
    if (all.length === MAX_RECORDS) throw new RangeError(`more than ${MAX_RECORDS} evidence records in one file; split it`);
    all.push(r);
  }
  const days = { ...EVIDENCE_DAYS, ...options.days };
  return sql.begin(async (tx) => {
    const staged = new Map(all.map((r) => [r.asset.assetKey, stageAssetRef(r.asset)]));
    const known = await findAssets(tx, [...staged.values()]);
    const result: EvidenceImportResult = {
      records: all.length, stored: 0, duplicates: 0, findings: 0, byResult: {}, expired: 0,
      unknownAssets: { count: 0, samples: [] }, withoutFinding: { count: 0, samples: [] }, assetIds: [],
    };
    const rows: Array<{ key: string; assetId: number; record: EvidenceRecord; testedAt: string; expiresAt: string }> = [];
    const pairs: Array<[number, string]> = [];
    const now = Date.now();
    for (const r of all) {
      const hostId = known.get(r.asset.assetKey);
      if (hostId === undefined) {
        result.unknownAssets.count++;
        if (result.unknownAssets.samples.length < SAMPLES) result.unknownAssets.samples.push({ asset: r.asset.assetKey, vulnerability: r.vulnerability });
        continue;
      }
      pairs.push([hostId, r.vulnerability]);
    }
    // Where each (host, vulnerability) has open findings: the host, and images or containers on it.
    const holders = pairs.length === 0 ? [] : await tx<{ host_id: string; vulnerability: string; asset_id: string; findings: number }[]>`
      with p as (select distinct * from unnest(${tx.array(pairs.map((p) => p[0]))}::bigint[], ${tx.array(pairs.map((p) => p[1]))}::text[]) as p(host_id, vulnerability)),
      candidates as (
        select p.host_id, p.vulnerability, p.host_id as asset_id from p
        union
        select p.host_id, p.vulnerability, r.asset_id from p join asset_relations r on r.target_id = p.host_id and r.relation = 'runs_on'
      )
      select c.host_id, c.vulnerability, c.asset_id, count(*)::int as findings
      from candidates c join findings f on f.asset_id = c.asset_id and f.issue_id = c.vulnerability and f.status = 'open'
      group by 1, 2, 3`;
    const byPair = new Map<string, Array<{ assetId: number; findings: number }>>();
    for (const h of holders) {
      const k = `${h.host_id} ${h.vulnerability}`;
      byPair.set(k, [...(byPair.get(k) ?? []), { assetId: Number(h.asset_id), findings: h.findings }]);
    }
    const touched = new Set<number>();
    for (const r of all) {
      const hostId = known.get(r.asset.assetKey);
      if (hostId === undefined) continue;
      const testedAt = new Date(r.testedAt);
      if (Number.isNaN(testedAt.getTime())) throw new RangeError(`evidence for ${r.asset.assetKey} ${r.vulnerability}: testedAt ${JSON.stringify(r.testedAt)} is not a date`);
      const expiresAt = new Date(testedAt.getTime() + days[r.result] * 86_400_000);
      if (expiresAt.getTime() <= now) result.expired++;
      const on = byPair.get(`${hostId} ${r.vulnerability}`);
      if (!on) {
        result.withoutFinding.count++;
        if (result.withoutFinding.samples.length < SAMPLES) result.withoutFinding.samples.push({ asset: r.asset.assetKey, vulnerability: r.vulnerability });
      }
      for (const { assetId } of on ?? [{ assetId: hostId, findings: 0 }]) {
        rows.push({ key: evidenceKey(r, assetId, testedAt.toISOString()), assetId, record: r, testedAt: testedAt.toISOString(), expiresAt: expiresAt.toISOString() });
      }
    }
    const seen = new Set<string>();
    const unique = rows.filter((row) => !seen.has(row.key) && seen.add(row.key));
    const inserted = await insertEvidence(tx, unique, options.source);
    result.stored = inserted.length;
    result.duplicates = unique.length - inserted.length;
    for (const row of inserted) {
      result.byResult[row.result] = (result.byResult[row.result] ?? 0) + 1;
      if (row.expiresAt.getTime() > now) touched.add(row.assetId);
    }
    result.assetIds = [...touched].sort((a, b) => a - b);
    result.findings = holders.filter((h) => touched.has(Number(h.asset_id))).reduce((n, h) => n + h.findings, 0);
    return result;
  });
}

export interface EvidenceRow {
  id: number;
  assetId: number;
  assetKey: string;
  vulnerability: string;
  result: EvidenceResult;
  tool: string;
  source: string;
  target: string | null;
  port: string | null;
  testedAt: string;
  expiresAt: string;
  active: boolean;
  detail: Record<string, unknown>;
  /** Open findings on the asset with this vulnerability. */
  openFindings: number;
}

export interface EvidenceFilter {
  assetId?: number;
  vulnerability?: string;
  result?: EvidenceResult;
  /** Only evidence that has not expired. */
  active?: boolean;
  /** Only evidence no open finding carries. */
  withoutFinding?: boolean;
  limit: number;
  offset: number;
}

/** Evidence, newest test first. */
export async function listEvidence(sql: Sql, filter: EvidenceFilter): Promise<EvidenceRow[]> {
  const rows = await sql<Array<Omit<EvidenceRow, 'testedAt' | 'expiresAt' | 'id' | 'assetId'> & { id: string; assetId: string; testedAt: Date; expiresAt: Date }>>`
    select e.id, e.asset_id as "assetId", a.asset_key as "assetKey", e.vulnerability, e.result, e.tool, e.source, e.target, e.port,
           e.tested_at as "testedAt", e.expires_at as "expiresAt", e.expires_at > now() as active, e.detail,
           (select count(*)::int from findings f where f.asset_id = e.asset_id and f.issue_id = e.vulnerability and f.status = 'open') as "openFindings"
    from validation_evidence e join assets a on a.id = e.asset_id
    where true
      ${filter.assetId !== undefined ? sql`and e.asset_id = ${filter.assetId}` : sql``}
      ${filter.vulnerability !== undefined ? sql`and e.vulnerability = ${filter.vulnerability}` : sql``}
      ${filter.result !== undefined ? sql`and e.result = ${filter.result}` : sql``}
      ${filter.active ? sql`and e.expires_at > now()` : sql``}
      ${filter.withoutFinding ? sql`and not exists (select 1 from findings f where f.asset_id = e.asset_id and f.issue_id = e.vulnerability and f.status = 'open')` : sql``}
    order by e.tested_at desc, e.id desc
    limit ${filter.limit} offset ${filter.offset}`;
  return rows.map((r) => ({ ...r, id: Number(r.id), assetId: Number(r.assetId), testedAt: r.testedAt.toISOString(), expiresAt: r.expiresAt.toISOString() }));
}

/** The evidence that applies to one finding now (unexpired, on its asset and vulnerability), newest first. */
export async function evidenceForFinding(sql: Sql, findingId: number): Promise<EvidenceRow[]> {
  const [f] = await sql<{ asset_id: string; issue_id: string }[]>`select asset_id, issue_id from findings where id = ${findingId}`;
  if (!f) return [];
  return listEvidence(sql, { assetId: Number(f.asset_id), vulnerability: f.issue_id, active: true, limit: 50, offset: 0 });
}
