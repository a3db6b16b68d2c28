// N-EVENT-REPORT SCP for the Storage Commitment Push Model (PS3.4 J.3.3, PS3.7 10.1.1): the router
// asked a peer for storage commitment (n-action-scu) and the peer reports the result, on that same
// association or on a new one to the router's listener (the peer in SCP role). Waits for the Event
// Information, checks the command (SOP class, the well-known SOP instance, Event Type 1 or 2), has the
// result recorded durably by its `recordEvent` actor (the `record` of its input, given by whoever
// dispatched the request), then answers: Success only once the outcome is durable, so a report the
// router could not keep is sent again by a peer that retries.
import { assign, fromPromise, setup } from 'xstate';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { EventType } from '../../protocol/storage-commitment.ts';
import { STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE } from '../../protocol/uids.ts';
import { outcomeOf, settlingActions } from './scp-ending.ts';
import type { Settled } from './scp-ending.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, StoreResult } from './dimse.events.ts';

export const nEventReportScpMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Settled,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  actors: {
    recordEvent: fromPromise<StoreResult, { record?: () => Promise<StoreResult> }>(async ({ input }) =>
      input.record ? input.record() : { status: Status.PROCESSING_FAILURE, errorComment: 'no storage commitment was asked from here' },
    ),
  },
  guards: {
    notStorageCommitmentClass: ({ context }) => context.command.AffectedSOPClassUID !== STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS,
    notWellKnownInstance: ({ context }) => context.command.AffectedSOPInstanceUID !== STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE,
    notCommitmentEvent: ({ context }) => context.command.EventTypeID !== EventType.SUCCESSFUL && context.command.EventTypeID !== EventType.FAILURES_EXIST,
  },
  actions: {
    refuse: assign((_, params: { status: number; errorComment: string }) => params),
    recordError: assign((_, error: unknown) => ({ status: Status.PROCESSING_FAILURE, errorComment: errorCommentOf(`recording the report failed: ${String(error)}`) })),
    ...settlingActions,
  },
}).createMachine({
  id: 'nEventReportScp',
  context: ({ input }) => input,
  initial: 'receivingEventInformation',
  on: { ASSOCIATION_ENDED: { target: '.abandoned', actions: 'recordAbandoned' } },
  states: {
    receivingEventInformation: {
      on: {
        DATASET_RECEIVED: [
          { guard: 'notStorageCommitmentClass', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_SOP_CLASS, errorComment: 'only Storage Commitment Push Model reports are taken here' } } },
          { guard: 'notWellKnownInstance', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_SOP_INSTANCE, errorComment: 'Affected SOP Instance must be 1.2.840.10008.1.20.1.1' } } },
          { guard: 'notCommitmentEvent', target: 'done', actions: { type: 'refuse', params: { status: Status.NO_SUCH_EVENT_TYPE, errorComment: 'Event Type ID must be 1 or 2' } } },
          { target: 'recording' },
        ],
        DATASET_FAILED: { target: 'done', actions: 'recordDatasetFailure' },
      },
    },
    recording: {
      invoke: {
        src: 'recordEvent',
        input: ({ context }) => ({ record: context.record }),
        onDone: { target: 'done', actions: { type: 'recordResult', params: ({ event }) => event.output } },
        onError: { target: 'done', actions: { type: 'recordError', params: ({ event }: { event: { error: unknown } }) => event.error } },
      },
    },
    done: { type: 'final', entry: 'sendResponse' },
    // The peer went away before the answer: what was recorded stays; a peer that retries sends it again.
    abandoned: { type: 'final' },
  },
  output: ({ context }) => outcomeOf(context),
});
