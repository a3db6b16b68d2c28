// decompressDataset against DCMTK: instances compressed by dcmcjpeg / dcmcrle / dcmcjpls are
// decompressed by us and by dcmdjpeg / dcmdrle / dcmdjpls; pixel data must agree (lossless:
// byte-identical, and equal to the source; lossy JPEG: within ±1). JPEG 2000, which DCMTK
// cannot encode, is encoded with OpenJPEG's encoder from @cornerstonejs/codec-openjpeg and
// checked against the source pixels. Every element before Pixel Data that is not meant to change
// must keep its bytes.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { canDecompress, decompressDataset, DecompressError } from '../../../actors/forward/decompress.ts';
import { rewriteHeader, topLevelElements } from '../../../protocol/dataset-rewrite.ts';
import { DatasetWalker } from '../../../protocol/dataset-walker.ts';
import type { Element } from '../../helpers/dicom-files.ts';
import {
  datasetAndSyntax,
  dcmtk,
  encapsulatedDataset,
  EXPLICIT_LE,
  IMPLICIT_LE,
  imageElements,
  nativeInstance,
  nativePixelData,
  offsetsOf,
  pixelsFor,
  withMeta,
  write,
} from '../../helpers/pixel-images.ts';
import type { ImageSpec } from '../../helpers/pixel-images.ts';
import { run, tempDir } from '../../helpers/processes.ts';

const dir = tempDir('decompress-test-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const TS = {
  baseline: '1.2.840.10008.1.2.4.50',
  extended: '1.2.840.10008.1.2.4.51',
  lossless: '1.2.840.10008.1.2.4.57',
  losslessSv1: '1.2.840.10008.1.2.4.70',
  jpegLs: '1.2.840.10008.1.2.4.80',
  jpegLsNear: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  rle: '1.2.840.10008.1.2.5',
};
const CHANGEABLE = new Set([0x00280004, 0x00280006, 0x00282110, 0x00282114, 0x7fe00000, 0x7fe00001, 0x7fe00002]);

const GREY8: ImageSpec = { rows: 37, columns: 45, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, frames: 3 };
const RGB8: ImageSpec = { rows: 32, columns: 40, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, frames: 2 };
const GREY12: ImageSpec = { rows: 30, columns: 33, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 2 };
const SIGNED16: ImageSpec = { rows: 30, columns: 33, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, signed: true, frames: 1 };

type Header = { text: Map<number, string>; bytes: Map<number, string> };

/** Top-level elements before Pixel Data: value text (trimmed) and whole-element hex, by tag. */
function headerOf(dataset: Uint8Array, ts: string): Header {
  const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
  w.push(dataset);
  const header = dataset.subarray(0, w.end().headerLength);
  const text = new Map<number, string>();
  const bytes = new Map<number, string>();
  for (const s of topLevelElements(header, ts)) {
    text.set(s.tag, Buffer.from(header.subarray(s.valueStart, s.end)).toString('latin1').replace(/[\0 ]+$/, ''));
    bytes.set(s.tag, Buffer.from(header.subarray(s.start, s.end)).toString('hex'));
  }
  return { text, bytes };
}

function us(h: Header, tag: number): number | undefined {
  const t = h.text.get(tag);
  return t === undefined ? undefined : Buffer.from(t.padEnd(2, '\0'), 'latin1').readUInt16LE(0);
}

/** Elements that must not change kept their bytes; none vanished or appeared besides the changeable ones. */
function assertUnchangedElements(t: ExecutionContext, before: Header, after: Header): void {
  const keys = (h: Header) => [...h.bytes.keys()].filter((k) => !CHANGEABLE.has(k));
  t.deepEqual(keys(after), keys(before));
  for (const k of keys(before)) t.is(after.bytes.get(k), before.bytes.get(k), `element ${k.toString(16)} changed`);
}

function maxDifference(a: Uint8Array, b: Uint8Array, bytesPerSample: number): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i += bytesPerSample) {
    const x = bytesPerSample === 2 ? a[i] | (a[i + 1] << 8) : a[i];
    const y = bytesPerSample === 2 ? b[i] | (b[i + 1] << 8) : b[i];
    max = Math.max(max, Math.abs(x - y));
  }
  return max;
}

