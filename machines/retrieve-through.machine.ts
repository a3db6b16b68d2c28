// One retrieve-through under way (issue 16), as a job in the actor tree: what it retrieves, for which
// requester, from which archive to which destination, and its counts on both sides (the archive's
// C-MOVE into the router, the deliveries onward, what waits in between), so the console shows it while
// it runs. Its upstream association and its delivery associations are its children (the same PS3.8
// machine as everywhere, driven by actors/net/scu.ts), each spawned when opened and stopped once closed.
// The work is done by actors/jobs/qr-scp-through.ts, which reports here; the job leaves the tree when it ends.
import { assertEvent, assign, enqueueActions, setup, stopChild } from 'xstate';
import { associationMachine } from './association.machine.ts';
import type { SubOperations } from './dimse/dimse.events.ts';
import type { OwnedAssociationEvent } from './qr-upstream.machine.ts';
import { OWNED_ASSOCIATION_INPUT } from './qr-upstream.machine.ts';

export type RetrieveThroughInput = { level: string; uid: string; to: string; sources: string[]; requester?: string; service?: 'C-MOVE' | 'C-GET' };

export type RetrieveThroughEvent =
  | { type: 'PROGRESS'; upstream: SubOperations; delivered: SubOperations; waiting: number }
  | { type: 'ENDED'; status: number }
  | OwnedAssociationEvent;

type Context = RetrieveThroughInput & { upstream: SubOperations; delivered: SubOperations; waiting: number; status?: number };

const none = (): SubOperations => ({ completed: 0, failed: 0, warning: 0 });

export const retrieveThroughMachine = setup({
  types: { input: {} as RetrieveThroughInput, context: {} as Context, events: {} as RetrieveThroughEvent },
  actors: { association: associationMachine },
  actions: {
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { upstream: event.upstream, delivered: event.delivered, waiting: event.waiting };
    }),
    recordEnd: assign(({ event }) => {
      assertEvent(event, 'ENDED');
      return { status: event.status };
    }),
    spawnAssociation: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'ASSOCIATION_OPENING');
      enqueue.spawnChild('association', { id: event.id, input: OWNED_ASSOCIATION_INPUT });
    }),
    stopAssociation: stopChild(({ event }) => {
      assertEvent(event, 'ASSOCIATION_CLOSED');
      return event.id;
    }),
  },
}).createMachine({
  id: 'retrieveThrough',
  context: ({ input }) => ({ ...input, upstream: none(), delivered: none(), waiting: 0 }),
  initial: 'retrieving',
  on: {
    ASSOCIATION_OPENING: { actions: 'spawnAssociation' },
    ASSOCIATION_CLOSED: { actions: 'stopAssociation' },
  },
  states: {
    retrieving: {
      on: {
        PROGRESS: { actions: 'recordProgress' },
        ENDED: { target: 'ended', actions: 'recordEnd' },
      },
    },
    ended: { type: 'final' },
  },
});
