// A listener AE's socket: binds its port, refuses source addresses outside its allowlist, and
// hands each accepted connection to an association machine spawned by its listener machine.
import { BlockList, createServer, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Acceptor } from './acceptor.ts';
import type { ListenerRuntime } from './acceptor.ts';
import type { AssociationMachineRef } from './association.ts';

export type ListenerSocketOptions = { bind: string; port: number; allowedSources: string[] };

let nextAssociation = 1;

export type RunningListener = {
  server: Server;
  port: number;
  /** Stop accepting; connections still open after `graceMs` are destroyed. */
  close(graceMs: number): Promise<void>;
};

export function startListener(runtime: ListenerRuntime, opts: ListenerSocketOptions): Promise<RunningListener> {
  const allow = allowList(opts.allowedSources);
  const log = runtime.logger.child({ listener: runtime.name });
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // IPv4 peers of a dual-stack socket appear as ::ffff:a.b.c.d.
    const address = (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    if (allow && !allow.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')) {
      // Not a DICOM refusal: an address outside the allowlist gets no protocol exchange at all.
      log.warn({ peer: `${address}:${socket.remotePort}` }, 'connection refused: source address not allowed');
      socket.destroy();
      return;
    }
    const id = `assoc-${nextAssociation++}`;
    runtime.ref.send({ type: 'CONNECTION_ACCEPTED', associationId: id });
    const machine = runtime.ref.getSnapshot().children[id] as AssociationMachineRef | undefined;
    if (!machine) {
      log.warn({ peer: address }, 'connection refused: listener is not accepting');
      socket.destroy();
      return;
    }
    new Acceptor(runtime, socket, id, machine);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      runtime.ref.send({ type: 'BIND_FAILED', error: err.message });
      reject(err);
    });
    server.listen(opts.port, opts.bind, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      runtime.ref.send({ type: 'BOUND', address: opts.bind, port });
      log.info({ bind: opts.bind, port, aeTitles: runtime.policy.aeTitles }, 'listening');
      resolve({
        server,
        port,
        close: (graceMs) =>
          new Promise<void>((done) => {
            server.close(() => done());
            const timer = setTimeout(() => {
              for (const s of sockets) s.destroy();
            }, graceMs);
            timer.unref();
          }),
      });
    });
  });
}

function allowList(sources: string[]): BlockList | undefined {
  if (sources.length === 0) return undefined;
  const list = new BlockList();
  for (const source of sources) {
    const [address, prefix] = source.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}
