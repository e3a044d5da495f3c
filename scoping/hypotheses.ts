import { z } from 'zod';
import { likeLiteral, type Sql } from '../db/client.js';
import { scopeCondition, ScopeSelector } from './scopes.js';
import { issuesCondition } from '../discovery/store/aliases.js';

// Hunting hypotheses: a named question over the estate's exposures ("Log4Shell in runtime on
// internet-facing hosts"), saved so it can be asked again on a schedule and its residual exposure
// followed over time. The answer is counted in one set-based query and recorded with what asked.
//
// End of life: the platform does not know a component's end of life as such (Trivy's `end_of_life`
// status arrives as `will_not_fix`, and no EOL catalogue is imported), so "EOL kernels" is asked
// with component patterns (`linux-image-4.*`) and, where the scanner says so, vendorStatuses.

export const HYPOTHESIS_NAME = /^[A-Za-z0-9._-]{1,58}$/;
const ISSUE_ID = /^(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$/i;
const TIERS = ['act', 'attend', 'track*', 'track'] as const;
const URGENT = ['act', 'attend'];

export const HypothesisQuery = z
  .object({
    /** Which assets: the same selector as a saved scope. */
    scope: ScopeSelector.optional(),
    issueIds: z.array(z.string().regex(ISSUE_ID, 'an issue id is a CVE (CVE-2021-44228) or a GitHub advisory (GHSA-jfh8-c2jp-5v3q)')).min(1).max(500).optional(),
    /** Component names, case-insensitive; `*` stands for any run of characters (`linux-image-4.*`). */
    components: z.array(z.string().min(1).max(200).refine((p) => p.replaceAll('*', '') !== '', 'a pattern needs at least one character besides *')).min(1).max(50).optional(),
    /** Installed versions, the same kind of pattern (`3.10.*`: a RHEL 7 kernel, whose package is just `kernel`). */
    versions: z.array(z.string().min(1).max(100).refine((p) => p.replaceAll('*', '') !== '', 'a pattern needs at least one character besides *')).min(1).max(50).optional(),
    tiers: z.array(z.enum(TIERS)).min(1).optional(),
    severities: z.array(z.enum(['critical', 'high', 'medium', 'low', 'info', 'unknown'])).min(1).optional(),
    /** In the active CISA KEV catalog (true) or not (false). */
    kev: z.boolean().optional(),
    /** As the policy decided it: the asset or a host it runs on is internet-facing and no control blocks the path. */
    publiclyExposed: z.boolean().optional(),
    /** What EDR says of the component: seen loaded, or covered and never seen loaded. */
    runtime: z.enum(['loaded', 'not_loaded']).optional(),
    /** The scanner's or a VEX statement's status (will_not_fix holds Trivy's end_of_life). */
    vendorStatuses: z.array(z.string().min(1).max(40)).min(1).optional(),
  })
  .strict();
export type HypothesisQuery = z.infer<typeof HypothesisQuery>;

export const HypothesisInput = z
  .object({
    name: z.string().regex(HYPOTHESIS_NAME, 'a name is 1-58 letters, digits, dots, dashes or underscores'),
    statement: z.string().trim().min(3, 'say what the hypothesis asks, in 3 characters or more').max(500),
    query: HypothesisQuery,
    createdBy: z.string().min(1).max(200),
  })
  .strict();
export type HypothesisInput = z.infer<typeof HypothesisInput>;

export interface Hypothesis extends HypothesisInput {
  createdAt: string;
  updatedAt: string;
}

/** One field at fault, named by its path (`query.issueIds.0`), and why. */
export interface FieldError {
  field: string;
  message: string;
}

export class HypothesisInvalidError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    this.name = 'HypothesisInvalidError';
  }
}

export class HypothesisNotFoundError extends Error {
  constructor(name: string) {
    super(`no hypothesis named ${name}`);
    this.name = 'HypothesisNotFoundError';
  }
}

