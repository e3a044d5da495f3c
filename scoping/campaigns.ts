import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { listExposures, noiseCounts } from '../db/read-models/exposures.js';
import { listSources } from '../discovery/store/sources.js';
import { campaignWorkflow, type CampaignInput } from '../workflows/campaign.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';
import { countOpenWithIssues, finishCampaign, getCampaign, recordCampaignStart, scopeImages } from './campaign-store.js';
import { getScope } from './scopes.js';
import { taskQueueFor } from '../workflows/task-queues.js';

// Campaigns: one on-demand run of discovery and prioritization over a saved scope. The API and the
// Slack bot start them; the campaign workflow's activities plan the discovery and publish what it
// surfaced (the Slack bot is the publisher). Checking the scope and who asks is the caller's.

/** One exposure as a campaign reports it: what, where, how urgent, and why in words a person can check. */
export interface CampaignExposure {
  id: number;
  issueId: string;
  asset: string;
  component: string;
  version: string;
  fixedVersion: string | null;
  tier: string | null;
  score: number | null;
  dueAt: string | null;
  ticketKey: string | null;
  reasons: string[];
}

export interface CampaignResults {
  campaignId: string;
  scope: string;
  hypothesis: string | null;
  requestedBy: string;
  /** Where the results go (the channel the campaign was started from); the publisher's default otherwise. */
  channel?: string;
  workflowUrl?: string;
  assets: number;
  openExposures: number;
  act: number;
  attend: number;
  discovery: { runs: number; failed: number };
  /** CVE ids named in the hypothesis and how many open exposures in the scope carry them. */
  hypothesisMatches?: { cves: string[]; exposures: number };
  top: CampaignExposure[];
}

export interface CampaignFailure {
  campaignId: string;
  scope: string;
  channel?: string;
  workflowUrl?: string;
  error: string;
}

/** Where campaign results are announced; the Slack bot implements it. Idempotent per campaign id. */
export interface CampaignPublisher {
  campaignResults(results: CampaignResults): Promise<void>;
  campaignFailed(failure: CampaignFailure): Promise<void>;
}

/** One child discovery run of a campaign. */
export interface DiscoveryRun {
  source: string;
  target?: string;
  workflowId: string;
}

