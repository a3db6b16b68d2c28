// N-ACTION SCU for the Storage Commitment Push Model (PS3.4 J.3.2, PS3.7 10.1.4): sends the Request
// Storage Commitment (Action Type 1, the well-known SOP instance, the Action Information built by the
// caller), then waits for the N-ACTION-RSP under the DIMSE timeout. The response only says the peer
// took the request; the commitment itself comes later in an N-EVENT-REPORT (n-event-report-scp).
// A response that is not an N-ACTION-RSP for our action, or carries another SOP class, is a failure:
// the peer did not take the request as asked.
import { assertEvent, assign, sendParent, setup } from 'xstate';
import { CommandField } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import { REQUEST_STORAGE_COMMITMENT } from '../../protocol/storage-commitment.ts';
import { STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS } from '../../protocol/uids.ts';
import { endedFailure, requestMessage, timeoutFailure } from './scu-messages.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

type Context = DimseInput & { response?: Command; failure?: string; timedOut?: boolean };

export const nActionScuMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as Context,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  delays: { DIMSE_TIMEOUT: ({ context }) => context.dimseTimeoutMs },
  guards: {
    // PS3.7 10.1.4.1: the N-ACTION-RSP carries the Affected SOP Class UID and Action Type ID (when the action succeeded).
    notOurResponse: ({ event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      const c = event.command;
      if (c.CommandField !== CommandField.N_ACTION_RSP) return true;
      if (c.AffectedSOPClassUID !== undefined && c.AffectedSOPClassUID !== STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS) return true;
      return c.Status === 0 && c.ActionTypeID !== undefined && c.ActionTypeID !== REQUEST_STORAGE_COMMITMENT;
    },
  },
  actions: {
    sendRequest: sendParent(({ context }) => requestMessage(context)),
    recordResponse: assign(({ event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      return { response: event.command };
    }),
    recordStrangeResponse: assign(({ event }) => {
      assertEvent(event, 'RESPONSE_RECEIVED');
      const c = event.command;
      return { failure: `unexpected answer to the N-ACTION: command 0x${(c.CommandField ?? 0).toString(16)}, SOP class ${c.AffectedSOPClassUID ?? '-'}, action type ${c.ActionTypeID ?? '-'}` };
    }),
    recordTimeout: assign({ failure: ({ context }) => timeoutFailure(context), timedOut: true }),
    recordEnded: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: endedFailure(event) };
    }),
  },
}).createMachine({
  id: 'nActionScu',
  context: ({ input }) => input,
  initial: 'awaitingResponse',
  states: {
    awaitingResponse: {
      entry: 'sendRequest',
      on: {
        RESPONSE_RECEIVED: [
          { guard: 'notOurResponse', target: 'failed', actions: 'recordStrangeResponse' },
          { target: 'answered', actions: 'recordResponse' },
        ],
        ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
      },
      after: { DIMSE_TIMEOUT: { target: 'failed', actions: 'recordTimeout' } },
    },
    answered: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }): DimseOutcome => ({
    messageId: context.messageId,
    status: context.failure === undefined ? context.response?.Status : undefined,
    errorComment: context.response?.ErrorComment,
    failure: context.failure,
    response: context.response,
    ...(context.timedOut ? { timedOut: true } : {}),
  }),
});
