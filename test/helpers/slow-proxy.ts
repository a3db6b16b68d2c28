// A loopback TCP proxy that delays every chunk from the client: puts a "slow sender" (DCMTK storescu
// has no throttle of its own) in front of the router, so a transfer lasts long enough to watch or
// interrupt it.
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

export type SlowProxy = { port: number; close(): Promise<void> };

export function slowProxy(targetPort: number, delayMs: number): Promise<SlowProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (chunk) => {
      client.pause();
      setTimeout(() => {
        if (!upstream.destroyed) upstream.write(chunk);
        client.resume();
      }, delayMs);
    });
    // Closing waits for the delayed bytes: the last chunk is written before the end.
    client.on('end', () => setTimeout(() => upstream.end(), delayMs + 5));
    upstream.pipe(client);
    client.on('close', () => setTimeout(() => upstream.destroy(), delayMs + 10));
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
