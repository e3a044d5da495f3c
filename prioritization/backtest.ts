import type { Sql } from '../db/client.js';
import { TIER_RANK, type Policy } from './policy.js';
import { cellTable, MODIFIER_SPAN } from './scoring/decision.js';
import { scoringRelation } from './scoring/relation.js';
import { feedVersions, tuned, type Tx } from './scoring/sql.js';
import { vulnerabilityCtes } from './scoring/vulnerabilities.js';

// A backtest asks of a policy what a security team asks of it: of the vulnerabilities that attackers
// went on to exploit (CISA KEV entries added after t0), how many did it flag at t0 (coverage), at
// what effort (the share of everything it flagged), and how much of what it flagged was later
// exploited (efficiency). The policy decides with the feeds of t0 (EPSS and KEV versions, CVE
// records) exactly as scoring does (the same per-vulnerability SQL); the baselines are one-line
// rules a team could use instead. What was already in KEV at t0 is known, not forecast: it is left
// out of the population.

export type BacktestUniverse = 'cves' | 'records' | 'estate';

export interface BacktestInput {
  /** The policies to test (the active one, a candidate...). */
  policies: Policy[];
  /** Feed versions at t0; the active ones when absent. */
  epss?: string;
  kev?: string;
  cve?: string | null;
  /** The CVEs in the later KEV catalog (additions since t0 are what counts). */
  laterKev: string[];
  /** Every CVE of the EPSS file (no local context: exposure as the policy assumes it), only those with a CVE record, or the estate's open findings (with their context). */
  universe: BacktestUniverse;
}

export interface BacktestRow {
  name: string;
  /** What the rule flags (CVEs or findings). */
  flagged: number;
  /** flagged / population. */
  effort: number;
  /** Later-KEV items flagged. */
  caught: number;
  /** caught / positives. */
  coverage: number;
  /** caught / flagged. */
  efficiency: number;
}

export interface BacktestResult {
  universe: BacktestUniverse;
  feeds: { epss: string; kev: string; cve: string | null };
  /** CVEs (or findings) not in KEV at t0. */
  population: number;
  /** Of those, how many the later catalog lists. */
  positives: number;
  /** How many of the population carry a CVSS score (the CVSS baselines only judge those). */
  withCvss: number;
  rows: BacktestRow[];
}

export class BacktestError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'BacktestError';
  }
}

const CVE = /^CVE-\d{4}-\d{4,}$/;

/** The CVE ids of a later KEV catalog: its JSON, its CSV, or any CSV with a `CVE` / `cveID` column. */
export function laterKevCves(text: string, where: string): string[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new BacktestError(where, `not JSON: ${(e as Error).message}`);
    }
    const list = (doc as { vulnerabilities?: Array<{ cveID?: unknown }> }).vulnerabilities;
    if (!Array.isArray(list)) throw new BacktestError(where, 'a KEV catalog needs a "vulnerabilities" list');
    return [...new Set(list.map((v) => String(v.cveID ?? '')).filter((c) => CVE.test(c)))];
  }
  const [header = '', ...lines] = text.split(/\r?\n/);
  const columns = header.split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
  const at = columns.findIndex((c) => c === 'cve' || c === 'cveid');
  if (at < 0) throw new BacktestError(where, `no CVE or cveID column in the header (${columns.slice(0, 8).join(', ')})`);
  // The CVE column comes before any quoted description in the files this reads; ids never hold commas.
  const cves = lines.map((l) => l.split(',')[at]?.trim().replace(/^"|"$/g, '') ?? '').filter((c) => CVE.test(c));
  if (cves.length === 0) throw new BacktestError(where, 'no CVE ids found');
  return [...new Set(cves)];
}

/** The CVE ids of a KEV feed version imported later (staged is enough); BacktestError when it has none. */
export async function laterKevVersion(sql: Sql, version: string): Promise<string[]> {
  const cves = (await sql<{ cve: string }[]>`select cve from kev_entries where feed_version = ${version}`).map((r) => r.cve);
  if (cves.length === 0) throw new BacktestError('laterKev', `no CISA KEV version ${version} with entries`);
  return cves;
}

