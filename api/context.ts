import type { Client } from '@temporalio/client';
import type { MiddlewareHandler } from 'hono';
import type { Principal } from '../access/principal.js';
import type { RateLimit } from '../config/rate-limit.js';
import type { OidcConfig } from '../config/index.js';
import type { AuditChange } from './audit.js';
import type { Database } from '../db/client.js';
import type { OperatorMetrics } from '../platform/telemetry.js';
import type { FeedMaxAge } from '../prioritization/feeds/parse.js';
import type { JiraStatusMap } from '../mobilization/itsm/jira/states.js';

/** What the HTTP front needs; handlers validate, authorise, then call into these. */
export interface ApiDeps {
  database: Database;
  temporal: { client: Client; taskQueue: string; namespace: string; uiUrl?: string };
  apiToken: string;
  /** Shared secret of the ServiceNow outbound webhook (HMAC-SHA256 of the body). */
  serviceNowWebhookSecret?: string;
  /** Jira as the ITSM: the admin webhook's secret (X-Hub-Signature, HMAC-SHA256 of the body) and the status mapping. */
  jira?: { webhookSecret: string; statusMap: JiraStatusMap };
  reportsDir: string;
  maxUploadBytes: number;
  scanSlaMs: Record<'critical' | 'high' | 'medium' | 'low', number>;
  /** Open act + attend exposures the program accepts (CTEM_RISK_APPETITE); the default when absent. */
  riskAppetite?: number;
  /** Threat-intel feeds: which are fetched, and the freshness bound of imports (defaults when absent). */
  intel?: { urls: { epss?: string | undefined; kev?: string | undefined }; maxAgeMs: FeedMaxAge; cveMinRecords?: number };
  /** The Slack bot in HTTP mode: answers requests to /slack/events (verifies Slack's signature itself). */
  slack?: { handle(request: Request): Promise<Response> };
  /** Operator metrics served on /metrics (platform/telemetry.ts), and the token that may read only them. */
  operatorMetrics?: OperatorMetrics;
  metricsToken?: string;
  /** Middleware run first on every request: the request's trace span and its log line (platform/). */
  observe?: MiddlewareHandler[];
  /** Requests per authenticated identity and window on /api (CTEM_RATE_LIMIT); absent: no limit. */
  rateLimit?: RateLimit;
  /** Console sign-in with OpenID Connect (console/oidc.tsx); absent: local accounts and tokens only. */
  oidc?: OidcConfig;
  /** The API's OpenAPI document, built in-process (createApp sets it; the console renders it). */
  openApiDocument?: () => unknown;
}

export interface AppEnv {
  Variables: {
    deps: ApiDeps;
    /** Who is calling: set by the authentication guard before any /api handler runs. */
    principal: Principal;
    /** The request's id (X-Request-Id when the caller sent a sane one): answered, logged and audited. */
    requestId: string;
    /** What a mutating handler changed (target, before, after): the audit trail records it (api/audit.ts). */
    auditChange?: AuditChange;
  };
}
