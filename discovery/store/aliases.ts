import { forgetAssetContext } from '../../prioritization/scoring/inputs.js';
import type postgres from 'postgres';
import { isCve } from '../connectors/common/identity.js';

type Tx = postgres.TransactionSql | postgres.Sql;

// Vulnerability aliases: one vulnerability named by several ids (CVE-y, GHSA-x, PYSEC-z, DSA-n).
// Reports say which ids belong together; `vulnerability_aliases` keeps what they said as flat links
// (alias -> canonical, never a chain), and a finding is stored under the canonical id, so two
// scanners that name one vulnerability differently report one finding.
//
// The canonical id is the CVE a report names beside the others; ids named together without a CVE
// keep the id they were first stored under. A CVE is never an alias (two CVEs are two
// vulnerabilities), and an id named beside two CVEs (an advisory covering both) is an alias of
// neither (planLinks()).

/** alias -> canonical. */
export type AliasLinks = Map<string, string>;

/**
 * The distinct issue ids and alias sets of one report, collected while it streams into staging:
 * a million findings name a few thousand vulnerabilities.
 */
export class ReportIds {
  readonly issueIds = new Set<string>();
  readonly stated = new Map<string, { issueId: string; aliases: readonly string[] }>();

  add(issueId: string, aliases: readonly string[] | undefined): void {
    this.issueIds.add(issueId);
    if (!aliases || aliases.length === 0) return;
    const key = `${issueId}\x1f${aliases.join('\x1f')}`;
    if (!this.stated.has(key)) this.stated.set(key, { issueId, aliases });
  }

  get hasAliases(): boolean {
    return this.stated.size > 0;
  }

  /** Every id the report names. */
  ids(): string[] {
    const all = new Set(this.issueIds);
    for (const { aliases } of this.stated.values()) for (const a of aliases) all.add(a);
    return [...all];
  }
}

/** Union-find over ids, small: one report's ids and the links they touch. */
class Groups {
  private readonly parent = new Map<string, string>();

  find(id: string): string {
    let root = id;
    for (let p = this.parent.get(root); p !== undefined && p !== root; p = this.parent.get(root)) root = p;
    // Path compression keeps later finds short.
    for (let at = id; at !== root; ) {
      const next = this.parent.get(at)!;
      this.parent.set(at, root);
      at = next;
    }
    if (!this.parent.has(root)) this.parent.set(root, root);
    return root;
  }

  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  }

  members(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const id of this.parent.keys()) {
      const root = this.find(id);
      const list = out.get(root);
      if (list) list.push(id);
      else out.set(root, [id]);
    }
    return out;
  }
}

export interface LinkPlan {
  /** Links to add or repoint: alias -> canonical. */
  set: AliasLinks;
  /** Stored links that turned out ambiguous (the id names two CVEs): removed. */
  drop: Set<string>;
}

const byOrder = (ids: Iterable<string>): string | undefined => {
  let min: string | undefined;
  for (const id of ids) if (min === undefined || id < min) min = id;
  return min;
};

/**
 * The links a report adds, changes or removes, given the stored links that touch its ids (every
 * link whose alias is one of them, or whose canonical is one of them or their canonicals). Pure.
 *
 * Each other id goes to the one CVE named beside it (by this report's rows or its stored link); an
 * id named beside two CVEs (a distribution advisory fixing several, an advisory that covers two)
 * is an alias of neither. Ids a report names together without a CVE (an OSV group) share one
 * canonical: the group's one CVE if its members know one, else the id findings are already
 * stored under, else the smallest id the report keys a finding on.
 */
