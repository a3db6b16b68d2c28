// C-MOVE and C-GET SCP (PS3.4 C.4.2.2, C.4.3.2; PS3.7 9.1.3-4): the retrieval (the `retrieve` of the input, reached as the
// `runRetrieve` actor: sub-operations from the spool, relayed upstream, ...) reports its counts, each
// change a pending response (FF00 with Remaining/Completed/Failed/Warning), then the final status with
// the counts and, on failures, the identifier listing the failed SOP Instance UIDs. C-CANCEL-RQ is
// passed to the retrieval, which stops its sub-operations and ends with FE00 and what was done.
// Never a hang: no progress within the DIMSE timeout ends it (A702 with the counts so far) and stops
// the retrieval.
import { assertEvent, assign, fromCallback, sendParent, sendTo, setup } from 'xstate';
import type { Command } from '../../protocol/dimse.ts';
import { DATASET_PRESENT, responseFor } from '../../protocol/dimse.ts';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { reportEnd } from './qr-runner-end.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, SubOperations } from './dimse.events.ts';
import type { QrControlEvent, RetrieveEvent, RetrieveRunner } from './qr-scp.events.ts';

type Input = DimseInput;
type Context = Input & { suboperations: SubOperations; status?: number; errorComment?: string; finalDataset?: Uint8Array; failure?: string };
type Event = AssociationToDimse | QrControlEvent | RetrieveEvent;


/** The sub-operation counts as command elements (PS3.7 9.1.4.1.9-12; Remaining only while pending). */
function countFields(s: SubOperations, pending: boolean): Partial<Command> {
  return {
    ...(pending && s.remaining !== undefined ? { NumberOfRemainingSuboperations: s.remaining } : {}),
    NumberOfCompletedSuboperations: s.completed,
    NumberOfFailedSuboperations: s.failed,
    NumberOfWarningSuboperations: s.warning,
  };
}

export const cMoveScpMachine = setup({
  types: { input: {} as Input, context: {} as Context, events: {} as Event, output: {} as DimseOutcome },
  delays: { DIMSE_TIMEOUT: ({ context }) => context.dimseTimeoutMs },
  actors: {
    runRetrieve: fromCallback<QrControlEvent, { retrieve?: RetrieveRunner }, RetrieveEvent>(({ input, sendBack, receive }) => {
      if (!input.retrieve) {
        sendBack({ type: 'SEARCH_DONE', status: Status.UNABLE_TO_PROCESS, errorComment: 'no retrieve service on this listener' });
        return;
      }
      const run = input.retrieve((suboperations) => sendBack({ type: 'PROGRESS', suboperations }));
      receive((e) => {
        if (e.type === 'CANCEL_REQUESTED') run.cancel();
      });
      return reportEnd(run, sendBack, 'retrieve');
    }),
  },
  actions: {
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { suboperations: event.suboperations };
    }),
    sendPending: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY' as const,
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(context.command, Status.PENDING, countFields(context.suboperations, true)),
    })),
    passCancel: sendTo('retrieval', { type: 'CANCEL_REQUESTED' }),
    recordDone: assign(({ context, event }) => {
      assertEvent(event, 'SEARCH_DONE');
      return { status: event.status, errorComment: event.errorComment, finalDataset: event.dataset, suboperations: event.suboperations ?? context.suboperations };
    }),
    recordTimeout: assign(({ context }) => ({
      status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS,
      errorComment: errorCommentOf(`no progress within ${context.dimseTimeoutMs} ms`),
    })),
    recordAbandoned: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: event.reason };
    }),
    sendFinal: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY' as const,
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(context.command, context.status!, {
        ...countFields(context.suboperations, false),
        ...(context.errorComment ? { ErrorComment: errorCommentOf(context.errorComment) } : {}),
        ...(context.finalDataset ? { CommandDataSetType: DATASET_PRESENT } : {}),
      }),
      ...(context.finalDataset ? { dataset: { kind: 'bytes' as const, data: context.finalDataset } } : {}),
    })),
  },
}).createMachine({
  id: 'cMoveScp',
  context: ({ input }) => ({ ...input, suboperations: { completed: 0, failed: 0, warning: 0 } }),
  initial: 'retrieving',
  on: { ASSOCIATION_ENDED: { target: '.abandoned', actions: 'recordAbandoned' } },
  states: {
    retrieving: {
      invoke: { id: 'retrieval', src: 'runRetrieve', input: ({ context }) => ({ retrieve: context.retrieve }) },
      initial: 'waiting',
      states: {
        // Re-entered on each report: the DIMSE timeout runs between them.
        waiting: {
          after: { DIMSE_TIMEOUT: { target: '#cMoveScp.done', actions: 'recordTimeout' } },
          on: { PROGRESS: { target: 'waiting', reenter: true, actions: ['recordProgress', 'sendPending'] } },
        },
      },
      on: {
        SEARCH_DONE: { target: 'done', actions: 'recordDone' },
        // The retrieval stops its sub-operations and ends with FE00 (its SEARCH_DONE).
        CANCEL_REQUESTED: { actions: 'passCancel' },
      },
    },
    done: { type: 'final', entry: 'sendFinal' },
    abandoned: { type: 'final' },
  },
  output: ({ context }): DimseOutcome =>
    context.failure !== undefined
      ? { messageId: context.messageId, failure: context.failure, suboperations: context.suboperations }
      : { messageId: context.messageId, status: context.status, errorComment: context.errorComment, suboperations: context.suboperations },
});
