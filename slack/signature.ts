import { createHmac, timingSafeEqual } from 'node:crypto';

// Slack's request signing (v0): HMAC-SHA256 with the app's signing secret over `v0:<timestamp>:<raw body>`,
// sent as `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`. A request older (or newer)
// than five minutes is refused, so a captured request cannot be replayed later; within the window,
// the receiver remembers signatures it has served.

export const SIGNATURE_WINDOW_MS = 5 * 60_000;

export function slackSignature(secret: string, timestamp: string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function verifySlackSignature(
  secret: string,
  headers: { signature: string | null | undefined; timestamp: string | null | undefined },
  body: string,
  nowMs = Date.now(),
): SignatureCheck {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp) return { ok: false, reason: 'missing X-Slack-Signature or X-Slack-Request-Timestamp' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed X-Slack-Request-Timestamp' };
  if (Math.abs(nowMs - Number(timestamp) * 1000) > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'stale X-Slack-Request-Timestamp' };
  const expected = Buffer.from(slackSignature(secret, timestamp, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true };
}
