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
  pgView,
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
  /** Yearly revenue the asset carries (set on business services in the CMDB), in the CMDB's currency. */
  annualRevenue: doublePrecision('annual_revenue'),
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
  /** Set when this asset was merged into another (asset_merges): it keeps no identifiers or findings until the merge is undone. */
  mergedInto: bigint('merged_into', { mode: 'number' }),
}, (t) => [
  // The inventory's order, for keyset pages (db/read-models/inventory.ts).
  index('assets_name_idx').on(t.name, t.id),
]);

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

/**
 * Two assets found to be one (a record linked identifiers of both): what moved from the merged asset
 * to the survivor, kept so the asset's history shows it and an admin can undo it.
 */
export const assetMerges = pgTable(
  'asset_merges',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    survivorId: bigint('survivor_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    mergedId: bigint('merged_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    /** Why: the source and the identifiers of the record that linked the two. */
    reason: jsonb('reason').$type<Record<string, unknown>>().notNull(),
    /** What moved (identifiers, findings, sources, context, tickets...), enough to put it back. */
    moved: jsonb('moved').$type<Record<string, unknown>>().notNull(),
    mergedAt: timestamp('merged_at', { withTimezone: true }).notNull().defaultNow(),
    undoneAt: timestamp('undone_at', { withTimezone: true }),
    undoneBy: text('undone_by'),
  },
  (t) => [index('asset_merges_survivor_idx').on(t.survivorId), index('asset_merges_merged_idx').on(t.mergedId)],
);

/**
 * image -runs_on-> host, host -part_of-> business service, container -instance_of-> image,
 * image -built_from-> base image (one per image: a newer claim replaces it).
 */
