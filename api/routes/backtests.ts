import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { backtest, BacktestError, laterKevVersion } from '../../prioritization/backtest.js';
import { activePolicy, getPolicy } from '../../prioritization/policy-store.js';
import type { Policy } from '../../prioritization/policy.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { BacktestSchema, ErrorSchema } from './schemas.js';

// Backtests: would a policy have flagged, at t0, what attackers went on to exploit? Read-only, so
// any version (active, shadow, retired) can be tested beside the baselines.

const Version = z.string().min(1).max(100);

const BacktestRequest = z
  .object({
    universe: z.enum(['cves', 'records', 'estate']).default('estate').openapi({ description: 'cves: every CVE of the EPSS file (no local context); records: those with a CVE record; estate: the open findings, with their context' }),
    policies: z.array(Version).min(1).max(5).default(['active']).openapi({ description: 'policy versions to test; `active` for the active one' }),
    epss: Version.optional().openapi({ description: 'FIRST EPSS version at t0 (default: the active one)' }),
    kev: Version.optional().openapi({ description: 'CISA KEV version at t0 (default: the active one)' }),
    cve: Version.nullable().optional().openapi({ description: 'CVE records version at t0 (default: the active one; null: none)' }),
    laterKev: z
      .object({ cves: z.array(z.string().regex(/^CVE-\d{4}-\d{4,}$/)).max(100_000).optional(), version: Version.optional() })
      .refine((v) => (v.cves === undefined) !== (v.version === undefined), 'give either cves or version')
      .openapi({ description: 'the later KEV catalog: its CVE ids, or a KEV feed version imported later (staged is enough)' }),
  })
  .openapi('BacktestRequest');

const backtestRoute = createRoute({
  method: 'post',
  path: '/api/v1/backtests',
  summary: 'Backtest policies against a later CISA KEV: effort, coverage and efficiency beside EPSS and CVSS baselines',
  request: { body: { content: { 'application/json': { schema: BacktestRequest } }, required: true } },
  responses: {
    200: { description: 'The backtest', content: { 'application/json': { schema: BacktestSchema } } },
    404: { description: 'Unknown policy version', content: { 'application/json': { schema: ErrorSchema } } },
    422: { description: 'Unusable input (unknown feed version, empty catalog)', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const backtestRoutes = new OpenAPIHono<AppEnv>().openapi(backtestRoute, async (c) => {
  const sql = c.get('deps').database.sql;
  const body = c.req.valid('json');
  const policies: Policy[] = [];
  for (const version of body.policies) {
    const policy = version === 'active' ? await activePolicy(sql) : await getPolicy(sql, version);
    if (!policy) return problem(c, 404, 'not_found', `no policy version ${version}`);
    policies.push(policy);
  }
  try {
    const laterKev = body.laterKev.version ? await laterKevVersion(sql, body.laterKev.version) : (body.laterKev.cves ?? []);
    const result = await backtest(sql, { policies, laterKev, universe: body.universe, epss: body.epss, kev: body.kev, cve: body.cve });
    return c.json({ ...result, credit: 'FIRST EPSS, CISA KEV, CISA Vulnrichment' }, 200);
  } catch (err) {
    if (err instanceof BacktestError) return problem(c, 422, 'invalid_backtest', err.message);
    throw err;
  }
});
