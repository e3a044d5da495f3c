import type { Sql } from '../../db/client.js';
import type { Policy } from '../policy.js';
import { assetContextCtes } from './asset-context.js';
import { feedVersions, tuned, type Tx } from './sql.js';

// What the estate was last scored with (table scoring_inputs), so a rescoring can tell what changed
// since and score only the findings it affects (incremental.ts), or nothing at all.
//
// Two rows: `estate` holds the policy version, each feed's version (every key feedVersions() gives:
// epss, kev, and cve once CVE records score) and the context generation; `assets` holds one hash per
// asset of what the scoring statement's asset step (asset-context.ts) computes for it.
//
// The context generation is a hash of every row the asset step reads (the scoring columns of assets,
// asset_relations, runtime_evidence, exposure_rules, and the controls and validation evidence with
// whether each is active now, so an expiry counts): one aggregate over a few small tables, no trigger and no counter that
// every writer (context import, exposure refresh, identity resolution, controls API) would have to
// remember to bump. Only when it differs are the per-asset hashes computed, and the assets whose hash
// differs (their context as scoring sees it, including what reaches them through their hosts and
// business service) are the ones rescored.
//
// network_flows (declared segment flows) is not hashed: scoring reads an internet flow only through
// the internet_facing / exposed_ports it sets on assets (hashed above); lateral flows feed the graph.

export interface ScoringInputs {
  policy: string;
  /** Feed kind -> active version (null: none active). */
  feeds: Record<string, string | null>;
  /** Hash of the context tables the asset step reads. */
  context: string;
}

const ESTATE = 'estate';
const ASSETS = 'assets';

/** The inputs a rescoring with this policy reads now. */
export async function currentInputs(sql: Sql | Tx, policy: Policy): Promise<ScoringInputs> {
  const [feeds, context] = await Promise.all([feedVersions(sql), contextGeneration(sql)]);
  return { policy: policy.version, feeds: { ...feeds }, context };
}

/**
 * The context generation: an order-independent hash (the sum of 64-bit row hashes, with the row
 * counts) of the scoring columns of assets and of asset_relations, runtime_evidence, exposure_rules,
 * compensating_controls and validation_evidence (with each control's and test's being unexpired now). Any write to what the asset
 * step reads changes it; nothing else does (a scan's last_seen_at, owners, tags).
 */
export async function contextGeneration(sql: Sql | Tx): Promise<string> {
  const [row] = await sql<{ g: string }[]>`
    select md5(concat_ws('|',
      (select count(*) || ':' || coalesce(sum(hashtextextended(row(a.id, a.asset_key, a.kind, a.name, a.business_service, a.criticality, a.annual_revenue,
                                                               a.environment, a.internet_facing, a.exposed_ports, a.public_ips, a.security_groups,
                                                               a.attribute_sources)::text, 0)::numeric), 0) from assets a),
      (select count(*) || ':' || coalesce(sum(hashtextextended(r::text, 0)::numeric), 0) from asset_relations r),
      (select count(*) || ':' || coalesce(sum(hashtextextended(e::text, 0)::numeric), 0) from runtime_evidence e),
      (select count(*) || ':' || coalesce(sum(hashtextextended(x::text, 0)::numeric), 0) from exposure_rules x),
      (select count(*) || ':' || coalesce(sum(hashtextextended(row(c.*, c.expires_at is null or c.expires_at > now())::text, 0)::numeric), 0)
       from compensating_controls c),
      (select count(*) || ':' || coalesce(sum(hashtextextended(row(e.id, e.asset_id, e.vulnerability, e.result, e.tool, e.source, e.target, e.port,
                                                               e.tested_at, e.expires_at, e.expires_at > now())::text, 0)::numeric), 0)
       from validation_evidence e))) as g`;
  return row!.g;
}

/**
 * Per asset, a hash of its row of the scoring statement's asset step under this policy (exposure and
 * its wording, environment, business impact, EDR coverage and what it saw, the controls that apply
 * and what they mitigate, its unexpired validation evidence): exactly what a finding takes from its asset. Seconds at most: the step
 * runs once over every asset, never over findings.
 */
export async function assetContextHashes(sql: Sql, policy: Policy): Promise<Record<string, string>> {
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    await tuned(tx);
    const rows = await tx<{ id: string; h: string }[]>`
      with ${assetContextCtes(tx, policy, false)}
      select a.id::text as id,
             left(md5(a::text || coalesce((select string_agg(c::text, ',' order by c.name) from ctl c where c.name = any(a.ctl_names)), '')), 16) as h
      from asset_ctx a`;
    return Object.fromEntries(rows.map((r) => [r.id, r.h]));
  });
}

/** What the estate was last scored with, and the per-asset hashes then; null when never recorded. */
export async function recordedInputs(sql: Sql | Tx): Promise<{ estate: ScoringInputs | null; assets: Record<string, string> | null }> {
  const rows = await sql<{ name: string; inputs: unknown }[]>`select name, inputs from scoring_inputs where name in (${ESTATE}, ${ASSETS})`;
  const byName = new Map(rows.map((r) => [r.name, r.inputs]));
  return {
    estate: (byName.get(ESTATE) as ScoringInputs | undefined) ?? null,
    assets: (byName.get(ASSETS) as Record<string, string> | undefined) ?? null,
  };
}

/** Records the inputs the estate is now scored with (and the per-asset hashes, when computed). */
export async function recordInputs(sql: Sql | Tx, inputs: ScoringInputs, assets?: Record<string, string>): Promise<void> {
  await sql`
    insert into scoring_inputs (name, inputs, scored_at) values (${ESTATE}, ${sql.json(inputs as never)}, now())
    on conflict (name) do update set inputs = excluded.inputs, scored_at = excluded.scored_at`;
  if (assets) {
    await sql`
      insert into scoring_inputs (name, inputs, scored_at) values (${ASSETS}, ${sql.json(assets)}, now())
      on conflict (name) do update set inputs = excluded.inputs, scored_at = excluded.scored_at`;
  }
}

/**
 * Forgets what the estate was last scored with for these assets (an asset merge or its undo moved
 * findings and context between them): the next incremental rescoring then finds the context changed
 * and these assets' hashes missing, and rescores their findings, the path of any context change.
 */
export async function forgetAssetContext(sql: Sql | Tx, assetIds: number[]): Promise<void> {
  if (assetIds.length === 0) return;
  await sql`update scoring_inputs set inputs = inputs - ${sql.array(assetIds.map(String))}::text[] where name = ${ASSETS}`;
  await sql`update scoring_inputs set inputs = inputs || '{"context":"forgotten"}' where name = ${ESTATE}`;
}
