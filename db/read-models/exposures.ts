import { likeLiteral, type Sql } from '../client.js';
import type { ExplanationFactor } from '../schema.js';
import { scopeCondition, type ScopeSelector } from '../../scoping/scopes.js';
import { hypothesisCondition, type HypothesisQuery } from '../../scoping/hypotheses.js';
import { findingLastSeen } from './inventory.js';
import { countRows, decodeCursor, encodeCursor, type KeysetPage } from './keyset.js';
import { issueCondition } from '../../discovery/store/aliases.js';

// Exposures: findings (open ones unless asked otherwise) as prioritization sees them (tier, score, due date, explanation, and the
// context that decided them). List views read here; history comes from score_history. `f.explanation`
// is the SQL function that assembles a finding's explanation from its stored parts.

export interface ExposureFilter {
  /** open unless asked otherwise; `all` for both. */
  status?: 'open' | 'closed' | 'all';
  /** Any id of the vulnerability: the one it is stored under or one of its aliases (GHSA, OSV, DSA...). */
  issueId?: string;
  /** Golden ticket key. */
  ticket?: string;
  tier?: string;
  scope?: ScopeSelector;
  /** A hunting hypothesis's conditions. */
  hypothesis?: HypothesisQuery;
  asset?: string;
  owner?: string;
  businessService?: string;
  kev?: boolean;
  internetFacing?: boolean;
  /** An issue id or alias (CVE-2021-44228 in any case, GHSA-...) or the start of a component's name. */
  q?: string;
  limit: number;
  /** The cursor of the previous page (its `next`). */
  after?: string;
  /** @deprecated rows skipped after the cursor; kept for clients written before cursors. */
  offset?: number;
}

type Tier = 'act' | 'attend' | 'track*' | 'track';

/** The active version of a feed, as a SQL fragment. */
const activeVersion = (sql: Sql, kind: 'epss' | 'kev' | 'cve') => sql`(select version from intel_feeds where kind = ${kind} and status = 'active')`;

function exposureRow(r: Record<string, unknown>) {
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null);
  return {
    id: Number(r.id),
    issueId: r.issue_id as string,
    /** The vulnerability's other ids (GHSA, OSV, distro advisories) as the sources reported them. */
    aliases: (r.aliases as string[] | null) ?? [],
    kind: r.kind as string,
    asset: {
      id: Number(r.asset_id),
      key: r.asset_key as string,
      name: r.asset_name as string,
      owner: r.owner as string | null,
      businessService: r.business_service as string | null,
      criticality: r.criticality as string | null,
      environment: r.environment as string | null,
      internetFacing: r.internet_facing as boolean | null,
    },
    // What the policy decided (a host's exposure reaches the images that run on it; a control can take it away).
    publiclyExposed: ((r.explanation as ExplanationFactor[] | null) ?? []).find((x) => x.factor === 'publicly_exposed')?.value === 'yes'
      ? true : r.explanation ? false : null,
    component: r.component as string,
    version: r.version as string,
    location: r.location as string,
    fixedVersion: r.fixed_version as string | null,
    title: r.title as string | null,
    status: r.status as 'open' | 'closed',
    vendorStatus: r.vendor_status as string | null,
    closedAt: iso(r.closed_at),
    closedReason: r.closed_reason as string | null,
    severity: r.severity as string,
    cvssScore: r.cvss_score as number | null,
    kev: r.kev as boolean,
    epss: r.epss as number | null,
    tier: r.tier as Tier | null,
    score: r.score as number | null,
    dueAt: iso(r.due_at),
    explanation: r.explanation as ExplanationFactor[] | null,
    ticketKey: r.ticket_key as string | null,
    firstSeenAt: iso(r.first_seen_at)!,
    lastSeenAt: iso(r.last_seen_at)!,
  };
}

/**
 * The list's order, as index-friendly expressions that are never null: highest score first
 * (unscored last), then the earliest due date (none last), then id. Migration 0022 indexes exactly
 * these expressions, so `(rank, due, id) > cursor` is an index range and a page reads `limit` rows.
 */
const RANK = 'rank';
const exposureKey = (sql: Sql) => sql`-coalesce(f.score, '-Infinity'::float8) as ${sql(RANK)}, coalesce(f.due_at, 'infinity'::timestamptz) as due_key`;
const EXPOSURE_CURSOR = ['float', 'timestamp', 'id'] as const;

/**
 * A search by id or text (`issueId`, `q`) is resolved to finding ids first, when few match. Its
 * condition ORs three index scans (the id, the GIN index on aliases, the component prefix) whose
 * match count the planner cannot know (an array overlap is guessed at 0.5% of all findings), so it
 * would walk every open finding in priority order to fill a page that three findings match (2.2 s
 * on 200k findings). With the ids in hand it reads exactly those; with more than this many, walking
 * the priority index is the right plan and the condition stays as it is.
 */
