/**
 * Jira Cloud REST API v3 simulator: the subset golden tickets use (issues, transitions, comments,
 * watchers, entity properties, user search, JQL search), with Basic auth by e-mail and API token,
 * Jira's error bodies and status codes, a workflow with statuses and transition ids, and signed
 * admin webhooks on every change, so the platform can be developed and tested offline.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Hono, type Context } from 'hono';
import { serve } from '@hono/node-server';
import type { JiraUser, StatusCategoryKey } from './client.js';
import { signJiraWebhookBody } from './webhook-signature.js';

export interface JiraSimPersonSeed {
  displayName: string;
  emailAddress: string;
  active?: boolean;
}

export interface JiraSimProjectSeed {
  key: string;
  name: string;
  /** defaults to Task, Bug */
  issueTypes?: string[];
}

export interface JiraWebhookTarget {
  url: string;
  secret: string;
}

export interface JiraSimulatorOptions {
  /** JSON file; when set, every issue survives restarts. */
  stateFile?: string;
  /** The API user (Basic auth with e-mail and API token). */
  credentials: { email: string; apiToken: string };
  /** Site users, applied while there are none; defaults to the demo organisation's people. */
  users?: JiraSimPersonSeed[];
  projects?: JiraSimProjectSeed[];
  webhook?: JiraWebhookTarget;
  /** Id of the first issue (default 10001): simulated sites sharing one database must not hand out the same ids. */
  firstIssueId?: number;
}

export interface JiraSimulatedFault {
  status: number;
  count: number;
  retryAfterSeconds?: number;
  methods?: string[];
}

/** An issue as stored. */
export interface JiraSimIssue {
  id: string;
  key: string;
  projectKey: string;
  issueType: string;
  summary: string;
  description: unknown;
  statusId: string;
  assignee: string | null;
  reporter: string;
  priority: string;
  labels: string[];
  watchers: string[];
  properties: Record<string, unknown>;
  comments: Array<{ id: string; author: string; body: unknown; created: string; updated: string }>;
  created: string;
  updated: string;
  resolutiondate: string | null;
}

export interface JiraSimulator {
  app: Hono;
  readonly url: string;
  listen(port?: number, host?: string): Promise<{ url: string }>;
  close(): Promise<void>;
  issues(): JiraSimIssue[];
  users(): JiraUser[];
  injectFault(fault: JiraSimulatedFault): void;
  setWebhook(target: JiraWebhookTarget | undefined): void;
  webhooksIdle(): Promise<void>;
}

/** The demo organisation (the ServiceNow simulator seeds the same people). */
export const defaultJiraPeople: JiraSimPersonSeed[] = [
  { displayName: 'Morgan Blake', emailAddress: 'morgan.blake@example.com' },
  { displayName: 'Priya Natarajan', emailAddress: 'priya.natarajan@example.com' },
  { displayName: 'Jonas Weber', emailAddress: 'jonas.weber@example.com' },
  { displayName: 'Alex Romero', emailAddress: 'alex.romero@example.com' },
  { displayName: 'Sam Okafor', emailAddress: 'sam.okafor@example.com' },
];

export const defaultJiraProjects: JiraSimProjectSeed[] = [
  { key: 'CTEM', name: 'Exposure remediation' },
  { key: 'PAY', name: 'Payments' },
  { key: 'SEC', name: 'Security Operations' },
];

const CATEGORY: Record<StatusCategoryKey, { id: number; name: string; colorName: string }> = {
  new: { id: 2, name: 'To Do', colorName: 'blue-gray' },
  indeterminate: { id: 4, name: 'In Progress', colorName: 'yellow' },
  done: { id: 3, name: 'Done', colorName: 'green' },
};

/** The simulated workflow: every status reachable from every other (global transitions). */
export const SIM_STATUSES: ReadonlyArray<{ id: string; name: string; category: StatusCategoryKey; transition: { id: string; name: string } }> = [
  { id: '10000', name: 'To Do', category: 'new', transition: { id: '11', name: 'Back to To Do' } },
  { id: '3', name: 'In Progress', category: 'indeterminate', transition: { id: '21', name: 'Start Progress' } },
  { id: '10001', name: 'On Hold', category: 'indeterminate', transition: { id: '31', name: 'Put On Hold' } },
  { id: '5', name: 'Resolved', category: 'done', transition: { id: '41', name: 'Resolve' } },
  { id: '10002', name: 'Done', category: 'done', transition: { id: '51', name: 'Close' } },
];

