import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { readFileSync } from 'node:fs';
import { ReportError } from '../../discovery/connectors/index.js';
import { GateInputError, parseBlockRule } from '../../prioritization/gate.js';
import { gateOnPlatform, readReport } from '../../prioritization/gate-inputs.js';
import { gateSarif, gateSummary } from '../../prioritization/gate-output.js';
import { PolicyError } from '../../prioritization/policy.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { withUploadedFile } from '../uploads.js';
import { ErrorSchema } from './schemas.js';

// The CI/CD gate against the platform: a report of something not deployed yet, decided with the
// active policy and feeds and what the platform knows of its asset. Nothing is written: the
// report's findings never enter the estate (POST /api/v1/scans does that).

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const bool = z.enum(['true', 'false']);

const GateQuery = z.object({
  format: z.string().optional().openapi({ description: 'Report format; detected from the content when omitted', example: 'trivy-json' }),
  target: z.string().max(512).optional().openapi({ description: 'Asset name to use instead of the one in the report' }),
  filename: z.string().max(256).optional().openapi({ description: 'Original file name, used in error messages' }),
  block: z.string().max(64).optional().openapi({ description: 'What blocks: act (default), attend, kev, joined with + (act+attend, act+kev)', example: 'act+attend' }),
  honourExceptions: bool.optional().openapi({ description: 'A running risk acceptance on a ticket that holds the same vulnerability and component on the asset lets the finding pass (default false)' }),
  asset: z.string().max(512).optional().openapi({ description: 'A platform asset (key or name) whose context and exceptions apply, e.g. the deployed image this one replaces' }),
  policy: z.string().max(100).optional().openapi({ description: 'A stored policy version to decide with instead of the active one' }),
  internetFacing: bool.optional().openapi({ description: 'Context over what the platform knows (or for an asset it does not know): internet-facing or not' }),
  environment: z.string().max(64).optional().openapi({ description: 'Context: the environment it deploys to (production, staging...)' }),
  criticality: z.enum(['critical', 'high', 'medium', 'low']).optional().openapi({ description: 'Context: business criticality' }),
  owner: z.string().max(256).optional(),
  businessService: z.string().max(256).optional(),
  output: z.enum(['json', 'sarif', 'text']).default('json').openapi({ description: 'json: the verdict and every finding; sarif: SARIF 2.1.0 for code scanning; text: the summary a CI log shows' }),
});

const Factor = z.object({ factor: z.string(), value: z.unknown(), source: z.string(), effect: z.string() });
const Tier = z.enum(['act', 'attend', 'track*', 'track']);
const Rule = z.enum(['act', 'attend', 'kev']);

export const GateResultSchema = z
  .object({
    verdict: z.enum(['pass', 'block']),
    rule: z.object({ block: z.array(Rule), honourExceptions: z.boolean() }),
    policy: z.string(),
    feeds: z.object({ epss: z.string().nullable(), kev: z.string().nullable(), cve: z.string().nullable().optional() }),
    assets: z.array(z.object({ key: z.string(), name: z.string(), source: z.enum(['platform', 'request']), owner: z.string().nullable(), businessService: z.string().nullable() })),
    counts: z.object({ act: z.number().int(), attend: z.number().int(), 'track*': z.number().int(), track: z.number().int(), findings: z.number().int(), blocking: z.number().int(), excepted: z.number().int() }),
    findings: z.array(z.object({
      issueId: z.string(), kind: z.string(), component: z.string(), version: z.string(), fixedVersion: z.string().nullable(), path: z.string(),
      title: z.string().nullable(), severity: z.string(), tier: Tier, score: z.number(), cvss: z.number().nullable(), dueDays: z.number(), inKev: z.boolean(),
      matched: z.array(Rule), blocking: z.boolean(),
      exception: z.object({ issueId: z.string(), component: z.string().optional(), reason: z.string(), expiresAt: z.string(), ticket: z.string().optional(), approver: z.string().optional() }).optional(),
      explanation: z.array(Factor),
    })),
  })
  .openapi('GateResult');

