import { ContextError, type ContextRecord } from './model.js';
import { readHead } from './common.js';
import { cmdbCsv } from './cmdb-csv/index.js';
import { serviceNowCmdb } from './servicenow-cmdb/index.js';
import { cloudInventory } from './cloud-inventory/index.js';
import { securityGroups } from './security-groups/index.js';
import { edrRuntime } from './edr-runtime/index.js';
import { networkSegments } from './network-segments/index.js';

/** One context format: recognise it from the first bytes, then stream context records. */
export interface ContextSource {
  source: string;
  description: string;
  detect(head: string): boolean;
  parse(file: string): AsyncIterable<ContextRecord>;
}

/** Every supported context format. A new one is one folder and one line here. */
export const contextSources: readonly ContextSource[] = [cmdbCsv, serviceNowCmdb, cloudInventory, securityGroups, edrRuntime, networkSegments];

const supported = () => contextSources.map((s) => s.source).join(', ');

/** Picks the source for a context file: the one named, or the first that recognises the file. */
export async function contextSourceFor(file: string, displayName: string, source?: string): Promise<ContextSource> {
  if (source) {
    const named = contextSources.find((s) => s.source === source);
    if (!named) throw new ContextError(displayName, source, undefined, `unknown context source; supported: ${supported()}`);
    return named;
  }
  let head: string;
  try {
    head = await readHead(file);
  } catch (err) {
    throw new ContextError(displayName, 'unknown', undefined, `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (head.replace(/^\uFEFF/, '').trim() === '') throw new ContextError(displayName, 'unknown', undefined, 'the file is empty');
  const detected = contextSources.find((s) => s.detect(head));
  if (!detected) throw new ContextError(displayName, 'unknown', undefined, `context format not recognised; supported: ${supported()}`);
  return detected;
}

export { pullServiceNowCmdb, type ServiceNowConnection, type PullOptions } from './servicenow-cmdb/index.js';
export { ContextError, type ContextRecord, type ContextAsset, type ExposureRule, type RuntimeEvidence, type NetworkFlow, type AssetIdentifiers, type Criticality } from './model.js';
