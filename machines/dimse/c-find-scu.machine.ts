// One C-FIND SCU transaction (PS3.7 9.1.2; PS3.4 C.4.1): the request with its identifier, then
// pending responses (FF00, FF01), each carrying one match, until a final one. Status handling as the
// prefetching proxy's conformance statement (4.2.5.3.1.3) has it: pending results are collected,
// 0000 completes, A7xx/A9xx/Cxxx (any failure) fail the query, a timeout or a lost association
// fails it too (the caller aborts the association on a timeout). CANCEL_REQUESTED sends a
// C-CANCEL-RQ (PS3.7 9.3.2.3) and waits for the final response, normally FE00.
import { assertEvent, assign, sendParent, setup } from 'xstate';
import type { Command } from '../../protocol/dimse.ts';
import { statusCategory } from '../../protocol/status.ts';
import { pendingResponseStates } from './pending-responses.ts';
import { cancelMessage, endedFailure, requestMessage, timeoutFailure } from './scu-messages.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

/** What the owner of the transaction may send it besides the association's events. */
export type QueryControlEvent = { type: 'CANCEL_REQUESTED' };

type Event = AssociationToDimse | QueryControlEvent;

export type CFindScuContext = DimseInput & {
  matches: Uint8Array[];
  response?: Command;
  failure?: string;
  timedOut: boolean;
  cancelRequested: boolean;
};

const isPending = (e: Event) => e.type === 'RESPONSE_RECEIVED' && statusCategory(e.command.Status ?? 0xffff) === 'pending';

export const cFindScuMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as CFindScuContext,
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
      // A pending response without an identifier is a peer error we tolerate (nothing to collect).
      return { matches: event.dataset ? [...context.matches, event.dataset] : context.matches, response: event.command };
    }),
    recordFinal: assign(({ event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      return { response: event.command };
    }),
    recordTimeout: assign({ failure: ({ context }) => timeoutFailure(context), timedOut: true }),
    recordEnded: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: endedFailure(event) };
    }),
  },
}).createMachine({
  id: 'cFindScu',
  context: ({ input }) => ({ ...input, matches: [], timedOut: false, cancelRequested: false }),
  initial: 'querying',
  states: pendingResponseStates('cFindScu', 'querying'),
  output: ({ context }) => findOutcome(context),
});

function findOutcome(context: CFindScuContext): DimseOutcome {
  return {
    messageId: context.messageId,
    status: context.response && !isPending({ type: 'RESPONSE_RECEIVED', command: context.response }) ? context.response.Status : undefined,
    errorComment: context.response?.ErrorComment,
    failure: context.failure,
    response: context.response,
    datasets: context.matches,
    ...(context.timedOut ? { timedOut: true } : {}),
  };
}
