// Events exchanged between the association machine and its DIMSE transaction machines.
// A transaction is one request and its response(s) (PS3.7 section 9), keyed by Message ID.
import type { Command } from '../../protocol/dimse.ts';
import type { RetrieveRunner, SearchRunner } from './qr-scp.events.ts';

/** Where the bytes of a dataset to send come from; the association actor streams them.
 *  'prepared': a replacement header (modified attributes) then the file region from the first byte
 *  it did not replace, optionally converted between uncompressed transfer syntaxes on the way. */
export type DatasetSource =
  /** `bytes`: the whole file, when the spool still holds it in memory (its file is written after the acknowledgement). */
  | { kind: 'file'; path: string; offset: number; length: number; bytes?: Uint8Array }
  | {
    kind: 'prepared'; head: Uint8Array; path: string; offset: number; length: number; bytes?: Uint8Array; convert?: { from: string; to: string };
    /** Deflated file region (convert.from Deflated): inflated bytes that `head`, in Explicit VR LE, replaces. */
    skip?: number;
  }
  /** A small dataset built in memory (a C-FIND or C-MOVE identifier). */
  | { kind: 'bytes'; data: Uint8Array };

/** C-MOVE/C-GET sub-operation counts (PS3.7 9.1.4.1.9-12), as the last response gave them. */
export type SubOperations = { remaining?: number; completed: number; failed: number; warning: number };

/** What a finished transaction reports (also the machine's output). */
export type DimseOutcome = {
  messageId: number;
  /** The DIMSE status, or undefined when the transaction ended without one (association gone, timeout). */
  status?: number;
  errorComment?: string;
  failure?: string;
  response?: Command;
  /** C-FIND: the identifier of each pending response; C-MOVE: the final response's identifier, if any. */
  datasets?: Uint8Array[];
  /** C-MOVE: the sub-operation counts last reported. */
  suboperations?: SubOperations;
  /** Ended by the DIMSE timeout: the caller aborts the association (the peer may still be working). */
  timedOut?: boolean;
};

/** Child → association machine. A transaction ends by reaching a final state: its output (a
 *  DimseOutcome) comes to the association in XState's done event, which reports and removes it. */
export type DimseToAssociation = { type: 'DIMSE_MESSAGE_READY'; messageId: number; contextId: number; command: Command; dataset?: DatasetSource };

/** What a C-STORE SCP's store says (PS3.4 B.2.3): Success only once the instance is durable and routed. */
export type StoreResult = { status: number; errorComment?: string };

/** Association machine → child. */
export type AssociationToDimse =
  | { type: 'DATASET_RECEIVED' }
  | { type: 'DATASET_FAILED'; status: number; errorComment: string }
  | { type: 'RESPONSE_RECEIVED'; command: Command; dataset?: Uint8Array }
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
  /**
   * C-STORE SCP: makes the received instance durable and routed and says with which status (the
   * acceptor's commit). The world reaches the transaction through its input, not a registry.
   */
  store?: () => Promise<StoreResult>;
  /** C-FIND SCP: the search that answers this request (actors/jobs/qr-scp.ts). */
  find?: SearchRunner;
  /** C-MOVE SCP: the retrieval that performs this request's sub-operations. */
  retrieve?: RetrieveRunner;
  /** N-ACTION SCP: acts on the received Action Information (validates, records durably) and says with which status. */
  record?: () => Promise<StoreResult>;
};
