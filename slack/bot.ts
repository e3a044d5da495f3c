import { App, LogLevel, SocketModeReceiver, type BlockButtonAction, type RespondArguments } from '@slack/bolt';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { getCampaign } from '../scoping/campaign-store.js';
import { createExceptionRequest, decideExceptionRequest, getExceptionRequest, setExceptionRequestMessage } from '../mobilization/exception-requests.js';
import { listExposures } from '../db/read-models/exposures.js';
import { getTicket, listTickets } from '../db/read-models/inventory.js';
import { countLabel } from '../db/read-models/keyset.js';
import { getScope, listScopes, saveScope } from '../scoping/scopes.js';
import { ticketKeyFor } from './store.js';
import { buildOrphanReport, latestReport } from '../discovery/store/sources.js';
import { riskAcceptanceRefusal, type RiskAcceptanceField } from '../mobilization/risk-acceptance.js';
import { acceptTicketRisk, acknowledgeTicket } from '../mobilization/ticket-actions.js';
import type { SlackConfig } from '../config/index.js';
import type { Itsm } from '../mobilization/itsm/index.js';
import { ESTATE_SCOPE, startValidation } from '../validation/runs.js';
import { startCampaign as startCampaignWorkflow, summarizeExposure, workflowUrl } from '../scoping/campaigns.js';
import { campaignStatusQuery } from '../workflows/campaign.js';
import { statusQuery, type RemediationState } from '../workflows/remediation/messages.js';
import { webClientOptions } from './client.js';
import { parseCommand, type Command } from './commands.js';
import { SlackDirectory } from './directory.js';
import { identityByEmail } from '../access/identities.js';
import {
  ACTIONS,
  campaignStartedMessage,
  campaignStatusMessage,
  esc,
  EXCEPTION_MODAL,
  exceptionApprovalMessage,
  exceptionModal,
  exposuresMessage,
  helpMessage,
  orphansMessage,
  scopesMessage,
  textMessage,
  ticketBlocks,
  ticketsMessage,
  type Message,
  type TicketView,
} from './messages.js';
import { HonoSlackReceiver } from './receiver.js';
import { appendAudit, type AuditOutcome } from '../access/audit-trail.js';

// The Slack front: a thin layer like the HTTP API. It authenticates (Slack's signature, then who
// the user is), then starts, updates or queries workflows, or reads PostgreSQL. Every command and
// button is acknowledged at once; the answer follows through the response URL or chat.postMessage.

export interface SlackBotDeps {
  config: SlackConfig;
  database: Database;
  temporal: { client: Client; taskQueue: string; namespace: string; uiUrl?: string };
  /** The ITSM client, to match Slack users to ticket owners by e-mail (available once the platform is up). */
  itsm: () => Itsm | undefined;
  log: (line: string) => void;
}

