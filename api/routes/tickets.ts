import { WorkflowNotFoundError } from '@temporalio/client';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getTicket, listTickets } from '../../db/queries/read-model.js';
import { statusQuery } from '../../workflows/remediation.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';
import { ErrorSchema, PageQuery } from './schemas.js';

export const listTicketsRoute = createRoute({
  method: 'get',
  path: '/api/v1/tickets',
  summary: 'Golden tickets: key, ITSM number, state, owner, due date, escalation level, number of findings',
  request: {
    query: PageQuery.extend({
      state: z.enum(['orphaned', 'opening', 'new', 'in_progress', 'on_hold', 'resolved', 'closed']).optional(),
      owner: z.string().optional(),
    }),
  },
  responses: {
    200: { description: 'A page of golden tickets', content: { 'application/json': { schema: z.object({ total: z.number(), items: z.array(z.any()) }) } } },
  },
});

export const getTicketRoute = createRoute({
  method: 'get',
  path: '/api/v1/tickets/{key}',
  summary: 'One golden ticket with its escalations and the live state of its remediation workflow',
  request: { params: z.object({ key: z.string().min(1) }) },
  responses: {
    200: { description: 'The ticket', content: { 'application/json': { schema: z.any() } } },
    404: { description: 'Unknown ticket', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export const ticketRoutes = new OpenAPIHono<AppEnv>()
  .openapi(listTicketsRoute, async (c) => c.json(await listTickets(c.get('deps').database.sql, c.req.valid('query')), 200))
  .openapi(getTicketRoute, async (c) => {
    const deps = c.get('deps');
    const ticket = await getTicket(deps.database.sql, c.req.valid('param').key);
    if (!ticket) return problem(c, 404, 'not_found', 'no such golden ticket');
    let workflow: unknown = null;
    try {
      workflow = await deps.temporal.client.workflow.getHandle(ticket.workflowId).query(statusQuery);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) workflow = { unavailable: (err as Error).message };
    }
    return c.json({ ...ticket, workflow }, 200);
  });
