import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import type { Sql } from '../db/client.js';
import type { ExplanationFactor } from '../db/schema.js';
import type { AssetRef, NormalizedFinding } from '../discovery/model.js';
import { findAssets, stageAssetRef } from '../discovery/store/identity.js';
import { openCveRecords } from './feeds/cve-json5.js';
import { openEpssFeed, readKevFeed } from './feeds/parse.js';
import {
  evaluateGate, GateInputError, overrideContext, requestedAssetContext,
  type GateAssetContext, type GateControl, type GateException, type GateIntel, type GateResult, type GateRule, type RequestedContext,
} from './gate.js';
import { parsePolicy, SHIPPED_POLICIES, shippedPolicy, type Policy } from './policy.js';
import { activePolicy, getPolicy } from './policy-store.js';
import { assetContextCtes } from './scoring/asset-context.js';
import type { RecordFacts } from './scoring/decision.js';
import { feedVersions } from './scoring/sql.js';

// What the gate decides with, from either place: the platform's PostgreSQL (the active policy and
// feed versions, read for the report's vulnerabilities only; the asset's context through the
// scoring statement's own asset step; risk acceptances) or files (feeds, a policy, exceptions).
// Reads only: a gate writes nothing.

/** The vulnerability ids of a report's findings. */
export const issueIdsOf = (findings: readonly NormalizedFinding[]) => [...new Set(findings.map((f) => f.issueId))];

const utcDay = (d: unknown) => (d ? new Date(d as Date).toISOString().slice(0, 10) : null);

/** The active feed versions' rows for these vulnerabilities (never a whole feed). */
export async function platformIntel(sql: Sql, issueIds: readonly string[]): Promise<GateIntel> {
  const versions = await feedVersions(sql);
  const ids = [...issueIds];
  const [epss, kev, records] = await Promise.all([
    versions.epss ? sql<{ cve: string; epss: number; percentile: number }[]>`
      select cve, epss, percentile from epss_scores where feed_version = ${versions.epss} and cve = any(${ids}::text[])` : [],
    versions.kev ? sql<{ cve: string; date_added: string | null; known_ransomware: boolean }[]>`
      select cve, date_added, known_ransomware from kev_entries where feed_version = ${versions.kev} and cve = any(${ids}::text[])` : [],
    versions.cve ? sql`
      select cve, cna_vector, cna_score, adp_vector, adp_score, ssvc_exploitation, ssvc_automatable, ssvc_technical_impact, ssvc_assessed_at
      from cve_records where feed_version = ${versions.cve} and cve = any(${ids}::text[]) and state = 'PUBLISHED'` : [],
  ]);
  return {
    versions,
    epss: new Map(epss.map((r) => [r.cve, { epss: r.epss, percentile: r.percentile }])),
    kev: new Map(kev.map((r) => [r.cve, { dateAdded: r.date_added, knownRansomware: r.known_ransomware }])),
    records: new Map(records.map((r) => [r.cve as string, {
      cnaVector: r.cna_vector, cnaScore: r.cna_score, adpVector: r.adp_vector, adpScore: r.adp_score,
      ssvcExploitation: r.ssvc_exploitation, ssvcAutomatable: r.ssvc_automatable, ssvcTechnicalImpact: r.ssvc_technical_impact,
      ssvcAssessedOn: utcDay(r.ssvc_assessed_at),
    } satisfies RecordFacts & { ssvcAssessedOn: string | null }])),
  };
}

/** The platform's asset a report's asset is (by any identifier, as evidence finds assets), or the one named: its id, or undefined. */
export async function knownAssetId(sql: Sql, ref: AssetRef): Promise<number | undefined> {
  return (await findAssets(sql, [stageAssetRef(ref)])).get(ref.assetKey);
}

/** An asset named by key or name (`--asset`): the oldest with that key, else that name. */
export async function namedAssetId(sql: Sql, name: string): Promise<number | undefined> {
  const [row] = await sql<{ id: string }[]>`
    select id from assets where asset_key = ${name} or name = ${name} order by (asset_key = ${name}) desc, id limit 1`;
  return row ? Number(row.id) : undefined;
}

