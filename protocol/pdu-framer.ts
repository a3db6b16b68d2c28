// Cuts a TCP byte stream into whole PDUs (PS3.8 9.3: 1-byte type, 1 reserved, 4-byte big-endian PDU-length).
// Pure: the socket actor pushes chunks, the framer returns raw PDUs for decodePdu. Length limits are enforced
// from the 6-byte header alone, before any of the body is buffered, so a hostile length never costs memory.
import { AbortReason, PduType } from './pdu.types.ts';
import { PDU_HEADER_LENGTH, PduDecodeError, pduTypeName } from './pdu.ts';

/** Absolute ceiling on a P-DATA-TF when our maximum length is 0 ("no limit", PS3.8 D.1). */
export const PDU_HARD_CAP = 64 * 1024 * 1024;
/** Default ceiling on A-ASSOCIATE-RQ/AC PDU-length: real ones are a few KiB even with hundreds of contexts. */
export const DEFAULT_MAX_ASSOCIATE_PDU_LENGTH = 1024 * 1024;

export type PduFramerOptions = {
  /** Our maximum length received (bounds the PDU-length field of P-DATA-TF, as DCMTK compares it);
   *  0 = "no limit", i.e. PDU_HARD_CAP; larger values are clamped to PDU_HARD_CAP. */
  maxPduLength: number;
  /** Ceiling on A-ASSOCIATE-RQ/AC PDU-length; default 1 MiB. */
  maxAssociatePduLength?: number;
};

const CONSUMED = new Uint8Array(0);

export class PduFramer {
  readonly #maxPData: number;
  readonly #maxAssociate: number;
  /** Pending chunks; chunks before #first are consumed, #head is the read offset in chunks[#first]. */
  #chunks: Uint8Array[] = [];
  #first = 0;
  #head = 0;
  #buffered = 0;
  /** Total size (header included) of the PDU whose header has been read, or -1 while awaiting a header. */
  #need = -1;
  #failure: PduDecodeError | undefined;

  constructor(opts: PduFramerOptions) {
    const max = opts.maxPduLength;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxPduLength must be a non-negative integer, got ${max}`);
    this.#maxPData = max === 0 ? PDU_HARD_CAP : Math.min(max, PDU_HARD_CAP);
    this.#maxAssociate = opts.maxAssociatePduLength ?? DEFAULT_MAX_ASSOCIATE_PDU_LENGTH;
  }

  /** Bytes received but not yet returned as part of a complete PDU. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Feed bytes; returns the PDUs completed by them, in order. A returned PDU may be a view into a pushed chunk
   *  (no copy) when it lies within one, so callers must not reuse chunk memory. After a throw the stream is
   *  unusable (the association is aborted) and every later push throws the same error. */
  push(chunk: Uint8Array): Buffer[] {
    if (this.#failure) throw this.#failure;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Buffer[] = [];
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < PDU_HEADER_LENGTH) break;
        this.#need = PDU_HEADER_LENGTH + this.#checkHeader(this.#peekHeader());
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
    return out;
  }

  #peekHeader(): number[] {
    const h: number[] = [];
    let i = this.#first;
    let off = this.#head;
    while (h.length < PDU_HEADER_LENGTH) {
      const c = this.#chunks[i];
      while (off < c.length && h.length < PDU_HEADER_LENGTH) h.push(c[off++]);
      i++;
      off = 0;
    }
    return h;
  }

  /** Validates a header against the limits and returns its PDU-length. */
  #checkHeader(h: number[]): number {
    const type = h[0];
    const length = ((h[2] << 24) | (h[3] << 16) | (h[4] << 8) | h[5]) >>> 0;
    const name = pduTypeName(type);
    const reject = (reason: number, code: string, message: string): never => {
      this.#failure = new PduDecodeError(reason, code, message);
      throw this.#failure;
    };
    if (name === undefined) reject(AbortReason.UNRECOGNIZED_PDU, 'UNRECOGNIZED_PDU_TYPE', `unrecognized PDU type 0x${type.toString(16).padStart(2, '0')}`);
    if (type === PduType.P_DATA_TF) {
      // Exceeding the negotiated maximum makes the PDU-length an invalid parameter value (PS3.8 Table 9-26 reason 6).
      if (length > this.#maxPData) {
        reject(AbortReason.INVALID_PDU_PARAMETER_VALUE, 'PDU_TOO_LARGE', `P-DATA-TF PDU-length ${length} exceeds our maximum length ${this.#maxPData}`);
      }
    } else if (type === PduType.ASSOCIATE_RQ || type === PduType.ASSOCIATE_AC) {
      if (length > this.#maxAssociate) {
        reject(AbortReason.INVALID_PDU_PARAMETER_VALUE, 'PDU_TOO_LARGE', `${name} PDU-length ${length} exceeds the limit ${this.#maxAssociate}`);
      }
    } else if (length !== 4) {
      reject(AbortReason.INVALID_PDU_PARAMETER_VALUE, 'BAD_PDU_LENGTH', `${name} PDU-length must be 4, got ${length}`);
    }
    return length;
  }

  /** Removes and returns the next n buffered bytes: a view when they lie in one chunk, else one copy. */
  #take(n: number): Buffer {
    const c = this.#chunks[this.#first];
    let out: Buffer;
    if (c.length - this.#head >= n) {
      out = Buffer.from(c.buffer, c.byteOffset + this.#head, n);
      this.#head += n;
      if (this.#head === c.length) this.#advance();
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const cur = this.#chunks[this.#first];
        const k = Math.min(cur.length - this.#head, n - filled);
        out.set(cur.subarray(this.#head, this.#head + k), filled);
        filled += k;
        this.#head += k;
        if (this.#head === cur.length) this.#advance();
      }
    }
    this.#buffered -= n;
    return out;
  }

  /** Chunks the framer still references (for tests and inspection): only those not yet consumed. */
  get retainedChunks(): number {
    return this.#chunks.length - this.#first;
  }

  #advance(): void {
    // Release the consumed chunk now: the array itself is compacted only in bulk, and until then a
    // stream that never ends on a chunk boundary would keep up to 1024 socket chunks alive.
    this.#chunks[this.#first] = CONSUMED;
    this.#first++;
    this.#head = 0;
    // Drop consumed chunks in bulk so a long run of tiny chunks stays O(n) overall.
    if (this.#first === this.#chunks.length) {
      this.#chunks = [];
      this.#first = 0;
    } else if (this.#first >= 1024 && this.#first * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#first);
      this.#first = 0;
    }
  }
}
