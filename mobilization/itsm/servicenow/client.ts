/** Small typed client for the ServiceNow Table API (incident and sys_user). */

export const IncidentState = {
  New: '1',
  InProgress: '2',
  OnHold: '3',
  Resolved: '6',
  Closed: '7',
  Canceled: '8',
} as const;

/** Writable incident columns; custom columns are u_-prefixed on a real instance. */
export interface IncidentFields {
  short_description?: string;
  description?: string;
  correlation_id?: string;
  correlation_display?: string;
  /** sys_id (a user_name also resolves on the simulator) */
  assigned_to?: string;
  assignment_group?: string;
  caller_id?: string;
  urgency?: string;
  impact?: string;
  state?: string;
  category?: string;
  subcategory?: string;
  close_code?: string;
  close_notes?: string;
  cmdb_ci?: string;
  /** "0" normal .. "3" overdue */
  escalation?: string;
  /** comma-separated sys_user sys_ids */
  watch_list?: string;
  /** appends a work note (journal entry) */
  work_notes?: string;
  /** appends an additional comment (customer visible) */
  comments?: string;
  [custom: `u_${string}`]: string | undefined;
}

/** An incident as read back; reference columns are flattened to their sys_id. */
export interface Incident {
  sys_id: string;
  number: string;
  state: string;
  correlation_id: string;
  correlation_display: string;
  short_description: string;
  description: string;
  assigned_to: string;
  assignment_group: string;
  caller_id: string;
  opened_by: string;
  urgency: string;
  impact: string;
  priority: string;
  category: string;
  close_code: string;
  close_notes: string;
  opened_at: string;
  resolved_at: string;
  closed_at: string;
  escalation: string;
  watch_list: string;
  active: string;
  sys_created_on: string;
  sys_updated_on: string;
  sys_created_by: string;
  sys_updated_by: string;
  sys_mod_count: string;
  [field: string]: string;
}

export interface User {
  sys_id: string;
  user_name: string;
  name: string;
  email: string;
  title: string;
  /** sys_id of the manager, or '' */
  manager: string;
  active: string;
  [field: string]: string;
}

const INCIDENT_KEYS = [
  'sys_id', 'number', 'state', 'correlation_id', 'correlation_display', 'short_description', 'description',
  'assigned_to', 'assignment_group', 'caller_id', 'opened_by', 'urgency', 'impact', 'priority', 'category',
  'close_code', 'close_notes', 'opened_at', 'resolved_at', 'closed_at', 'escalation', 'watch_list', 'active',
  'sys_created_on', 'sys_updated_on', 'sys_created_by', 'sys_updated_by', 'sys_mod_count',
] as const;
const USER_KEYS = ['sys_id', 'user_name', 'name', 'email', 'title', 'manager', 'active'] as const;

export interface ServiceNowClientOptions {
  baseUrl: string;
  user: string;
  password: string;
  incidentTable?: string;
  /** retries after the first attempt */
  maxRetries?: number;
  retryBaseMs?: number;
  maxRetryDelayMs?: number;
  /** per request */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface QueryOptions {
  fields?: string[];
  limit?: number;
  offset?: number;
}

export class ServiceNowError extends Error {
  override name = 'ServiceNowError';
  constructor(
    /** HTTP status; 0 when no response arrived (network error, timeout) */
    readonly status: number,
    readonly method: string,
    readonly path: string,
    /** error.message from the ServiceNow body, or a description of the failure */
    readonly serviceNowMessage: string,
    readonly detail: string | undefined,
    /** true for 429, 5xx and network errors: worth trying again later */
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(
      `ServiceNow ${method} ${path} failed${status ? ` with ${status}` : ''}: ${serviceNowMessage}${detail ? ` (${detail})` : ''}`,
      options,
    );
  }
}

// ---------------------------------------------------------------------------
// Encoded queries

export type QueryOperator =
  | '=' | '!=' | 'LIKE' | 'NOT LIKE' | 'STARTSWITH' | 'ENDSWITH' | 'IN' | 'NOT IN'
  | 'ISEMPTY' | 'ISNOTEMPTY' | '>' | '<' | '>=' | '<=';

export type QueryValue = string | number | boolean;
export type QueryCondition = readonly [field: string, operator: QueryOperator, value?: QueryValue | readonly QueryValue[]];

export interface EncodeQueryOptions {
  orderBy?: string;
  orderByDesc?: string;
}

const FIELD_PATH_RE = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/;
const SYS_ID_RE = /^[0-9a-f]{32}$/;

function checkValue(v: QueryValue, field: string, list: boolean): string {
  const s = String(v);
  // "^" would end the condition and let the value inject further conditions; there is no escape for it.
  if (s.includes('^')) throw new RangeError(`query value for ${field} must not contain "^"`);
  if (list && s.includes(',')) throw new RangeError(`IN list value for ${field} must not contain ","`);
  // ServiceNow evaluates javascript: values server side.
  if (/^\s*javascript:/i.test(s)) throw new RangeError(`query value for ${field} must not start with "javascript:"`);
  return s;
}

/** Builds an encoded query (conditions ANDed), refusing values that would change its meaning. */
export function encodeQuery(conditions: readonly QueryCondition[], options: EncodeQueryOptions = {}): string {
  const parts = conditions.map(([field, op, value]) => {
    if (!FIELD_PATH_RE.test(field)) throw new RangeError(`invalid field name ${JSON.stringify(field)}`);
    if (op === 'ISEMPTY' || op === 'ISNOTEMPTY') {
      if (value !== undefined && value !== '') throw new RangeError(`${op} takes no value`);
      return `${field}${op}`;
    }
    if (value === undefined) throw new RangeError(`${field}${op} needs a value`);
    if (op === 'IN' || op === 'NOT IN') {
      const list = (Array.isArray(value) ? value : [value]) as readonly QueryValue[];
      if (list.length === 0) throw new RangeError(`${op} needs at least one value`);
      return `${field}${op}${list.map((v) => checkValue(v, field, true)).join(',')}`;
    }
    if (Array.isArray(value)) throw new RangeError(`${op} takes a single value`);
    return `${field}${op}${checkValue(value as QueryValue, field, false)}`;
  });
  for (const [kw, f] of [['ORDERBY', options.orderBy], ['ORDERBYDESC', options.orderByDesc]] as const) {
    if (f === undefined) continue;
    if (!FIELD_PATH_RE.test(f)) throw new RangeError(`invalid order field ${JSON.stringify(f)}`);
    parts.push(`${kw}${f}`);
  }
  return parts.join('^');
}

// ---------------------------------------------------------------------------

function flatten(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [k, v] of Object.entries(raw)) {
    if (v === null || v === undefined) out[k] = '';
    else if (typeof v === 'object' && 'value' in v) out[k] = String((v as { value: unknown }).value ?? '');
    else out[k] = typeof v === 'string' ? v : String(v);
  }
  return out;
}