export const SIM_PRIORITIES = [
  { id: '1', name: 'Highest' },
  { id: '2', name: 'High' },
  { id: '3', name: 'Medium' },
  { id: '4', name: 'Low' },
  { id: '5', name: 'Lowest' },
];

const WEBHOOK_ATTEMPTS = 5;
const WEBHOOK_FIRST_DELAY_MS = 200;
const WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 1024 * 1024;

/** Jira's timestamp form: 2026-12-07T14:01:43.123+0000. */
const jiraTime = (ms: number) => new Date(ms).toISOString().replace('Z', '+0000');
/** Stable account ids of the shape Jira uses (24 hex digits). */
const accountIdFor = (email: string) => createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 24);

interface SimState {
  users: JiraUser[];
  projects: Array<{ id: string; key: string; name: string; issueTypes: string[]; counter: number }>;
  issues: JiraSimIssue[];
  nextIssueId: number;
  nextCommentId: number;
  nextChangelogId: number;
  lastUpdatedMs: number;
}

function loadState(file: string | undefined, options: JiraSimulatorOptions): SimState {
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as SimState;
  const people = [...(options.users ?? defaultJiraPeople), { displayName: 'CTEM automation', emailAddress: options.credentials.email }];
  return {
    users: people.map((p) => ({ accountId: accountIdFor(p.emailAddress), accountType: 'atlassian', displayName: p.displayName, emailAddress: p.emailAddress, active: p.active ?? true })),
    projects: (options.projects ?? defaultJiraProjects).map((p, i) => ({ id: String(10000 + i), key: p.key, name: p.name, issueTypes: p.issueTypes ?? ['Task', 'Bug'], counter: 0 })),
    issues: [],
    nextIssueId: options.firstIssueId ?? 10001,
    nextCommentId: 10001,
    nextChangelogId: 10001,
    lastUpdatedMs: 0,
  };
}

type ChangeItem = { field: string; fieldtype: 'jira'; fieldId: string; from: string | null; fromString: string | null; to: string | null; toString: string | null };

