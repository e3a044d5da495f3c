/** Small typed client for the Jira Cloud REST API v3: the issue, transition, comment, watcher and user endpoints golden tickets use. */

export interface JiraUser {
  accountId: string;
  accountType?: string;
  displayName: string;
  /** Hidden by the user's privacy settings on many sites. */
  emailAddress?: string;
  active: boolean;
}

export type StatusCategoryKey = 'new' | 'indeterminate' | 'done';

export interface JiraStatus {
  id: string;
  name: string;
  statusCategory: { id?: number; key: StatusCategoryKey; name: string };
}

export interface JiraIssueFields {
  summary: string;
  status: JiraStatus;
  assignee: JiraUser | null;
  priority?: { id?: string; name: string } | null;
  labels: string[];
  created: string;
  /** e.g. 2026-12-07T14:01:43.123+0000 */
  updated: string;
  project: { id: string; key: string; name?: string };
  issuetype: { id?: string; name: string };
  [field: string]: unknown;
}

export interface JiraIssue {
  id: string;
  key: string;
  self: string;
  fields: JiraIssueFields;
}

export interface JiraTransition {
  id: string;
  name: string;
  to: JiraStatus;
}

/** Atlassian Document Format, the body of descriptions and comments in API v3. */
export interface AdfDocument {
  type: 'doc';
  version: 1;
  content: unknown[];
}

/** Plain text as ADF: one paragraph per line (ADF text nodes must not be empty). */
export function adf(text: string): AdfDocument {
  const content = text.split('\n').map((line) => (line === '' ? { type: 'paragraph', content: [] } : { type: 'paragraph', content: [{ type: 'text', text: line }] }));
  return { type: 'doc', version: 1, content };
}

/** The text of an ADF document (paragraphs joined by new lines). */
export function adfText(doc: unknown): string {
  const walk = (n: unknown): string => {
    if (typeof n !== 'object' || n === null) return '';
    const node = n as { type?: string; text?: string; content?: unknown[] };
    if (node.type === 'text') return node.text ?? '';
    const inner = (node.content ?? []).map(walk);
    return node.type === 'doc' ? inner.join('\n') : inner.join('');
  };
  return walk(doc);
}