export const assetRelations = pgTable(
  'asset_relations',
  {
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    relation: text('relation', { enum: ['runs_on', 'instance_of', 'part_of', 'built_from'] }).notNull(),
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

/**
 * Flows a declared network-segment policy allows (context source `network-segments`), with the
 * segments' CIDRs resolved. An import replaces its source's flows. `from_segment` `internet` has no
 * CIDRs: it makes the to-segment's assets internet-facing.
 */
export const networkFlows = pgTable(
  'network_flows',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    source: text('source').notNull(),
    fromSegment: text('from_segment').notNull(),
    toSegment: text('to_segment').notNull(),
    fromCidrs: text('from_cidrs').array().notNull(),
    toCidrs: text('to_cidrs').array().notNull(),
    /** `443/tcp`, `8000-8100/tcp`, `all`. */
    ports: text('ports').array().notNull(),
    description: text('description'),
  },
  (t) => [index('network_flows_source_idx').on(t.source, t.toSegment)],
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
 * Open ports a network scanner saw from the internet (a scan uploaded with vantage `internet`): with
 * firewall rules, evidence of internet exposure. A later internet scan by the same source replaces
 * what it saw on the assets it covered.
 */
export const observedPorts = pgTable(
  'observed_ports',
  {
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    source: text('source').notNull(),
    /** `443/tcp`. */
    port: text('port').notNull(),
    scanId: uuid('scan_id').notNull(),
    observedAt: timestamp('observed_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.assetId, t.source, t.port] })],
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
  /**
   * Where a network scanner looked from: `internet` makes the open ports it reports evidence of
   * internet exposure; `internal` or null (not declared) does not.
   */
  vantage: text('vantage', { enum: ['internet', 'internal'] }),
  counts: jsonb('counts').$type<Record<string, number>>().notNull().default({}),
  /** Uploaded with strict=true: the first parse warning fails the scan instead of being kept. */
  strict: boolean('strict').notNull().default(false),
  /** What the connector skipped or did not understand (`{ file, format, field?, reason }`), kept with the scan. */
  warnings: jsonb('warnings').$type<Array<{ file: string; format: string; field?: string; reason: string }>>().notNull().default([]),
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
 * Stored with fillfactor 30 (migrations 0004 and 0011, which drizzle cannot express) so rescans and
 * rescoring update in place: no index covers a column that rescoring writes (tier, score, due date), and the
 * asset is not a foreign key (assets are never deleted), so a million inserts pay no trigger per row.
 * `last_seen_at` / `last_scan_id` are written when a scan changes the finding or confirms it in a
 * partial report; a complete scan records itself once per asset in `source_coverage`, and the
 * finding's effective last seen is the later of the two (`findingLastSeen` in db/read-models/inventory.ts).
 */
export const findings = pgTable(
  'findings',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    fingerprint: text('fingerprint').notNull().unique(),
    assetId: bigint('asset_id', { mode: 'number' }).notNull(),
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
    /**
     * The explanation, stored once per distinct content in `explanation_parts`: the vulnerability's
     * factors (feeds, CVSS), the asset's (exposure, environment, EDR evidence) and the decision's
     * (table row, modifiers, tier). The SQL function `explanation(findings)` assembles the factor
     * list, so `f.explanation` reads as one jsonb array.
     */
    explanationVuln: uuid('explanation_vuln'),
    explanationAsset: uuid('explanation_asset'),
    explanationContext: uuid('explanation_context'),
    scoredAt: timestamp('scored_at', { withTimezone: true }),
    /**
     * The finding's latest change of tier or due date (id from score_changes' sequence, when, why,
     * under which policy, from what): written in the same in-place update as the new tier, and
     * moved to score_changes when the next change supersedes it.
     */
    changeId: bigint('change_id', { mode: 'number' }),
    changedAt: timestamp('changed_at', { withTimezone: true }),
    changeReason: text('change_reason'),
    changePolicy: text('change_policy'),
    previousTier: text('previous_tier'),
    previousDueAt: timestamp('previous_due_at', { withTimezone: true }),
    /** The golden ticket this finding belongs to, once mobilized. */
    ticketKey: text('ticket_key'),
    /**
     * The package's ecosystem as the scanner names it (deb, apk, rpm, npm, pypi, maven, go...), and
     * whether it is an OS package (`os`) or an application dependency (`app`): an image's OS layer and
     * each of its manifests are fixed by different people in different ways.
     */
    ecosystem: text('ecosystem'),
    packageClass: text('package_class', { enum: ['os', 'app'] }),
    /** The lockfile or manifest an application package comes from (`app/package-lock.json`); '' when none. */
    manifest: text('manifest').notNull().default(''),
    /** The OS source package (libc6 and libc-bin are both glibc): one upgrade fixes them together. */
    sourcePackage: text('source_package'),
    /** Where the fixed version came from: the scanner's field, its text (solution, message), or advisory data. */
    fixSource: text('fix_source', { enum: ['scanner', 'text', 'advisory'] }),
    /** Every other id the vulnerability is known by (GHSA, OSV, distro advisories), beside issue_id. */
    aliases: text('aliases').array().notNull().default(sql`'{}'::text[]`),
  },
  (t) => [
    index('findings_asset_idx').on(t.assetId),
    index('findings_issue_idx').on(t.issueId),
    index('findings_ticket_idx').on(t.ticketKey).where(sql`${t.ticketKey} is not null`),
    // The exposure list's order (db/read-models/exposures.ts): highest score first, unscored last,
    // then the earliest due date, then id, as never-null expressions so a keyset cursor is one
    // row comparison the index serves; per status, and per status and tier (the usual filters).
    index('findings_list_idx').on(t.status, sql`(-coalesce(${t.score}, '-Infinity'::float8))`, sql`coalesce(${t.dueAt}, 'infinity'::timestamptz)`, t.id),
    index('findings_list_tier_idx').on(t.status, t.tier, sql`(-coalesce(${t.score}, '-Infinity'::float8))`, sql`coalesce(${t.dueAt}, 'infinity'::timestamptz)`, t.id),
    // The console's search by the start of a component name (LIKE 'prefix%').
    index('findings_component_idx').on(t.component.op('text_pattern_ops')).where(sql`${t.status} = 'open'`),
    // Search and filters by any alias (`aliases @> array[...]`).
    index('findings_aliases_idx').using('gin', t.aliases),
  ],
);

/**
 * Ids that name the same vulnerability (GHSA-x, PYSEC-y, DSA-z -> CVE-w), learned from the reports
 * that state both: a finding is stored under the canonical id, so two scanners that name one
 * vulnerability differently report one finding.
 */
export const vulnerabilityAliases = pgTable(
  'vulnerability_aliases',
  {
    alias: text('alias').primaryKey(),
    canonical: text('canonical').notNull(),
    /** Where the link was learned (a source name, `cve-records`, `osv`). */
    source: text('source').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('vulnerability_aliases_canonical_idx').on(t.canonical)],
);

/**
 * Which sources report a finding: the same CVE on the same package from Trivy and Grype is one
 * finding with two rows here. A complete rescan by one source marks only its own row absent; the
 * finding closes when no source reports it any more. Fillfactor 90 (migration 0011): a complete
 * rescan no longer rewrites these rows, so they need little room for in-place updates.
 */
export const findingSources = pgTable(
  'finding_sources',
  {
    findingId: bigint('finding_id', { mode: 'number' }).notNull(),
    source: text('source').notNull(),
    present: boolean('present').notNull().default(true),
    vendorStatus: text('vendor_status'),
    /** This source's own rating of the finding (scanners rate one CVE from different sources): kept so it can be shown, and so the finding's rating never depends on which scanner reported last. */
    severity: text('severity'),
    cvssScore: real('cvss_score'),
    cvssVector: text('cvss_vector'),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastScanId: uuid('last_scan_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.findingId, t.source] })],
);

/**
 * The last scan of each source on each asset, and the last complete one: a finding a source still
 * reports (present) was seen by that source's last complete scan of its asset, so a complete rescan
 * writes one row per asset here instead of one per unchanged finding and source.
 */
export const sourceCoverage = pgTable(
  'source_coverage',
  {
    assetId: bigint('asset_id', { mode: 'number' }).notNull(),
    source: text('source').notNull(),
    lastCompleteScanId: uuid('last_complete_scan_id').notNull(),
    lastCompleteAt: timestamp('last_complete_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.assetId, t.source] })],
);

/**
 * Explanation parts, keyed by a hash of what they say: a million findings share a few thousand
 * vulnerability parts and context parts, so scoring writes two ids per finding, not its text.
 */
export const explanationParts = pgTable('explanation_parts', {
  id: uuid('id').primaryKey(),
  body: jsonb('body').notNull(),
});

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
 * What CVE records say about each CVE (CVE JSON 5: the CVE Program's list and CISA Vulnrichment share
 * it), per feed version like EPSS and KEV: the CNA's and the ADPs' CVSS, CWE, affected versions and
 * CISA's SSVC decision points. `sha256` is the record file's hash: an import parses only the records
 * whose hash changed since the previous version and copies the others.
 */
export const cveRecords = pgTable(
  'cve_records',
  {
    feedVersion: text('feed_version').notNull(),
    cve: text('cve').notNull(),
    /** PUBLISHED or REJECTED. */
    state: text('state').notNull(),
    datePublished: timestamp('date_published', { withTimezone: true }),
    dateUpdated: timestamp('date_updated', { withTimezone: true }),
    /** The CNA's CVSS v3.x base vector and score (3.1 over 3.0). */
    cnaVector: text('cna_vector'),
    cnaScore: real('cna_score'),
    /** The CNA's CVSS v4.0 vector and score, where the record has one. */
    cnaV4Vector: text('cna_v4_vector'),
    cnaV4Score: real('cna_v4_score'),
    /** An ADP's CVSS v3.x vector and score (CISA's Vulnrichment adds one where the CNA gave none). */
    adpVector: text('adp_vector'),
    adpScore: real('adp_score'),
    /** Who wrote the ADP vector (`CISA-ADP`). */
    adpProvider: text('adp_provider'),
    cwes: text('cwes').array(),
    /** CISA's SSVC decision points, normalised to lower case: none / poc / active, yes / no, partial / total. */
    ssvcExploitation: text('ssvc_exploitation', { enum: ['none', 'poc', 'active'] }),
    ssvcAutomatable: text('ssvc_automatable', { enum: ['yes', 'no'] }),
    ssvcTechnicalImpact: text('ssvc_technical_impact', { enum: ['partial', 'total'] }),
    /** When CISA made the SSVC assessment (a backtest ignores assessments made after its t0). */
    ssvcAssessedAt: timestamp('ssvc_assessed_at', { withTimezone: true }),
    /** Affected products and version ranges, as the record states them (vendor, product, versions). */
    affected: jsonb('affected').$type<Array<{ vendor?: string; product?: string; packageName?: string; collectionURL?: string; defaultStatus?: string; versions?: Array<{ version: string; status: string; lessThan?: string; lessThanOrEqual?: string; versionType?: string }> }>>(),
    sha256: text('sha256').notNull(),
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
    kind: text('kind', { enum: ['epss', 'kev', 'cve'] }).notNull(),
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

/**
 * What the estate was last scored with (policy and feed versions, context generation), so a
 * rescoring can tell what changed since and score only the findings it affects, or nothing.
 */
export const scoringInputs = pgTable('scoring_inputs', {
  name: text('name').primaryKey(),
  inputs: jsonb('inputs').$type<Record<string, string | number | null>>().notNull(),
  scoredAt: timestamp('scored_at', { withTimezone: true }).notNull().defaultNow(),
});

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
  /**
   * Whether a probe confirmed the claim (validation/): `verified` (the port is closed from the
   * internet vantage, the WAF blocked the probe), `failed` (the probe got through), `unverified`
   * (nothing a probe can check, or not probed yet).
   */
  verification: text('verification', { enum: ['verified', 'failed', 'unverified'] }).notNull().default('unverified'),
  verifiedAt: timestamp('verified_at', { withTimezone: true }),
  verificationDetail: jsonb('verification_detail').$type<Record<string, unknown>>(),
  createdAt: createdAt(),
});

/**
 * The archive part of score history (read it through the `score_history` view): changes that a
 * later one superseded. When a finding's tier or due date changes again, its previous change (kept
 * on the finding until then) moves here. A first scoring, which changes every finding, thus writes
 * no row here.
 */
export const scoreChanges = pgTable(
  'score_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    findingId: bigint('finding_id', { mode: 'number' }).notNull(),
    assetId: bigint('asset_id', { mode: 'number' }).notNull(),
    oldTier: text('old_tier'),
    tier: text('tier').notNull(),
    score: doublePrecision('score').notNull(),
    oldDueAt: timestamp('old_due_at', { withTimezone: true }),
    dueAt: timestamp('due_at', { withTimezone: true }),
    policyVersion: text('policy_version').notNull(),
    /** As on findings: `explanation(score_history)` assembles them. */
    explanationVuln: uuid('explanation_vuln'),
    explanationAsset: uuid('explanation_asset'),
    explanationContext: uuid('explanation_context'),
    reason: text('reason').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('score_changes_finding_idx').on(t.findingId, t.at)],
);

/**
 * Score history, the one name to read it by: each finding's score over time, one row per change of
 * its tier or due date (with the score and explanation of that state; the latest row shows the
 * finding's current ones). Each row is also an exposure event, what mobilization re-plans from (by
 * id range). Stored as the archive part, score_changes, and each finding's latest change, kept on
 * the finding.
 */
export const scoreHistory = pgView('score_history', {
  id: bigint('id', { mode: 'number' }).notNull(),
  findingId: bigint('finding_id', { mode: 'number' }).notNull(),
  assetId: bigint('asset_id', { mode: 'number' }).notNull(),
  oldTier: text('old_tier'),
  tier: text('tier').notNull(),
  score: doublePrecision('score').notNull(),
  oldDueAt: timestamp('old_due_at', { withTimezone: true }),
  dueAt: timestamp('due_at', { withTimezone: true }),
  policyVersion: text('policy_version').notNull(),
  explanationVuln: uuid('explanation_vuln'),
  explanationAsset: uuid('explanation_asset'),
  explanationContext: uuid('explanation_context'),
  reason: text('reason').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull(),
}).existing();

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
      enum: ['orphaned', 'opening', 'new', 'in_progress', 'on_hold', 'risk_accepted', 'resolved', 'closed', 'verified'],
    }).notNull(),
    tier: text('tier').notNull(),
    externalSysId: text('external_sys_id'),
    externalNumber: text('external_number'),
    ackDueAt: timestamp('ack_due_at', { withTimezone: true }).notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    escalationLevel: integer('escalation_level').notNull().default(0),
    /** The highest level this ticket ever reached, how many escalations it had and the latest: kept after acknowledgement. */
    escalationPeak: integer('escalation_peak').notNull().default(0),
    escalationCount: integer('escalation_count').notNull().default(0),
    lastEscalatedAt: timestamp('last_escalated_at', { withTimezone: true }),
    findingCount: integer('finding_count').notNull().default(0),
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
    /** The first acknowledgement, kept when a re-opening clears acknowledged_at: what the response's speed is measured by. */
    firstAcknowledgedAt: timestamp('first_acknowledged_at', { withTimezone: true }),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    /** When the next scan confirmed the fix (state verified). */
    verifiedAt: timestamp('verified_at', { withTimezone: true }),
    /** Times a resolved ticket went back to work (a failed verification): the response's adequacy. */
    reopenCount: integer('reopen_count').notNull().default(0),
    /**
     * The remediation action the ticket asks for (mobilization/actions.ts): `package` (one package on
     * one asset, tickets planned before actions existed), `os-layer`, `base-image`, `manifest`,
     * `product`, `os-patch`, `config`, `secret` or `mitigation` (no fix known: compensating controls).
     */
    action: text('action').notNull().default('package'),
    /** Why the ticket is in the orphan queue (no owner, owner unknown or inactive in the ITSM); null when owned. */
    orphanReason: text('orphan_reason'),
    /** Which ITSM holds the ticket (`servicenow`, `jira`), and a link to it. */
    itsm: text('itsm').notNull().default('servicenow'),
    externalUrl: text('external_url'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // The ticket list's order (due date, then key) alone and under its usual filters, for keyset pages.
    index('tickets_owner_idx').on(t.owner, t.dueAt, t.key),
    index('tickets_due_idx').on(t.dueAt, t.key),
    index('tickets_state_due_idx').on(t.state, t.dueAt, t.key),
    uniqueIndex('tickets_external_idx').on(t.externalSysId),
    index('tickets_orphan_idx').on(t.orphanReason).where(sql`${t.orphanReason} is not null`),
  ],
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
    /** 0 for the ticket's first opening; +1 each time it re-opens (failed verification, expired risk acceptance). */
    cycle: integer('cycle').notNull().default(0),
    notifiedUser: text('notified_user'),
    notifiedName: text('notified_name'),
    reason: text('reason').notNull(),
    /** Set once the ITSM ticket carries the work note, so a retried activity does not add it twice. */
    ticketNotedAt: timestamp('ticket_noted_at', { withTimezone: true }),
    /** The digest that told the manager of this escalation (one per manager per round), once sent. */
    digestKey: text('digest_key'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('escalations_once_idx').on(t.ticketKey, t.phase, t.level, t.cycle),
    index('escalations_undigested_idx').on(t.notifiedUser).where(sql`${t.digestKey} is null`),
  ],
);

/** One message per manager per escalation round, naming every overdue ticket of their reports. */
export const escalationDigests = pgTable('escalation_digests', {
  /** `<manager>:<round start, ISO>`: stable, so a retried round sends nothing twice. */
  key: text('key').primaryKey(),
  manager: text('manager').notNull(),
  roundAt: timestamp('round_at', { withTimezone: true }).notNull(),
  ticketKeys: text('ticket_keys').array().notNull(),
  /** Set once the notifier delivered it. */
  sentAt: timestamp('sent_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Inbound ticket events (ServiceNow webhooks), deduplicated by their event id. */
export const ticketEvents = pgTable('ticket_events', {
  eventId: text('event_id').primaryKey(),
  ticketKey: text('ticket_key').notNull(),
  state: text('state').notNull(),
  payload: jsonb('payload').notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Risk acceptances applied to golden tickets: the SLA pauses until `expires_at`, then the ticket re-opens. */
export const riskAcceptances = pgTable(
  'risk_acceptances',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ticketKey: text('ticket_key')
      .notNull()
      .references(() => tickets.key),
    requester: text('requester').notNull(),
    approver: text('approver').notNull(),
    reason: text('reason').notNull(),
    acceptedAt: timestamp('accepted_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Set when the acceptance ran out (re-opened) or ended early (resolved). */
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('risk_acceptances_once_idx').on(t.ticketKey, t.acceptedAt, t.expiresAt)],
);

/** Campaigns: discovery and prioritization of one scope on demand (id `campaign:<scope>:<short id>`), and what they surfaced. */
export const campaigns = pgTable('campaigns', {
  id: text('id').primaryKey(),
  scope: text('scope').notNull(),
  hypothesis: text('hypothesis'),
  /** Who started it (a Slack user id, or an API caller). */
  requestedBy: text('requested_by').notNull(),
  status: text('status', { enum: ['running', 'completed', 'failed'] }).notNull().default('running'),
  /** Counts, the sources run and the top exposures at the end of the run. */
  results: jsonb('results').$type<Record<string, unknown>>(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
});

/** Signatures of Slack requests already served: a replay within the 5-minute window is refused. */
export const slackRequests = pgTable(
  'slack_requests',
  {
    signature: text('signature').primaryKey(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('slack_requests_received_idx').on(t.receivedAt)],
);

/** Slack messages sent once per notice id (escalation DMs, reports, campaign results): retries never post twice. */
export const slackNotices = pgTable('slack_notices', {
  noticeId: text('notice_id').primaryKey(),
  kind: text('kind').notNull(),
  channel: text('channel'),
  /** Set once Slack accepted the message. */
  messageTs: text('message_ts'),
  createdAt: createdAt(),
});

/** Requests for a risk acceptance (an exception) on a golden ticket, and security operations' decision. */
export const exceptionRequests = pgTable(
  'exception_requests',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ticketKey: text('ticket_key')
      .notNull()
      .references(() => tickets.key),
    /** Who asked and who decided, as `slack:<user id>` or an ITSM user name. */
    requester: text('requester').notNull(),
    reason: text('reason').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    status: text('status', { enum: ['pending', 'approved', 'rejected'] }).notNull().default('pending'),
    decidedBy: text('decided_by'),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    /** The approval message in the security channel, updated with the decision. */
    channel: text('channel'),
    messageTs: text('message_ts'),
    createdAt: createdAt(),
  },
  (t) => [index('exception_requests_ticket_idx').on(t.ticketKey)],
);

/**
 * Validation evidence on (asset, vulnerability): what a DAST, pentest or breach-and-attack tool, or
 * the platform's own safe probes, proved. `exploited` / `confirmed` raise the finding and confirm its
 * attack paths; `not_exploitable` (attempted, with a dated test) lowers it until it expires;
 * `reachable` / `unreachable` say whether the service answered a probe. Nothing is overwritten: a
 * newer test on the same pair wins while it lasts.
 */
export const validationEvidence = pgTable(
  'validation_evidence',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** A hash of tool, asset, vulnerability, port, result and test time: importing the same result twice stores it once. */
    evidenceKey: text('evidence_key').notNull().unique(),
    assetId: bigint('asset_id', { mode: 'number' })
      .notNull()
      .references(() => assets.id),
    /** The issue id as findings carry it (`CVE-2021-44228`), or the tool's own id (`nuclei:exposed-panel`). */
    vulnerability: text('vulnerability').notNull(),
    result: text('result', { enum: ['exploited', 'confirmed', 'not_exploitable', 'reachable', 'unreachable'] }).notNull(),
    /** nuclei, zap, a pentest or BAS tool's name, or `probe` for the platform's own checks. */
    tool: text('tool').notNull(),
    /** Where it came from: the uploaded file's name, or the validation run's workflow id. */
    source: text('source').notNull(),
    /** What was tested: a URL, or host:port. */
    target: text('target'),
    /** `443/tcp` when the test names a port. */
    port: text('port'),
    testedAt: timestamp('tested_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** The tool's own words: template or alert, matcher, request and response excerpts. */
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index('validation_evidence_pair_idx').on(t.assetId, t.vulnerability), index('validation_evidence_expiry_idx').on(t.expiresAt)],
);

/** Validation runs (`validation:<scope>:<id>`): what started them, what they checked and found. */
export const validationRuns = pgTable('validation_runs', {
  /** The workflow id. */
  id: text('id').primaryKey(),
  scope: text('scope').notNull(),
  /** schedule, rescore, campaign, slack, api. */
  trigger: text('trigger').notNull(),
  requestedBy: text('requested_by'),
  status: text('status', { enum: ['running', 'completed', 'failed'] }).notNull().default('running'),
  /** Counts (targets, probed, skipped outside the allow-list, evidence by result, tiers moved) and the paths found. */
  results: jsonb('results').$type<Record<string, unknown>>(),
  error: text('error'),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
});

/**
 * The exposure graph's edges (validation/graph/): node 0 is the internet, every other node an asset.
 * `internet` (0 -> internet-facing asset), `network` (lateral, from a security-group rule whose
 * source is another group or an internal CIDR; `group_key` is the target group, so one group's
 * change rewrites only its edges), `hosted` (host -> image running on it), `part_of` (member ->
 * business service). `ports` null: unknown or any.
 */
export const attackGraphEdges = pgTable(
  'attack_graph_edges',
  {
    kind: text('kind', { enum: ['internet', 'network', 'hosted', 'part_of'] }).notNull(),
    /** The security group whose rules made a `network` edge (`segment:<source>:<to-segment>` for declared flows); '' for the other kinds. */
    groupKey: text('group_key').notNull().default(''),
    fromId: bigint('from_id', { mode: 'number' }).notNull(),
    toId: bigint('to_id', { mode: 'number' }).notNull(),
    /** `443/tcp`, `8000-8080/tcp`, `all`. */
    ports: text('ports').array(),
    /** Why the edge exists: `firewall`, `security group sg-app from sg-web`, `runs_on`... */
    via: text('via').notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.groupKey, t.fromId, t.toId] })],
);

/** Per security group, what its `network` edges were built from: a changed hash rebuilds them. */
export const attackGraphGroups = pgTable('attack_graph_groups', {
  securityGroup: text('security_group').primaryKey(),
  /** Hash of the group's rules, member ids and member IPs. */
  hash: text('hash').notNull(),
  /** Hash of member ids and IPs alone: a group whose rules name this one as source depends on it. */
  membersHash: text('members_hash').notNull(),
  edges: integer('edges').notNull().default(0),
  updatedAt: updatedAt(),
});

/**
 * One row per compromisable asset on a path from the internet: shortest depth, sigma (shortest
 * paths in), tau (shortest continuations to crown jewels), the parent toward the internet and the
 * next node toward the nearest jewel (a path reads back along them), and the step that enters it.
 */
export const attackGraphNodes = pgTable('attack_graph_nodes', {
  assetId: bigint('asset_id', { mode: 'number' }).primaryKey(),
  depth: integer('depth').notNull(),
  sigma: doublePrecision('sigma').notNull(),
  tau: doublePrecision('tau').notNull(),
  /** sigma * tau: the jewel paths that pass through (or end at) this asset. */
  pathsThrough: doublePrecision('paths_through').notNull(),
  isJewel: boolean('is_jewel').notNull(),
  /** Hops to the nearest crown jewel along shortest paths; null when none lies beyond. */
  jewelHops: integer('jewel_hops'),
  /** 0 = the internet. */
  parentId: bigint('parent_id', { mode: 'number' }).notNull(),
  nextId: bigint('next_id', { mode: 'number' }),
  /** The exposure used to enter (null over part_of: entering a business service is the impact). */
  findingId: bigint('finding_id', { mode: 'number' }),
  issueId: text('issue_id'),
  edgeKind: text('edge_kind').notNull(),
  edgePorts: text('edge_ports').array(),
  edgeVia: text('edge_via').notNull(),
  /** ATT&CK technique ids of the entering step (validation/graph/techniques.ts); empty when unknown. */
  techniques: text('techniques').array().notNull(),
  /** Weakest step of the best shortest path in: confirmed, plausible, theoretical. */
  confidence: text('confidence', { enum: ['confirmed', 'plausible', 'theoretical'] }).notNull(),
  /** The entering step's own confidence. */
  stepConfidence: text('step_confidence', { enum: ['confirmed', 'plausible', 'theoretical'] }).notNull(),
  /** The step from this asset into `next_id`: { findingId, issueId, kind, ports, via, techniques, confidence }. */
  nextStep: jsonb('next_step').$type<Record<string, unknown>>(),
  chokePoint: boolean('choke_point').notNull().default(false),
  /** Hash of the row's other columns as computed: a refresh rewrites only rows whose hash differs. */
  signature: text('signature').notNull(),
});

/** Per open golden ticket: the assets its fix stops being compromisable and the jewel paths that cuts. */
export const attackGraphTickets = pgTable('attack_graph_tickets', {
  ticketKey: text('ticket_key').primaryKey(),
  pathsCut: doublePrecision('paths_cut').notNull(),
  /** False: pathsCut is the upper bound (sum of paths through its assets), not recounted. */
  exact: boolean('exact').notNull(),
  assetIds: bigint('asset_ids', { mode: 'number' }).array().notNull(),
});

/** The latest computation of the graph: one row. */
export const attackGraphSummary = pgTable('attack_graph_summary', {
  name: text('name').primaryKey(),
  full: boolean('full').notNull(),
  groupsChanged: integer('groups_changed').notNull(),
  edges: integer('edges').notNull(),
  nodes: integer('nodes').notNull(),
  jewels: integer('jewels').notNull(),
  jewelsReached: integer('jewels_reached').notNull(),
  paths: doublePrecision('paths').notNull(),
  chokePoints: bigint('choke_points', { mode: 'number' }).array().notNull(),
  /** Hash of every asset's ip identifiers: a change rebuilds the groups with CIDR rules. */
  ipHash: text('ip_hash').notNull(),
  /** Rules that name a source no edge can be built from (prefix lists, malformed CIDRs), with why. */
  unusableRules: jsonb('unusable_rules').$type<Array<{ securityGroup: string; source: string; reason: string }>>().notNull(),
  parameters: jsonb('parameters').$type<Record<string, number>>().notNull(),
  computedAt: timestamp('computed_at', { withTimezone: true }).notNull(),
  durationMs: integer('duration_ms').notNull(),
});

/**
 * Program metrics per day and scope (`*` is the whole estate), taken by the daily metrics schedule:
 * the console's trends and counts read these rows instead of counting the findings table. One row
 * per (day, scope); a second snapshot on the same day replaces the first.
 */
export const metricSnapshots = pgTable(
  'metric_snapshots',
  {
    day: text('day').notNull(),
    scope: text('scope').notNull(),
    /** Backlog by tier, KEV and internet-facing counts, noise cut, SLA attainment, MTTD / MTTR, escalations by level. */
    metrics: jsonb('metrics').$type<Record<string, unknown>>().notNull(),
    takenAt: timestamp('taken_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.day, t.scope] })],
);

/**
 * Hunting hypotheses: a named, saved query over exposures ("Log4Shell in runtime on internet-facing
 * hosts"), run on a schedule so its residual exposure can be followed over time.
 */
export const hypotheses = pgTable('hypotheses', {
  name: text('name').primaryKey(),
  /** The hypothesis in words. */
  statement: text('statement').notNull(),
  /** The exposure filter: a scope selector plus issue ids, components, tiers, KEV, internet-facing, runtime. */
  query: jsonb('query').$type<Record<string, unknown>>().notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** A hypothesis's result at one instant: what still matches (its residual exposure), and the campaign it started, if any. */
export const hypothesisResults = pgTable(
  'hypothesis_results',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    hypothesis: text('hypothesis')
      .notNull()
      .references(() => hypotheses.name, { onDelete: 'cascade' }),
    /** Open exposures matching, by tier, and the assets they sit on. */
    matched: integer('matched').notNull(),
    urgent: integer('urgent').notNull(),
    counts: jsonb('counts').$type<Record<string, number>>().notNull(),
    /** schedule, api, cli, campaign. */
    trigger: text('trigger').notNull(),
    campaignId: text('campaign_id'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('hypothesis_results_at_idx').on(t.hypothesis, t.at)],
);

/**
 * People and service accounts that use the platform, with their roles (access/roles.ts): admin,
 * secops, owner (their tickets), manager (their reports' tickets), read-only, ci (the gate only).
 * Owners and managers are matched to tickets and the ITSM's directory by e-mail.
 */
export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: ['user', 'service'] }).notNull(),
    /** Unique login name (users) or service account name. */
    name: text('name').notNull().unique(),
    displayName: text('display_name'),
    email: text('email'),
    roles: text('roles').array().notNull(),
    /** scrypt hash of a local console password; null for service accounts and users who sign in otherwise. */
    passwordHash: text('password_hash'),
    disabledAt: timestamp('disabled_at', { withTimezone: true }),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('identities_email_idx').on(sql`lower(${t.email})`).where(sql`${t.email} is not null`)],
);

/** API tokens of identities: shown once when issued, stored as a hash, expiring and revocable. */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id),
    name: text('name').notNull(),
    /** The token's first characters, to recognise it in lists and logs. */
    prefix: text('prefix').notNull(),
    /** SHA-256 of the whole token (tokens are long random strings, so no slow hash is needed). */
    secretHash: text('secret_hash').notNull().unique(),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [index('api_tokens_identity_idx').on(t.identityId)],
);

/**
 * The audit trail: every mutation, who made it, when, what it changed (before / after) and the
 * request it came in. Append-only; each entry carries the hash of the previous one, so an edited or
 * deleted entry breaks the chain (access/audit-trail.ts verifies it).
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    actorId: text('actor_id').notNull(),
    actorName: text('actor_name').notNull(),
    actorKind: text('actor_kind').notNull(),
    /** `policy.activate`, `ticket.acknowledge`, `token.issue`...; what was acted on. */
    action: text('action').notNull(),
    target: text('target'),
    /** allowed, denied or failed. */
    outcome: text('outcome').notNull(),
    before: jsonb('before'),
    after: jsonb('after'),
    requestId: text('request_id'),
    /** api, console, slack, cli, system. */
    channel: text('channel').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull().unique(),
  },
  (t) => [index('audit_log_at_idx').on(t.at), index('audit_log_actor_idx').on(t.actorId, t.id), index('audit_log_action_idx').on(t.action, t.id), index('audit_log_target_idx').on(t.target, t.id)],
);