export function planLinks(stated: Iterable<{ issueId: string; aliases: readonly string[] }>, stored: AliasLinks): LinkPlan {
  const cvesOf = new Map<string, Set<string>>();
  const noteCve = (id: string, cve: string) => {
    const set = cvesOf.get(id);
    if (set) set.add(cve);
    else cvesOf.set(id, new Set([cve]));
  };
  const groups = new Groups();
  const issueIds = new Set<string>();
  for (const { issueId, aliases } of stated) {
    issueIds.add(issueId);
    const members = [issueId, ...aliases];
    const others = members.filter((id) => !isCve(id));
    const cves = members.filter(isCve);
    for (const id of others) {
      groups.find(id);
      for (const cve of cves) noteCve(id, cve);
    }
    // Without a CVE to anchor them, the row's ids are one vulnerability by the report's word alone.
    if (cves.length === 0) for (const id of others.slice(1)) groups.union(others[0]!, id);
  }
  for (const [alias, canonical] of stored) {
    groups.find(alias);
    if (isCve(canonical)) noteCve(alias, canonical);
    else groups.union(alias, canonical);
  }

  const storedCanonicals = new Set(stored.values());
  const plan: LinkPlan = { set: new Map(), drop: new Set() };
  const want = (id: string, canonical: string | undefined) => {
    if (canonical === undefined) {
      if (stored.has(id) && isCve(stored.get(id)!)) plan.drop.add(id);
    } else if (id !== canonical && stored.get(id) !== canonical) plan.set.set(id, canonical);
  };
  for (const members of groups.members().values()) {
    const groupCves = new Set(members.flatMap((id) => [...(cvesOf.get(id) ?? [])]));
    if (groupCves.size === 1) {
      const cve = [...groupCves][0]!;
      for (const id of members) want(id, cve);
      continue;
    }
    if (groupCves.size > 1) {
      // Each id keeps the one CVE it is named beside, if it has one; the others are no alias of any.
      for (const id of members) {
        const own = cvesOf.get(id);
        want(id, own?.size === 1 ? [...own][0] : undefined);
      }
      continue;
    }
    const canonical = byOrder(members.filter((id) => storedCanonicals.has(id))) ?? byOrder(members.filter((id) => issueIds.has(id))) ?? byOrder(members)!;
    for (const id of members) want(id, canonical);
  }
  return plan;
}

/** The stored links of these aliases. */
async function linksOf(tx: Tx, ids: readonly string[]): Promise<AliasLinks> {
  if (ids.length === 0) return new Map();
  const rows = await tx<{ alias: string; canonical: string }[]>`
    select alias, canonical from vulnerability_aliases where alias = any(${tx.array([...ids])}::text[])`;
  return new Map(rows.map((r) => [r.alias, r.canonical]));
}

/** The stored links that touch these ids: theirs, and those of the groups they belong to. */
export async function linksTouching(tx: Tx, ids: readonly string[]): Promise<AliasLinks> {
  if (ids.length === 0) return new Map();
  const rows = await tx<{ alias: string; canonical: string }[]>`
    with direct as (select alias, canonical from vulnerability_aliases where alias = any(${tx.array([...ids])}::text[])),
    roots as (select unnest(${tx.array([...ids])}::text[]) as id union select canonical from direct)
    select alias, canonical from vulnerability_aliases where canonical in (select id from roots)
    union select alias, canonical from direct`;
  return new Map(rows.map((r) => [r.alias, r.canonical]));
}

/**
 * Learns the links a report states and re-keys the findings stored under an id that became an
 * alias. Returns the links of the report's issue ids after that (what the merge keys findings by).
 */
export async function learnAliases(tx: Tx, source: string, report: ReportIds): Promise<{ links: AliasLinks; changed: number; rekeyed: RekeyCounts }> {
  // A CVE is never an alias: a report of CVEs alone (most of them) needs no look-up at all.
  const stored = report.hasAliases ? await linksTouching(tx, report.ids()) : await linksOf(tx, [...report.issueIds].filter((id) => !isCve(id)));
  const plan = report.hasAliases ? planLinks(report.stated.values(), stored) : { set: new Map<string, string>(), drop: new Set<string>() };
  let rekeyed: RekeyCounts = { renamed: 0, merged: 0 };
  if (plan.drop.size > 0) {
    await tx`delete from vulnerability_aliases where alias = any(${tx.array([...plan.drop])}::text[])`;
  }
  if (plan.set.size > 0) {
    const changes = plan.set;
    await tx`
      insert into vulnerability_aliases (alias, canonical, source)
      select * from unnest(${tx.array([...changes.keys()])}::text[], ${tx.array([...changes.values()])}::text[],
                           array_fill(${source}::text, array[${changes.size}::int]))
      on conflict (alias) do update set canonical = excluded.canonical, source = excluded.source, recorded_at = now()`;
    rekeyed = await rekeyFindings(tx, changes);
  }
  const links: AliasLinks = new Map();
  for (const id of report.issueIds) {
    const canonical = plan.set.get(id) ?? (plan.drop.has(id) ? undefined : stored.get(id));
    if (canonical !== undefined) links.set(id, canonical);
  }
  return { links, changed: plan.set.size + plan.drop.size, rekeyed };
}

