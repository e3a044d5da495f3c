import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import { forgetAssetContext } from '../../prioritization/scoring/inputs.js';
import { refreshInternetExposure } from './exposure.js';
import { ATTRIBUTE_SOURCE_RANK, HITS_SQL, identifierColumns, type IdentifierKind, type StagedAsset } from './identity.js';

// Asset merge: when one record names identifiers that belong to two (or more) existing assets, they
// are one machine, and everything known about them moves onto one asset in the caller's transaction.
// An IP address links only assets that have no strong identifier (identity.ts): two named hosts
// that share an address are two machines, and the address moves instead.
//
// The survivor is the oldest asset (the smallest id): its id is the one history, tickets and links
// already name most, and the rule needs no clock. The merged asset stays as a row, with no
// identifiers, findings or context, and `merged_into` pointing at the survivor, so its id still
// resolves. What moved is recorded in `asset_merges.moved`, enough for undoMerge() to put it back.
//
// An undo puts back what the merge moved; it does not stop the same link from being made again: the
// next record that names identifiers of both assets merges them once more (by design: the record
// says they are one; correct the source, or its identifiers, to keep them apart).

type Tx = postgres.TransactionSql;

/** Where a linking record came from: its source and, when known, its scan or context import. */
export interface MergeOrigin {
  source: string;
  scanId?: string;
}

/**
 * Every column that points at assets, and how a merge handles it. The merge test compares this
 * list with the database's columns, so a new table referencing assets fails it until it is handled.
 */
export const ASSET_REFERENCES: Record<string, string> = {
  'asset_identifiers.asset_id': 'moved to the survivor',
  'asset_merges.survivor_id': 'the merge record itself',
  'asset_merges.merged_id': 'the merge record itself',
  'assets.merged_into': 'set on the merged asset',
  'asset_relations.asset_id': 're-keyed, both directions; a self-link dropped, a second base image not taken',
  'asset_relations.target_id': 're-keyed, both directions',
  'runtime_evidence.asset_id': 're-keyed; the later observation wins',
  'observed_ports.asset_id': 're-keyed; the later observation wins',
  'scan_assets.asset_id': 're-keyed',
  'source_coverage.asset_id': 're-keyed; the later complete scan wins',
  'findings.asset_id': 'moved with a new fingerprint, or folded into the survivor\'s finding with that fingerprint',
  'score_changes.asset_id': 'moved with its finding (a folded finding keeps its history for an undo)',
  'tickets.asset_id': 'moved; the ticket key is kept (a running remediation workflow is keyed by it)',
  'validation_evidence.asset_id': 'moved',
  'attack_graph_edges.from_id': 'derived: the groups of both assets are rebuilt at the next refresh',
  'attack_graph_edges.to_id': 'derived, as from_id',
  'attack_graph_nodes.asset_id': 'derived: rewritten at the next refresh',
  'attack_graph_nodes.parent_id': 'derived, as asset_id',
  'attack_graph_nodes.next_id': 'derived, as asset_id',
  'attack_graph_tickets.asset_ids': 'derived, as asset_id',
  'score_history.asset_id': 'a view over findings and score_changes',
};

/** Context attributes ranked by their source (attribute_sources, ATTRIBUTE_SOURCE_RANK). */
const RANKED = ['owner', 'business_service', 'criticality', 'environment', 'annual_revenue'] as const;
/** Columns of the merged asset that move or combine onto the survivor, and are cleared on the merged asset. */
const CONTEXT = [...RANKED, 'internet_facing', 'exposed_ports', 'public_ips', 'security_groups', 'tags', 'attribute_sources'] as const;
/** Survivor columns a merge may change, restored by an undo where nothing changed them since. */
const SURVIVOR_COLUMNS = [...CONTEXT, 'digest', 'first_seen_at', 'last_seen_at', 'last_scanned_at'] as const;
/** Finding columns a fold may change on the survivor's finding. */
const FOLDED_COLUMNS = [
  'status', 'closed_at', 'closed_reason', 'closed_by_scan_id', 'first_seen_at', 'first_scan_id', 'last_seen_at', 'last_scan_id',
  'severity', 'cvss_score', 'cvss_vector', 'ticket_key', 'fixed_version', 'aliases',
] as const;

/**
 * Tables keyed by (something, asset): a merged asset's rows are deleted and inserted on the
 * survivor; where the survivor has the row already, the conflict rule decides (the later one wins).
 */
