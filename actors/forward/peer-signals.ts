// What an operator must hear about a peer, once each, from the peer machine's own transitions (issue
// 14): the circuit opening (warn, with the reason and until when), the circuit closing again (info),
// a reconnect backoff starting (warn, with the reason and the next attempt). The machine decides;
// this only watches its snapshots, so the log says exactly what the inspector shows.
import type { Logger } from 'pino';
import type { PeerActorRef, PeerContext } from '../../machines/peer.machine.ts';

type Watched = { state: string; circuit: PeerContext['circuit'] };

/** Logs the peer's signals until the returned function is called (or the actor stops). */
export function logPeerSignals(peer: PeerActorRef, log: Logger): () => void {
  let previous: Watched | undefined;
  const subscription = peer.subscribe((snapshot) => {
    const c = snapshot.context;
    const now: Watched = { state: typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0], circuit: c.circuit };
    const before = previous;
    previous = now;
    if (before === undefined || (before.state === now.state && before.circuit === now.circuit)) return;
    const line = { peer: c.peer, reason: c.lastError, consecutiveFailures: c.consecutiveFailures };
    if (now.state === 'circuitOpen' && before.state !== 'circuitOpen') {
      log.warn({ ...line, until: c.backoffUntil, circuitOpenSeconds: c.circuitOpenMs / 1000 }, 'circuit open: no attempts to this peer until it ends (queue retry tries at once)');
    } else if (now.state === 'backingOff' && before.state !== 'backingOff') {
      log.warn({ ...line, nextAttemptAt: c.backoffUntil }, 'association failed: backing off before the next attempt');
    }
    if (now.circuit === 'closed' && before.circuit !== 'closed') log.info({ peer: c.peer }, 'circuit closed: the peer answers again');
  });
  return () => subscription.unsubscribe();
}
