import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

// `ctem validate`: evidence from the tools teams run, validation runs, and the attack paths they
// find, through the running platform's API.

const USAGE = `usage: ctem validate evidence FILE [--format nuclei|zap-json|zap-xml|...]
       ctem validate run SCOPE|estate [--no-wait] [--json]
       ctem validate paths [--limit N] [--json]`;

type Api = { url: string; token: string };

async function evidence(api: Api, file: string | undefined, format: string | undefined, json: boolean): Promise<number> {
  if (!file) {
    console.error(USAGE);
    return 2;
  }
  await stat(file).catch(() => {
    throw new Error(`${file}: no such file`);
  });
  const query = new URLSearchParams({ filename: basename(file), ...(format ? { format } : {}) });
  const r = await callApi(api, `/api/v1/validation/evidence?${query}`, {
    method: 'POST',
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (!r.ok) return apiFailure(`import of ${file}`, r);
  const b = r.body as {
    format: string; records: number; stored: number; duplicates: number; findings: number; expired: number;
    byResult: Record<string, number>; skipped: Record<string, number>;
    unknownAssets: { count: number; samples: Array<{ asset: string; vulnerability: string }> };
    withoutFinding: { count: number; samples: Array<{ asset: string; vulnerability: string }> };
    rescoreWorkflowId: string | null;
  };
  if (json) {
    console.log(JSON.stringify(b, null, 2));
    return 0;
  }
  const sample = (s: { samples: Array<{ asset: string; vulnerability: string }> }) => s.samples.slice(0, 5).map((x) => `    ${x.vulnerability} on ${x.asset}`);
  console.log([
    `${file} (${b.format}): ${b.records} records`,
    `  stored              ${b.stored}  (${Object.entries(b.byResult).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`,
    `  already stored      ${b.duplicates}`,
    `  open findings       ${b.findings}`,
    ...(b.expired ? [`  expired on arrival  ${b.expired}`] : []),
    ...Object.entries(b.skipped).map(([k, v]) => `  skipped (${k})  ${v}`),
    `  unknown assets      ${b.unknownAssets.count}`,
    ...sample(b.unknownAssets),
    `  no open finding     ${b.withoutFinding.count}`,
    ...sample(b.withoutFinding),
    ...(b.rescoreWorkflowId ? [`rescoring: ${b.rescoreWorkflowId}`] : []),
  ].join('\n'));
  return 0;
}

async function run(api: Api, scope: string | undefined, wait: boolean, json: boolean): Promise<number> {
  if (!scope) {
    console.error(USAGE);
    return 2;
  }
  const started = await callApi(api, '/api/v1/validations', { method: 'POST', body: JSON.stringify({ scope, requestedBy: 'cli' }), headers: { 'content-type': 'application/json' } });
  if (!started.ok) return apiFailure(`validation of ${scope}`, started);
  const { workflowId } = started.body as { workflowId: string };
  if (!wait) {
    console.log(workflowId);
    return 0;
  }
  for (;;) {
    const r = await callApi(api, `/api/v1/validations/${encodeURIComponent(workflowId)}`);
    const body = r.body as { status?: string; results?: Record<string, unknown>; error?: string };
    if (r.ok && body.status && body.status !== 'running') {
      if (json) console.log(JSON.stringify(body, null, 2));
      else console.log(`${workflowId}: ${body.status}${body.error ? `: ${body.error}` : ''}\n${JSON.stringify(body.results, null, 2)}`);
      return body.status === 'completed' ? 0 : 1;
    }
    if (!r.ok && r.status !== 404) return apiFailure(`status of ${workflowId}`, r);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

async function paths(api: Api, limit: string | undefined, json: boolean): Promise<number> {
  const r = await callApi(api, `/api/v1/attack-paths?limit=${encodeURIComponent(limit ?? '5')}`);
  if (!r.ok) return apiFailure('attack paths', r);
  if (json) {
    console.log(JSON.stringify(r.body, null, 2));
    return 0;
  }
  const b = r.body as {
    summary: { paths: number; jewels: number; jewelsReached: number; compromisable: number; computedAt: string | null };
    chokePoints: Array<{ name: string; pathsThrough: number; share: number; chokePoint: boolean }>;
    fixes: Array<{ ticketKey: string; pathsCut: number; assets: Array<{ name: string; examplePath: Array<{ name: string; issueId: string | null; techniques: Array<{ id: string }> }> }> }>;
  };
  const s = b.summary;
  const lines = [
    `attack paths to crown jewels  ${s.paths}  (${s.jewelsReached} of ${s.jewels} crown jewels reachable, ${s.compromisable} compromisable assets; computed ${s.computedAt ?? 'never'})`,
    'choke points:',
    ...b.chokePoints.map((c) => `  ${c.name}  ${c.pathsThrough} paths (${(c.share * 100).toFixed(1)}%)${c.chokePoint ? '  <- choke point' : ''}`),
    'fixes by paths cut:',
    ...b.fixes.flatMap((f) => [
      `  ${f.ticketKey}  cuts ${f.pathsCut}`,
      ...f.assets.slice(0, 3).flatMap((a) => a.examplePath.length ? [`    internet -> ${a.examplePath.map((p) => `${p.name}${p.issueId ? ` [${p.issueId}${p.techniques[0] ? ` ${p.techniques[0].id}` : ''}]` : ''}`).join(' -> ')}`] : []),
    ]),
  ];
  console.log(lines.join('\n'));
  return 0;
}

export async function validateCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { format: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean', default: false }, 'no-wait': { type: 'boolean', default: false } },
  });
  const api = platformApi(config);
  switch (positionals[0]) {
    case 'evidence':
      return evidence(api, positionals[1], values.format, values.json);
    case 'run':
      return run(api, positionals[1], !values['no-wait'], values.json);
    case 'paths':
      return paths(api, values.limit, values.json);
    default:
      console.error(USAGE);
      return 2;
  }
}
