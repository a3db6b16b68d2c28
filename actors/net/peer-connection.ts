// What opening an association to a configured peer takes from its configuration: where it is, the
// AE titles, the largest PDU it takes, the timeouts and TLS. Forwarding, Q/R and storage commitment
// reports all open theirs with it, adding their contexts.
import type { PeerConfig } from '../../config/config.ts';
import type { ScuOptions } from './scu.ts';

export function peerConnection(peer: PeerConfig): Pick<ScuOptions, 'host' | 'port' | 'callingAeTitle' | 'calledAeTitle' | 'maxPduLength' | 'connectTimeoutMs' | 'dimseTimeoutMs' | 'tls'> {
  return {
    host: peer.host,
    port: peer.port,
    callingAeTitle: peer.callingAeTitle,
    calledAeTitle: peer.aeTitle,
    maxPduLength: peer.maxPduLength,
    connectTimeoutMs: peer.timeouts.connectSeconds * 1000,
    dimseTimeoutMs: peer.timeouts.dimseSeconds * 1000,
    ...(peer.tls ? { tls: peer.tls } : {}),
  };
}
