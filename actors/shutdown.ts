// Graceful shutdown (issue 6, Operations): stop accepting, let in-flight DIMSE transactions finish
// within the grace period, then end each association (A-ABORT once it has no transaction left: an
// acceptor cannot ask for a release, PS3.8 7.2). At the same time every peer machine drains: it takes
// no new queue item, lets the C-STORE in flight finish and records its outcome, then releases its
// association (drainPeers). Then what is left of the outbound associations is released, LMDB flushed
// and closed. Whatever is still open when the grace period ends is cut; nothing acknowledged is lost
// either way, since an instance is acknowledged only once durable.
import type { Logger } from 'pino';
import type { AnyActorRef } from 'xstate';
import type { RunningRouter } from './router.ts';

/** How often idle associations are looked for while draining. */
const POLL_MS = 20;

export type ShutdownResult = {
  /** Every association ended within the grace period. */
  clean: boolean;
  /** Associations that were still open when the grace period ended (cut). */
  cut: number;
  /** Associations ended by us once their transactions were done. */
  aborted: number;
};

type Children = Record<string, AnyActorRef | undefined>;
const childrenOf = (ref: AnyActorRef | undefined): AnyActorRef[] =>
  Object.values(((ref?.getSnapshot() as { children?: Children } | undefined)?.children ?? {})).filter((c): c is AnyActorRef => !!c);
const machineOf = (ref: AnyActorRef) => (ref as { logic?: { config?: { id?: string } } }).logic?.config?.id;
const isActive = (ref: AnyActorRef) => (ref.getSnapshot() as { status?: string }).status === 'active';

/**
 * Tells every peer machine under `root` to drain (DRAIN_REQUESTED) and resolves once they have all
 * stopped, or when `graceMs` is over (the ones still busy are listed; their item in flight stays
 * pending in the queue, to be sent again after a restart).
 */
export function drainPeers(root: AnyActorRef, graceMs: number): Promise<{ cut: string[] }> {
  const peers = childrenOf(root).filter((p) => machineOf(p) === 'peer' && isActive(p));
  for (const p of peers) p.send({ type: 'DRAIN_REQUESTED' });
  const busy = () => peers.filter(isActive);
  if (busy().length === 0) return Promise.resolve({ cut: [] });
  return new Promise((resolve) => {
    const subscriptions = peers.map((p) => p.subscribe({ next: () => check(), complete: () => check(), error: () => check() }));
    const timer = setTimeout(() => finish(), graceMs);
    let finished = false;
    function finish() {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const s of subscriptions) s.unsubscribe();
      resolve({ cut: busy().map((p) => p.id) });
    }
    function check() {
      if (busy().length === 0) finish();
    }
    check();
  });
}

/** The open associations of every listener of this router. */
export function listenerAssociations(router: RunningRouter): AnyActorRef[] {
  return childrenOf(router.actor as unknown as AnyActorRef)
    .filter((l) => machineOf(l) === 'listener')
    .flatMap((l) => childrenOf(l).filter((a) => machineOf(a) === 'association'));
}

export async function gracefulStop(router: RunningRouter, opts: { graceMs: number; logger: Logger }): Promise<ShutdownResult> {
  const log = opts.logger;
  const ended = new Set<string>();
  let aborted = 0;
  let cut = 0;
  const watched = new Map<string, { unsubscribe(): void }>();
  const check = (assoc: AnyActorRef) => {
    if (ended.has(assoc.sessionId) || !isActive(assoc)) return;
    if (childrenOf(assoc).some((t) => isActive(t))) return;
    ended.add(assoc.sessionId);
    const state = String((assoc.getSnapshot() as { value?: unknown }).value);
    // Sta6: established and idle between transactions. Earlier states have nothing in flight either.
    // The fields of every association line (README): listener, peer, callingAe, calledAe.
    const listener = String((assoc as { _parent?: { id?: string } })._parent?.id ?? '').replace(/^listener:/, '');
    log.info({ assoc: assoc.id, listener, ...router.associationParties(assoc.id), state }, 'shutting down: no transaction in flight, aborting the association');
    assoc.send({ type: 'A_ABORT_REQUESTED' });
    aborted++;
  };
  const drain = () => {
    for (const assoc of listenerAssociations(router)) {
      // A transaction's end is seen at once (a busy sender rarely looks idle to a poll). setImmediate:
      // its response is written by a promise chain that must run before the A-ABORT.
      if (!watched.has(assoc.sessionId)) watched.set(assoc.sessionId, assoc.subscribe({ next: () => setImmediate(() => check(assoc)), error: () => {} }));
      check(assoc);
    }
  };
  const poll = setInterval(drain, POLL_MS);
  drain();
  const deadline = setTimeout(() => {
    cut = listenerAssociations(router).length;
    if (cut > 0) log.warn({ associations: cut, graceMs: opts.graceMs }, 'grace period over: cutting the associations still open');
  }, opts.graceMs);
  deadline.unref();
  try {
    // Closes the listening sockets at once, waits for the connections (at most graceMs), then
    // releases the peers' associations and closes the spool (LMDB).
    await router.stop(opts.graceMs);
  } finally {
    clearInterval(poll);
    clearTimeout(deadline);
    for (const w of watched.values()) w.unsubscribe();
  }
  return { clean: cut === 0, cut, aborted };
}
