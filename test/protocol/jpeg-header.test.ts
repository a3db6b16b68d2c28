import test from 'ava';
import { j2kCodestream, JpegHeaderError, libjpegAssumesYcbcr, readJpegHeader, withAdobeRgbMarker } from '../../protocol/jpeg-header.ts';
import type { JpegHeader } from '../../protocol/jpeg-header.ts';
import { TINY_JPEG_BASELINE } from '../helpers/dicom-files.ts';

/** SOI, the given marker segments, SOS (empty scan), EOI. */
function jpeg(...segments: [number, number[]][]): Uint8Array {
  const parts = [0xff, 0xd8];
  for (const [m, body] of segments) parts.push(0xff, m, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body);
  parts.push(0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0, 0xff, 0xd9);
  return Uint8Array.from(parts);
}
const sof = (precision: number, ids: number[], h = 1, v = 1) => [precision, 0, 16, 0, 24, ids.length, ...ids.flatMap((id, i) => [id, i === 0 ? (h << 4) | v : 0x11, 0])];
const adobe = (transform: number) => [0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, transform];

test('reads the frame header of a DCMTK baseline JPEG', (t) => {
  const h = readJpegHeader(TINY_JPEG_BASELINE);
  t.is(h.sof, 0xc0);
  t.is(h.precision, 8);
  t.is(h.rows, 8);
  t.is(h.columns, 8);
  t.is(h.components.length, 1);
  t.true(h.jfif);
});

test('reads SOF1 12-bit, subsampling, SOF3 and JPEG-LS SOF55, APP14', (t) => {
  const e = readJpegHeader(jpeg([0xc1, sof(12, [1])]));
  t.deepEqual([e.sof, e.precision, e.rows, e.columns], [0xc1, 12, 16, 24]);
  const c = readJpegHeader(jpeg([0xee, adobe(1)], [0xc0, sof(8, [1, 2, 3], 2, 1)]));
  t.deepEqual(c.components[0], { id: 1, h: 2, v: 1 });
  t.is(c.adobeTransform, 1);
  t.is(readJpegHeader(jpeg([0xc3, sof(16, [1])])).sof, 0xc3);
  t.is(readJpegHeader(jpeg([0xf7, sof(8, [1])])).sof, 0xf7);
});

test('libjpeg colour guess: JFIF or Adobe transform means YCbCr; Adobe 0 or R,G,B ids mean RGB', (t) => {
  const base: JpegHeader = { sof: 0xc0, precision: 8, rows: 1, columns: 1, components: [1, 2, 3].map((id) => ({ id, h: 1, v: 1 })), jfif: false };
  t.true(libjpegAssumesYcbcr(base));
  t.true(libjpegAssumesYcbcr({ ...base, jfif: true }));
  t.true(libjpegAssumesYcbcr({ ...base, adobeTransform: 1 }));
  t.false(libjpegAssumesYcbcr({ ...base, adobeTransform: 0 }));
  t.false(libjpegAssumesYcbcr({ ...base, components: [0x52, 0x47, 0x42].map((id) => ({ id, h: 1, v: 1 })) }));
  t.false(libjpegAssumesYcbcr({ ...base, components: [{ id: 1, h: 1, v: 1 }] }));
});

test('an Adobe "no transform" marker makes libjpeg keep RGB', (t) => {
  const plain = jpeg([0xc0, sof(8, [1, 2, 3])]);
  t.true(libjpegAssumesYcbcr(readJpegHeader(plain)));
  const marked = withAdobeRgbMarker(plain);
  t.is(marked.length, plain.length + 16);
  const h = readJpegHeader(marked);
  t.is(h.adobeTransform, 0);
  t.false(libjpegAssumesYcbcr(h));
});

test('malformed headers are JpegHeaderErrors', (t) => {
  t.throws(() => readJpegHeader(Uint8Array.of(0, 1, 2, 3)), { instanceOf: JpegHeaderError, message: /SOI/ });
  t.throws(() => readJpegHeader(jpeg([0xdb, [0]])), { instanceOf: JpegHeaderError, message: /no frame header/ });
  t.throws(() => readJpegHeader(Uint8Array.of(0xff, 0xd8, 0xff, 0xc0, 0, 40, 8)), { instanceOf: JpegHeaderError, message: /runs past/ });
  t.throws(() => readJpegHeader(Uint8Array.of(0xff, 0xd8, 0x12, 0x34, 0, 0)), { instanceOf: JpegHeaderError, message: /expected a marker/ });
});

test('JPEG 2000: a bare codestream passes; a JP2 file gives its jp2c box', (t) => {
  const cs = Uint8Array.of(0xff, 0x4f, 0xff, 0x51, 1, 2, 3, 4);
  t.is(j2kCodestream(cs), cs);
  const box = (type: string, body: number[], length?: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(length ?? 8 + body.length, 0);
    b.write(type, 4, 'latin1');
    return Buffer.concat([b, Buffer.from(body)]);
  };
  const sig = box('jP  ', [0x0d, 0x0a, 0x87, 0x0a]);
  t.deepEqual([...j2kCodestream(Buffer.concat([sig, box('ftyp', [1, 2, 3, 4]), box('jp2c', [...cs])]))], [...cs]);
  // Length 0: the box runs to the end of the file.
  t.deepEqual([...j2kCodestream(Buffer.concat([sig, box('jp2c', [...cs], 0)]))], [...cs]);
  t.throws(() => j2kCodestream(Buffer.concat([sig, box('ftyp', [1, 2])])), { instanceOf: JpegHeaderError, message: /without a codestream/ });
});