export interface RekeyCounts {
  /** Findings moved to the canonical id, no finding there yet. */
  renamed: number;
  /** Findings folded into the finding already stored under the canonical id, then deleted. */
  merged: number;
}

/**
 * Moves the findings stored under ids that are now aliases to their canonical id: renamed when no
 * finding of that asset and package has the canonical id yet, else merged into it (its sources
 * and score history move over, the earliest first sighting and the union of aliases are kept, its
 * ticket kept if the survivor has none) and deleted. Set-based, inside the ingest's transaction.
 */
export async function rekeyFindings(tx: Tx, changes: AliasLinks): Promise<RekeyCounts> {
  // The moved findings' assets are locked first, as ingest locks the assets it scans: a concurrent
  // scan of one of them cannot insert the canonical fingerprint while it is being taken here.
  await tx`
    select a.id from assets a
    where a.id in (select d.asset_id from findings d where d.issue_id = any(${tx.array([...changes.keys()])}::text[]))
    order by a.id for update`;
  const moved = await tx<{ id: string; asset_id: string; target_id: string | null; new_fp: string; canonical: string }[]>`
    select d.id, d.asset_id, t.id as target_id, n.new_fp, l.canonical
    from unnest(${tx.array([...changes.keys()])}::text[], ${tx.array([...changes.values()])}::text[]) l(alias, canonical)
    join findings d on d.issue_id = l.alias
    -- fingerprint() in ingest.ts, with the canonical id.
    cross join lateral (select encode(sha256(convert_to(concat_ws(chr(31), d.asset_id, d.kind, l.canonical, d.component, d.version, d.location), 'UTF8')), 'hex') as new_fp) n
    left join findings t on t.fingerprint = n.new_fp
    order by d.id`;
  if (moved.length === 0) return { renamed: 0, merged: 0 };
  // A finding now under its CVE reads the CVE's EPSS, KEV and record: its assets are rescored by the
  // next incremental rescoring, as after any context change (scanned assets are scored with the scan).
  await forgetAssetContext(tx, [...new Set(moved.map((m) => Number(m.asset_id)))]);
  // One survivor per canonical fingerprint: the finding already there, else the oldest moved one.
  const survivor = new Map<string, string>();
  for (const m of moved) if (!survivor.has(m.new_fp)) survivor.set(m.new_fp, m.target_id ?? m.id);
  const renames = moved.filter((m) => survivor.get(m.new_fp) === m.id);
  const merges = moved.filter((m) => survivor.get(m.new_fp) !== m.id);

  if (renames.length > 0) {
    await tx`
      update findings f set issue_id = r.canonical, fingerprint = r.new_fp,
        aliases = array(select distinct a collate "C" from unnest(f.aliases || f.issue_id) a where a <> r.canonical order by 1)
      from unnest(${tx.array(renames.map((r) => r.id))}::bigint[], ${tx.array(renames.map((r) => r.canonical))}::text[],
                  ${tx.array(renames.map((r) => r.new_fp))}::text[]) r(id, canonical, new_fp)
      where f.id = r.id`;
  }
  if (merges.length > 0) {
    const dups = merges.map((m) => m.id);
    const keeps = merges.map((m) => survivor.get(m.new_fp)!);
    await tx`
      with pairs as (select * from unnest(${tx.array(dups)}::bigint[], ${tx.array(keeps)}::bigint[]) p(dup, keep)),
      -- Per survivor and source, the latest sighting's row, seen since the earliest of them.
      incoming as (
        select distinct on (p.keep, s.source) p.keep, s.source, s.present, s.vendor_status, s.severity, s.cvss_score, s.cvss_vector,
               min(s.first_seen_at) over (partition by p.keep, s.source) as first_seen_at,
               bool_or(s.present) over (partition by p.keep, s.source) as any_present, s.last_seen_at, s.last_scan_id
        from pairs p join finding_sources s on s.finding_id = p.dup
        order by p.keep, s.source, s.last_seen_at desc
      )
      insert into finding_sources as fs (finding_id, source, present, vendor_status, severity, cvss_score, cvss_vector,
                                         first_seen_at, last_seen_at, last_scan_id)
      select keep, source, any_present, vendor_status, severity, cvss_score, cvss_vector, first_seen_at, last_seen_at, last_scan_id
      from incoming
      on conflict (finding_id, source) do update set
        present = fs.present or excluded.present,
        first_seen_at = least(fs.first_seen_at, excluded.first_seen_at),
        vendor_status = case when excluded.last_seen_at > fs.last_seen_at then excluded.vendor_status else fs.vendor_status end,
        severity = case when excluded.last_seen_at > fs.last_seen_at then excluded.severity else fs.severity end,
        cvss_score = case when excluded.last_seen_at > fs.last_seen_at then excluded.cvss_score else fs.cvss_score end,
        cvss_vector = case when excluded.last_seen_at > fs.last_seen_at then excluded.cvss_vector else fs.cvss_vector end,
        last_scan_id = case when excluded.last_seen_at > fs.last_seen_at then excluded.last_scan_id else fs.last_scan_id end,
        last_seen_at = greatest(fs.last_seen_at, excluded.last_seen_at)`;
    await tx`
      with pairs as (select * from unnest(${tx.array(dups)}::bigint[], ${tx.array(keeps)}::bigint[]) p(dup, keep)),
      gone_sources as (delete from finding_sources where finding_id = any(${tx.array(dups)}::bigint[])),
      history as (update score_changes c set finding_id = p.keep from pairs p where c.finding_id = p.dup),
      folded as (
        select p.keep,
               min(d.first_seen_at) as first_seen_at,
               (array_agg(d.first_scan_id order by d.first_seen_at))[1] as first_scan_id,
               max(d.last_seen_at) as last_seen_at,
               (array_agg(d.ticket_key order by d.id) filter (where d.ticket_key is not null))[1] as ticket_key,
               bool_or(d.status = 'open') as any_open,
               max(case d.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2
                                   when 'info' then 1 when 'negligible' then 1 else 0 end) as severity_rank,
               array_agg(d.issue_id) || array_agg(a.alias) filter (where a.alias is not null) as ids
        -- One row per alias of each duplicate (one when it has none): the aggregates above ignore repeats.
        from pairs p join findings d on d.id = p.dup left join lateral unnest(d.aliases) a(alias) on true
        group by p.keep
      ),
      kept as (
        update findings k set
          first_seen_at = least(k.first_seen_at, o.first_seen_at),
          first_scan_id = case when o.first_seen_at < k.first_seen_at then o.first_scan_id else k.first_scan_id end,
          last_seen_at = greatest(k.last_seen_at, o.last_seen_at),
          ticket_key = coalesce(k.ticket_key, o.ticket_key),
          severity = case when o.severity_rank > (case k.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2
                                                                  when 'info' then 1 when 'negligible' then 1 else 0 end)
                          then (array['unknown', 'info', 'low', 'medium', 'high', 'critical'])[1 + o.severity_rank] else k.severity end,
          aliases = array(select distinct a collate "C" from unnest(k.aliases || o.ids) a where a <> k.issue_id order by 1),
          -- Open if either was: the duplicate's source still reports it.
          status = case when o.any_open then 'open' else k.status end,
          closed_at = case when o.any_open then null else k.closed_at end,
          closed_reason = case when o.any_open then null else k.closed_reason end,
          closed_by_scan_id = case when o.any_open then null else k.closed_by_scan_id end
        from folded o where k.id = o.keep
      )
      delete from findings where id = any(${tx.array(dups)}::bigint[])`;
  }
  return { renamed: renames.length, merged: merges.length };
}

