// C-STORE SCP (PS3.4 B.2.2, PS3.7 9.1.1): the association actor streams the dataset to the spool
// as fragments arrive; this machine waits for the last one, has the instance made durable by the
// injected `storeInstance` actor, and only then answers. The response status is whatever the
// store says: Success only once the instance is fsync'd and indexed (DESIGN property 1).
import { assign, fromPromise, sendParent, setup } from 'xstate';
import { responseFor } from '../../protocol/dimse.ts';
import { Status } from '../../protocol/status.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

export type StoreResult = { status: number; errorComment?: string };
export type StoreInstanceInput = { associationId: string; messageId: number };

type Context = DimseInput & { status?: number; errorComment?: string };

export const cStoreScpMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Context,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  actors: {
    // Provided by the association actor; the default refuses so a missing wiring is loud, not silent.
    storeInstance: fromPromise<StoreResult, StoreInstanceInput>(async () => ({
      status: Status.PROCESSING_FAILURE,
      errorComment: 'no storage is configured for this association',
    })),
  },
  actions: {
    recordStoreResult: assign(({ event }) => {
      const result = (event as unknown as { output: StoreResult }).output;
      return { status: result.status, errorComment: result.errorComment };
    }),
    recordStoreError: assign(({ event }) => ({
      status: Status.OUT_OF_RESOURCES,
      errorComment: `storage failed: ${String((event as unknown as { error: unknown }).error)}`.slice(0, 64),
    })),
    recordDatasetFailure: assign(({ event }) => {
      const failed = event as Extract<AssociationToDimse, { type: 'DATASET_FAILED' }>;
      return { status: failed.status, errorComment: failed.errorComment };
    }),
    sendResponse: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY',
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(
        context.command,
        context.status!,
        // Error Comment (0000,0902) is LO: at most 64 characters.
        context.errorComment ? { ErrorComment: context.errorComment.slice(0, 64) } : undefined,
      ),
    })),
    reportCompleted: sendParent(({ context }) => ({
      type: 'DIMSE_COMPLETED',
      outcome: { messageId: context.messageId, status: context.status, errorComment: context.errorComment },
    })),
    reportAbandoned: sendParent(({ context, event }) => ({
      type: 'DIMSE_COMPLETED',
      outcome: { messageId: context.messageId, failure: (event as { reason?: string }).reason ?? 'association ended' },
    })),
  },
}).createMachine({
  id: 'cStoreScp',
  context: ({ input }) => input,
  initial: 'receivingDataset',
  on: { ASSOCIATION_ENDED: '.abandoned' },
  states: {
    receivingDataset: {
      on: {
        DATASET_RECEIVED: 'storing',
        DATASET_FAILED: { target: 'responding', actions: 'recordDatasetFailure' },
      },
    },
    storing: {
      invoke: {
        src: 'storeInstance',
        input: ({ context }) => ({ associationId: context.associationId, messageId: context.messageId }),
        onDone: { target: 'responding', actions: 'recordStoreResult' },
        onError: { target: 'responding', actions: 'recordStoreError' },
      },
    },
    responding: { entry: 'sendResponse', always: 'done' },
    done: { type: 'final', entry: 'reportCompleted' },
    // The peer went away before we answered: nothing was acknowledged, so nothing is owed.
    abandoned: { type: 'final', entry: 'reportAbandoned' },
  },
  output: ({ context }) => ({ messageId: context.messageId, status: context.status, errorComment: context.errorComment }),
});
