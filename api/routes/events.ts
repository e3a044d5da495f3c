import { randomUUID } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ContextRecord } from '../../discovery/context/model.js';
import { ingestContext } from '../../discovery/store/context.js';
import { listSources } from '../../discovery/store/sources.js';
import type { AppEnv } from '../context.js';
import { ErrorSchema } from './schemas.js';
import { startSourceRun } from './sources.js';

const DeployEvent = z.object({
  id: z.string().min(1).max(200).openapi({ description: 'Deployment id; the same id twice does one thing' }),
  image: z.string().min(1).openapi({ example: 'registry.example.com/shop/payments-api:1.4.3' }),
  digest: z.string().optional().openapi({ example: 'sha256:…' }),
  service: z.string().optional().openapi({ description: 'Business service the image belongs to' }),
  environment: z.string().optional(),
  hosts: z.array(z.string().min(1)).default([]).openapi({ description: 'FQDNs or host names the image now runs on' }),
});

export const deployEventRoute = createRoute({
  method: 'post',
  path: '/api/v1/events/deploy',
  summary: 'A deployment happened: record where the image runs and rescan it on every targetable source',
  request: { body: { content: { 'application/json': { schema: DeployEvent } }, required: true } },
  responses: {
    202: {
      description: 'Recorded; targeted rescans started',
      content: { 'application/json': { schema: z.object({ eventId: z.string(), rescans: z.array(z.object({ source: z.string(), workflowId: z.string(), status: z.string() })) }) } },
    },
    400: { description: 'Invalid event', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

/** The deployed image as context: it runs on these hosts and belongs to this service. */
async function* deployContext(e: z.infer<typeof DeployEvent>): AsyncGenerator<ContextRecord> {
  yield {
    type: 'asset',
    asset: {
      kind: 'container_image',
      name: e.image,
      identifiers: { image: e.image, ...(e.digest ? { imageDigest: e.digest } : {}) },
      ...(e.environment ? { environment: e.environment } : {}),
      relations: [
        ...e.hosts.map((h) => ({ relation: 'runs_on' as const, target: h.includes('.') ? { fqdn: h } : { hostname: h }, targetKind: 'host' as const, targetName: h })),
        ...(e.service ? [{ relation: 'part_of' as const, target: {}, targetKind: 'business_service' as const, targetName: e.service }] : []),
      ],
    },
  };
}

export const eventRoutes = new OpenAPIHono<AppEnv>().openapi(deployEventRoute, async (c) => {
  const deps = c.get('deps');
  const event = c.req.valid('json');
  await ingestContext(deps.database.sql, { id: randomUUID(), source: 'deploy-events', format: 'deploy-event' }, deployContext(event));
  const targetable = (await listSources(deps.database.db)).filter((s) => s.kind === 'report-url' && String(s.config.url).includes('{target}'));
  const rescans = [];
  for (const source of targetable) {
    const workflowId = `discovery-source:${source.name}:deploy:${event.id}`;
    rescans.push({ source: source.name, workflowId, status: await startSourceRun(deps, source.name, workflowId, event.image) });
  }
  return c.json({ eventId: event.id, rescans }, 202);
});
