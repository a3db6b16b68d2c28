// Streaming conversion of a dataset between the three native transfer syntaxes: Implicit VR
// Little Endian, Explicit VR Little Endian and Explicit VR Big Endian (PS3.5 7.1, A.1–A.3).
// Memory is one element header (≤ 12 bytes), one frame per open sequence/item and fewer than
// 8 carried bytes of a value being byte-swapped; values pass through in the pieces they arrive in.
//
// Decisions (all allowed by PS3.5):
// - Every sequence and item is written with undefined length (7.5.1, 7.5.2), so nothing must be
//   known in advance even though header sizes differ between Implicit (8) and Explicit (8/12).
// - Group length elements (gggg,0000) are dropped: they would be wrong after header sizes change
//   and recomputing them would need the whole group buffered (PS3.5 7.2: they are optional).
// - VR for Implicit input: the dcmjs data dictionary. Private creators (odd gggg,0010–00FF) are
//   LO; other private or unknown elements become UN with their bytes unchanged (6.2.2), as DCMTK
//   does. An undefined-length element in Implicit VR is a sequence (7.5.1) and is written as SQ.
//   Ambiguous dictionary VRs as DCMTK resolves them: "ox" (Pixel Data, Overlay Data) OW, which
//   is valid for any Bits Allocated (A.1, A.2); "xs" SS if Pixel Representation is 1, else US, but
//   LUT Descriptors always US; "lt" (LUT Data) OW; "up" UL.
// - A value too long for a 2-byte explicit length (> 65534 bytes with a short VR) is written as UN
//   with a 4-byte length, its bytes swapped per its real VR when the byte order changes.
// - UN of undefined length (an Implicit VR LE sequence, 6.2.2) keeps its Implicit VR LE content.
// - Encapsulated (compressed) and deflated syntaxes are out of scope: canConvert() is false. Deflated
//   is inflated/deflated around this converter (protocol/deflated.ts, actors/forward/deflate-stream.ts).
import { data } from 'dcmjs';
import { transferSyntax } from './uids.ts';
import { ALL_VRS, ITEM, ITEM_DELIMITER, LONG_VRS, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from './data-elements.ts';

export type Encoding = { explicitVr: boolean; littleEndian: boolean };

export type ConvertErrorCode = 'unsupported-syntax' | 'malformed' | 'truncated';

export class TransferSyntaxConvertError extends Error {
  readonly code: ConvertErrorCode;
  /** Offset in the input dataset where the problem was found. */
  readonly offset: number;
  constructor(code: ConvertErrorCode, message: string, offset: number) {
    super(message);
    this.name = 'TransferSyntaxConvertError';
    this.code = code;
    this.offset = offset;
  }
}

/** Byte-swap unit of the numeric VRs (PS3.5 7.3); AT is a pair of 16-bit numbers. */
const SWAP_UNIT: Readonly<Record<string, number>> = {
  US: 2, SS: 2, OW: 2, AT: 2, UL: 4, SL: 4, FL: 4, OF: 4, OL: 4, FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};

export function swapUnit(vr: string): number {
  return SWAP_UNIT[vr] ?? 0;
}

const NATIVE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);

/** True for any pair (including identical) among Implicit VR LE, Explicit VR LE and Explicit VR BE. */
export function canConvert(fromUid: string, toUid: string): boolean {
  return NATIVE.has(fromUid) && NATIVE.has(toUid);
}

export function encodingOf(uid: string): Encoding | undefined {
  const t = transferSyntax(uid);
  return t === undefined ? undefined : { explicitVr: t.explicitVr, littleEndian: t.littleEndian };
}

/** Context that disambiguates dictionary VRs: Pixel Representation (0028,0103) seen so far. */
export type VrContext = { pixelRepresentation?: number };

/**
 * The VR an element of Implicit VR input has, or 'UN' if unknown or private (creators are LO).
 * Group lengths are UL.
 */
export function dictionaryVr(tag: number, ctx: VrContext = {}): string {
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (element === 0) return 'UL';
  if (group % 2 === 1) return element >= 0x10 && element <= 0xff ? 'LO' : 'UN';
  const hex = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  const entry = data.DicomMetaDictionary.dictionary[`(${hex.slice(0, 4)},${hex.slice(4)})`];
  const vr = entry?.vr;
  if (vr === undefined) return 'UN';
  if (vr === 'ox') return 'OW';
  if (vr === 'xs') return ctx.pixelRepresentation === 1 && !entry!.name.endsWith('LUTDescriptor') ? 'SS' : 'US';
  if (vr === 'lt') return 'OW';
  if (vr === 'up') return 'UL';
  return ALL_VRS.has(vr) ? vr : 'UN';
}

