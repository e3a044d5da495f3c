import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform } from '../support/platform.js';

// A port someone else holds is the most common start-up failure: the error names the piece, the
// address and the variable that moves it, and what had started is stopped again.
describe('ports in use', () => {
  let holder: Server;
  let busy: number;
  beforeAll(async () => {
    holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    busy = (holder.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  it('names the API, its address and PORT', async () => {
    await expect(startTestPlatform({ PORT: String(busy) })).rejects.toThrow(`the API cannot listen on 127.0.0.1:${busy}: the port is in use (set PORT to another port, or stop what holds it)`);
  });

  it('names the ServiceNow simulator and SERVICENOW_SIM_PORT, and a start on free ports works after', async () => {
    await expect(startTestPlatform({ SERVICENOW_SIM_PORT: String(busy) })).rejects.toThrow(`the ServiceNow simulator cannot listen on 127.0.0.1:${busy}: the port is in use (set SERVICENOW_SIM_PORT`);
    const platform = await startTestPlatform();
    try {
      expect((await platform.api('/api/v1/tickets')).status).toBe(200);
    } finally {
      await platform.stop();
    }
  });

  it('names the worker metrics endpoint and CTEM_WORKER_METRICS_PORT', async () => {
    await expect(startTestPlatform({ CTEM_WORKER_METRICS_PORT: String(busy) }, { api: false, worker: true })).rejects.toThrow(`the worker metrics endpoint cannot listen on 127.0.0.1:${busy}: the port is in use (set CTEM_WORKER_METRICS_PORT`);
  });
});