/** DCMTK reads our output (written as Part-10) without complaint. */
async function assertDcmtkReads(t: ExecutionContext, dataset: Uint8Array, ts: string, name: string): Promise<void> {
  const path = write(dir, name, withMeta(dataset, ts));
  const r = await run('dcmdump', ['-q', '+E', path]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
}

type DcmtkCase = {
  name: string;
  spec: ImageSpec;
  encode: [string, string[]];
  decode: [string, string[]];
  ts: string;
  /** Largest allowed sample difference from DCMTK's decompression. */
  tolerance: number;
  lossless: boolean;
  photometricAfter: string;
  lossyAfter?: string;
};

const CASES: DcmtkCase[] = [
  { name: 'JPEG Baseline grey, 3 frames', spec: GREY8, encode: ['dcmcjpeg', ['+eb']], decode: ['dcmdjpeg', []], ts: TS.baseline, tolerance: 1, lossless: false, photometricAfter: 'MONOCHROME2', lossyAfter: '01' },
  { name: 'JPEG Baseline YBR_FULL_422 to RGB', spec: RGB8, encode: ['dcmcjpeg', ['+eb']], decode: ['dcmdjpeg', ['+px']], ts: TS.baseline, tolerance: 1, lossless: false, photometricAfter: 'RGB', lossyAfter: '01' },
  { name: 'JPEG Baseline RGB (no colour transform)', spec: RGB8, encode: ['dcmcjpeg', ['+eb', '+cr']], decode: ['dcmdjpeg', ['+px']], ts: TS.baseline, tolerance: 1, lossless: false, photometricAfter: 'RGB', lossyAfter: '01' },
  { name: 'JPEG Extended 8-bit', spec: GREY8, encode: ['dcmcjpeg', ['+ee']], decode: ['dcmdjpeg', []], ts: TS.extended, tolerance: 1, lossless: false, photometricAfter: 'MONOCHROME2', lossyAfter: '01' },
  { name: 'JPEG Extended 12-bit (process 4)', spec: GREY12, encode: ['dcmcjpeg', ['+ee']], decode: ['dcmdjpeg', []], ts: TS.extended, tolerance: 1, lossless: false, photometricAfter: 'MONOCHROME2', lossyAfter: '01' },
  { name: 'JPEG Lossless 12 in 16 bits', spec: GREY12, encode: ['dcmcjpeg', ['+el']], decode: ['dcmdjpeg', []], ts: TS.lossless, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'JPEG Lossless SV1 signed 16-bit', spec: SIGNED16, encode: ['dcmcjpeg', ['+e1']], decode: ['dcmdjpeg', []], ts: TS.losslessSv1, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'JPEG Lossless SV1 RGB', spec: RGB8, encode: ['dcmcjpeg', ['+e1']], decode: ['dcmdjpeg', ['+px']], ts: TS.losslessSv1, tolerance: 0, lossless: true, photometricAfter: 'RGB' },
  { name: 'RLE 16-bit, 2 frames', spec: GREY12, encode: ['dcmcrle', []], decode: ['dcmdrle', []], ts: TS.rle, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'RLE signed 16-bit', spec: SIGNED16, encode: ['dcmcrle', []], decode: ['dcmdrle', []], ts: TS.rle, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'RLE RGB', spec: RGB8, encode: ['dcmcrle', []], decode: ['dcmdrle', []], ts: TS.rle, tolerance: 0, lossless: true, photometricAfter: 'RGB' },
  { name: 'JPEG-LS lossless 12 in 16 bits', spec: GREY12, encode: ['dcmcjpls', []], decode: ['dcmdjpls', []], ts: TS.jpegLs, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'JPEG-LS lossless signed 16-bit', spec: SIGNED16, encode: ['dcmcjpls', []], decode: ['dcmdjpls', []], ts: TS.jpegLs, tolerance: 0, lossless: true, photometricAfter: 'MONOCHROME2' },
  { name: 'JPEG-LS lossless RGB, uninterleaved', spec: RGB8, encode: ['dcmcjpls', ['+in']], decode: ['dcmdjpls', ['+px']], ts: TS.jpegLs, tolerance: 0, lossless: true, photometricAfter: 'RGB' },
  { name: 'JPEG-LS near-lossless RGB', spec: RGB8, encode: ['dcmcjpls', ['+en']], decode: ['dcmdjpls', ['+px']], ts: TS.jpegLsNear, tolerance: 0, lossless: false, photometricAfter: 'RGB', lossyAfter: '01' },
  { name: 'JPEG-LS near-lossless grey 8-bit', spec: GREY8, encode: ['dcmcjpls', ['+en']], decode: ['dcmdjpls', []], ts: TS.jpegLsNear, tolerance: 0, lossless: false, photometricAfter: 'MONOCHROME2', lossyAfter: '01' },
];

for (const [i, c] of CASES.entries()) {
  test(`${c.name}: matches ${c.decode[0]}`, async (t) => {
    const { file, pixels } = nativeInstance(c.spec);
    write(dir, `src${i}.dcm`, file);
    const compressed = datasetAndSyntax(await dcmtk(c.encode[0], c.encode[1], dir, `src${i}.dcm`, `c${i}.dcm`));
    t.is(compressed.ts, c.ts);
    const reference = datasetAndSyntax(await dcmtk(c.decode[0], c.decode[1], dir, `c${i}.dcm`, `d${i}.dcm`));

    const out = await decompressDataset(compressed.dataset, compressed.ts, EXPLICIT_LE);
    const ours = nativePixelData(out);
    const theirs = nativePixelData(reference.dataset);
    t.is(ours.vr, c.spec.bitsAllocated === 8 ? 'OB' : 'OW');
    const bytes = c.spec.bitsAllocated / 8;
    const frameBytes = pixels.length; // all frames
    t.is(ours.value.length, frameBytes + (frameBytes % 2));
    const diff = maxDifference(ours.value.subarray(0, frameBytes), theirs.value.subarray(0, frameBytes), bytes);
    t.true(diff <= c.tolerance, `max sample difference from ${c.decode[0]} is ${diff}`);
    if (c.tolerance === 0) t.deepEqual(Buffer.from(ours.value.subarray(0, frameBytes)), Buffer.from(theirs.value.subarray(0, frameBytes)));
    if (c.lossless) t.deepEqual(Buffer.from(ours.value.subarray(0, frameBytes)), Buffer.from(pixels));

    const before = headerOf(compressed.dataset, compressed.ts);
    const after = headerOf(out, EXPLICIT_LE);
    assertUnchangedElements(t, before, after);
    t.is(after.text.get(0x00280004), c.photometricAfter);
    if (c.spec.samplesPerPixel === 3) t.is(us(after, 0x00280006), 0);
    t.is(after.text.get(0x00282110), c.lossyAfter ?? before.text.get(0x00282110));
    await assertDcmtkReads(t, out, EXPLICIT_LE, `out${i}.dcm`);
  });
}

test('Implicit VR LE output: DCMTK reads it and the pixels equal the Explicit VR LE output', async (t) => {
  const { file } = nativeInstance(RGB8);
  write(dir, 'ile-src.dcm', file);
  const compressed = datasetAndSyntax(await dcmtk('dcmcjpeg', ['+eb'], dir, 'ile-src.dcm', 'ile-c.dcm'));
  const ele = await decompressDataset(compressed.dataset, compressed.ts, EXPLICIT_LE);
  const ile = await decompressDataset(compressed.dataset, compressed.ts, IMPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(ile, false).value), Buffer.from(nativePixelData(ele).value));
  await assertDcmtkReads(t, ile, IMPLICIT_LE, 'ile-out.dcm');
  const dump = await run('dcmdump', ['+P', '0028,0004', '+P', '0028,2110', write(dir, 'ile-out2.dcm', withMeta(ile, IMPLICIT_LE))]);
  t.regex(dump.stdout, /\[RGB\]/);
  t.regex(dump.stdout, /\[01\]/);
});

