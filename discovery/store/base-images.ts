import type postgres from 'postgres';
import type { Sql } from '../../db/client.js';
import type { BaseImage } from '../connectors/common/base-image.js';
import { resolveAssets, stageContextIdentifiers, type StagedAsset } from './identity.js';

// Which base image each image is built from: `built_from` relations (image -> base image). Fixing a
// base image fixes the OS layer of every image built on it once they are rebuilt, so mobilization
// asks its owner, once, rather than each image's. An image has one base: the latest claim, from a
// CMDB import or a scanner report's OCI labels, replaces the one before.

type Tx = postgres.TransactionSql;

/** The base image as an asset: the same identity as a scanned image of that reference. */
export function stageBaseImage(base: BaseImage): StagedAsset {
  return stageContextIdentifiers('container_image', base.image, { image: base.image, imageDigest: base.digest });
}

/**
 * Records each image's base (image asset id -> base image asset id), replacing any other base it
 * had. Of two links for one image in the same call, the last wins; an image named as its own base
 * is ignored.
 */
export async function recordBaseImages(tx: Tx, links: ReadonlyArray<readonly [number, number]>, source: string): Promise<number> {
  if (links.length === 0) return 0;
  const [row] = await tx<{ n: number }[]>`
    with incoming as (
      select distinct on (image_id) image_id, base_id
      from unnest(${tx.array(links.map((l) => l[0]))}::bigint[], ${tx.array(links.map((l) => l[1]))}::bigint[])
           with ordinality as x(image_id, base_id, n)
      where image_id <> base_id
      order by image_id, n desc
    ),
    replaced as (
      delete from asset_relations r using incoming i
      where r.asset_id = i.image_id and r.relation = 'built_from' and r.target_id <> i.base_id
    ),
    recorded as (
      insert into asset_relations (asset_id, relation, target_id, source)
      select image_id, 'built_from', base_id, ${source} from incoming
      on conflict (asset_id, relation, target_id) do update set source = excluded.source
      returning 1
    )
    select count(*)::int as n from recorded`;
  return row!.n;
}

/**
 * The bases a scanner report's images name (scanned asset key -> base), found or created as assets
 * and linked. The bases are not marked scanned: the report only names them.
 */
export async function recordScannedBaseImages(
  tx: Tx,
  scanned: ReadonlyMap<string, number>,
  bases: ReadonlyMap<string, BaseImage>,
  source: string,
): Promise<number> {
  if (bases.size === 0) return 0;
  const staged = [...bases].map(([imageKey, base]) => [imageKey, stageBaseImage(base)] as const);
  // Identifiers a report gives are the scan's, as for the scanned assets themselves.
  const baseIds = await resolveAssets(tx, staged.map(([, s]) => s), 'scan');
  const links = staged.map(([imageKey, s]) => [scanned.get(imageKey)!, baseIds.get(s.assetKey)!] as const);
  return recordBaseImages(tx, links, source);
}

export interface BaseImageAsset {
  id: number;
  assetKey: string;
  name: string;
  /** null: the base image has no owner yet (an orphan). */
  owner: string | null;
}

/** Each given image's base image asset, with its owner; images with no known base are absent. */
export async function baseImagesOf(sql: Sql, assetIds: readonly number[]): Promise<Map<number, BaseImageAsset>> {
  if (assetIds.length === 0) return new Map();
  const rows = await sql<{ image_id: string; id: string; asset_key: string; name: string; owner: string | null }[]>`
    select r.asset_id as image_id, b.id, b.asset_key, b.name, b.owner
    from asset_relations r join assets b on b.id = r.target_id
    where r.relation = 'built_from' and r.asset_id = any(${sql.array([...assetIds])}::bigint[])`;
  return new Map(rows.map((r) => [Number(r.image_id), { id: Number(r.id), assetKey: r.asset_key, name: r.name, owner: r.owner }]));
}
