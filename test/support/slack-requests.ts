import { randomUUID } from 'node:crypto';
import { slackSignature } from '../../slack/signature.js';

// Requests as Slack sends them to /slack/events: form-encoded slash commands and interaction
// payloads, signed with the app's signing secret (or deliberately not).

export interface SignOptions {
  secret?: string;
  /** Seconds since the epoch; now by default. */
  timestamp?: number;
  /** Replaces the computed signature. */
  signature?: string;
}

export interface SlackRequest {
  body: string;
  headers: Record<string, string>;
}

export function signed(body: string, secret: string, options: SignOptions = {}): SlackRequest {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': options.signature ?? slackSignature(options.secret ?? secret, timestamp, body),
    },
  };
}

export function slashCommand(text: string, { user, channel, responseUrl }: { user: string; channel: string; responseUrl: string }): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T0CTEM',
    team_domain: 'ctem-test',
    channel_id: channel,
    channel_name: 'security-ops',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/ctem',
    text,
    api_app_id: 'A0CTEM',
    response_url: responseUrl,
    trigger_id: `trigger-${randomUUID()}`,
  }).toString();
}

export function buttonClick(
  actionId: string,
  value: string,
  { user, channel, responseUrl, messageTs, triggerId = `trigger-${randomUUID()}` }: { user: string; channel: string; responseUrl: string; messageTs: string; triggerId?: string },
): string {
  const payload = {
    type: 'block_actions',
    team: { id: 'T0CTEM', domain: 'ctem-test' },
    user: { id: user, username: user.toLowerCase(), team_id: 'T0CTEM' },
    api_app_id: 'A0CTEM',
    token: 'legacy-verification-token',
    trigger_id: triggerId,
    response_url: responseUrl,
    container: { type: 'message', message_ts: messageTs, channel_id: channel, is_ephemeral: true },
    channel: { id: channel, name: 'security-ops' },
    message: { ts: messageTs, type: 'message' },
    actions: [{ type: 'button', action_id: actionId, block_id: 'b', value, text: { type: 'plain_text', text: actionId }, action_ts: `${Date.now() / 1000}` }],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export function viewSubmission(callbackId: string, privateMetadata: string, values: Record<string, Record<string, Record<string, unknown>>>, user: string): string {
  const payload = {
    type: 'view_submission',
    team: { id: 'T0CTEM', domain: 'ctem-test' },
    user: { id: user, username: user.toLowerCase(), team_id: 'T0CTEM' },
    api_app_id: 'A0CTEM',
    token: 'legacy-verification-token',
    trigger_id: `trigger-${randomUUID()}`,
    view: { id: `V${randomUUID().slice(0, 8)}`, type: 'modal', callback_id: callbackId, private_metadata: privateMetadata, state: { values }, hash: 'h' },
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
