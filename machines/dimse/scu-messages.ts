// What every SCU transaction machine sends its association, and how it words its failures: one
// place for the shapes, so C-ECHO/C-STORE, C-FIND and C-MOVE send and fail alike.
import { CommandField, NO_DATASET } from '../../protocol/dimse.ts';
import type { DimseInput, DimseToAssociation } from './dimse.events.ts';

/** The request itself (with its dataset, if any). */
export const requestMessage = (t: DimseInput): DimseToAssociation => ({
  type: 'DIMSE_MESSAGE_READY',
  messageId: t.messageId,
  contextId: t.contextId,
  command: t.command,
  dataset: t.dataset,
});

/** A C-CANCEL-RQ for the request (PS3.7 9.3.2.3, and the C-MOVE/C-GET equivalents). */
export const cancelMessage = (t: DimseInput): DimseToAssociation => ({
  type: 'DIMSE_MESSAGE_READY',
  messageId: t.messageId,
  contextId: t.contextId,
  command: { CommandField: CommandField.C_CANCEL_RQ, MessageIDBeingRespondedTo: t.messageId, CommandDataSetType: NO_DATASET },
});

export const timeoutFailure = (t: DimseInput) => `no response within ${t.dimseTimeoutMs} ms`;

export const endedFailure = (event: { reason?: string }) => event.reason ?? 'association ended';