const REKEYED: ReadonlyArray<{ table: string; key: readonly string[]; assets: readonly string[]; conflict: string }> = [
  { table: 'source_coverage', key: ['asset_id', 'source'], assets: ['asset_id'],
    conflict: 'do update set last_complete_scan_id = excluded.last_complete_scan_id, last_complete_at = excluded.last_complete_at where t.last_complete_at < excluded.last_complete_at' },
  { table: 'runtime_evidence', key: ['asset_id', 'package', 'version', 'process'], assets: ['asset_id'],
    conflict: 'do update set observed_at = excluded.observed_at, source = excluded.source where t.observed_at < excluded.observed_at' },
  { table: 'observed_ports', key: ['asset_id', 'source', 'port'], assets: ['asset_id'],
    conflict: 'do update set scan_id = excluded.scan_id, observed_at = excluded.observed_at where t.observed_at < excluded.observed_at' },
  { table: 'scan_assets', key: ['scan_id', 'asset_id'], assets: ['asset_id'], conflict: 'do nothing' },
  { table: 'asset_relations', key: ['asset_id', 'relation', 'target_id'], assets: ['asset_id', 'target_id'], conflict: 'do nothing' },
];

type Row = Record<string, unknown>;

/** What a merge moved, as stored in asset_merges.moved. */
export interface Moved {
  identifiers: Array<{ kind: string; value: string; source: string }>;
  /** Findings moved as they are (new fingerprint). */
  findings: number[];
  /** Findings folded into the survivor's finding of the same fingerprint: both as they were, and the survivor's after. */
  folded: Array<{ merged: Row; mergedSources: Row[]; into: number; before: Row; after: Row; sourcesBefore: Row[] }>;
  /** Per re-keyed table: the merged asset's rows as they were, and the survivor's rows they replaced. */
  rows: Record<string, { gone: Row[]; replaced: Row[] }>;
  tickets: string[];
  evidence: number[];
  /** The merged asset's row before, the survivor's before and after. */
  merged: Row;
  survivorBefore: Row;
  survivorAfter: Row;
}

export interface MergeResult {
  mergeId: number;
  survivorId: number;
  mergedId: number;
  counts: MergeCounts;
}

export interface MergeCounts {
  identifiers: number;
  findings: number;
  folded: number;
  tickets: number;
  evidence: number;
  rows: number;
}

function countsOf(moved: Moved): MergeCounts {
  return {
    identifiers: moved.identifiers.length,
    findings: moved.findings.length,
    folded: moved.folded.length,
    tickets: moved.tickets.length,
    evidence: moved.evidence.length,
    rows: Object.values(moved.rows).reduce((n, r) => n + r.gone.length, 0),
  };
}

/**
 * Merges the assets that one staged record's identifiers link, for every staged record, before the
 * record is resolved (identity.ts): each group goes into its oldest asset. One statement when nothing
 * links two assets (the usual case). Returns the merges made.
 */
export async function mergeLinkedAssets(tx: Tx, staged: StagedAsset[], origin: MergeOrigin): Promise<MergeResult[]> {
  if (staged.length === 0) return [];
  const results: MergeResult[] = [];
  let raced = 0;
  // Each merge can make another record's links moot or bring new ones: look again after each.
  for (;;) {
    const c = identifierColumns(staged);
    // A record links the assets its strong identifiers find, and those its weak ones (IPs) find that
    // have no strong identifier (assets known only by that IP); a record with no strong identifier
    // also links the asset its first identifier finds. Two named assets that share only an IP are
    // two machines (identity.ts): they are never linked, and the IP moves instead.
    const [link] = await tx<{ asset_key: string; asset_ids: string[]; matched: Record<string, string[]> }[]>`
      with ids as (
        select * from unnest(${tx.array(c.keys)}::text[], ${tx.array(c.kinds)}::text[], ${tx.array(c.values)}::text[], ${tx.array(c.weak)}::boolean[])
               with ordinality as i(asset_key, kind, value, weak, n)
      ),
      hits as materialized (${tx.unsafe(HITS_SQL)}),
      first_hit as (select distinct on (asset_key) asset_key, asset_id from hits order by asset_key, n),
      links as (
        select h.* from hits h join first_hit f on f.asset_key = h.asset_key
        where not h.weak or not h.named or (not h.record_named and h.asset_id = f.asset_id)
      )
      select l.asset_key, array_agg(distinct l.asset_id order by l.asset_id) as asset_ids,
             -- Which of the record's identifiers named which asset: why they were found to be one.
             (select jsonb_object_agg(asset_id, names) from (
                select l2.asset_id, jsonb_agg(l2.kind || ':' || l2.value order by l2.kind, l2.value) as names
                from links l2 where l2.asset_key = l.asset_key group by l2.asset_id) m) as matched
      from links l
      group by l.asset_key having count(distinct l.asset_id) > 1
      order by l.asset_key limit 1`;
    if (!link) return results;
    const record = staged.find((s) => s.assetKey === link.asset_key)!;
    const [survivor, ...others] = link.asset_ids.map(Number);
    let merges = 0;
    for (const merged of others) {
      const matched = { [survivor!]: link.matched[String(survivor)] ?? [], [merged]: link.matched[String(merged)] ?? [] };
      const result = await mergeAssets(tx, survivor!, merged, { ...origin, record: record.assetKey, identifiers: record.identifiers, matched });
      if (!result) continue;
      results.push(result);
      merges++;
    }
    // None made: a concurrent import merged them first and committed; the next look sees its result.
    if (merges === 0 && ++raced > RACE_RETRIES) throw new Error(`assets ${link.asset_ids.join(', ')} stay linked by ${record.assetKey} after ${RACE_RETRIES} merges by others`);
  }
}

