import { createServer } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';

/** A port that was free a moment ago on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A listen error as the person starting the platform needs it: which piece, which address, and the
 * variable that moves it. Other errors pass through unchanged.
 */
export function listenError(err: unknown, what: string, variable: string, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return new Error(`${what} cannot listen on ${host}:${port}: the port is in use (set ${variable} to another port, or stop what holds it)`);
  if (code === 'EACCES') return new Error(`${what} cannot listen on ${host}:${port}: permission denied (ports below 1024 need privileges; set ${variable})`);
  if (code === 'EADDRNOTAVAIL') return new Error(`${what} cannot listen on ${host}:${port}: no such local address (check CTEM_HOST)`);
  return err instanceof Error ? err : new Error(String(err));
}

/** Serves `fetch` on host:port; a port in use is a clear error naming the piece and its variable. */
export function listenHttp(fetch: (request: Request) => Response | Promise<Response>, port: number, host: string, what: string, variable: string): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname: host }, () => {
      server.off('error', onError);
      resolve(server);
    });
    const onError = (err: unknown) => reject(listenError(err, what, variable, host, port));
    server.once('error', onError);
  });
}