export interface SlackBot {
  mode: 'http' | 'socket';
  /** HTTP mode: answers one request to /slack/events. */
  handle?: (request: Request) => Promise<Response>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

type Reply = RespondArguments;
const ephemeral = (m: Message): Reply => ({ response_type: 'ephemeral', replace_original: false, text: m.text, blocks: m.blocks });
const inChannel = (m: Message): Reply => ({ response_type: 'in_channel', replace_original: false, text: m.text, blocks: m.blocks });
const OPEN_TICKET_STATES = new Set(['opening', 'new', 'in_progress', 'on_hold']);
/** The modal's blocks for the rule fields it asks for. */
const EXCEPTION_BLOCK: Partial<Record<RiskAcceptanceField, string>> = { reason: 'reason', expiresAt: 'expiry' };

const refusal = (what: string, channel: string) =>
  ephemeral(textMessage(`Sorry, ${what} is reserved for security operations. Ask in <#${channel}> if you need it done.`));

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createSlackBot(deps: SlackBotDeps): SlackBot {
  const { config, database, temporal, log } = deps;
  const sql = database.sql;
  /** The audit trail's entry for a Slack action: the Slack user (and their ITSM name when known) as actor. */
  const audit = (userId: string, action: string, target: string, outcome: AuditOutcome, after?: unknown, name?: string) =>
    appendAudit(sql, { actor: { id: `slack:${userId}`, name: name ?? `slack:${userId}`, kind: 'user' }, action, target, outcome, ...(after === undefined ? {} : { after }), channel: 'slack' });
  const socketMode = Boolean(config.appToken);
  const receiver = socketMode ? undefined : new HonoSlackReceiver({ signingSecret: config.signingSecret!, database, log });
  const app = new App({
    token: config.botToken,
    ...(receiver
      ? { receiver }
      : {
          socketMode: true,
          // Its own Web API client opens the WebSocket (apps.connections.open): same base URL as ours.
          receiver: new SocketModeReceiver({ appToken: config.appToken!, logLevel: LogLevel.WARN, installerOptions: { clientOptions: webClientOptions(config) } }),
        }),
    clientOptions: webClientOptions(config),
    logLevel: LogLevel.WARN,
    convoStore: false,
    deferInitialization: true,
  });
  const directory = new SlackDirectory(app.client, {
    authorizedUsers: config.authorizedUsers,
    ...(config.authorizedUserGroup ? { authorizedUserGroup: config.authorizedUserGroup } : {}),
    itsm: deps.itsm,
    identityByEmail: (email) => identityByEmail(sql, email),
  });
  const urlOf = (workflowId: string) => workflowUrl(temporal, workflowId);
  /** How a Slack user is recorded: their identity's name, else their ITSM user name. */
  async function nameOf(userId: string): Promise<string | undefined> {
    const identity = await directory.identityOf(userId);
    if (identity && identity !== 'disabled') return identity.name;
    return (await directory.itsmUserOf(userId))?.userName;
  }

  /** A failing button answers the person who clicked, without the details (those go to the log). */
  async function politely(what: string, respond: (r: Reply) => Promise<unknown>, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      log(`slack: ${what}: ${(err as Error).stack ?? err}`);
      await respond(ephemeral(textMessage('Sorry, something went wrong on my side; the details are in the platform log.'))).catch(() => {});
    }
  }

  // ---- /ctem -------------------------------------------------------------------------------

  async function liveTicket(workflowId: string): Promise<RemediationState | undefined> {
    // A detail view asks the workflow; a busy or absent worker must not hold the reply.
    return withTimeout(temporal.client.workflow.getHandle(workflowId).query(statusQuery), 2_000);
  }

  async function ticketStatus(ref: string): Promise<Reply> {
    const key = await ticketKeyFor(sql, ref);
    const ticket = key ? await getTicket(sql, key) : undefined;
    if (!ticket) return ephemeral(textMessage(`I know no campaign or golden ticket called \`${esc(ref)}\`.`));
    const live = await liveTicket(ticket.workflowId);
    const escalations = ticket.escalations.map((e) => `level ${e.level} (${e.phase}): ${esc(e.notifiedName ?? e.notifiedUser ?? '?')} on ${e.at.slice(0, 10)}`);
    const blocks = ticketBlocks(ticket, live, urlOf(ticket.workflowId));
    if (escalations.length) blocks.splice(1, 0, { type: 'context', elements: [{ type: 'mrkdwn', text: `Escalations: ${escalations.join('; ')}` }] });
    return ephemeral({ text: `${ticket.externalNumber ?? ticket.key}: ${live?.phase ?? ticket.state}`, blocks });
  }

  async function campaignStatus(id: string): Promise<Reply> {
    const record = await getCampaign(sql, id);
    if (!record) return ephemeral(textMessage(`I know no campaign called \`${esc(id)}\`.`));
    const url = urlOf(id);
    const state = record.status === 'running' ? await withTimeout(temporal.client.workflow.getHandle(id).query(campaignStatusQuery), 2_000) : undefined;
    const results = record.results as { openExposures?: number; error?: string } | null;
    return ephemeral(
      campaignStatusMessage(id, {
        status: record.status === 'failed' && results?.error ? `failed: ${results.error}` : record.status === 'completed' ? `completed, ${results?.openExposures ?? 0} open exposures in scope` : record.status,
        startedAt: record.startedAt,
        ...(state ? { state } : {}),
        ...(url ? { url } : {}),
      }),
    );
  }

  async function mine(userId: string): Promise<Reply> {
    const person = await directory.itsmUserOf(userId);
    if (!person) return ephemeral(textMessage('I could not match your Slack e-mail address to a user in the ITSM, so I cannot tell which tickets are yours.'));
    const owners = [...new Set([person.userName, person.email])];
    const tickets: TicketView[] = [];
    for (const owner of owners) tickets.push(...(await listTickets(sql, { owner, limit: 200 })).items.filter((t) => OPEN_TICKET_STATES.has(t.state)));
    return ephemeral(ticketsMessage(`Your open golden tickets, ${person.name}`, tickets, urlOf));
  }

