// A streaming structural walker over an encoded DICOM dataset (PS3.5 7.1–7.5, A.4).
// It reads element headers only and skips values by counting, so memory is one element
// header (≤ 12 bytes) plus one small frame per open sequence/item, whatever the dataset size.
// It finds the first top-level Pixel Data element and tells, at end(), whether the bytes form
// a complete dataset. It never throws on bad input: it records the first problem and then
// only counts bytes.
//
// Scope of validation: explicit-VR SQ elements (defined or undefined length), undefined-length
// elements in Implicit VR (which can only be sequences, PS3.5 7.5.1), UN of undefined length
// (a sequence whose value is Implicit VR LE, PS3.5 6.2.2) and encapsulated Pixel Data
// (PS3.5 A.4) are descended into. A defined-length element of unknown VR in Implicit VR is
// skipped as a whole, which is still exact for framing because its length covers its content.
import { datasetEncoding } from './uids.ts';
import { ALL_VRS, DOUBLE_PIXEL_DATA, FLOAT_PIXEL_DATA, ITEM, ITEM_DELIMITER, LONG_VRS, PIXEL_DATA, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from './data-elements.ts';

export type WalkResult = {
  complete: boolean;
  problem?: string;
  /** Bytes before the top-level Pixel Data element, or the whole dataset if it has none. */
  headerLength: number;
  /** Offset of the first top-level (7FE0,0010), (7FE0,0008) or (7FE0,0009) element header. */
  pixelDataOffset?: number;
};

export type WalkerOptions = {
  explicitVr: boolean;
  littleEndian: boolean;
  /** Stop walking at the top-level Pixel Data element: end() then vouches only for the bytes before it. */
  stopAtPixelData?: boolean;
};

// Deep SR content trees stay far below this; it only bounds memory against hostile input.
const MAX_DEPTH = 256;
/** LONG_VRS by their two bytes (first << 8 | second): checked for every element header. */
const LONG_VR_CODES = new Set([...LONG_VRS].map((vr) => (vr.charCodeAt(0) << 8) | vr.charCodeAt(1)));

/** An open sequence, item or encapsulated pixel data, with the encoding its contents use. */
type Frame = {
  kind: 'sequence' | 'item' | 'fragments';
  tag: number;
  start: number;
  /** Absolute end offset for defined length, or -1. */
  end: number;
  /** Nearest end imposed by this frame or any enclosing defined-length frame. */
  limit: number;
  explicitVr: boolean;
  littleEndian: boolean;
};

function tagString(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

export class DatasetWalker {
  /** The top level's encoding, one object (asked for at every element header). */
  readonly #topMode: { explicitVr: boolean; littleEndian: boolean };
  readonly #stopAtPixelData: boolean;
  readonly #stack: Frame[] = [];
  readonly #hdr = new Uint8Array(12);
  readonly #view = new DataView(this.#hdr.buffer);
  #hdrLen = 0;
  #offset = 0;
  #skip = 0;
  #skipTag = 0;
  #skipStart = 0;
  #problem: string | undefined;
  #stopped = false;
  #pixelDataOffset: number | undefined;

  /** A walker for a dataset encoded in transfer syntax `uid` (its VR explicitness and byte order). */
  static forSyntax(uid: string, opts: Omit<WalkerOptions, 'explicitVr' | 'littleEndian'> = {}): DatasetWalker {
    return new DatasetWalker({ ...datasetEncoding(uid), ...opts });
  }

  constructor(opts: WalkerOptions) {
    this.#topMode = { explicitVr: opts.explicitVr, littleEndian: opts.littleEndian };
    this.#stopAtPixelData = opts.stopAtPixelData ?? false;
  }

  /** Every byte pushed so far, including a partial element header held back. */
  get bytesSeen(): number {
    return this.#offset + this.#hdrLen;
  }

  /** Known as soon as the Pixel Data element header has arrived: the caller may stop keeping the prefix. */
  get pixelDataOffset(): number | undefined {
    return this.#pixelDataOffset;
  }

  /** The first problem found so far, if any. */
  get problem(): string | undefined {
    return this.#problem;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.#problem !== undefined || this.#stopped) {
        this.#offset += n - pos;
        return;
      }
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, n - pos);
        this.#skip -= take;
        pos += take;
        this.#offset += take;
        continue;
      }
      if (this.#hdrLen === 0 && !this.#closeFrames()) continue;
      // Every header is at least 8 bytes; an explicit-VR element with a long VR needs 12.
      const target = this.#hdrLen >= 8 && this.#needsLongHeader() ? 12 : 8;
      while (this.#hdrLen < target && pos < n) this.#hdr[this.#hdrLen++] = chunk[pos++];
      if (this.#hdrLen < target) return;
      if (target === 8 && this.#needsLongHeader()) continue;
      const headerStart = this.#offset;
      this.#offset += this.#hdrLen;
      this.#hdrLen = 0;
      this.#onHeader(headerStart, this.#offset - headerStart);
    }
  }

  end(): WalkResult {
    const headerLength = this.#pixelDataOffset ?? this.bytesSeen;
    const result = (problem?: string): WalkResult => {
      const r: WalkResult = { complete: problem === undefined, headerLength };
      if (problem !== undefined) r.problem = problem;
      if (this.#pixelDataOffset !== undefined) r.pixelDataOffset = this.#pixelDataOffset;
      return r;
    };
    if (this.#problem !== undefined) return result(this.#problem);
    if (this.#stopped) return result();
    if (this.#skip > 0) {
      return result(
        `truncated: value of ${tagString(this.#skipTag)} at offset ${this.#skipStart} lacks ${this.#skip} byte(s); data ends at ${this.#offset}`,
      );
    }
    if (this.#hdrLen > 0) {
      return result(`truncated inside an element header at offset ${this.#offset} (${this.#hdrLen} byte(s) of it present)`);
    }
    this.#closeFrames();
    if (this.#problem !== undefined) return result(this.#problem);
    const open = this.#stack[this.#stack.length - 1];
    if (open !== undefined) {
      const what = open.kind === 'fragments' ? 'encapsulated pixel data' : open.kind;
      return open.end < 0
        ? result(`undefined-length ${what} ${tagString(open.tag)} opened at offset ${open.start} never closed; data ends at ${this.#offset}`)
        : result(`${what} ${tagString(open.tag)} at offset ${open.start} has a defined length ending at ${open.end} but data ends at ${this.#offset}`);
    }
    return result();
  }

  #fail(problem: string): void {
    this.#problem ??= problem;
  }

  #mode(): { explicitVr: boolean; littleEndian: boolean } {
    const top = this.#stack[this.#stack.length - 1];
    return top ?? this.#topMode;
  }

  #limit(): number {
    const top = this.#stack[this.#stack.length - 1];
    return top === undefined ? Infinity : top.limit;
  }

  /** Pops defined-length frames whose end is reached. False if a problem was found. */
  #closeFrames(): boolean {
    for (let top = this.#stack.at(-1); top !== undefined; top = this.#stack.at(-1)) {
      if (top.end === this.#offset) {
        this.#stack.pop();
        continue;
      }
      if (top.end < 0 && top.limit === this.#offset) {
        this.#fail(
          `undefined-length ${top.kind} ${tagString(top.tag)} opened at offset ${top.start} not closed before the enclosing defined length ends at ${top.limit}`,
        );
        return false;
      }
      break;
    }
    return true;
  }

  #tagAt(littleEndian: boolean): number {
    const v = this.#view;
    return ((v.getUint16(0, littleEndian) << 16) | v.getUint16(2, littleEndian)) >>> 0;
  }

  /** With ≥ 8 header bytes present: is this an explicit-VR element with a 12-byte header? */
  #needsLongHeader(): boolean {
    const mode = this.#mode();
    if (!mode.explicitVr) return false;
    const top = this.#stack[this.#stack.length - 1];
    if (top !== undefined && top.kind !== 'item') return false; // only items/delimiters there
    const tag = this.#tagAt(mode.littleEndian);
    if (tag >>> 16 === 0xfffe) return false;
    return LONG_VR_CODES.has((this.#hdr[4] << 8) | this.#hdr[5]);
  }

  #onHeader(start: number, headerSize: number): void {
    const { explicitVr, littleEndian } = this.#mode();
    const top = this.#stack[this.#stack.length - 1];
    const v = this.#view;
    const tag = this.#tagAt(littleEndian);
    const limit = this.#limit();
    if (start + headerSize > limit) {
      this.#fail(`header of ${tagString(tag)} at offset ${start} crosses the defined length ending at ${limit}`);
      return;
    }
    if (top !== undefined && top.kind !== 'item') {
      this.#onSequenceMember(top, tag, v.getUint32(4, littleEndian), start, limit);
      return;
    }
    if (tag >>> 16 === 0xfffe) {
      if (tag === ITEM_DELIMITER && top !== undefined && top.end < 0) {
        if (v.getUint32(4, littleEndian) !== 0) {
          this.#fail(`item delimiter at offset ${start} has non-zero length`);
          return;
        }
        this.#stack.pop();
        return;
      }
      const where = top === undefined ? 'at top level' : 'inside a defined-length item';
      this.#fail(`unexpected ${tagString(tag)} at offset ${start} ${where}`);
      return;
    }
    let vr = '';
    let length: number;
    if (explicitVr) {
      vr = String.fromCharCode(this.#hdr[4], this.#hdr[5]);
      if (!ALL_VRS.has(vr)) {
        this.#fail(`invalid VR ${JSON.stringify(vr)} for ${tagString(tag)} at offset ${start}`);
        return;
      }
      length = headerSize === 12 ? v.getUint32(8, littleEndian) : v.getUint16(6, littleEndian);
    } else {
      length = v.getUint32(4, littleEndian);
    }
    const valueStart = start + headerSize;
    if (top === undefined && this.#pixelDataOffset === undefined && (tag === PIXEL_DATA || tag === FLOAT_PIXEL_DATA || tag === DOUBLE_PIXEL_DATA)) {
      this.#pixelDataOffset = start;
      if (this.#stopAtPixelData) {
        this.#stopped = true;
        return;
      }
    }
    if (length === UNDEFINED_LENGTH) {
      let frame: Frame['kind'];
      let inner = { explicitVr, littleEndian };
      if (tag === PIXEL_DATA && vr !== 'SQ') frame = 'fragments';
      else if (!explicitVr || vr === 'SQ') frame = 'sequence';
      else if (vr === 'UN') {
        frame = 'sequence';
        inner = { explicitVr: false, littleEndian: true };
      } else {
        this.#fail(`undefined length is not allowed for VR ${vr} of ${tagString(tag)} at offset ${start}`);
        return;
      }
      this.#open(frame, tag, start, -1, limit, inner);
      return;
    }
    if (valueStart + length > limit) {
      this.#fail(`value of ${tagString(tag)} at offset ${start} (length ${length}) runs past the defined length ending at ${limit}`);
      return;
    }
    if (vr === 'SQ' && length > 0) {
      this.#open('sequence', tag, start, valueStart + length, limit, { explicitVr, littleEndian });
      return;
    }
    this.#skipValue(tag, start, length);
  }

  /** Inside a sequence only items and the sequence delimiter may appear; in encapsulated pixel data, fragments. */
  #onSequenceMember(top: Frame, tag: number, length: number, start: number, limit: number): void {
    const valueStart = start + 8;
    if (tag === SEQUENCE_DELIMITER) {
      if (top.end >= 0) {
        this.#fail(`sequence delimiter at offset ${start} inside defined-length sequence ${tagString(top.tag)}`);
      } else if (length !== 0) {
        this.#fail(`sequence delimiter at offset ${start} has non-zero length`);
      } else {
        this.#stack.pop();
      }
      return;
    }
    if (tag !== ITEM) {
      const what = top.kind === 'fragments' ? 'encapsulated pixel data' : `sequence ${tagString(top.tag)}`;
      this.#fail(`expected an item in ${what} but found ${tagString(tag)} at offset ${start}`);
      return;
    }
    if (top.kind === 'fragments') {
      if (length === UNDEFINED_LENGTH) {
        this.#fail(`pixel data fragment at offset ${start} has undefined length (PS3.5 A.4)`);
      } else if (valueStart + length > limit) {
        this.#fail(`pixel data fragment at offset ${start} (length ${length}) runs past the defined length ending at ${limit}`);
      } else {
        this.#skipValue(tag, start, length);
      }
      return;
    }
    if (length === UNDEFINED_LENGTH) {
      this.#open('item', tag, start, -1, limit, top);
    } else if (valueStart + length > limit) {
      this.#fail(`item at offset ${start} (length ${length}) runs past the defined length ending at ${limit}`);
    } else if (length > 0) {
      this.#open('item', tag, start, valueStart + length, limit, top);
    }
  }

  #open(kind: Frame['kind'], tag: number, start: number, end: number, limit: number, mode: { explicitVr: boolean; littleEndian: boolean }): void {
    if (this.#stack.length >= MAX_DEPTH) {
      this.#fail(`sequences nested deeper than ${MAX_DEPTH} at offset ${start}`);
      return;
    }
    this.#stack.push({
      kind,
      tag,
      start,
      end,
      limit: end >= 0 ? Math.min(end, limit) : limit,
      explicitVr: mode.explicitVr,
      littleEndian: mode.littleEndian,
    });
  }

  #skipValue(tag: number, start: number, length: number): void {
    this.#skip = length;
    this.#skipTag = tag;
    this.#skipStart = start;
  }
}
