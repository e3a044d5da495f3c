import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/index.js';
import { ReportError } from '../../discovery/connectors/index.js';
import { FeedError } from '../../prioritization/feeds/parse.js';
import { GateInputError, parseBlockRule, type GateResult, type GateRule, type RequestedContext } from '../../prioritization/gate.js';
import { gateStandalone, policyFromArgument, readExceptionsFile, readReport } from '../../prioritization/gate-inputs.js';
import { gateSarif, gateSummary } from '../../prioritization/gate-output.js';
import { PolicyError } from '../../prioritization/policy.js';
import { callApi, platformApi } from './platform-api.js';

// `ctem gate REPORT`: the CI/CD gate. With feed files (--epss, --kev, --cve-records) it decides on
// this machine alone; without them it asks the platform (POST /api/v1/gate). Exit 0: pass, 1:
// blocked, 2: no verdict (usage, unreadable input, platform error), so a pipeline never mistakes a
// broken gate for a passing one.

export const GATE_USAGE = `usage: ctem gate REPORT [--block act|attend|kev[+...]] [--honour-exceptions] [--json] [--sarif FILE]
         [--format F] [--target NAME] [--internet-facing | --not-internet-facing] [--environment ENV]
         [--criticality critical|high|medium|low] [--owner USER] [--business-service NAME]
  against the platform (CTEM_API_URL, CTEM_API_TOKEN): [--asset KEY|NAME] [--policy VERSION]
  standalone: --epss FILE --kev FILE [--cve-records DIR|ARCHIVE] [--policy FILE|VERSION] [--exceptions FILE]`;

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

class UsageError extends Error {}

const OPTIONS = {
  block: { type: 'string' },
  'honour-exceptions': { type: 'boolean', default: false },
  'honor-exceptions': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  sarif: { type: 'string' },
  format: { type: 'string' },
  target: { type: 'string' },
  'internet-facing': { type: 'boolean', default: false },
  'not-internet-facing': { type: 'boolean', default: false },
  environment: { type: 'string' },
  criticality: { type: 'string' },
  owner: { type: 'string' },
  'business-service': { type: 'string' },
  asset: { type: 'string' },
  policy: { type: 'string' },
  epss: { type: 'string' },
  kev: { type: 'string' },
  'cve-records': { type: 'string' },
  exceptions: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const CRITICALITIES = ['critical', 'high', 'medium', 'low'] as const;

export async function gateCommand(argv: string[]): Promise<number> {
  try {
    return await gate(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`ctem gate: ${err.message}\n${GATE_USAGE}`);
      return 2;
    }
    if (err instanceof ReportError || err instanceof GateInputError || err instanceof FeedError || err instanceof PolicyError || err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    console.error(`ctem gate: ${(err as Error).message ?? String(err)}`);
    return 2;
  }
}

async function gate(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(GATE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `one report at a time (got ${positionals.length})` : 'name the report');
  const file = positionals[0]!;
  if (!existsSync(file)) throw new GateInputError(basename(file), '', 'file not found');
  if (statSync(file).isDirectory()) throw new GateInputError(file, '', 'is a directory');
  if (v['internet-facing'] && v['not-internet-facing']) throw new UsageError('--internet-facing and --not-internet-facing contradict each other');
  if (v.criticality !== undefined && !(CRITICALITIES as readonly string[]).includes(v.criticality)) {
    throw new UsageError(`--criticality: ${JSON.stringify(v.criticality)} is not one of ${CRITICALITIES.join(', ')}`);
  }
  const rule: GateRule = { block: parseBlockRule(v.block), honourExceptions: v['honour-exceptions'] || v['honor-exceptions'] };
  const context: RequestedContext = {
    ...(v['internet-facing'] ? { internetFacing: true } : v['not-internet-facing'] ? { internetFacing: false } : {}),
    ...(v.environment !== undefined ? { environment: v.environment } : {}),
    ...(v.criticality !== undefined ? { criticality: v.criticality as RequestedContext['criticality'] & string } : {}),
    ...(v.owner !== undefined ? { owner: v.owner } : {}),
    ...(v['business-service'] !== undefined ? { businessService: v['business-service'] } : {}),
  };
  const standalone = v.epss !== undefined || v.kev !== undefined || v['cve-records'] !== undefined;
  let result: GateResult;
  if (standalone) {
    if (v.asset !== undefined) throw new UsageError('--asset names a platform asset: it needs the platform (leave out --epss, --kev and --cve-records)');
    const report = await readReport(file, basename(file), v.format, v.target);
    result = await gateStandalone(report.findings, {
      rule, context,
      policy: policyFromArgument(v.policy),
      feeds: { epss: v.epss, kev: v.kev, cveRecords: v['cve-records'] },
      ...(v.exceptions !== undefined ? { exceptions: readExceptionsFile(v.exceptions) } : {}),
    });
  } else {
    if (v.exceptions !== undefined) throw new UsageError('--exceptions is for the standalone gate (with --epss and --kev); the platform honours its own risk acceptances');
    if (v.policy !== undefined && existsSync(v.policy)) throw new UsageError(`--policy ${v.policy}: a policy file is for the standalone gate (with --epss and --kev); the platform decides with a stored version (save it with POST /api/v1/policies)`);
    const outcome = await onPlatform(file, rule, context, v);
    if (typeof outcome === 'string') {
      console.error(outcome);
      return 2;
    }
    result = outcome;
  }
  if (v.sarif !== undefined) writeFileSync(v.sarif, JSON.stringify(gateSarif(result, VERSION), null, 2) + '\n');
  // The caller exits the process on return: a pipe (a CI log, `| jq`) must have the whole output first.
  const text = v.json ? JSON.stringify(result, null, 2) + '\n' : gateSummary(result);
  await new Promise<void>((done) => process.stdout.write(text, () => done()));
  return result.verdict === 'block' ? 1 : 0;
}

/** POST /api/v1/gate with the report as the body; the result, or what went wrong in one line. */
async function onPlatform(file: string, rule: GateRule, context: RequestedContext, v: { format?: string | undefined; target?: string | undefined; asset?: string | undefined; policy?: string | undefined }): Promise<GateResult | string> {
  const api = platformApi(loadConfig());
  const query = new URLSearchParams({ filename: basename(file), block: rule.block.join('+'), honourExceptions: String(rule.honourExceptions), output: 'json' });
  for (const key of ['format', 'target', 'asset', 'policy'] as const) if (v[key] !== undefined) query.set(key, v[key]!);
  if (context.internetFacing !== undefined) query.set('internetFacing', String(context.internetFacing));
  for (const key of ['environment', 'criticality', 'owner', 'businessService'] as const) if (context[key] !== undefined) query.set(key, context[key]!);
  const r = await callApi(api, `/api/v1/gate?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
  });
  if (r.ok) return r.body as GateResult;
  const error = typeof r.body === 'object' && r.body !== null ? (r.body as { error?: { message?: string } }).error : undefined;
  return `gate of ${basename(file)} failed: HTTP ${r.status}: ${error?.message ?? String(r.body).slice(0, 500)}`;
}
