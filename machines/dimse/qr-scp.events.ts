// What the Q/R SCP transaction machines (C-FIND, C-MOVE) exchange with the search or retrieval
// that serves them (actors/jobs/qr-scp.ts), and with the acceptor (a C-CANCEL-RQ). The work is a
// runner in the transaction's input: started by the machine, reporting as it goes, cancellable.
import type { SubOperations } from './dimse.events.ts';

/** The acceptor saw a C-CANCEL-RQ naming this transaction (PS3.7 9.3.2.3). */
export type QrControlEvent = { type: 'CANCEL_REQUESTED' };

/** One C-FIND match, encoded in the presentation context's transfer syntax. warning: FF01. */
export type FindMatch = { dataset: Uint8Array; warning?: boolean };
/** How a C-FIND or C-MOVE ends: its final status (and, for C-MOVE, the identifier with the failed UIDs). */
export type QrFinal = { status: number; errorComment?: string; dataset?: Uint8Array; suboperations?: SubOperations };

/** A search under way: `done` settles once; `cancel` stops it (upstream C-CANCELs relayed). */
export type Running<T> = { done: Promise<T>; cancel(): void };
export type SearchRunner = (emit: (match: FindMatch) => void) => Running<QrFinal>;
/** A retrieval under way: `progress` reports the sub-operation counts as they change. */
export type RetrieveRunner = (progress: (counts: SubOperations) => void) => Running<QrFinal>;

/** The runner's reports, as events to its transaction machine. */
export type SearchEvent =
  | { type: 'MATCH'; dataset: Uint8Array; warning?: boolean }
  | { type: 'SEARCH_DONE'; status: number; errorComment?: string; dataset?: Uint8Array; suboperations?: SubOperations };
export type RetrieveEvent =
  | { type: 'PROGRESS'; suboperations: SubOperations }
  | { type: 'SEARCH_DONE'; status: number; errorComment?: string; dataset?: Uint8Array; suboperations?: SubOperations };
