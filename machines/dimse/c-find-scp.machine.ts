// C-FIND SCP (PS3.4 C.4.1.2, PS3.7 9.1.2): one pending response (FF00, or FF01 when optional keys
// were not matched) per match as the sources produce it, then the final status. C-CANCEL-RQ ends it
// with FE00 at once; leaving the searching state stops the search (its `cancel`, which relays the
// C-CANCEL upstream). Never a hang: no match and no end within the DIMSE timeout ends it with A700
// and an Error Comment saying the sources did not answer. The search itself is the `find` of the
// input (actors/jobs/qr-scp.ts), reached as the `runSearch` actor.
import { assertEvent, assign, fromCallback, sendParent, setup } from 'xstate';
import { DATASET_PRESENT, responseFor } from '../../protocol/dimse.ts';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { reportEnd } from './qr-runner-end.ts';
import { outcomeOf } from './scp-ending.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome } from './dimse.events.ts';
import type { QrControlEvent, SearchEvent, SearchRunner } from './qr-scp.events.ts';

type Input = DimseInput;
type Context = Input & { matches: number; status?: number; errorComment?: string; failure?: string };
type Event = AssociationToDimse | QrControlEvent | SearchEvent;


export const cFindScpMachine = setup({
  types: { input: {} as Input, context: {} as Context, events: {} as Event, output: {} as DimseOutcome },
  delays: { DIMSE_TIMEOUT: ({ context }) => context.dimseTimeoutMs },
  actors: {
    // The input's search, its matches and its end as events; stopping this actor cancels the search.
    runSearch: fromCallback<SearchEvent, { find?: SearchRunner }>(({ input, sendBack }) => {
      if (!input.find) {
        sendBack({ type: 'SEARCH_DONE', status: Status.UNABLE_TO_PROCESS, errorComment: 'no query service on this listener' });
        return;
      }
      const run = input.find((match) => sendBack({ type: 'MATCH', dataset: match.dataset, warning: match.warning }));
      return reportEnd(run, sendBack, 'query');
    }),
  },
  actions: {
    sendPending: sendParent(({ context, event }) => {
      assertEvent(event, 'MATCH');
      return {
        type: 'DIMSE_MESSAGE_READY' as const,
        messageId: context.messageId,
        contextId: context.contextId,
        command: { ...responseFor(context.command, event.warning ? Status.PENDING_WARNING : Status.PENDING), CommandDataSetType: DATASET_PRESENT },
        dataset: { kind: 'bytes' as const, data: event.dataset },
      };
    }),
    countMatch: assign({ matches: ({ context }) => context.matches + 1 }),
    recordDone: assign(({ event }) => {
      assertEvent(event, 'SEARCH_DONE');
      return { status: event.status, errorComment: event.errorComment };
    }),
    recordCancel: assign({ status: Status.CANCEL, errorComment: undefined }),
    recordTimeout: assign(({ context }) => ({ status: Status.OUT_OF_RESOURCES, errorComment: errorCommentOf(`no answer from the query sources within ${context.dimseTimeoutMs} ms`) })),
    recordAbandoned: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATION_ENDED');
      return { failure: event.reason };
    }),
    sendFinal: sendParent(({ context }) => ({
      type: 'DIMSE_MESSAGE_READY',
      messageId: context.messageId,
      contextId: context.contextId,
      command: responseFor(context.command, context.status!, context.errorComment ? { ErrorComment: errorCommentOf(context.errorComment) } : undefined),
    })),
  },
}).createMachine({
  id: 'cFindScp',
  context: ({ input }) => ({ ...input, matches: 0 }),
  initial: 'searching',
  on: { ASSOCIATION_ENDED: { target: '.abandoned', actions: 'recordAbandoned' } },
  states: {
    searching: {
      invoke: { src: 'runSearch', input: ({ context }) => ({ find: context.find }) },
      initial: 'waiting',
      states: {
        // Re-entered on each match: the DIMSE timeout runs between them.
        waiting: {
          after: { DIMSE_TIMEOUT: { target: '#cFindScp.done', actions: 'recordTimeout' } },
          on: { MATCH: { target: 'waiting', reenter: true, actions: ['sendPending', 'countMatch'] } },
        },
      },
      on: {
        SEARCH_DONE: { target: 'done', actions: 'recordDone' },
        CANCEL_REQUESTED: { target: 'done', actions: 'recordCancel' },
      },
    },
    done: { type: 'final', entry: 'sendFinal' },
    // The requester went away: nothing is owed; leaving 'searching' stopped the search.
    abandoned: { type: 'final' },
  },
  output: ({ context }): DimseOutcome => outcomeOf(context),
});
