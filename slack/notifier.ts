import type { CampaignFailure, CampaignPublisher, CampaignResults } from '../scoping/campaigns.js';
import type { Database } from '../db/client.js';
import { claimNotice, recordNoticeSent, releaseNotice } from './store.js';
import type { EscalationDigestNotice, Notifier, OrphanReportNotice } from '../mobilization/notifier.js';
import type { SlackConfig } from '../config/index.js';
import { createWebClient, slackErrorCode, type WebClient } from './client.js';
import { SlackDirectory } from './directory.js';
import { campaignFailedMessage, campaignResultsMessage, escalationDigestMessage, orphanReportMessage, validationResultsMessage, type Message } from './messages.js';
import type { ValidationPublisher, ValidationResults } from '../validation/runs.js';

// What mobilization and campaigns tell people in Slack: escalation digests to managers (one DM per
// round, found by e-mail), the weekly orphan report and campaign results to security operations.
// Called from activities, which retry: each notice is claimed in PostgreSQL before it is posted, so
// a retry or a restart never posts it twice (a crash between posting and recording loses it instead).

/** Where a message cannot go when the bot is not in the channel; the security channel is the fallback. */
const CHANNEL_GONE = new Set(['not_in_channel', 'channel_not_found', 'is_archived']);

export class SlackNotifier implements Notifier, CampaignPublisher, ValidationPublisher {
  constructor(
    private readonly deps: { client: WebClient; database: Database; channel: string; directory: SlackDirectory; log?: (line: string) => void },
  ) {}

  /** One DM per digest (per manager per escalation round), whatever the number of tickets in it. */
  async escalationDigest(notice: EscalationDigestNotice): Promise<void> {
    await this.once(`escalation-digest:${notice.id}`, 'escalation-digest', async () => {
      const manager = notice.manager.email ? await this.deps.directory.slackUserByEmail(notice.manager.email) : undefined;
      const message = escalationDigestMessage(notice);
      if (!manager) {
        // Nobody to DM: security operations hear about it instead of no one.
        return this.post(this.deps.channel, {
          ...message,
          text: `${notice.manager.name} (${notice.manager.userName}) is not on Slack. ${message.text}`,
          blocks: [{ type: 'context', elements: [{ type: 'mrkdwn', text: `${notice.manager.name} (${notice.manager.userName}) was not found in Slack by e-mail; posting here instead.` }] }, ...message.blocks],
        });
      }
      const dm = await this.deps.client.conversations.open({ users: manager });
      return this.post(dm.channel?.id ?? manager, message);
    });
  }

  async orphanReport(notice: OrphanReportNotice): Promise<void> {
    await this.once(notice.id, 'orphan-report', () => this.post(this.deps.channel, orphanReportMessage(notice)));
  }

  async campaignResults(results: CampaignResults): Promise<void> {
    await this.once(`campaign-results:${results.campaignId}`, 'campaign-results', () => this.postWhereAsked(results.channel, campaignResultsMessage(results)));
  }

  async campaignFailed(failure: CampaignFailure): Promise<void> {
    await this.once(`campaign-failed:${failure.campaignId}`, 'campaign-failed', () => this.postWhereAsked(failure.channel, campaignFailedMessage(failure)));
  }

  async validationResults(results: ValidationResults): Promise<void> {
    await this.once(`validation-results:${results.runId}`, 'validation-results', () => this.postWhereAsked(results.channel, validationResultsMessage(results)));
  }

  /** To the channel a campaign was started from; to the security channel when the bot may not post there. */
  private async postWhereAsked(channel: string | undefined, message: Message): Promise<{ channel: string; ts: string }> {
    const target = channel ?? this.deps.channel;
    try {
      return await this.post(target, message);
    } catch (err) {
      if (target === this.deps.channel || !CHANNEL_GONE.has(slackErrorCode(err) ?? '')) throw err;
      this.deps.log?.(`slack: cannot post to ${target} (${slackErrorCode(err)}); posting to the security channel`);
      return this.post(this.deps.channel, message);
    }
  }

  private async post(channel: string, message: Message): Promise<{ channel: string; ts: string }> {
    const res = await this.deps.client.chat.postMessage({ channel, text: message.text, blocks: message.blocks, unfurl_links: false });
    return { channel: res.channel ?? channel, ts: res.ts ?? '' };
  }

  private async once(noticeId: string, kind: string, send: () => Promise<{ channel: string; ts: string }>): Promise<void> {
    const sql = this.deps.database.sql;
    if (!(await claimNotice(sql, noticeId, kind, this.deps.channel))) return;
    let sent: { channel: string; ts: string };
    try {
      sent = await send();
    } catch (err) {
      await releaseNotice(sql, noticeId);
      throw err;
    }
    await recordNoticeSent(sql, noticeId, sent.channel, sent.ts);
  }
}

export function createSlackNotifier(config: SlackConfig, database: Database, log?: (line: string) => void): SlackNotifier {
  const client = createWebClient(config);
  const directory = new SlackDirectory(client, { authorizedUsers: config.authorizedUsers, ...(config.authorizedUserGroup ? { authorizedUserGroup: config.authorizedUserGroup } : {}) });
  return new SlackNotifier({ client, database, channel: config.channel, directory, ...(log ? { log } : {}) });
}