  async function startCampaign(c: Extract<Command, { kind: 'campaign-start' }>, userId: string, channelId: string): Promise<Reply> {
    if (!(await directory.isAuthorized(userId, 'campaigns.run'))) return refusal('starting a campaign', config.channel);
    if (!(await getScope(sql, c.scope))) return ephemeral(textMessage(`There is no scope called *${esc(c.scope)}*. \`/ctem scopes\` lists them.`));
    const { workflowId: id } = await startCampaignWorkflow(temporal, {
      scope: c.scope,
      requestedBy: `slack:${userId}`,
      channel: channelId,
      ...(c.hypothesis ? { hypothesis: c.hypothesis } : {}),
    });
    await audit(userId, 'campaigns.create', c.scope, 'allowed', { workflowId: id, ...(c.hypothesis ? { hypothesis: c.hypothesis } : {}) });
    const url = urlOf(id);
    return inChannel(campaignStartedMessage({ id, scope: c.scope, userId, ...(c.hypothesis ? { hypothesis: c.hypothesis } : {}), ...(url ? { url } : {}) }));
  }

  async function startValidationRun(c: Extract<Command, { kind: 'validate' }>, userId: string, channelId: string): Promise<Reply> {
    if (!(await directory.isAuthorized(userId, 'validation.write'))) return refusal('starting a validation', config.channel);
    if (c.scope !== ESTATE_SCOPE && !(await getScope(sql, c.scope))) return ephemeral(textMessage(`There is no scope called *${esc(c.scope)}*. \`/ctem scopes\` lists them.`));
    const { workflowId: id } = await startValidation(temporal, { scope: c.scope, trigger: 'slack', requestedBy: `slack:${userId}`, channel: channelId });
    await audit(userId, 'validations.create', c.scope, 'allowed', { workflowId: id });
    const url = urlOf(id);
    return inChannel(textMessage(`<@${userId}> started validation *${esc(id)}* of ${c.scope === ESTATE_SCOPE ? 'the estate' : `scope *${esc(c.scope)}*`}; the results will be posted here.${url ? ` <${url}|Open in Temporal>` : ''}`));
  }

  async function run(command: Command, userId: string, channelId: string): Promise<Reply> {
    switch (command.kind) {
      case 'help':
        return ephemeral(helpMessage(command.problem));
      case 'scopes':
        return ephemeral(scopesMessage(await listScopes(sql)));
      case 'scope-create': {
        if (!(await directory.isAuthorized(userId, 'scopes.write'))) return refusal('changing scopes', config.channel);
        const scope = await saveScope(sql, { name: command.name, selector: command.selector, description: command.description ?? null });
        await audit(userId, 'scopes.put', scope.name, 'allowed', scope);
        return inChannel(textMessage(`<@${userId}> saved scope *${esc(scope.name)}*: \`${esc(JSON.stringify(scope.selector))}\``));
      }
      case 'campaign-start':
        return startCampaign(command, userId, channelId);
      case 'validate':
        return startValidationRun(command, userId, channelId);
      case 'status':
        return command.ref.startsWith('campaign:') ? campaignStatus(command.ref) : ticketStatus(command.ref);
      case 'top': {
        const scope = command.scope ? await getScope(sql, command.scope) : undefined;
        if (command.scope && !scope) return ephemeral(textMessage(`There is no scope called *${esc(command.scope)}*. \`/ctem scopes\` lists them.`));
        const page = await listExposures(sql, { limit: 5, ...(scope ? { scope: scope.selector } : {}) });
        return ephemeral(exposuresMessage(`Top exposures${command.scope ? ` in ${command.scope}` : ''}`, page.items.map(summarizeExposure), countLabel(page.estimate)));
      }
      case 'mine':
        return mine(userId);
      case 'orphans': {
        const latest = await latestReport(database.db, 'orphan-assets');
        const report = (latest?.body as Parameters<typeof orphansMessage>[0] | undefined) ?? (await buildOrphanReport(sql));
        return ephemeral(orphansMessage(report));
      }
    }
  }

