import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// A local stand-in for the Slack Web API over real HTTP, for tests and demos: it answers the methods
// the bot calls the way Slack does (HTTP 200 with `ok: false` and an error code on failure, form or
// JSON bodies, the bot token checked), keeps the messages it was sent so chat.update can find them,
// and records every call and every post to a response URL. With an app token it also serves
// Socket Mode: apps.connections.open hands out a WebSocket URL on the same server, which sends
// `hello` and then whatever envelopes the test pushes, and collects the app's acknowledgements.

export interface FakeSlackUser {
  id: string;
  name: string;
  email?: string;
}

export interface SlackCall {
  method: string;
  args: Record<string, any>;
  /** What the fake answered. */
  result: Record<string, any>;
  at: number;
}

export interface ResponseUrlPost {
  id: string;
  body: Record<string, any>;
  at: number;
}

export interface FakeSlack {
  /** Base URL of the Web API (SLACK_API_URL). */
  apiUrl: string;
  calls: SlackCall[];
  responses: ResponseUrlPost[];
  callsTo(method: string): SlackCall[];
  /** A fresh response_url, as Slack puts in each command and interaction. */
  responseUrl(): string;
  /** Posts received on one response URL. */
  responsesAt(url: string): ResponseUrlPost[];
  /** Channels the bot is not a member of (chat.postMessage answers not_in_channel). */
  notMemberOf: Set<string>;
  /** Socket Mode: whether an app is connected, and an envelope pushed to it (resolves with its ack payload). */
  socketConnected(): boolean;
  pushEnvelope(type: string, payload: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

// ---- a minimal WebSocket server (RFC 6455): unfragmented text, ping/pong and close frames ----------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const extra = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + extra);
  head[0] = 0x80 | opcode;
  head[1] = extra === 0 ? n : extra === 2 ? 126 : 127;
  if (extra === 2) head.writeUInt16BE(n, 2);
  if (extra === 8) head.writeBigUInt64BE(BigInt(n), 2);
  return Buffer.concat([head, payload]);
}

/** Reads client frames (always masked) from a buffer; returns the frames and what is left over. */
function readFrames(buffer: Buffer): { frames: Array<{ opcode: number; payload: Buffer }>; rest: Buffer } {
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const opcode = buffer[offset]! & 0x0f;
    let length = buffer[offset + 1]! & 0x7f;
    let at = offset + 2;
    if (length === 126) {
      if (buffer.length < at + 2) break;
      length = buffer.readUInt16BE(at);
      at += 2;
    } else if (length === 127) {
      if (buffer.length < at + 8) break;
      length = Number(buffer.readBigUInt64BE(at));
      at += 8;
    }
    if (buffer.length < at + 4 + length) break;
    const mask = buffer.subarray(at, at + 4);
    const payload = Buffer.from(buffer.subarray(at + 4, at + 4 + length));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    frames.push({ opcode, payload });
    offset = at + 4 + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

const JSON_FIELDS = new Set(['blocks', 'attachments', 'view', 'metadata', 'users']);

async function readBody(req: IncomingMessage): Promise<{ args: Record<string, any>; token?: string }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  let args: Record<string, any> = {};
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    args = raw ? JSON.parse(raw) : {};
  } else {
    for (const [k, v] of new URLSearchParams(raw)) {
      args[k] = JSON_FIELDS.has(k) && /^[[{]/.test(v) ? JSON.parse(v) : v;
    }
  }
  const auth = req.headers.authorization;
  const token = auth?.startsWith('Bearer ') ? auth.slice(7) : (args.token as string | undefined);
  delete args.token;
  return { args, ...(token ? { token } : {}) };
}

export async function startFakeSlack({
  botToken,
  appToken,
  users,
  usergroups = {},
}: {
  botToken: string;
  /** Socket Mode's app-level token (xapp-...). */
  appToken?: string;
  users: FakeSlackUser[];
  usergroups?: Record<string, string[]>;
}): Promise<FakeSlack> {
  let socket: Socket | undefined;
  const acks = new Map<string, (payload: Record<string, unknown>) => void>();
  const calls: SlackCall[] = [];
  const responses: ResponseUrlPost[] = [];
  const messages = new Map<string, Record<string, any>>();
  const notMemberOf = new Set<string>();
  let seq = 0;
  let responseSeq = 0;
  const ts = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;
  const userById = (id: string) => users.find((u) => u.id === id);
  const slackUser = (u: FakeSlackUser) => ({ id: u.id, name: u.name, real_name: u.name, profile: { real_name: u.name, ...(u.email ? { email: u.email } : {}) } });
  /** Posting to a user id posts in the app's DM with that user. */
  const channelOf = (channel: string) => (/^[UW]/.test(channel) ? `D${channel}` : channel);

  function answer(method: string, args: Record<string, any>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://ctem-test.slack.com/', team: 'CTEM test', user: 'ctem', team_id: 'T0CTEM', user_id: 'UBOT', bot_id: 'BBOT' };
      case 'chat.postMessage': {
        if (!args.channel) return { ok: false, error: 'channel_not_found' };
        if (!args.text && !args.blocks) return { ok: false, error: 'no_text' };
        if (notMemberOf.has(args.channel)) return { ok: false, error: 'not_in_channel' };
        const channel = channelOf(String(args.channel));
        const message = { ts: ts(), text: args.text, blocks: args.blocks ?? [], user: 'UBOT' };
        messages.set(`${channel}:${message.ts}`, message);
        return { ok: true, channel, ts: message.ts, message };
      }
      case 'chat.update': {
        const key = `${args.channel}:${args.ts}`;
        const message = messages.get(key);
        if (!message) return { ok: false, error: 'message_not_found' };
        Object.assign(message, { text: args.text, blocks: args.blocks ?? message.blocks });
        return { ok: true, channel: args.channel, ts: args.ts, text: args.text };
      }
      case 'chat.postEphemeral':
        return args.channel && args.user ? { ok: true, message_ts: ts() } : { ok: false, error: 'channel_not_found' };
      case 'views.open':
        if (!args.trigger_id) return { ok: false, error: 'invalid_trigger_id' };
        if (!args.view) return { ok: false, error: 'invalid_arguments' };
        return { ok: true, view: { id: `V${++seq}`, ...args.view } };
      case 'users.lookupByEmail': {
        const user = users.find((u) => u.email && u.email.toLowerCase() === String(args.email ?? '').toLowerCase());
        return user ? { ok: true, user: slackUser(user) } : { ok: false, error: 'users_not_found' };
      }
      case 'users.info': {
        const user = userById(String(args.user ?? ''));
        return user ? { ok: true, user: slackUser(user) } : { ok: false, error: 'user_not_found' };
      }
      case 'conversations.open': {
        const ids = String(Array.isArray(args.users) ? args.users.join(',') : (args.users ?? '')).split(',').filter(Boolean);
        if (ids.length !== 1 || !userById(ids[0]!)) return { ok: false, error: 'user_not_found' };
        return { ok: true, channel: { id: channelOf(ids[0]!) } };
      }
      case 'usergroups.users.list': {
        const members = usergroups[String(args.usergroup ?? '')];
        return members ? { ok: true, users: members } : { ok: false, error: 'no_such_subteam' };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://fake');
      const body = await readBody(req);
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(payload));
      };
      const response = /^\/response\/([\w-]+)$/.exec(url.pathname);
      if (response && req.method === 'POST') {
        responses.push({ id: response[1]!, body: body.args, at: Date.now() });
        return send(200, { ok: true });
      }
      const api = /^\/api\/([\w.]+)$/.exec(url.pathname);
      if (!api) return send(404, { ok: false, error: 'not_found' });
      const method = api[1]!;
      if (method === 'apps.connections.open') {
        if (!appToken || body.token !== appToken) return send(200, { ok: false, error: body.token ? 'invalid_auth' : 'not_authed' });
        const result = { ok: true, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/link/?ticket=${randomUUID()}` };
        calls.push({ method, args: body.args, result, at: Date.now() });
        return send(200, result);
      }
      if (body.token !== botToken) return send(200, { ok: false, error: body.token ? 'invalid_auth' : 'not_authed' });
      const result = answer(method, body.args);
      calls.push({ method, args: body.args, result, at: Date.now() });
      return send(200, result);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  server.on('upgrade', (req: IncomingMessage, s: Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (!req.url?.startsWith('/link/') || typeof key !== 'string') return void s.destroy();
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket = s;
    let pending: Buffer = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      const { frames, rest } = readFrames(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const f of frames) {
        if (f.opcode === 0x9) s.write(frame(0xa, f.payload));
        else if (f.opcode === 0x8) {
          s.end(frame(0x8, f.payload.subarray(0, 2)));
          if (socket === s) socket = undefined;
        } else if (f.opcode === 0x1) {
          const message = JSON.parse(f.payload.toString('utf8')) as { envelope_id?: string; payload?: Record<string, unknown> };
          if (message.envelope_id) acks.get(message.envelope_id)?.(message.payload ?? {});
        }
      }
    });
    s.on('close', () => {
      if (socket === s) socket = undefined;
    });
    s.on('error', () => {});
    s.write(frame(0x1, Buffer.from(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'A0CTEM' } }))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    calls,
    responses,
    notMemberOf,
    callsTo: (method) => calls.filter((c) => c.method === method),
    responseUrl: () => `${base}/response/r${++responseSeq}`,
    responsesAt: (url) => responses.filter((r) => url.endsWith(`/response/${r.id}`)),
    socketConnected: () => Boolean(socket && !socket.destroyed),
    pushEnvelope: (type, payload) =>
      new Promise((resolve, reject) => {
        if (!socket) return reject(new Error('no Socket Mode connection'));
        const id = randomUUID();
        acks.set(id, resolve);
        socket.write(frame(0x1, Buffer.from(JSON.stringify({ envelope_id: id, type, payload, accepts_response_payload: type !== 'events_api' }))));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        socket?.destroy();
        server.close(() => resolve());
      }),
  };
}