const PRESELECT_AT_MOST = 10_000;

async function preselectedIds(sql: Sql, f: ExposureFilter): Promise<string[] | undefined> {
  const q = f.q?.trim();
  if (!q && !f.issueId) return undefined;
  const rows = await sql<{ id: string }[]>`
    select f.id::text as id from findings f
    where true
      ${f.status === 'all' ? sql`` : sql`and f.status = ${f.status ?? 'open'}`}
      ${f.issueId ? sql`and ${issueCondition(sql, f.issueId)}` : sql``}
      ${q ? sql`and (${issueCondition(sql, q)} or f.component like ${`${likeLiteral(q)}%`})` : sql``}
    limit ${PRESELECT_AT_MOST + 1}`;
  return rows.length > PRESELECT_AT_MOST ? undefined : rows.map((r) => r.id);
}

/**
 * `from ... where ...` of the exposure list: the filters only, shared by the page and its count.
 * `matched`: the ids the search matches (preselectedIds), in place of its condition.
 */
function exposureFrom(sql: Sql, f: ExposureFilter, matched?: string[]) {
  const q = matched ? undefined : f.q?.trim();
  const issueId = matched ? undefined : f.issueId;
  return sql`
    from findings f
    join assets a on a.id = f.asset_id
    where true
      ${f.status === 'all' ? sql`` : sql`and f.status = ${f.status ?? 'open'}`}
      ${matched ? sql`and f.id = any(${sql.array(matched)}::bigint[])` : sql``}
      ${issueId ? sql`and ${issueCondition(sql, issueId)}` : sql``}
      ${f.ticket ? sql`and f.ticket_key = ${f.ticket}` : sql``}
      ${f.tier ? sql`and f.tier = ${f.tier}` : sql``}
      ${f.asset ? sql`and (a.asset_key = ${f.asset} or a.name = ${f.asset})` : sql``}
      ${f.owner ? sql`and a.owner = ${f.owner}` : sql``}
      ${f.businessService ? sql`and a.business_service = ${f.businessService}` : sql``}
      ${f.kev === undefined ? sql`` : sql`and ${f.kev ? sql`` : sql`not`} exists (select 1 from kev_entries k where k.cve = f.issue_id and k.feed_version = ${activeVersion(sql, 'kev')})`}
      ${f.internetFacing === undefined ? sql`` : sql`and coalesce(a.internet_facing, false) = ${f.internetFacing}`}
      ${q ? sql`and (${issueCondition(sql, q)} or f.component like ${`${likeLiteral(q)}%`})` : sql``}
      ${f.scope ? scopeCondition(sql, f.scope) : sql``}
      ${f.hypothesis ? hypothesisCondition(sql, f.hypothesis) : sql``}`;
}

/**
 * A page of exposures in priority order, after the cursor `f.after`, with a capped count of all
 * that match. The page's keys are found first (one index range); the rest of each row (its
 * explanation, sources, feeds) is read for those rows only.
 */
export async function listExposures(sql: Sql, f: ExposureFilter): Promise<KeysetPage<ExposureListItem>> {
  const after = f.after ? decodeCursor(f.after, EXPOSURE_CURSOR) : undefined;
  const take = f.limit + 1 + (f.offset ?? 0);
  const matched = await preselectedIds(sql, f);
  const keys = (status: 'open' | 'closed' | 'all') => sql`
    select f.id, ${exposureKey(sql)}
    ${exposureFrom(sql, { ...f, status }, matched)}
    ${after ? sql`and (-coalesce(f.score, '-Infinity'::float8), coalesce(f.due_at, 'infinity'::timestamptz), f.id) > (${after[0]!}::text::float8, ${after[1]!}::text::timestamptz, ${after[2]!}::text::bigint)` : sql``}
    order by 2, 3, 1 limit ${take}`;
  // Both statuses: two index ranges merged, rather than one sort of every finding.
  const rows = await sql`
    with page as materialized (
      select * from (${f.status === 'all' ? sql`(${keys('open')}) union all (${keys('closed')})` : keys(f.status ?? 'open')}) k
      order by 2, 3, 1 limit ${f.limit + 1} offset ${f.offset ?? 0}
    )
    select f.*, f.explanation, a.asset_key, a.name as asset_name, a.owner, a.business_service, a.criticality, a.environment, a.internet_facing,
           k.cve is not null as kev, e.epss, ${findingLastSeen(sql)} as last_seen_at, coalesce(s.sources, '{}') as sources,
           p.${sql(RANK)}::text as rank_key, p.due_key::text as due_key
    from page p
    join findings f on f.id = p.id
    join assets a on a.id = f.asset_id
    left join kev_entries k on k.cve = f.issue_id and k.feed_version = ${activeVersion(sql, 'kev')}
    left join epss_scores e on e.cve = f.issue_id and e.feed_version = ${activeVersion(sql, 'epss')}
    left join lateral (select array_agg(fs.source order by fs.source) as sources from finding_sources fs where fs.finding_id = f.id and fs.present) s on true
    order by p.${sql(RANK)}, p.due_key, p.id`;
  const more = rows.length > f.limit;
  const last = more ? rows[f.limit - 1] : undefined;
  return {
    items: rows.slice(0, f.limit).map((r) => ({ ...exposureRow(r), sources: r.sources as string[] })),
    next: last ? encodeCursor([last.rank_key as string, last.due_key as string, String(last.id)]) : null,
    estimate: await countRows(sql, () => exposureFrom(sql, f, matched)),
  };
}

