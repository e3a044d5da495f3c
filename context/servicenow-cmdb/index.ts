import { basename } from 'node:path';
import type { ContextSource } from '../index.js';
import { ContextError, type ContextRecord } from '../model.js';
import { streamJson, formatPath, type JsonPath } from '../../connectors/json-stream.js';
import { isObject } from '../../connectors/common/json.js';
import { asContextErrors, ensureNotEmpty } from '../common.js';
import { SOURCE, mapCi } from './map.js';

// The JSON body of a ServiceNow Table API read of cmdb_ci_server (or cmdb_ci and its children):
// `{"result": [ ...CI records... ]}`, saved to a file. Streamed: a 100k-CI export is fine.

export const serviceNowCmdb: ContextSource = {
  source: SOURCE,
  description: 'ServiceNow Table API read of cmdb_ci_server / cmdb_ci ({"result": [...]}): servers with owner, criticality, environment',
  detect(head) {
    const start = head.replace(/^\uFEFF/, '').trimStart();
    if (!/^\{\s*"result"\s*:\s*\[/.test(start)) return false;
    return /^\{\s*"result"\s*:\s*\[\s*\]/.test(start) || /"sys_id"\s*:/.test(head) || /"sys_class_name"\s*:/.test(head);
  },
  async *parse(file) {
    const display = basename(file);
    await ensureNotEmpty(file, display, SOURCE);
    yield* asContextErrors(SOURCE, records(file, display));
  },
};

async function* records(file: string, display: string): AsyncGenerator<ContextRecord> {
  const fail = (path: JsonPath, reason: string): never => {
    throw new ContextError(display, SOURCE, formatPath(path) || undefined, reason);
  };
  let sawResult = false;
  for await (const event of streamJson(file, { name: display, format: SOURCE, select: ['result.*', 'error'] })) {
    const { path } = event;
    if (path.length === 0) {
      if (event.kind === 'value' || event.type !== 'object') fail([], 'expected a JSON object {"result": [...]}');
      continue;
    }
    if (path[0] === 'error' && event.kind === 'value') {
      // A saved error answer instead of data: say so rather than "no result".
      const message = isObject(event.value) && typeof event.value.message === 'string' ? event.value.message : JSON.stringify(event.value);
      fail(['error'], `the file is a ServiceNow error response: ${message}`);
    }
    if (path.length === 1) {
      sawResult = true;
      if ((event.kind === 'value' && event.value !== null) || (event.kind === 'open' && event.type !== 'array')) fail(path, 'expected an array');
      continue;
    }
    if (event.kind !== 'value') continue;
    const mapped = mapCi(event.value, 'host', (field, reason) => fail(field ? [...path, field] : path, reason));
    if (mapped.asset) yield { type: 'asset', asset: mapped.asset };
  }
  if (!sawResult) fail(['result'], 'missing: not a ServiceNow Table API response');
}

export { pullServiceNowCmdb, type ServiceNowConnection, type PullOptions } from './pull.js';
