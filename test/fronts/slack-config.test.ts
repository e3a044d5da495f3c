import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.js';
import { startPlatform } from '../../platform/start.js';
import { parseCommand } from '../../slack/commands.js';
import { slackSignature, verifySlackSignature } from '../../slack/signature.js';
import { createTestDatabase } from '../support/platform.js';
import { namespaceForTestFile } from '../support/namespaces.js';
import { startFakeSlack } from '../support/slack-fake.js';

// The Slack bot's configuration, command language and request signing on their own, and the
// platform started without Slack and with a token Slack refuses.

describe('Slack configuration', () => {
  it('leaves the bot off when no Slack variable is set', () => {
    expect(loadConfig({}).slack).toBeUndefined();
  });

  it('names every missing variable of a partial Slack configuration', () => {
    expect(() => loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(ConfigError);
    expect(() => loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(/SLACK_SIGNING_SECRET: required \(or SLACK_APP_TOKEN for Socket Mode\)[\s\S]*SLACK_CHANNEL: required/);
    expect(() => loadConfig({ SLACK_SIGNING_SECRET: 's', SLACK_CHANNEL: 'C1' })).toThrow(/SLACK_BOT_TOKEN: required/);
    expect(() => loadConfig({ SLACK_BOT_TOKEN: 'x', SLACK_SIGNING_SECRET: 's', SLACK_CHANNEL: 'C1', SLACK_API_URL: 'ftp://x' })).toThrow(/SLACK_API_URL: expected an http\(s\) URL/);
  });

  it('reads HTTP mode, Socket Mode and the authorization list', () => {
    const http = loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_CHANNEL: 'C1', SLACK_AUTHORIZED_USERS: ' U1, U2 ,', SLACK_API_URL: 'http://127.0.0.1:9/api' });
    expect(http.slack).toEqual({ botToken: 'xoxb-1', signingSecret: 's', channel: 'C1', authorizedUsers: ['U1', 'U2'], apiUrl: 'http://127.0.0.1:9/api/' });
    const socket = loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_CHANNEL: 'C1', SLACK_AUTHORIZED_USERGROUP: 'S1' });
    expect(socket.slack).toEqual({ botToken: 'xoxb-1', appToken: 'xapp-1', channel: 'C1', authorizedUsers: [], authorizedUserGroup: 'S1' });
  });

  it('links to the Temporal UI of the embedded dev server, or to TEMPORAL_UI_URL', () => {
    expect(loadConfig({}).temporal.uiUrl).toBe('http://127.0.0.1:8233');
    expect(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233' }).temporal.uiUrl).toBeUndefined();
    expect(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_UI_URL: 'https://temporal.example.com/' }).temporal.uiUrl).toBe('https://temporal.example.com');
  });
});

describe('/ctem command language', () => {
  it.each([
    ['', { kind: 'help' }],
    ['help', { kind: 'help' }],
    ['HELP', { kind: 'help' }],
    ['scopes', { kind: 'scopes' }],
    ['scope list', { kind: 'scopes' }],
    ['mine', { kind: 'mine' }],
    ['orphans', { kind: 'orphans' }],
    ['top', { kind: 'top' }],
    ['top payments', { kind: 'top', scope: 'payments' }],
    ['status INC0010001', { kind: 'status', ref: 'INC0010001' }],
    ['status campaign:payments:0a1b2c3d', { kind: 'status', ref: 'campaign:payments:0a1b2c3d' }],
    ['campaign start payments', { kind: 'campaign-start', scope: 'payments' }],
    ['validate payments', { kind: 'validate', scope: 'payments' }],
    ['Validate estate', { kind: 'validate', scope: 'estate' }],
    ['Campaign Start payments Log4Shell on  internet-facing hosts', { kind: 'campaign-start', scope: 'payments', hypothesis: 'Log4Shell on internet-facing hosts' }],
    [
      'scope create payments service=payments,checkout env=production internet=true kind=container_image criticality=critical,high prefix=shop/ "the shop"',
      {
        kind: 'scope-create',
        name: 'payments',
        selector: { businessServices: ['payments', 'checkout'], environments: ['production'], internetFacing: true, assetKinds: ['container_image'], criticalities: ['critical', 'high'], assetNamePrefix: 'shop/' },
        description: 'the shop',
      },
    ],
  ])('%j', (text, command) => {
    expect(parseCommand(text)).toEqual(command);
  });

  it.each([
    ['frobnicate', /I do not know `frobnicate`/],
    ['campaign', /campaigns are started with/],
    ['campaign start', /which scope\?/],
    ['campaign start ../../etc', /which scope\?/],
    ['status', /status of what\?/],
    ['validate', /which scope\? `validate <scope>`/],
    ['validate ../x', /which scope\?/],
    ['top a/b', /a\/b is not a scope name/],
    ['scope create', /a scope needs a name/],
    ['scope create s color=blue', /unknown scope field color/],
    ['scope create s internet=maybe', /scope internetFacing: /],
    ['scope create s criticality=urgent', /scope criticalities\.0: /],
    ['scope delete s', /unknown scope action delete/],
  ])('%j is answered with help and the reason', (text, problem) => {
    const command = parseCommand(text);
    expect(command.kind).toBe('help');
    expect((command as { problem?: string }).problem).toMatch(problem);
  });
});

