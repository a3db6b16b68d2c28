// How an SCP transaction that answers once ends: its one response (the status and Error Comment it
// settled on) and the outcome the association reports, or the failure if the requester went away.
import { assertEvent, assign, sendParent } from 'xstate';
import { responseFor } from '../../protocol/dimse.ts';
import { errorCommentOf } from '../../protocol/status.ts';
import type { AssociationToDimse, DimseInput, DimseOutcome, DimseToAssociation, StoreResult } from './dimse.events.ts';

export type Settled = DimseInput & { status?: number; errorComment?: string; failure?: string };

/** The response, as the association sends it. */
export function responseOf(context: Settled): DimseToAssociation {
  return {
    type: 'DIMSE_MESSAGE_READY',
    messageId: context.messageId,
    contextId: context.contextId,
    command: responseFor(context.command, context.status!, context.errorComment ? { ErrorComment: errorCommentOf(context.errorComment) } : undefined),
  };
}

/** What the association reports when the transaction is done (DIMSE_COMPLETED). */
export function outcomeOf(context: Settled): DimseOutcome {
  return context.failure !== undefined
    ? { messageId: context.messageId, failure: context.failure }
    : { messageId: context.messageId, status: context.status, errorComment: context.errorComment };
}

/**
 * The named actions every such SCP machine settles with (spread into its setup's `actions`): the
 * store/record actor's result, a dataset that could not be received, the requester gone, the response.
 */
export const settlingActions = {
  recordResult: assign<Settled, AssociationToDimse, StoreResult, AssociationToDimse, never>((_, result) => ({ status: result.status, errorComment: result.errorComment })),
  recordDatasetFailure: assign<Settled, AssociationToDimse, undefined, AssociationToDimse, never>(({ event }) => {
    assertEvent(event, 'DATASET_FAILED');
    return { status: event.status, errorComment: event.errorComment };
  }),
  recordAbandoned: assign<Settled, AssociationToDimse, undefined, AssociationToDimse, never>(({ event }) => {
    assertEvent(event, 'ASSOCIATION_ENDED');
    return { failure: event.reason };
  }),
  sendResponse: sendParent<Settled, AssociationToDimse, undefined, DimseToAssociation, AssociationToDimse>(({ context }) => responseOf(context)),
};
