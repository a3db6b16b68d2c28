// One retrieve-through under way (issue 16), as a job in the actor tree: what it retrieves, from which
// archive to which destination, and its counts on both sides (the archive's C-MOVE into the router,
// the deliveries onward, what waits in between), so the console shows it while it runs. The work is
// done by actors/jobs/qr-scp-through.ts, which reports here; the job leaves the tree when it ends.
import { assertEvent, assign, setup } from 'xstate';
import type { SubOperations } from './dimse/dimse.events.ts';

export type RetrieveThroughInput = { level: string; uid: string; to: string; sources: string[] };

export type RetrieveThroughEvent =
  | { type: 'PROGRESS'; upstream: SubOperations; delivered: SubOperations; waiting: number }
  | { type: 'ENDED'; status: number };

type Context = RetrieveThroughInput & { upstream: SubOperations; delivered: SubOperations; waiting: number; status?: number };

const none = (): SubOperations => ({ completed: 0, failed: 0, warning: 0 });

export const retrieveThroughMachine = setup({
  types: { input: {} as RetrieveThroughInput, context: {} as Context, events: {} as RetrieveThroughEvent },
  actions: {
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { upstream: event.upstream, delivered: event.delivered, waiting: event.waiting };
    }),
    recordEnd: assign(({ event }) => {
      assertEvent(event, 'ENDED');
      return { status: event.status };
    }),
  },
}).createMachine({
  id: 'retrieveThrough',
  context: ({ input }) => ({ ...input, upstream: none(), delivered: none(), waiting: 0 }),
  initial: 'retrieving',
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
