// One C-MOVE SCU transaction (PS3.7 9.1.4; PS3.4 C.4.2): the request (Move Destination and the
// identifier), pending responses (FF00) with the sub-operation counts, then the final response.
// Handling per the prefetching proxy's conformance statement (4.2.5.3.1.4): pending continues the
// retrieve and its counts are tracked; 0000 completes; B000 (sub-operations complete, one or more
// failures) completes partially, counts recorded; A7xx, A9xx, Cxxx and other failures terminate it;
// a timeout or a lost association fails it (the caller aborts on timeout). CANCEL_REQUESTED sends
// C-CANCEL-RQ and waits for the final response (FE00 with the counts so far).
import { assertEvent, assign, sendParent, setup } from 'xstate';
import type { Command } from '../../protocol/dimse.ts';
import { statusCategory } from '../../protocol/status.ts';
import { pendingResponseStates } from './pending-responses.ts';
import { cancelMessage, endedFailure, requestMessage, timeoutFailure } from './scu-messages.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, SubOperations } from './dimse.events.ts';
import type { QueryControlEvent } from './c-find-scu.machine.ts';

type Event = AssociationToDimse | QueryControlEvent;

export type CMoveScuContext = DimseInput & {
  suboperations: SubOperations;
  response?: Command;
  finalDataset?: Uint8Array;
  failure?: string;
  timedOut: boolean;
  cancelRequested: boolean;
};

const isPending = (e: Event) => e.type === 'RESPONSE_RECEIVED' && statusCategory(e.command.Status ?? 0xffff) === 'pending';

/** The counts a response carries; those it leaves out keep their last value (they are optional in a final response). */
export function countsOf(command: Command, previous: SubOperations): SubOperations {
  return {
    remaining: command.NumberOfRemainingSuboperations ?? (isPending({ type: 'RESPONSE_RECEIVED', command }) ? previous.remaining : undefined),
    completed: command.NumberOfCompletedSuboperations ?? previous.completed,
    failed: command.NumberOfFailedSuboperations ?? previous.failed,
    warning: command.NumberOfWarningSuboperations ?? previous.warning,
  };
}

export const cMoveScuMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as CMoveScuContext,
    events: {} as Event,
    output: {} as DimseOutcome,
  },
  delays: { DIMSE_TIMEOUT: ({ context }) => context.dimseTimeoutMs },
  guards: {
    isPending: ({ event }) => isPending(event),
  },
  actions: {
    sendRequest: sendParent(({ context }) => requestMessage(context)),
    sendCancel: sendParent(({ context }) => cancelMessage(context)),
    recordCancel: assign({ cancelRequested: true }),
    recordPending: assign(({ context, event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      return { response: event.command, suboperations: countsOf(event.command, context.suboperations) };
    }),
    // The final response may carry the Failed SOP Instance UID List (PS3.4 C.4.2.1.4).
    recordFinal: assign(({ context, event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      return { response: event.command, suboperations: countsOf(event.command, context.suboperations), finalDataset: event.dataset };
    }),
    recordTimeout: assign({ failure: ({ context }) => timeoutFailure(context), timedOut: true }),
    recordEnded: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: endedFailure(event) };
    }),
  },
}).createMachine({
  id: 'cMoveScu',
  context: ({ input }) => ({ ...input, suboperations: { completed: 0, failed: 0, warning: 0 }, timedOut: false, cancelRequested: false }),
  initial: 'retrieving',
  states: pendingResponseStates('cMoveScu', 'retrieving'),
  output: ({ context }) => moveOutcome(context),
});

function moveOutcome(context: CMoveScuContext): DimseOutcome {
  const final = context.response && !isPending({ type: 'RESPONSE_RECEIVED', command: context.response }) ? context.response : undefined;
  return {
    messageId: context.messageId,
    status: final?.Status,
    errorComment: context.response?.ErrorComment,
    failure: context.failure,
    response: context.response,
    suboperations: context.suboperations,
    ...(context.finalDataset ? { datasets: [context.finalDataset] } : {}),
    ...(context.timedOut ? { timedOut: true } : {}),
  };
}
