/**
 * ServiceNow Table API simulator: enough of a real instance (incident, sys_user,
 * sys_journal_field, cmdb_ci, cmdb_ci_server) for the platform to be developed and tested offline.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Hono, type Context } from 'hono';
import { serve } from '@hono/node-server';
import { signWebhookBody } from './webhook-signature.js';

export { signWebhookBody, verifyWebhookSignature } from './webhook-signature.js';

export interface SimUserSeed {
  user_name: string;
  name: string;
  email: string;
  /** user_name of the manager */
  manager?: string;
  title?: string;
}

export interface WebhookTarget {
  url: string;
  secret: string;
}

export interface ServiceNowSimulatorOptions {
  /** JSON file; when set, every record survives restarts. */
  stateFile?: string;
  credentials: { user: string; password: string };
  /** sys_user seed, applied only while sys_user is empty; defaults to defaultDemoOrganisation. */
  users?: SimUserSeed[];
  /** cmdb_ci_server seed, applied only while that table is empty; defaults to defaultDemoServers. */
  servers?: SimServerSeed[];
  webhook?: WebhookTarget;
}

/** A demo server CI; owner fields are user_names, resolved to sys_user references when seeded. */
export interface SimServerSeed {
  name: string;
  fqdn?: string;
  host_name?: string;
  ip_address?: string;
  /** user_name */
  owned_by?: string;
  /** user_name */
  managed_by?: string;
  /** e.g. "1 - most critical" */
  business_criticality?: string;
  /** Production, Staging, Development, Test... */
  used_for?: string;
  /** custom column naming the business service */
  u_business_service?: string;
  os?: string;
}

export interface SimulatedFault {
  status: number;
  count: number;
  retryAfterSeconds?: number;
  /** HTTP methods the fault applies to; all when omitted. */
  methods?: string[];
}

export type SimTable = 'incident' | 'sys_user' | 'sys_journal_field' | 'cmdb_ci' | 'cmdb_ci_server';
/** A record as stored: every value a string, references hold the sys_id. */
export type SimRecord = Record<string, string>;

export interface WebhookPayload {
  event_id: string;
  table: 'incident';
  operation: 'insert' | 'update';
  sys_id: string;
  number: string;
  state: string;
  previous_state: string;
  assigned_to: string;
  correlation_id: string;
  sys_updated_on: string;
  sys_updated_by: string;
  /** The record's version after this change: events may arrive out of order. */
  sys_mod_count: string;
  changed_fields: string[];
}

export interface ServiceNowSimulator {
  app: Hono;
  /** Base URL, e.g. http://127.0.0.1:41234; only after listen(). */
  readonly url: string;
  listen(port?: number, host?: string): Promise<{ url: string }>;
  close(): Promise<void>;
  /** Copy of the stored records of a table. */
  records(table: SimTable): SimRecord[];
  injectFault(fault: SimulatedFault): void;
  /** Change or remove the webhook target (the receiver's port is often known only after start). */
  setWebhook(target: WebhookTarget | undefined): void;
  /** Resolves once every queued webhook delivery has finished (delivered or given up). */
  webhooksIdle(): Promise<void>;
}

export const defaultDemoOrganisation: SimUserSeed[] = [
  { user_name: 'morgan.blake', name: 'Morgan Blake', email: 'morgan.blake@example.com', title: 'Chief Technology Officer' },
  {
    user_name: 'priya.natarajan',
    name: 'Priya Natarajan',
    email: 'priya.natarajan@example.com',
    title: 'Head of Engineering',
    manager: 'morgan.blake',
  },
  {
    user_name: 'jonas.weber',
    name: 'Jonas Weber',
    email: 'jonas.weber@example.com',
    title: 'Team Lead, Payments',
    manager: 'priya.natarajan',
  },
  {
    user_name: 'alex.romero',
    name: 'Alex Romero',
    email: 'alex.romero@example.com',
    title: 'Application Owner, Payments API',
    manager: 'jonas.weber',
  },
  {
    user_name: 'sam.okafor',
    name: 'Sam Okafor',
    email: 'sam.okafor@example.com',
    title: 'Security Operations Analyst',
    manager: 'morgan.blake',
  },
];

