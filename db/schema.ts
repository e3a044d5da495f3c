// The single source of truth for the system of record. Migrations in db/migrations are generated
// from this file by drizzle-kit (`npm run db:generate`) and committed.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();

/** Anything that can carry an exposure: a container image, a host, a repository, a filesystem. */
export const assets = pgTable('assets', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /** Identity key, e.g. `image:docker.io/library/nginx:1.25`; stable across scans and scanners. */
  assetKey: text('asset_key').notNull().unique(),
  kind: text('kind').notNull(),
  name: text('name').notNull(),
  digest: text('digest'),
  /** ServiceNow user_name (or e-mail) of the accountable owner; null means orphan. */
  owner: text('owner'),
  businessService: text('business_service'),
  criticality: text('criticality', { enum: ['critical', 'high', 'medium', 'low'] }),
  environment: text('environment'),
  internetFacing: boolean('internet_facing'),
  /** Ports the internet reaches (public IP and a security-group rule open to 0.0.0.0/0). */
  exposedPorts: text('exposed_ports').array(),
  publicIps: text('public_ips').array(),
  securityGroups: text('security_groups').array(),
  tags: jsonb('tags').$type<Record<string, string>>(),
  /** Which source set each context attribute, for precedence (see docs/ARCHITECTURE.md). */
  attributeSources: jsonb('attribute_sources').$type<Record<string, string>>().notNull().default({}),
  firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
  /** Last time a scan covered this asset (with or without findings): the scan-coverage KPI. */
  lastScannedAt: timestamp('last_scanned_at', { withTimezone: true }),
});

/**
 * Every name an asset is known by (fqdn, hostname, ip, instance id, image, image digest, CMDB id).
 * A record from any source that shares one of these values is the same asset.
 */
export const assetIdentifiers = pgTable(
  'asset_identifiers',
  {
    kind: text('kind').notNull(),
    value: text('value').notNull(),
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    source: text('source').notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.value] }), index('asset_identifiers_asset_idx').on(t.assetId)],
);

/** image -runs_on-> host, host -part_of-> business service, container -instance_of-> image. */
export const assetRelations = pgTable(
  'asset_relations',
  {
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    relation: text('relation', { enum: ['runs_on', 'instance_of', 'part_of'] }).notNull(),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    source: text('source').notNull(),
  },
  (t) => [primaryKey({ columns: [t.assetId, t.relation, t.targetId] })],
);

/** Inbound security-group / firewall rules of the latest import per source. */
export const exposureRules = pgTable(
  'exposure_rules',
  {
    source: text('source').notNull(),
    securityGroup: text('security_group').notNull(),
    protocol: text('protocol').notNull(),
    fromPort: integer('from_port').notNull(),
    toPort: integer('to_port').notNull(),
    cidr: text('cidr').notNull(),
  },
  (t) => [index('exposure_rules_group_idx').on(t.securityGroup)],
);