test('RGB JPEG without JFIF/Adobe markers or R,G,B ids is not mistaken for YCbCr (Photometric Interpretation RGB)', async (t) => {
  const spec: ImageSpec = { ...RGB8, frames: 1 };
  const { file } = nativeInstance(spec);
  write(dir, 'rgbplain-src.dcm', file);
  const marked = datasetAndSyntax(await dcmtk('dcmcjpeg', ['+eb', '+cr'], dir, 'rgbplain-src.dcm', 'rgbplain.dcm'));
  const reference = nativePixelData(await decompressDataset(marked.dataset, marked.ts, EXPLICIT_LE)).value;
  // DCMTK writes an Adobe marker (transform 0) and component ids R,G,B; strip both.
  const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
  w.push(marked.dataset);
  const cut = w.end().headerLength;
  const stream = Buffer.from(marked.dataset.subarray(marked.dataset.indexOf(0xd8, cut) - 1));
  const app14 = stream.indexOf(Buffer.from([0xff, 0xee]));
  t.true(app14 > 0);
  const plain = Buffer.concat([stream.subarray(0, app14), stream.subarray(app14 + 2 + stream.readUInt16BE(app14 + 2))]);
  const sof = plain.indexOf(Buffer.from([0xff, 0xc0]));
  const sos = plain.indexOf(Buffer.from([0xff, 0xda]));
  for (let i = 0; i < 3; i++) {
    plain[sof + 10 + 3 * i] = i + 1;
    plain[sos + 5 + 2 * i] = i + 1;
  }
  const end = plain.indexOf(Buffer.from([0xff, 0xd9])) + 2;
  const dataset = Buffer.concat([marked.dataset.subarray(0, cut), encapsulatedDataset([], [plain.subarray(0, end)])]);
  const out = await decompressDataset(dataset, marked.ts, EXPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(out).value), Buffer.from(reference));
  t.is(headerOf(out, EXPLICIT_LE).text.get(0x00280004), 'RGB');
});

