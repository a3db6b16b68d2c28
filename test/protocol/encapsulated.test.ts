import test from 'ava';
import fc from 'fast-check';
import {
  EncapsulatedError,
  framesOf,
  parseExtendedOffsetTable,
  readEncapsulatedPixelData,
  startsJ2k,
  startsJpeg,
} from '../../protocol/encapsulated.ts';
import { encapsulatedDataset, offsetsOf } from '../helpers/pixel-images.ts';
import type { Element } from '../helpers/dicom-files.ts';

const HEADER: Element[] = [{ tag: 0x00280010, vr: 'US', value: [1] }];
const pixelDataAt = (dataset: Uint8Array) => Buffer.from(dataset).indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42]));
const soi = (n: number, fill: number) => Uint8Array.from([0xff, 0xd8, ...new Array(n).fill(fill)]);
const tail = (n: number, fill: number) => Uint8Array.from(new Array(n).fill(fill));

function read(fragments: Uint8Array[], table: number[] = [], trailer: Element[] = []) {
  const ds = encapsulatedDataset(HEADER, fragments, table, trailer);
  return { ds, pd: readEncapsulatedPixelData(ds, pixelDataAt(ds)) };
}

test('reads the Basic Offset Table, fragments with offsets from the first fragment item, and the end', (t) => {
  const frags = [soi(4, 1), soi(6, 2)];
  const { ds, pd } = read(frags, offsetsOf(frags), [{ tag: 0xfffcfffc, vr: 'OB', value: new Uint8Array(4) }]);
  t.deepEqual(pd.offsetTable, [0, 14]);
  t.deepEqual(pd.fragments.map((f) => f.offset), [0, 14]);
  t.deepEqual([...pd.fragments[1].bytes], [...frags[1]]);
  t.is(ds.length - pd.end, 16); // the trailing padding element follows the delimiter
});

test('one frame: all fragments concatenated', (t) => {
  const { pd } = read([soi(2, 1), tail(4, 2)]);
  const [frame] = framesOf(pd, 1);
  t.deepEqual([...frame], [0xff, 0xd8, 1, 1, 2, 2, 2, 2]);
});

test('several frames: by the Basic Offset Table, by one fragment per frame, by codestream starts', (t) => {
  const frags = [soi(2, 1), tail(2, 9), soi(2, 2), soi(4, 3), tail(2, 8)];
  const starts = offsetsOf(frags);
  const expected = [[0xff, 0xd8, 1, 1, 9, 9], [0xff, 0xd8, 2, 2], [0xff, 0xd8, 3, 3, 3, 3, 8, 8]];
  const byTable = framesOf(read(frags, [starts[0], starts[2], starts[3]]).pd, 3);
  t.deepEqual(byTable.map((f) => [...f]), expected);
  const byMarkers = framesOf(read(frags).pd, 3, { startsFrame: startsJpeg });
  t.deepEqual(byMarkers.map((f) => [...f]), expected);
  const oneEach = framesOf(read([soi(1, 1), soi(1, 2)]).pd, 2);
  t.deepEqual(oneEach.map((f) => [...f]), [[0xff, 0xd8, 1, 0], [0xff, 0xd8, 2, 0]]); // odd fragments were padded
});

test('Extended Offset Table: 64-bit offsets locate the frames', (t) => {
  const frags = [soi(2, 1), tail(2, 9), soi(2, 2)];
  const starts = offsetsOf(frags);
  const eot = Buffer.alloc(16);
  eot.writeBigUInt64LE(BigInt(starts[0]), 0);
  eot.writeBigUInt64LE(BigInt(starts[2]), 8);
  t.deepEqual(parseExtendedOffsetTable(eot), [0, starts[2]]);
  const frames = framesOf(read(frags).pd, 2, { extendedOffsetTable: parseExtendedOffsetTable(eot) });
  t.deepEqual(frames.map((f) => f.length), [6, 4]);
  t.throws(() => parseExtendedOffsetTable(new Uint8Array(12)), { instanceOf: EncapsulatedError });
});

