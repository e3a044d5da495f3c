/** Jira Cloud's admin-webhook signature: X-Hub-Signature, shared by the simulator and the platform's route. */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** `sha256=<hex HMAC-SHA256 of the raw body>` keyed on the webhook's secret (WebSub's method=signature form). */
export function signJiraWebhookBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** Checks X-Hub-Signature against the raw body, in constant time. */
export function verifyJiraWebhookSignature(body: string, header: string | undefined, secret: string): boolean {
  if (!header || !secret) return false;
  const expected = Buffer.from(signJiraWebhookBody(body, secret), 'utf8');
  const given = Buffer.from(header.trim(), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