/** EDR evidence: this package / process was seen running on this asset. */
export const runtimeEvidence = pgTable(
  'runtime_evidence',
  {
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    package: text('package').notNull().default(''),
    version: text('version').notNull().default(''),
    process: text('process').notNull().default(''),
    source: text('source').notNull(),
    observedAt: timestamp('observed_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.assetId, t.package, t.version, t.process] })],
);

/**
 * Discovery sources the platform pulls on a schedule: a scanner report at a URL (optionally per
 * target), or the ServiceNow CMDB. Pushed reports need no entry here.
 */
export const discoverySources = pgTable('discovery_sources', {
  name: text('name').primaryKey(),
  kind: text('kind', { enum: ['report-url', 'servicenow-cmdb'] }).notNull(),
  config: jsonb('config').$type<Record<string, unknown>>().notNull(),
  /** A Temporal schedule interval (e.g. 1d) or cron expression; null: only on demand and on deploy events. */
  schedule: text('schedule'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/** Generated reports (the weekly orphan-asset report), kept for history. */
export const reports = pgTable('reports', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kind: text('kind').notNull(),
  body: jsonb('body').notNull(),
  createdAt: createdAt(),
});

/** One uploaded report and what became of it. */
export const scans = pgTable('scans', {
  id: uuid('id').primaryKey(),
  source: text('source').notNull(),
  target: text('target'),
  format: text('format').notNull(),
  /** The name the report was uploaded under, for error messages. */
  reportName: text('report_name').notNull(),
  status: text('status', { enum: ['running', 'completed', 'failed'] }).notNull(),
  workflowId: text('workflow_id').notNull(),
  reportPath: text('report_path').notNull(),
  reportSha256: text('report_sha256').notNull(),
  reportBytes: bigint('report_bytes', { mode: 'number' }).notNull(),
  owner: text('owner'),
  /**
   * A complete report lists everything the source sees on its assets, so what it no longer lists is
   * closed; a partial one only adds. Null (not declared): complete unless the report is empty, since
   * an empty report is more often a failed scan than a clean asset.
   */
  complete: boolean('complete'),
  counts: jsonb('counts').$type<Record<string, number>>().notNull().default({}),
  error: text('error'),
  createdAt: createdAt(),
  completedAt: timestamp('completed_at', { withTimezone: true }),
});

/** The assets one scan or context import covered: scoring and mobilization work on these. */
export const scanAssets = pgTable(
  'scan_assets',
  {
    scanId: uuid('scan_id').notNull(),
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
  },
  (t) => [primaryKey({ columns: [t.scanId, t.assetId] })],
);

/**
 * One exposure of one asset: (asset, issue id, component@version, path). The fingerprint is a hash of
 * exactly those identity fields, with the asset as resolved across sources (so two scanners naming
 * one host differently still agree), and never of titles or descriptions, which scanners rewrite.
 * Stored with fillfactor 50 (migration 0004, which drizzle cannot express) so rescans update in place.
 */
export const findings = pgTable(
  'findings',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    fingerprint: text('fingerprint').notNull().unique(),
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    kind: text('kind').notNull(),
    issueId: text('issue_id').notNull(),
    component: text('component').notNull(),
    version: text('version').notNull(),
    location: text('location').notNull().default(''),
    fixedVersion: text('fixed_version'),
    severity: text('severity').notNull(),
    cvssScore: real('cvss_score'),
    /** CVSS v3 vector: the policy reads attack vector, privileges, interaction and impact from it. */
    cvssVector: text('cvss_vector'),
    cwes: text('cwes').array(),
    title: text('title'),
    status: text('status', { enum: ['open', 'closed'] }).notNull().default('open'),
    /** What the scanner or a VEX statement says (not_affected, false_positive, fix_available...). */
    vendorStatus: text('vendor_status'),
    closedAt: timestamp('closed_at', { withTimezone: true }),
    closedReason: text('closed_reason'),
    closedByScanId: uuid('closed_by_scan_id'),
    reopenCount: integer('reopen_count').notNull().default(0),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    firstScanId: uuid('first_scan_id').notNull(),
    lastScanId: uuid('last_scan_id').notNull(),
    // Prioritization output; null until scored.
    tier: text('tier', { enum: ['act', 'attend', 'track*', 'track'] }),
    score: doublePrecision('score'),
    dueAt: timestamp('due_at', { withTimezone: true }),
    explanation: jsonb('explanation').$type<ExplanationFactor[]>(),
    scoredAt: timestamp('scored_at', { withTimezone: true }),
    /** The golden ticket this finding belongs to, once mobilized. */
    ticketKey: text('ticket_key'),
  },
  (t) => [
    index('findings_asset_idx').on(t.assetId),
    index('findings_issue_idx').on(t.issueId),
    index('findings_tier_idx').on(t.tier).where(sql`${t.status} = 'open'`),
    index('findings_ticket_idx').on(t.ticketKey),
  ],
);

/**
 * Which sources report a finding: the same CVE on the same package from Trivy and Grype is one
 * finding with two rows here. A complete rescan by one source marks only its own row absent; the
 * finding closes when no source reports it any more. Fillfactor 50, as findings (migration 0004).
 */
export const findingSources = pgTable(
  'finding_sources',
  {
    findingId: bigint('finding_id', { mode: 'number' })
      .notNull()
      .references(() => findings.id),
    source: text('source').notNull(),
    present: boolean('present').notNull().default(true),
    vendorStatus: text('vendor_status'),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastScanId: uuid('last_scan_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.findingId, t.source] }), index('finding_sources_source_idx').on(t.source, t.present)],
);

export interface ExplanationFactor {
  factor: string;
  value: string | number | boolean | null;
  source: string;
  effect: string;
}

/** FIRST EPSS scores, per feed version (the active one and the staged / recent ones beside it). */
export const epssScores = pgTable(
  'epss_scores',
  {
    feedVersion: text('feed_version').notNull(),
    cve: text('cve').notNull(),
    epss: doublePrecision('epss').notNull(),
    percentile: doublePrecision('percentile').notNull(),
  },
  (t) => [primaryKey({ columns: [t.feedVersion, t.cve] })],
);

/** CISA Known Exploited Vulnerabilities, per feed version. */
export const kevEntries = pgTable(
  'kev_entries',
  {
    feedVersion: text('feed_version').notNull(),
    cve: text('cve').notNull(),
    vendor: text('vendor'),
    product: text('product'),
    dateAdded: text('date_added'),
    dueDate: text('due_date'),
    knownRansomware: boolean('known_ransomware').notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.feedVersion, t.cve] })],
);

/**
 * Every feed version seen, with its validation: a version takes effect (`active`) only after it
 * passed; `staged` versions can be evaluated in shadow mode; `rejected` ones say why.
 */
export const intelFeeds = pgTable(
  'intel_feeds',
  {
    kind: text('kind', { enum: ['epss', 'kev'] }).notNull(),
    version: text('version').notNull(),
    status: text('status', { enum: ['active', 'staged', 'rejected', 'retired'] }).notNull().default('active'),
    rows: integer('rows').notNull(),
    sha256: text('sha256').notNull(),
    /** The feed's own date (EPSS score_date, KEV dateReleased). */
    publishedAt: timestamp('published_at', { withTimezone: true }),
    /** Where it came from: a URL, or `file:<name>`. */
    origin: text('origin'),
    validation: jsonb('validation').$type<Array<{ check: string; ok: boolean; detail: string }>>().notNull().default([]),
    importedAt: timestamp('imported_at', { withTimezone: true }).notNull().defaultNow(),
    activatedAt: timestamp('activated_at', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.kind, t.version] })],
);

