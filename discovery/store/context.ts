import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import type { ContextAsset, ContextRecord, ExposureRule, NetworkFlow, RuntimeEvidence } from '../context/model.js';
import { ATTRIBUTE_SOURCE_RANK, resolveAssets, stageContextIdentifiers, type StagedAsset } from './identity.js';
import { refreshInternetExposure } from './exposure.js';
import { recordBaseImages } from './base-images.js';
import { shadowScoreIn, type ShadowDiff, type ShadowOptions } from '../../prioritization/scoring/rescore.js';
import type { Policy } from '../../prioritization/policy.js';

export interface ContextCounts {
  assets: number;
  relations: number;
  exposureRules: number;
  internetFacingAssets: number;
  runtimeEvidence: number;
  networkFlows: number;
}

/** Which precedence class a context source belongs to (see ATTRIBUTE_SOURCE_RANK). */
function attributeSourceOf(source: string): string {
  if (source === 'cmdb-csv' || source === 'servicenow-cmdb') return 'cmdb';
  if (source === 'cloud-inventory') return 'cloud';
  return source;
}

/** The import being merged; `complete` is the upload's declaration (null: not declared, partial). */
export interface ContextImport {
  id: string;
  source: string;
  format: string;
  complete?: boolean | null;
}

/**
 * Merges one context document into the inventory, in one transaction: assets are identity-resolved
 * (created when unknown), their owner / business service / criticality / revenue / environment set where this
 * source ranks at least as high as the one that set them, relations linked (an image's base replaced), the rules
 * of each security group the document describes replaced (and, for a complete import, the rules of
 * the groups this source reported before and no longer does removed), internet exposure recomputed,
 * runtime evidence upserted.
 */
export async function ingestContext(
  sql: Sql,
  scan: ContextImport,
  records: AsyncIterable<ContextRecord>,
  /** Runs last, inside the same transaction (the scan records what it ingested: see ingest-scan.ts). */
  finish?: (tx: postgres.TransactionSql, counts: ContextCounts) => Promise<unknown>,
): Promise<ContextCounts> {
  const document = await readContext(records);
  return sql.begin(async (tx) => {
    const counts = await mergeContext(tx, scan, document);
    if (finish) await finish(tx, counts);
    return counts;
  });
}

/** A context document read in full (records are few next to findings: thousands, not millions). */
export interface ContextDocument {
  assets: ContextAsset[];
  rules: ExposureRule[];
  /** The security groups the document describes, whether or not they have inbound rules. */
  securityGroups: string[];
  runtime: RuntimeEvidence[];
  flows: NetworkFlow[];
}

export async function readContext(records: AsyncIterable<ContextRecord>): Promise<ContextDocument> {
  const document: ContextDocument = { assets: [], rules: [], securityGroups: [], runtime: [], flows: [] };
  for await (const record of records) {
    if (record.type === 'asset') document.assets.push(record.asset);
    else if (record.type === 'exposure_rule') document.rules.push(record.rule);
    else if (record.type === 'security_group') document.securityGroups.push(record.securityGroup);
    else if (record.type === 'network_flow') document.flows.push(record.flow);
    else document.runtime.push(record.evidence);
  }
  return document;
}