/** Looks again after a concurrent merge at most this many times in one resolution (each look follows a commit by another import). */
const RACE_RETRIES = 10;

/**
 * Moves everything of `mergedId` onto `survivorId` (see the top of this file), in the caller's
 * transaction. Undefined when either was merged into another asset meanwhile (a concurrent import
 * linked them first: its merge stands, nothing is done here).
 */
export async function mergeAssets(
  tx: Tx,
  survivorId: number,
  mergedId: number,
  reason: MergeOrigin & { record?: string; identifiers?: Array<[IdentifierKind, string]>; matched?: Record<number, string[]> },
): Promise<MergeResult | undefined> {
  if (survivorId === mergedId) throw new Error(`asset ${survivorId} cannot be merged into itself`);
  // Both rows locked, in id order, so two imports linking the same assets merge them once.
  const locked = await tx<{ id: string; merged_into: string | null; row: Row }[]>`
    select id, merged_into, to_jsonb(a) as row from assets a where id in (${survivorId}, ${mergedId}) order by id for update`;
  const survivor = locked.find((r) => Number(r.id) === survivorId);
  const merged = locked.find((r) => Number(r.id) === mergedId);
  if (!survivor || !merged) throw new Error(`asset ${!survivor ? survivorId : mergedId} does not exist`);
  if (survivor.merged_into !== null || merged.merged_into !== null) return undefined;
  const s = survivorId;
  const m = mergedId;

  const identifiers = await tx<{ kind: string; value: string; source: string }[]>`
    update asset_identifiers set asset_id = ${s} where asset_id = ${m} returning kind, value, source`;

  // A finding's fingerprint includes its asset (ingest.ts, fingerprint()): recomputed for the
  // survivor, it either is new there (the finding moves) or is one the survivor has (folded).
  const pairs = await tx<{ id: string; fingerprint: string; into: string | null }[]>`
    with b as (
      select f.id, encode(sha256(convert_to(concat_ws(chr(31), ${s}::bigint, f.kind, f.issue_id, f.component, f.version, f.location), 'UTF8')), 'hex') as fingerprint
      from findings f where f.asset_id = ${m}
    )
    select b.id, b.fingerprint, a.id as into from b left join findings a on a.fingerprint = b.fingerprint`;
  const moving = pairs.filter((p) => p.into === null);
  if (moving.length > 0) {
    await tx`
      update findings f set asset_id = ${s}, fingerprint = x.fp
      from unnest(${tx.array(moving.map((p) => p.id))}::bigint[], ${tx.array(moving.map((p) => p.fingerprint))}::text[]) as x(id, fp)
      where f.id = x.id`;
    await tx`update score_changes set asset_id = ${s} where finding_id = any(${tx.array(moving.map((p) => p.id))}::bigint[])`;
  }
  const folded = await foldFindings(tx, pairs.filter((p) => p.into !== null).map((p) => ({ from: Number(p.id), into: Number(p.into) })));

  const rows: Moved['rows'] = {};
  for (const spec of REKEYED) rows[spec.table] = await rekey(tx, spec, m, s);

  // Tickets keep their keys, though a key hashes the asset it was planned on (mobilization/actions.ts
  // actionKey): the remediation workflow, its ITSM ticket and escalations are keyed by it, and a new
  // key would orphan them. Only asset_id moves. The next planning of the survivor groups its findings
  // under the survivor's keys; a merged asset's ticket that loses findings so has its count
  // recomputed and its workflow told (plan.ts saveTickets), as when any finding changes action.
  const tickets = await tx<{ key: string }[]>`update tickets set asset_id = ${s}, updated_at = now() where asset_id = ${m} returning key`;
  const evidence = await tx<{ id: string }[]>`update validation_evidence set asset_id = ${s} where asset_id = ${m} returning id`;

  // Context: each ranked attribute from the higher-ranked source (the survivor's on a tie); exposure
  // data and tags combined; the merged asset keeps none of it.
  const a = survivor.row;
  const b = merged.row;
  const patch = combinedContext(a, b);
  await tx`
    update assets a set (${tx.unsafe(list(SURVIVOR_COLUMNS))}) =
      (select ${tx.unsafe(list(SURVIVOR_COLUMNS, 'p.'))} from jsonb_populate_record(null::assets, to_jsonb(a) || ${tx.json(patch as never)}::jsonb) p)
    where a.id = ${s}`;
  await tx`
    update assets set merged_into = ${s}, owner = null, business_service = null, criticality = null, environment = null,
      annual_revenue = null, internet_facing = null, exposed_ports = null, public_ips = null, security_groups = null, tags = null,
      attribute_sources = '{}'
    where id = ${m}`;
  await markGraphStale(tx, [a, b]);
  await refreshInternetExposure(tx);
  // As exposure left it: what an undo compares the survivor with.
  const [survivorAfter] = await tx<{ row: Row }[]>`select to_jsonb(a) as row from assets a where id = ${s}`;
  // Scoring: the survivor's findings, old and moved, are rescored by the next incremental rescoring.
  await forgetAssetContext(tx, [s, m]);

  const moved: Moved = {
    identifiers: [...identifiers],
    findings: moving.map((p) => Number(p.id)),
    folded,
    rows,
    tickets: tickets.map((t) => t.key),
    evidence: evidence.map((e) => Number(e.id)),
    merged: b,
    survivorBefore: a,
    survivorAfter: survivorAfter!.row,
  };
  const [record] = await tx<{ id: string }[]>`
    insert into asset_merges (survivor_id, merged_id, reason, moved)
    values (${s}, ${m}, ${tx.json(reason as never)}, ${tx.json(moved as never)})
    returning id`;
  return { mergeId: Number(record!.id), survivorId: s, mergedId: m, counts: countsOf(moved) };
}

