import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CVE_MIN_RECORDS_DEFAULT, FEED_MAX_AGE_DEFAULTS, FEED_URL_DEFAULTS } from '../prioritization/feeds/parse.js';
import { parseSlaPolicy, type SlaPolicy } from '../mobilization/sla.js';
import { parseAllowList } from '../validation/probes/allow-list.js';
import { parseDuration } from './duration.js';
import { parseRateLimit, type RateLimit } from './rate-limit.js';
import { ITSM_NAMES, type ItsmName } from '../mobilization/itsm/index.js';
import { loadPeopleFile, type DirectoryPerson } from '../mobilization/itsm/people.js';
import { parseJiraStatusMap, type JiraStatusMap } from '../mobilization/itsm/jira/states.js';
import type { JiraRouting } from '../mobilization/itsm/jira/adapter.js';
import type { QueueKind } from '../workflows/task-queues.js';

// Configuration is read from the environment once, at start, into one typed object.
// Every variable is listed in the README; docker-compose.yml passes the same names.

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      try {
        return parseDuration(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

const otlpUrl = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const text = v?.trim();
    if (!text) return undefined;
    if (!/^https?:\/\//i.test(text) || !URL.canParse(text)) {
      ctx.addIssue({ code: 'custom', message: `not an http(s) URL of an OTLP/HTTP receiver: ${text}` });
      return z.NEVER;
    }
    return text;
  });

/** OTEL_EXPORTER_OTLP_HEADERS: `key=value,key2=value2`, values percent-encoded (the OTel spec's format). */
function otlpHeaders(text: string | undefined, name: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    if (!pair.trim()) continue;
    const at = pair.indexOf('=');
    if (at <= 0) throw new ConfigError(`invalid configuration:\n  ${name}: expected key=value pairs separated by commas`);
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

/** Tracing is on when an OTLP endpoint is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. */
function tracingConfig(e: z.infer<typeof EnvSchema>): TracingConfig | undefined {
  const signal = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!signal && !base) return undefined;
  if (e.OTEL_SDK_DISABLED?.toLowerCase() === 'true' || e.OTEL_TRACES_EXPORTER?.toLowerCase() === 'none') return undefined;
  // The signal's own endpoint is used as given; the base one gets the traces path (the OTel spec).
  const url = signal ?? `${base!.replace(/\/$/, '')}/v1/traces`;
  return {
    url,
    headers: { ...otlpHeaders(e.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS'), ...otlpHeaders(e.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') },
    ...(e.OTEL_SERVICE_NAME ? { serviceName: e.OTEL_SERVICE_NAME } : {}),
  };
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

// Empty: that feed is not fetched.
const feedUrl = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v) => v.trim() || undefined)
    .refine((v) => v === undefined || /^https?:\/\/[^\s]+$/.test(v), 'expected an http(s) URL, or empty to disable');

/** The queues a worker may poll: the two kinds, and the single queue of earlier versions (CTEM_TASK_QUEUE itself). */
export const WORKER_QUEUES = ['bulk', 'remediation', 'legacy'] as const;
export type WorkerQueue = (typeof WORKER_QUEUES)[number];

/**
 * Bulk runs few heavy activities (set-based SQL over the whole estate, report parsing): more at
 * once only queue on PostgreSQL and the CPU. Remediation runs many light ones (an ITSM call, a
 * row) and many short workflow tasks for tickets that wake on timers, signals and Updates.
 */
export const WORKER_SLOT_DEFAULTS: Record<QueueKind, WorkerSlots> = {
  bulk: { activities: 4, workflowTasks: 10 },
  remediation: { activities: 40, workflowTasks: 40 },
};
/** Workflows kept in memory per queue (the SDK needs at least as many as workflow task slots). */
export const WORKER_CACHED_WORKFLOWS: Record<QueueKind, number> = { bulk: 200, remediation: 1000 };

export interface WorkerSlots {
  /** maxConcurrentActivityTaskExecutions */
  activities: number;
  /** maxConcurrentWorkflowTaskExecutions */
  workflowTasks: number;
}

/**
 * `both` (bulk, remediation and legacy), or a comma-separated list of bulk, remediation, legacy.
 * `what` names the setting in the error (CTEM_WORKER_QUEUES, --queues).
 */
export function parseWorkerQueues(text: string, what = 'CTEM_WORKER_QUEUES'): WorkerQueue[] {
  const items = text.split(',').map((q) => q.trim().toLowerCase()).filter(Boolean);
  const queues = new Set<WorkerQueue>();
  for (const item of items) {
    if (item === 'both') WORKER_QUEUES.forEach((q) => queues.add(q));
    else if ((WORKER_QUEUES as readonly string[]).includes(item)) queues.add(item as WorkerQueue);
    else throw new ConfigError(`invalid configuration:\n  ${what}: unknown queue ${JSON.stringify(item)} (expected both, or a list of ${WORKER_QUEUES.join(', ')})`);
  }
  if (!queues.size) throw new ConfigError(`invalid configuration:\n  ${what}: name at least one queue (both, or a list of ${WORKER_QUEUES.join(', ')})`);
  return WORKER_QUEUES.filter((q) => queues.has(q));
}