interface AssetRow {
  key: string; name: string; owner: string | null; business_service: string | null;
  exposed: 'yes' | 'no' | 'unknown'; exposed_ports: string[] | null; exposure_obj: ExplanationFactor; nonprod: boolean; env_obj: ExplanationFactor;
  critical: boolean; business_obj: ExplanationFactor | null; edr_covered: boolean; rt_seen: Record<string, string>; rt_names: string | null;
  ev: Record<string, { r: string; o: ExplanationFactor }> | null;
  controls: Array<{ name: string; effect: GateControl['effect']; issue_ids: string[]; components: string[]; ports: string[]; obj: ExplanationFactor }>;
}

/**
 * A known asset's context as scoring derives it: the scoring statement's asset step
 * (asset-context.ts) over this one asset, read-only, with the controls that apply to it.
 */
export async function platformAssetContext(sql: Sql, policy: Policy, assetId: number): Promise<GateAssetContext> {
  const [row] = await sql.begin('read only', async (tx) => tx<AssetRow[]>`
    with scope_assets as materialized (select ${assetId}::bigint as asset_id),
    ${assetContextCtes(tx, policy, true)}
    select s.asset_key as key, a.name, s.owner, s.business_service, a.exposed, a.exposed_ports, a.exposure_obj, a.nonprod, a.env_obj,
      a.critical, a.business_obj, a.edr_covered, a.rt_seen, a.rt_names, a.ev,
      coalesce((select jsonb_agg(jsonb_build_object('name', c.name, 'effect', c.effect, 'issue_ids', c.issue_ids, 'components', c.components,
                                                    'ports', c.ports, 'obj', c.obj) order by c.name)
                from ctl c where c.name = any(a.ctl_names)), '[]') as controls
    from asset_ctx a join assets s on s.id = a.id`);
  if (!row) throw new Error(`asset ${assetId} has no row`);
  return {
    key: row.key, name: row.name, source: 'platform', owner: row.owner, businessService: row.business_service,
    exposed: row.exposed, exposedPorts: row.exposed_ports, exposure: row.exposure_obj, nonProduction: row.nonprod, environment: row.env_obj,
    critical: row.critical, ...(row.business_obj ? { business: row.business_obj } : {}),
    edrCovered: row.edr_covered, runtimeHosts: row.rt_names, runtimeSeen: row.rt_seen,
    controls: row.controls.map((c) => ({ name: c.name, effect: c.effect, issueIds: c.issue_ids, components: c.components, ports: c.ports, factor: c.obj })),
    evidence: Object.fromEntries(Object.entries(row.ev ?? {}).map(([id, e]) => [id, { result: e.r, factor: e.o }])),
  };
}

/** Running risk acceptances on the tickets that hold this asset's findings of these vulnerabilities. */
export async function platformExceptions(sql: Sql, assetId: number, issueIds: readonly string[]): Promise<GateException[]> {
  const rows = await sql<{ issue_id: string; component: string; ticket_key: string; reason: string; approver: string; expires_at: Date }[]>`
    select distinct on (f.issue_id, f.component) f.issue_id, f.component, r.ticket_key, r.reason, r.approver, r.expires_at
    from findings f join risk_acceptances r on r.ticket_key = f.ticket_key
    where f.asset_id = ${assetId} and f.issue_id = any(${[...issueIds]}::text[])
      and r.ended_at is null and r.accepted_at <= now() and r.expires_at > now()
    order by f.issue_id, f.component, r.expires_at desc`;
  return rows.map((r) => ({ issueId: r.issue_id, component: r.component, reason: r.reason, expiresAt: r.expires_at.toISOString(), ticket: r.ticket_key, approver: r.approver }));
}

/** A policy by stored version (platform), for `policy=<version>`; undefined when there is none. */
export const storedPolicy = (sql: Sql, version: string) => getPolicy(sql, version);