const rankOf = (sources: Row, attribute: string): number => {
  const source = (sources as Record<string, string>)[attribute];
  return source === undefined ? 0 : (ATTRIBUTE_SOURCE_RANK[source] ?? 0);
};

/** The survivor's context after taking the merged asset's in (see mergeAssets). */
function combinedContext(a: Row, b: Row): Row {
  const aSources = (a.attribute_sources ?? {}) as Row;
  const bSources = (b.attribute_sources ?? {}) as Row;
  const sources: Row = { ...aSources };
  const patch: Row = {};
  for (const attribute of RANKED) {
    if (b[attribute] === null) continue;
    if (a[attribute] === null || rankOf(bSources, attribute) > rankOf(aSources, attribute)) {
      patch[attribute] = b[attribute];
      if (bSources[attribute] !== undefined) sources[attribute] = bSources[attribute];
      else delete sources[attribute];
    }
  }
  const union = (x: unknown, y: unknown) => (x === null && y === null ? null : [...new Set([...((x ?? []) as string[]), ...((y ?? []) as string[])])].sort());
  patch.public_ips = union(a.public_ips, b.public_ips);
  patch.security_groups = union(a.security_groups, b.security_groups);
  patch.exposed_ports = union(a.exposed_ports, b.exposed_ports);
  patch.internet_facing = a.internet_facing === null && b.internet_facing === null ? null : a.internet_facing === true || b.internet_facing === true;
  if (sources.internet_facing === undefined && bSources.internet_facing !== undefined) sources.internet_facing = bSources.internet_facing;
  patch.tags = a.tags === null && b.tags === null ? null : { ...((b.tags ?? {}) as Row), ...((a.tags ?? {}) as Row) };
  patch.attribute_sources = sources;
  patch.digest = a.digest ?? b.digest;
  const time = (x: unknown) => (x === null ? null : Date.parse(x as string));
  patch.first_seen_at = time(b.first_seen_at)! < time(a.first_seen_at)! ? b.first_seen_at : a.first_seen_at;
  patch.last_seen_at = time(b.last_seen_at)! > time(a.last_seen_at)! ? b.last_seen_at : a.last_seen_at;
  patch.last_scanned_at = a.last_scanned_at === null ? b.last_scanned_at : b.last_scanned_at !== null && time(b.last_scanned_at)! > time(a.last_scanned_at)! ? b.last_scanned_at : a.last_scanned_at;
  return patch;
}