const EnvSchema = z.object({
  PORT: port(8080),
  CTEM_HOST: z.string().default('127.0.0.1'),
  CTEM_PUBLIC_URL: optional,
  CTEM_DATA_DIR: z.string().default('./.data'),
  CTEM_API_TOKEN: optional,
  DATABASE_URL: optional,
  CTEM_PG_PORT: port(5433),
  TEMPORAL_ADDRESS: optional,
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_API_KEY: optional,
  TEMPORAL_TLS: z.enum(['true', 'false']).default('false'),
  // mTLS to a self-hosted cluster or Temporal Cloud: PEM files of the client certificate and key, an
  // optional CA for the server's certificate and an optional server name to verify it against.
  TEMPORAL_TLS_CERT: optional,
  TEMPORAL_TLS_KEY: optional,
  TEMPORAL_TLS_CA: optional,
  TEMPORAL_TLS_SERVER_NAME: optional,
  CTEM_TEMPORAL_PORT: port(7233),
  TEMPORAL_UI_PORT: port(8233),
  // The embedded dev server's HTTP API and metrics ports (random free ports when unset; all on loopback).
  CTEM_TEMPORAL_HTTP_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  CTEM_TEMPORAL_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  CTEM_TASK_QUEUE: z.string().default('ctem'),
  // Which task queues this process's worker polls, and how many tasks each runs at once
  // (docs/operations.md "Workers per task queue").
  CTEM_WORKER_QUEUES: z.string().default('both'),
  CTEM_WORKER_BULK_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(WORKER_SLOT_DEFAULTS.bulk.activities),
  CTEM_WORKER_BULK_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(WORKER_CACHED_WORKFLOWS.bulk).default(WORKER_SLOT_DEFAULTS.bulk.workflowTasks),
  CTEM_WORKER_REMEDIATION_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(WORKER_SLOT_DEFAULTS.remediation.activities),
  CTEM_WORKER_REMEDIATION_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(WORKER_CACHED_WORKFLOWS.remediation).default(WORKER_SLOT_DEFAULTS.remediation.workflowTasks),
  SERVICENOW_URL: optional,
  SERVICENOW_USER: optional,
  SERVICENOW_PASSWORD: optional,
  SERVICENOW_WEBHOOK_SECRET: optional,
  SERVICENOW_INCIDENT_TABLE: z.string().default('incident'),
  SERVICENOW_SIM_PORT: port(8090),
  CTEM_ITSM: z.enum(ITSM_NAMES).default('servicenow'),
  CTEM_PEOPLE_FILE: optional,
  JIRA_BASE_URL: optional,
  JIRA_EMAIL: optional,
  JIRA_API_TOKEN: optional,
  JIRA_WEBHOOK_SECRET: optional,
  JIRA_PROJECT: z.string().default('CTEM'),
  JIRA_PROJECT_BY_OWNER: optional,
  JIRA_PROJECT_BY_SERVICE: optional,
  JIRA_ISSUE_TYPE: z.string().default('Task'),
  JIRA_STATUS_MAP: optional,
  JIRA_PRIORITIES: z.string().default('Highest,High,Medium,Low,Lowest'),
  JIRA_SIM_PORT: port(8091),
  CTEM_EPSS_FILE: optional,
  CTEM_KEV_FILE: optional,
  CTEM_CVE_RECORDS: optional,
  CTEM_CVE_MIN_RECORDS: z.coerce.number().int().min(1).default(CVE_MIN_RECORDS_DEFAULT),
  CTEM_EPSS_URL: feedUrl(FEED_URL_DEFAULTS.epss),
  CTEM_KEV_URL: feedUrl(FEED_URL_DEFAULTS.kev),
  CTEM_INTEL_SCHEDULE: z.string().default('1d'),
  CTEM_FEED_MAX_AGE_EPSS: duration(FEED_MAX_AGE_DEFAULTS.epss),
  CTEM_FEED_MAX_AGE_KEV: duration(FEED_MAX_AGE_DEFAULTS.kev),
  CTEM_FEED_MAX_AGE_CVE: duration(FEED_MAX_AGE_DEFAULTS.cve),
  CTEM_SLA_ACK: duration('2d'),
  CTEM_ESCALATION_INTERVAL: duration('5d'),
  CTEM_ESCALATION_DIGEST_WINDOW: duration('5m'),
  CTEM_TICKET_RECONCILE_INTERVAL: duration('1h'),
  CTEM_FALLBACK_OWNER: optional,
  CTEM_SLA_POLICY: z
    .string()
    .optional()
    .transform((text, ctx) => {
      try {
        return parseSlaPolicy(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  CTEM_MAX_UPLOAD_MB: z.coerce.number().positive().default(512),
  CTEM_SCAN_SLA_CRITICAL: duration('7d'),
  CTEM_SCAN_SLA_HIGH: duration('14d'),
  CTEM_SCAN_SLA_MEDIUM: duration('30d'),
  CTEM_SCAN_SLA_LOW: duration('90d'),
  CTEM_ORPHAN_REPORT_SCHEDULE: z.string().default('0 8 * * MON'),
  CTEM_VALIDATION_SCHEDULE: z.string().default('1d'),
  /** Every saved hunting hypothesis asked again (`off` removes the schedule). */
  CTEM_HUNTING_SCHEDULE: z.string().default('1d'),
  CTEM_VALIDATION_ALLOW: z.string().default(''),
  CTEM_VALIDATION_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  CTEM_VALIDATION_RATE: z.coerce.number().positive().max(1000).default(10),
  CTEM_VALIDATION_TIMEOUT: duration('5s'),
  CTEM_VALIDATION_AFTER_RESCORE: z.enum(['true', 'false']).default('true'),
  CTEM_VALIDATION_VANTAGE: z.enum(['internal', 'internet']).default('internal'),
  CTEM_METRICS_SCHEDULE: z.string().default('1d'),
  CTEM_RISK_APPETITE: z.coerce.number().int().min(0).default(50),
  // Operator metrics (/metrics): the bearer token Prometheus sends (besides the API token), the
  // Temporal SDK exporter's loopback port (a free one when unset), and a worker-only process's port.
  CTEM_METRICS_TOKEN: optional,
  CTEM_SDK_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  CTEM_WORKER_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  TEMPORAL_UI_URL: optional,
  CTEM_WORKFLOW_BUNDLE: optional,
  SLACK_BOT_TOKEN: optional,
  SLACK_SIGNING_SECRET: optional,
  SLACK_APP_TOKEN: optional,
  SLACK_API_URL: optional,
  SLACK_CHANNEL: optional,
  SLACK_AUTHORIZED_USERS: optional,
  SLACK_AUTHORIZED_USERGROUP: optional,
  // Logs: level of the API's request lines (and the worker's, unless CTEM_WORKER_LOG_LEVEL), format,
  // and how long a request may take before its line is a WARN.
  CTEM_LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => v?.trim().toUpperCase() || undefined)
    .pipe(z.enum(LOG_LEVELS).optional()),
  CTEM_WORKER_LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => v?.trim().toUpperCase() || undefined)
    .pipe(z.enum(LOG_LEVELS).optional()),
  CTEM_LOG_FORMAT: z.enum(['text', 'json']).default('text'),
  CTEM_SLOW_REQUEST: duration('5s'),
  // Traces (OpenTelemetry's own variables): on when an OTLP endpoint is set.
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_HEADERS: optional,
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: optional,
  OTEL_SERVICE_NAME: optional,
  OTEL_SDK_DISABLED: optional,
  OTEL_TRACES_EXPORTER: optional,
  /** How long audit-trail entries are kept; the daily metrics run prunes older ones. */
  CTEM_AUDIT_RETENTION: duration('400d').refine((ms) => ms > 0, 'must be longer than 0 (entries are kept this long)'),
  /** Requests per authenticated identity and window on /api (per API process); off: no limit. */
  CTEM_RATE_LIMIT: z
    .string()
    .default('600/min')
    .transform((text, ctx) => {
      try {
        return parseRateLimit(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  // Console sign-in with OpenID Connect: off unless the issuer is set.
  CTEM_OIDC_ISSUER: optional,
  CTEM_OIDC_CLIENT_ID: optional,
  CTEM_OIDC_CLIENT_SECRET: optional,
  CTEM_OIDC_SCOPES: optional,
  CTEM_OIDC_REDIRECT_URL: optional,
  CTEM_OIDC_NAME: optional,
  CTEM_OIDC_REQUIRE_VERIFIED_EMAIL: z.enum(['true', 'false']).default('true'),
  CTEM_OIDC_PROVISION_ROLE: optional,
});

export interface SlaConfig {
  /** Time the owner has to acknowledge a new golden ticket. */
  ackMs: number;
  /** While a breach continues, escalate one level up the management chain after each interval. */
  escalationIntervalMs: number;
  /** How long a manager's escalation round collects escalations before its one digest goes out. */
  digestWindowMs: number;
  /** How often each open ticket is read back from the ITSM to catch missed webhooks (0: never). */
  reconcileIntervalMs: number;
  /** Acknowledgement time and escalation interval per tier and per asset criticality (CTEM_SLA_POLICY). */
  policy: SlaPolicy;
}

export interface Config {
  /**
   * The owner of last resort (CTEM_FALLBACK_OWNER, e.g. security operations): tickets whose asset has
   * no owner, or whose owner the ITSM does not know, go to the orphan queue assigned to this person
   * and escalate like any ticket. Unset with a real ITSM: orphaned tickets wait unassigned.
   */
  fallbackOwner?: string;
  port: number;
  host: string;
  publicUrl: string;
  dataDir: string;
  apiToken?: string;
  databaseUrl?: string;
  embeddedPostgresPort: number;
  temporal: {
    address?: string;
    namespace: string;
    apiKey?: string;
    tls: boolean;
    /** Client certificate (mTLS) and server verification files, as PEM paths (TEMPORAL_TLS_*). */
    tlsFiles?: { cert?: string; key?: string; ca?: string; serverName?: string };
    devServerPort: number;
    uiPort: number;
    /** The embedded dev server's HTTP API and metrics ports; random free ones when unset. */
    devServerHttpPort?: number;
    devServerMetricsPort?: number;
    /**
     * CTEM_TASK_QUEUE: the base of the task queue names (`<base>-bulk`, `<base>-remediation`,
     * workflows/task-queues.ts) and the single queue of earlier versions, polled as `legacy`.
     */
    taskQueue: string;
    /** Temporal Web UI, for links to workflows (the dev server's UI when it is embedded). */
    uiUrl?: string;
    /** A workflow bundle built ahead of time (bundleWorkflowCode); without it the worker bundles workflows/ at start. */
    workflowBundle?: string;
  };
  serviceNow: {
    url?: string;
    user?: string;
    password?: string;
    webhookSecret?: string;
    incidentTable: string;
    simulatorPort: number;
  };
  /** Which ITSM holds golden tickets. */
  itsm: ItsmName;
  jira: {
    url?: string;
    email?: string;
    apiToken?: string;
    webhookSecret?: string;
    routing: JiraRouting;
    issueType: string;
    statusMap: JiraStatusMap;
    /** Priority names, highest first; empty: priorities are left to Jira. */
    priorities: string[];
    simulatorPort: number;
  };
  /** The people directory (CTEM_PEOPLE_FILE): who manages whom, for Jira's escalations. */
  people?: DirectoryPerson[];
  intel: {
    /** Files imported at start. */
    epssFile?: string;
    kevFile?: string;
    /** A directory or archive (.zip, .tar.gz) of CVE records in the CVE JSON 5 format. */
    cveRecords?: string;
    /** Fewer CVE records than this fail the `count` check. */
    cveMinRecords: number;
    /** Where the scheduled fetch downloads each feed; unset: not fetched. */
    urls: { epss?: string; kev?: string };
    /** Interval (1d) or cron expression of the fetch schedules. */
    schedule: string;
    /** A feed older than this (by its own date) fails the freshness check. */
    maxAgeMs: { epss: number; kev: number; cve: number };
  };
  sla: SlaConfig;
  /** How fresh a scan must be per asset criticality, for the scan-coverage KPI. */
  scanSlaMs: Record<'critical' | 'high' | 'medium' | 'low', number>;
  /** Cron expression of the weekly orphan-asset report (Temporal Schedule). */
  orphanReportCron: string;
  huntingSchedule: string;
  validation: ValidationConfig;
  metrics: MetricsConfig;
  operatorMetrics: OperatorMetricsConfig;
  /** What this process's worker polls (CTEM_WORKER_QUEUES) and its slots per queue kind; legacy uses remediation's. */
  worker: { queues: WorkerQueue[]; slots: Record<QueueKind, WorkerSlots> };
  maxUploadBytes: number;
  /** The Slack bot; unset when Slack is not configured. */
  slack?: SlackConfig;
  /** Audit-trail entries older than this are pruned daily (CTEM_AUDIT_RETENTION). */
  auditRetentionMs: number;
  /** Requests each authenticated identity may make to /api per window, in each API process (CTEM_RATE_LIMIT); unset: no limit. */
  rateLimit?: RateLimit;
  logging: LoggingConfig;
  /** OpenTelemetry traces over OTLP/HTTP; unset (the default) when no OTLP endpoint is configured. */
  tracing?: TracingConfig;
  /** Console sign-in with OpenID Connect (CTEM_OIDC_*); unset when no issuer is configured. */
  oidc?: OidcConfig;
}

export interface LoggingConfig {
  /** The API's request lines: 5xx at ERROR, slow requests at WARN, the rest at INFO (CTEM_LOG_LEVEL, default WARN). */
  level: LogLevelName;
  /** The worker's lines (CTEM_WORKER_LOG_LEVEL, else CTEM_LOG_LEVEL, else WARN). */
  workerLevel: LogLevelName;
  format: 'text' | 'json';
  /** A request slower than this is logged at WARN (CTEM_SLOW_REQUEST). */
  slowRequestMs: number;
}

export interface TracingConfig {
  /** Where spans are POSTed (OTLP/HTTP JSON): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  url: string;
  /** OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS (a collector's API key). */
  headers: Record<string, string>;
  /** OTEL_SERVICE_NAME; unset: ctem-api, ctem-worker, or ctem for both in one process. */
  serviceName?: string;
}

export interface OidcConfig {
  /** The issuer identifier; its discovery document is read at the first sign-in, not at start. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Always with `openid`. */
  scopes: string[];
  /** Where the provider sends the browser back: CTEM_OIDC_REDIRECT_URL, else CTEM_PUBLIC_URL's; unset: the request's own origin. */
  redirectUrl?: string;
  /** What the sign-in button says after "Sign in with". */
  name: string;
  /** Only an `email_verified: true` e-mail maps to an identity (default). */
  requireVerifiedEmail: boolean;
  /** Opt-in: a verified e-mail no identity has creates a user with this role. */
  provisionRole?: 'read-only';
}

/** Roles an unknown person may be given by signing in; anything more is granted by an administrator. */
export const OIDC_PROVISION_ROLES = ['read-only'] as const;

const isLoopbackHost = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

function oidcConfig(e: z.infer<typeof EnvSchema>, publicUrlSet: boolean, publicUrl: string): OidcConfig | undefined {
  const problems: string[] = [];
  if (!e.CTEM_OIDC_ISSUER) {
    const stray = (['CTEM_OIDC_CLIENT_ID', 'CTEM_OIDC_CLIENT_SECRET', 'CTEM_OIDC_SCOPES', 'CTEM_OIDC_REDIRECT_URL', 'CTEM_OIDC_NAME', 'CTEM_OIDC_PROVISION_ROLE'] as const).filter((name) => e[name]);
    if (stray.length) throw new ConfigError(`invalid configuration:\n  CTEM_OIDC_ISSUER: required with ${stray.join(', ')} (OpenID Connect sign-in is off without an issuer)`);
    return undefined;
  }
  let issuer: URL | undefined;
  try {
    issuer = new URL(e.CTEM_OIDC_ISSUER);
  } catch {
    problems.push('  CTEM_OIDC_ISSUER: expected a URL, e.g. https://login.example.com/realms/main');
  }
  if (issuer && issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname))) {
    problems.push('  CTEM_OIDC_ISSUER: expected an https URL (plain http only on a loopback address, for a provider on this machine)');
  }
  if (issuer && (issuer.search || issuer.hash)) problems.push('  CTEM_OIDC_ISSUER: an issuer identifier has no query or fragment');
  if (!e.CTEM_OIDC_CLIENT_ID) problems.push('  CTEM_OIDC_CLIENT_ID: required with CTEM_OIDC_ISSUER (the client registered at the provider for the console)');
  if (!e.CTEM_OIDC_CLIENT_SECRET) problems.push('  CTEM_OIDC_CLIENT_SECRET: required with CTEM_OIDC_ISSUER (the secret of that client)');
  if (e.CTEM_OIDC_REDIRECT_URL && !/^https?:\/\/[^\s]+$/.test(e.CTEM_OIDC_REDIRECT_URL)) {
    problems.push('  CTEM_OIDC_REDIRECT_URL: expected an http(s) URL, e.g. https://ctem.example.com/console/sign-in/oidc/callback');
  }
  const scopes = (e.CTEM_OIDC_SCOPES ?? 'openid email profile').split(/[\s,]+/).filter(Boolean);
  const badScope = scopes.find((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s));
  if (badScope) problems.push(`  CTEM_OIDC_SCOPES: ${JSON.stringify(badScope)} is not a scope name`);
  const provisionRole = e.CTEM_OIDC_PROVISION_ROLE;
  if (provisionRole && !(OIDC_PROVISION_ROLES as readonly string[]).includes(provisionRole)) {
    problems.push(`  CTEM_OIDC_PROVISION_ROLE: ${JSON.stringify(provisionRole)} cannot be given by signing in; allowed: ${OIDC_PROVISION_ROLES.join(', ')} (an administrator grants more)`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  const redirectUrl = e.CTEM_OIDC_REDIRECT_URL ?? (publicUrlSet ? `${publicUrl}/console/sign-in/oidc/callback` : undefined);
  return {
    issuer: e.CTEM_OIDC_ISSUER,
    clientId: e.CTEM_OIDC_CLIENT_ID!,
    clientSecret: e.CTEM_OIDC_CLIENT_SECRET!,
    scopes: scopes.includes('openid') ? scopes : ['openid', ...scopes],
    ...(redirectUrl ? { redirectUrl } : {}),
    name: e.CTEM_OIDC_NAME ?? 'single sign-on',
    requireVerifiedEmail: e.CTEM_OIDC_REQUIRE_VERIFIED_EMAIL === 'true',
    ...(provisionRole ? { provisionRole: provisionRole as OidcConfig['provisionRole'] } : {}),
  };
}

export interface MetricsConfig {
  /** Interval (1d, the default: each midnight UTC) or cron expression of the daily metric snapshot; `off`: none. */
  schedule: string;
  /** Open act + attend exposures the program accepts (CTEM_RISK_APPETITE): the line the risk trend is read against. */
  riskAppetite: number;
}

export interface OperatorMetricsConfig {
  /** A bearer token that may read /metrics and nothing else (CTEM_METRICS_TOKEN); the API token may too. */
  token?: string;
  /** The Temporal SDK's Prometheus exporter, on loopback; appended to /metrics. A free port when unset. */
  sdkPort?: number;
  /** `ctem worker` alone serves /metrics here (loopback unless CTEM_HOST says otherwise); unset: not served. */
  workerPort?: number;
}

export interface ValidationConfig {
  /** Interval (1d) or cron expression of the estate's validation run; `off`: none. */
  schedule: string;
  /**
   * Where safe active checks may connect (CTEM_VALIDATION_ALLOW: CIDRs, addresses, host names,
   * `*.domain`, comma-separated). Empty, the default: no probe is ever sent.
   */
  allowList: string[];
  /** Probes at once, new connections per second, and each probe's time limit. */
  concurrency: number;
  ratePerSecond: number;
  timeoutMs: number;
  /** Validate the estate after a rescoring that moved findings into or out of act/attend. */
  afterRescore: boolean;
  /**
   * Where the probes run from: only from the `internet` can a closed port verify a control's claim
   * that the internet does not reach it.
   */
  vantage: 'internal' | 'internet';
}

export interface SlackConfig {
  botToken: string;
  /** HTTP mode: requests to /slack/events are verified with it. */
  signingSecret?: string;
  /** Socket Mode, for workspaces without a public URL. */
  appToken?: string;
  /** Web API base URL (default Slack's; a local fake in tests). */
  apiUrl?: string;
  /** Security operations' channel: campaign results, exception approvals, orphan reports. */
  channel: string;
  /** Slack user ids allowed to start campaigns, create scopes and approve exceptions. */
  authorizedUsers: string[];
  /** A Slack user group (id) whose members are allowed the same. */
  authorizedUserGroup?: string;
}

function slackConfig(e: z.infer<typeof EnvSchema>): SlackConfig | undefined {
  const any = [e.SLACK_BOT_TOKEN, e.SLACK_SIGNING_SECRET, e.SLACK_APP_TOKEN, e.SLACK_CHANNEL].some(Boolean);
  if (!any) return undefined;
  const problems: string[] = [];
  if (!e.SLACK_BOT_TOKEN) problems.push('  SLACK_BOT_TOKEN: required when Slack is configured');
  if (!e.SLACK_SIGNING_SECRET && !e.SLACK_APP_TOKEN) problems.push('  SLACK_SIGNING_SECRET: required (or SLACK_APP_TOKEN for Socket Mode)');
  if (!e.SLACK_CHANNEL) problems.push('  SLACK_CHANNEL: required when Slack is configured (the security operations channel id)');
  if (e.SLACK_API_URL && !/^https?:\/\/[^\s]+$/.test(e.SLACK_API_URL)) problems.push('  SLACK_API_URL: expected an http(s) URL');
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  const apiUrl = e.SLACK_API_URL?.replace(/\/*$/, '/');
  return {
    botToken: e.SLACK_BOT_TOKEN!,
    channel: e.SLACK_CHANNEL!,
    authorizedUsers: (e.SLACK_AUTHORIZED_USERS ?? '').split(',').map((u) => u.trim()).filter(Boolean),
    ...(e.SLACK_SIGNING_SECRET ? { signingSecret: e.SLACK_SIGNING_SECRET } : {}),
    ...(e.SLACK_APP_TOKEN ? { appToken: e.SLACK_APP_TOKEN } : {}),
    ...(apiUrl ? { apiUrl } : {}),
    ...(e.SLACK_AUTHORIZED_USERGROUP ? { authorizedUserGroup: e.SLACK_AUTHORIZED_USERGROUP } : {}),
  };
}

export class ConfigError extends Error {}

const PROJECT_KEY_RE = /^[A-Z][A-Z0-9_]{0,254}$/;

/** `name=PROJECT,other=KEY` into a map, naming the variable and the pair at fault. */
function projectMap(variable: string, text: string | undefined, problems: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.lastIndexOf('=');
    const name = part.slice(0, at).trim();
    const key = part.slice(at + 1).trim();
    if (at <= 0 || !name) problems.push(`  ${variable}: "${part}" is not name=PROJECTKEY`);
    else if (!PROJECT_KEY_RE.test(key)) problems.push(`  ${variable}: "${key}" (for ${name}) is not a Jira project key (upper-case letters, digits, _)`);
    else map[name] = key;
  }
  return map;
}

function jiraConfig(e: z.infer<typeof EnvSchema>): { jira: Config['jira']; people?: DirectoryPerson[] } {
  const problems: string[] = [];
  const connection = [e.JIRA_BASE_URL, e.JIRA_EMAIL, e.JIRA_API_TOKEN].filter(Boolean).length;
  if (connection !== 0 && connection !== 3) problems.push('  JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN go together (none: the embedded Jira simulator runs)');
  if (e.CTEM_ITSM === 'jira' && e.JIRA_BASE_URL && !e.JIRA_WEBHOOK_SECRET) {
    problems.push('  JIRA_WEBHOOK_SECRET: required with JIRA_BASE_URL (the secret of the Jira admin webhook; without it no change made in Jira reaches the platform)');
  }
  if (e.JIRA_BASE_URL && !/^https?:\/\/[^\s]+$/.test(e.JIRA_BASE_URL)) problems.push('  JIRA_BASE_URL: expected an http(s) URL, e.g. https://your-site.atlassian.net');
  if (!PROJECT_KEY_RE.test(e.JIRA_PROJECT)) problems.push(`  JIRA_PROJECT: "${e.JIRA_PROJECT}" is not a Jira project key (upper-case letters, digits, _)`);
  const byOwner = projectMap('JIRA_PROJECT_BY_OWNER', e.JIRA_PROJECT_BY_OWNER, problems);
  const byBusinessService = projectMap('JIRA_PROJECT_BY_SERVICE', e.JIRA_PROJECT_BY_SERVICE, problems);
  let statusMap: JiraStatusMap | undefined;
  try {
    statusMap = parseJiraStatusMap(e.JIRA_STATUS_MAP);
  } catch (err) {
    problems.push(`  JIRA_STATUS_MAP: ${(err as Error).message}`);
  }
  if (!e.JIRA_ISSUE_TYPE.trim()) problems.push('  JIRA_ISSUE_TYPE: must name an issue type, e.g. Task');
  let people: DirectoryPerson[] | undefined;
  if (e.CTEM_PEOPLE_FILE) {
    try {
      people = loadPeopleFile(e.CTEM_PEOPLE_FILE);
    } catch (err) {
      problems.push(`  CTEM_PEOPLE_FILE: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  return {
    jira: {
      url: e.JIRA_BASE_URL,
      email: e.JIRA_EMAIL,
      apiToken: e.JIRA_API_TOKEN,
      webhookSecret: e.JIRA_WEBHOOK_SECRET,
      routing: { defaultProject: e.JIRA_PROJECT, byOwner, byBusinessService },
      issueType: e.JIRA_ISSUE_TYPE.trim(),
      statusMap: statusMap!,
      priorities: e.JIRA_PRIORITIES.split(',').map((p) => p.trim()).filter(Boolean),
      simulatorPort: e.JIRA_SIM_PORT,
    },
    ...(people ? { people } : {}),
  };
}

/** TEMPORAL_TLS_* checked here, so a missing file is a start-up error naming its variable. */
function temporalTlsFiles(e: z.infer<typeof EnvSchema>): Config['temporal']['tlsFiles'] {
  const files = { cert: e.TEMPORAL_TLS_CERT, key: e.TEMPORAL_TLS_KEY, ca: e.TEMPORAL_TLS_CA };
  if (!files.cert && !files.key && !files.ca && !e.TEMPORAL_TLS_SERVER_NAME) return undefined;
  const problems: string[] = [];
  if (Boolean(files.cert) !== Boolean(files.key)) problems.push('  TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (the client certificate and its key)');
  for (const [name, path] of [['TEMPORAL_TLS_CERT', files.cert], ['TEMPORAL_TLS_KEY', files.key], ['TEMPORAL_TLS_CA', files.ca]] as const) {
    if (path && !existsSync(path)) problems.push(`  ${name}: no such file: ${path}`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  return {
    ...(files.cert ? { cert: resolve(files.cert) } : {}),
    ...(files.key ? { key: resolve(files.key) } : {}),
    ...(files.ca ? { ca: resolve(files.ca) } : {}),
    ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverName: e.TEMPORAL_TLS_SERVER_NAME } : {}),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const snConfigured = [e.SERVICENOW_URL, e.SERVICENOW_USER, e.SERVICENOW_PASSWORD].filter(Boolean).length;
  if (snConfigured !== 0 && snConfigured !== 3) {
    throw new ConfigError('invalid configuration:\n  SERVICENOW_URL, SERVICENOW_USER and SERVICENOW_PASSWORD go together');
  }
  const allowList = e.CTEM_VALIDATION_ALLOW.split(',').map((entry) => entry.trim()).filter(Boolean);
  try {
    parseAllowList(allowList);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  CTEM_VALIDATION_ALLOW: ${(err as Error).message}`);
  }
  const tlsFiles = temporalTlsFiles(e);
  const slack = slackConfig(e);
  const { jira, people } = jiraConfig(e);
  const tracing = tracingConfig(e);
  const publicUrl = (e.CTEM_PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/$/, '');
  // Without CTEM_PUBLIC_URL the browser's own address for the console is the better guess (see console/oidc.tsx).
  const oidc = oidcConfig(e, Boolean(e.CTEM_PUBLIC_URL), publicUrl);
  const temporalUiUrl = e.TEMPORAL_UI_URL ?? (e.TEMPORAL_ADDRESS ? undefined : `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`);
  return {
    port: e.PORT,
    host: e.CTEM_HOST,
    publicUrl,
    dataDir: resolve(e.CTEM_DATA_DIR),
    apiToken: e.CTEM_API_TOKEN,
    databaseUrl: e.DATABASE_URL,
    embeddedPostgresPort: e.CTEM_PG_PORT,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      apiKey: e.TEMPORAL_API_KEY,
      tls: e.TEMPORAL_TLS === 'true' || Boolean(e.TEMPORAL_API_KEY) || Boolean(tlsFiles),
      ...(tlsFiles ? { tlsFiles } : {}),
      devServerPort: e.CTEM_TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      ...(e.CTEM_TEMPORAL_HTTP_PORT ? { devServerHttpPort: e.CTEM_TEMPORAL_HTTP_PORT } : {}),
      ...(e.CTEM_TEMPORAL_METRICS_PORT ? { devServerMetricsPort: e.CTEM_TEMPORAL_METRICS_PORT } : {}),
      taskQueue: e.CTEM_TASK_QUEUE,
      ...(temporalUiUrl ? { uiUrl: temporalUiUrl.replace(/\/$/, '') } : {}),
      ...(e.CTEM_WORKFLOW_BUNDLE ? { workflowBundle: e.CTEM_WORKFLOW_BUNDLE } : {}),
    },
    serviceNow: {
      url: e.SERVICENOW_URL,
      user: e.SERVICENOW_USER,
      password: e.SERVICENOW_PASSWORD,
      webhookSecret: e.SERVICENOW_WEBHOOK_SECRET,
      incidentTable: e.SERVICENOW_INCIDENT_TABLE,
      simulatorPort: e.SERVICENOW_SIM_PORT,
    },
    itsm: e.CTEM_ITSM,
    // With an embedded ITSM simulator, its security operations analyst (both simulators seed them).
    ...(e.CTEM_FALLBACK_OWNER || !(e.CTEM_ITSM === 'jira' ? e.JIRA_BASE_URL : e.SERVICENOW_URL) ? { fallbackOwner: e.CTEM_FALLBACK_OWNER ?? 'sam.okafor' } : {}),
    jira,
    ...(people ? { people } : {}),
    intel: {
      epssFile: e.CTEM_EPSS_FILE,
      kevFile: e.CTEM_KEV_FILE,
      cveRecords: e.CTEM_CVE_RECORDS,
      cveMinRecords: e.CTEM_CVE_MIN_RECORDS,
      urls: { epss: e.CTEM_EPSS_URL, kev: e.CTEM_KEV_URL },
      schedule: e.CTEM_INTEL_SCHEDULE,
      maxAgeMs: { epss: e.CTEM_FEED_MAX_AGE_EPSS, kev: e.CTEM_FEED_MAX_AGE_KEV, cve: e.CTEM_FEED_MAX_AGE_CVE },
    },
    sla: {
      ackMs: e.CTEM_SLA_ACK,
      escalationIntervalMs: e.CTEM_ESCALATION_INTERVAL,
      digestWindowMs: e.CTEM_ESCALATION_DIGEST_WINDOW,
      reconcileIntervalMs: e.CTEM_TICKET_RECONCILE_INTERVAL,
      policy: e.CTEM_SLA_POLICY,
    },
    scanSlaMs: { critical: e.CTEM_SCAN_SLA_CRITICAL, high: e.CTEM_SCAN_SLA_HIGH, medium: e.CTEM_SCAN_SLA_MEDIUM, low: e.CTEM_SCAN_SLA_LOW },
    orphanReportCron: e.CTEM_ORPHAN_REPORT_SCHEDULE,
    huntingSchedule: e.CTEM_HUNTING_SCHEDULE,
    validation: {
      schedule: e.CTEM_VALIDATION_SCHEDULE,
      allowList,
      concurrency: e.CTEM_VALIDATION_CONCURRENCY,
      ratePerSecond: e.CTEM_VALIDATION_RATE,
      timeoutMs: e.CTEM_VALIDATION_TIMEOUT,
      afterRescore: e.CTEM_VALIDATION_AFTER_RESCORE === 'true',
      vantage: e.CTEM_VALIDATION_VANTAGE,
    },
    metrics: { schedule: e.CTEM_METRICS_SCHEDULE, riskAppetite: e.CTEM_RISK_APPETITE },
    operatorMetrics: {
      ...(e.CTEM_METRICS_TOKEN ? { token: e.CTEM_METRICS_TOKEN } : {}),
      ...(e.CTEM_SDK_METRICS_PORT ? { sdkPort: e.CTEM_SDK_METRICS_PORT } : {}),
      ...(e.CTEM_WORKER_METRICS_PORT ? { workerPort: e.CTEM_WORKER_METRICS_PORT } : {}),
    },
    worker: {
      queues: parseWorkerQueues(e.CTEM_WORKER_QUEUES),
      slots: {
        bulk: { activities: e.CTEM_WORKER_BULK_ACTIVITIES, workflowTasks: e.CTEM_WORKER_BULK_WORKFLOW_TASKS },
        remediation: { activities: e.CTEM_WORKER_REMEDIATION_ACTIVITIES, workflowTasks: e.CTEM_WORKER_REMEDIATION_WORKFLOW_TASKS },
      },
    },
    maxUploadBytes: Math.round(e.CTEM_MAX_UPLOAD_MB * 1024 * 1024),
    ...(slack ? { slack } : {}),
    auditRetentionMs: e.CTEM_AUDIT_RETENTION,
    logging: {
      level: e.CTEM_LOG_LEVEL ?? 'WARN',
      workerLevel: e.CTEM_WORKER_LOG_LEVEL ?? e.CTEM_LOG_LEVEL ?? 'WARN',
      format: e.CTEM_LOG_FORMAT,
      slowRequestMs: e.CTEM_SLOW_REQUEST,
    },
    ...(tracing ? { tracing } : {}),
    ...(e.CTEM_RATE_LIMIT ? { rateLimit: e.CTEM_RATE_LIMIT } : {}),
    ...(oidc ? { oidc } : {}),
  };
}
