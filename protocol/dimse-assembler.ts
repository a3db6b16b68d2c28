// Turns received PDVs into DIMSE messages (PS3.7 section 8 / Annex E, PS3.8 9.3.5.1).
// A message is a command set (PDVs with the command bit) optionally followed by a data set
// on the same presentation context. Command sets are small and are concatenated (bounded);
// data sets are never buffered: each PDV is handed on as it arrives, without copying, so
// the consumer can stream it to disk (DESIGN: "bulk data streams").

import type { Pdv } from './pdu.types.ts';
import { decodeCommand, DimseDecodeError, hasDataset } from './dimse.ts';
import type { Command } from './dimse.ts';

export type AssemblerOutput =
  | { kind: 'command'; contextId: number; command: Command; expectsDataset: boolean }
  | { kind: 'dataset-fragment'; contextId: number; data: Uint8Array; isLast: boolean };

/** A command set larger than this is refused: real ones are a few hundred bytes. */
export const MAX_COMMAND_SET_LENGTH = 64 * 1024;

export type DimseAssemblyErrorCode =
  | 'UNEXPECTED_DATASET'
  | 'DATASET_CONTEXT_MISMATCH'
  | 'COMMAND_DURING_DATASET'
  | 'COMMAND_CONTEXT_MISMATCH'
  | 'COMMAND_TOO_LARGE'
  | 'BAD_COMMAND';

export class DimseAssemblyError extends Error {
  readonly code: DimseAssemblyErrorCode;
  constructor(code: DimseAssemblyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DimseAssemblyError';
    this.code = code;
  }
}

/**
 * One per association. After a thrown error the association is broken (the caller aborts it);
 * the assembler's state is then unspecified.
 */
export class DimseAssembler {
  #commandChunks: Uint8Array[] = [];
  #commandLength = 0;
  #commandContext: number | undefined = undefined;
  /** Context of the data set we are receiving (set once its command has arrived). */
  #datasetContext: number | undefined = undefined;

  /** True between the first PDV of a message and its last one. */
  get inProgress(): boolean {
    return this.#commandContext !== undefined || this.#datasetContext !== undefined;
  }

  push(pdv: Pdv): AssemblerOutput[] {
    return pdv.isCommand ? this.#pushCommand(pdv) : this.#pushDataset(pdv);
  }

  #pushCommand(pdv: Pdv): AssemblerOutput[] {
    if (this.#datasetContext !== undefined) {
      throw new DimseAssemblyError(
        'COMMAND_DURING_DATASET',
        `command PDV on context ${pdv.contextId} while the data set on context ${this.#datasetContext} is incomplete`,
      );
    }
    if (this.#commandContext !== undefined && pdv.contextId !== this.#commandContext) {
      throw new DimseAssemblyError(
        'COMMAND_CONTEXT_MISMATCH',
        `command fragment on context ${pdv.contextId}, earlier fragments were on context ${this.#commandContext}`,
      );
    }
    if (this.#commandLength + pdv.data.length > MAX_COMMAND_SET_LENGTH) {
      throw new DimseAssemblyError(
        'COMMAND_TOO_LARGE',
        `command set exceeds ${MAX_COMMAND_SET_LENGTH} bytes (${this.#commandLength + pdv.data.length} so far)`,
      );
    }
    this.#commandContext = pdv.contextId;
    this.#commandChunks.push(pdv.data);
    this.#commandLength += pdv.data.length;
    if (!pdv.isLast) return [];

    const bytes = this.#commandChunks.length === 1 ? this.#commandChunks[0] : concat(this.#commandChunks, this.#commandLength);
    this.#commandChunks = [];
    this.#commandLength = 0;
    this.#commandContext = undefined;
    let command: Command;
    try {
      command = decodeCommand(bytes);
    } catch (err) {
      if (err instanceof DimseDecodeError) {
        throw new DimseAssemblyError('BAD_COMMAND', `undecodable command set: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const expectsDataset = hasDataset(command);
    if (expectsDataset) this.#datasetContext = pdv.contextId;
    return [{ kind: 'command', contextId: pdv.contextId, command, expectsDataset }];
  }

  #pushDataset(pdv: Pdv): AssemblerOutput[] {
    if (this.#datasetContext === undefined) {
      throw new DimseAssemblyError(
        'UNEXPECTED_DATASET',
        this.#commandContext !== undefined
          ? `data set PDV on context ${pdv.contextId} before the command set was complete`
          : `data set PDV on context ${pdv.contextId} but no data set is expected`,
      );
    }
    if (pdv.contextId !== this.#datasetContext) {
      throw new DimseAssemblyError(
        'DATASET_CONTEXT_MISMATCH',
        `data set PDV on context ${pdv.contextId}, its command was on context ${this.#datasetContext}`,
      );
    }
    if (pdv.isLast) this.#datasetContext = undefined;
    return [{ kind: 'dataset-fragment', contextId: pdv.contextId, data: pdv.data, isLast: pdv.isLast }];
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Split a command or data set into PDVs carrying at most `maxPdvDataLength` bytes each (views
 * into `bytes`, no copy); the last is flagged isLast. An empty buffer gives one empty last PDV.
 * The caller derives maxPdvDataLength from the peer's maximum PDU length: each PDV item costs
 * 6 bytes (item length + context id + control header) inside the P-DATA-TF (PS3.8 9.3.5).
 */
export function fragmentMessage(contextId: number, bytes: Uint8Array, isCommand: boolean, maxPdvDataLength: number): Pdv[] {
  if (!Number.isInteger(maxPdvDataLength) || maxPdvDataLength < 1) {
    throw new RangeError(`maxPdvDataLength must be a positive integer, got ${maxPdvDataLength}`);
  }
  if (bytes.length === 0) return [{ contextId, isCommand, isLast: true, data: bytes }];
  const pdvs: Pdv[] = [];
  for (let at = 0; at < bytes.length; at += maxPdvDataLength) {
    const end = Math.min(at + maxPdvDataLength, bytes.length);
    pdvs.push({ contextId, isCommand, isLast: end === bytes.length, data: bytes.subarray(at, end) });
  }
  return pdvs;
}
