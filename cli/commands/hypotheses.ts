import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

// `ctem hypotheses list|show|save|run|campaign|delete`: the hunting workbench from a terminal. Lines
// for people, `--json` for scripts (the API's own JSON, unchanged).

const USAGE = `usage: ctem hypotheses list [--json]
       ctem hypotheses show NAME [--json]
       ctem hypotheses save NAME --statement TEXT --query JSON [--by USER] [--json]
       ctem hypotheses run NAME [--json]
       ctem hypotheses campaign NAME [--by USER] [--json]
       ctem hypotheses delete NAME`;

type Result = { matched: number; urgent: number; counts: Record<string, number>; trigger: string; at: string };
type Summary = { name: string; statement: string; latest: Result | null; recentUrgent: number[] };
type Campaign = { campaignId: string; status: string | null; before: Result; after: Result | null; removal: { removed: number; removedClosed: number; removedRescored: number; added: number } | null };

const when = (iso: string) => iso.slice(0, 16).replace('T', ' ');
const tiers = (c: Record<string, number>) => ['act', 'attend', 'track*', 'track'].map((t) => `${t} ${c[t] ?? 0}`).join(', ');

function print(json: boolean, body: unknown, text: () => string): number {
  console.log(json ? JSON.stringify(body, null, 2) : text());
  return 0;
}

function usage(message?: string): number {
  console.error(message ? `${message}\n${USAGE}` : USAGE);
  return 2;
}

export async function hypothesesCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, statement: { type: 'string' }, query: { type: 'string' }, by: { type: 'string' } },
  });
  const [verb, name] = positionals;
  const json = values.json === true;
  if (verb === 'list') {
    const r = await callApi(platformApi(config), '/api/v1/hypotheses');
    if (!r.ok) return apiFailure('listing hypotheses', r);
    const b = r.body as { items: Summary[] };
    return print(json, b, () => b.items.length === 0
      ? 'no hypotheses saved: ctem hypotheses save NAME --statement TEXT --query JSON'
      : b.items.map((h) => `${h.name}: ${h.latest ? `${h.latest.matched} matched, ${h.latest.urgent} urgent (${when(h.latest.at)})` : 'not run yet'}\n  ${h.statement}`).join('\n'));
  }
  if (!name) return usage(verb && ['show', 'save', 'run', 'campaign', 'delete'].includes(verb) ? `ctem hypotheses ${verb}: NAME is missing` : undefined);
  const path = `/api/v1/hypotheses/${encodeURIComponent(name)}`;
  const api = platformApi(config);
  if (verb === 'show') {
    const r = await callApi(api, path);
    if (!r.ok) return apiFailure(`hypothesis ${name}`, r);
    const h = r.body as Summary & { words: string[]; campaigns: Campaign[] };
    return print(json, h, () => [
      `${h.name}: ${h.statement}`,
      `asks: ${h.words.join('; ')}`,
      h.latest ? `now: ${h.latest.matched} matched, ${h.latest.urgent} urgent (${tiers(h.latest.counts)}) on ${h.latest.counts.assets ?? 0} assets, ${when(h.latest.at)}` : 'not run yet: ctem hypotheses run ' + h.name,
      ...(h.recentUrgent.length > 1 ? [`urgent over the last ${h.recentUrgent.length} results: ${h.recentUrgent.join(' ')}`] : []),
      ...h.campaigns.map((k) => `campaign ${k.campaignId} (${k.status ?? 'unknown'}): ${k.removal ? `removed ${k.removal.removed} (${k.removal.removedClosed} closed, ${k.removal.removedRescored} rescored), ${k.removal.added} new` : 'still running'}`),
    ].join('\n'));
  }
  if (verb === 'save') {
    if (typeof values.statement !== 'string') return usage('ctem hypotheses save: --statement is missing (the hypothesis in words)');
    if (typeof values.query !== 'string') return usage('ctem hypotheses save: --query is missing (a JSON object, e.g. \'{"issueIds":["CVE-2021-44228"],"publiclyExposed":true}\')');
    let query: unknown;
    try {
      query = JSON.parse(values.query);
    } catch (err) {
      return usage(`ctem hypotheses save: --query is not JSON: ${(err as Error).message}`);
    }
    const r = await callApi(api, path, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ statement: values.statement, query, createdBy: values.by ?? 'cli' }),
    });
    if (!r.ok) return apiFailure(`saving hypothesis ${name}`, r);
    return print(json, r.body, () => `saved ${name}`);
  }
  if (verb === 'run') {
    const r = await callApi(api, `${path}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ trigger: 'cli' }) });
    if (!r.ok) return apiFailure(`running hypothesis ${name}`, r);
    const res = r.body as Result;
    return print(json, res, () => `${name}: ${res.matched} matched, ${res.urgent} urgent (${tiers(res.counts)}) on ${res.counts.assets ?? 0} assets`);
  }
  if (verb === 'campaign') {
    const r = await callApi(api, `${path}/campaign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requestedBy: values.by ?? 'cli' }) });
    if (!r.ok) return apiFailure(`starting a campaign from ${name}`, r);
    const b = r.body as { campaignId: string; workflowUrl?: string };
    return print(json, b, () => `started ${b.campaignId}${b.workflowUrl ? ` (${b.workflowUrl})` : ''}; ctem hypotheses show ${name} tells what it removed`);
  }
  if (verb === 'delete') {
    const r = await callApi(api, path, { method: 'DELETE' });
    if (!r.ok) return apiFailure(`deleting hypothesis ${name}`, r);
    return print(json, { deleted: name }, () => `deleted ${name}`);
  }
  return usage();
}
