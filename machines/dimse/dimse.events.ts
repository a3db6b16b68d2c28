// Events exchanged between the association machine and its DIMSE transaction machines.
// A transaction is one request and its response(s) (PS3.7 section 9), keyed by Message ID.
import type { Command } from '../../protocol/dimse.ts';

/** Where the bytes of a dataset to send come from; the association actor streams them.
 *  'prepared': a replacement header (modified attributes) then the file region from the first byte
 *  it did not replace, optionally converted between uncompressed transfer syntaxes on the way. */
export type DatasetSource =
  | { kind: 'file'; path: string; offset: number; length: number }
  | { kind: 'prepared'; head: Uint8Array; path: string; offset: number; length: number; convert?: { from: string; to: string } };

/** What a finished transaction reports (also the machine's output). */
export type DimseOutcome = {
  messageId: number;
  /** The DIMSE status, or undefined when the transaction ended without one (association gone, timeout). */
  status?: number;
  errorComment?: string;
  failure?: string;
  response?: Command;
};

/** Child → association machine. */
export type DimseToAssociation =
  | { type: 'DIMSE_MESSAGE_READY'; messageId: number; contextId: number; command: Command; dataset?: DatasetSource }
  | { type: 'DIMSE_COMPLETED'; outcome: DimseOutcome };

/** Association machine → child. */
export type AssociationToDimse =
  | { type: 'DATASET_RECEIVED' }
  | { type: 'DATASET_FAILED'; status: number; errorComment: string }
  | { type: 'RESPONSE_RECEIVED'; command: Command }
  | { type: 'ASSOCIATION_ENDED'; reason: string };

/** What the association machine gives every transaction it spawns. */
export type DimseInput = {
  /** The association machine that owns this transaction (actors use it to find their world). */
  associationId: string;
  messageId: number;
  contextId: number;
  /** The request: received (SCP) or to send (SCU). */
  command: Command;
  dataset?: DatasetSource;
  /** How long an SCU waits for the response (PS3.7 has none; every product sets one). */
  dimseTimeoutMs: number;
};