  app.command('/ctem', async ({ command, ack, respond }) => {
    await ack();
    let reply: Reply;
    try {
      reply = await run(parseCommand(command.text ?? ''), command.user_id, command.channel_id);
    } catch (err) {
      log(`slack: /ctem ${command.text}: ${(err as Error).stack ?? err}`);
      reply = ephemeral(textMessage('Sorry, something went wrong on my side; the details are in the platform log. `/ctem help` shows what I can do.'));
    }
    await respond(reply);
  });

  // ---- ticket buttons ----------------------------------------------------------------------------

  app.action<BlockButtonAction>(ACTIONS.acknowledge, async ({ ack, body, action, respond }) => {
    await ack();
    await politely('acknowledge', respond, async () => {
      const ticket = await getTicket(sql, action.value ?? '');
      if (!ticket) return void (await respond(ephemeral(textMessage('That golden ticket no longer exists.'))));
      const name = ticket.externalNumber ?? ticket.key;
      const { allowed, actor } = await directory.mayActOnTicket(body.user.id, ticket.owner);
      if (!allowed) return void (await respond(ephemeral(textMessage(`Sorry, only the owner of ${esc(name)} (${esc(ticket.owner ?? 'nobody')}) or security operations can acknowledge it.`))));
      // One Update per clicked message: a double click is the same Update; a click on another message
      // is a new one, which the workflow refuses once the ticket is acknowledged.
      const updateId = `slack:acknowledge:${ticket.key}:${body.container?.message_ts ?? action.action_ts}`;
      const result = await acknowledgeTicket(temporal.client, ticket.key, { by: actor, via: 'slack' }, updateId);
      await audit(body.user.id, 'tickets.acknowledge', ticket.key, result.ok ? 'allowed' : 'failed', result.ok ? { phase: result.state.phase, acknowledgedBy: result.state.acknowledgedBy ?? actor } : { refused: result.message }, actor);
      await respond(
        ephemeral(
          textMessage(
            result.ok
              ? `:white_check_mark: ${esc(name)} acknowledged by ${esc(result.state.acknowledgedBy ?? actor)}. Escalation has stopped; the fix is due ${result.state.dueAt.slice(0, 10)}.`
              : `Could not acknowledge ${esc(name)}: ${esc(result.message)}`,
          ),
        ),
      );
    });
  });

  app.action<BlockButtonAction>(ACTIONS.requestException, async ({ ack, body, action, client, respond }) => {
    await ack();
    await politely('request exception', respond, async () => {
      const ticket = await getTicket(sql, action.value ?? '');
      if (!ticket) return void (await respond(ephemeral(textMessage('That golden ticket no longer exists.'))));
      // The trigger expires 3 seconds after the click: open first, check who asks on submission.
      await client.views.open({ trigger_id: body.trigger_id, view: exceptionModal(ticket, JSON.stringify({ ticketKey: ticket.key })) });
    });
  });

