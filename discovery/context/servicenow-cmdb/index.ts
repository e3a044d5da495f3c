import type { ContextSource } from '../index.js';
import type { ContextRecord } from '../model.js';
import type { JsonEvent } from '../../streams/json.js';
import { isObject } from '../../connectors/common/json.js';
import { isArrayOrNull, jsonStart } from '../../connectors/shared/json-report.js';
import { jsonContextRecords, type PathFail } from '../parse-frame.js';
import { SOURCE, mapCi } from './map.js';

// The JSON body of a ServiceNow Table API read of cmdb_ci_server (or cmdb_ci and its children):
// `{"result": [ ...CI records... ]}`, saved to a file. Streamed: a 100k-CI export is fine.

export const serviceNowCmdb: ContextSource = {
  source: SOURCE,
  description: 'ServiceNow Table API read of cmdb_ci_server / cmdb_ci ({"result": [...]}): servers with owner, criticality, environment',
  detect(head) {
    const start = jsonStart(head);
    if (!/^\{\s*"result"\s*:\s*\[/.test(start)) return false;
    return /^\{\s*"result"\s*:\s*\[\s*\]/.test(start) || /"sys_id"\s*:/.test(head) || /"sys_class_name"\s*:/.test(head);
  },
  parse(file) {
    const notObject = 'expected a JSON object {"result": [...]}';
    return jsonContextRecords(file, { source: SOURCE, select: ['result.*', 'error'], notObject }, records);
  },
};

async function* records(events: AsyncIterable<JsonEvent>, fail: PathFail): AsyncGenerator<ContextRecord> {
  let sawResult = false;
  for await (const event of events) {
    const { path } = event;
    if (path[0] === 'error' && event.kind === 'value') {
      // A saved error answer instead of data: say so rather than "no result".
      const message = isObject(event.value) && typeof event.value.message === 'string' ? event.value.message : JSON.stringify(event.value);
      fail(['error'], `the file is a ServiceNow error response: ${message}`);
    }
    if (path.length === 1) {
      sawResult = true;
      if (!isArrayOrNull(event)) fail(path, 'expected an array');
      continue;
    }
    if (event.kind !== 'value') continue;
    const mapped = mapCi(event.value, 'host', (field, reason) => fail(field ? [...path, field] : path, reason));
    if (mapped.asset) yield { type: 'asset', asset: mapped.asset };
  }
  if (!sawResult) fail(['result'], 'missing: not a ServiceNow Table API response');
}

export { pullServiceNowCmdb, type ServiceNowConnection, type PullOptions } from './pull.js';