test('frames split over several fragments: by the Basic Offset Table, and by SOI markers when the table is empty', async (t) => {
  const spec: ImageSpec = { rows: 96, columns: 96, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, frames: 3 };
  const { file } = nativeInstance(spec);
  write(dir, 'frag-src.dcm', file);
  await dcmtk('dcmcjpeg', ['+eb'], dir, 'frag-src.dcm', 'frag-one.dcm');
  const reference = nativePixelData(datasetAndSyntax(await dcmtk('dcmdjpeg', [], dir, 'frag-one.dcm', 'frag-ref.dcm')).dataset);
  for (const [name, args] of [['with table', ['+eb', '+fs', '1']], ['empty table', ['+eb', '+fs', '1', '-ot']]] as const) {
    const compressed = datasetAndSyntax(await dcmtk('dcmcjpeg', [...args], dir, 'frag-src.dcm', `frag-${name}.dcm`));
    const dump = await run('dcmdump', [`${dir}/frag-${name}.dcm`]);
    const items = (/PixelSequence #=(\d+)/.exec(dump.stdout) ?? [])[1];
    t.true(Number(items) > 4, `${name}: ${items} items, expected several fragments per frame`);
    const out = await decompressDataset(compressed.dataset, compressed.ts, EXPLICIT_LE);
    t.true(maxDifference(nativePixelData(out).value, reference.value, 1) <= 1, name);
  }
});

// --- JPEG 2000, encoded with OpenJPEG (DCMTK has no JPEG 2000 codec) ---

type J2kEncoder = {
  getDecodedBuffer(info: { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean }): Uint8Array;
  setQuality(lossless: boolean, quality: number): void;
  setDecompositions(levels: number): void;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
  delete(): void;
};
const openJpegFull = createRequire(import.meta.url)('@cornerstonejs/codec-openjpeg/wasmjs') as (m: object) => Promise<{ J2KEncoder: new () => J2kEncoder }>;
const encoderModule = openJpegFull({ print: () => {}, printErr: () => {} });

async function j2kFrames(spec: ImageSpec, lossless: boolean): Promise<{ frames: Uint8Array[]; pixels: Uint8Array }> {
  const m = await encoderModule;
  const pixels = pixelsFor(spec);
  const frameBytes = pixels.length / spec.frames;
  const frames: Uint8Array[] = [];
  for (let f = 0; f < spec.frames; f++) {
    const enc = new m.J2KEncoder();
    enc
      .getDecodedBuffer({ width: spec.columns, height: spec.rows, bitsPerSample: spec.bitsStored, componentCount: spec.samplesPerPixel, isSigned: spec.signed ?? false })
      .set(pixels.subarray(f * frameBytes, (f + 1) * frameBytes));
    enc.setDecompositions(2); // the default 5 levels need images of 32+ pixels each way
    if (!lossless) enc.setQuality(false, 0.1);
    enc.encode();
    frames.push(enc.getEncodedBuffer().slice());
    enc.delete();
  }
  return { frames, pixels };
}

test('JPEG 2000 lossless grey 12 in 16 bits, 2 frames with a Basic Offset Table', async (t) => {
  const { frames, pixels } = await j2kFrames(GREY12, true);
  const dataset = encapsulatedDataset(imageElements(GREY12), frames, offsetsOf(frames));
  const out = await decompressDataset(dataset, TS.j2kLossless, EXPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(out).value), Buffer.from(pixels));
  const h = headerOf(out, EXPLICIT_LE);
  t.is(h.text.get(0x00280004), 'MONOCHROME2');
  t.false(h.text.has(0x00282110));
  assertUnchangedElements(t, headerOf(dataset, TS.j2kLossless), h);
  await assertDcmtkReads(t, out, EXPLICIT_LE, 'j2k-grey.dcm');
});

