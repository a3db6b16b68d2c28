import test from 'ava';
import { rmSync } from 'node:fs';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { framesOf, readEncapsulatedPixelData } from '../../protocol/encapsulated.ts';
import { decodeJpegExtendedGrey } from '../../protocol/jpeg-extended.ts';
import { JpegHeaderError } from '../../protocol/jpeg-header.ts';
import { datasetAndSyntax, dcmtk, nativeInstance, nativePixelData, write } from '../helpers/pixel-images.ts';
import type { ImageSpec } from '../helpers/pixel-images.ts';
import { tempDir } from '../helpers/processes.ts';

/**
 * A hand-made stream of `blocks` 8x8 blocks side by side, each with DC difference +8 and no AC
 * terms: DC table {0: '0', 4: '1'}, AC table {EOB: '0'}, q[0] = 8. With a restart interval of 1
 * the DC predictor restarts at 0 for every block (F.2.1.3.1), so every block has DC 8.
 */
function dcOnlyStream(precision: 8 | 12, blocks: number, restart: boolean): Uint8Array {
  const seg = (m: number, body: number[]) => [0xff, m, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const q = precision === 8 ? [0x00, 8, ...new Array(63).fill(1)] : [0x10, 0, 8, ...new Array(63).fill([0, 1]).flat()];
  const out = [
    0xff, 0xd8,
    ...seg(0xdb, q),
    ...seg(0xc1, [precision, 0, 8, (8 * blocks) >> 8, (8 * blocks) & 0xff, 1, 1, 0x11, 0]),
    ...seg(0xc4, [0x00, 2, ...new Array(15).fill(0), 0, 4]),
    ...seg(0xc4, [0x10, 1, ...new Array(15).fill(0), 0x00]),
    ...(restart ? seg(0xdd, [0, 1]) : []),
    ...seg(0xda, [1, 1, 0x00, 0, 63, 0]),
  ];
  const block = '1' + '1000' + '0';
  const pack = (bits: string) => {
    const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, '1');
    const bytes: number[] = [];
    for (let i = 0; i < padded.length; i += 8) {
      const b = parseInt(padded.slice(i, i + 8), 2);
      bytes.push(b);
      if (b === 0xff) bytes.push(0); // byte stuffing (F.1.2.3)
    }
    return bytes;
  };
  if (restart) {
    for (let i = 0; i < blocks; i++) {
      out.push(...pack(block));
      if (i + 1 < blocks) out.push(0xff, 0xd0 + (i % 8));
    }
  } else out.push(...pack(block.repeat(blocks)));
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

for (const precision of [8, 12] as const) {
  test(`${precision}-bit DC-only blocks: predictor accumulates, and restarts at every RSTn`, (t) => {
    const center = precision === 8 ? 128 : 2048;
    const run = decodeJpegExtendedGrey(dcOnlyStream(precision, 10, false));
    t.is(run.precision, precision);
    t.deepEqual([run.rows, run.columns], [8, 80]);
    // DC n*8 dequantized by 8 is a mean of n*8 per sample.
    t.deepEqual(Array.from({ length: 10 }, (_, b) => run.samples[b * 8]), Array.from({ length: 10 }, (_, b) => center + 8 * (b + 1)));
    const restarted = decodeJpegExtendedGrey(dcOnlyStream(precision, 10, true));
    t.true(restarted.samples.every((v) => v === center + 8));
  });
}

const dir = tempDir('jpeg-extended-test-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const CASES: [string, ImageSpec, string[]][] = [
  ['12-bit, quality 90', { rows: 61, columns: 45, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 1 }, ['+ee']],
  ['12-bit, quality 30', { rows: 40, columns: 71, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 1 }, ['+ee', '+q', '30']],
  ['12-bit, quality 100', { rows: 16, columns: 16, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 1 }, ['+ee', '+q', '100']],
  ['8-bit baseline', { rows: 37, columns: 45, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, frames: 1 }, ['+eb']],
];

for (const [name, spec, args] of CASES) {
  test(`${name}: sample-identical to DCMTK dcmdjpeg (IJG islow)`, async (t) => {
    const file = name.replace(/\W+/g, '-');
    write(dir, `${file}.dcm`, nativeInstance(spec).file);
    const { dataset } = datasetAndSyntax(await dcmtk('dcmcjpeg', args, dir, `${file}.dcm`, `${file}-c.dcm`));
    const reference = nativePixelData(datasetAndSyntax(await dcmtk('dcmdjpeg', [], dir, `${file}-c.dcm`, `${file}-d.dcm`)).dataset).value;
    const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
    w.push(dataset);
    const [frame] = framesOf(readEncapsulatedPixelData(dataset, w.end().pixelDataOffset!), 1);
    const g = decodeJpegExtendedGrey(frame);
    const ours = spec.bitsAllocated === 16 ? Buffer.from(g.samples.buffer) : Buffer.from(Uint8Array.from(g.samples));
    t.deepEqual(ours, Buffer.from(reference.subarray(0, ours.length)));
  });
}

test('colour, progressive and lossless streams are refused', (t) => {
  const base = dcOnlyStream(12, 1, false);
  const sofAt = Buffer.from(base).indexOf(Buffer.from([0xff, 0xc1]));
  const progressive = Buffer.from(base);
  progressive[sofAt + 1] = 0xc2;
  t.throws(() => decodeJpegExtendedGrey(progressive), { instanceOf: JpegHeaderError, message: /FFC2 is not sequential/ });
  const colour = Buffer.from(base);
  colour[sofAt + 9] = 3;
  t.throws(() => decodeJpegExtendedGrey(colour), { instanceOf: JpegHeaderError, message: /3 components/ });
  const bits = Buffer.from(base);
  bits[sofAt + 4] = 16;
  t.throws(() => decodeJpegExtendedGrey(bits), { instanceOf: JpegHeaderError, message: /precision 16/ });
  t.throws(() => decodeJpegExtendedGrey(base.subarray(0, 30)), { instanceOf: JpegHeaderError });
});