export type ExposureListItem = ReturnType<typeof exposureRow> & { sources: string[] };

export async function getExposure(sql: Sql, id: number) {
  const [row] = await sql`
    select f.*, f.explanation, a.asset_key, a.name as asset_name, a.owner, a.business_service, a.criticality, a.environment, a.internet_facing,
           k.cve is not null as kev, e.epss, ${findingLastSeen(sql)} as last_seen_at
    from findings f
    join assets a on a.id = f.asset_id
    left join kev_entries k on k.cve = f.issue_id and k.feed_version = ${activeVersion(sql, 'kev')}
    left join epss_scores e on e.cve = f.issue_id and e.feed_version = ${activeVersion(sql, 'epss')}
    where f.id = ${id}`;
  if (!row) return undefined;
  const history = await sql`
    select h.tier, h.score, h.due_at, h.policy_version, h.explanation, h.reason, h.at from score_history h where h.finding_id = ${id} order by h.at, h.id`;
  // A source that still reports the finding saw it in its last complete scan of the asset too.
  const sources = await sql`
    select fs.source, fs.present, fs.vendor_status, fs.severity, fs.cvss_score, fs.cvss_vector, fs.first_seen_at,
           case when fs.present then greatest(fs.last_seen_at, sc.last_complete_at) else fs.last_seen_at end as last_seen_at
    from finding_sources fs
    left join source_coverage sc on sc.asset_id = ${row.asset_id} and sc.source = fs.source
    where fs.finding_id = ${id} order by fs.source`;
  return {
    ...exposureRow(row),
    sources: sources.map((s) => ({
      source: s.source as string,
      present: s.present as boolean,
      vendorStatus: s.vendor_status as string | null,
      // This source's own rating; the finding's is derived from those of the present sources.
      severity: s.severity as string | null,
      cvssScore: s.cvss_score as number | null,
      cvssVector: s.cvss_vector as string | null,
      firstSeenAt: (s.first_seen_at as Date).toISOString(),
      lastSeenAt: (s.last_seen_at as Date).toISOString(),
    })),
    history: history.map((h) => ({
      at: (h.at as Date).toISOString(),
      tier: h.tier as Tier,
      score: h.score as number,
      dueAt: (h.due_at as Date | null)?.toISOString() ?? null,
      policyVersion: h.policy_version as string,
      reason: h.reason as string,
      explanation: h.explanation as ExplanationFactor[] | null,
    })),
  };
}

export interface NoiseCounts {
  openFindings: number;
  /** Open findings rated critical or high: CVSS 7 or more, or the scanner's severity without a score. */
  criticalHighByCvss: number;
  /** Of those, how many the policy puts in act or attend. */
  criticalHighActAttend: number;
  actAttend: number;
  act: number;
  /** 1 - criticalHighActAttend / criticalHighByCvss: the share of the severity-driven backlog the policy set aside. */
  reduction: number | null;
  /** Critical/high findings with no evidence of exploitation: not in KEV, no CISA SSVC active or poc, EPSS below the policy's likely-exploited threshold (0.1 by default). */
  criticalHighWithoutEvidence: number;
  /** The share of those kept out of act/attend. */
  reductionWithoutEvidence: number | null;
  /** Exploited findings (KEV or SSVC active) on publicly exposed assets, not declared not affected or fixed (VEX). */
  exploitedExposed: number;
  /** Of those, how many are not in act/attend: the exploitable few the policy missed (0 is the goal). */
  exploitedExposedMissed: number;
  /** Open findings known exploited (KEV) or likely exploited (EPSS >= 0.1), not declared not affected or fixed, as % of open findings. */
  exploitableBacklogPct: number | null;
}

/** EPSS at or above this is evidence that exploitation is likely: the active policy's threshold, else FIRST's efficient 0.1. */
const likelyEpss = (sql: Sql) =>
  sql`coalesce((select (document #>> '{modifiers,likelyExploited,epssAtLeast}')::float8 from policies where status = 'active' order by activated_at desc nulls last limit 1), 0.1)`;