function withDefaults<T>(rec: Record<string, string>, keys: readonly string[]): T {
  for (const k of keys) if (!(k in rec)) rec[k] = '';
  return rec as T;
}

const toIncident = (raw: unknown) => withDefaults<Incident>(flatten(raw), INCIDENT_KEYS);
const toUser = (raw: unknown) => withDefaults<User>(flatten(raw), USER_KEYS);

function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (/^\d+$/.test(h)) return Number(h) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface SendOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
}

export class ServiceNowClient {
  private readonly baseUrl: string;
  private readonly auth: string;
  private readonly incidentTable: string;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ServiceNowClientOptions) {
    this.baseUrl = new URL(options.baseUrl).toString().replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${options.user}:${options.password}`, 'utf8').toString('base64')}`;
    this.incidentTable = options.incidentTable ?? 'incident';
    if (!/^[a-z0-9_]+$/.test(this.incidentTable)) throw new RangeError(`invalid table name ${this.incidentTable}`);
    this.maxRetries = options.maxRetries ?? 5;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /**
   * Idempotent on correlation_id: returns the existing incident if there is one. Each retry
   * looks again before posting, so a POST that timed out after the instance committed it is
   * not duplicated. (Two concurrent callers can still race; serialise per correlation_id.)
   */
  async createIncident(fields: IncidentFields & { correlation_id: string }): Promise<Incident> {
    const correlationId = fields.correlation_id;
    if (typeof correlationId !== 'string' || correlationId === '') throw new RangeError('correlation_id is required');
    encodeQuery([['correlation_id', '=', correlationId]]); // validates before any request
    return this.withRetry(async () => {
      const existing = await this.findByCorrelationOnce(correlationId);
      if (existing) return existing;
      const res = await this.send('POST', this.tablePath(this.incidentTable), { body: fields });
      return toIncident(res.result);
    });
  }

  /** Where a person opens the incident in the instance's UI. */
  incidentUrl(sysId: string): string {
    return `${this.baseUrl}/${this.incidentTable}.do?sys_id=${encodeURIComponent(sysId)}`;
  }

  async getIncident(sysId: string): Promise<Incident | null> {
    const raw = await this.getRecord(this.incidentTable, sysId);
    return raw === null ? null : toIncident(raw);
  }

  findIncidentByCorrelationId(correlationId: string): Promise<Incident | null> {
    encodeQuery([['correlation_id', '=', correlationId]]);
    return this.withRetry(() => this.findByCorrelationOnce(correlationId));
  }

  /** PATCH; a work_notes or comments value appends a journal entry. */
  async updateIncident(sysId: string, fields: IncidentFields): Promise<Incident> {
    const res = await this.withRetry(() =>
      this.send('PATCH', this.tablePath(this.incidentTable, sysId), { body: fields }),
    );
    return toIncident(res.result);
  }

  addWorkNote(sysId: string, note: string): Promise<Incident> {
    return this.updateIncident(sysId, { work_notes: note });
  }

  /** `query` is an encoded query; build it with encodeQuery(). With `fields`, only those are populated. */
  async queryIncidents(query: string, options: QueryOptions = {}): Promise<Incident[]> {
    const res = await this.withRetry(() =>
      this.send('GET', this.tablePath(this.incidentTable), {
        query: {
          sysparm_query: query,
          sysparm_fields: options.fields?.join(','),
          sysparm_limit: options.limit === undefined ? undefined : String(options.limit),
          sysparm_offset: options.offset === undefined ? undefined : String(options.offset),
        },
      }),
    );
    const rows = Array.isArray(res.result) ? res.result : [];
    return options.fields ? rows.map((r) => flatten(r) as Incident) : rows.map(toIncident);
  }

  /** By sys_id (32 hex), otherwise by user_name or e-mail. */
  async getUser(sysIdOrUserName: string): Promise<User | null> {
    if (SYS_ID_RE.test(sysIdOrUserName)) {
      const raw = await this.getRecord('sys_user', sysIdOrUserName);
      return raw === null ? null : toUser(raw);
    }
    const q = `${encodeQuery([['user_name', '=', sysIdOrUserName]])}^OR${encodeQuery([['email', '=', sysIdOrUserName]])}`;
    const res = await this.withRetry(() =>
      this.send('GET', this.tablePath('sys_user'), { query: { sysparm_query: q, sysparm_limit: '10' } }),
    );
    const rows = (Array.isArray(res.result) ? res.result : []).map(toUser);
    // Prefer an exact user_name match: the instance compares case-insensitively.
    return rows.find((u) => u.user_name === sysIdOrUserName) ?? rows.find((u) => u.email === sysIdOrUserName) ?? rows[0] ?? null;
  }

  /** The user first, then the manager, the manager's manager...; stops at a cycle or after 20 levels. */
  async managementChain(userSysIdOrName: string): Promise<User[]> {
    const chain: User[] = [];
    const seen = new Set<string>();
    let user = await this.getUser(userSysIdOrName);
    while (user && !seen.has(user.sys_id) && chain.length < 20) {
      chain.push(user);
      seen.add(user.sys_id);
      user = user.manager ? await this.getUser(user.manager) : null;
    }
    return chain;
  }

  // ---- internals -----------------------------------------------------------

  private tablePath(table: string, sysId?: string): string {
    if (sysId === undefined) return `/api/now/table/${table}`;
    if (!SYS_ID_RE.test(sysId)) throw new RangeError(`invalid sys_id ${JSON.stringify(sysId)}`);
    return `/api/now/table/${table}/${sysId}`;
  }

  private async getRecord(table: string, sysId: string): Promise<unknown> {
    try {
      const res = await this.withRetry(() => this.send('GET', this.tablePath(table, sysId)));
      return res.result;
    } catch (err) {
      if (err instanceof ServiceNowError && err.status === 404) return null;
      throw err;
    }
  }

  private async findByCorrelationOnce(correlationId: string): Promise<Incident | null> {
    const query = encodeQuery([['correlation_id', '=', correlationId]], { orderBy: 'sys_created_on' });
    const res = await this.send('GET', this.tablePath(this.incidentTable), {
      query: { sysparm_query: query, sysparm_limit: '10' },
    });
    const rows = (Array.isArray(res.result) ? res.result : []).map(toIncident);
    // Exact match only: the instance matches case-insensitively and drops conditions it cannot read.
    return rows.find((r) => r.correlation_id === correlationId) ?? null;
  }

  private async withRetry<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (!(err instanceof ServiceNowError) || !err.retryable || attempt >= this.maxRetries) throw err;
        await new Promise((r) => setTimeout(r, this.retryDelay(attempt, err)));
      }
    }
  }

  private retryDelay(attempt: number, err: ServiceNowError): number {
    if (err.retryAfterMs !== undefined) return Math.min(err.retryAfterMs, this.maxRetryDelayMs);
    const ceiling = Math.min(this.maxRetryDelayMs, this.retryBaseMs * 2 ** attempt);
    // "Equal jitter": never zero, never in lock-step with other clients.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** One attempt; failures become a ServiceNowError that says whether to retry. */
  private async send(method: string, path: string, options: SendOptions = {}): Promise<{ result: unknown }> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const headers: Record<string, string> = { Authorization: this.auth, Accept: 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new ServiceNowError(0, method, path, `request failed: ${msg}`, undefined, true, undefined, { cause });
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      let message = res.statusText || 'HTTP error';
      let detail: string | undefined;
      try {
        const body = JSON.parse(text) as { error?: { message?: unknown; detail?: unknown } };
        if (typeof body.error?.message === 'string') message = body.error.message;
        if (typeof body.error?.detail === 'string') detail = body.error.detail;
      } catch {
        // not JSON (a proxy's error page): keep the status text
      }
      const retryable = res.status === 429 || res.status >= 500;
      const retryAfter = retryable ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
      throw new ServiceNowError(res.status, method, path, message, detail, retryable, retryAfter);
    }
    if (res.status === 204 || text === '') return { result: undefined };
    try {
      return JSON.parse(text) as { result: unknown };
    } catch {
      // e.g. the HTML login page of a hibernating developer instance
      throw new ServiceNowError(res.status, method, path, 'response is not JSON', text.slice(0, 200), false);
    }
  }
}