const PIXEL_REPRESENTATION = 0x00280103;
const MAX_DEPTH = 256;

type Frame = {
  kind: 'sequence' | 'item';
  tag: number;
  /** Absolute input end offset for defined length, else -1. */
  end: number;
  /** Nearest defined end of this or an enclosing frame. */
  limit: number;
  input: Encoding;
  output: Encoding;
  /** Values seen in this item (an item is a dataset, e.g. an icon image with its own Pixel Representation). */
  ctx: VrContext;
};

/** Reverses every `unit`-byte group in place (callers pass a copy, never the input). */
function swapped(bytes: Uint8Array, unit: number): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (unit === 2) buf.swap16();
  else if (unit === 4) buf.swap32();
  else buf.swap64();
  return bytes;
}

function tagString(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

export class TransferSyntaxConverter {
  readonly #identity: boolean;
  readonly #input: Encoding;
  readonly #output: Encoding;
  readonly #stack: Frame[] = [];
  readonly #hdr = new Uint8Array(12);
  readonly #hdrView = new DataView(this.#hdr.buffer);
  #hdrLen = 0;
  #offset = 0;
  // The value being passed through: bytes left, how (copy, swap by unit, drop) and a swap carry.
  #remaining = 0;
  #unit = 0;
  #drop = false;
  readonly #carry = new Uint8Array(8);
  #carryLen = 0;
  // Pixel Representation values are captured on the way: they decide "xs" VRs.
  #capture = false;
  #captured: number[] = [];
  readonly #ctx: VrContext = {};
  #failed: TransferSyntaxConvertError | undefined;
  // Output: small pieces (headers, swapped values) accumulate here; big copies go out as views.
  #out: Uint8Array[] = [];
  #small = new Uint8Array(4096);
  #smallLen = 0;

  constructor(fromUid: string, toUid: string) {
    if (!canConvert(fromUid, toUid)) {
      throw new TransferSyntaxConvertError('unsupported-syntax', `cannot convert ${fromUid} to ${toUid}: only Implicit VR LE, Explicit VR LE and Explicit VR BE`, 0);
    }
    this.#input = encodingOf(fromUid)!;
    this.#output = encodingOf(toUid)!;
    this.#identity = fromUid === toUid;
  }

  /** Converts a piece of the input. Output chunks may share memory with `chunk`. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    if (this.#identity) {
      this.#offset += chunk.length;
      return chunk.length > 0 ? [chunk] : [];
    }
    try {
      this.#consume(chunk);
    } catch (e) {
      if (e instanceof TransferSyntaxConvertError) this.#failed = e;
      throw e;
    }
    return this.#takeOutput();
  }

  /** Flushes the rest; throws if the input ended inside an element or an open sequence/item. */
  end(): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    if (this.#identity) return [];
    const fail = (message: string) => {
      this.#failed = new TransferSyntaxConvertError('truncated', message, this.#offset);
      throw this.#failed;
    };
    if (this.#remaining > 0) fail(`input ends with ${this.#remaining} byte(s) of a value missing at offset ${this.#offset}`);
    if (this.#hdrLen > 0) fail(`input ends inside an element header at offset ${this.#offset}`);
    this.#closeFrames();
    const open = this.#stack.at(-1);
    if (open !== undefined) fail(`${open.kind} ${tagString(open.tag)} is not closed when the input ends at offset ${this.#offset}`);
    return this.#takeOutput();
  }

  #takeOutput(): Uint8Array[] {
    this.#flushSmall();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #flushSmall(): void {
    if (this.#smallLen === 0) return;
    this.#out.push(this.#small.slice(0, this.#smallLen));
    this.#smallLen = 0;
  }

  #emitSmall(bytes: Uint8Array): void {
    if (this.#smallLen + bytes.length > this.#small.length) this.#flushSmall();
    if (bytes.length > this.#small.length) {
      this.#out.push(bytes);
      return;
    }
    this.#small.set(bytes, this.#smallLen);
    this.#smallLen += bytes.length;
  }

  #emitView(view: Uint8Array): void {
    if (view.length < 256) {
      this.#emitSmall(view);
      return;
    }
    this.#flushSmall();
    this.#out.push(view);
  }

  #fail(message: string, offset = this.#offset): never {
    throw new TransferSyntaxConvertError('malformed', message, offset);
  }

  #mode(): { input: Encoding; output: Encoding } {
    return this.#stack.at(-1) ?? { input: this.#input, output: this.#output };
  }

  #consume(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - pos);
        this.#value(chunk.subarray(pos, pos + take));
        this.#remaining -= take;
        this.#offset += take;
        pos += take;
        if (this.#remaining === 0) this.#valueDone();
        continue;
      }
      if (this.#hdrLen === 0) this.#closeFrames();
      const target = this.#hdrLen >= 8 && this.#needsLongHeader() ? 12 : 8;
      while (this.#hdrLen < target && pos < n) this.#hdr[this.#hdrLen++] = chunk[pos++];
      if (this.#hdrLen < target) return;
      if (target === 8 && this.#needsLongHeader()) continue;
      const start = this.#offset;
      const size = this.#hdrLen;
      this.#offset += size;
      this.#hdrLen = 0;
      this.#onHeader(start, size);
    }
  }

  /** Defined-length items and sequences end by position: write their delimiters. */
  #closeFrames(): void {
    for (let top = this.#stack.at(-1); top !== undefined && top.end === this.#offset; top = this.#stack.at(-1)) {
      this.#stack.pop();
      this.#emitSmall(this.#delimiter(top.kind === 'item' ? ITEM_DELIMITER : SEQUENCE_DELIMITER, top.output));
    }
  }

  #tag(le: boolean): number {
    return ((this.#hdrView.getUint16(0, le) << 16) | this.#hdrView.getUint16(2, le)) >>> 0;
  }

  #needsLongHeader(): boolean {
    const top = this.#stack.at(-1);
    const input = top?.input ?? this.#input;
    if (!input.explicitVr || top?.kind === 'sequence') return false;
    if (this.#tag(input.littleEndian) >>> 16 === 0xfffe) return false;
    return LONG_VRS.has(String.fromCharCode(this.#hdr[4], this.#hdr[5]));
  }

  #delimiter(tag: number, enc: Encoding): Uint8Array {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    v.setUint16(0, tag >>> 16, enc.littleEndian);
    v.setUint16(2, tag & 0xffff, enc.littleEndian);
    v.setUint32(4, tag === ITEM ? UNDEFINED_LENGTH : 0, enc.littleEndian);
    return b;
  }

  #elementHeader(tag: number, vr: string, length: number, enc: Encoding): Uint8Array {
    const long = enc.explicitVr && LONG_VRS.has(vr);
    const b = new Uint8Array(!enc.explicitVr || !long ? 8 : 12);
    const v = new DataView(b.buffer);
    const le = enc.littleEndian;
    v.setUint16(0, tag >>> 16, le);
    v.setUint16(2, tag & 0xffff, le);
    if (!enc.explicitVr) {
      v.setUint32(4, length, le);
    } else {
      b[4] = vr.charCodeAt(0);
      b[5] = vr.charCodeAt(1);
      if (long) v.setUint32(8, length, le);
      else v.setUint16(6, length, le);
    }
    return b;
  }

  #onHeader(start: number, size: number): void {
    const top = this.#stack.at(-1);
    const { input, output } = this.#mode();
    const le = input.littleEndian;
    const tag = this.#tag(le);
    const limit = top?.limit ?? Infinity;
    if (start + size > limit) this.#fail(`header of ${tagString(tag)} at offset ${start} crosses the defined length ending at ${limit}`, start);
    if (top?.kind === 'sequence') {
      const length = this.#hdrView.getUint32(4, le);
      if (tag === SEQUENCE_DELIMITER && top.end < 0) {
        this.#stack.pop();
        this.#emitSmall(this.#delimiter(SEQUENCE_DELIMITER, output));
      } else if (tag === ITEM) {
        if (length !== UNDEFINED_LENGTH && start + size + length > limit) this.#fail(`item at offset ${start} runs past the defined length ending at ${limit}`, start);
        this.#emitSmall(this.#delimiter(ITEM, output));
        this.#open('item', tag, length === UNDEFINED_LENGTH ? -1 : start + size + length, input, output, start);
      } else {
        this.#fail(`expected an item in sequence ${tagString(top.tag)} but found ${tagString(tag)} at offset ${start}`, start);
      }
      return;
    }
    if (tag >>> 16 === 0xfffe) {
      if (tag === ITEM_DELIMITER && top !== undefined && top.end < 0) {
        this.#stack.pop();
        this.#emitSmall(this.#delimiter(ITEM_DELIMITER, output));
        return;
      }
      this.#fail(`unexpected ${tagString(tag)} at offset ${start}`, start);
    }
    let vr: string;
    let length: number;
    if (input.explicitVr) {
      vr = String.fromCharCode(this.#hdr[4], this.#hdr[5]);
      if (!ALL_VRS.has(vr)) this.#fail(`invalid VR ${JSON.stringify(vr)} for ${tagString(tag)} at offset ${start}`, start);
      length = size === 12 ? this.#hdrView.getUint32(8, le) : this.#hdrView.getUint16(6, le);
    } else {
      vr = dictionaryVr(tag, this.#vrContext());
      length = this.#hdrView.getUint32(4, le);
    }
    if (length === UNDEFINED_LENGTH) {
      if (input.explicitVr && vr === 'UN') {
        // PS3.5 6.2.2: the content is an Implicit VR LE sequence whatever the transfer syntax.
        const ile = { explicitVr: false, littleEndian: true };
        this.#emitSmall(this.#elementHeader(tag, 'UN', UNDEFINED_LENGTH, output));
        this.#open('sequence', tag, -1, ile, ile, start);
        return;
      }
      if (input.explicitVr && vr !== 'SQ') {
        this.#fail(`undefined length for VR ${vr} of ${tagString(tag)} at offset ${start} (encapsulated data is not convertible)`, start);
      }
      this.#emitSmall(this.#elementHeader(tag, 'SQ', UNDEFINED_LENGTH, output));
      this.#open('sequence', tag, -1, input, output, start);
      return;
    }
    const valueEnd = start + size + length;
    if (valueEnd > limit) this.#fail(`value of ${tagString(tag)} at offset ${start} runs past the defined length ending at ${limit}`, start);
    if (vr === 'SQ') {
      this.#emitSmall(this.#elementHeader(tag, 'SQ', UNDEFINED_LENGTH, output));
      this.#open('sequence', tag, valueEnd, input, output, start);
      return;
    }
    this.#unit = input.littleEndian !== output.littleEndian ? swapUnit(vr) : 0;
    this.#drop = (tag & 0xffff) === 0;
    this.#capture = tag === PIXEL_REPRESENTATION && length === 2;
    this.#captured = [];
    if (!this.#drop) {
      const outVr = output.explicitVr && !LONG_VRS.has(vr) && length > 0xffff ? 'UN' : vr;
      this.#emitSmall(this.#elementHeader(tag, outVr, length, output));
    }
    this.#remaining = length;
    this.#carryLen = 0;
    if (length === 0) this.#valueDone();
  }

  /** The current item's values, falling back to the top-level dataset's. */
  #vrContext(): VrContext {
    const own = this.#stack.at(-1)?.ctx ?? this.#ctx;
    return { pixelRepresentation: own.pixelRepresentation ?? this.#ctx.pixelRepresentation };
  }

  #open(kind: Frame['kind'], tag: number, end: number, input: Encoding, output: Encoding, start: number): void {
    if (this.#stack.length >= MAX_DEPTH) this.#fail(`sequences nested deeper than ${MAX_DEPTH} at offset ${start}`, start);
    const parentLimit = this.#stack.at(-1)?.limit ?? Infinity;
    this.#stack.push({ kind, tag, end, limit: end >= 0 ? Math.min(end, parentLimit) : parentLimit, input, output, ctx: {} });
  }

  /** Passes a piece of the current value through, swapping whole units and carrying the rest. */
  #value(piece: Uint8Array): void {
    if (this.#capture) for (const b of piece) this.#captured.push(b);
    if (this.#drop) return;
    const unit = this.#unit;
    if (unit === 0) {
      this.#emitView(piece);
      return;
    }
    let p = 0;
    if (this.#carryLen > 0) {
      // Complete the unit split by the previous piece first.
      const k = Math.min(unit - this.#carryLen, piece.length);
      this.#carry.set(piece.subarray(0, k), this.#carryLen);
      this.#carryLen += k;
      p = k;
      if (this.#carryLen < unit) return;
      this.#emitSmall(swapped(this.#carry.slice(0, unit), unit));
      this.#carryLen = 0;
    }
    const whole = piece.length - p - ((piece.length - p) % unit);
    if (whole > 0) this.#emitView(swapped(new Uint8Array(piece.subarray(p, p + whole)), unit));
    const rest = piece.subarray(p + whole);
    this.#carry.set(rest, 0);
    this.#carryLen = rest.length;
  }

  #valueDone(): void {
    // A trailing partial unit (an odd-sized numeric value, malformed) goes out unswapped.
    if (this.#carryLen > 0 && !this.#drop) this.#emitSmall(this.#carry.slice(0, this.#carryLen));
    this.#carryLen = 0;
    if (this.#capture && this.#captured.length === 2) {
      const le = this.#mode().input.littleEndian;
      const ctx = this.#stack.at(-1)?.ctx ?? this.#ctx;
      ctx.pixelRepresentation = le ? this.#captured[0] | (this.#captured[1] << 8) : (this.#captured[0] << 8) | this.#captured[1];
    }
    this.#capture = false;
  }
}