/** The Temporal UI's page of a workflow, when a UI is configured. */
export function workflowUrl(temporal: { namespace: string; uiUrl?: string }, workflowId: string): string | undefined {
  return temporal.uiUrl ? `${temporal.uiUrl}/namespaces/${encodeURIComponent(temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}

/** Starts a campaign workflow, its id readable in the Temporal UI (`campaign:<scope>:<short id>`). */
export async function startCampaign(temporal: { client: Client; taskQueue: string }, input: CampaignInput): Promise<{ workflowId: string }> {
  const workflowId = `campaign:${input.scope}:${randomBytes(4).toString('hex')}`;
  await temporal.client.workflow.start(campaignWorkflow, {
    workflowId,
    taskQueue: taskQueueFor(temporal.taskQueue, campaignWorkflow),
    args: [input],
    typedSearchAttributes: [{ key: CTEM_PHASE, value: 'scoping' }],
  });
  return { workflowId };
}

/** A scope or campaign a step needs is not there (any more). */
export class CampaignNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CampaignNotFoundError';
  }
}

/** Images rescanned per targetable source and campaign; a larger scope relies on its scheduled scans. */
const MAX_TARGETS = 100;
const TOP = 5;
const CVE_RE = /CVE-\d{4}-\d{4,}/gi;

/**
 * Records the campaign and plans its discovery: every pulled source that can target one image
 * rescans each image of the scope; the other sources run whole (their reports cover the scope).
 */
export async function planCampaign(
  database: Database,
  input: { campaignId: string; scope: string; hypothesis?: string; requestedBy: string },
): Promise<{ assets: number; runs: DiscoveryRun[] }> {
  const sql = database.sql;
  await recordCampaignStart(sql, { id: input.campaignId, scope: input.scope, hypothesis: input.hypothesis ?? null, requestedBy: input.requestedBy });
  const scope = await getScope(sql, input.scope);
  if (!scope) throw new CampaignNotFoundError(`no scope named ${input.scope}`);
  const { images, assets } = await scopeImages(sql, scope.selector, MAX_TARGETS);
  const runs: DiscoveryRun[] = [];
  for (const source of await listSources(database.db)) {
    const targetable = source.kind === 'report-url' && String((source.config as { url?: unknown }).url).includes('{target}');
    if (!targetable) {
      runs.push({ source: source.name, workflowId: `discovery-source:${source.name}:${input.campaignId}` });
      continue;
    }
    for (const target of images) runs.push({ source: source.name, target, workflowId: `discovery-source:${source.name}:${input.campaignId}:${target}` });
  }
  return { assets, runs };
}

/** What the campaign surfaced in its scope, recorded with the campaign (`completed`). */
export async function completeCampaign(
  database: Database,
  temporal: { namespace: string; uiUrl?: string },
  input: { campaignId: string; channel?: string; discovery: { runs: number; failed: number } },
): Promise<CampaignResults> {
  const sql = database.sql;
  const campaign = await getCampaign(sql, input.campaignId);
  if (!campaign) throw new CampaignNotFoundError(`campaign ${input.campaignId} was not recorded`);
  const scope = await getScope(sql, campaign.scope);
  if (!scope) throw new CampaignNotFoundError(`scope ${campaign.scope} no longer exists`);
  const counts = await noiseCounts(sql, scope.selector);
  const { assets } = await scopeImages(sql, scope.selector, 0);
  const top = await listExposures(sql, { scope: scope.selector, limit: TOP });
  const cves = [...new Set((campaign.hypothesis?.match(CVE_RE) ?? []).map((c) => c.toUpperCase()))];
  const hypothesisMatches = cves.length ? { cves, exposures: await countOpenWithIssues(sql, scope.selector, cves) } : undefined;
  const url = workflowUrl(temporal, input.campaignId);
  const results: CampaignResults = {
    campaignId: campaign.id,
    scope: campaign.scope,
    hypothesis: campaign.hypothesis,
    requestedBy: campaign.requestedBy,
    ...(input.channel ? { channel: input.channel } : {}),
    ...(url ? { workflowUrl: url } : {}),
    assets,
    openExposures: counts.openFindings,
    act: counts.act,
    attend: counts.actAttend - counts.act,
    discovery: input.discovery,
    ...(hypothesisMatches ? { hypothesisMatches } : {}),
    top: top.items.map(summarizeExposure),
  };
  await finishCampaign(sql, campaign.id, 'completed', {
    assets: results.assets, openExposures: results.openExposures, act: results.act, attend: results.attend,
    discovery: results.discovery, top: results.top.map((e) => e.id), ...(hypothesisMatches ? { hypothesisMatches } : {}),
  });
  return results;
}

/** Records the failure; returns what the publisher is told. */
export async function failCampaign(
  database: Database,
  temporal: { namespace: string; uiUrl?: string },
  input: { campaignId: string; scope: string; channel?: string; error: string },
): Promise<CampaignFailure> {
  await finishCampaign(database.sql, input.campaignId, 'failed', { error: input.error });
  const url = workflowUrl(temporal, input.campaignId);
  return { ...input, ...(url ? { workflowUrl: url } : {}) };
}

/** An exposure as listExposures returns it, reduced to what a message shows. */
export function summarizeExposure(e: Awaited<ReturnType<typeof listExposures>>['items'][number]): CampaignExposure {
  return {
    id: e.id,
    issueId: e.issueId,
    asset: e.asset.name,
    component: e.component,
    version: e.version,
    fixedVersion: e.fixedVersion,
    tier: e.tier,
    score: e.score,
    dueAt: e.dueAt,
    ticketKey: e.ticketKey,
    reasons: Array.isArray(e.explanation) ? briefReasons(e.explanation as Array<{ factor?: unknown; effect?: unknown }>) : [],
  };
}

// What a message names first: the feeds and the exposure, then the decision they led to (which
// already states automatability and impact), then what capped the tier or shortened the due date,
// then what raised or lowered it. Tier and score are shown on the exposure's own line.
const BRIEF_FACTORS = ['validation', 'in_kev', 'exploitation', 'publicly_exposed', 'public_exploit', 'epss', 'decision', 'control', 'vendor_status', 'business_impact', 'likely_exploited', 'runtime', 'environment'];

function briefReasons(explanation: Array<{ factor?: unknown; effect?: unknown }>): string[] {
  const rank = (f: { factor?: unknown }) => {
    const i = BRIEF_FACTORS.indexOf(String(f.factor));
    return i < 0 ? BRIEF_FACTORS.length : i;
  };
  return explanation
    .filter((f) => rank(f) < BRIEF_FACTORS.length && f.effect)
    .sort((a, b) => rank(a) - rank(b))
    .map((f) => String(f.effect));
}