export const gateRoute = createRoute({
  method: 'post',
  path: '/api/v1/gate',
  summary: 'CI/CD gate: decide a scanner report with the active policy and feeds, without storing it',
  description: 'The request body is the report file itself, or a multipart form with the report in a field named `report`. The answer is 200 whether the verdict is pass or block.',
  request: { query: GateQuery },
  responses: {
    200: {
      description: 'The verdict',
      content: { 'application/json': { schema: GateResultSchema }, 'application/sarif+json': { schema: z.record(z.string(), z.unknown()).openapi('SarifLog') }, 'text/plain': { schema: z.string() } },
    },
    400: { description: 'Unreadable report or parameter', content: { 'application/json': { schema: ErrorSchema } } },
    413: { description: 'Report too large', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

/** The report's bytes: the raw body, or the `report` field (else the only file) of a multipart form. */
async function reportBody(req: Request, maxBytes: number): Promise<ReadableStream<Uint8Array> | null | string> {
  if (!(req.headers.get('content-type') ?? '').toLowerCase().startsWith('multipart/form-data')) return req.body;
  // A form is read whole: refuse a declared size over the limit before reading it.
  const declared = Number(req.headers.get('content-length') ?? 'NaN');
  if (declared > maxBytes) return `the upload is larger than the limit of ${maxBytes} bytes`;
  let form: FormData;
  try {
    form = await req.formData();
  } catch (err) {
    return `unreadable multipart form (${(err as Error).message})`;
  }
  const files = [...form.values()].filter((v) => typeof v !== 'string');
  const file = form.get('report') ?? (files.length === 1 ? files[0]! : null);
  if (!file || typeof file === 'string') return 'the multipart form needs the report as a file in a field named "report"';
  return file.stream() as ReadableStream<Uint8Array>;
}

export const gateRoutes = new OpenAPIHono<AppEnv>().openapi(gateRoute, async (c) => {
  const deps = c.get('deps');
  const q = c.req.valid('query');
  let block;
  try {
    block = parseBlockRule(q.block, 'block');
  } catch (err) {
    return problem(c, 400, 'invalid_request', (err as Error).message);
  }
  const body = await reportBody(c.req.raw, deps.maxUploadBytes);
  if (typeof body === 'string') return problem(c, body.includes('larger than') ? 413 : 400, body.includes('larger than') ? 'too_large' : 'invalid_input', body);
  const name = q.filename ?? 'uploaded file';
  const result = await withUploadedFile(deps, body, async (file) => {
    try {
      const report = await readReport(file, name, q.format, q.target);
      return await gateOnPlatform(deps.database.sql, report.findings, {
        rule: { block, honourExceptions: q.honourExceptions === 'true' },
        asset: q.asset,
        policyVersion: q.policy,
        context: {
          ...(q.internetFacing !== undefined ? { internetFacing: q.internetFacing === 'true' } : {}),
          ...(q.environment !== undefined ? { environment: q.environment } : {}),
          ...(q.criticality !== undefined ? { criticality: q.criticality } : {}),
          ...(q.owner !== undefined ? { owner: q.owner } : {}),
          ...(q.businessService !== undefined ? { businessService: q.businessService } : {}),
        },
      });
    } catch (err) {
      if (err instanceof ReportError || err instanceof GateInputError || err instanceof PolicyError) return err;
      throw err;
    }
  });
  if (!result.ok) return problem(c, result.status, result.code, result.message);
  if (result.value instanceof Error) return problem(c, 400, 'invalid_input', result.value.message);
  if (q.output === 'sarif') return c.json(gateSarif(result.value, VERSION), 200, { 'content-type': 'application/sarif+json' });
  if (q.output === 'text') return c.text(gateSummary(result.value), 200);
  return c.json(result.value, 200);
});
