// Encapsulated Pixel Data (PS3.5 A.4): an undefined-length (7FE0,0010) element holding a Basic
// Offset Table item, then fragment items, then a sequence delimiter. This file reads the items
// of a dataset in Explicit VR Little Endian (every encapsulated syntax) and groups fragments
// into frames:
// - one frame: all fragments;
// - a Basic Offset Table (or an Extended Offset Table, A.4 and PS3.3 C.7.6.3.1.8), whose offsets
//   count from the first byte of the first fragment item after the Basic Offset Table;
// - an empty table and as many fragments as frames: one fragment per frame;
// - otherwise fragments that begin a codestream (JPEG SOI, J2K SOC, as the caller tells) start
//   a frame, as A.4 requires each frame to start a new fragment.
import { ITEM, PIXEL_DATA, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from './data-elements.ts';

export class EncapsulatedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncapsulatedError';
  }
}

export type Fragment = {
  /** From the first byte of the first fragment item's tag (the Basic Offset Table's reference point). */
  offset: number;
  bytes: Uint8Array;
};

export type EncapsulatedPixelData = {
  /** Basic Offset Table entries (empty if the table item has no value). */
  offsetTable: number[];
  fragments: Fragment[];
  /** Offset in the dataset just after the sequence delimiter. */
  end: number;
};


function tagAt(dv: DataView, pos: number): number {
  return ((dv.getUint16(pos, true) << 16) | dv.getUint16(pos + 2, true)) >>> 0;
}

/** Reads the encapsulated Pixel Data element starting at `offset` (its tag). Fragments are views into `dataset`. */
export function readEncapsulatedPixelData(dataset: Uint8Array, offset: number): EncapsulatedPixelData {
  const dv = new DataView(dataset.buffer, dataset.byteOffset, dataset.byteLength);
  if (offset + 12 > dataset.length) throw new EncapsulatedError(`Pixel Data header at offset ${offset} runs past the end of the dataset`);
  if (tagAt(dv, offset) !== PIXEL_DATA) throw new EncapsulatedError(`no Pixel Data element at offset ${offset}`);
  const vr = String.fromCharCode(dataset[offset + 4], dataset[offset + 5]);
  if (dv.getUint32(offset + 8, true) !== UNDEFINED_LENGTH || (vr !== 'OB' && vr !== 'OW')) {
    throw new EncapsulatedError(`Pixel Data at offset ${offset} is not encapsulated (VR ${vr}, defined length); PS3.5 A.4 needs OB of undefined length`);
  }
  let pos = offset + 12;
  const items: { start: number; bytes: Uint8Array }[] = [];
  for (;;) {
    if (pos + 8 > dataset.length) throw new EncapsulatedError(`encapsulated Pixel Data not closed by a sequence delimiter before the end (offset ${pos})`);
    const tag = tagAt(dv, pos);
    const length = dv.getUint32(pos + 4, true);
    if (tag === SEQUENCE_DELIMITER) {
      pos += 8;
      break;
    }
    if (tag !== ITEM) throw new EncapsulatedError(`expected a fragment item in encapsulated Pixel Data at offset ${pos}`);
    if (length === UNDEFINED_LENGTH || pos + 8 + length > dataset.length) {
      throw new EncapsulatedError(`fragment at offset ${pos} has undefined length or runs past the end of the dataset (PS3.5 A.4)`);
    }
    items.push({ start: pos, bytes: dataset.subarray(pos + 8, pos + 8 + length) });
    pos += 8 + length;
  }
  const [bot, ...rest] = items;
  if (bot === undefined) throw new EncapsulatedError('encapsulated Pixel Data has no Basic Offset Table item (PS3.5 A.4)');
  if (bot.bytes.length % 4 !== 0) throw new EncapsulatedError(`Basic Offset Table of ${bot.bytes.length} bytes is not a list of 32-bit offsets`);
  const botView = new DataView(bot.bytes.buffer, bot.bytes.byteOffset, bot.bytes.byteLength);
  const offsetTable: number[] = [];
  for (let i = 0; i < bot.bytes.length; i += 4) offsetTable.push(botView.getUint32(i, true));
  const first = rest.length > 0 ? rest[0].start : pos;
  return { offsetTable, fragments: rest.map((f) => ({ offset: f.start - first, bytes: f.bytes })), end: pos };
}