/** Zod's issues as fields and reasons (`query.issueIds.0`: why). */
export function fieldErrors(issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code: string; keys?: string[] }>, prefix = ''): FieldError[] {
  return issues.map((i) => ({
    field: [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.') || '(body)',
    message: i.code === 'unrecognized_keys' && i.keys ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}` : i.message,
  }));
}

/** Checks a hypothesis; every field at fault is named. */
export function parseHypothesis(input: unknown): HypothesisInput {
  const parsed = HypothesisInput.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new HypothesisInvalidError(fieldErrors(parsed.error.issues as never));
}

const iso = (v: unknown) => (v as Date).toISOString();

function hypothesisRow(r: Record<string, unknown>): Hypothesis {
  return {
    name: r.name as string,
    statement: r.statement as string,
    query: r.query as HypothesisQuery,
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** Creates or changes a hypothesis (validated first); its results stay. */
export async function saveHypothesis(sql: Sql, input: unknown): Promise<Hypothesis> {
  const h = parseHypothesis(input);
  const [row] = await sql`
    insert into hypotheses (name, statement, query, created_by) values (${h.name}, ${h.statement}, ${sql.json(h.query as never)}, ${h.createdBy})
    on conflict (name) do update set statement = excluded.statement, query = excluded.query, updated_at = now()
    returning *`;
  return hypothesisRow(row!);
}

export async function getHypothesis(sql: Sql, name: string): Promise<Hypothesis | undefined> {
  const [row] = await sql`select * from hypotheses where name = ${name}`;
  return row ? hypothesisRow(row) : undefined;
}

export async function deleteHypothesis(sql: Sql, name: string): Promise<boolean> {
  return (await sql`delete from hypotheses where name = ${name}`).count > 0;
}

export interface HypothesisResult {
  id: number;
  hypothesis: string;
  /** Open exposures matching now. */
  matched: number;
  /** Of those, in act or attend: the residual exposure. */
  urgent: number;
  /** By tier (act, attend, track*, track, unscored), the assets they sit on and, after a campaign, what it removed. */
  counts: Record<string, number>;
  trigger: string;
  campaignId: string | null;
  at: string;
}

function resultRow(r: Record<string, unknown>): HypothesisResult {
  return {
    id: Number(r.id),
    hypothesis: r.hypothesis as string,
    matched: r.matched as number,
    urgent: r.urgent as number,
    // Only the counts: a campaign's result before also keeps the ids it found urgent (campaignRemoval reads them).
    counts: Object.fromEntries(Object.entries(r.counts as Record<string, unknown>).filter(([, v]) => typeof v === 'number')) as Record<string, number>,
    trigger: r.trigger as string,
    campaignId: r.campaign_id as string | null,
    at: iso(r.at),
  };
}

export interface HypothesisSummary extends Hypothesis {
  latest: HypothesisResult | null;
  /** Urgent counts of the latest results, oldest first (a sparkline). */
  recentUrgent: number[];
}

/** Every hypothesis (or the one named) with its latest result and its recent urgent counts, by name. */
export async function listHypotheses(sql: Sql, { name, recent = 14 }: { name?: string; recent?: number } = {}): Promise<HypothesisSummary[]> {
  const rows = await sql`
    select h.*, to_jsonb(l) as latest,
           coalesce((select array_agg(x.urgent order by x.at, x.id) from (
             select r.urgent, r.at, r.id from hypothesis_results r where r.hypothesis = h.name order by r.at desc, r.id desc limit ${recent}) x), '{}') as recent
    from hypotheses h
    left join lateral (select * from hypothesis_results r where r.hypothesis = h.name order by r.at desc, r.id desc limit 1) l on true
    ${name !== undefined ? sql`where h.name = ${name}` : sql``}
    order by h.name`;
  return rows.map((r) => {
    const latest = r.latest as Record<string, unknown> | null;
    return {
      ...hypothesisRow(r),
      latest: latest ? resultRow({ ...latest, at: new Date(latest.at as string) }) : null,
      recentUrgent: (r.recent as number[]).map(Number),
    };
  });
}

/** `linux-image-4.*` as a LIKE pattern: `*` is any run of characters, nothing else is special. */
const likePattern = (p: string) => p.split('*').map(likeLiteral).join('%');

/**
 * The hypothesis as a SQL condition on `findings f` joined with `assets a`; every value is a bind parameter.
 */
export function hypothesisCondition(sql: Sql, q: HypothesisQuery) {
  const assetPart = sql`(select ap.body from explanation_parts ap where ap.id = f.explanation_asset)`;
  const seen = sql`(${assetPart} -> 'runtimeSeen')`;
  // EDR names Maven packages either group:artifact or artifact alone (as scoring reads them).
  const loaded = sql`coalesce(${seen} ? lower(f.component) or (strpos(f.component, ':') > 0 and ${seen} ? lower(split_part(f.component, ':', 2))), false)`;
  const exposed = sql`coalesce((${assetPart} -> 'exposure' ->> 'value') = 'yes'
      and not coalesce((select cp.body ? 'unexposedBy' from explanation_parts cp where cp.id = f.explanation_context), false), false)`;
  const inKev = sql`exists (select 1 from kev_entries k where k.cve = f.issue_id
      and k.feed_version = (select version from intel_feeds where kind = 'kev' and status = 'active'))`;
  return sql`
    ${q.scope ? scopeCondition(sql, q.scope) : sql``}
    ${q.issueIds ? sql`and ${issuesCondition(sql, q.issueIds)}` : sql``}
    ${q.components ? sql`and f.component ilike any(${q.components.map(likePattern)})` : sql``}
    ${q.versions ? sql`and f.version ilike any(${q.versions.map(likePattern)})` : sql``}
    ${q.tiers ? sql`and f.tier = any(${q.tiers})` : sql``}
    ${q.severities ? sql`and f.severity = any(${q.severities})` : sql``}
    ${q.vendorStatuses ? sql`and f.vendor_status = any(${q.vendorStatuses})` : sql``}
    ${q.kev === undefined ? sql`` : q.kev ? sql`and ${inKev}` : sql`and not ${inKev}`}
    ${q.publiclyExposed === undefined ? sql`` : sql`and ${exposed} = ${q.publiclyExposed}`}
    ${q.runtime === 'loaded' ? sql`and ${loaded}` : q.runtime === 'not_loaded' ? sql`and jsonb_typeof(${seen}) = 'object' and not ${loaded}` : sql``}`;
}

/**
 * Asks the hypothesis now: open exposures matching, how many are urgent (act / attend), by tier and
 * the assets they sit on, in one query that also records the result. `keepUrgentIds`: the result
 * also keeps which findings were urgent (a campaign's start, to count later what left).
 */
export async function runHypothesis(sql: Sql, name: string, trigger: string, campaignId?: string, { keepUrgentIds = false } = {}): Promise<HypothesisResult> {
  const h = await getHypothesis(sql, name);
  if (!h) throw new HypothesisNotFoundError(name);
  const [row] = await sql`
    with m as (
      select f.id, f.tier, f.asset_id from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' ${hypothesisCondition(sql, h.query)}
    ), c as (
      select count(*)::int as matched, count(*) filter (where tier = any(${URGENT}))::int as urgent,
             jsonb_build_object('act', count(*) filter (where tier = 'act'), 'attend', count(*) filter (where tier = 'attend'),
                                'track*', count(*) filter (where tier = 'track*'), 'track', count(*) filter (where tier = 'track'),
                                'unscored', count(*) filter (where tier is null), 'assets', count(distinct asset_id))
             ${keepUrgentIds ? sql`|| jsonb_build_object('urgentIds', coalesce(jsonb_agg(id order by id) filter (where tier = any(${URGENT})), '[]'))` : sql``} as counts
      from m
    )
    insert into hypothesis_results (hypothesis, matched, urgent, counts, trigger, campaign_id)
    select ${name}, matched, urgent, counts, ${trigger}, ${campaignId ?? null} from c
    returning *`;
  return resultRow(row!);
}

/** Open exposures matching now, counted without recording a result. */
export async function countMatching(sql: Sql, q: HypothesisQuery): Promise<number> {
  const [r] = await sql`select count(*)::int as n from findings f join assets a on a.id = f.asset_id where f.status = 'open' ${hypothesisCondition(sql, q)}`;
  return r!.n as number;
}

/** The hypothesis's results between two instants, oldest first: its residual exposure over time. */
export async function hypothesisTrend(sql: Sql, name: string, from: Date, to: Date): Promise<HypothesisResult[]> {
  const rows = await sql`
    select * from hypothesis_results where hypothesis = ${name} and at >= ${from} and at <= ${to} order by at, id`;
  return rows.map(resultRow);
}

/** A campaign's result before it ran (`campaign`) and after (`campaign-end`). */
export const CAMPAIGN_TRIGGERS = { before: 'campaign', after: 'campaign-end' } as const;

/**
 * Records the hypothesis's result at one end of a campaign; a retry finds the one already recorded.
 * The result before keeps the ids of the urgent findings; the result after counts what left (campaignRemoval).
 */
export async function recordCampaignResult(sql: Sql, name: string, campaignId: string, phase: 'before' | 'after'): Promise<HypothesisResult> {
  const trigger = CAMPAIGN_TRIGGERS[phase];
  const [existing] = await sql`select * from hypothesis_results where hypothesis = ${name} and campaign_id = ${campaignId} and trigger = ${trigger} order by id limit 1`;
  const result = existing ? resultRow(existing) : await runHypothesis(sql, name, trigger, campaignId, { keepUrgentIds: phase === 'before' });
  // A retry after the result was recorded but before its removal was added completes it.
  if (phase === 'before' || result.counts.removed !== undefined) return result;
  const removal = await campaignRemoval(sql, name, campaignId);
  if (!removal) return result;
  const [row] = await sql`
    update hypothesis_results set counts = counts || ${sql.json(removal as never)} where id = ${result.id} returning *`;
  return resultRow(row!);
}

export interface Removal {
  /** Findings matching the hypothesis that were open and urgent (act / attend) when the campaign started. */
  urgentBefore: number;
  /** Of those, closed since (a rescan no longer found them). */
  removedClosed: number;
  /** Of those, still open but out of act / attend (rescored: lost their exposure, new evidence, a control, a failed test). */
  removedRescored: number;
  /** removedClosed + removedRescored: what left the urgent backlog. */
  removed: number;
  /** Of those, still urgent but no longer matching the hypothesis (its other conditions changed): not removed. */
  leftHypothesis: number;
  /** Urgent and matching now but not at the start (found by the rescans, or raised by the rescoring). */
  added: number;
}

/**
 * What left the urgent backlog during a campaign, finding by finding: the findings urgent at its
 * start (kept with the result before) that are now closed or out of act / attend, not a difference
 * of two totals. urgentBefore - removed - leftHypothesis + added = urgent after.
 */
export async function campaignRemoval(sql: Sql, name: string, campaignId: string): Promise<Removal | undefined> {
  const h = await getHypothesis(sql, name);
  if (!h) throw new HypothesisNotFoundError(name);
  const [start] = await sql`
    select id from hypothesis_results
    where hypothesis = ${name} and campaign_id = ${campaignId} and trigger = ${CAMPAIGN_TRIGGERS.before} and counts ? 'urgentIds' order by id limit 1`;
  if (!start) return undefined;
  const [r] = await sql`
    with s as (select (jsonb_array_elements_text(r.counts -> 'urgentIds'))::bigint as id from hypothesis_results r where r.id = ${start.id}),
    m as (
      select f.id from findings f join assets a on a.id = f.asset_id
      where f.status = 'open' and f.tier = any(${URGENT}) ${hypothesisCondition(sql, h.query)}
    )
    select (select count(*) from s)::int as urgent_before,
           count(*) filter (where f.status = 'closed')::int as closed,
           count(*) filter (where f.status = 'open' and not coalesce(f.tier = any(${URGENT}), false))::int as rescored,
           count(*) filter (where f.status = 'open' and f.tier = any(${URGENT}) and f.id not in (select id from m))::int as left_hypothesis,
           (select count(*) from m where m.id not in (select id from s))::int as added
    from s join findings f on f.id = s.id`;
  return {
    urgentBefore: r!.urgent_before,
    removedClosed: r!.closed,
    removedRescored: r!.rescored,
    removed: r!.closed + r!.rescored,
    leftHypothesis: r!.left_hypothesis,
    added: r!.added,
  };
}

export interface HypothesisCampaign {
  campaignId: string;
  status: string | null;
  startedAt: string | null;
  before: HypothesisResult;
  after: HypothesisResult | null;
  removal: Removal | null;
}

/** Campaigns started from the hypothesis, newest first, with its result before and after and what each removed. */
export async function hypothesisCampaigns(sql: Sql, name: string, limit = 20): Promise<HypothesisCampaign[]> {
  const rows = await sql`
    select to_jsonb(b) as before, to_jsonb(e) as after, c.status, c.started_at
    from hypothesis_results b
    left join lateral (select * from hypothesis_results e where e.hypothesis = b.hypothesis and e.campaign_id = b.campaign_id
                       and e.trigger = ${CAMPAIGN_TRIGGERS.after} order by e.id limit 1) e on true
    left join campaigns c on c.id = b.campaign_id
    where b.hypothesis = ${name} and b.trigger = ${CAMPAIGN_TRIGGERS.before}
    order by b.at desc, b.id desc limit ${limit}`;
  const result = (j: Record<string, unknown>) => resultRow({ ...j, at: new Date(j.at as string) });
  return rows.map((r) => {
    const before = result(r.before as Record<string, unknown>);
    const after = r.after ? result(r.after as Record<string, unknown>) : null;
    const c = after?.counts;
    return {
      campaignId: before.campaignId!,
      status: (r.status as string | null) ?? null,
      startedAt: r.started_at ? iso(r.started_at) : null,
      before,
      after,
      removal: c && c.removed !== undefined
        ? { urgentBefore: c.urgentBefore!, removedClosed: c.removedClosed!, removedRescored: c.removedRescored!, removed: c.removed, leftHypothesis: c.leftHypothesis ?? 0, added: c.added! }
        : null,
    };
  });
}

/** Records a scheduled result for every hypothesis that has none since `since` (a retry records only the missing). */
export async function runScheduledHypotheses(sql: Sql, since: Date): Promise<{ hypotheses: number; recorded: number }> {
  const names = await sql`
    select h.name, exists (select 1 from hypothesis_results r where r.hypothesis = h.name and r.trigger = 'schedule' and r.at >= ${since}) as done
    from hypotheses h order by h.name`;
  let recorded = 0;
  for (const n of names) {
    if (n.done) continue;
    try {
      await runHypothesis(sql, n.name as string, 'schedule');
      recorded++;
    } catch (err) {
      // Deleted while the run went on: nothing to record.
      if (!(err instanceof HypothesisNotFoundError)) throw err;
    }
  }
  return { hypotheses: names.length, recorded };
}

/** The query in words, one clause per condition ("CVE-2021-44228; loaded at runtime; publicly exposed"). */
export function describeQuery(q: HypothesisQuery): string[] {
  const list = (xs: readonly string[]) => xs.join(', ');
  const out: string[] = [];
  if (q.issueIds) out.push(`issue ${list(q.issueIds)}`);
  if (q.components) out.push(`component matching ${list(q.components)}`);
  if (q.versions) out.push(`version matching ${list(q.versions)}`);
  if (q.severities) out.push(`severity ${list(q.severities)}`);
  if (q.tiers) out.push(`tier ${list(q.tiers)}`);
  if (q.kev !== undefined) out.push(q.kev ? 'in CISA KEV' : 'not in CISA KEV');
  if (q.publiclyExposed !== undefined) out.push(q.publiclyExposed ? 'publicly exposed' : 'not publicly exposed');
  if (q.runtime) out.push(q.runtime === 'loaded' ? 'loaded at runtime (EDR)' : 'never seen loaded (EDR covers the host)');
  if (q.vendorStatuses) out.push(`vendor status ${list(q.vendorStatuses)}`);
  const s = q.scope;
  if (s) {
    if (s.assetKinds) out.push(`on ${list(s.assetKinds)} assets`);
    if (s.internetFacing !== undefined) out.push(s.internetFacing ? 'on internet-facing assets' : 'on assets not internet-facing');
    if (s.environments) out.push(`in ${list(s.environments)}`);
    if (s.businessServices) out.push(`of ${list(s.businessServices)}`);
    if (s.owners) out.push(`owned by ${list(s.owners)}`);
    if (s.criticalities) out.push(`criticality ${list(s.criticalities)}`);
    if (s.assetNamePrefix) out.push(`asset name starting ${s.assetNamePrefix}`);
  }
  return out.length ? out : ['every open exposure'];
}
