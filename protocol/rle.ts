// RLE Lossless decoding (PS3.5 Annex G) of one frame: a 64-byte header (number of segments and
// up to 15 segment offsets, little endian, G.5) then PackBits-coded byte segments (G.3.1). Each
// sample is split into bytes, most significant byte first, one segment per byte per sample
// (G.2): for 16-bit RGB the segments are R-high, R-low, G-high, G-low, B-high, B-low.
// Output is native pixel data: little endian, color-by-pixel (Planar Configuration 0).

export class RleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RleError';
  }
}

export type RleImage = {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** 8, 16 or 32: a multiple of 8 (PS3.5 G.2 splits samples into whole bytes). */
  bitsAllocated: number;
};

const HEADER_LENGTH = 64;
const MAX_SEGMENTS = 15;

/** The segment offsets of an RLE frame header (G.5). */
export function rleSegmentOffsets(frame: Uint8Array): number[] {
  if (frame.length < HEADER_LENGTH) throw new RleError(`RLE frame of ${frame.length} bytes is shorter than its 64-byte header (PS3.5 G.5)`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = dv.getUint32(0, true);
  if (count < 1 || count > MAX_SEGMENTS) throw new RleError(`RLE header announces ${count} segments; 1 to 15 are allowed (PS3.5 G.5)`);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const off = dv.getUint32(4 + 4 * i, true);
    const previous = offsets.length > 0 ? offsets[offsets.length - 1] : HEADER_LENGTH - 1;
    if (off < HEADER_LENGTH || off > frame.length || off <= previous) {
      throw new RleError(`RLE segment ${i + 1} offset ${off} is outside the frame (${frame.length} bytes) or out of order`);
    }
    offsets.push(off);
  }
  return offsets;
}

/**
 * Decodes one PackBits segment (G.3.1) into `out` at positions start, start+stride, ...
 * (`count` bytes). Returns how many bytes the segment produced, capped at `count`: encoders may
 * pad a segment to even length, so extra output is ignored.
 */
export function decodeRleSegment(segment: Uint8Array, out: Uint8Array, start: number, stride: number, count: number): number {
  let produced = 0;
  let pos = start;
  let i = 0;
  const n = segment.length;
  while (i < n && produced < count) {
    const header = segment[i++];
    if (header < 128) {
      // Literal run: the next header + 1 bytes as they are.
      let len = header + 1;
      if (i + len > n) len = n - i; // truncated literal: decode what is there, then report short
      if (len > count - produced) len = count - produced;
      for (let k = 0; k < len; k++) {
        out[pos] = segment[i + k];
        pos += stride;
      }
      i += header + 1;
      produced += len;
    } else if (header > 128) {
      // Replicate run: the next byte 257 - header times (header as int8 is -1..-127).
      if (i >= n) break;
      const value = segment[i++];
      let len = 257 - header;
      if (len > count - produced) len = count - produced;
      for (let k = 0; k < len; k++) {
        out[pos] = value;
        pos += stride;
      }
      produced += len;
    }
    // 128 (-128): no operation.
  }
  return produced;
}

/** Native little-endian, color-by-pixel bytes of one RLE frame. Throws RleError. */
export function decodeRleFrame(frame: Uint8Array, image: RleImage): Uint8Array {
  const { rows, columns, samplesPerPixel, bitsAllocated } = image;
  if (bitsAllocated % 8 !== 0 || bitsAllocated < 8 || bitsAllocated > 64) {
    throw new RleError(`RLE needs Bits Allocated a multiple of 8 (PS3.5 G.2); got ${bitsAllocated}`);
  }
  const bytesPerSample = bitsAllocated / 8;
  const expected = samplesPerPixel * bytesPerSample;
  const offsets = rleSegmentOffsets(frame);
  if (offsets.length !== expected) {
    throw new RleError(
      `RLE frame has ${offsets.length} segments; ${samplesPerPixel} sample(s) of ${bitsAllocated} bits need ${expected} (PS3.5 G.2)`,
    );
  }
  const pixels = rows * columns;
  const pixelStride = samplesPerPixel * bytesPerSample;
  const out = new Uint8Array(pixels * pixelStride);
  for (let s = 0; s < offsets.length; s++) {
    const sample = Math.floor(s / bytesPerSample);
    const byteFromMsb = s % bytesPerSample;
    // Little endian: the most significant byte goes last within the sample.
    const start = sample * bytesPerSample + (bytesPerSample - 1 - byteFromMsb);
    const end = s + 1 < offsets.length ? offsets[s + 1] : frame.length;
    const produced = decodeRleSegment(frame.subarray(offsets[s], end), out, start, pixelStride, pixels);
    if (produced < pixels) throw new RleError(`RLE segment ${s + 1} decodes to ${produced} bytes; ${rows}x${columns} pixels need ${pixels}`);
  }
  return out;
}