/**
 * Folds the merged asset's findings into the survivor's findings with the same fingerprint, set-based
 * (two scanners of one host share hundreds): the sources of both (a source on both keeps the later
 * sighting), the earliest first sighting, the latest last one, open if either is, the rating over
 * the present sources (ratings.ts), the ticket and fix either has, the union of aliases. The merged
 * findings' rows are deleted and kept in `moved`. Each survivor finding receives one finding at
 * most: two of the merged asset's findings differ in an identity field, so they differ on the survivor too.
 */
async function foldFindings(tx: Tx, pairs: Array<{ from: number; into: number }>): Promise<Moved['folded']> {
  if (pairs.length === 0) return [];
  const from = tx.array(pairs.map((p) => p.from));
  const into = tx.array(pairs.map((p) => p.into));
  const state = await tx<{ dst: string; merged: Row; before: Row; merged_sources: Row[]; sources_before: Row[] }[]>`
    select p.dst, to_jsonb(b) as merged, to_jsonb(a) as before,
           (select coalesce(jsonb_agg(to_jsonb(s) order by s.source), '[]') from finding_sources s where s.finding_id = p.src) as merged_sources,
           (select coalesce(jsonb_agg(to_jsonb(s) order by s.source), '[]') from finding_sources s where s.finding_id = p.dst) as sources_before
    from unnest(${from}::bigint[], ${into}::bigint[]) as p(src, dst)
    join findings b on b.id = p.src join findings a on a.id = p.dst`;
  await tx`
    insert into finding_sources as t (finding_id, source, present, vendor_status, severity, cvss_score, cvss_vector, first_seen_at, last_seen_at, last_scan_id)
    select p.dst, s.source, s.present, s.vendor_status, s.severity, s.cvss_score, s.cvss_vector, s.first_seen_at, s.last_seen_at, s.last_scan_id
    from unnest(${from}::bigint[], ${into}::bigint[]) as p(src, dst) join finding_sources s on s.finding_id = p.src
    on conflict (finding_id, source) do update set
      present = t.present or excluded.present,
      first_seen_at = least(t.first_seen_at, excluded.first_seen_at),
      last_seen_at = greatest(t.last_seen_at, excluded.last_seen_at),
      vendor_status = case when excluded.last_seen_at > t.last_seen_at then excluded.vendor_status else t.vendor_status end,
      severity = case when excluded.last_seen_at > t.last_seen_at then excluded.severity else t.severity end,
      cvss_score = case when excluded.last_seen_at > t.last_seen_at then excluded.cvss_score else t.cvss_score end,
      cvss_vector = case when excluded.last_seen_at > t.last_seen_at then excluded.cvss_vector else t.cvss_vector end,
      last_scan_id = case when excluded.last_seen_at > t.last_seen_at then excluded.last_scan_id else t.last_scan_id end`;
  await tx`delete from finding_sources where finding_id = any(${from}::bigint[])`;
  const after = await tx<{ id: string; row: Row }[]>`
    with x as (
      select p.dst, b.first_seen_at, b.first_scan_id, b.last_seen_at, b.last_scan_id, b.status, b.closed_at, b.ticket_key, b.fixed_version, b.aliases,
             -- findingRating() over the present sources (ratings.ts), as ingest pools them.
             (select (array['unknown', 'info', 'low', 'medium', 'high', 'critical'])[1 + max(
                       case o.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2
                                       when 'info' then 1 when 'negligible' then 1 else 0 end)]
              from finding_sources o where o.finding_id = p.dst and o.present and o.severity is not null) as rated_severity,
             best.cvss_score as rated_score, best.cvss_vector as rated_vector
      from unnest(${from}::bigint[], ${into}::bigint[]) as p(src, dst)
      join findings b on b.id = p.src
      left join lateral (
        select o.cvss_score, o.cvss_vector from finding_sources o
        where o.finding_id = p.dst and o.present and o.severity is not null
        order by o.cvss_vector is null, o.cvss_score desc nulls last, o.cvss_vector collate "C" limit 1
      ) best on true
    )
    update findings f set
      first_seen_at = least(f.first_seen_at, x.first_seen_at),
      first_scan_id = case when x.first_seen_at < f.first_seen_at then x.first_scan_id else f.first_scan_id end,
      last_seen_at = greatest(f.last_seen_at, x.last_seen_at),
      last_scan_id = case when x.last_seen_at > f.last_seen_at then x.last_scan_id else f.last_scan_id end,
      status = case when f.status = 'open' or x.status = 'open' then 'open' else 'closed' end,
      closed_at = case when f.status = 'open' or x.status = 'open' then null else greatest(f.closed_at, x.closed_at) end,
      closed_reason = case when f.status = 'open' or x.status = 'open' then null else f.closed_reason end,
      closed_by_scan_id = case when f.status = 'open' or x.status = 'open' then null else f.closed_by_scan_id end,
      severity = coalesce(x.rated_severity, f.severity),
      cvss_score = case when x.rated_severity is null then f.cvss_score else x.rated_score end,
      cvss_vector = case when x.rated_severity is null then f.cvss_vector else x.rated_vector end,
      ticket_key = coalesce(f.ticket_key, x.ticket_key),
      fixed_version = coalesce(f.fixed_version, x.fixed_version),
      aliases = array(select distinct a from unnest(f.aliases || x.aliases) a order by a)
    from x
    where f.id = x.dst
    returning f.id, to_jsonb(f) as row`;
  await tx`delete from findings where id = any(${from}::bigint[])`;
  const afterOf = new Map(after.map((r) => [Number(r.id), r.row]));
  return state.map((r) => ({
    merged: r.merged,
    mergedSources: r.merged_sources,
    into: Number(r.dst),
    before: r.before,
    after: afterOf.get(Number(r.dst))!,
    sourcesBefore: r.sources_before,
  }));
}

