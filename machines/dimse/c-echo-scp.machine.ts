// C-ECHO SCP (PS3.7 9.1.5): answer Success. A machine of its own so every transaction,
// however small, shows up in the actor tree and the inspector. It answers on entering its one
// (final) state: the cheapest a transaction machine can be.
import { sendParent, setup } from 'xstate';
import { responseFor } from '../../protocol/dimse.ts';
import { Status } from '../../protocol/status.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';

export const cEchoScpMachine = setup({
  types: {
    input: {} as DimseInput,
    context: {} as DimseInput,
    events: {} as AssociationToDimse,
    output: {} as DimseOutcome,
  },
  actions: {
    sendSuccess: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY',
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(context.command, Status.SUCCESS),
    })),
  },
}).createMachine({
  id: 'cEchoScp',
  context: ({ input }) => input,
  initial: 'done',
  states: {
    done: { type: 'final', entry: 'sendSuccess' },
  },
  output: ({ context }) => ({ messageId: context.messageId, status: Status.SUCCESS }),
});