/** The demo estate's servers (examples/context uses the same hosts). */
export const defaultDemoServers: SimServerSeed[] = [
  {
    name: 'web-01',
    fqdn: 'web-01.prod.example.com',
    host_name: 'web-01',
    ip_address: '10.0.1.10',
    owned_by: 'alex.romero',
    managed_by: 'jonas.weber',
    business_criticality: '2 - somewhat critical',
    used_for: 'Production',
    u_business_service: 'Payments',
    os: 'Linux Ubuntu',
  },
  {
    name: 'app-01',
    fqdn: 'app-01.prod.example.com',
    host_name: 'app-01',
    ip_address: '10.0.1.20',
    owned_by: 'alex.romero',
    managed_by: 'jonas.weber',
    business_criticality: '1 - most critical',
    used_for: 'Production',
    u_business_service: 'Payments',
    os: 'Linux Ubuntu',
  },
  {
    name: 'db-01',
    fqdn: 'db-01.prod.example.com',
    host_name: 'db-01',
    ip_address: '10.0.2.20',
    owned_by: 'jonas.weber',
    managed_by: 'jonas.weber',
    business_criticality: '1 - most critical',
    used_for: 'Production',
    u_business_service: 'Payments',
    os: 'Linux Red Hat',
  },
];


// ---------------------------------------------------------------------------
// Schema

interface TableSchema {
  /** reference field -> target table */
  refs: Readonly<Record<string, SimTable>>;
  /** journal fields: written as sys_journal_field rows, always read back as "" */
  journal: readonly string[];
  /** journal rows carry only sys_created_*; other tables the full set of system fields */
  createdOnly: boolean;
  defaults(): SimRecord;
}

const USER_REF = 'sys_user' as const;

const SCHEMAS: Record<SimTable, TableSchema> = {
  incident: {
    refs: {
      assigned_to: USER_REF,
      caller_id: USER_REF,
      opened_by: USER_REF,
      resolved_by: USER_REF,
      closed_by: USER_REF,
      cmdb_ci: 'cmdb_ci',
    },
    journal: ['work_notes', 'comments'],
    createdOnly: false,
    defaults: () => ({
      number: '',
      state: '1',
      incident_state: '1',
      impact: '3',
      urgency: '3',
      priority: '5',
      active: 'true',
      category: 'inquiry',
      subcategory: '',
      short_description: '',
      description: '',
      correlation_id: '',
      correlation_display: '',
      assigned_to: '',
      // sys_user_group is not simulated, so this is a plain string column here
      assignment_group: '',
      caller_id: '',
      opened_by: '',
      opened_at: '',
      resolved_at: '',
      resolved_by: '',
      closed_at: '',
      closed_by: '',
      close_code: '',
      close_notes: '',
      cmdb_ci: '',
      contact_type: '',
      escalation: '0',
      // glide_list: comma-separated sys_user sys_ids, returned as one string
      watch_list: '',
      work_notes: '',
      comments: '',
    }),
  },
  sys_user: {
    refs: { manager: USER_REF },
    journal: [],
    createdOnly: false,
    defaults: () => ({
      user_name: '',
      name: '',
      first_name: '',
      last_name: '',
      email: '',
      title: '',
      manager: '',
      active: 'true',
    }),
  },
  sys_journal_field: {
    refs: {},
    journal: [],
    createdOnly: true,
    // element_id is a GUID column in ServiceNow, not a reference: returned as a plain string
    defaults: () => ({ element: '', element_id: '', name: '', value: '' }),
  },
  cmdb_ci: {
    refs: {},
    journal: [],
    createdOnly: false,
    defaults: () => ({ name: '', sys_class_name: 'cmdb_ci', operational_status: '1' }),
  },
  // A child of cmdb_ci on a real instance; kept as its own table here (cmdb_ci reads do not include it).
  cmdb_ci_server: {
    refs: { owned_by: USER_REF, managed_by: USER_REF, assigned_to: USER_REF },
    journal: [],
    createdOnly: false,
    defaults: () => ({
      name: '',
      sys_class_name: 'cmdb_ci_server',
      operational_status: '1',
      install_status: '1',
      fqdn: '',
      host_name: '',
      ip_address: '',
      os: '',
      owned_by: '',
      managed_by: '',
      assigned_to: '',
      business_criticality: '',
      used_for: '',
    }),
  },
};

const TABLES = Object.keys(SCHEMAS) as SimTable[];
const isTable = (t: string): t is SimTable => (TABLES as string[]).includes(t);

// Data lookup "Priority" of a stock instance: impact x urgency.
const PRIORITY: Record<string, string> = {
  '1:1': '1', '1:2': '2', '1:3': '3',
  '2:1': '2', '2:2': '3', '2:3': '4',
  '3:1': '3', '3:2': '4', '3:3': '5',
};

