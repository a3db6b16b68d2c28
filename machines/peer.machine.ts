// One peer AE (issue 3, "Peers and forwarding"): decides WHEN to open an association, send the next due
// queue item, release after the idle timeout, back off after association failures and open the circuit.
// The effects are invoked actors the actors layer provides (the defaults reject, so missing wiring is
// loud): openAssociation, sendNextItem (ONE due item; the queue decides which), releaseAssociation.
// Their results are translated into the events below (raised by this machine); the actors layer itself
// sends only WORK_AVAILABLE, ASSOCIATION_LOST (the open association went away), DRAIN_REQUESTED and
// STOP_REQUESTED.
//
// The association itself is this machine's child (id 'association', the pure upper-layer machine of
// machines/association.machine.ts): spawned fresh on each connect, stopped once the peer is idle,
// backing off or stopped, so the actor tree (and the inspector) shows each outbound association with
// its PS3.8 state (Sta1..Sta13) and its DIMSE transactions. The actors layer drives it: each effect's
// input carries `association()`, which returns it.
//
//   idle ──WORK_AVAILABLE / items due──▶ connecting ──ESTABLISHED──▶ connected.sending ⟲ ITEM_*
//   connected.sending ──BATCH_EMPTY──▶ connected.waiting ──idle timeout──▶ releasing ──RELEASED──▶ idle
//   connecting ──FAILED──▶ backingOff ──delay──▶ connecting      (ASSOCIATION_LOST while sending: same)
//   … threshold consecutive failures ──▶ circuitOpen ──circuitOpenMs──▶ connecting (half-open)
//   connecting ──FAILED, permanent (A-ASSOCIATE-RJ result 1)──▶ idle   (the actors layer has made the due items
//                                                   dead letters: no retry can change the answer; new work tries again)
//   connected.sending ──BATCH_EMPTY, releaseAfterBatch (exclusive peer)──▶ releasing   (its one association is free at once)
//   connected.sending ──RECONNECT_NEEDED──▶ releasing ──▶ connecting   (the item needs a context this
//                                                   association lacks, or the peer closed it while idle)
//   DRAIN_REQUESTED (shutdown): no new item is started; an item in flight finishes and its outcome is
//   recorded, then the association is released ──▶ stopped. Without an association: stopped at once.
//
// Item-level backoff lives in the queue (QueueItem.nextAttemptAt); the machine only learns the next due
// time (BATCH_EMPTY.nextDueAt) and wakes up then. WORK_AVAILABLE ends an idle wait, never an association
// backoff or an open circuit: those wait out their delay, then drain everything that arrived meanwhile.
// One machine drives one association at a time.
import { assertEvent, assign, enqueueActions, fromPromise, raise, setup, stopChild } from 'xstate';
import type { ActorRefFrom } from 'xstate';
import { associationMachine } from './association.machine.ts';

export type PeerInput = {
  peer: string;
  /** Release an association that has had nothing to send for this long. */
  idleReleaseMs: number;
  /** Release as soon as the batch is sent (a peer that takes one association at a time; default false). */
  releaseAfterBatch?: boolean;
  /** Consecutive association failures before the circuit opens (default 5). */
  circuitThreshold?: number;
  /** How long an open circuit stays open before one half-open try (default 60 s). */
  circuitOpenMs?: number;
  /** Reconnect backoff after the n-th consecutive failure: initial·2^(n-1), capped (defaults 1 s, 60 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** The clock, to turn the absolute nextDueAt into a delay (default Date.now; tests pass the simulated clock). */
  now?: () => number;
  /** ARTIM of the outbound association (PS3.8 9.1.5; default 30 s). */
  artimTimeoutMs?: number;
};

export type PeerAssociationRef = ActorRefFrom<typeof associationMachine>;
/** The id of the association child. */
export const ASSOCIATION_CHILD = 'association';

/**
 * Input of each invoked effect; the actors layer keeps the open association per peer. `association()`
 * returns this machine's association child as it is when called (the effect runs once the transition
 * that spawned it is committed).
 */