/** How an id may be typed and how it is stored: CVE ids upper-case, GHSA ids `GHSA-` then lower-case. */
export function idSpellings(id: string): string[] {
  const trimmed = id.trim();
  const ghsa = /^ghsa-/i.test(trimmed) ? `GHSA-${trimmed.slice(5).toLowerCase()}` : undefined;
  return [...new Set([trimmed, isCve(trimmed) ? trimmed.toUpperCase() : trimmed, ghsa ?? trimmed])];
}

/**
 * The findings (`f`) any of these ids names: stored under it, reported under it (an alias), or
 * stored under the canonical id it is a known alias of. Each branch is an index condition
 * (findings_issue_idx, the GIN index on aliases), so the planner ORs index scans.
 */
export function issuesCondition(sql: postgres.Sql, ids: readonly string[]) {
  const spelled = [...new Set(ids.flatMap(idSpellings))];
  return sql`(f.issue_id = any(${sql.array(spelled)}::text[]) or f.aliases && ${sql.array(spelled)}::text[]
              or f.issue_id = any(array(select v.canonical from vulnerability_aliases v where v.alias = any(${sql.array(spelled)}::text[]))))`;
}

/** issuesCondition() for one id. */
export const issueCondition = (sql: postgres.Sql, id: string) => issuesCondition(sql, [id]);