const SYS_ID_RE = /^[0-9a-f]{32}$/;
const FIELD_RE = /^[a-z_][a-z0-9_]*$/;
const newSysId = () => randomBytes(16).toString('hex');
const glideNow = () => new Date().toISOString().slice(0, 19).replace('T', ' ');
const own = (rec: SimRecord, f: string): string => (Object.hasOwn(rec, f) ? (rec[f] ?? '') : '');

function toFieldString(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // accept a reference object as read back from the API
  if (typeof v === 'object' && v !== null && 'value' in v) return toFieldString((v as { value: unknown }).value);
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------
// Encoded queries

interface Condition {
  field: string;
  op: string;
  value: string;
}
interface ParsedQuery {
  /** OR of groups (^NQ); a group is an AND of clauses; a clause an OR of conditions (^OR). */
  groups: Condition[][][];
  order: Array<{ field: string; desc: boolean }>;
}

// Longest first, so that e.g. ">=" is not read as ">" followed by "=...".
const OPERATORS = [
  'ISNOTEMPTY', 'ISEMPTY', 'ANYTHING', 'NOT LIKE', 'DOESNOTCONTAIN', 'NOT IN', 'STARTSWITH', 'ENDSWITH',
  'NSAMEAS', 'SAMEAS', 'LIKE', 'IN', '!=', '>=', '<=', '=', '>', '<',
];
const UNARY = new Set(['ISNOTEMPTY', 'ISEMPTY', 'ANYTHING']);

function parseCondition(s: string): Condition | undefined {
  // Column names are lower case and operators upper case: that is how ServiceNow tells them apart.
  const m = /^([a-z0-9_]+(?:\.[a-z0-9_]+)*)(.*)$/s.exec(s);
  if (!m) return undefined;
  const field = m[1] ?? '';
  const rest = m[2] ?? '';
  for (const op of OPERATORS) {
    if (!rest.startsWith(op)) continue;
    if (UNARY.has(op) && rest !== op) continue;
    return { field, op, value: rest.slice(op.length) };
  }
  return undefined;
}

function parseEncodedQuery(q: string): ParsedQuery {
  const groups: Condition[][][] = [[]];
  const order: ParsedQuery['order'] = [];
  for (let seg of q.split('^')) {
    if (seg === '' || seg === 'EQ') continue;
    if (seg.startsWith('ORDERBYDESC')) {
      order.push({ field: seg.slice('ORDERBYDESC'.length), desc: true });
      continue;
    }
    if (seg.startsWith('ORDERBY')) {
      order.push({ field: seg.slice('ORDERBY'.length), desc: false });
      continue;
    }
    let or = false;
    if (seg.startsWith('NQ')) {
      groups.push([]);
      seg = seg.slice(2);
      if (seg === '') continue;
    } else if (seg.startsWith('OR')) {
      or = true;
      seg = seg.slice(2);
    }
    const cond = parseCondition(seg);
    // Like ServiceNow (glide.invalid_query.returns_no_rows=false), an unreadable condition is dropped.
    if (!cond) continue;
    const group = groups[groups.length - 1]!;
    const last = group[group.length - 1];
    if (or && last) last.push(cond);
    else group.push([cond]);
  }
  return { groups, order };
}

const isNumeric = (s: string) => s.trim() !== '' && Number.isFinite(Number(s));

function compareValues(a: string, b: string): number {
  if (isNumeric(a) && isNumeric(b)) return Number(a) - Number(b);
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

// String matching is case-insensitive, as on a stock instance (case-insensitive database collation).
function matches(actual: string, op: string, value: string, other: string): boolean {
  const a = actual.toLowerCase();
  const v = value.toLowerCase();
  switch (op) {
    case '=': return a === v;
    case '!=': return a !== v;
    case 'LIKE': return a.includes(v);
    case 'NOT LIKE':
    case 'DOESNOTCONTAIN': return !a.includes(v);
    case 'STARTSWITH': return a.startsWith(v);
    case 'ENDSWITH': return a.endsWith(v);
    case 'IN': return v.split(',').includes(a);
    case 'NOT IN': return !v.split(',').includes(a);
    case 'ISEMPTY': return actual === '';
    case 'ISNOTEMPTY': return actual !== '';
    case 'ANYTHING': return true;
    case 'SAMEAS': return a === other.toLowerCase();
    case 'NSAMEAS': return a !== other.toLowerCase();
    // ordering operators never match an empty (NULL) column
    case '>': return actual !== '' && compareValues(actual, value) > 0;
    case '<': return actual !== '' && compareValues(actual, value) < 0;
    case '>=': return actual !== '' && compareValues(actual, value) >= 0;
    case '<=': return actual !== '' && compareValues(actual, value) <= 0;
    default: return false;
  }
}

// ---------------------------------------------------------------------------
// State

interface StateFile {
  version: 1;
  nextIncidentNumber: number;
  tables: Record<SimTable, SimRecord[]>;
}

function emptyTables(): Record<SimTable, SimRecord[]> {
  return { incident: [], sys_user: [], sys_journal_field: [], cmdb_ci: [], cmdb_ci_server: [] };
}

function loadState(file: string | undefined): StateFile {
  const fresh: StateFile = { version: 1, nextIncidentNumber: 10001, tables: emptyTables() };
  if (!file || !fs.existsSync(file)) return fresh;
  // A corrupt file is an error rather than a silent wipe of the simulated instance.
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StateFile>;
  const tables = emptyTables();
  for (const t of TABLES) {
    const rows = parsed.tables?.[t];
    if (Array.isArray(rows)) tables[t] = rows.map((r) => ({ ...r }));
  }
  // Never reuse a number, even if the counter in the file is stale.
  const highest = tables.incident.reduce((max, r) => {
    const n = Number(/^INC(\d+)$/.exec(r.number ?? '')?.[1] ?? 0);
    return Math.max(max, n);
  }, 10000);
  const next = Math.max(Number(parsed.nextIncidentNumber) || 0, highest + 1);
  return { version: 1, nextIncidentNumber: next, tables };
}

interface FaultRule extends SimulatedFault {
  remaining: number;
}

// ---------------------------------------------------------------------------

type ErrorStatus = 400 | 401 | 404 | 405 | 429 | 500 | 503;

function snError(c: Context, status: number, message: string, detail: string | null = null): Response {
  return c.json({ error: { message, detail }, status: 'failure' }, status as ErrorStatus);
}

const WEBHOOK_ATTEMPTS = 5;
const WEBHOOK_FIRST_DELAY_MS = 200;
const WEBHOOK_TIMEOUT_MS = 5_000;

export function createServiceNowSimulator(options: ServiceNowSimulatorOptions): ServiceNowSimulator {
  const { credentials, stateFile } = options;
  const state = loadState(stateFile);
  let webhook = options.webhook;
  const faults: FaultRule[] = [];
  let server: Server | undefined;
  let baseUrl: string | undefined;

  const table = (t: SimTable) => state.tables[t];
  const findById = (t: SimTable, sysId: string) => table(t).find((r) => r.sys_id === sysId);

  function persist(): void {
    if (!stateFile) return;
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    const tmp = `${stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, stateFile);
  }

  // The API user is a sys_user too on a real instance; opened_by points at it.
  function apiUserSysId(): string {
    return table('sys_user').find((u) => u.user_name === credentials.user)?.sys_id ?? '';
  }

  /** Resolve a written reference: a sys_id is kept, otherwise the display value is looked up. */
  function resolveRef(target: SimTable, value: string): string {
    if (value === '' || SYS_ID_RE.test(value)) return value;
    const rows = table(target);
    const hit =
      target === 'sys_user'
        ? (rows.find((r) => r.user_name === value) ?? rows.find((r) => r.name === value))
        : rows.find((r) => r.name === value);
    // An unmatched display value leaves the reference empty, as ServiceNow does.
    return hit?.sys_id ?? '';
  }

  function stampNew(t: SimTable, rec: SimRecord, actor: string, now: string): void {
    rec.sys_id = newSysId();
    rec.sys_created_on = now;
    rec.sys_created_by = actor;
    if (!SCHEMAS[t].createdOnly) {
      rec.sys_updated_on = now;
      rec.sys_updated_by = actor;
      rec.sys_mod_count = '0';
    }
  }

  interface WriteOutcome {
    changed: string[];
    journal: Array<{ element: string; value: string }>;
  }

  function applyWrites(t: SimTable, rec: SimRecord, input: Record<string, unknown>): WriteOutcome {
    const schema = SCHEMAS[t];
    const out: WriteOutcome = { changed: [], journal: [] };
    for (const [key, raw] of Object.entries(input)) {
      // System columns and the number are managed here; dot-walked names are read-only.
      if (!FIELD_RE.test(key) || key === '__proto__' || key.startsWith('sys_')) continue;
      if (t === 'incident' && key === 'number') continue;
      let value = toFieldString(raw);
      if (schema.journal.includes(key)) {
        if (value.trim() !== '') {
          out.journal.push({ element: key, value });
          out.changed.push(key);
        }
        continue;
      }
      const target = schema.refs[key];
      if (target) value = resolveRef(target, value);
      // Unknown columns are stored too (a real instance silently drops them): lets the
      // platform round-trip custom u_ columns it expects the customer to have created.
      if (own(rec, key) !== value || !Object.hasOwn(rec, key)) {
        rec[key] = value;
        out.changed.push(key);
      }
    }
    return out;
  }

  /** Incident business rules: priority lookup, state bookkeeping. */
  function incidentRules(rec: SimRecord, changed: string[], actorSysId: string, now: string): void {
    rec.priority = PRIORITY[`${rec.impact}:${rec.urgency}`] ?? rec.priority ?? '5';
    if (!changed.includes('state')) return;
    rec.incident_state = rec.state ?? '';
    if (rec.state === '6' || rec.state === '7') {
      if (!rec.resolved_at) {
        rec.resolved_at = now;
        rec.resolved_by = actorSysId;
      }
    }
    if (rec.state === '7' && !rec.closed_at) {
      rec.closed_at = now;
      rec.closed_by = actorSysId;
    }
    rec.active = rec.state === '7' || rec.state === '8' ? 'false' : 'true';
  }

  function writeJournal(t: SimTable, rec: SimRecord, entries: WriteOutcome['journal'], actor: string, now: string) {
    for (const e of entries) {
      const j: SimRecord = { element: e.element, element_id: rec.sys_id ?? '', name: t, value: e.value };
      stampNew('sys_journal_field', j, actor, now);
      table('sys_journal_field').push(j);
    }
  }

  function insert(t: SimTable, input: Record<string, unknown>, actor: string): { rec: SimRecord; changed: string[] } {
    const now = glideNow();
    const rec = SCHEMAS[t].defaults();
    stampNew(t, rec, actor, now);
    if (t === 'incident') {
      rec.number = `INC${String(state.nextIncidentNumber++).padStart(7, '0')}`;
      rec.opened_at = now;
      rec.opened_by = apiUserSysId();
    }
    const { changed, journal } = applyWrites(t, rec, input);
    if (t === 'sys_user' && rec.name && !rec.first_name && !rec.last_name) {
      const [first, ...rest] = rec.name.split(' ');
      rec.first_name = first ?? '';
      rec.last_name = rest.join(' ');
    }
    if (t === 'incident') incidentRules(rec, changed, apiUserSysId(), now);
    table(t).push(rec);
    writeJournal(t, rec, journal, actor, now);
    return { rec, changed };
  }

  function update(t: SimTable, rec: SimRecord, input: Record<string, unknown>, actor: string): string[] {
    const now = glideNow();
    const { changed, journal } = applyWrites(t, rec, input);
    if (changed.length === 0) return changed; // nothing changed: ServiceNow skips the update
    if (t === 'incident') incidentRules(rec, changed, apiUserSysId(), now);
    if (!SCHEMAS[t].createdOnly) {
      rec.sys_updated_on = now;
      rec.sys_updated_by = actor;
      rec.sys_mod_count = String(Number(rec.sys_mod_count ?? 0) + 1);
    }
    writeJournal(t, rec, journal, actor, now);
    return changed;
  }

  function seedUsers(): void {
    if (table('sys_user').length > 0) return;
    const seeds = [...(options.users ?? defaultDemoOrganisation)];
    if (!seeds.some((s) => s.user_name === credentials.user)) {
      seeds.push({ user_name: credentials.user, name: 'Integration User', email: '' });
    }
    for (const s of seeds) {
      insert('sys_user', { user_name: s.user_name, name: s.name, email: s.email, title: s.title ?? '' }, 'system');
    }
    // Managers in a second pass: a seed may name a manager listed after it.
    for (const s of seeds) {
      if (!s.manager) continue;
      const rec = table('sys_user').find((u) => u.user_name === s.user_name);
      if (rec) rec.manager = resolveRef('sys_user', s.manager);
    }
    persist();
  }
  seedUsers();

  function seedServers(): void {
    if (table('cmdb_ci_server').length > 0) return;
    const seeds = options.servers ?? defaultDemoServers;
    if (seeds.length === 0) return;
    // Owner user_names resolve to sys_user references through the normal write path.
    for (const s of seeds) insert('cmdb_ci_server', { ...s }, 'system');
    persist();
  }
  seedServers();

  // ---- reading -------------------------------------------------------------

  function fieldValue(t: SimTable, rec: SimRecord, fieldPath: string, depth = 0): string {
    const [head, ...rest] = fieldPath.split('.');
    const v = own(rec, head ?? '');
    if (rest.length === 0 || depth > 5) return rest.length === 0 ? v : '';
    const target = SCHEMAS[t].refs[head ?? ''];
    const ref = target && v ? findById(target, v) : undefined;
    return target && ref ? fieldValue(target, ref, rest.join('.'), depth + 1) : '';
  }

  function present(t: SimTable, rec: SimRecord, origin: string, fields: string[] | undefined, refLinks: boolean) {
    const schema = SCHEMAS[t];
    const names = fields ?? Object.keys(rec);
    const out: Record<string, unknown> = {};
    for (const f of names) {
      if (!f.includes('.') && !Object.hasOwn(rec, f)) continue;
      if (schema.journal.includes(f)) {
        out[f] = '';
        continue;
      }
      const v = fieldValue(t, rec, f);
      const target = schema.refs[f];
      out[f] = target && v !== '' && refLinks ? { link: `${origin}/api/now/table/${target}/${v}`, value: v } : v;
    }
    return out;
  }

  function runQuery(t: SimTable, q: string): SimRecord[] {
    const { groups, order } = parseEncodedQuery(q);
    const rows = table(t);
    const test = (rec: SimRecord) =>
      groups.some((g) =>
        g.every((clause) =>
          clause.some((c) =>
            matches(fieldValue(t, rec, c.field), c.op, c.value, c.op.includes('SAMEAS') ? fieldValue(t, rec, c.value) : ''),
          ),
        ),
      );
    const hits = rows.map((rec, i) => ({ rec, i })).filter((x) => test(x.rec));
    const keys = order.length > 0 ? order : [{ field: 'sys_created_on', desc: false }];
    hits.sort((x, y) => {
      for (const k of keys) {
        const d = compareValues(fieldValue(t, x.rec, k.field), fieldValue(t, y.rec, k.field));
        if (d !== 0) return k.desc ? -d : d;
      }
      return x.i - y.i;
    });
    return hits.map((h) => h.rec);
  }

  // ---- webhook "business rule" ---------------------------------------------

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

  async function deliver(target: WebhookTarget, body: string, eventId: string): Promise<void> {
    const headers = {
      'Content-Type': 'application/json',
      'X-ServiceNow-Signature': signWebhookBody(body, target.secret),
      'X-ServiceNow-Event-Id': eventId,
      'User-Agent': 'ServiceNow-Simulator',
    };
    for (let attempt = 0; attempt < WEBHOOK_ATTEMPTS; attempt++) {
      if (closing.signal.aborted) return;
      if (attempt > 0) await sleep(WEBHOOK_FIRST_DELAY_MS * 2 ** (attempt - 1));
      if (closing.signal.aborted) return;
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([closing.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
      } catch {
        // network error or timeout: retried like a non-2xx answer
      }
    }
    if (!closing.signal.aborted) {
      console.warn(`servicenow simulator: webhook ${eventId} not delivered after ${WEBHOOK_ATTEMPTS} attempts`);
    }
  }

  function emitIncidentEvent(rec: SimRecord, operation: 'insert' | 'update', previousState: string, changed: string[]) {
    const target = webhook;
    if (!target || closing.signal.aborted) return;
    const payload: WebhookPayload = {
      event_id: randomUUID(),
      table: 'incident',
      operation,
      sys_id: own(rec, 'sys_id'),
      number: own(rec, 'number'),
      state: own(rec, 'state'),
      previous_state: previousState,
      assigned_to: own(rec, 'assigned_to'),
      correlation_id: own(rec, 'correlation_id'),
      sys_updated_on: own(rec, 'sys_updated_on'),
      sys_updated_by: own(rec, 'sys_updated_by'),
      sys_mod_count: own(rec, 'sys_mod_count'),
      changed_fields: changed,
    };
    const body = JSON.stringify(payload);
    // One chain per record keeps its events in order; records do not wait on each other.
    const key = payload.sys_id;
    const run = (chains.get(key) ?? Promise.resolve()).then(() => deliver(target, body, payload.event_id));
    chains.set(key, run);
    pending.add(run);
    void run.finally(() => {
      pending.delete(run);
      if (chains.get(key) === run) chains.delete(key);
    });
  }

  // ---- HTTP ----------------------------------------------------------------

  const app = new Hono();

  app.onError((err, c) => snError(c, 500, 'Internal server error', err instanceof Error ? err.message : String(err)));
  app.notFound((c) => snError(c, 400, 'Requested URI does not represent any resource'));

  app.get('/__simulator/healthz', (c) => c.json({ status: 'ok' }));

  app.post('/__simulator/faults', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'body must be JSON' }, 400);
    }
    const f = body as Partial<SimulatedFault>;
    const okStatus = Number.isInteger(f.status) && (f.status as number) >= 400 && (f.status as number) <= 599;
    const okCount = Number.isInteger(f.count) && (f.count as number) > 0;
    const okMethods = f.methods === undefined || (Array.isArray(f.methods) && f.methods.every((m) => typeof m === 'string'));
    const okRetry = f.retryAfterSeconds === undefined || (typeof f.retryAfterSeconds === 'number' && f.retryAfterSeconds >= 0);
    if (!okStatus || !okCount || !okMethods || !okRetry) {
      return c.json({ error: 'expected { status: 400-599, count: >0, retryAfterSeconds?: >=0, methods?: string[] }' }, 400);
    }
    injectFault(f as SimulatedFault);
    return c.json({ pending: faults.map(({ remaining, ...rest }) => ({ ...rest, remaining })) });
  });

  app.delete('/__simulator/faults', (c) => {
    faults.length = 0;
    return c.body(null, 204);
  });

  function injectFault(f: SimulatedFault): void {
    faults.push({ ...f, methods: f.methods?.map((m) => m.toUpperCase()), remaining: f.count });
  }

  function authorised(header: string | undefined): boolean {
    const m = /^Basic\s+(.+)$/i.exec(header ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return false;
    // Hash first so that the comparison is constant-time whatever the lengths.
    const same = (a: string, b: string) =>
      timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
    const userOk = same(decoded.slice(0, i), credentials.user);
    const passOk = same(decoded.slice(i + 1), credentials.password);
    return userOk && passOk;
  }

  app.use('/api/now/*', async (c, next) => {
    if (!authorised(c.req.header('authorization'))) {
      c.header('WWW-Authenticate', 'Basic realm="Service-now"');
      return snError(c, 401, 'User Not Authenticated', 'Required to provide Auth information');
    }
    const method = c.req.method.toUpperCase();
    const rule = faults.find((f) => f.remaining > 0 && (!f.methods || f.methods.includes(method)));
    if (rule) {
      rule.remaining--;
      if (rule.remaining === 0) faults.splice(faults.indexOf(rule), 1);
      if (rule.status === 429) {
        c.header('Retry-After', String(rule.retryAfterSeconds ?? 1));
        c.header('X-RateLimit-Remaining', '0');
        return snError(c, 429, 'Rate limit exceeded', 'Too many requests; retry later');
      }
      if (rule.retryAfterSeconds !== undefined) c.header('Retry-After', String(rule.retryAfterSeconds));
      return snError(c, rule.status, 'Simulated failure', `injected ${rule.status}`);
    }
    await next();
  });

  async function readBody(c: Context): Promise<Record<string, unknown> | Response> {
    const text = await c.req.text();
    if (text.trim() === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return snError(c, 400, 'Exception while reading request', 'The payload is not valid JSON.');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return snError(c, 400, 'Exception while reading request', 'The payload is not a JSON object.');
    }
    return parsed as Record<string, unknown>;
  }

  function readOptions(c: Context) {
    const fieldsParam = c.req.query('sysparm_fields');
    const fields = fieldsParam
      ?.split(',')
      .map((f) => f.trim())
      .filter((f) => f !== '');
    const refLinks = c.req.query('sysparm_exclude_reference_link') !== 'true';
    return { fields: fields && fields.length > 0 ? fields : undefined, refLinks, origin: new URL(c.req.url).origin };
  }

  function actorName(): string {
    return credentials.user;
  }

  const collection = async (c: Context) => {
    const t = c.req.param('table') ?? '';
    // A real instance answers 400 (not 404) for a table that does not exist.
    if (!isTable(t)) return snError(c, 400, `Invalid table ${t}`);
    const { fields, refLinks, origin } = readOptions(c);
    if (c.req.method === 'GET') {
      const all = runQuery(t, c.req.query('sysparm_query') ?? '');
      const limitParam = Number(c.req.query('sysparm_limit'));
      const offsetParam = Number(c.req.query('sysparm_offset'));
      const limit = Number.isInteger(limitParam) && limitParam > 0 ? limitParam : 10_000;
      const offset = Number.isInteger(offsetParam) && offsetParam > 0 ? offsetParam : 0;
      const page = all.slice(offset, offset + limit);
      c.header('X-Total-Count', String(all.length));
      c.header('Link', linkHeader(c.req.url, all.length, limit, offset));
      return c.json({ result: page.map((r) => present(t, r, origin, fields, refLinks)) });
    }
    if (c.req.method === 'POST') {
      const body = await readBody(c);
      if (body instanceof Response) return body;
      const { rec, changed } = insert(t, body, actorName());
      persist();
      if (t === 'incident') emitIncidentEvent(rec, 'insert', '', changed);
      return c.json({ result: present(t, rec, origin, fields, refLinks) }, 201);
    }
    return snError(c, 405, 'Method not Supported', `${c.req.method} is not supported for this resource`);
  };

  const single = async (c: Context) => {
    const t = c.req.param('table') ?? '';
    if (!isTable(t)) return snError(c, 400, `Invalid table ${t}`);
    const sysId = c.req.param('sys_id') ?? '';
    const rec = findById(t, sysId);
    const { fields, refLinks, origin } = readOptions(c);
    const method = c.req.method;
    if (method !== 'GET' && method !== 'PATCH' && method !== 'PUT' && method !== 'DELETE') {
      return snError(c, 405, 'Method not Supported', `${method} is not supported for this resource`);
    }
    if (!rec) return snError(c, 404, 'No Record found', "Record doesn't exist or ACL restricts the record retrieval");
    if (method === 'GET') return c.json({ result: present(t, rec, origin, fields, refLinks) });
    if (method === 'DELETE') {
      table(t).splice(table(t).indexOf(rec), 1);
      persist();
      return c.body(null, 204);
    }
    // PUT behaves like PATCH on the Table API: only the given fields change.
    const body = await readBody(c);
    if (body instanceof Response) return body;
    const previousState = own(rec, 'state');
    const previousAssignee = own(rec, 'assigned_to');
    const changed = update(t, rec, body, actorName());
    if (changed.length > 0) persist();
    if (t === 'incident' && (own(rec, 'state') !== previousState || own(rec, 'assigned_to') !== previousAssignee)) {
      emitIncidentEvent(rec, 'update', previousState, changed);
    }
    return c.json({ result: present(t, rec, origin, fields, refLinks) });
  };

  for (const prefix of ['/api/now/table', '/api/now/v1/table', '/api/now/v2/table']) {
    app.all(`${prefix}/:table`, collection);
    app.all(`${prefix}/:table/:sys_id`, single);
  }

  // ---- lifecycle -----------------------------------------------------------

  async function webhooksIdle(): Promise<void> {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  return {
    app,
    get url(): string {
      if (!baseUrl) throw new Error('servicenow simulator is not listening');
      return baseUrl;
    },
    listen(port = 0, host = '127.0.0.1') {
      if (server) return Promise.reject(new Error('servicenow simulator is already listening'));
      // close() stops webhook delivery for good, so a closed simulator stays closed
      if (closing.signal.aborted) return Promise.reject(new Error('servicenow simulator is closed'));
      return new Promise((resolve, reject) => {
        const s = serve({ fetch: app.fetch, port, hostname: host }, (info: AddressInfo) => {
          s.off('error', reject);
          const h = host.includes(':') ? `[${host}]` : host;
          baseUrl = `http://${h}:${info.port}`;
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
    records(t: SimTable) {
      return table(t).map((r) => ({ ...r }));
    },
    injectFault,
    setWebhook(target) {
      webhook = target;
    },
    webhooksIdle,
  };
}

function linkHeader(requestUrl: string, total: number, limit: number, offset: number): string {
  const at = (o: number) => {
    const u = new URL(requestUrl);
    u.searchParams.set('sysparm_limit', String(limit));
    u.searchParams.set('sysparm_offset', String(o));
    return `<${u.toString()}>`;
  };
  const last = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const links = [`${at(0)};rel="first"`];
  if (offset > 0) links.push(`${at(Math.max(0, offset - limit))};rel="prev"`);
  if (offset + limit < total) links.push(`${at(offset + limit)};rel="next"`);
  links.push(`${at(last)};rel="last"`);
  return links.join(',');
}
