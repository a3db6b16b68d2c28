import test from 'ava';
import { nativeFrameLength, nativeHeaderChanges, PixelModuleError, readPixelModule } from '../../protocol/pixel-module.ts';
import type { PixelModule } from '../../protocol/pixel-module.ts';
import { encodeDataset } from '../helpers/dicom-files.ts';
import type { Element } from '../helpers/dicom-files.ts';
import { imageElements } from '../helpers/pixel-images.ts';

const JPEG = '1.2.840.10008.1.2.4.50';
const LE = { explicitVr: true, littleEndian: true };
const header = (els: Element[]) => encodeDataset(els, LE);

test('reads the Image Pixel attributes', (t) => {
  const els = imageElements({ rows: 30, columns: 40, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, frames: 4, photometric: 'YBR_FULL_422' }, [
    { tag: 0x00282110, vr: 'CS', value: '01' },
  ]);
  const m = readPixelModule(header(els), JPEG);
  t.like(m, { rows: 30, columns: 40, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, photometricInterpretation: 'YBR_FULL_422' });
  t.is(m.planarConfiguration, 0);
  t.is(m.numberOfFrames, 4);
  t.is(m.lossyImageCompression, '01');
  t.false(m.hasLossyMethod);
  t.is(nativeFrameLength(m), 30 * 40 * 3);
});

test('defaults: one frame, Bits Stored = Bits Allocated, unsigned', (t) => {
  const els = imageElements({ rows: 2, columns: 2, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, frames: 1 }).filter(
    (e) => e.tag !== 0x00280101 && e.tag !== 0x00280103,
  );
  t.like(readPixelModule(header(els), JPEG), { numberOfFrames: 1, bitsStored: 16, pixelRepresentation: 0 });
});

test('missing or unusable attributes are PixelModuleErrors naming them', (t) => {
  const base = imageElements({ rows: 2, columns: 2, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, frames: 1 });
  const without = (tag: number) => header(base.filter((e) => e.tag !== tag));
  const replaced = (tag: number, value: Element['value']) => header(base.map((e) => (e.tag === tag ? { ...e, value } : e)));
  t.throws(() => readPixelModule(without(0x00280010), JPEG), { instanceOf: PixelModuleError, message: /Rows is missing/ });
  t.throws(() => readPixelModule(without(0x00280004), JPEG), { instanceOf: PixelModuleError, message: /Photometric Interpretation is missing/ });
  t.throws(() => readPixelModule(replaced(0x00280002, [2]), JPEG), { instanceOf: PixelModuleError, message: /Samples per Pixel 2/ });
  t.throws(() => readPixelModule(replaced(0x00280100, [12]), JPEG), { instanceOf: PixelModuleError, message: /Bits Allocated 12/ });
  t.throws(() => readPixelModule(replaced(0x00280101, [17]), JPEG), { instanceOf: PixelModuleError, message: /Bits Stored 17/ });
  t.throws(() => readPixelModule(replaced(0x00280011, [0]), JPEG), { instanceOf: PixelModuleError, message: /no pixels/ });
  const frames = header([...base, { tag: 0x00280008, vr: 'IS', value: 'x' }].sort((a, b) => a.tag - b.tag));
  t.throws(() => readPixelModule(frames, JPEG), { instanceOf: PixelModuleError, message: /Number of Frames/ });
});

const GREY: PixelModule = {
  rows: 1, columns: 1, samplesPerPixel: 1, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2', numberOfFrames: 1, hasLossyMethod: false, hasExtendedOffsetTableLengths: false,
};

test('header changes: none for lossless grey', (t) => {
  t.deepEqual(nativeHeaderChanges(GREY, { photometricInterpretation: 'MONOCHROME2' }), []);
});

test('header changes: colour space, planar configuration 0', (t) => {
  const colour = { ...GREY, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422', planarConfiguration: 1 };
  t.deepEqual(nativeHeaderChanges(colour, { photometricInterpretation: 'RGB' }), [
    { tag: '00280004', action: 'set', vr: 'CS', value: 'RGB' },
    { tag: '00280006', action: 'set', vr: 'US', value: 0 },
  ]);
  const { planarConfiguration: _, ...missing } = colour;
  t.deepEqual(nativeHeaderChanges({ ...missing, photometricInterpretation: 'RGB' }, { photometricInterpretation: 'RGB' }), [
    { tag: '00280006', action: 'set', vr: 'US', value: 0 },
  ]);
  t.deepEqual(nativeHeaderChanges({ ...colour, planarConfiguration: 0, photometricInterpretation: 'RGB' }, { photometricInterpretation: 'RGB' }), []);
});

test('header changes: lossy source gets Lossy Image Compression 01 (and a method if none), never back to 00', (t) => {
  const lossy = { photometricInterpretation: 'MONOCHROME2', lossyMethod: 'ISO_10918_1' as const };
  t.deepEqual(nativeHeaderChanges(GREY, lossy), [
    { tag: '00282110', action: 'set', vr: 'CS', value: '01' },
    { tag: '00282114', action: 'set', vr: 'CS', value: 'ISO_10918_1' },
  ]);
  t.deepEqual(nativeHeaderChanges({ ...GREY, lossyImageCompression: '00', hasLossyMethod: true }, lossy), [
    { tag: '00282110', action: 'set', vr: 'CS', value: '01' },
  ]);
  t.deepEqual(nativeHeaderChanges({ ...GREY, lossyImageCompression: '01' }, lossy), []);
  t.deepEqual(nativeHeaderChanges({ ...GREY, lossyImageCompression: '01' }, { photometricInterpretation: 'MONOCHROME2' }), []);
});

test('header changes: the Extended Offset Table and its lengths are removed', (t) => {
  t.deepEqual(nativeHeaderChanges({ ...GREY, extendedOffsetTable: new Uint8Array(8), hasExtendedOffsetTableLengths: true }, { photometricInterpretation: 'MONOCHROME2' }), [
    { tag: '7FE00001', action: 'remove' },
    { tag: '7FE00002', action: 'remove' },
  ]);
});
