import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { startFakeSlack, type FakeSlack } from '../support/slack-fake.js';

// Socket Mode, for workspaces without a public URL: the platform opens a WebSocket to Slack (here
// the local fake, reached through apps.connections.open) instead of serving /slack/events, and the
// same commands work over it.

const BOT_TOKEN = 'xoxb-socket-test';
const APP_TOKEN = 'xapp-socket-test';
let platform: TestPlatform;
let slack: FakeSlack;

beforeAll(async () => {
  slack = await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, users: [{ id: 'USECOPS', name: 'secops', email: 'secops@example.com' }] });
  platform = await startTestPlatform(
    { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: slack.apiUrl, SLACK_CHANNEL: 'CSECOPS', SLACK_AUTHORIZED_USERS: 'USECOPS' },
    { api: true, worker: false },
  );
});

afterAll(async () => {
  await platform?.stop();
  await slack?.close();
});

describe('Socket Mode', () => {
  it('connects with the app-level token and serves no HTTP endpoint', async () => {
    expect(slack.callsTo('apps.connections.open')).toHaveLength(1);
    await eventually(async () => (slack.socketConnected() ? true : undefined), { what: 'the WebSocket' });
    const res = await fetch(`${platform.apiUrl}/slack/events`, { method: 'POST', body: 'command=%2Fctem' });
    expect(res.status).toBe(404);
  });

  it('answers /ctem over the WebSocket: acknowledged, then replied on the response URL', async () => {
    const responseUrl = slack.responseUrl();
    const ack = await slack.pushEnvelope('slash_commands', {
      token: 'legacy', team_id: 'T0CTEM', channel_id: 'CSECOPS', user_id: 'USECOPS', command: '/ctem', text: 'scope create socket-scope prefix=socket/',
      api_app_id: 'A0CTEM', response_url: responseUrl, trigger_id: 'trigger-socket',
    });
    expect(ack).toEqual({});
    const [reply] = await eventually(async () => {
      const posts = slack.responsesAt(responseUrl);
      return posts.length ? posts : undefined;
    }, { what: 'the reply' });
    expect(reply!.body.text).toContain('saved scope *socket-scope*');
    const [scope] = await platform.database.sql`select selector from scopes where name = 'socket-scope'`;
    expect(scope!.selector).toEqual({ assetNamePrefix: 'socket/' });
  });
});