export type PeerActorInput = { peer: string; association?: () => PeerAssociationRef | undefined };

/** What sendNextItem resolves with: the outcome of sending one due item, or that none is due now. */
export type SendOutcome =
  | { outcome: 'delivered'; id: string }
  | { outcome: 'retry' | 'dead'; id: string; error?: string }
  | { outcome: 'empty'; nextDueAt?: Date }
  /** The item was not sent: it needs a new association (a context this one lacks, or this one is gone). */
  | { outcome: 'reconnect'; id: string };

export type CircuitState = 'closed' | 'open' | 'halfOpen';

export type PeerEvent =
  | { type: 'WORK_AVAILABLE' }
  | { type: 'ASSOCIATION_ESTABLISHED' }
  | { type: 'ASSOCIATION_FAILED'; error: string; retryable: boolean }
  | { type: 'ITEM_DELIVERED'; id: string }
  | { type: 'ITEM_FAILED'; id: string; retryable: boolean; error?: string }
  | { type: 'BATCH_EMPTY'; nextDueAt?: string }
  | { type: 'ASSOCIATION_RELEASED' }
  | { type: 'ASSOCIATION_LOST'; error: string }
  | { type: 'RECONNECT_NEEDED'; id: string }
  /** An operator retried the peer's items (`queue retry`): try now, even out of a backoff or an open circuit. */
  | { type: 'RETRY_REQUESTED' }
  /** Shutdown: take no new item, let the one in flight finish, release, stop. */
  | { type: 'DRAIN_REQUESTED' }
  | { type: 'STOP_REQUESTED' };

export type PeerContext = Required<Omit<PeerInput, 'now'>> & {
  now: () => number;
  /** Items the peer confirmed / answered with a failure (retry or dead), since start. */
  delivered: number;
  failed: number;
  deadLettered: number;
  /** Associations that could not be opened or were lost mid-send, since start / since the peer last proved useful. */
  associationFailures: number;
  consecutiveFailures: number;
  lastError?: string;
  circuit: CircuitState;
  /** ISO 8601: end of the current reconnect backoff or open circuit. */
  backoffUntil?: string;
  /** ISO 8601: when the next queued item becomes due (last BATCH_EMPTY). */
  nextDueAt?: string;
  /** WORK_AVAILABLE, resp. STOP_REQUESTED, arrived while releasing: acted on once released. */
  workWaiting: boolean;
  stopRequested: boolean;
  /** DRAIN_REQUESTED arrived: the item in flight is the last one. */
  draining: boolean;
};

/** setTimeout's limit (2^31-1 ms): a longer delay would fire at once. Waking early is harmless here. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reconnect delay after `failures` consecutive failures. */
export function reconnectDelayMs(context: Pick<PeerContext, 'backoffInitialMs' | 'backoffMaxMs' | 'consecutiveFailures'>): number {
  const n = Math.max(1, context.consecutiveFailures);
  return Math.min(context.backoffMaxMs, context.backoffInitialMs * 2 ** Math.min(n - 1, 52));
}

const notProvided = (name: string) => async (): Promise<never> => {
  throw new Error(`${name} is not provided to the peer machine`);
};

/** What each effect gets: the peer, and (read when the effect runs) the association child. */
function effectInput({ context, self }: { context: PeerContext; self: { getSnapshot(): unknown } }): PeerActorInput {
  return {
    peer: context.peer,
    association: () => (self.getSnapshot() as { children: Record<string, PeerAssociationRef | undefined> }).children[ASSOCIATION_CHILD],
  };
}

const failureTransitions = [
  { guard: 'rejectedPermanently', target: '#peer.idle', actions: 'recordPermanentReject' },
  { guard: 'circuitShouldOpen', target: '#peer.circuitOpen', actions: ['recordAssociationFailure', 'openCircuit'] },
  { target: '#peer.backingOff', actions: ['recordAssociationFailure', 'scheduleReconnect'] },
] as const;