export function createJiraSimulator(options: JiraSimulatorOptions): JiraSimulator {
  const { credentials, stateFile } = options;
  const state = loadState(stateFile, options);
  let webhook = options.webhook;
  const faults: Array<JiraSimulatedFault & { left: number }> = [];
  let server: Server | undefined;
  let baseUrl: string | undefined;
  const expectedAuth = Buffer.from(`Basic ${Buffer.from(`${credentials.email}:${credentials.apiToken}`).toString('base64')}`);

  function persist(): void {
    if (!stateFile) return;
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    const tmp = `${stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, stateFile);
  }

  /** Strictly increasing: two changes never share an updated time (it orders webhooks). */
  function tick(): string {
    state.lastUpdatedMs = Math.max(Date.now(), state.lastUpdatedMs + 1);
    return jiraTime(state.lastUpdatedMs);
  }

  const apiUser = () => state.users.find((u) => u.emailAddress === credentials.email)!;
  const userById = (accountId: string | null | undefined) => (accountId ? state.users.find((u) => u.accountId === accountId) : undefined);
  const statusOf = (id: string) => SIM_STATUSES.find((s) => s.id === id)!;
  const statusJson = (id: string): Record<string, unknown> => {
    const s = statusOf(id);
    return { self: `${origin()}/rest/api/3/status/${s.id}`, id: s.id, name: s.name, statusCategory: { id: CATEGORY[s.category].id, key: s.category, name: CATEGORY[s.category].name, colorName: CATEGORY[s.category].colorName } };
  };
  const origin = () => baseUrl ?? 'http://127.0.0.1';
  const userJson = (u: JiraUser | undefined) =>
    u ? { self: `${origin()}/rest/api/3/user?accountId=${u.accountId}`, accountId: u.accountId, accountType: u.accountType ?? 'atlassian', displayName: u.displayName, emailAddress: u.emailAddress, active: u.active, timeZone: 'Etc/UTC' } : null;
  const findIssue = (idOrKey: string) => state.issues.find((i) => i.id === idOrKey || i.key === idOrKey.toUpperCase());

  function issueJson(issue: JiraSimIssue, fieldList?: string[]) {
    const project = state.projects.find((p) => p.key === issue.projectKey)!;
    const all: Record<string, unknown> = {
      summary: issue.summary,
      description: issue.description,
      status: statusJson(issue.statusId),
      assignee: userJson(userById(issue.assignee)),
      reporter: userJson(userById(issue.reporter)),
      priority: { self: `${origin()}/rest/api/3/priority/${SIM_PRIORITIES.find((p) => p.name === issue.priority)?.id}`, id: SIM_PRIORITIES.find((p) => p.name === issue.priority)?.id, name: issue.priority },
      labels: issue.labels,
      created: issue.created,
      updated: issue.updated,
      resolutiondate: issue.resolutiondate,
      project: { self: `${origin()}/rest/api/3/project/${project.id}`, id: project.id, key: project.key, name: project.name },
      issuetype: { id: String(10001 + project.issueTypes.indexOf(issue.issueType)), name: issue.issueType, subtask: false },
      watches: { watchCount: issue.watchers.length, isWatching: issue.watchers.includes(apiUser().accountId) },
      comment: { comments: issue.comments.map(commentJson(issue)), maxResults: issue.comments.length, total: issue.comments.length, startAt: 0 },
    };
    const wanted = !fieldList || fieldList.length === 0 || fieldList.includes('*all') || fieldList.includes('*navigable') ? Object.keys(all) : fieldList;
    const fields = Object.fromEntries(wanted.filter((f) => f in all).map((f) => [f, all[f]]));
    return { expand: 'renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations', id: issue.id, self: `${origin()}/rest/api/3/issue/${issue.id}`, key: issue.key, fields };
  }

  const commentJson = (issue: JiraSimIssue) => (c: JiraSimIssue['comments'][number]) => ({
    self: `${origin()}/rest/api/3/issue/${issue.id}/comment/${c.id}`,
    id: c.id,
    author: userJson(userById(c.author)),
    body: c.body,
    created: c.created,
    updated: c.updated,
    jsdPublic: true,
  });

  // ---- errors, auth, faults ---------------------------------------------------

  const jiraError = (c: Context, status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 429 | 500 | 503, errorMessages: string[], errors: Record<string, string> = {}) =>
    c.json({ errorMessages, errors }, status);

  function injectFault(fault: JiraSimulatedFault): void {
    faults.push({ ...fault, left: fault.count });
  }

  async function readJson(c: Context): Promise<unknown | Response> {
    const text = await c.req.text();
    if (Buffer.byteLength(text) > MAX_BODY_BYTES) return jiraError(c, 413, ['Request entity too large']);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return jiraError(c, 400, ['Unexpected character in the request body: the body is not valid JSON.']);
    }
  }

  const app = new Hono();

  // Test-only control surface, like the ServiceNow simulator's: inject faults.
  app.post('/__simulator/faults', async (c) => {
    if (!authorized(c)) return c.json({ errorMessages: ['Client must be authenticated to access this resource.'], errors: {} }, 401);
    const body = (await c.req.json().catch(() => null)) as JiraSimulatedFault | null;
    if (!body || !Number.isInteger(body.status) || !Number.isInteger(body.count)) return jiraError(c, 400, ['expected { status, count, retryAfterSeconds?, methods? }']);
    injectFault(body);
    return c.json({ pending: faults.reduce((n, f) => n + f.left, 0) });
  });

  function authorized(c: Context): boolean {
    const given = Buffer.from(c.req.header('authorization') ?? '');
    return given.length === expectedAuth.length && timingSafeEqual(given, expectedAuth);
  }

  app.use('/rest/*', async (c, next) => {
    if (!authorized(c)) {
      // Jira Cloud answers a failed Basic auth with 401 and no session.
      return c.json({ errorMessages: ['Client must be authenticated to access this resource.'], errors: {} }, 401);
    }
    const fault = faults.find((f) => f.left > 0 && (!f.methods || f.methods.includes(c.req.method)));
    if (fault) {
      fault.left--;
      if (fault.retryAfterSeconds !== undefined) c.header('Retry-After', String(fault.retryAfterSeconds));
      return c.json({ errorMessages: [fault.status === 429 ? 'Rate limit exceeded.' : 'Internal server error'], errors: {} }, fault.status as 429);
    }
    await next();
  });

  // ---- users ------------------------------------------------------------------------

  app.get('/rest/api/3/myself', (c) => c.json(userJson(apiUser())));

  app.get('/rest/api/3/user', (c) => {
    const accountId = c.req.query('accountId');
    if (!accountId) return jiraError(c, 400, ['The query parameter \'accountId\' is required.']);
    const u = userById(accountId);
    return u ? c.json(userJson(u)) : jiraError(c, 404, [`Specified user does not exist or you do not have required permissions`]);
  });

  app.get('/rest/api/3/user/search', (c) => {
    const query = (c.req.query('query') ?? '').trim().toLowerCase();
    const accountId = c.req.query('accountId');
    if (!query && !accountId) return jiraError(c, 400, ["One of 'query' or 'accountId' parameters must be provided."]);
    const max = Math.min(1000, Number(c.req.query('maxResults') ?? 50) || 50);
    const start = Number(c.req.query('startAt') ?? 0) || 0;
    const hits = state.users.filter((u) =>
      accountId
        ? u.accountId === accountId
        : u.displayName.toLowerCase().split(/\s+/).some((w) => w.startsWith(query)) ||
          u.displayName.toLowerCase().startsWith(query) ||
          (u.emailAddress ?? '').toLowerCase().startsWith(query),
    );
    return c.json(hits.slice(start, start + max).map(userJson));
  });

  // ---- issues -------------------------------------------------------------------------

  app.post('/rest/api/3/issue', async (c) => {
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const input = (body ?? {}) as { fields?: Record<string, unknown>; properties?: Array<{ key: string; value: unknown }> };
    const f = input.fields ?? {};
    const errors: Record<string, string> = {};
    const projectRef = f.project as { key?: string; id?: string } | undefined;
    const project = state.projects.find((p) => (projectRef?.key && p.key === projectRef.key) || (projectRef?.id && p.id === projectRef.id));
    if (!project) errors.project = 'valid project is required';
    const typeName = (f.issuetype as { name?: string; id?: string } | undefined)?.name;
    if (project && (!typeName || !project.issueTypes.includes(typeName))) errors.issuetype = 'Specify a valid issue type';
    if (typeof f.summary !== 'string' || f.summary.trim() === '') errors.summary = 'You must specify a summary of the issue.';
    else if (f.summary.length > 255) errors.summary = 'Summary must be less than 255 characters.';
    if (f.description !== undefined && !isAdf(f.description)) errors.description = 'Operation value must be an Atlassian Document (see the Atlassian Document Format)';
    const assignee = (f.assignee as { accountId?: string } | null | undefined)?.accountId;
    if (assignee && !userById(assignee)) errors.assignee = `User '${assignee}' cannot be assigned issues.`;
    const priority = (f.priority as { name?: string; id?: string } | undefined) ?? undefined;
    const priorityName = priority ? SIM_PRIORITIES.find((p) => p.name === priority.name || p.id === priority.id)?.name : 'Medium';
    if (!priorityName) errors.priority = `The priority selected is invalid.`;
    const labels = f.labels ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string' || /\s/.test(l) || l.length > 255)) errors.labels = 'The label must not contain spaces.';
    for (const k of Object.keys(f)) {
      if (!['project', 'issuetype', 'summary', 'description', 'assignee', 'priority', 'labels'].includes(k)) {
        errors[k] = `Field '${k}' cannot be set. It is not on the appropriate screen, or unknown.`;
      }
    }
    if (Object.keys(errors).length) return jiraError(c, 400, [], errors);
    const now = tick();
    project!.counter++;
    const issue: JiraSimIssue = {
      id: String(state.nextIssueId++),
      key: `${project!.key}-${project!.counter}`,
      projectKey: project!.key,
      issueType: typeName!,
      summary: f.summary as string,
      description: f.description ?? null,
      statusId: SIM_STATUSES[0]!.id,
      assignee: assignee ?? null,
      reporter: apiUser().accountId,
      priority: priorityName!,
      labels: [...new Set(labels as string[])],
      // The reporter watches the issues they create, as on Jira Cloud.
      watchers: [apiUser().accountId],
      properties: Object.fromEntries((input.properties ?? []).map((p) => [p.key, p.value])),
      comments: [],
      created: now,
      updated: now,
      resolutiondate: null,
    };
    state.issues.push(issue);
    persist();
    emit(issue, 'jira:issue_created', 'issue_created', []);
    return c.json({ id: issue.id, key: issue.key, self: `${origin()}/rest/api/3/issue/${issue.id}` }, 201);
  });

  app.get('/rest/api/3/issue/:idOrKey', (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const fields = c.req.query('fields');
    return c.json(issueJson(issue, fields ? fields.split(',').map((s) => s.trim()).filter(Boolean) : undefined));
  });

  app.put('/rest/api/3/issue/:idOrKey', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const { fields = {}, update = {} } = (body ?? {}) as { fields?: Record<string, unknown>; update?: Record<string, Array<Record<string, unknown>>> };
    const errors: Record<string, string> = {};
    const items: ChangeItem[] = [];
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'summary') {
        if (typeof v !== 'string' || !v.trim()) errors.summary = 'You must specify a summary of the issue.';
        else if (v !== issue.summary) items.push(change('summary', issue.summary, v)), (issue.summary = v);
      } else if (k === 'description') {
        if (v !== null && !isAdf(v)) errors.description = 'Operation value must be an Atlassian Document (see the Atlassian Document Format)';
        else issue.description = v;
      } else if (k === 'priority') {
        const p = SIM_PRIORITIES.find((x) => x.name === (v as { name?: string })?.name || x.id === (v as { id?: string })?.id);
        if (!p) errors.priority = 'The priority selected is invalid.';
        else if (p.name !== issue.priority) items.push(change('priority', issue.priority, p.name)), (issue.priority = p.name);
      } else if (k === 'labels') {
        if (!Array.isArray(v) || v.some((l) => typeof l !== 'string' || /\s/.test(l))) errors.labels = 'The label must not contain spaces.';
        else items.push(change('labels', issue.labels.join(' '), v.join(' '))), (issue.labels = [...new Set(v as string[])]);
      } else if (k === 'assignee') {
        const id = (v as { accountId?: string } | null)?.accountId ?? null;
        if (id && !userById(id)) errors.assignee = `User '${id}' cannot be assigned issues.`;
        else if (id !== issue.assignee) items.push(assigneeChange(issue.assignee, id)), (issue.assignee = id);
      } else {
        errors[k] = `Field '${k}' cannot be set. It is not on the appropriate screen, or unknown.`;
      }
    }
    for (const op of update.labels ?? []) {
      if (typeof op.add === 'string' && !issue.labels.includes(op.add)) issue.labels.push(op.add);
      if (typeof op.remove === 'string') issue.labels = issue.labels.filter((l) => l !== op.remove);
    }
    if (Object.keys(errors).length) return jiraError(c, 400, [], errors);
    if (items.length || update.labels?.length) {
      issue.updated = tick();
      persist();
      emit(issue, 'jira:issue_updated', 'issue_updated', items);
    }
    return c.body(null, 204);
  });

  app.put('/rest/api/3/issue/:idOrKey/assignee', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const id = (body as { accountId?: string | null } | undefined)?.accountId ?? null;
    if (id && !userById(id)) return jiraError(c, 400, [], { assignee: `User '${id}' cannot be assigned issues.` });
    if (id !== issue.assignee) {
      const item = assigneeChange(issue.assignee, id);
      issue.assignee = id;
      issue.updated = tick();
      persist();
      emit(issue, 'jira:issue_updated', 'issue_assigned', [item]);
    }
    return c.body(null, 204);
  });

  app.get('/rest/api/3/issue/:idOrKey/transitions', (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const transitions = SIM_STATUSES.filter((s) => s.id !== issue.statusId).map((s) => ({
      id: s.transition.id,
      name: s.transition.name,
      to: statusJson(s.id),
      hasScreen: false,
      isGlobal: true,
      isInitial: false,
      isAvailable: true,
      isConditional: false,
      isLooped: false,
    }));
    return c.json({ expand: 'transitions', transitions });
  });

  app.post('/rest/api/3/issue/:idOrKey/transitions', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const id = String((body as { transition?: { id?: unknown } } | undefined)?.transition?.id ?? '');
    const target = SIM_STATUSES.find((s) => s.transition.id === id && s.id !== issue.statusId);
    if (!target) return jiraError(c, 400, [`Transition id '${id}' is not valid for this issue.`]);
    const from = statusOf(issue.statusId);
    issue.statusId = target.id;
    issue.resolutiondate = target.category === 'done' ? (issue.resolutiondate ?? jiraTime(Date.now())) : null;
    issue.updated = tick();
    persist();
    emit(issue, 'jira:issue_updated', 'issue_generic', [{ field: 'status', fieldtype: 'jira', fieldId: 'status', from: from.id, fromString: from.name, to: target.id, toString: target.name }]);
    return c.body(null, 204);
  });

  app.get('/rest/api/3/issue/:idOrKey/comment', (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const comments = [...issue.comments];
    if (c.req.query('orderBy') === '-created') comments.reverse();
    const start = Number(c.req.query('startAt') ?? 0) || 0;
    const max = Number(c.req.query('maxResults') ?? 5000) || 5000;
    return c.json({ startAt: start, maxResults: max, total: comments.length, comments: comments.slice(start, start + max).map(commentJson(issue)) });
  });

  app.post('/rest/api/3/issue/:idOrKey/comment', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const adfBody = (body as { body?: unknown } | undefined)?.body;
    if (!isAdf(adfBody)) return jiraError(c, 400, [], { comment: 'Comment body is not valid!' });
    const now = tick();
    const comment = { id: String(state.nextCommentId++), author: apiUser().accountId, body: adfBody, created: now, updated: now };
    issue.comments.push(comment);
    issue.updated = now;
    persist();
    emitComment(issue, comment);
    return c.json(commentJson(issue)(comment), 201);
  });

  app.get('/rest/api/3/issue/:idOrKey/watchers', (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    return c.json({
      self: `${origin()}/rest/api/3/issue/${issue.key}/watchers`,
      isWatching: issue.watchers.includes(apiUser().accountId),
      watchCount: issue.watchers.length,
      watchers: issue.watchers.map((id) => userJson(userById(id))),
    });
  });

  app.post('/rest/api/3/issue/:idOrKey/watchers', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    // The body is the account id as a JSON string; none: the caller watches.
    const accountId = body === undefined ? apiUser().accountId : body;
    if (typeof accountId !== 'string') return jiraError(c, 400, ['The request body must be an account id (a JSON string).']);
    if (!userById(accountId)) return jiraError(c, 404, [`The user with account ID '${accountId}' does not exist.`]);
    if (!issue.watchers.includes(accountId)) {
      issue.watchers.push(accountId);
      persist();
    }
    return c.body(null, 204);
  });

  app.get('/rest/api/3/issue/:idOrKey/properties/:propertyKey', (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const key = c.req.param('propertyKey');
    if (!(key in issue.properties)) return jiraError(c, 404, [`The property with key '${key}' does not exist.`]);
    return c.json({ key, value: issue.properties[key] });
  });

  app.put('/rest/api/3/issue/:idOrKey/properties/:propertyKey', async (c) => {
    const issue = findIssue(c.req.param('idOrKey'));
    if (!issue) return issueNotFound(c);
    const body = await readJson(c);
    if (body instanceof Response) return body;
    const key = c.req.param('propertyKey');
    const existed = key in issue.properties;
    issue.properties[key] = body;
    persist();
    return c.body(null, existed ? 200 : 201);
  });

  // ---- JQL search ---------------------------------------------------------------------

  const search = (c: Context, params: { jql?: string; fields?: string[]; maxResults?: number; nextPageToken?: string }) => {
    const parsed = parseJql(params.jql ?? '');
    if ('error' in parsed) return jiraError(c, 400, [parsed.error]);
    let hits = state.issues.filter((i) => parsed.conditions.every((cond) => matches(i, cond)));
    if (parsed.order) {
      const { field, desc } = parsed.order;
      hits = [...hits].sort((a, b) => (field === 'created' ? Number(a.id) - Number(b.id) : a.updated.localeCompare(b.updated)) * (desc ? -1 : 1));
    }
    const max = Math.max(1, Math.min(5000, params.maxResults ?? 50));
    const start = params.nextPageToken ? Number(Buffer.from(params.nextPageToken, 'base64url').toString()) || 0 : 0;
    const page = hits.slice(start, start + max);
    const isLast = start + max >= hits.length;
    return c.json({
      issues: page.map((i) => issueJson(i, params.fields ?? ['id'])),
      isLast,
      ...(isLast ? {} : { nextPageToken: Buffer.from(String(start + max)).toString('base64url') }),
    });
  };

  app.get('/rest/api/3/search/jql', (c) =>
    search(c, {
      jql: c.req.query('jql'),
      fields: c.req.query('fields')?.split(',').map((s) => s.trim()),
      maxResults: Number(c.req.query('maxResults') ?? 50) || 50,
      nextPageToken: c.req.query('nextPageToken'),
    }),
  );
  app.post('/rest/api/3/search/jql', async (c) => {
    const body = await readJson(c);
    if (body instanceof Response) return body;
    return search(c, (body ?? {}) as { jql?: string; fields?: string[]; maxResults?: number; nextPageToken?: string });
  });

  const issueNotFound = (c: Context) => jiraError(c, 404, ['Issue does not exist or you do not have permission to see it.']);

  // ---- webhooks -------------------------------------------------------------------------

  const closing = new AbortController();
  const chains = new Map<string, Promise<void>>();
  const pending = new Set<Promise<void>>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (closing.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        closing.signal.removeEventListener('abort', done);
        resolve();
      }
      closing.signal.addEventListener('abort', done, { once: true });
    });

  async function deliver(target: JiraWebhookTarget, body: string, identifier: string): Promise<void> {
    const headers = {
      'Content-Type': 'application/json; charset=utf-8',
      'X-Hub-Signature': signJiraWebhookBody(body, target.secret),
      'X-Atlassian-Webhook-Identifier': identifier,
      'User-Agent': 'Atlassian Webhook HTTP Client',
    };
    for (let attempt = 0; attempt < WEBHOOK_ATTEMPTS; attempt++) {
      if (closing.signal.aborted) return;
      if (attempt > 0) await sleep(WEBHOOK_FIRST_DELAY_MS * 2 ** (attempt - 1));
      if (closing.signal.aborted) return;
      try {
        // Jira retries a delivery with the same identifier, marking which try it is.
        const res = await fetch(target.url, {
          method: 'POST',
          headers: { ...headers, ...(attempt > 0 ? { 'X-Atlassian-Webhook-Retry': String(attempt) } : {}) },
          body,
          signal: AbortSignal.any([closing.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
      } catch {
        // network error or timeout: retried like a non-2xx answer
      }
    }
    if (!closing.signal.aborted) console.warn(`jira simulator: webhook ${identifier} not delivered after ${WEBHOOK_ATTEMPTS} attempts`);
  }

  function send(issue: JiraSimIssue, payload: Record<string, unknown>): void {
    const target = webhook;
    if (!target || closing.signal.aborted) return;
    const body = JSON.stringify(payload);
    const identifier = randomUUID();
    // One chain per issue keeps its events in order; issues do not wait on each other.
    const run = (chains.get(issue.id) ?? Promise.resolve()).then(() => deliver(target, body, identifier));
    chains.set(issue.id, run);
    pending.add(run);
    void run.finally(() => pending.delete(run));
  }

  function emit(issue: JiraSimIssue, webhookEvent: 'jira:issue_created' | 'jira:issue_updated', typeName: string, items: ChangeItem[]): void {
    send(issue, {
      timestamp: Date.now(),
      webhookEvent,
      issue_event_type_name: typeName,
      user: userJson(apiUser()),
      issue: issueJson(issue),
      ...(webhookEvent === 'jira:issue_updated' ? { changelog: { id: String(state.nextChangelogId++), items } } : {}),
    });
  }

  function emitComment(issue: JiraSimIssue, comment: JiraSimIssue['comments'][number]): void {
    send(issue, { timestamp: Date.now(), webhookEvent: 'comment_created', comment: commentJson(issue)(comment), issue: issueJson(issue, ['summary', 'status', 'updated']) });
  }

  function change(field: string, from: string, to: string): ChangeItem {
    return { field, fieldtype: 'jira', fieldId: field, from: null, fromString: from, to: null, toString: to };
  }

  function assigneeChange(from: string | null, to: string | null): ChangeItem {
    return { field: 'assignee', fieldtype: 'jira', fieldId: 'assignee', from, fromString: userById(from)?.displayName ?? null, to, toString: userById(to)?.displayName ?? null };
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async function webhooksIdle(): Promise<void> {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  return {
    app,
    get url(): string {
      if (!baseUrl) throw new Error('jira simulator is not listening');
      return baseUrl;
    },
    listen(port = 0, host = '127.0.0.1') {
      if (server) return Promise.reject(new Error('jira simulator is already listening'));
      if (closing.signal.aborted) return Promise.reject(new Error('jira simulator is closed'));
      return new Promise((resolve, reject) => {
        const s = serve({ fetch: app.fetch, port, hostname: host }, (info: AddressInfo) => {
          s.off('error', reject);
          baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`;
          resolve({ url: baseUrl });
        }) as Server;
        s.once('error', reject);
        server = s;
      });
    },
    async close() {
      closing.abort();
      await webhooksIdle();
      const s = server;
      server = undefined;
      baseUrl = undefined;
      if (!s) return;
      await new Promise<void>((resolve, reject) => {
        s.close((err) => (err ? reject(err) : resolve()));
        s.closeAllConnections();
      });
    },
    issues: () => structuredClone(state.issues),
    users: () => state.users.map((u) => ({ ...u })),
    injectFault,
    setWebhook(target) {
      webhook = target;
    },
    webhooksIdle,
  };
}