/** Runs the policies and the baselines over the population; read-only, in one transaction. */
export async function backtest(sql: Sql, input: BacktestInput): Promise<BacktestResult> {
  if (input.laterKev.length === 0) throw new BacktestError('laterKev', 'the later KEV catalog lists no CVE');
  return sql.begin(async (tx) => {
    await tuned(tx);
    const active = await feedVersions(tx);
    const feeds = { epss: input.epss ?? active.epss, kev: input.kev ?? active.kev, cve: input.cve === undefined ? (active.cve ?? null) : input.cve };
    if (!feeds.epss) throw new BacktestError('epss', 'no EPSS version given and none active');
    if (!feeds.kev) throw new BacktestError('kev', 'no KEV version given and none active');
    for (const [kind, version] of [['epss', feeds.epss], ['kev', feeds.kev], ['cve', feeds.cve]] as const) {
      if (version === null) continue;
      const [known] = await tx`select 1 from intel_feeds where kind = ${kind} and version = ${version} and status <> 'rejected'`;
      if (!known) throw new BacktestError(kind, `no ${kind.toUpperCase()} feed version ${version}`);
    }
    const f = { epss: feeds.epss, kev: feeds.kev, cve: feeds.cve };
    await tx`create temporary table bt_later (cve text primary key) on commit drop`;
    await tx`insert into bt_later select distinct unnest(${input.laterKev}::text[])`;
    await tx`create temporary table bt_items (item bigint primary key, cve text not null, cvss real, epss float8, positive boolean not null) on commit drop`;
    if (input.universe !== 'estate') {
      await tx`
        insert into bt_items
        select row_number() over (order by e.cve), e.cve, coalesce(r.cna_score, r.adp_score), e.epss, l.cve is not null
        from epss_scores e
        left join cve_records r on r.feed_version = ${f.cve}::text and r.cve = e.cve and r.state = 'PUBLISHED'
        left join bt_later l on l.cve = e.cve
        where e.feed_version = ${f.epss} and not exists (select 1 from kev_entries k where k.feed_version = ${f.kev} and k.cve = e.cve)
          and (${input.universe === 'cves'}::boolean or r.cve is not null)`;
    } else {
      await tx`
        insert into bt_items
        select fi.id, fi.issue_id, fi.cvss_score, e.epss, l.cve is not null
        from findings fi
        left join epss_scores e on e.feed_version = ${f.epss} and e.cve = fi.issue_id
        left join bt_later l on l.cve = fi.issue_id
        where fi.status = 'open' and not exists (select 1 from kev_entries k where k.feed_version = ${f.kev} and k.cve = fi.issue_id)`;
    }
    await tx`analyze bt_items`;
    const [totals] = await tx<{ population: number; positives: number; with_cvss: number }[]>`
      select count(*)::int as population, (count(*) filter (where positive))::int as positives, (count(*) filter (where cvss is not null))::int as with_cvss from bt_items`;
    const population = totals?.population ?? 0;
    const positives = totals?.positives ?? 0;
    const row = (name: string, flagged: number, caught: number): BacktestRow => ({
      name, flagged, caught,
      effort: population ? flagged / population : 0,
      coverage: positives ? caught / positives : 0,
      efficiency: flagged ? caught / flagged : 0,
    });
    const rows: BacktestRow[] = [];
    for (const policy of input.policies) {
      await tx`create temporary table bt_flagged (item bigint primary key) on commit drop`;
      await flagByPolicy(tx, policy, f, input.universe);
      const [r] = await tx<{ flagged: number; caught: number }[]>`
        select count(*)::int as flagged, (count(*) filter (where i.positive))::int as caught from bt_flagged b join bt_items i using (item)`;
      const flagged = r?.flagged ?? 0;
      rows.push(row(`policy ${policy.version}`, flagged, r?.caught ?? 0));
      // EPSS alone at the policy's effort: the same number of items, highest EPSS first.
      const [same] = await tx<{ caught: number }[]>`
        select (count(*) filter (where positive))::int as caught from (select positive from bt_items order by epss desc nulls last, item limit ${flagged}) t`;
      rows.push(row(`EPSS alone at the effort of ${policy.version}`, flagged, same?.caught ?? 0));
      await tx`drop table bt_flagged`;
    }
    const [b] = await tx<Record<string, number>[]>`
      select (count(*) filter (where cvss >= 7))::int as c7, (count(*) filter (where cvss >= 7 and positive))::int as c7p,
             (count(*) filter (where cvss >= 9))::int as c9, (count(*) filter (where cvss >= 9 and positive))::int as c9p,
             (count(*) filter (where epss >= 0.088))::int as e088, (count(*) filter (where epss >= 0.088 and positive))::int as e088p,
             (count(*) filter (where epss >= 0.1))::int as e1, (count(*) filter (where epss >= 0.1 and positive))::int as e1p
      from bt_items`;
    rows.push(row('CVSS >= 7', b!.c7!, b!.c7p!), row('CVSS >= 9', b!.c9!, b!.c9p!), row('EPSS >= 0.088', b!.e088!, b!.e088p!), row('EPSS >= 0.1', b!.e1!, b!.e1p!));
    return { universe: input.universe, feeds: f, population, positives, withCvss: totals?.with_cvss ?? 0, rows };
  });
}

/**
 * Fills bt_flagged with the items the policy puts in act or attend. Every CVE: the vulnerability's
 * decision points from the feeds and the record, exposure as the policy assumes it without context,
 * and only the modifiers that depend on the vulnerability (likely exploited, public exploit). The
 * estate: the scoring relation itself, with each finding's context.
 */
async function flagByPolicy(tx: Tx, policy: Policy, feeds: { epss: string; kev: string; cve: string | null }, universe: BacktestUniverse) {
  const attend = TIER_RANK.attend;
  if (universe === 'estate') {
    const { ctes, rows } = scoringRelation(tx, policy, { all: true }, feeds);
    await tx`
      with ${ctes}
      insert into bt_flagged select s.id from (${rows}) s join bt_items i on i.item = s.id where s.tier in ('act', 'attend')`;
    return;
  }
  const cells = cellTable(policy);
  const pe = policy.document.decisionPoints.publiclyExposed.unknownMeans === 'yes';
  // A CVE's only rating here is its record's: a policy that reads the scanner's vector reads it as such.
  const keys = tx`
    select i.cve as issue_id, coalesce(r.cna_vector, r.adp_vector, '') as vec, coalesce(r.cna_score, r.adp_score, -1)::real as cv, 1 as n
    from bt_items i left join cve_records r on r.feed_version = ${feeds.cve}::text and r.cve = i.cve and r.state = 'PUBLISHED'`;
  await tx`
    with ${vulnerabilityCtes(tx, policy, feeds, tx`true`, keys)}
    insert into bt_flagged
    select i.item from vulns v join bt_items i on i.cve = v.issue_id
    where (${cells.tierRank}::int[])[(v.exploited::int * 8 + ${pe}::int * 4 + v.auto::int * 2 + v.total::int) * ${MODIFIER_SPAN}::int
                                      + v.poc::int * 256 + ${pe}::int * 128 + v.likely::int * 64 + 1] >= ${attend}`;
}
