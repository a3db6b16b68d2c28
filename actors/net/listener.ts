// A listener AE's socket: binds its port, refuses source addresses outside its allowlist, and
// hands each accepted connection to an association machine spawned by its listener machine.
// On a TLS listener the connection first completes its handshake (bounded by a timeout) and only
// then becomes an association: a handshake holds no association slot.
import { BlockList, createServer, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { Acceptor } from './acceptor.ts';
import { AttemptLimiter } from './rate-limit.ts';
import type { ListenerRuntime } from './acceptor.ts';
import type { AssociationMachineRef } from './association.ts';
import type { TlsMaterial } from './tls.ts';
import type { RejectionReason } from '../observe/domain-events.ts';

export type ListenerTlsOptions = { material: TlsMaterial; requireClientCert: boolean; handshakeTimeoutMs: number };
export type ListenerSocketOptions = {
  bind: string;
  port: number;
  allowedSources: string[];
  /** Association attempts accepted per source address and window. */
  rateLimit?: { attempts: number; perSeconds: number };
  tls?: ListenerTlsOptions;
};

let nextAssociation = 1;

export type RunningListener = {
  server: Server;
  port: number;
  /** Stop accepting; connections still open after `graceMs` are destroyed. */
  close(graceMs: number): Promise<void>;
};

export function startListener(runtime: ListenerRuntime, opts: ListenerSocketOptions): Promise<RunningListener> {
  const allow = allowList(opts.allowedSources);
  const limiter = opts.rateLimit && new AttemptLimiter(opts.rateLimit.attempts, opts.rateLimit.perSeconds * 1000);
  const log = runtime.logger.child({ listener: runtime.name });
  const sockets = new Set<Socket>();
  // Refusals before any DICOM exchange, for the console's rejections panel.
  const refused = (reason: RejectionReason, address: string, detail: string) =>
    runtime.events?.emit({ type: 'association-rejected', listener: runtime.name, reason, callingAe: '', calledAe: '', address, detail });
  const secure = opts.tls ? tlsServer(opts.tls, log, (socket) => associate(socket), (address, detail) => refused('tls-handshake', address, detail)) : undefined;
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // IPv4 peers of a dual-stack socket appear as ::ffff:a.b.c.d.
    const address = (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    if (allow && !allow.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')) {
      // Not a DICOM refusal: an address outside the allowlist gets no protocol exchange at all.
      log.warn({ peer: `${address}:${socket.remotePort}` }, 'connection refused: source address not allowed');
      refused('source-address-not-allowed', `${address}:${socket.remotePort}`, 'source address not allowed');
      socket.destroy();
      return;
    }
    if (limiter && !limiter.allow(address)) {
      log.warn({ peer: `${address}:${socket.remotePort}`, limit: limiter.max, perMs: limiter.windowMs }, 'connection refused: too many association attempts from this address');
      refused('rate-limit', `${address}:${socket.remotePort}`, `more than ${limiter.max} attempts in ${limiter.windowMs / 1000} s`);
      socket.destroy();
      return;
    }
    // TLS: the handshake runs first; the association starts on 'secureConnection'.
    if (secure) secure.server.emit('connection', socket);
    else associate(socket);
  });
  const associate = (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const id = `assoc-${nextAssociation++}`;
    runtime.ref.send({ type: 'CONNECTION_ACCEPTED', associationId: id });
    const machine = runtime.ref.system.get(id) as AssociationMachineRef | undefined;
    if (!machine) {
      log.warn({ peer: address }, 'connection refused: listener is not accepting');
      socket.destroy();
      return;
    }
    new Acceptor(runtime, socket, id, machine);
  };
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      runtime.ref.send({ type: 'BIND_FAILED', error: err.message });
      reject(err);
    });
    server.listen(opts.port, opts.bind, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      runtime.ref.send({ type: 'BOUND', address: opts.bind, port });
      log.info({ bind: opts.bind, port, aeTitles: runtime.policy.aeTitles, ...(opts.tls ? { tls: opts.tls.material.profile } : {}) }, 'listening');
      resolve({
        server,
        port,
        close: (graceMs) =>
          new Promise<void>((done) => {
            secure?.stop();
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

/**
 * The TLS side of a listener: a tls.Server that is never bound itself; the plain server hands it
 * the connections it admits. Its context is replaced when the material reloads (new handshakes only).
 */
function tlsServer(tls: ListenerTlsOptions, log: ListenerRuntime['logger'], onSecure: (socket: TLSSocket) => void, onRefused: (address: string, detail: string) => void) {
  const options = () => ({
    ...tls.material.options,
    // Always ask, so a presented certificate is verified and seen (subject, AE title binding);
    // refuse a missing one only when required.
    requestCert: true,
    rejectUnauthorized: tls.requireClientCert,
  });
  const server = createTlsServer({ ...options(), handshakeTimeout: tls.handshakeTimeoutMs });
  const peerOf = (s: TLSSocket) => {
    // Once node has destroyed a refused socket its own address is gone; the wrapped TCP socket still knows it.
    const raw = (s as TLSSocket & { _parent?: Socket })._parent;
    const address = s.remoteAddress ?? raw?.remoteAddress ?? '';
    return `${address.replace(/^::ffff:(?=\d+\.)/, '')}:${s.remotePort ?? raw?.remotePort}`;
  };
  // node closes the TLS layer of a refused connection; the TCP connection it wraps must go too, or a silent client keeps it.
  const closeBoth = (socket: TLSSocket) => {
    socket.destroy();
    (socket as TLSSocket & { _parent?: Socket })._parent?.destroy();
  };
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // An untrusted client certificate is refused by node after the handshake, seen here as a hang-up: say why.
    const reason = socket.authorizationError ? `client certificate not trusted (${socket.authorizationError})` : err.code ?? 'TLS_ERROR';
    log.warn({ peer: peerOf(socket), reason, detail: err.message.trim() }, 'TLS handshake failed: connection closed');
    onRefused(peerOf(socket), reason);
    closeBoth(socket);
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const cert = socket.getPeerX509Certificate();
    // Without rejectUnauthorized a presented but unverifiable certificate still completes the handshake: refuse it here.
    if (cert && !socket.authorized) {
      log.warn({ peer: peerOf(socket), reason: String(socket.authorizationError), subject: cert.subject.split('\n').join(', ') }, 'TLS client certificate not trusted: connection closed');
      onRefused(peerOf(socket), `client certificate not trusted (${String(socket.authorizationError)})`);
      closeBoth(socket);
      return;
    }
    const cipher = socket.getCipher();
    log.info({ peer: peerOf(socket), protocol: socket.getProtocol(), cipher: cipher.standardName ?? cipher.name, subject: cert?.subject.split('\n').join(', ') }, 'TLS handshake completed');
    onSecure(socket);
  });
  const unsubscribe = tls.material.onChange(() => server.setSecureContext(options()));
  return { server, stop: unsubscribe };
}
