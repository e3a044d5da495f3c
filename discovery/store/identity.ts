import { isIP } from 'node:net';
import type postgres from 'postgres';
import type { AssetRef } from '../model.js';
import type { AssetIdentifiers } from '../context/model.js';
import { mergeLinkedAssets, type MergeOrigin } from './merge.js';

// Asset identity resolution, shared by scanner ingest and context sources. Every asset is known by
// identifiers (fqdn, hostname, ip, instance id, image, image digest, CMDB id, and its own key); a
// record sharing any identifier with an asset is that asset. Set-based, over the distinct assets of
// one import (few), never per finding.
//
// IP addresses are weak: DHCP and cloud networks give one address to another machine. A weak
// identifier (an IP, or the key of a host named by its IP) finds an asset only when the record has
// nothing stronger that does, and not an asset whose strong identifiers contradict the record's (a
// different name, instance id, CMDB id or digest: another machine). It never merges two assets that
// both have strong identifiers, and is recorded on the asset that reported it last: an IP moves,
// with the key it gave a host, rather than linking two machines. Strong identifiers (FQDN, host
// name, instance id, CMDB id, image, digest, other keys) link and merge as before.
type Tx = postgres.TransactionSql;

export type IdentifierKind = 'key' | 'fqdn' | 'hostname' | 'ip' | 'instance_id' | 'image' | 'image_digest' | 'cmdb_id';

export interface StagedAsset {
  assetKey: string;
  kind: string;
  name: string;
  digest?: string | undefined;
  identifiers: Array<[IdentifierKind, string]>;
}

/** `sha256:<hex>` out of an image id or a repo digest (`repo@sha256:<hex>`). */
function digestOf(text: string | undefined): string | undefined {
  const match = text ? /sha256:[0-9a-f]{64}/i.exec(text) : null;
  return match ? match[0].toLowerCase() : undefined;
}

function hostIdentifier(value: string): [IdentifierKind, string] {
  const v = value.toLowerCase();
  return isIP(v) ? ['ip', v] : v.includes('.') ? ['fqdn', v] : ['hostname', v];
}

/** An IP address, or the key a host named only by its IP was given (`host:10.0.0.5`). */
export function isWeakIdentifier(kind: string, value: string): boolean {
  return kind === 'ip' || (kind === 'key' && value.startsWith('host:') && isIP(value.slice(5)) !== 0);
}

/** isWeakIdentifier() in SQL, over an asset_identifiers row aliased `x`. */
export const WEAK_SQL = `(x.kind = 'ip' or (x.kind = 'key' and x.value like 'host:%' and pg_input_is_valid(substr(x.value, 6), 'inet')))`;

/**
 * The staged records' identifiers as parallel columns for unnest(): record key, kind, value and
 * whether it is weak, in record order (a record's own identifiers first, its aliases after).
 */
export function identifierColumns(staged: StagedAsset[]): { keys: string[]; kinds: string[]; values: string[]; weak: boolean[] } {
  const out = { keys: [] as string[], kinds: [] as string[], values: [] as string[], weak: [] as boolean[] };
  for (const a of staged) {
    for (const [kind, value] of a.identifiers) {
      out.keys.push(a.assetKey);
      out.kinds.push(kind);
      out.values.push(value);
      out.weak.push(isWeakIdentifier(kind, value));
    }
  }
  return out;
}

/**
 * What a scanner's asset reference says about identity: its key's value, the image digest, and the
 * record's other names for it (`alsoKnownAs`).
 */
export function stageAssetRef(asset: AssetRef): StagedAsset {
  const colon = asset.assetKey.indexOf(':');
  const prefix = asset.assetKey.slice(0, colon);
  const value = asset.assetKey.slice(colon + 1);
  const identifiers: Array<[IdentifierKind, string]> = [['key', asset.assetKey]];
  if (prefix === 'host') identifiers.push(hostIdentifier(value));
  if (prefix === 'image') identifiers.push(['image', value]);
  if (prefix === 'cloud') identifiers.push(['instance_id', value]);
  const digest = digestOf(asset.digest);
  if (digest) identifiers.push(['image_digest', digest]);
  for (const [kind, raw] of asset.alsoKnownAs ?? []) {
    const alias = kind === 'instance_id' ? raw.trim() : raw.trim().toLowerCase();
    if (alias !== '' && !identifiers.some(([k, v]) => k === kind && v === alias)) identifiers.push([kind, alias]);
  }
  return { assetKey: asset.assetKey, kind: asset.kind, name: asset.name, digest: asset.digest, identifiers };
}