/** Puts folded findings back: the merged ones re-created with their sources; the survivor's sources the fold touched and its columns where unchanged since. */
async function unfoldFindings(tx: Tx, folded: Moved['folded']): Promise<void> {
  if (folded.length === 0) return;
  const touched = folded.flatMap((f) => f.mergedSources.map((r) => [f.into, r.source as string] as const));
  if (touched.length > 0) {
    await tx`
      delete from finding_sources s
      using unnest(${tx.array(touched.map((t) => t[0]))}::bigint[], ${tx.array(touched.map((t) => t[1]))}::text[]) as t(finding_id, source)
      where s.finding_id = t.finding_id and s.source = t.source`;
  }
  const back = folded.flatMap((f) => f.sourcesBefore.filter((r) => f.mergedSources.some((m) => m.source === r.source)));
  const merged = folded.flatMap((f) => f.mergedSources);
  for (const rows of [back, merged]) {
    if (rows.length > 0) await tx.unsafe(`insert into finding_sources select * from jsonb_populate_recordset(null::finding_sources, $1::text::jsonb)`, [JSON.stringify(rows)]);
  }
  await tx.unsafe(restoreSql('findings', FOLDED_COLUMNS), [JSON.stringify(folded.map((f) => ({ id: f.into, after: f.after, before: f.before })))]);
  await tx.unsafe(`insert into findings select * from jsonb_populate_recordset(null::findings, $1::text::jsonb)`, [JSON.stringify(folded.map((f) => f.merged))]);
}

const list = (columns: readonly string[], prefix = '') => columns.map((c) => `${prefix}${c}`).join(', ');
/** A row of `table` from jsonb with the merged asset's id replaced by the survivor's in its asset columns. */
const rekeyed = (assets: readonly string[], row: string, from: string, to: string) =>
  `${row} || jsonb_build_object(${assets.map((c) => `'${c}', case when (${row}->>'${c}')::bigint = ${from} then ${to} else (${row}->>'${c}')::bigint end`).join(', ')})`;

/** Moves one table's rows of the merged asset onto the survivor (see REKEYED). */
async function rekey(tx: Tx, spec: (typeof REKEYED)[number], m: number, s: number): Promise<{ gone: Row[]; replaced: Row[] }> {
  const { table, key, assets, conflict } = spec;
  const where = assets.map((c) => `x.${c} = $1`).join(' or ');
  // An image has one base (base-images.ts): the merged asset's built_from is not added beside the survivor's.
  const skip = table === 'asset_relations'
    ? `and r.asset_id <> r.target_id and not (r.relation = 'built_from' and exists (select 1 from asset_relations o where o.asset_id = r.asset_id and o.relation = 'built_from'))`
    : '';
  const [result] = await tx.unsafe<{ gone: Row[]; replaced: Row[] }[]>(
    `with gone as (delete from ${table} x where ${where} returning to_jsonb(x) as row),
     moved as (select (jsonb_populate_record(null::${table}, ${rekeyed(assets, 'g.row', '$1', '$2')})).* from gone g),
     replaced as (select to_jsonb(t) as row from ${table} t join moved m using (${list(key)})),
     inserted as (
       insert into ${table} as t select r.* from moved r where true ${skip}
       on conflict (${list(key)}) ${conflict}
     )
     select (select coalesce(jsonb_agg(row), '[]') from gone) as gone, (select coalesce(jsonb_agg(row), '[]') from replaced) as replaced`,
    [m, s],
  );
  return { gone: result!.gone, replaced: result!.replaced };
}