/** Prioritization policies: declarative documents, versioned; one active, others shadow or retired. */
export const policies = pgTable('policies', {
  version: text('version').primaryKey(),
  document: jsonb('document').notNull(),
  status: text('status', { enum: ['active', 'shadow', 'retired'] }).notNull(),
  createdAt: createdAt(),
  activatedAt: timestamp('activated_at', { withTimezone: true }),
});

/**
 * Compensating controls (WAF rule, segmentation, EDR coverage, disabled feature...): what they
 * mitigate (issue ids, CWEs, components, ports) on which assets, with what effect on the policy.
 */
export const compensatingControls = pgTable('compensating_controls', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  name: text('name').notNull().unique(),
  kind: text('kind', { enum: ['waf', 'segmentation', 'edr', 'feature_disabled', 'other'] }).notNull(),
  /** `{ issueIds?, cwes?, components?, ports? }`: a finding matching any listed value is mitigated. */
  mitigates: jsonb('mitigates').$type<{ issueIds?: string[]; cwes?: string[]; components?: string[]; ports?: string[] }>().notNull(),
  /** `{ assetKeys?, businessServices?, environments?, all? }`: where the control applies. */
  appliesTo: jsonb('applies_to').$type<{ assetKeys?: string[]; businessServices?: string[]; environments?: string[]; all?: boolean }>().notNull(),
  /** not_exposed: blocks the path from the internet; not_exploitable: blocks exploitation outright. */
  effect: text('effect', { enum: ['not_exposed', 'not_exploitable'] }).notNull(),
  description: text('description'),
  expiresAt: timestamp('expires_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Each finding's score over time: written whenever its tier, score or due date changes. */
export const scoreHistory = pgTable(
  'score_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    findingId: bigint('finding_id', { mode: 'number' })
      .notNull()
      .references(() => findings.id),
    tier: text('tier').notNull(),
    score: doublePrecision('score').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }),
    policyVersion: text('policy_version').notNull(),
    explanation: jsonb('explanation').$type<ExplanationFactor[]>(),
    reason: text('reason').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('score_history_finding_idx').on(t.findingId, t.at)],
);

