// N-ACTION SCP for the Storage Commitment Push Model (PS3.4 J.3.2, PS3.7 10.1.4): waits for the
// Action Information, checks the command (SOP class, the well-known SOP instance, Action Type 1),
// has the request validated and recorded durably by its `recordAction` actor (by default the
// `record` of its input, given by the acceptor), then answers at once: the commitment itself is
// decided later and reported in an N-EVENT-REPORT (actors/jobs/commitment.ts).
import { assign, fromPromise, setup } from 'xstate';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { REQUEST_STORAGE_COMMITMENT } from '../../protocol/storage-commitment.ts';
import { STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE } from '../../protocol/uids.ts';
import { outcomeOf, settlingActions } from './scp-ending.ts';
import type { Settled } from './scp-ending.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, StoreResult } from './dimse.events.ts';

type Context = Settled;


export const nActionScpMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Context,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  actors: {
    recordAction: fromPromise<StoreResult, { record?: () => Promise<StoreResult> }>(async ({ input }) =>
      input.record ? input.record() : { status: Status.PROCESSING_FAILURE, errorComment: 'storage commitment is not configured here' },
    ),
  },
  guards: {
    notStorageCommitmentClass: ({ context }) => context.command.RequestedSOPClassUID !== STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS,
    notWellKnownInstance: ({ context }) => context.command.RequestedSOPInstanceUID !== STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE,
    notRequestAction: ({ context }) => context.command.ActionTypeID !== REQUEST_STORAGE_COMMITMENT,
  },
  actions: {
    refuse: assign((_, params: { status: number; errorComment: string }) => params),
    recordError: assign((_, error: unknown) => ({ status: Status.PROCESSING_FAILURE, errorComment: errorCommentOf(`recording the request failed: ${String(error)}`) })),
    ...settlingActions,
  },
}).createMachine({
  id: 'nActionScp',
  context: ({ input }) => input,
  initial: 'receivingActionInformation',
  on: { ASSOCIATION_ENDED: { target: '.abandoned', actions: 'recordAbandoned' } },
  states: {
    // The answer waits for the whole request, even one refused on its command alone.
    receivingActionInformation: {
      on: {
        DATASET_RECEIVED: [
          { guard: 'notStorageCommitmentClass', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_SOP_CLASS, errorComment: 'only Storage Commitment Push Model is performed here' } } },
          { guard: 'notWellKnownInstance', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_SOP_INSTANCE, errorComment: 'Requested SOP Instance must be 1.2.840.10008.1.20.1.1' } } },
          { guard: 'notRequestAction', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_ACTION, errorComment: 'Action Type ID must be 1 (Request Storage Commitment)' } } },
          { target: 'recording' },
        ],
        DATASET_FAILED: { target: 'done', actions: 'recordDatasetFailure' },
      },
    },
    recording: {
      invoke: {
        src: 'recordAction',
        input: ({ context }) => ({ record: context.record }),
        onDone: { target: 'done', actions: { type: 'recordResult', params: ({ event }) => event.output } },
        onError: { target: 'done', actions: { type: 'recordError', params: ({ event }: { event: { error: unknown } }) => event.error } },
      },
    },
    done: { type: 'final', entry: 'sendResponse' },
    // The requester went away before the answer: if the request was recorded, its report still goes out.
    abandoned: { type: 'final' },
  },
  output: ({ context }): DimseOutcome => outcomeOf(context),
});