/** Puts one table's rows back (the reverse of rekey): the survivor's re-keyed rows out, the replaced and the gone rows in. */
async function unrekey(tx: Tx, spec: (typeof REKEYED)[number], m: number, s: number, saved: { gone: Row[]; replaced: Row[] }): Promise<void> {
  const { table, key, assets } = spec;
  if (saved.gone.length === 0) return;
  await tx.unsafe(
    `delete from ${table} t using (
       select (jsonb_populate_record(null::${table}, ${rekeyed(assets, 'g.row', '$1', '$2')})).* from jsonb_array_elements($3::text::jsonb) as g(row)
     ) r where ${key.map((c) => `t.${c} = r.${c}`).join(' and ')}`,
    [m, s, JSON.stringify(saved.gone)],
  );
  for (const rows of [saved.replaced, saved.gone]) {
    if (rows.length === 0) continue;
    await tx.unsafe(`insert into ${table} select * from jsonb_populate_recordset(null::${table}, $1::text::jsonb) on conflict (${list(key)}) do nothing`, [JSON.stringify(rows)]);
  }
}

/**
 * The exposure graph is derived from the inventory: forgetting the stored state of both assets'
 * security groups rebuilds their network edges at the next refresh (validation/graph/store.ts);
 * internet, hosted and part_of edges and the nodes are recomputed at every refresh anyway.
 */
async function markGraphStale(tx: Tx, assets: Row[]): Promise<void> {
  const groups = [...new Set(assets.flatMap((a) => (a.security_groups ?? []) as string[]))];
  if (groups.length > 0) await tx`delete from attack_graph_groups where security_group = any(${tx.array(groups)}::text[])`;
}

export class MergeUndoError extends Error {
  constructor(readonly status: 404 | 409, message: string) {
    super(message);
    this.name = 'MergeUndoError';
  }
}

export interface UndoResult {
  mergeId: number;
  survivorId: number;
  mergedId: number;
  undoneAt: string;
  undoneBy: string;
  counts: MergeCounts;
}

/**
 * Survivor (or folded finding) columns go back to what they were, where nothing changed them since
 * the merge. $1: `[{ id, after, before }]`, each a row as to_jsonb gave it.
 */
const restoreSql = (table: string, columns: readonly string[]) =>
  `update ${table} t set (${list(columns)}) = (
     select ${columns.map((c) => `case when to_jsonb(t)->'${c}' is not distinct from x.after->'${c}' then b.${c} else t.${c} end`).join(', ')}
     from jsonb_populate_record(null::${table}, x.before) b)
   from (select (e->>'id')::bigint as id, e->'after' as after, e->'before' as before from jsonb_array_elements($1::text::jsonb) e) x
   where t.id = x.id`;

/**
 * Undoes a merge in one transaction: the merged asset's row, identifiers, findings (folded ones
 * re-created, the survivor's finding restored), sources, re-keyed rows, tickets and evidence go back,
 * and the survivor's context columns return to what they were where nothing changed them since.
 * Merges into one survivor are undone newest first. A second undo of the same merge is refused
 * (409), as is one whose survivor was merged since. Findings the survivor gained after the merge stay.
 */