/** A finding's tier or due date changed: mobilization consumes these. */
export const exposureEvents = pgTable(
  'exposure_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    findingId: bigint('finding_id', { mode: 'number' })
      .notNull()
      .references(() => findings.id),
    assetId: bigint('asset_id', { mode: 'number' }).notNull(),
    oldTier: text('old_tier'),
    newTier: text('new_tier').notNull(),
    oldDueAt: timestamp('old_due_at', { withTimezone: true }),
    newDueAt: timestamp('new_due_at', { withTimezone: true }),
    reason: text('reason').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('exposure_events_at_idx').on(t.at)],
);

/** Named selectors over the inventory (business services, environments, exposure...). */
export const scopes = pgTable('scopes', {
  name: text('name').primaryKey(),
  /** `{ businessServices?, environments?, internetFacing?, assetKinds?, owners? }`; empty: everything. */
  selector: jsonb('selector').$type<Record<string, unknown>>().notNull(),
  description: text('description'),
  createdAt: createdAt(),
});

/** The noise report per scope over time: severity-based counts against policy tiers. */
export const noiseSnapshots = pgTable(
  'noise_snapshots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    scope: text('scope').notNull(),
    counts: jsonb('counts').$type<Record<string, number>>().notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('noise_snapshots_scope_idx').on(t.scope, t.at)],
);

/** A golden ticket: one remediation action (one fix) covering many findings, one owner. */
export const tickets = pgTable(
  'tickets',
  {
    key: text('key').primaryKey(),
    workflowId: text('workflow_id').notNull(),
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    component: text('component').notNull(),
    fixedVersion: text('fixed_version').notNull(),
    owner: text('owner'),
    state: text('state', {
      enum: ['orphaned', 'opening', 'new', 'in_progress', 'on_hold', 'resolved', 'closed'],
    }).notNull(),
    tier: text('tier').notNull(),
    externalSysId: text('external_sys_id'),
    externalNumber: text('external_number'),
    ackDueAt: timestamp('ack_due_at', { withTimezone: true }).notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    escalationLevel: integer('escalation_level').notNull().default(0),
    findingCount: integer('finding_count').notNull().default(0),
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('tickets_owner_idx').on(t.owner), uniqueIndex('tickets_external_idx').on(t.externalSysId)],
);

/** Every escalation sent, once: (ticket, phase, level) is unique so a retried activity records nothing twice. */
export const escalations = pgTable(
  'escalations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ticketKey: text('ticket_key')
      .notNull()
      .references(() => tickets.key),
    phase: text('phase', { enum: ['acknowledgement', 'resolution'] }).notNull(),
    level: integer('level').notNull(),
    notifiedUser: text('notified_user'),
    notifiedName: text('notified_name'),
    reason: text('reason').notNull(),
    /** Set once the ITSM ticket carries the work note, so a retried activity does not add it twice. */
    ticketNotedAt: timestamp('ticket_noted_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('escalations_once_idx').on(t.ticketKey, t.phase, t.level)],
);

/** Inbound ticket events (ServiceNow webhooks), deduplicated by their event id. */
export const ticketEvents = pgTable('ticket_events', {
  eventId: text('event_id').primaryKey(),
  ticketKey: text('ticket_key').notNull(),
  state: text('state').notNull(),
  payload: jsonb('payload').notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
});