/** The merge of ingestContext, inside the caller's transaction (shadow evaluation rolls it back). */
async function mergeContext(
  tx: postgres.TransactionSql,
  scan: ContextImport,
  { assets, rules, securityGroups, runtime, flows }: ContextDocument,
): Promise<ContextCounts> {
  const attributeSource = attributeSourceOf(scan.format);
  const rank = ATTRIBUTE_SOURCE_RANK[attributeSource] ?? 0;
  const staged = new Map<string, StagedAsset>();
  const stage = (kind: string, name: string, ids: ContextAsset['identifiers']) => {
    const s = stageContextIdentifiers(kind, name, ids);
    const existing = staged.get(s.assetKey);
    if (existing) existing.identifiers.push(...s.identifiers.filter(([k, v]) => !existing.identifiers.some(([k2, v2]) => k === k2 && v === v2)));
    else staged.set(s.assetKey, s);
    return s.assetKey;
  };
  const assetKeys = assets.map((a) => stage(a.kind, a.name, a.identifiers));
  // A relation's target is often an asset of the same document named by fewer identifiers (a
  // container runs on `{instanceId}`, the instance itself is keyed by its FQDN): it is that asset,
  // not a placeholder beside it. Resolution by identifier cannot see it, since both are new.
  const stagedBy = new Map<string, string>();
  for (const s of staged.values()) for (const [kind, value] of s.identifiers) if (kind !== 'key') stagedBy.set(`${kind}\x1f${value}`, s.assetKey);
  const stageTarget = (kind: string, name: string, ids: ContextAsset['identifiers']) => {
    const s = stageContextIdentifiers(kind, name, ids);
    const known = s.identifiers.find(([k, v]) => k !== 'key' && stagedBy.has(`${k}\x1f${v}`));
    return known ? stagedBy.get(`${known[0]}\x1f${known[1]}`)! : stage(kind, name, ids);
  };
  const relationKeys = assets.flatMap((a, i) => (a.relations ?? []).map((r) => [assetKeys[i]!, r.relation, stageTarget(r.targetKind, r.targetName, r.target)] as const));
  const runtimeKeys = runtime.map((e) => stage('host', e.hostName, e.host));
  const ids = await resolveAssets(tx, [...staged.values()], scan.source, { source: scan.source, scanId: scan.id });
  const idOf = (key: string) => ids.get(key)!;

  if (assets.length > 0) {
    const col = <T>(pick: (a: ContextAsset) => T) => assets.map(pick);
    // One statement per import; each attribute moves only when this source ranks at least as high.
    await tx`
      with incoming as (
        select * from unnest(
          ${tx.array(assets.map((_, i) => idOf(assetKeys[i]!)))}::bigint[],
          ${tx.array(col((a) => a.owner ?? ''))}::text[], ${tx.array(col((a) => a.businessService ?? ''))}::text[],
          ${tx.array(col((a) => a.criticality ?? ''))}::text[], ${tx.array(col((a) => a.environment ?? ''))}::text[],
          ${tx.array(col((a) => (a.publicIps ?? []).join(',')))}::text[], ${tx.array(col((a) => (a.securityGroups ?? []).join(',')))}::text[],
          ${tx.array(col((a) => JSON.stringify(a.tags ?? {})))}::text[],
          ${tx.array(col((a) => (a.annualRevenue === undefined ? '' : String(a.annualRevenue))))}::text[]
        ) as i(id, owner, business_service, criticality, environment, public_ips, security_groups, tags, annual_revenue)
      ),
      ranked as (
        select i.*, a.attribute_sources as sources,
          ${rank} >= coalesce(case a.attribute_sources->>'owner' when 'cmdb' then 3 when 'cloud' then 2 when 'scan' then 1 end, 0) and i.owner <> '' as set_owner,
          ${rank} >= coalesce(case a.attribute_sources->>'business_service' when 'cmdb' then 3 when 'cloud' then 2 when 'scan' then 1 end, 0) and i.business_service <> '' as set_service,
          ${rank} >= coalesce(case a.attribute_sources->>'criticality' when 'cmdb' then 3 when 'cloud' then 2 when 'scan' then 1 end, 0) and i.criticality <> '' as set_criticality,
          ${rank} >= coalesce(case a.attribute_sources->>'environment' when 'cmdb' then 3 when 'cloud' then 2 when 'scan' then 1 end, 0) and i.environment <> '' as set_environment,
          ${rank} >= coalesce(case a.attribute_sources->>'annual_revenue' when 'cmdb' then 3 when 'cloud' then 2 when 'scan' then 1 end, 0) and i.annual_revenue <> '' as set_revenue
        from incoming i join assets a on a.id = i.id
      )
      update assets a set
        last_seen_at = now(),
        owner = case when r.set_owner then r.owner else a.owner end,
        business_service = case when r.set_service then r.business_service else a.business_service end,
        criticality = case when r.set_criticality then r.criticality else a.criticality end,
        environment = case when r.set_environment then r.environment else a.environment end,
        annual_revenue = case when r.set_revenue then r.annual_revenue::float8 else a.annual_revenue end,
        public_ips = case when r.public_ips <> '' then string_to_array(r.public_ips, ',') else a.public_ips end,
        security_groups = case when r.security_groups <> '' then string_to_array(r.security_groups, ',') else a.security_groups end,
        tags = case when r.tags <> '{}' then coalesce(a.tags, '{}'::jsonb) || r.tags::jsonb else a.tags end,
        attribute_sources = a.attribute_sources
          || case when r.set_owner then jsonb_build_object('owner', ${attributeSource}::text) else '{}' end
          || case when r.set_service then jsonb_build_object('business_service', ${attributeSource}::text) else '{}' end
          || case when r.set_criticality then jsonb_build_object('criticality', ${attributeSource}::text) else '{}' end
          || case when r.set_environment then jsonb_build_object('environment', ${attributeSource}::text) else '{}' end
          || case when r.set_revenue then jsonb_build_object('annual_revenue', ${attributeSource}::text) else '{}' end
      from ranked r where a.id = r.id`;
  }

  // An image has one base: a built_from link replaces the image's earlier one; other relations add up.
  const links = relationKeys.filter((r) => r[1] !== 'built_from');
  if (links.length > 0) {
    await tx`
      insert into asset_relations (asset_id, relation, target_id, source)
      select a, r, t, ${scan.source}
      from unnest(${tx.array(links.map((r) => idOf(r[0])))}::bigint[], ${tx.array(links.map((r) => r[1]))}::text[],
                  ${tx.array(links.map((r) => idOf(r[2])))}::bigint[]) as x(a, r, t)
      where a <> t
      on conflict do nothing`;
  }
  await recordBaseImages(tx, relationKeys.filter((r) => r[1] === 'built_from').map((r) => [idOf(r[0]), idOf(r[2])] as const), scan.source);

  // Rules are keyed by their security group: a document's description of a group replaces that
  // group's rules (whichever import stored them), so imports of different groups add up and the same
  // groups imported again change nothing. Only a complete import removes the groups its source
  // reported before and no longer lists; a partial one (the default) says nothing about them.
  const groups = [...new Set([...securityGroups, ...rules.map((r) => r.securityGroup)])];
  if (groups.length > 0 || (scan.complete === true && scan.format === 'security-groups')) {
    const flat = rules.flatMap((r) => r.sources.map((cidr) => [r.securityGroup, r.protocol, r.fromPort, r.toPort, cidr] as const));
    await tx`
      delete from exposure_rules
      where security_group = any(${tx.array(groups)}::text[])
         or (${scan.complete === true}::boolean and source = ${scan.source})`;
    if (flat.length > 0) {
      await tx`
        insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr)
        select distinct ${scan.source}, g, p, f, t, c
        from unnest(${tx.array(flat.map((x) => x[0]))}::text[], ${tx.array(flat.map((x) => x[1]))}::text[],
                    ${tx.array(flat.map((x) => x[2]))}::int[], ${tx.array(flat.map((x) => x[3]))}::int[],
                    ${tx.array(flat.map((x) => x[4]))}::text[]) as x(g, p, f, t, c)`;
    }
  }
  // A segment policy is complete by nature: an import replaces every flow its source declared before.
  if (scan.format === 'network-segments') await replaceNetworkFlows(tx, scan.source, flows);
  // Internet exposure: a public IP and a security group that admits the internet (or ports an
  // internet scan saw open).
  const exposure = await refreshInternetExposure(tx);

  if (runtime.length > 0) {
    await tx`
      insert into runtime_evidence as r (asset_id, package, version, process, source, observed_at)
      select distinct on (a, p, v, pr) a, p, v, pr, ${scan.source}, o
      from unnest(${tx.array(runtime.map((_, i) => idOf(runtimeKeys[i]!)))}::bigint[], ${tx.array(runtime.map((e) => e.package ?? ''))}::text[],
                  ${tx.array(runtime.map((e) => e.version ?? ''))}::text[], ${tx.array(runtime.map((e) => e.process ?? ''))}::text[],
                  ${tx.array(runtime.map((e) => e.observedAt))}::timestamptz[]) as x(a, p, v, pr, o)
      order by a, p, v, pr, o desc
      on conflict (asset_id, package, version, process) do update set observed_at = greatest(r.observed_at, excluded.observed_at), source = excluded.source`;
  }

  const touched = [...new Set([...ids.values()])];
  await tx`insert into scan_assets (scan_id, asset_id) select ${scan.id}, unnest(${tx.array(touched)}::bigint[]) on conflict do nothing`;
  return {
    assets: ids.size,
    relations: relationKeys.length,
    exposureRules: rules.length,
    internetFacingAssets: exposure.firewallFacing,
    runtimeEvidence: runtime.length,
    networkFlows: flows.length,
  };
}

