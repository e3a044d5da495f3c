import { isObject } from '../../connectors/common/json.js';
import { ContextError, type ContextRecord } from '../model.js';
import { SOURCE, mapCi } from './map.js';

// Reads CIs straight from a ServiceNow instance over the Table API, page by page, and resolves
// owner references to sys_user user_names (the identity ServiceNow assignments use).

export interface ServiceNowConnection {
  baseUrl: string;
  user: string;
  password: string;
}

export interface PullOptions {
  /** Records per request (default 100). */
  pageSize?: number;
  /** An encoded query to narrow the read, e.g. `operational_status=1`. */
  query?: string;
  signal?: AbortSignal;
}

const PAGE_SIZE = 100;
const ATTEMPTS = 4;
const MAX_RETRY_DELAY_MS = 30_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

export async function* pullServiceNowCmdb(
  client: ServiceNowConnection,
  table = 'cmdb_ci_server',
  options: PullOptions = {},
): AsyncIterable<ContextRecord> {
  const where = `servicenow:${table}`;
  const fail = (at: string | undefined, reason: string): never => {
    throw new ContextError(where, SOURCE, at, reason);
  };
  // The table name goes into the URL path.
  if (!/^[a-z0-9_]+$/.test(table)) fail(undefined, `invalid table name ${JSON.stringify(table)}`);
  const pageSize = options.pageSize ?? PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1) fail(undefined, `invalid page size ${pageSize}`);
  const base = client.baseUrl.replace(/\/+$/, '');
  const auth = `Basic ${Buffer.from(`${client.user}:${client.password}`).toString('base64')}`;

  /** GET with retries on throttling and transient failures; 404 is an answer, not an error. */
  async function get(path: string, at: string): Promise<unknown | undefined> {
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, { headers: { Authorization: auth, Accept: 'application/json' }, signal: options.signal });
      } catch (err) {
        if (options.signal?.aborted || attempt >= ATTEMPTS) return fail(at, `request failed: ${(err as Error).message}`);
        await sleep(250 * 2 ** attempt, options.signal);
        continue;
      }
      if (res.status === 404) {
        await res.arrayBuffer().catch(() => undefined);
        return undefined;
      }
      if (res.ok) {
        try {
          return await res.json();
        } catch {
          return fail(at, 'the response is not JSON');
        }
      }
      const body: unknown = await res.json().catch(() => undefined);
      const message = isObject(body) && isObject(body.error) && typeof body.error.message === 'string' ? `: ${body.error.message}` : '';
      const transient = res.status === 429 || res.status >= 500;
      if (!transient || attempt >= ATTEMPTS) return fail(at, `HTTP ${res.status}${message}`);
      const header = res.headers.get('retry-after');
      const retryAfter = header === null || header.trim() === '' ? NaN : Number(header);
      const delay = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : 250 * 2 ** attempt;
      await sleep(Math.min(delay, MAX_RETRY_DELAY_MS), options.signal);
    }
  }

  // One lookup per distinct owner per run.
  const users = new Map<string, Promise<string | undefined>>();
  const userName = (sysId: string): Promise<string | undefined> => {
    let hit = users.get(sysId);
    if (!hit) {
      hit = get(`/api/now/table/sys_user/${encodeURIComponent(sysId)}?sysparm_fields=user_name,email`, `sys_user/${sysId}`).then((body) => {
        const user = isObject(body) && isObject(body.result) ? body.result : undefined;
        const name = typeof user?.user_name === 'string' && user.user_name !== '' ? user.user_name : undefined;
        return name ?? (typeof user?.email === 'string' && user.email !== '' ? user.email : undefined);
      });
      users.set(sysId, hit);
    }
    return hit;
  };

  // Ordered by sys_id so records cannot shift between pages while they are read.
  const query = options.query ? `${options.query}^ORDERBYsys_id` : 'ORDERBYsys_id';
  for (let offset = 0; ; offset += pageSize) {
    const params = new URLSearchParams({ sysparm_limit: String(pageSize), sysparm_offset: String(offset), sysparm_query: query });
    const body = await get(`/api/now/table/${table}?${params.toString()}`, `offset ${offset}`);
    if (body === undefined) fail(`offset ${offset}`, 'HTTP 404');
    const page = isObject(body) && Array.isArray(body.result) ? body.result : fail(`offset ${offset}`, 'expected {"result": [...]}');
    for (const [i, rec] of page.entries()) {
      const at = `${table}[${offset + i}]`;
      const { asset } = mapCi(rec, table === 'cmdb_ci' ? 'other' : 'host', (field, reason) => fail(field ? `${at}.${field}` : at, reason));
      if (!asset) continue;
      if (asset.owner?.startsWith('sys_id:')) {
        // An owner that sys_user no longer has stays a sys_id: the DB side reports it as unresolved.
        asset.owner = (await userName(asset.owner.slice('sys_id:'.length))) ?? asset.owner;
      }
      yield { type: 'asset', asset };
    }
    if (page.length < pageSize) return;
  }
}
