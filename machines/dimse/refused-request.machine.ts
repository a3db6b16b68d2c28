// A request this AE does not perform (C-FIND/C-MOVE/N-… on a storage listener): answered with
// 0211 Unrecognized Operation (PS3.7 C.5.x), any dataset it carried drained and dropped.
import { sendParent, setup } from 'xstate';
import { responseFor } from '../../protocol/dimse.ts';
import { Status } from '../../protocol/status.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

export const refusedRequestMachine = setup({
  types: { input: {} as DimseInput, context: {} as DimseInput, events: {} as AssociationToDimse, output: {} as DimseOutcome },
  actions: {
    sendRefusal: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY',
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(context.command, Status.UNRECOGNIZED_OPERATION),
    })),
  },
}).createMachine({
  id: 'refusedRequest',
  context: ({ input }) => input,
  initial: 'done',
  states: {
    // Answered on entering its one (final) state.
    done: { type: 'final', entry: 'sendRefusal' },
  },
  output: ({ context }) => ({ messageId: context.messageId, status: Status.UNRECOGNIZED_OPERATION }),
});