/** Jira's `updated` in milliseconds (its offset has no colon, e.g. +0000). */
export function jiraTimeMs(value: string): number {
  const ms = Date.parse(value.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  return Number.isNaN(ms) ? 0 : ms;
}

export interface JiraClientOptions {
  /** https://<site>.atlassian.net */
  baseUrl: string;
  email: string;
  apiToken: string;
  /** retries after the first attempt */
  maxRetries?: number;
  retryBaseMs?: number;
  maxRetryDelayMs?: number;
  /** per request */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class JiraError extends Error {
  override name = 'JiraError';
  constructor(
    /** HTTP status; 0 when no response arrived (network error, timeout) */
    readonly status: number,
    readonly method: string,
    readonly path: string,
    /** errorMessages of Jira's body */
    readonly errorMessages: string[],
    /** errors of Jira's body: field -> message */
    readonly errors: Record<string, string>,
    /** true for 429, 5xx and network errors */
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    const what = [...errorMessages, ...Object.entries(errors).map(([f, m]) => `${f}: ${m}`)].join('; ') || 'HTTP error';
    super(`Jira ${method} ${path} failed${status ? ` with ${status}` : ''}: ${what}`, options);
  }
}

function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (/^\d+$/.test(h)) return Number(h) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const ISSUE_FIELDS = ['summary', 'status', 'assignee', 'priority', 'labels', 'created', 'updated', 'project', 'issuetype'];

export class JiraClient {
  readonly baseUrl: string;
  private readonly auth: string;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: JiraClientOptions) {
    this.baseUrl = new URL(options.baseUrl).toString().replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${options.email}:${options.apiToken}`, 'utf8').toString('base64')}`;
    this.maxRetries = options.maxRetries ?? 5;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Where a person opens the issue. */
  browseUrl(key: string): string {
    return `${this.baseUrl}/browse/${encodeURIComponent(key)}`;
  }

  myself(): Promise<JiraUser> {
    return this.request('GET', '/rest/api/3/myself') as Promise<JiraUser>;
  }

  /** Users whose display name or e-mail matches `query`. */
  async searchUsers(query: string, maxResults = 10): Promise<JiraUser[]> {
    const res = await this.request('GET', '/rest/api/3/user/search', { query: { query, maxResults: String(maxResults) } });
    return Array.isArray(res) ? (res as JiraUser[]) : [];
  }

  getUser(accountId: string): Promise<JiraUser | null> {
    return this.orNull(this.request('GET', '/rest/api/3/user', { query: { accountId } }) as Promise<JiraUser>);
  }

  /** POST /rest/api/3/issue: `fields` as Jira names them. Not retried here: the caller looks for the issue before trying again. */
  createIssue(body: { fields: Record<string, unknown>; properties?: Array<{ key: string; value: unknown }> }): Promise<{ id: string; key: string; self: string }> {
    return this.request('POST', '/rest/api/3/issue', { body, retry: false }) as Promise<{ id: string; key: string; self: string }>;
  }

  getIssue(idOrKey: string, fields: string[] = ISSUE_FIELDS): Promise<JiraIssue | null> {
    return this.orNull(this.request('GET', `/rest/api/3/issue/${this.ref(idOrKey)}`, { query: { fields: fields.join(',') } }) as Promise<JiraIssue>);
  }

  async editIssue(idOrKey: string, body: { fields?: Record<string, unknown>; update?: Record<string, unknown[]> }): Promise<void> {
    await this.request('PUT', `/rest/api/3/issue/${this.ref(idOrKey)}`, { body });
  }

  /** An issue entity property's value; null when the issue has none by that key. */
  async getProperty(idOrKey: string, propertyKey: string): Promise<unknown> {
    const res = await this.orNull(this.request('GET', `/rest/api/3/issue/${this.ref(idOrKey)}/properties/${encodeURIComponent(propertyKey)}`) as Promise<{ value?: unknown }>);
    return res?.value ?? null;
  }

  async transitions(idOrKey: string): Promise<JiraTransition[]> {
    const res = (await this.request('GET', `/rest/api/3/issue/${this.ref(idOrKey)}/transitions`)) as { transitions?: JiraTransition[] };
    return res.transitions ?? [];
  }

  async transitionIssue(idOrKey: string, transitionId: string): Promise<void> {
    await this.request('POST', `/rest/api/3/issue/${this.ref(idOrKey)}/transitions`, { body: { transition: { id: transitionId } } });
  }

  addComment(idOrKey: string, text: string): Promise<{ id: string }> {
    return this.request('POST', `/rest/api/3/issue/${this.ref(idOrKey)}/comment`, { body: { body: adf(text) } }) as Promise<{ id: string }>;
  }

  async comments(idOrKey: string): Promise<Array<{ id: string; body: unknown; created: string }>> {
    const res = (await this.request('GET', `/rest/api/3/issue/${this.ref(idOrKey)}/comment`, { query: { maxResults: '100', orderBy: '-created' } })) as {
      comments?: Array<{ id: string; body: unknown; created: string }>;
    };
    return res.comments ?? [];
  }

  async watchers(idOrKey: string): Promise<JiraUser[]> {
    const res = (await this.request('GET', `/rest/api/3/issue/${this.ref(idOrKey)}/watchers`)) as { watchers?: JiraUser[] };
    return res.watchers ?? [];
  }

  /** The body is the account id as a JSON string, as Jira expects. */
  async addWatcher(idOrKey: string, accountId: string): Promise<void> {
    await this.request('POST', `/rest/api/3/issue/${this.ref(idOrKey)}/watchers`, { body: accountId });
  }

  /** GET /rest/api/3/search/jql, following nextPageToken up to `max` issues. */
  async searchJql(jql: string, fields: string[] = ISSUE_FIELDS, max = 100): Promise<JiraIssue[]> {
    const out: JiraIssue[] = [];
    let nextPageToken: string | undefined;
    do {
      const res = (await this.request('GET', '/rest/api/3/search/jql', {
        query: { jql, fields: fields.join(','), maxResults: String(Math.min(100, max - out.length)), nextPageToken },
      })) as { issues?: JiraIssue[]; nextPageToken?: string; isLast?: boolean };
      out.push(...(res.issues ?? []));
      // The last page has no token (Jira Cloud omits it rather than sending null); isLast is not always sent.
      nextPageToken = res.isLast === true ? undefined : res.nextPageToken;
    } while (nextPageToken && out.length < max);
    return out;
  }

  // ---- internals -----------------------------------------------------------

  private ref(idOrKey: string): string {
    if (!/^(?:\d+|[A-Z][A-Z0-9_]*-\d+)$/.test(idOrKey)) throw new RangeError(`invalid issue id or key ${JSON.stringify(idOrKey)}`);
    return idOrKey;
  }

  private async orNull<T>(p: Promise<T>): Promise<T | null> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof JiraError && err.status === 404) return null;
      throw err;
    }
  }

  private async request(
    method: string,
    path: string,
    { query, body, retry = true }: { query?: Record<string, string | undefined>; body?: unknown; retry?: boolean } = {},
  ): Promise<unknown> {
    const attempts = retry ? this.maxRetries + 1 : 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(method, path, query, body);
      } catch (err) {
        if (!(err instanceof JiraError) || !err.retryable || attempt + 1 >= attempts) throw err;
        const backoff = Math.min(this.maxRetryDelayMs, this.retryBaseMs * 2 ** attempt);
        await new Promise((r) => setTimeout(r, Math.min(this.maxRetryDelayMs, err.retryAfterMs ?? backoff)));
      }
    }
  }

  private async send(method: string, path: string, query: Record<string, string | undefined> | undefined, body: unknown): Promise<unknown> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers: { authorization: this.auth, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new JiraError(0, method, path, [`request failed: ${msg}`], {}, true, undefined, { cause });
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      let messages: string[] = [res.statusText || 'HTTP error'];
      let errors: Record<string, string> = {};
      try {
        const b = JSON.parse(text) as { errorMessages?: unknown; errors?: unknown };
        if (Array.isArray(b.errorMessages)) messages = b.errorMessages.map(String);
        if (b.errors && typeof b.errors === 'object') errors = Object.fromEntries(Object.entries(b.errors).map(([k, v]) => [k, String(v)]));
      } catch {
        // not JSON (Jira answers 401 in plain text): keep the status text
      }
      const retryable = res.status === 429 || res.status >= 500;
      throw new JiraError(res.status, method, path, messages, errors, retryable, retryable ? parseRetryAfter(res.headers.get('retry-after')) : undefined);
    }
    if (res.status === 204 || text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new JiraError(res.status, method, path, ['response is not JSON', text.slice(0, 200)], {}, false);
    }
  }
}