  app.view(EXCEPTION_MODAL, async ({ ack, body, view, client }) => {
    const { ticketKey } = JSON.parse(view.private_metadata || '{}') as { ticketKey?: string };
    const reason = view.state.values.reason?.value?.value?.trim() ?? '';
    const date = view.state.values.expiry?.value?.selected_date ?? '';
    const expiresAt = /^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T23:59:59.000Z` : '';
    const errors: Record<string, string> = {};
    // The workflow's rules, checked now for what the request has; the approval runs them again as the workflow's Update.
    for (const field of ['reason', 'expiresAt'] as const) {
      const refusal = riskAcceptanceRefusal({ reason, expiresAt }, Date.now(), [field]);
      if (refusal) errors[EXCEPTION_BLOCK[field]!] = refusal.message;
    }
    const ticket = ticketKey ? await getTicket(sql, ticketKey) : undefined;
    if (!ticket) errors.reason = 'That golden ticket no longer exists.';
    else if (!(await directory.mayActOnTicket(body.user.id, ticket.owner)).allowed) errors.reason = `Only the owner (${ticket.owner ?? 'nobody'}) or security operations can request an exception.`;
    if (Object.keys(errors).length || !ticket) return void (await ack({ response_action: 'errors', errors }));
    const { created, request } = await createExceptionRequest(sql, { ticketKey: ticket.key, requester: `slack:${body.user.id}`, reason, expiresAt });
    if (created) await audit(body.user.id, 'tickets.exception-request', ticket.key, 'allowed', { request: request.id, reason, expiresAt });
    if (!created) {
      return void (await ack({ response_action: 'errors', errors: { reason: `Request ${request.id} for this ticket is already waiting for security operations.` } }));
    }
    await ack();

    const message = exceptionApprovalMessage(request, ticket, body.user.id);
    const posted = await client.chat.postMessage({ channel: config.channel, text: message.text, blocks: message.blocks });
    if (posted.channel && posted.ts) await setExceptionRequestMessage(sql, request.id, posted.channel, posted.ts);
    await client.chat.postMessage({
      channel: body.user.id,
      text: `Your exception request for ${ticket.externalNumber ?? ticket.key} (until ${date}) went to security operations in <#${config.channel}>.`,
    });
  });

  // ---- exception decisions -----------------------------------------------------------------------

  async function decide(decision: 'approved' | 'rejected', body: BlockButtonAction, action: BlockButtonAction['actions'][number], respond: (r: Reply) => Promise<unknown>) {
    const userId = body.user.id;
    if (!(await directory.isAuthorized(userId, 'risk.accept'))) return void (await respond(refusal('deciding exceptions', config.channel)));
    const request = await getExceptionRequest(sql, Number(action.value));
    if (!request) return void (await respond(ephemeral(textMessage('That exception request no longer exists.'))));
    if (request.status !== 'pending') {
      return void (await respond(ephemeral(textMessage(`Request ${request.id} was already ${request.status} by ${request.decidedBy?.startsWith('slack:') ? `<@${request.decidedBy.slice(6)}>` : esc(request.decidedBy ?? '?')}.`))));
    }
    const ticket = await getTicket(sql, request.ticketKey);
    if (!ticket) return void (await respond(ephemeral(textMessage('That golden ticket no longer exists.'))));
    const requesterId = request.requester.replace(/^slack:/, '');
    if (decision === 'approved') {
      const [requester, approver] = await Promise.all([nameOf(requesterId), nameOf(userId)]);
      // Keyed by the request: concurrent approvals are one Update.
      const result = await acceptTicketRisk(
        temporal.client,
        ticket.key,
        { requester: requester ?? request.requester, approver: approver ?? `slack:${userId}`, reason: request.reason, expiresAt: request.expiresAt },
        `exception-request:${request.id}`,
      );
      if (!result.ok) return void (await respond(ephemeral(textMessage(`Could not accept the risk of ${esc(ticket.externalNumber ?? ticket.key)}: ${esc(result.message)}`))));
    }
    const decided = await decideExceptionRequest(sql, request.id, decision, `slack:${userId}`);
    if (!decided) return; // another click decided it a moment ago
    await audit(userId, decision === 'approved' ? 'tickets.exception-approve' : 'tickets.exception-reject', ticket.key, 'allowed', { request: request.id, status: decided.status, expiresAt: decided.expiresAt });
    const message = exceptionApprovalMessage(decided, ticket, requesterId);
    if (decided.channel && decided.messageTs) await app.client.chat.update({ channel: decided.channel, ts: decided.messageTs, text: message.text, blocks: message.blocks });
    const name = ticket.externalNumber ?? ticket.key;
    await app.client.chat.postMessage({
      channel: requesterId,
      text:
        decision === 'approved'
          ? `Your exception for ${name} was approved by <@${userId}>: its SLA is paused until ${decided.expiresAt.slice(0, 10)}, when the ticket re-opens.`
          : `Your exception for ${name} was rejected by <@${userId}>. The ticket's SLA runs on.`,
    });
  }

  app.action<BlockButtonAction>(ACTIONS.approveException, async ({ ack, body, action, respond }) => {
    await ack();
    await politely('approve exception', respond, () => decide('approved', body, action, respond));
  });
  app.action<BlockButtonAction>(ACTIONS.rejectException, async ({ ack, body, action, respond }) => {
    await ack();
    await politely('reject exception', respond, () => decide('rejected', body, action, respond));
  });

  app.error(async (err) => {
    log(`slack: ${err.message}`);
  });

  return {
    mode: socketMode ? 'socket' : 'http',
    ...(receiver ? { handle: (request: Request) => receiver.handle(request) } : {}),
    async start() {
      await app.init(); // auth.test: a wrong token stops the start with Slack's reason
      if (socketMode) await app.start();
    },
    async stop() {
      if (socketMode) await app.stop();
    },
  };
}