test('JPEG 2000 lossless YBR_RCT becomes RGB, byte-identical to the source', async (t) => {
  const { frames, pixels } = await j2kFrames(RGB8, true);
  const dataset = encapsulatedDataset(imageElements({ ...RGB8, photometric: 'YBR_RCT' }), frames);
  const out = await decompressDataset(dataset, TS.j2kLossless, EXPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(out).value), Buffer.from(pixels));
  t.is(headerOf(out, EXPLICIT_LE).text.get(0x00280004), 'RGB');
});

test('JPEG 2000 lossy YBR_ICT becomes RGB and gains Lossy Image Compression 01 with its method', async (t) => {
  const { frames, pixels } = await j2kFrames(RGB8, false);
  const dataset = encapsulatedDataset(imageElements({ ...RGB8, photometric: 'YBR_ICT' }), frames);
  const out = await decompressDataset(dataset, TS.j2k, EXPLICIT_LE);
  t.true(maxDifference(nativePixelData(out).value, pixels, 1) <= 8);
  const h = headerOf(out, EXPLICIT_LE);
  t.is(h.text.get(0x00280004), 'RGB');
  t.is(h.text.get(0x00282110), '01');
  t.is(h.text.get(0x00282114), 'ISO_15444_1');
  await assertDcmtkReads(t, out, EXPLICIT_LE, 'j2k-lossy.dcm');
});