test('frame boundaries that cannot be known are errors, not guesses', (t) => {
  const frags = [soi(2, 1), tail(2, 9), tail(2, 8)];
  t.throws(() => framesOf(read(frags).pd, 2), { instanceOf: EncapsulatedError, message: /cannot tell where the 2 frames start/ });
  t.throws(() => framesOf(read(frags).pd, 2, { startsFrame: startsJpeg }), { instanceOf: EncapsulatedError, message: /1 fragment\(s\) begin a codestream/ });
  t.throws(() => framesOf(read(frags).pd, 4), { instanceOf: EncapsulatedError, message: /cannot hold 4 frames/ });
  t.throws(() => framesOf(read(frags, [0]).pd, 2), { instanceOf: EncapsulatedError, message: /1 entries but Number of Frames is 2/ });
  t.throws(() => framesOf(read(frags, [0, 3]).pd, 2), { instanceOf: EncapsulatedError, message: /does not point at a fragment/ });
  t.throws(() => framesOf(read(frags, [0, 0]).pd, 2), { instanceOf: EncapsulatedError, message: /not ascending/ });
  t.throws(() => framesOf(read([]).pd, 1), { instanceOf: EncapsulatedError, message: /no fragments/ });
});

test('malformed encapsulation is an EncapsulatedError', (t) => {
  const { ds } = read([soi(2, 1)]);
  const at = pixelDataAt(ds);
  t.throws(() => readEncapsulatedPixelData(ds.subarray(0, ds.length - 8), at), { instanceOf: EncapsulatedError, message: /not closed/ });
  t.throws(() => readEncapsulatedPixelData(ds, at + 2), { instanceOf: EncapsulatedError, message: /no Pixel Data/ });
  const defined = Buffer.from(ds);
  defined.writeUInt32LE(4, at + 8);
  t.throws(() => readEncapsulatedPixelData(defined, at), { instanceOf: EncapsulatedError, message: /not encapsulated/ });
  const noTable = Buffer.from(ds);
  noTable.writeUInt16LE(0xe0dd, at + 14); // the table item becomes a delimiter
  t.throws(() => readEncapsulatedPixelData(noTable, at), { instanceOf: EncapsulatedError, message: /no Basic Offset Table/ });
  const odd = Buffer.from(read([soi(2, 1)], [0]).ds);
  odd.writeUInt32LE(3, pixelDataAt(odd) + 16);
  t.throws(() => readEncapsulatedPixelData(odd, pixelDataAt(odd)), { instanceOf: EncapsulatedError });
});

test('property: frames split by table or by markers reassemble exactly', (t) => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }), fc.boolean(), (shape, useTable) => {
      // Each frame: a fragment starting with SOI, then continuation fragments of 0x00 bytes.
      const frames = shape.map((sizes, f) => sizes.map((n, i) => (i === 0 ? soi(2 * n, f) : tail(2 * n, 0))));
      const frags = frames.flat();
      const starts = offsetsOf(frags);
      let k = 0;
      const table = frames.map((fr) => {
        const s = starts[k];
        k += fr.length;
        return s;
      });
      const got = framesOf(read(frags, useTable ? table : []).pd, frames.length, { startsFrame: startsJpeg });
      t.deepEqual(got.map((g) => Buffer.from(g)), frames.map((fr) => Buffer.concat(fr)));
    }),
  );
});

test('codestream start markers', (t) => {
  t.true(startsJpeg(Uint8Array.of(0xff, 0xd8, 0xff)));
  t.false(startsJpeg(Uint8Array.of(0xff, 0xd9)));
  t.true(startsJ2k(Uint8Array.of(0xff, 0x4f, 0xff, 0x51)));
  t.false(startsJ2k(Uint8Array.of(0xff, 0x4f, 0xff, 0x52)));
});
