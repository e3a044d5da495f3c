import { isIP } from 'node:net';
import type postgres from 'postgres';
import type { AssetRef } from '../model.js';
import type { AssetIdentifiers } from '../context/model.js';
import { mergeLinkedAssets, type MergeOrigin } from './merge.js';

// Asset identity resolution, shared by scanner ingest and context sources. Every asset is known by
// identifiers (fqdn, hostname, ip, instance id, image, image digest, CMDB id, and its own key); a
// record sharing any identifier with an asset is that asset. Set-based, over the distinct assets of
// one import (few), never per finding.

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

/** What a scanner's asset reference says about identity: its key's value and the image digest. */
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
 * Resolves staged assets to asset ids, creating the ones nobody knows yet, and records every
 * identifier they carry; returns asset key -> asset id. When one record's identifiers belong to two
 * or more existing assets, they are one asset: merged first into the oldest (merge.ts, recorded with
 * `origin` as the reason). A key staged twice is the first record's. One statement besides the look
 * for links: it runs once per scanner report, and a statement per step (and a temp table created
 * and dropped each time) cost more than merging a small report's findings.
 */
export async function resolveAssets(tx: Tx, staged: StagedAsset[], source: string, origin: MergeOrigin = { source }): Promise<Map<string, number>> {
  if (staged.length === 0) return new Map();
  await mergeLinkedAssets(tx, staged, origin);
  const ids = staged.flatMap((a) => a.identifiers.map(([kind, value]) => [a.assetKey, kind, value] as const));
  const rows = await tx<{ asset_key: string; asset_id: string }[]>`
    with staged as (
      select distinct on (asset_key) asset_key, kind, name, digest
      from unnest(${tx.array(staged.map((a) => a.assetKey))}::text[], ${tx.array(staged.map((a) => a.kind))}::text[],
                  ${tx.array(staged.map((a) => a.name))}::text[], ${tx.array(staged.map((a) => a.digest ?? ''))}::text[])
           with ordinality as s(asset_key, kind, name, digest, n)
      order by asset_key, n
    ),
    ids as (
      select * from unnest(${tx.array(ids.map((i) => i[0]))}::text[], ${tx.array(ids.map((i) => i[1]))}::text[], ${tx.array(ids.map((i) => i[2]))}::text[])
             as i(asset_key, kind, value)
    ),
    matched as (
      -- By any identifier (after the merge above, one asset), else by key: assets stored before
      -- they had identifiers (a merged asset's key names its survivor).
      select s.*, coalesce((select min(ai.asset_id) from ids i join asset_identifiers ai on ai.kind = i.kind and ai.value = i.value
                            where i.asset_key = s.asset_key),
                           (select coalesce(a.merged_into, a.id) from assets a where a.asset_key = s.asset_key)) as asset_id
      from staged s
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
      on conflict (kind, value) do nothing
    )
    select asset_key, asset_id from resolved`;
  return new Map(rows.map((r) => [r.asset_key, Number(r.asset_id)]));
}

/**
 * The existing asset each staged record names (by any identifier, the oldest asset; else by key),
 * creating nothing: for evidence about assets, where a name nobody knows is reported, not invented.
 * Returns asset key -> asset id for the records that resolved.
 */
export async function findAssets(tx: Tx | postgres.Sql, staged: StagedAsset[]): Promise<Map<string, number>> {
  if (staged.length === 0) return new Map();
  const ids = staged.flatMap((a) => a.identifiers.map(([kind, value]) => [a.assetKey, kind, value] as const));
  const rows = await tx<{ asset_key: string; asset_id: string }[]>`
    with ids as (
      select * from unnest(${tx.array(ids.map((i) => i[0]))}::text[], ${tx.array(ids.map((i) => i[1]))}::text[], ${tx.array(ids.map((i) => i[2]))}::text[])
             as i(asset_key, kind, value)
    ),
    keys as (select distinct asset_key from ids)
    select k.asset_key,
           coalesce((select min(ai.asset_id) from ids i join asset_identifiers ai on ai.kind = i.kind and ai.value = i.value where i.asset_key = k.asset_key),
                    (select coalesce(a.merged_into, a.id) from assets a where a.asset_key = k.asset_key)) as asset_id
    from keys k`;
  return new Map(rows.filter((r) => r.asset_id !== null).map((r) => [r.asset_key, Number(r.asset_id)]));
}

/** Sources ranked for context attributes: the CMDB is the system of record for ownership. */
export const ATTRIBUTE_SOURCE_RANK: Record<string, number> = { cmdb: 3, cloud: 2, scan: 1 };