describe('Slack request signatures', () => {
  const secret = '8f742231b10e8888abcd99yyyzzz85a5';
  const body = 'token=xyz&team_id=T1&command=%2Fctem&text=help';
  const now = Date.parse('2026-11-26T12:00:00Z');
  const ts = String(now / 1000);

  it('accepts Slack v0 signatures: HMAC-SHA256 of v0:timestamp:body', () => {
    const signature = slackSignature(secret, ts, body);
    expect(signature).toMatch(/^v0=[0-9a-f]{64}$/);
    expect(verifySlackSignature(secret, { signature, timestamp: ts }, body, now)).toEqual({ ok: true });
    // Within the five-minute window either way.
    expect(verifySlackSignature(secret, { signature, timestamp: ts }, body, now + 299_000).ok).toBe(true);
  });

  it('refuses another secret, another body, a stale or future timestamp and missing headers', () => {
    const signature = slackSignature(secret, ts, body);
    expect(verifySlackSignature('other', { signature, timestamp: ts }, body, now)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifySlackSignature(secret, { signature, timestamp: ts }, `${body}&x=1`, now)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifySlackSignature(secret, { signature, timestamp: ts }, body, now + 301_000)).toEqual({ ok: false, reason: 'stale X-Slack-Request-Timestamp' });
    expect(verifySlackSignature(secret, { signature, timestamp: ts }, body, now - 301_000)).toEqual({ ok: false, reason: 'stale X-Slack-Request-Timestamp' });
    expect(verifySlackSignature(secret, { signature: 'v0=abc', timestamp: ts }, body, now)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifySlackSignature(secret, { signature, timestamp: 'soon' }, body, now)).toEqual({ ok: false, reason: 'malformed X-Slack-Request-Timestamp' });
    expect(verifySlackSignature(secret, { signature: null, timestamp: ts }, body, now).ok).toBe(false);
    expect(verifySlackSignature(secret, { signature, timestamp: undefined }, body, now).ok).toBe(false);
  });
});

async function platformEnv(extra: Record<string, string>): Promise<Record<string, string>> {
  return {
    PORT: '0',
    SERVICENOW_SIM_PORT: '0',
    CTEM_DATA_DIR: mkdtempSync(join(tmpdir(), 'ctem-data-')),
    DATABASE_URL: await createTestDatabase(),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    CTEM_WORKFLOW_BUNDLE: inject('workflowBundle'),
    TEMPORAL_NAMESPACE: namespaceForTestFile(expect.getState().testPath!),
    CTEM_TASK_QUEUE: `test-${randomUUID()}`,
    CTEM_API_TOKEN: 'token',
    CTEM_EPSS_URL: '',
    CTEM_KEV_URL: '',
    ...extra,
  };
}

describe('the platform and the bot', () => {
  it('runs without Slack, says so once at start, and has no Slack endpoint', async () => {
    const lines: string[] = [];
    const platform = await startPlatform(loadConfig(await platformEnv({})), { api: true, worker: false }, (line) => lines.push(line));
    try {
      expect(lines.filter((l) => l.startsWith('Slack bot:'))).toEqual(['Slack bot: not configured (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET or SLACK_APP_TOKEN, SLACK_CHANNEL); running without it']);
      const res = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', body: 'command=%2Fctem' });
      expect(res.status).toBe(404);
      expect((await fetch(`${platform.apiUrl}/healthz`)).status).toBe(200);
    } finally {
      await platform.stop();
    }
  });

  it('does not start with a bot token Slack refuses', async () => {
    const slack = await startFakeSlack({ botToken: 'xoxb-the-right-one', users: [] });
    try {
      const env = await platformEnv({ SLACK_BOT_TOKEN: 'xoxb-a-wrong-one', SLACK_SIGNING_SECRET: 's', SLACK_CHANNEL: 'C1', SLACK_API_URL: slack.apiUrl });
      await expect(startPlatform(loadConfig(env), { api: true, worker: false })).rejects.toThrow(/invalid_auth/);
    } finally {
      await slack.close();
    }
  });
});