test('Extended Offset Table: frames found through it; it, its lengths and the group length are fixed up', async (t) => {
  const spec: ImageSpec = { ...GREY12, frames: 3 };
  const { frames, pixels } = await j2kFrames(spec, true);
  // Split every frame into two fragments so only the table can tell where frames start.
  const fragments = frames.flatMap((f) => [f.subarray(0, 100), f.subarray(100)]);
  const offsets = offsetsOf(fragments).filter((_, i) => i % 2 === 0);
  const eot = Buffer.alloc(8 * offsets.length);
  const eotLengths = Buffer.alloc(8 * offsets.length);
  offsets.forEach((o, i) => {
    eot.writeBigUInt64LE(BigInt(o), 8 * i);
    eotLengths.writeBigUInt64LE(BigInt(frames[i].length), 8 * i);
  });
  const withoutLength: Element[] = [
    { tag: 0x7fe00001, vr: 'OV', value: eot },
    { tag: 0x7fe00002, vr: 'OV', value: eotLengths },
  ];
  const probe = encapsulatedDataset([...imageElements(spec), { tag: 0x7fe00000, vr: 'UL', value: [0] }, ...withoutLength], fragments);
  const groupStart = Buffer.from(probe).indexOf(Buffer.from([0xe0, 0x7f, 0x00, 0x00, 0x55, 0x4c]));
  const groupLength = probe.length - (groupStart + 12);
  const dataset = encapsulatedDataset([...imageElements(spec), { tag: 0x7fe00000, vr: 'UL', value: [groupLength] }, ...withoutLength], fragments);
  const out = await decompressDataset(dataset, TS.j2kLossless, EXPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(out).value), Buffer.from(pixels));
  const h = headerOf(out, EXPLICIT_LE);
  t.false(h.text.has(0x7fe00001));
  t.false(h.text.has(0x7fe00002));
  const at = Buffer.from(out).indexOf(Buffer.from([0xe0, 0x7f, 0x00, 0x00, 0x55, 0x4c]));
  t.is(Buffer.from(out).readUInt32LE(at + 8), out.length - (at + 12));
  await assertDcmtkReads(t, out, EXPLICIT_LE, 'j2k-eot.dcm');
});

test('a JP2 file in a fragment is decoded from its codestream box', async (t) => {
  const spec: ImageSpec = { ...GREY12, frames: 1 };
  const { frames, pixels } = await j2kFrames(spec, true);
  const box = (type: string, body: Uint8Array) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(8 + body.length, 0);
    h.write(type, 4, 'latin1');
    return Buffer.concat([h, body]);
  };
  const jp2 = Buffer.concat([box('jP  ', Uint8Array.of(0x0d, 0x0a, 0x87, 0x0a)), box('ftyp', Buffer.from('jp2 \0\0\0\0jp2 ', 'latin1')), box('jp2c', frames[0])]);
  const out = await decompressDataset(encapsulatedDataset(imageElements(spec), [jp2]), TS.j2kLossless, EXPLICIT_LE);
  t.deepEqual(Buffer.from(nativePixelData(out).value), Buffer.from(pixels));
});

test('an 8-bit codestream in 16-bit storage is widened (JPEG 2000, unsigned)', async (t) => {
  const eight: ImageSpec = { rows: 20, columns: 24, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, frames: 1 };
  const { frames, pixels } = await j2kFrames(eight, true);
  const dataset = encapsulatedDataset(imageElements({ ...eight, bitsAllocated: 16 }), frames);
  const out = nativePixelData(await decompressDataset(dataset, TS.j2kLossless, EXPLICIT_LE));
  t.is(out.vr, 'OW');
  const expected = Buffer.alloc(pixels.length * 2);
  pixels.forEach((v, i) => expected.writeUInt16LE(v, 2 * i));
  t.deepEqual(Buffer.from(out.value), expected);
});

test('an 8-bit signed codestream in 16-bit storage is sign-extended (JPEG lossless)', async (t) => {
  const eight: ImageSpec = { rows: 20, columns: 24, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, signed: true, frames: 1 };
  const { file, pixels } = nativeInstance(eight);
  write(dir, 'sx-src.dcm', file);
  const compressed = datasetAndSyntax(await dcmtk('dcmcjpeg', ['+e1'], dir, 'sx-src.dcm', 'sx.dcm'));
  // The same codestream, declared as stored in 16 bits (PS3.5 8.2: precision may be below Bits Allocated).
  const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
  w.push(compressed.dataset);
  const cut = w.end().headerLength;
  const header = rewriteHeader(compressed.dataset.subarray(0, cut), compressed.ts, [{ tag: '00280100', action: 'set', value: 16 }]);
  const dataset = Buffer.concat([header, compressed.dataset.subarray(cut)]);
  const out = nativePixelData(await decompressDataset(dataset, compressed.ts, EXPLICIT_LE));
  const expected = Buffer.alloc(pixels.length * 2);
  pixels.forEach((v, i) => expected.writeUInt16LE(v >= 128 ? 0xff00 | v : v, 2 * i));
  t.deepEqual(Buffer.from(out.value), expected);
});