/** Extended Offset Table (7FE0,0001) values: 64-bit little-endian offsets (PS3.3 C.7.6.3.1.8). */
export function parseExtendedOffsetTable(value: Uint8Array): number[] {
  if (value.length % 8 !== 0) throw new EncapsulatedError(`Extended Offset Table of ${value.length} bytes is not a list of 64-bit offsets`);
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out: number[] = [];
  for (let i = 0; i < value.length; i += 8) {
    const v = dv.getBigUint64(i, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EncapsulatedError(`Extended Offset Table entry ${v} is too large`);
    out.push(Number(v));
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function byOffsets(fragments: Fragment[], offsets: number[], numberOfFrames: number, what: string): Uint8Array[] {
  if (offsets.length !== numberOfFrames) {
    throw new EncapsulatedError(`${what} has ${offsets.length} entries but Number of Frames is ${numberOfFrames}`);
  }
  const index = new Map(fragments.map((f, i) => [f.offset, i]));
  const starts = offsets.map((o, i) => {
    const at = index.get(o);
    if (at === undefined) throw new EncapsulatedError(`${what} entry ${i} (${o}) does not point at a fragment`);
    return at;
  });
  return starts.map((s, i) => {
    const e = i + 1 < starts.length ? starts[i + 1] : fragments.length;
    if (e <= s) throw new EncapsulatedError(`${what} entries are not ascending at entry ${i}`);
    return concat(fragments.slice(s, e).map((f) => f.bytes));
  });
}

export type FrameSplitOptions = {
  /** Extended Offset Table offsets, if the dataset has one (the Basic Offset Table is then empty). */
  extendedOffsetTable?: number[];
  /** Whether a fragment begins a new codestream; used when no table says where frames start. */
  startsFrame?: (fragment: Uint8Array) => boolean;
};

/** The compressed bytes of each frame (fragments of one frame concatenated). Throws EncapsulatedError. */
export function framesOf(pixelData: EncapsulatedPixelData, numberOfFrames: number, opts: FrameSplitOptions = {}): Uint8Array[] {
  const { fragments, offsetTable } = pixelData;
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1) throw new EncapsulatedError(`invalid Number of Frames ${numberOfFrames}`);
  if (fragments.length === 0) throw new EncapsulatedError('encapsulated Pixel Data has no fragments');
  if (numberOfFrames === 1) return [concat(fragments.map((f) => f.bytes))];
  if (fragments.length < numberOfFrames) {
    throw new EncapsulatedError(`${fragments.length} fragment(s) cannot hold ${numberOfFrames} frames (each frame starts a fragment, PS3.5 A.4)`);
  }
  if (offsetTable.length > 0) return byOffsets(fragments, offsetTable, numberOfFrames, 'Basic Offset Table');
  if (opts.extendedOffsetTable !== undefined) return byOffsets(fragments, opts.extendedOffsetTable, numberOfFrames, 'Extended Offset Table');
  if (fragments.length === numberOfFrames) return fragments.map((f) => f.bytes);
  const starts = opts.startsFrame === undefined ? [] : fragments.flatMap((f, i) => (opts.startsFrame!(f.bytes) ? [i] : []));
  if (starts.length !== numberOfFrames || starts[0] !== 0) {
    throw new EncapsulatedError(
      `cannot tell where the ${numberOfFrames} frames start among ${fragments.length} fragments: the offset table is empty` +
        (opts.startsFrame === undefined ? '' : ` and ${starts.length} fragment(s) begin a codestream`),
    );
  }
  return byOffsets(fragments, starts.map((i) => fragments[i].offset), numberOfFrames, 'codestream starts');
}

/** JPEG (10918-1), JPEG-LS (14495-1): SOI marker. */
export function startsJpeg(fragment: Uint8Array): boolean {
  return fragment.length >= 2 && fragment[0] === 0xff && fragment[1] === 0xd8;
}

/** JPEG 2000 codestream (15444-1 A.4.1): SOC then SIZ. */
export function startsJ2k(fragment: Uint8Array): boolean {
  return fragment.length >= 4 && fragment[0] === 0xff && fragment[1] === 0x4f && fragment[2] === 0xff && fragment[3] === 0x51;
}