/** Replaces the flows one source declared (an empty list removes them all). */
export async function replaceNetworkFlows(tx: postgres.TransactionSql, source: string, flows: NetworkFlow[]): Promise<void> {
  await tx`delete from network_flows where source = ${source}`;
  if (flows.length === 0) return;
  const rows = flows.map((f) => ({ from: f.from, to: f.to, from_cidrs: f.fromCidrs, to_cidrs: f.toCidrs, ports: f.ports, description: f.description ?? null }));
  await tx`
    insert into network_flows (source, from_segment, to_segment, from_cidrs, to_cidrs, ports, description)
    select ${source}, x."from", x."to", x.from_cidrs, x.to_cidrs, x.ports, x.description
    from jsonb_to_recordset(${tx.json(rows)}::jsonb) as x("from" text, "to" text, from_cidrs text[], to_cidrs text[], ports text[], description text)`;
}

const ROLLBACK = Symbol('rollback');

/**
 * What a context document would change before it is imported: merged in a transaction that is
 * rolled back, with every open finding scored against it there and compared with its live tier.
 * Nothing is kept. The merge holds its row locks on the assets it touches until the comparison is
 * done (seconds at a million findings), so a scan of those assets waits that long.
 */
export async function shadowContext(
  sql: Sql,
  policy: Policy,
  scan: ContextImport,
  document: ContextDocument,
  options: ShadowOptions = {},
): Promise<{ counts: ContextCounts; diff: ShadowDiff }> {
  let outcome: { counts: ContextCounts; diff: ShadowDiff } | undefined;
  try {
    // Repeatable read: the diff's summary and its samples see the same estate.
    await sql.begin('isolation level repeatable read', async (tx) => {
      const counts = await mergeContext(tx, scan, document);
      outcome = { counts, diff: await shadowScoreIn(tx, policy, { all: true }, options) };
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
  return outcome!;
}
