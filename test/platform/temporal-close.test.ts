import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../config/index.js';
import { connectTemporal } from '../../platform/connect.js';

// A call that failed while Temporal was unreachable is retried from a timer by the SDK. Closing the
// connection in between (the platform stopping) must end that call, not throw from the timer and
// take the process down ("Channel has been shut down").
describe('closing a Temporal connection with a retry pending', () => {
  it('rejects the call instead of throwing from the retry timer', async () => {
    const [host, port] = inject('temporalAddress').split(':') as [string, string];
    const sockets = new Set<Socket>();
    let open = true;
    const proxy = createServer((client) => {
      if (!open) return client.destroy();
      const upstream = tcpConnect(Number(port), host);
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    }).listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const address = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const { connection, client } = await connectTemporal(loadConfig({}), address);
      // Temporal goes away: the next call fails with UNAVAILABLE and the SDK schedules a retry.
      open = false;
      for (const s of sockets) s.destroy();
      const call = client.workflowService.getSystemInfo({}).then(() => 'answered', (err: Error) => err.message);
      await new Promise((r) => setTimeout(r, 50));
      await connection.close();
      expect(await call).toMatch(/closed|CANCELLED|UNAVAILABLE/i);
      // Every retry the SDK had scheduled has fired by now.
      await new Promise((r) => setTimeout(r, 3000));
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      proxy.close();
    }
  }, 30_000);
});