export async function undoMerge(sql: Sql, mergeId: number, by: string): Promise<UndoResult> {
  return sql.begin(async (tx) => {
    const [merge] = await tx<{ survivor_id: string; merged_id: string; moved: Moved; undone_at: Date | null; undone_by: string | null }[]>`
      select survivor_id, merged_id, moved, undone_at, undone_by from asset_merges where id = ${mergeId} for update`;
    if (!merge) throw new MergeUndoError(404, `merge ${mergeId} does not exist`);
    if (merge.undone_at) throw new MergeUndoError(409, `merge ${mergeId} was already undone by ${merge.undone_by} at ${merge.undone_at.toISOString()}`);
    const s = Number(merge.survivor_id);
    const m = Number(merge.merged_id);
    const assets = await tx<{ id: string; merged_into: string | null }[]>`
      select id, merged_into from assets where id in (${s}, ${m}) order by id for update`;
    const survivor = assets.find((a) => Number(a.id) === s)!;
    if (survivor.merged_into !== null) {
      throw new MergeUndoError(409, `asset ${s} was merged into asset ${survivor.merged_into} since: undo that merge first`);
    }
    const [later] = await tx<{ id: string }[]>`
      select id from asset_merges where survivor_id = ${s} and id > ${mergeId} and undone_at is null order by id desc limit 1`;
    if (later) throw new MergeUndoError(409, `merge ${later.id} into asset ${s} is newer: undo it first (merges are undone newest first)`);
    const moved = merge.moved;

    // The merged asset's row as it was (with its context), then the survivor's columns.
    await tx`
      update assets a set (${tx.unsafe(list(CONTEXT))}, merged_into) =
        (select ${tx.unsafe(list(CONTEXT, 'p.'))}, null::bigint from jsonb_populate_record(null::assets, ${tx.json(moved.merged as never)}::jsonb) p)
      where a.id = ${m}`;
    await tx.unsafe(restoreSql('assets', SURVIVOR_COLUMNS), [JSON.stringify([{ id: s, after: moved.survivorAfter, before: moved.survivorBefore }])]);

    if (moved.identifiers.length > 0) {
      await tx`
        update asset_identifiers i set asset_id = ${m}
        from unnest(${tx.array(moved.identifiers.map((x) => x.kind))}::text[], ${tx.array(moved.identifiers.map((x) => x.value))}::text[]) as x(kind, value)
        where i.kind = x.kind and i.value = x.value and i.asset_id = ${s}`;
    }
    if (moved.findings.length > 0) {
      await tx`
        update findings f set asset_id = ${m},
          fingerprint = encode(sha256(convert_to(concat_ws(chr(31), ${m}::bigint, f.kind, f.issue_id, f.component, f.version, f.location), 'UTF8')), 'hex')
        where f.id = any(${tx.array(moved.findings)}::bigint[]) and f.asset_id = ${s}`;
      await tx`update score_changes set asset_id = ${m} where finding_id = any(${tx.array(moved.findings)}::bigint[])`;
    }
    await unfoldFindings(tx, moved.folded);
    for (const spec of [...REKEYED].reverse()) {
      const saved = moved.rows[spec.table];
      if (saved) await unrekey(tx, spec, m, s, saved);
    }
    if (moved.tickets.length > 0) await tx`update tickets set asset_id = ${m}, updated_at = now() where key = any(${tx.array(moved.tickets)}::text[]) and asset_id = ${s}`;
    if (moved.evidence.length > 0) await tx`update validation_evidence set asset_id = ${m} where id = any(${tx.array(moved.evidence)}::bigint[]) and asset_id = ${s}`;

    await markGraphStale(tx, [moved.survivorAfter, moved.merged]);
    await refreshInternetExposure(tx);
    await forgetAssetContext(tx, [s, m]);
    const [done] = await tx<{ undone_at: Date }[]>`
      update asset_merges set undone_at = now(), undone_by = ${by} where id = ${mergeId} returning undone_at`;
    return { mergeId, survivorId: s, mergedId: m, undoneAt: done!.undone_at.toISOString(), undoneBy: by, counts: countsOf(moved) };
  });
}

export interface MergeEvent {
  id: number;
  /** into: another asset was merged into this one; out: this asset was merged into another. */
  direction: 'into' | 'out';
  survivorId: number;
  mergedId: number;
  reason: Record<string, unknown>;
  counts: MergeCounts;
  mergedAt: string;
  undoneAt: string | null;
  undoneBy: string | null;
}

/** Merges into and out of an asset, newest first. */
export async function assetMergeHistory(sql: Sql, assetId: number): Promise<MergeEvent[]> {
  const rows = await sql<{ id: string; survivor_id: string; merged_id: string; reason: Record<string, unknown>; moved: Moved; merged_at: Date; undone_at: Date | null; undone_by: string | null }[]>`
    select id, survivor_id, merged_id, reason, moved, merged_at, undone_at, undone_by from asset_merges
    where survivor_id = ${assetId} or merged_id = ${assetId}
    order by merged_at desc, id desc`;
  return rows.map((r) => ({
    id: Number(r.id),
    direction: Number(r.survivor_id) === assetId ? 'into' : 'out',
    survivorId: Number(r.survivor_id),
    mergedId: Number(r.merged_id),
    reason: r.reason,
    counts: countsOf(r.moved),
    mergedAt: r.merged_at.toISOString(),
    undoneAt: r.undone_at?.toISOString() ?? null,
    undoneBy: r.undone_by,
  }));
}

