// One C-FIND SCU transaction (PS3.7 9.1.2; PS3.4 C.4.1): the request with its identifier, then
// pending responses (FF00, FF01), each carrying one match, until a final one. Status handling as the
// prefetching proxy's conformance statement (4.2.5.3.1.3) has it: pending results are collected,
// 0000 completes, A7xx/A9xx/Cxxx (any failure) fail the query, a timeout or a lost association
// fails it too (the caller aborts the association on a timeout). CANCEL_REQUESTED sends a
// C-CANCEL-RQ (PS3.7 9.3.2.3) and waits for the final response, normally FE00.
import { assign, sendParent, setup } from 'xstate';
import type { Command } from '../../protocol/dimse.ts';
import { statusCategory } from '../../protocol/status.ts';
import { cancelMessage, endedFailure, requestMessage, timeoutFailure } from './scu-messages.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

/** What the owner of the transaction may send it besides the association's events. */
export type QueryControlEvent = { type: 'CANCEL_REQUESTED' };

type Event = AssociationToDimse | QueryControlEvent;
type Response = Extract<AssociationToDimse, { type: 'RESPONSE_RECEIVED' }>;

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
    collectMatch: assign({
      // A pending response without an identifier is a peer error we tolerate (nothing to collect).
      matches: ({ context, event }) => ((event as Response).dataset ? [...context.matches, (event as Response).dataset!] : context.matches),
      response: ({ event }) => (event as Response).command,
    }),
    recordFinal: assign({ response: ({ event }) => (event as Response).command }),
    recordTimeout: assign({ failure: ({ context }) => timeoutFailure(context), timedOut: true }),
    recordEnded: assign({ failure: ({ event }) => endedFailure(event) }),
    reportCompleted: sendParent(({ context }) => ({ type: 'DIMSE_COMPLETED', outcome: findOutcome(context) })),
  },
}).createMachine({
  id: 'cFindScu',
  context: ({ input }) => ({ ...input, matches: [], timedOut: false, cancelRequested: false }),
  initial: 'querying',
  states: {
    querying: {
      entry: 'sendRequest',
      initial: 'waiting',
      states: {
        // Re-entered on each pending response: the DIMSE timeout runs between responses.
        waiting: {
          after: { DIMSE_TIMEOUT: { target: '#cFindScu.failed', actions: 'recordTimeout' } },
          on: { RESPONSE_RECEIVED: { guard: 'isPending', target: 'waiting', reenter: true, actions: 'collectMatch' } },
        },
      },
      on: {
        // Pending responses are taken by 'waiting' (so only it restarts); this is the final one.
        RESPONSE_RECEIVED: { target: 'done', actions: 'recordFinal' },
        CANCEL_REQUESTED: { target: 'cancelling', actions: ['recordCancel', 'sendCancel'] },
        ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
      },
    },
    cancelling: {
      // Matches may still arrive before the SCP sees the cancel; the final response (FE00) ends it.
      on: {
        RESPONSE_RECEIVED: [
          { guard: 'isPending', actions: 'collectMatch' },
          { target: 'done', actions: 'recordFinal' },
        ],
        ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
      },
      after: { DIMSE_TIMEOUT: { target: 'failed', actions: 'recordTimeout' } },
    },
    done: { type: 'final', entry: 'reportCompleted' },
    failed: { type: 'final', entry: 'reportCompleted' },
  },
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