/** `--policy`: a shipped policy by version or file name, or a policy document file. */
export function policyFromArgument(arg: string | undefined): Policy {
  const shipped = SHIPPED_POLICIES.map((file) => shippedPolicy(file));
  if (arg === undefined) return shipped[0]!;
  const byName = shipped.find((p, i) => p.version === arg || SHIPPED_POLICIES[i] === arg);
  if (byName) return byName;
  if (!existsSync(arg)) {
    throw new GateInputError('--policy', '', `${JSON.stringify(arg)} is neither a file nor a shipped policy (${shipped.map((p) => p.version).join(', ')})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(arg, 'utf8'));
  } catch (err) {
    throw new GateInputError(basename(arg), '', `not valid JSON (${(err as Error).message})`);
  }
  return parsePolicy(doc, basename(arg));
}

export interface FeedFiles {
  epss?: string | undefined;
  kev?: string | undefined;
  cveRecords?: string | undefined;
}

function mustExist(flag: string, path: string) {
  if (!existsSync(path)) throw new GateInputError(flag, '', `${path}: file not found`);
  if (flag !== '--cve-records' && statSync(path).isDirectory()) throw new GateInputError(flag, '', `${path}: is a directory`);
}

/**
 * The feeds' facts for these vulnerabilities from files (no platform): the FIRST EPSS CSV (read
 * through, keeping the report's rows), the CISA KEV JSON and a CVE records checkout or archive (only
 * the report's records parsed). A feed not given is absent, as on a platform that never imported it.
 */
export async function fileIntel(files: FeedFiles, issueIds: readonly string[]): Promise<GateIntel> {
  const wanted = new Set(issueIds);
  const intel: GateIntel = { versions: { epss: null, kev: null, cve: null }, epss: new Map(), kev: new Map(), records: new Map() };
  if (files.epss) {
    mustExist('--epss', files.epss);
    const feed = await openEpssFeed(files.epss);
    intel.versions.epss = feed.version;
    for await (const row of feed.rows) if (wanted.has(row.cve)) intel.epss.set(row.cve, { epss: row.epss, percentile: row.percentile });
  }
  if (files.kev) {
    mustExist('--kev', files.kev);
    const feed = await readKevFeed(files.kev);
    intel.versions.kev = feed.version;
    for (const e of feed.entries) if (wanted.has(e.cve)) intel.kev.set(e.cve, { dateAdded: e.dateAdded, knownRansomware: e.knownRansomware });
  }
  if (files.cveRecords) {
    mustExist('--cve-records', files.cveRecords);
    const feed = await openCveRecords(files.cveRecords);
    intel.versions.cve = feed.version;
    const names = new Set(feed.files.filter((f) => wanted.has(f.cve)).map((f) => f.name));
    for await (const r of feed.read(names)) {
      if (r.state !== 'PUBLISHED') continue;
      intel.records.set(r.cve, {
        cnaVector: r.cnaVector, cnaScore: r.cnaScore, adpVector: r.adpVector, adpScore: r.adpScore,
        ssvcExploitation: r.ssvcExploitation, ssvcAutomatable: r.ssvcAutomatable, ssvcTechnicalImpact: r.ssvcTechnicalImpact,
        ssvcAssessedOn: utcDay(r.ssvcAssessedAt),
      });
    }
  }
  return intel;
}

const ExceptionEntry = z.strictObject({
  id: z.string().min(1),
  component: z.string().min(1).optional(),
  reason: z.string().min(10, 'give a reason of at least ten characters'),
  expires: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date (YYYY-MM-DD or ISO 8601)'),
  approver: z.string().min(1).optional(),
});
const ExceptionsFile = z.union([z.array(ExceptionEntry), z.strictObject({ exceptions: z.array(ExceptionEntry) })]);

/** `--exceptions FILE`: `[{ "id": "CVE-…", "component"?: "…", "reason": "…", "expires": "YYYY-MM-DD", "approver"?: "…" }]` (or `{ "exceptions": [...] }`). */
export function readExceptionsFile(file: string): GateException[] {
  const name = basename(file);
  if (!existsSync(file)) throw new GateInputError('--exceptions', '', `${file}: file not found`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GateInputError(name, '', `not valid JSON (${(err as Error).message})`);
  }
  const parsed = ExceptionsFile.safeParse(doc);
  if (!parsed.success) {
    // The union's own message says little: report the first problem of the shape the document has.
    const retry = Array.isArray(doc) ? z.array(ExceptionEntry).safeParse(doc) : z.strictObject({ exceptions: z.array(ExceptionEntry) }).safeParse(doc);
    const issue = (retry.success ? parsed.error : retry.error).issues[0]!;
    const path = [...issue.path, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]!] : [])]
      .reduce<string>((out, k) => (typeof k === 'number' ? `${out}[${k}]` : out ? `${out}.${String(k)}` : String(k)), '');
    throw new GateInputError(name, path || '(document)', issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message);
  }
  const entries = Array.isArray(parsed.data) ? parsed.data : parsed.data.exceptions;
  return entries.map((e) => ({
    issueId: e.id, ...(e.component ? { component: e.component } : {}), reason: e.reason, expiresAt: new Date(e.expires).toISOString(),
    ...(e.approver ? { approver: e.approver } : {}),
  }));
}

/** Reads a report through its connector, whole (a gate's report is one image or repository). */
export async function readReport(file: string, displayName: string, format?: string, target?: string): Promise<{ format: string; findings: NormalizedFinding[] }> {
  const { connectorFor } = await import('../discovery/connectors/index.js');
  const connector = await connectorFor(file, displayName, format);
  const findings: NormalizedFinding[] = [];
  for await (const f of connector.parse(file, target ? { target } : {})) findings.push(f);
  return { format: connector.format, findings };
}

export interface PlatformGateOptions {
  rule: GateRule;
  context?: RequestedContext;
  /** A platform asset (key or name) whose context and exceptions apply, instead of the report's own asset. */
  asset?: string | undefined;
  /** A stored policy version instead of the active one. */
  policyVersion?: string | undefined;
}

/**
 * The gate against the platform: the active (or named) policy, the active feed versions' rows for
 * the report's vulnerabilities, each asset's context as scoring derives it when the platform knows
 * the asset (else the request's), and its running risk acceptances when exceptions are honoured.
 */
export async function gateOnPlatform(sql: Sql, findings: readonly NormalizedFinding[], options: PlatformGateOptions): Promise<GateResult> {
  let policy: Policy;
  if (options.policyVersion) {
    const stored = await storedPolicy(sql, options.policyVersion);
    if (!stored) throw new GateInputError('policy', '', `no stored policy ${JSON.stringify(options.policyVersion)}`);
    policy = stored;
  } else {
    policy = await activePolicy(sql);
  }
  const issueIds = issueIdsOf(findings);
  const intel = await platformIntel(sql, issueIds);
  const named = options.asset !== undefined ? await namedAssetId(sql, options.asset) : undefined;
  if (options.asset !== undefined && named === undefined) throw new GateInputError('asset', '', `no asset with key or name ${JSON.stringify(options.asset)} in the platform`);
  const contexts = new Map<string, GateAssetContext>();
  const exceptions = new Map<string, GateException[]>();
  const refs = new Map(findings.map((f) => [f.asset.assetKey, f.asset]));
  for (const [key, ref] of refs) {
    const id = named ?? (await knownAssetId(sql, ref));
    const given = options.context ?? {};
    contexts.set(key, id === undefined ? requestedAssetContext(policy, { key, name: ref.name }, given) : overrideContext(policy, await platformAssetContext(sql, policy, id), given));
    if (id !== undefined && options.rule.honourExceptions) exceptions.set(key, await platformExceptions(sql, id, issueIds));
  }
  return evaluateGate(policy, intel, findings, (key) => contexts.get(key)!, options.rule, (key) => exceptions.get(key) ?? []);
}

export interface StandaloneGateOptions {
  rule: GateRule;
  policy: Policy;
  feeds: FeedFiles;
  context?: RequestedContext;
  exceptions?: GateException[];
}

/** The gate without a platform: feeds, policy and exceptions from files, the asset's context from the flags. */
export async function gateStandalone(findings: readonly NormalizedFinding[], options: StandaloneGateOptions): Promise<GateResult> {
  const intel = await fileIntel(options.feeds, issueIdsOf(findings));
  return evaluateGate(options.policy, intel, findings, (key) => {
    const ref = findings.find((f) => f.asset.assetKey === key)!.asset;
    return requestedAssetContext(options.policy, { key, name: ref.name }, options.context ?? {});
  }, options.rule, () => options.exceptions ?? []);
}