/** The identifiers a context record carries, and the key a new asset gets from the strongest one. */
export function stageContextIdentifiers(kind: string, name: string, ids: AssetIdentifiers): StagedAsset {
  const identifiers: Array<[IdentifierKind, string]> = [];
  if (ids.cmdbId) identifiers.push(['cmdb_id', ids.cmdbId]);
  if (ids.instanceId) identifiers.push(['instance_id', ids.instanceId]);
  if (ids.fqdn) identifiers.push(['fqdn', ids.fqdn.toLowerCase()]);
  if (ids.hostname) identifiers.push(['hostname', ids.hostname.toLowerCase()]);
  for (const ip of ids.ips ?? []) identifiers.push(['ip', ip.toLowerCase()]);
  if (ids.image) identifiers.push(['image', ids.image]);
  const digest = digestOf(ids.imageDigest);
  if (digest) identifiers.push(['image_digest', digest]);
  // The key a scanner would give the same asset, so that later scans find it by key as well.
  const assetKey =
    kind === 'container_image' && ids.image ? `image:${ids.image}`
    : kind === 'host' && (ids.fqdn || ids.hostname) ? `host:${(ids.fqdn ?? ids.hostname)!.toLowerCase()}`
    : ids.instanceId ? `cloud:${ids.instanceId}`
    : kind === 'host' && ids.ips?.[0] ? `host:${ids.ips[0]}`
    : `${kind === 'business_service' ? 'service' : kind}:${name}`;
  identifiers.unshift(['key', assetKey]);
  return { assetKey, kind, name, digest: ids.imageDigest, identifiers };
}

/**
 * What a strong identifier says the asset is, for telling two machines apart: two names (FQDN or
 * host name) that differ, two instance ids, two CMDB ids or two digests are two machines. Null for
 * weak identifiers and keys (a key repeats its asset's own identifier).
 */
const classOf = (kind: string) =>
  `case when ${kind} in ('fqdn', 'hostname') then 'name' when ${kind} in ('instance_id', 'cmdb_id', 'image_digest') then ${kind} end`;

/**
 * The hits of staged identifiers on stored ones, as SQL over a CTE `ids` (asset_key, kind, value,
 * weak, n): each with whether the asset found has a strong identifier (`named`), whether the
 * record has one (`record_named`), and whether the asset has a strong identifier of a class the
 * record names otherwise (`conflicts`: a name against another name, an instance id against
 * another). Shared by resolution, lookup and the merge's look for links.
 */
export const HITS_SQL = `
  select i.asset_key, i.kind, i.value, i.weak, i.n, ai.asset_id,
         exists (select 1 from asset_identifiers x where x.asset_id = ai.asset_id and not ${WEAK_SQL}) as named,
         r.record_named,
         exists (select 1 from asset_identifiers x where x.asset_id = ai.asset_id and ${classOf('x.kind')} = any(r.classes)) as conflicts
  from ids i
  join (select asset_key, bool_or(not weak) as record_named,
               array_agg(distinct ${classOf('kind')}) filter (where ${classOf('kind')} is not null) as classes
        from ids group by asset_key) r on r.asset_key = i.asset_key
  join asset_identifiers ai on ai.kind = i.kind and ai.value = i.value`;

/**
 * The asset each record is, out of its hits (HITS_SQL as `hits`): a strong hit first; else a weak
 * one on an asset whose strong identifiers do not contradict the record's (a new FQDN with an
 * address another named host holds is a new machine; a CMDB id with the address of a host scanned
 * by name is that host); each in the record's order of identifiers. Records none fits have no row.
 */
const CHOSEN_SQL = `
  select distinct on (h.asset_key) h.asset_key, h.asset_id from hits h
  where not h.weak or not h.conflicts
  order by h.asset_key, h.weak, h.n`;

/**
 * Resolves staged assets to asset ids, creating the ones nobody knows yet, and records every
 * identifier they carry; returns asset key -> asset id. When one record's identifiers belong to two
 * or more existing assets, they are one asset: merged first into the oldest (merge.ts, recorded with
 * `origin` as the reason), weak identifiers linking only as the top of this file says. A key staged
 * twice is the first record's. Strong identifiers already held by another asset stay there; weak
 * ones move to the asset that reports them (the last record in the import when two do). One
 * statement besides the look for links: it runs once per scanner report, and a statement per step
 * (and a temp table created and dropped each time) cost more than merging a small report's findings.
 */
