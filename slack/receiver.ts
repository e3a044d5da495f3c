import type { App, Receiver, ReceiverEvent } from '@slack/bolt';
import type { Database } from '../db/client.js';
import { pruneSlackRequests, recordSlackRequest } from './store.js';
import { SIGNATURE_WINDOW_MS, verifySlackSignature } from './signature.js';

// Bolt's HTTP receivers bring their own server (Node http or Express); the platform serves Slack
// from its Hono API instead, so this receiver takes a fetch Request and returns a Response. It
// verifies the signature and the timestamp, refuses a replay (the signature is remembered in
// PostgreSQL for the window, so every API replica knows it), hands the body to Bolt and answers
// with whatever the listener acknowledged; the listener keeps working after the ack.

/** Slack waits 3 seconds for the HTTP answer. */
const ACK_TIMEOUT_MS = 2_800;
/** Slack's payloads are small; anything larger is not Slack. */
const MAX_BODY_BYTES = 1024 * 1024;
const PRUNE_EVERY_MS = 60_000;

type Log = (line: string) => void;

export class HonoSlackReceiver implements Receiver {
  private app: App | undefined;
  private lastPrune = 0;

  constructor(
    private readonly options: { signingSecret: string; database: Database; log: Log },
  ) {}

  init(app: App): void {
    this.app = app;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async handle(request: Request): Promise<Response> {
    if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY_BYTES) return new Response('request too large', { status: 413 });
    const raw = await request.text();
    if (Buffer.byteLength(raw) > MAX_BODY_BYTES) return new Response('request too large', { status: 413 });
    const signature = request.headers.get('x-slack-signature');
    const check = verifySlackSignature(this.options.signingSecret, { signature, timestamp: request.headers.get('x-slack-request-timestamp') }, raw);
    if (!check.ok) return unauthorized(check.reason);
    const sql = this.options.database.sql;
    if (!(await recordSlackRequest(sql, signature!))) return unauthorized('replayed request');
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      pruneSlackRequests(sql, 2 * SIGNATURE_WINDOW_MS).catch((err: Error) => this.options.log(`slack: pruning request signatures failed: ${err.message}`));
    }

    let body: Record<string, unknown>;
    try {
      body = parseBody(raw, request.headers.get('content-type') ?? '');
    } catch {
      return new Response('malformed body', { status: 400 });
    }
    if (body.ssl_check) return new Response(null, { status: 200 });
    if (body.type === 'url_verification') return Response.json({ challenge: body.challenge });
    if (!this.app) return new Response('not ready', { status: 503 });

    let acknowledge!: (response: unknown) => void;
    const acked = new Promise<{ response: unknown }>((resolve) => {
      acknowledge = (response) => resolve({ response });
    });
    let isAcked = false;
    const retryNum = request.headers.get('x-slack-retry-num');
    const retryReason = request.headers.get('x-slack-retry-reason');
    const event: ReceiverEvent = {
      body,
      ...(retryNum ? { retryNum: Number(retryNum) } : {}),
      ...(retryReason ? { retryReason } : {}),
      ack: async (response?: unknown) => {
        if (isAcked) return;
        isAcked = true;
        acknowledge(response);
      },
    };
    const processed = this.app.processEvent(event).then(
      () => ({ done: true as const }),
      (err: Error) => {
        this.options.log(`slack: listener failed: ${err.message}`);
        return { failed: err };
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ timedOut: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true }), ACK_TIMEOUT_MS);
    });
    const first = await Promise.race([acked, processed, timeout]);
    clearTimeout(timer);
    if ('response' in first) return ackResponse(first.response);
    if ('failed' in first && !isAcked) return new Response('internal error', { status: 500 });
    if ('timedOut' in first) this.options.log('slack: a listener did not acknowledge within 3 seconds');
    // No listener for this event, or it finished without acknowledging: Slack only needs a 200.
    return new Response(null, { status: 200 });
  }
}

function unauthorized(reason: string): Response {
  return Response.json({ error: { code: 'unauthorized', message: `invalid Slack request: ${reason}` } }, { status: 401 });
}

/** Slash commands and interactions are form-encoded (interactions carry JSON in `payload`); events are JSON. */
function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  const form = Object.fromEntries(new URLSearchParams(raw));
  return typeof form.payload === 'string' ? (JSON.parse(form.payload) as Record<string, unknown>) : form;
}

function ackResponse(response: unknown): Response {
  if (response === undefined || response === null || response === '') return new Response(null, { status: 200 });
  if (typeof response === 'string') return new Response(response, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  return Response.json(response);
}
