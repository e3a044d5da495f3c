import { LogLevel, webApi } from '@slack/bolt';
import type { SlackConfig } from '../config/index.js';

export type WebClient = webApi.WebClient;

/**
 * Slack Web API client options shared by the bot and the notifier. Few retries: callers are Temporal
 * activities (which retry themselves) or people waiting on a reply.
 */
export function webClientOptions(config: Pick<SlackConfig, 'apiUrl'>): webApi.WebClientOptions {
  return {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    retryConfig: { retries: 2, minTimeout: 200, maxTimeout: 2_000 },
    logLevel: LogLevel.ERROR,
    timeout: 10_000,
  };
}

export function createWebClient(config: Pick<SlackConfig, 'botToken' | 'apiUrl'>): WebClient {
  return new webApi.WebClient(config.botToken, webClientOptions(config));
}

/** The Slack error code of a failed Web API call (`not_in_channel`, `users_not_found`...). */
export function slackErrorCode(err: unknown): string | undefined {
  return (err as { data?: { error?: string } }).data?.error;
}