export const peerMachine = setup({
  types: { input: {} as PeerInput, context: {} as PeerContext, events: {} as PeerEvent },
  actors: {
    association: associationMachine,
    openAssociation: fromPromise<void, PeerActorInput>(notProvided('openAssociation')),
    sendNextItem: fromPromise<SendOutcome, PeerActorInput>(notProvided('sendNextItem')),
    releaseAssociation: fromPromise<void, PeerActorInput>(notProvided('releaseAssociation')),
  },
  delays: {
    idleRelease: ({ context }) => context.idleReleaseMs,
    untilNextDue: ({ context }) =>
      context.nextDueAt === undefined ? MAX_TIMER_MS : Math.min(MAX_TIMER_MS, Math.max(0, Date.parse(context.nextDueAt) - context.now())),
    reconnectBackoff: ({ context }) => reconnectDelayMs(context),
    circuitOpen: ({ context }) => context.circuitOpenMs,
  },
  guards: {
    itemsBecomeDue: ({ context }) => context.nextDueAt !== undefined,
    circuitShouldOpen: ({ context }) => context.consecutiveFailures + 1 >= context.circuitThreshold,
    // openAssociation's error had retryable: false (a permanent reject): waiting cannot help.
    rejectedPermanently: ({ event }) => event.type === 'ASSOCIATION_FAILED' && !event.retryable,
    releasesAfterBatch: ({ context }) => context.releaseAfterBatch,
    stopWasRequested: ({ context }) => context.stopRequested,
    drainRequested: ({ context }) => context.draining,
    workIsWaiting: ({ context }) => context.workWaiting,
  },
  actions: {
    // Invoked-actor results, told as what happened.
    announceEstablished: raise({ type: 'ASSOCIATION_ESTABLISHED' }),
    // The effect's error says (retryable: false) when waiting cannot help.
    announceAssociationFailed: raise((_, { error }: { error: unknown }) => {
      const retryable = (error as { retryable?: unknown } | null)?.retryable !== false;
      return { type: 'ASSOCIATION_FAILED' as const, error: describe(error), retryable };
    }),
    announceSendOutcome: raise((_, result: SendOutcome): PeerEvent => {
      switch (result.outcome) {
        case 'delivered':
          return { type: 'ITEM_DELIVERED', id: result.id };
        case 'retry':
        case 'dead':
          return { type: 'ITEM_FAILED', id: result.id, retryable: result.outcome === 'retry', error: result.error };
        case 'empty':
          return { type: 'BATCH_EMPTY', nextDueAt: result.nextDueAt?.toISOString() };
        case 'reconnect':
          return { type: 'RECONNECT_NEEDED', id: result.id };
      }
    }),
    announceLost: raise((_, { error }: { error: unknown }) => ({ type: 'ASSOCIATION_LOST' as const, error: describe(error) })),
    announceReleased: raise({ type: 'ASSOCIATION_RELEASED' }),
    recordReleaseError: assign({ lastError: (_, { error }: { error: unknown }) => `release failed: ${describe(error)}` }),

    countDelivered: assign({ delivered: ({ context }) => context.delivered + 1 }),
    countItemFailure: assign(({ context, event }) => {
      assertEvent(event, 'ITEM_FAILED');
      return {
        failed: context.failed + 1,
        deadLettered: context.deadLettered + (event.retryable ? 0 : 1),
        lastError: event.error ?? context.lastError,
      };
    }),
    rememberNextDue: assign({
      nextDueAt: ({ event }) => {
        assertEvent(event, 'BATCH_EMPTY');
        return event.nextDueAt;
      },
    }),
    // The association did useful work: the peer is healthy again.
    closeCircuit: assign({ consecutiveFailures: 0, circuit: 'closed' as CircuitState }),
    // Counted, but not toward the circuit: the peer answered, it is not unreachable.
    recordPermanentReject: assign(({ context, event }) => ({
      associationFailures: context.associationFailures + 1,
      lastError: 'error' in event ? event.error : context.lastError,
    })),
    recordAssociationFailure: assign(({ context, event }) => ({
      consecutiveFailures: context.consecutiveFailures + 1,
      associationFailures: context.associationFailures + 1,
      lastError: 'error' in event ? event.error : context.lastError,
    })),
    scheduleReconnect: assign({ backoffUntil: ({ context }) => new Date(context.now() + reconnectDelayMs(context)).toISOString() }),
    openCircuit: assign({
      circuit: 'open' as CircuitState,
      backoffUntil: ({ context }) => new Date(context.now() + context.circuitOpenMs).toISOString(),
    }),
    halfOpenCircuit: assign({ circuit: 'halfOpen' as CircuitState }),
    clearBackoff: assign({ backoffUntil: undefined, workWaiting: false }),
    noteWorkWaiting: assign({ workWaiting: true }),
    noteStopRequested: assign({ stopRequested: true }),
    noteDrain: assign({ draining: true }),
    // A fresh upper-layer machine per association (the previous one, if any, is done with).
    spawnAssociation: enqueueActions(({ context, enqueue }) => {
      enqueue(stopChild(ASSOCIATION_CHILD));
      enqueue.spawnChild('association', { id: ASSOCIATION_CHILD, input: { artimTimeoutMs: context.artimTimeoutMs } });
    }),
    stopAssociation: stopChild(ASSOCIATION_CHILD),
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({
    peer: input.peer,
    idleReleaseMs: input.idleReleaseMs,
    circuitThreshold: input.circuitThreshold ?? 5,
    circuitOpenMs: input.circuitOpenMs ?? 60_000,
    releaseAfterBatch: input.releaseAfterBatch ?? false,
    backoffInitialMs: input.backoffInitialMs ?? 1_000,
    backoffMaxMs: input.backoffMaxMs ?? 60_000,
    now: input.now ?? Date.now,
    artimTimeoutMs: input.artimTimeoutMs ?? 30_000,
    delivered: 0,
    failed: 0,
    deadLettered: 0,
    associationFailures: 0,
    consecutiveFailures: 0,
    circuit: 'closed',
    workWaiting: false,
    stopRequested: false,
    draining: false,
  }),
  initial: 'idle',
  // Without an association (idle, backing off, circuit open) a drain is a stop.
  on: { STOP_REQUESTED: '.stopped', DRAIN_REQUESTED: '.stopped' },
  states: {
    // No association. Wakes up for new work, or when a backed-off item becomes due.
    idle: {
      entry: 'stopAssociation',
      on: { WORK_AVAILABLE: 'connecting', RETRY_REQUESTED: 'connecting' },
      after: { untilNextDue: { guard: 'itemsBecomeDue', target: 'connecting' } },
    },
    connecting: {
      entry: ['clearBackoff', 'spawnAssociation'],
      invoke: {
        src: 'openAssociation',
        input: effectInput,
        onDone: { actions: 'announceEstablished' },
        onError: { actions: { type: 'announceAssociationFailed', params: ({ event }) => ({ error: event.error }) } },
      },
      on: {
        // Let the attempt end: an association half-open must not be left behind.
        DRAIN_REQUESTED: { actions: 'noteDrain' },
        ASSOCIATION_ESTABLISHED: [{ guard: 'drainRequested', target: 'stopping' }, { target: 'connected' }],
        ASSOCIATION_FAILED: [{ guard: 'drainRequested', target: 'stopped', actions: 'recordAssociationFailure' }, ...failureTransitions],
      },
    },
    connected: {
      initial: 'sending',
      on: { STOP_REQUESTED: 'stopping' },
      states: {
        // One item per invocation; re-entered after each so new work and new due times are seen.
        sending: {
          invoke: {
            src: 'sendNextItem',
            input: effectInput,
            onDone: { actions: { type: 'announceSendOutcome', params: ({ event }) => event.output } },
            onError: { actions: { type: 'announceLost', params: ({ event }) => ({ error: event.error }) } },
          },
          on: {
            // The item in flight finishes and its outcome is recorded; none is started after it.
            DRAIN_REQUESTED: { actions: 'noteDrain' },
            ITEM_DELIVERED: [
              { guard: 'drainRequested', target: '#peer.stopping', actions: ['countDelivered', 'closeCircuit'] },
              { target: 'sending', reenter: true, actions: ['countDelivered', 'closeCircuit'] },
            ],
            ITEM_FAILED: [
              { guard: 'drainRequested', target: '#peer.stopping', actions: 'countItemFailure' },
              { target: 'sending', reenter: true, actions: 'countItemFailure' },
            ],
            BATCH_EMPTY: [
              { guard: 'drainRequested', target: '#peer.stopping' },
              { guard: 'releasesAfterBatch', target: '#peer.releasing', actions: ['rememberNextDue', 'closeCircuit'] },
              { target: 'waiting', actions: ['rememberNextDue', 'closeCircuit'] },
            ],
            RECONNECT_NEEDED: [
              { guard: 'drainRequested', target: '#peer.stopping' },
              { target: '#peer.releasing', actions: 'noteWorkWaiting' },
            ],
            ASSOCIATION_LOST: [{ guard: 'drainRequested', target: '#peer.stopped', actions: 'recordAssociationFailure' }, ...failureTransitions],
          },
        },
        // Association open, nothing due: keep it for new work until the idle timeout.
        waiting: {
          on: {
            WORK_AVAILABLE: 'sending',
            RETRY_REQUESTED: 'sending',
            DRAIN_REQUESTED: '#peer.stopping',
            // The peer closed an idle association: normal, not a failure.
            ASSOCIATION_LOST: '#peer.idle',
            ASSOCIATION_RELEASED: '#peer.idle',
          },
          after: {
            idleRelease: '#peer.releasing',
            untilNextDue: { guard: 'itemsBecomeDue', target: 'sending' },
          },
        },
      },
    },
    releasing: {
      invoke: {
        src: 'releaseAssociation',
        input: effectInput,
        onDone: { actions: 'announceReleased' },
        // Whatever went wrong, the association is gone.
        onError: { actions: [{ type: 'recordReleaseError', params: ({ event }) => ({ error: event.error }) }, 'announceReleased'] },
      },
      on: {
        WORK_AVAILABLE: { actions: 'noteWorkWaiting' },
        RETRY_REQUESTED: { actions: 'noteWorkWaiting' },
        STOP_REQUESTED: { actions: 'noteStopRequested' },
        DRAIN_REQUESTED: { actions: 'noteStopRequested' },
        ASSOCIATION_RELEASED: [
          { guard: 'stopWasRequested', target: 'stopped' },
          { guard: 'workIsWaiting', target: 'connecting' },
          { target: 'idle' },
        ],
        ASSOCIATION_LOST: [
          { guard: 'stopWasRequested', target: 'stopped' },
          { guard: 'workIsWaiting', target: 'connecting' },
          { target: 'idle' },
        ],
      },
    },
    // Reconnect after a delay growing with consecutive failures. WORK_AVAILABLE does not cut it short.
    backingOff: {
      entry: 'stopAssociation',
      on: { RETRY_REQUESTED: 'connecting' },
      after: { reconnectBackoff: 'connecting' },
    },
    // Too many consecutive failures: no tries until circuitOpenMs has passed, then one (half-open).
    circuitOpen: {
      entry: 'stopAssociation',
      on: { RETRY_REQUESTED: { target: 'connecting', actions: 'halfOpenCircuit' } },
      after: { circuitOpen: { target: 'connecting', actions: 'halfOpenCircuit' } },
    },
    // Graceful stop with an association open: release it first.
    stopping: {
      on: { STOP_REQUESTED: {}, DRAIN_REQUESTED: {} },
      invoke: {
        src: 'releaseAssociation',
        input: effectInput,
        onDone: 'stopped',
        onError: { target: 'stopped', actions: { type: 'recordReleaseError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    stopped: { type: 'final', entry: 'stopAssociation' },
  },
});

export type PeerActorRef = ActorRefFrom<typeof peerMachine>;