function isAdf(value: unknown): boolean {
  const v = value as { type?: unknown; version?: unknown; content?: unknown } | null;
  return typeof v === 'object' && v !== null && v.type === 'doc' && v.version === 1 && Array.isArray(v.content);
}

// ---- a JQL subset: field = value, field != value, field in (a, b), joined by AND; ORDER BY created|updated

type JqlCondition = { field: string; op: '=' | '!=' | 'in'; values: string[] };
const JQL_FIELDS = ['labels', 'project', 'key', 'id', 'status', 'statuscategory', 'assignee'];

function parseJql(jql: string): { conditions: JqlCondition[]; order?: { field: string; desc: boolean } } | { error: string } {
  let text = jql.trim();
  let order: { field: string; desc: boolean } | undefined;
  const orderMatch = /\s*ORDER\s+BY\s+(\w+)(?:\s+(ASC|DESC))?\s*$/i.exec(text);
  if (orderMatch) {
    const field = orderMatch[1]!.toLowerCase();
    if (field !== 'created' && field !== 'updated') return { error: `Not able to sort using field '${orderMatch[1]}'.` };
    order = { field, desc: (orderMatch[2] ?? 'ASC').toUpperCase() === 'DESC' };
    text = text.slice(0, orderMatch.index).trim();
  }
  if (text === '') return { error: 'Unbounded JQL queries are not allowed here. Please add a search restriction to your query.' };
  const conditions: JqlCondition[] = [];
  for (const part of text.split(/\s+AND\s+/i)) {
    const m = /^\s*(\w+)\s*(=|!=|\bin\b)\s*(.+?)\s*$/i.exec(part);
    if (!m) return { error: `Error in the JQL Query: the query '${part.trim()}' is not understood.` };
    const field = m[1]!.toLowerCase();
    if (!JQL_FIELDS.includes(field)) return { error: `Field '${m[1]}' does not exist or you do not have permission to view it.` };
    const op = m[2]!.toLowerCase() as JqlCondition['op'];
    const raw = m[3]!;
    const values = (op === 'in' ? raw.replace(/^\(|\)$/g, '').split(',') : [raw]).map((v) => v.trim().replace(/^"(.*)"$/, '$1').replace(/\\"/g, '"'));
    conditions.push({ field, op, values });
  }
  return { conditions, ...(order ? { order } : {}) };
}

function matches(issue: JiraSimIssue, c: JqlCondition): boolean {
  const status = SIM_STATUSES.find((s) => s.id === issue.statusId)!;
  const values = c.values.map((v) => v.toLowerCase());
  const has = (candidates: Array<string | null>) => candidates.some((x) => x !== null && values.includes(x.toLowerCase()));
  const hit = (() => {
    switch (c.field) {
      case 'labels':
        return has(issue.labels);
      case 'project':
        return has([issue.projectKey]);
      case 'key':
        return has([issue.key]);
      case 'id':
        return has([issue.id]);
      case 'status':
        return has([status.name, status.id]);
      case 'statuscategory':
        return has([status.category, CATEGORY[status.category].name]);
      case 'assignee':
        return has([issue.assignee]);
      default:
        return false;
    }
  })();
  return c.op === '!=' ? !hit : hit;
}