test('JPEG 2000 with signed 8-bit samples is refused (the OpenJPEG build decodes them wrongly)', async (t) => {
  const eight: ImageSpec = { rows: 20, columns: 24, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, signed: true, frames: 1 };
  const { frames } = await j2kFrames(eight, true);
  const e = await t.throwsAsync(decompressDataset(encapsulatedDataset(imageElements(eight), frames), TS.j2kLossless, EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(e?.code, 'unsupported-image');
});

// --- refusals: each is a DecompressError the forwarder turns into a dead letter ---

test('canDecompress: the JPEG, JPEG-LS, JPEG 2000 and RLE syntaxes only', (t) => {
  for (const uid of Object.values(TS)) t.true(canDecompress(uid), uid);
  for (const uid of [EXPLICIT_LE, IMPLICIT_LE, '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.100', '1.2.3']) t.false(canDecompress(uid), uid);
});

test('an unsupported syntax is refused with a reason', async (t) => {
  const e = await t.throwsAsync(decompressDataset(new Uint8Array(0), '1.2.840.10008.1.2.4.201', EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(e?.code, 'unsupported-syntax');
  t.regex(e?.message ?? '', /1\.2\.840\.10008\.1\.2\.4\.201/);
});

test('an instance whose pixels would exceed 1 GiB is refused before decoding', async (t) => {
  const spec: ImageSpec = { rows: 65535, columns: 65535, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, frames: 1 };
  const dataset = encapsulatedDataset(imageElements(spec), [Uint8Array.of(0xff, 0xd8, 0xff, 0xd9)]);
  const e = await t.throwsAsync(decompressDataset(dataset, TS.baseline, EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(e?.code, 'too-large');
});

test('JPEG with 12-bit colour is refused as unsupported, naming the reason', async (t) => {
  const { file } = nativeInstance(RGB8);
  write(dir, 'colour12-src.dcm', file);
  const compressed = datasetAndSyntax(await dcmtk('dcmcjpeg', ['+eb'], dir, 'colour12-src.dcm', 'colour12.dcm'));
  const data = Buffer.from(compressed.dataset);
  const sof = data.indexOf(Buffer.from([0xff, 0xc0]));
  data[sof + 4] = 12; // sample precision
  const e = await t.throwsAsync(decompressDataset(data, TS.extended, EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(e?.code, 'unsupported-image');
  t.regex(e?.message ?? '', /12-bit/);
});

test('a corrupt codestream is a codec error; missing frames are malformed input', async (t) => {
  const { file } = nativeInstance(GREY12);
  write(dir, 'bad-src.dcm', file);
  const compressed = datasetAndSyntax(await dcmtk('dcmcjpls', [], dir, 'bad-src.dcm', 'bad.dcm'));
  const corrupt = Buffer.from(compressed.dataset);
  const sos = corrupt.indexOf(Buffer.from([0xff, 0xda]));
  corrupt.fill(0xff, sos + 20, sos + 200);
  const e = await t.throwsAsync(decompressDataset(corrupt, TS.jpegLs, EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(e?.code, 'codec-error');

  const { frames } = await j2kFrames({ ...GREY12, frames: 2 }, true);
  const short = encapsulatedDataset(imageElements({ ...GREY12, frames: 3 }), frames);
  const m = await t.throwsAsync(decompressDataset(short, TS.j2kLossless, EXPLICIT_LE), { instanceOf: DecompressError });
  t.is(m?.code, 'malformed');
  t.regex(m?.message ?? '', /3 frames/);
});

test('a dataset without Pixel Data passes unchanged (or converted to Implicit VR LE)', async (t) => {
  const { file } = nativeInstance(GREY8);
  const { dataset } = datasetAndSyntax(file);
  const w = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
  w.push(dataset);
  const header = dataset.subarray(0, w.end().headerLength);
  t.is(await decompressDataset(header, TS.rle, EXPLICIT_LE), header);
  const ile = await decompressDataset(header, TS.rle, IMPLICIT_LE);
  await assertDcmtkReads(t, ile, IMPLICIT_LE, 'nopixels.dcm');
});