export async function resolveAssets(tx: Tx, staged: StagedAsset[], source: string, origin: MergeOrigin = { source }): Promise<Map<string, number>> {
  if (staged.length === 0) return new Map();
  await mergeLinkedAssets(tx, staged, origin);
  const c = identifierColumns(staged);
  const rows = await tx<{ asset_key: string; asset_id: string }[]>`
    with staged as (
      select distinct on (asset_key) asset_key, kind, name, digest
      from unnest(${tx.array(staged.map((a) => a.assetKey))}::text[], ${tx.array(staged.map((a) => a.kind))}::text[],
                  ${tx.array(staged.map((a) => a.name))}::text[], ${tx.array(staged.map((a) => a.digest ?? ''))}::text[])
           with ordinality as s(asset_key, kind, name, digest, n)
      order by asset_key, n
    ),
    ids as (
      select * from unnest(${tx.array(c.keys)}::text[], ${tx.array(c.kinds)}::text[], ${tx.array(c.values)}::text[], ${tx.array(c.weak)}::boolean[])
             with ordinality as i(asset_key, kind, value, weak, n)
    ),
    hits as materialized (${tx.unsafe(HITS_SQL)}),
    chosen as (${tx.unsafe(CHOSEN_SQL)}),
    matched as (
      -- By its identifiers (after the merge above, one asset), else by key: assets stored before
      -- they had identifiers (a merged asset's key names its survivor).
      select s.*, coalesce(c.asset_id, (select coalesce(a.merged_into, a.id) from assets a where a.asset_key = s.asset_key)) as asset_id
      from staged s left join chosen c on c.asset_key = s.asset_key
    ),
    created as (
      insert into assets (asset_key, kind, name, digest)
      select asset_key, kind, name, nullif(digest, '') from matched where asset_id is null
      on conflict (asset_key) do update set last_seen_at = now()
      returning id, asset_key
    ),
    resolved as (
      select m.asset_key, coalesce(m.asset_id, c.id) as asset_id from matched m left join created c on c.asset_key = m.asset_key
    ),
    recorded as (
      insert into asset_identifiers (kind, value, asset_id, source)
      select i.kind, i.value, r.asset_id, ${source}
      from ids i join resolved r on r.asset_key = i.asset_key
      where not i.weak
      on conflict (kind, value) do nothing
    ),
    -- Weak identifiers go to the asset that reports them: the last record in the import that does.
    claimed as (
      select distinct on (i.kind, i.value) i.kind, i.value, r.asset_id
      from ids i join resolved r on r.asset_key = i.asset_key
      where i.weak
      order by i.kind, i.value, i.n desc
    ),
    moved as (
      insert into asset_identifiers as t (kind, value, asset_id, source)
      select kind, value, asset_id, ${source} from claimed
      on conflict (kind, value) do update set asset_id = excluded.asset_id, source = excluded.source
      where t.asset_id <> excluded.asset_id
    ),
    -- The key a host named by a moving IP was given moves with it (unless this import names that key itself).
    moved_keys as (
      update asset_identifiers k set asset_id = c.asset_id, source = ${source}
      from claimed c
      where c.kind = 'ip' and k.kind = 'key' and k.value = 'host:' || c.value and k.asset_id <> c.asset_id
        and k.value not in (select o.value from claimed o where o.kind = 'key')
    )
    select asset_key, asset_id from resolved`;
  return new Map(rows.map((r) => [r.asset_key, Number(r.asset_id)]));
}

/**
 * The existing asset each staged record names (as resolveAssets() would choose it; else by key),
 * creating nothing: for evidence about assets, where a name nobody knows is reported, not invented.
 * Returns asset key -> asset id for the records that resolved.
 */
export async function findAssets(tx: Tx | postgres.Sql, staged: StagedAsset[]): Promise<Map<string, number>> {
  if (staged.length === 0) return new Map();
  const c = identifierColumns(staged);
  const rows = await tx<{ asset_key: string; asset_id: string }[]>`
    with ids as (
      select * from unnest(${tx.array(c.keys)}::text[], ${tx.array(c.kinds)}::text[], ${tx.array(c.values)}::text[], ${tx.array(c.weak)}::boolean[])
             with ordinality as i(asset_key, kind, value, weak, n)
    ),
    hits as materialized (${tx.unsafe(HITS_SQL)}),
    chosen as (${tx.unsafe(CHOSEN_SQL)}),
    s as (select distinct asset_key from ids)
    select s.asset_key, coalesce(c.asset_id, (select coalesce(a.merged_into, a.id) from assets a where a.asset_key = s.asset_key)) as asset_id
    from s left join chosen c on c.asset_key = s.asset_key`;
  return new Map(rows.filter((r) => r.asset_id !== null).map((r) => [r.asset_key, Number(r.asset_id)]));
}

/** Sources ranked for context attributes: the CMDB is the system of record for ownership. */
export const ATTRIBUTE_SOURCE_RANK: Record<string, number> = { cmdb: 3, cloud: 2, scan: 1 };
