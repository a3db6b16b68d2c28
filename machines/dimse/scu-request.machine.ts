// One SCU transaction with a single final response: C-ECHO-RQ and C-STORE-RQ (PS3.7 9.1.5, 9.1.1).
// Sends the request (the association actor streams the dataset, if any), then waits for the response
// under the DIMSE timeout. Pending responses are not part of these services, so any response ends it.
import { assertEvent, assign, sendParent, setup } from 'xstate';
import type { Command } from '../../protocol/dimse.ts';
import { requestMessage, timeoutFailure, endedFailure } from './scu-messages.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

type Context = DimseInput & { response?: Command; failure?: string };

export const scuRequestMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Context,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  delays: { DIMSE_TIMEOUT: ({ context }) => context.dimseTimeoutMs },
  actions: {
    sendRequest: sendParent(({ context }) => requestMessage(context)),
    recordResponse: assign(({ event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      return { response: event.command };
    }),
    recordTimeout: assign({ failure: ({ context }) => timeoutFailure(context) }),
    recordEnded: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: endedFailure(event) };
    }),
  },
}).createMachine({
  id: 'scuRequest',
  context: ({ input }) => input,
  initial: 'awaitingResponse',
  states: {
    awaitingResponse: {
      entry: 'sendRequest',
      on: {
        RESPONSE_RECEIVED: { target: 'done', actions: 'recordResponse' },
        ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
      },
      after: { DIMSE_TIMEOUT: { target: 'failed', actions: 'recordTimeout' } },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => outcomeOf(context),
});

function outcomeOf(context: Context): DimseOutcome {
  return {
    messageId: context.messageId,
    status: context.response?.Status,
    errorComment: context.response?.ErrorComment,
    failure: context.failure,
    response: context.response,
  };
}
