import { fingerprint } from '../../discovery/store/ingest.js';
import type { NormalizedFinding } from '../../discovery/model.js';

// Connector tests run without a database, so nothing resolves asset keys to asset ids; one id per
// distinct key (the same for the whole test file) stands in for it, as resolution does for new assets.
const assetIds = new Map<string, number>();

/** The fingerprint ingest would store for a parsed finding. */
export function storedFingerprint(f: NormalizedFinding): string {
  let id = assetIds.get(f.asset.assetKey);
  if (id === undefined) assetIds.set(f.asset.assetKey, (id = assetIds.size + 1));
  return fingerprint(id, f);
}
