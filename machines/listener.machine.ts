// A listener AE: one port with its AE titles and acceptor policy. It owns the association
// machines of the connections on its port (spawned here, so the inspector shows them under
// their listener) and counts them against the configured limit.
import { assertEvent, assign, enqueueActions, setup, stopChild } from 'xstate';
import type { ActorRefFrom } from 'xstate';
import { associationMachine } from './association.machine.ts';

export type ListenerInput = {
  name: string;
  maxAssociations: number;
  artimTimeoutMs: number;
  dimseTimeoutMs: number;
};

type Context = ListenerInput & {
  active: string[];
  accepted: number;
  rejected: Record<string, number>;
};

export type ListenerEvent =
  | { type: 'BOUND'; address: string; port: number }
  | { type: 'BIND_FAILED'; error: string }
  | { type: 'CONNECTION_ACCEPTED'; associationId: string }
  | { type: 'ASSOCIATION_ESTABLISHED'; associationId: string }
  | { type: 'ASSOCIATION_REJECTED'; associationId: string; reason: string }
  | { type: 'CONNECTION_CLOSED'; associationId: string }
  | { type: 'STOP_REQUESTED' };

export const listenerMachine = setup({
  types: { input: {} as ListenerInput, context: {} as Context, events: {} as ListenerEvent },
  actors: { association: associationMachine },
  guards: {
    noAssociationsLeft: ({ context }) => context.active.length === 0,
  },
  actions: {
    spawnAssociation: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'CONNECTION_ACCEPTED');
      const { associationId } = event;
      // Its system id is its association id (unique in the process): the socket side finds it with system.get.
      enqueue.spawnChild('association', {
        id: associationId,
        systemId: associationId,
        input: { artimTimeoutMs: context.artimTimeoutMs, dimseTimeoutMs: context.dimseTimeoutMs },
      });
      enqueue.assign({ active: [...context.active, associationId] });
    }),
    countAccepted: assign({ accepted: ({ context }) => context.accepted + 1 }),
    countRejected: assign(({ context, event }) => {
      assertEvent(event, 'ASSOCIATION_REJECTED');
      return { rejected: { ...context.rejected, [event.reason]: (context.rejected[event.reason] ?? 0) + 1 } };
    }),
    forgetAssociation: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'CONNECTION_CLOSED');
      const { associationId } = event;
      enqueue(stopChild(associationId));
      enqueue.assign({ active: context.active.filter((id) => id !== associationId) });
    }),
  },
}).createMachine({
  id: 'listener',
  context: ({ input }) => ({ ...input, active: [], accepted: 0, rejected: {} }),
  initial: 'binding',
  on: {
    CONNECTION_CLOSED: { actions: 'forgetAssociation' },
    ASSOCIATION_ESTABLISHED: { actions: 'countAccepted' },
    ASSOCIATION_REJECTED: { actions: 'countRejected' },
  },
  states: {
    binding: {
      on: { BOUND: 'listening', BIND_FAILED: 'failed', STOP_REQUESTED: 'stopped' },
    },
    listening: {
      on: {
        CONNECTION_ACCEPTED: { actions: 'spawnAssociation' },
        STOP_REQUESTED: 'draining',
      },
    },
    // No new connections; in-flight associations finish.
    draining: {
      always: { guard: 'noAssociationsLeft', target: 'stopped' },
      on: { CONNECTION_CLOSED: { actions: 'forgetAssociation', target: 'draining', reenter: true } },
    },
    failed: { type: 'final' },
    stopped: { type: 'final' },
  },
});

export type ListenerActorRef = ActorRefFrom<typeof listenerMachine>;

/** The association limit is reached (a new one is rejected 2/3/2, transient). */
export function atCapacity(context: Context): boolean {
  return context.active.length > context.maxAssociations;
}
