// C-STORE SCP (PS3.4 B.2.2, PS3.7 9.1.1): the association actor streams the dataset to the spool
// as fragments arrive; this machine waits for the last one, has the instance made durable by its
// `storeInstance` actor (by default the `store` of its input, given by the acceptor), and only then
// answers. The response status is whatever the store says: Success only once the instance is
// durable and routed (DESIGN property 1).
import { assign, fromPromise, setup } from 'xstate';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { outcomeOf, settlingActions } from './scp-ending.ts';
import type { Settled } from './scp-ending.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, StoreResult } from './dimse.events.ts';

export type { StoreResult };
export type StoreInstanceInput = { associationId: string; messageId: number; store?: () => Promise<StoreResult> };

type Context = Settled;


export const cStoreScpMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Context,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  actors: {
    // The store its input carries; without one it refuses, so a missing wiring is loud, not silent.
    storeInstance: fromPromise<StoreResult, StoreInstanceInput>(async ({ input }) =>
      input.store ? input.store() : { status: Status.PROCESSING_FAILURE, errorComment: 'no storage is configured for this association' },
    ),
  },
  actions: {
    ...settlingActions,
    recordStoreError: assign((_, error: unknown) => ({ status: Status.OUT_OF_RESOURCES, errorComment: errorCommentOf(`storage failed: ${String(error)}`) })),
  },
}).createMachine({
  id: 'cStoreScp',
  context: ({ input }) => input,
  initial: 'receivingDataset',
  on: { ASSOCIATION_ENDED: { target: '.abandoned', actions: 'recordAbandoned' } },
  states: {
    receivingDataset: {
      on: {
        DATASET_RECEIVED: 'storing',
        DATASET_FAILED: { target: 'done', actions: 'recordDatasetFailure' },
      },
    },
    storing: {
      invoke: {
        src: 'storeInstance',
        input: ({ context }) => ({ associationId: context.associationId, messageId: context.messageId, store: context.store }),
        onDone: { target: 'done', actions: { type: 'recordResult', params: ({ event }) => event.output } },
        onError: { target: 'done', actions: { type: 'recordStoreError', params: ({ event }: { event: { error: unknown } }) => event.error } },
      },
    },
    // The response goes out on entering the final state (no separate 'responding' step).
    done: { type: 'final', entry: 'sendResponse' },
    // The peer went away before we answered: nothing was acknowledged, so nothing is owed.
    abandoned: { type: 'final' },
  },
  // What the association reports when this transaction is done (DIMSE_COMPLETED).
  output: ({ context }): DimseOutcome => outcomeOf(context),
});
