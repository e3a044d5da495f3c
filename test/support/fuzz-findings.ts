import type { NormalizedFinding } from '../../discovery/connectors/index.js';
import { withoutNul } from '../../discovery/store/ingest.js';

// What the connector fuzzer holds every finding to: the fields the store keys on are strings,
// non-empty where identity needs them, even after ingest removes NUL bytes.

const SEVERITIES = new Set(['critical', 'high', 'medium', 'low', 'info', 'unknown']);
const KINDS = new Set(['vulnerability', 'misconfiguration', 'secret']);
const ASSET_KINDS = new Set(['container_image', 'filesystem', 'repository', 'host', 'other']);
const OPTIONAL_TEXT = ['fixedVersion', 'cvssVector', 'title', 'description', 'ecosystem', 'manifest', 'sourcePackage', 'vendorStatus', 'packageClass', 'fixSource'] as const;

/** What is wrong with a finding as the store receives it (NUL removed by ingest), or nothing. */
export function findingProblems(raw: NormalizedFinding): string[] {
  const problems: string[] = [];
  const f = withoutNul(raw);
  const text = (value: unknown, field: string, nonEmpty: boolean) => {
    if (typeof value !== 'string') problems.push(`${field} is ${typeof value}, not a string`);
    else if (nonEmpty && value.trim() === '') problems.push(`${field} is empty`);
  };
  text(f.asset?.assetKey, 'asset.assetKey', true);
  text(f.asset?.name, 'asset.name', true);
  if (typeof f.asset?.assetKey === 'string' && !/^[a-z0-9]+:./.test(f.asset.assetKey)) problems.push(`asset.assetKey ${JSON.stringify(f.asset.assetKey.slice(0, 80))} has no name after its prefix`);
  if (!ASSET_KINDS.has(f.asset?.kind)) problems.push(`asset.kind ${String(f.asset?.kind)}`);
  if (!KINDS.has(f.kind)) problems.push(`kind ${String(f.kind)}`);
  text(f.issueId, 'issueId', true);
  text(f.component, 'component', false);
  text(f.version, 'version', false);
  text(f.location, 'location', false);
  if (!SEVERITIES.has(f.severity)) problems.push(`severity ${String(f.severity)}`);
  for (const field of OPTIONAL_TEXT) if (f[field] !== undefined) text(f[field], field, false);
  if (f.cvssScore !== undefined && !(Number.isFinite(f.cvssScore) && f.cvssScore >= 0 && f.cvssScore <= 10)) problems.push(`cvssScore ${f.cvssScore}`);
  for (const list of ['references', 'cwes'] as const) {
    const value = f[list];
    if (value !== undefined && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) problems.push(`${list} is not a list of strings`);
  }
  return problems;
}
