import test from 'ava';
import fc from 'fast-check';
import { rmSync } from 'node:fs';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { framesOf, readEncapsulatedPixelData } from '../../protocol/encapsulated.ts';
import { decodeRleFrame, decodeRleSegment, RleError, rleSegmentOffsets } from '../../protocol/rle.ts';
import { datasetAndSyntax, dcmtk, nativeInstance, write } from '../helpers/pixel-images.ts';
import type { ImageSpec } from '../helpers/pixel-images.ts';
import { tempDir } from '../helpers/processes.ts';

/** PackBits (PS3.5 G.3.1) as an encoder might write it: runs of 2+ replicate, the rest literal. */
function packBits(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    let run = 1;
    while (i + run < bytes.length && run < 128 && bytes[i + run] === bytes[i]) run++;
    if (run >= 2) {
      out.push(257 - run, bytes[i]);
      i += run;
      continue;
    }
    let lit = 1;
    while (i + lit < bytes.length && lit < 128 && !(i + lit + 1 < bytes.length && bytes[i + lit] === bytes[i + lit + 1])) lit++;
    out.push(lit - 1, ...bytes.subarray(i, i + lit));
    i += lit;
  }
  if (out.length % 2 === 1) out.push(0x80); // even segment, padded with a no-op
  return Uint8Array.from(out);
}

/** An RLE frame from native little-endian, colour-by-pixel samples (the inverse of decodeRleFrame). */
function encodeRleFrame(native: Uint8Array, spp: number, bytesPerSample: number): Uint8Array {
  const pixels = native.length / (spp * bytesPerSample);
  const segments: Uint8Array[] = [];
  for (let s = 0; s < spp; s++) {
    for (let b = bytesPerSample - 1; b >= 0; b--) {
      const plane = new Uint8Array(pixels);
      for (let p = 0; p < pixels; p++) plane[p] = native[(p * spp + s) * bytesPerSample + b];
      segments.push(packBits(plane));
    }
  }
  const header = new Uint8Array(64);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, segments.length, true);
  let at = 64;
  segments.forEach((seg, i) => {
    dv.setUint32(4 + 4 * i, at, true);
    at += seg.length;
  });
  return Buffer.concat([header, ...segments]);
}

test('PackBits: literal runs, replicate runs and the -128 no-op (PS3.5 G.3.1)', (t) => {
  const out = new Uint8Array(9);
  // literal of 3, replicate 0x07 four times, no-op, literal of 2
  const n = decodeRleSegment(Uint8Array.of(2, 1, 2, 3, 0xfd, 7, 0x80, 1, 9, 8), out, 0, 1, 9);
  t.is(n, 9);
  t.deepEqual([...out], [1, 2, 3, 7, 7, 7, 7, 9, 8]);
});

test('PackBits: output beyond the expected count (segment padding) is ignored; stride places bytes', (t) => {
  const out = new Uint8Array(6);
  const n = decodeRleSegment(Uint8Array.of(0xfe, 5, 0xfe, 6), out, 1, 2, 3);
  t.is(n, 3);
  t.deepEqual([...out], [0, 5, 0, 5, 0, 5]);
});

test('round trip: any image through an RLE encoder decodes to the same native bytes', (t) => {
  fc.assert(
    fc.property(
      fc.record({ rows: fc.integer({ min: 1, max: 9 }), columns: fc.integer({ min: 1, max: 9 }), spp: fc.constantFrom(1, 3), bytes: fc.constantFrom(1, 2) }),
      fc.infiniteStream(fc.oneof(fc.constant(0), fc.constant(0xff), fc.integer({ min: 0, max: 255 }))),
      ({ rows, columns, spp, bytes }, stream) => {
        const native = Uint8Array.from(stream.take(rows * columns * spp * bytes));
        const frame = encodeRleFrame(native, spp, bytes);
        const decoded = decodeRleFrame(frame, { rows, columns, samplesPerPixel: spp, bitsAllocated: 8 * bytes });
        t.deepEqual(Buffer.from(decoded), Buffer.from(native));
      },
    ),
  );
});

test('16-bit samples: segment 1 holds the high bytes, written last in little endian', (t) => {
  const frame = encodeRleFrame(Uint8Array.of(0x34, 0x12, 0x78, 0x56), 1, 2);
  t.deepEqual(rleSegmentOffsets(frame), [64, 64 + 4]);
  // High-byte segment first: literal 0x12, 0x56 (+ pad), then low bytes.
  t.deepEqual([...frame.subarray(64, 68)], [1, 0x12, 0x56, 0x80]);
  t.deepEqual([...decodeRleFrame(frame, { rows: 1, columns: 2, samplesPerPixel: 1, bitsAllocated: 16 })], [0x34, 0x12, 0x78, 0x56]);
});

test('bad headers and short segments are RleErrors', (t) => {
  const header = (count: number, ...offsets: number[]) => {
    const h = new Uint8Array(80);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, count, true);
    offsets.forEach((o, i) => dv.setUint32(4 + 4 * i, o, true));
    return h;
  };
  const image = { rows: 2, columns: 2, samplesPerPixel: 1, bitsAllocated: 8 };
  t.throws(() => decodeRleFrame(new Uint8Array(10), image), { instanceOf: RleError, message: /shorter than its 64-byte header/ });
  t.throws(() => decodeRleFrame(header(0), image), { instanceOf: RleError, message: /0 segments/ });
  t.throws(() => decodeRleFrame(header(16), image), { instanceOf: RleError, message: /16 segments/ });
  t.throws(() => decodeRleFrame(header(2, 64, 64), { ...image, bitsAllocated: 16 }), { instanceOf: RleError, message: /out of order/ });
  t.throws(() => decodeRleFrame(header(1, 200), image), { instanceOf: RleError, message: /outside the frame/ });
  t.throws(() => decodeRleFrame(header(2, 64, 70), image), { instanceOf: RleError, message: /2 segments; 1 sample/ });
  const short = header(1, 64);
  short.set([0xfe, 1], 64); // 3 bytes, 4 needed (rest of the buffer is zero: literal runs of 1 byte)
  t.throws(() => decodeRleFrame(short.subarray(0, 66), image), { instanceOf: RleError, message: /decodes to 3 bytes/ });
  t.throws(() => decodeRleFrame(header(1, 64), { ...image, bitsAllocated: 12 }), { instanceOf: RleError, message: /multiple of 8/ });
});

const dir = tempDir('rle-test-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

for (const spec of [
  { rows: 17, columns: 23, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 2 },
  { rows: 16, columns: 21, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, frames: 1 },
] as ImageSpec[]) {
  test(`DCMTK dcmcrle frames (${spec.samplesPerPixel} x ${spec.bitsAllocated}-bit) decode to the source pixels`, async (t) => {
    const name = `rle-${spec.samplesPerPixel}-${spec.bitsAllocated}`;
    const { file, pixels } = nativeInstance(spec);
    write(dir, `${name}.dcm`, file);
    const { dataset } = datasetAndSyntax(await dcmtk('dcmcrle', [], dir, `${name}.dcm`, `${name}-rle.dcm`));
    const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
    w.push(dataset);
    const frames = framesOf(readEncapsulatedPixelData(dataset, w.end().pixelDataOffset!), spec.frames);
    const decoded = Buffer.concat(frames.map((f) => decodeRleFrame(f, spec)));
    t.deepEqual(decoded, Buffer.from(pixels));
  });
}
