// How an SCP transaction that answers once ends: its one response (the status and Error Comment it
// settled on) and the outcome the association reports, or the failure if the requester went away.
import { responseFor } from '../../protocol/dimse.ts';
import { errorCommentOf } from '../../protocol/status.ts';
import type { DimseInput, DimseOutcome, DimseToAssociation } from './dimse.events.ts';

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