/** The noise report of one scope now: what severity alone would flag against what the policy asks. */
export async function noiseCounts(sql: Sql, scope?: ScopeSelector): Promise<NoiseCounts> {
  const [r] = await sql`
    with threshold as materialized (select ${likelyEpss(sql)} as likely),
    f as (
      select f.tier, f.cvss_score >= 7 or (f.cvss_score is null and f.severity in ('critical', 'high')) as critical_high,
             coalesce(f.vendor_status in ('not_affected', 'fixed'), false) as declared_safe,
             k.cve is not null as in_kev, coalesce(e.epss, 0) as epss, r.ssvc_exploitation,
             -- Exposure as the policy decided it: the asset's part, unless a control took the path away.
             coalesce(ap.body -> 'exposure' ->> 'value' = 'yes' and not coalesce(cp.body ? 'unexposedBy', false), false) as exposed
      from findings f
      join assets a on a.id = f.asset_id
      left join kev_entries k on k.cve = f.issue_id and k.feed_version = ${activeVersion(sql, 'kev')}
      left join epss_scores e on e.cve = f.issue_id and e.feed_version = ${activeVersion(sql, 'epss')}
      left join cve_records r on r.cve = f.issue_id and r.feed_version = ${activeVersion(sql, 'cve')} and r.state = 'PUBLISHED'
      left join explanation_parts ap on ap.id = f.explanation_asset
      left join explanation_parts cp on cp.id = f.explanation_context
      where f.status = 'open' ${scope ? scopeCondition(sql, scope) : sql``}
    )
    select count(*)::int as open,
           count(*) filter (where critical_high)::int as critical_high,
           count(*) filter (where critical_high and tier in ('act', 'attend'))::int as critical_high_act_attend,
           count(*) filter (where tier in ('act', 'attend'))::int as act_attend,
           count(*) filter (where tier = 'act')::int as act,
           count(*) filter (where critical_high and not in_kev and ssvc_exploitation is distinct from 'active'
                              and ssvc_exploitation is distinct from 'poc' and epss < (select likely from threshold))::int as without_evidence,
           count(*) filter (where critical_high and not in_kev and ssvc_exploitation is distinct from 'active'
                              and ssvc_exploitation is distinct from 'poc' and epss < (select likely from threshold) and tier in ('act', 'attend'))::int as without_evidence_urgent,
           count(*) filter (where (in_kev or ssvc_exploitation = 'active') and exposed and not declared_safe)::int as exploited_exposed,
           count(*) filter (where (in_kev or ssvc_exploitation = 'active') and exposed and not declared_safe
                              and tier is distinct from 'act' and tier is distinct from 'attend')::int as exploited_exposed_missed,
           count(*) filter (where (in_kev or epss >= (select likely from threshold)) and not declared_safe)::int as exploitable
    from f`;
  const open = r?.open ?? 0;
  const criticalHigh = r?.critical_high ?? 0;
  const withoutEvidence = r?.without_evidence ?? 0;
  const ratio = (part: number, whole: number) => (whole === 0 ? null : Math.round((1 - part / whole) * 1000) / 1000);
  return {
    openFindings: open,
    criticalHighByCvss: criticalHigh,
    criticalHighActAttend: r?.critical_high_act_attend ?? 0,
    actAttend: r?.act_attend ?? 0,
    act: r?.act ?? 0,
    reduction: ratio(r?.critical_high_act_attend ?? 0, criticalHigh),
    criticalHighWithoutEvidence: withoutEvidence,
    reductionWithoutEvidence: ratio(r?.without_evidence_urgent ?? 0, withoutEvidence),
    exploitedExposed: r?.exploited_exposed ?? 0,
    exploitedExposedMissed: r?.exploited_exposed_missed ?? 0,
    exploitableBacklogPct: open === 0 ? null : Math.round(((r?.exploitable ?? 0) / open) * 10000) / 100,
  };
}

/** Records the noise report of every scope (and of the whole estate, scope `*`) for the trend. */
export async function snapshotNoise(sql: Sql): Promise<number> {
  const scopes = (await sql`select name, selector from scopes`) as unknown as Array<{ name: string; selector: ScopeSelector }>;
  const all = [{ name: '*', selector: undefined as ScopeSelector | undefined }, ...scopes];
  for (const s of all) {
    const counts = await noiseCounts(sql, s.selector);
    await sql`insert into noise_snapshots (scope, counts) values (${s.name}, ${sql.json(counts as unknown as Record<string, number>)})`;
  }
  return all.length;
}

export async function noiseHistory(sql: Sql, scope: string, limit = 90) {
  const rows = await sql`select counts, at from noise_snapshots where scope = ${scope} order by at desc, id desc limit ${limit}`;
  return rows.map((r) => ({ at: (r.at as Date).toISOString(), ...(r.counts as NoiseCounts) })).reverse();
}
