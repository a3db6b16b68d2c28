// The Image Pixel module attributes (PS3.3 C.7.6.3) a decompressor needs, read from the header
// (the bytes before Pixel Data), and the header changes that make it describe native pixel data
// instead of a compressed stream:
// - Photometric Interpretation when the codec changed the colour space (YBR_FULL_422 from JPEG
//   decoded to RGB, YBR_ICT/YBR_RCT from JPEG 2000 decoded to RGB; PS3.5 8.2.1, 8.2.4);
// - Planar Configuration 0 for colour (native data is written colour-by-pixel; PS3.3 C.7.6.3.1.3);
// - Lossy Image Compression "01" once a lossy stream was decoded (PS3.3 C.7.6.1.1.5: it may never go
//   back to "00"), with the method if none was recorded;
// - the Extended Offset Table and its lengths removed: they describe fragments (PS3.3 C.7.6.3.1.8).
import type { Change } from './dataset-rewrite.ts';
import { topLevelElements } from './dataset-rewrite.ts';

export class PixelModuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PixelModuleError';
  }
}

export type PixelModule = {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  photometricInterpretation: string;
  planarConfiguration?: number;
  numberOfFrames: number;
  /** (0028,2110) as written, trimmed. */
  lossyImageCompression?: string;
  hasLossyMethod: boolean;
  /** (7FE0,0001) value bytes. */
  extendedOffsetTable?: Uint8Array;
  hasExtendedOffsetTableLengths: boolean;
};

const T = {
  samplesPerPixel: 0x00280002,
  photometric: 0x00280004,
  planar: 0x00280006,
  frames: 0x00280008,
  rows: 0x00280010,
  columns: 0x00280011,
  bitsAllocated: 0x00280100,
  bitsStored: 0x00280101,
  pixelRepresentation: 0x00280103,
  lossy: 0x00282110,
  lossyMethod: 0x00282114,
  eot: 0x7fe00001,
  eotLengths: 0x7fe00002,
} as const;

/** Reads the module from a header in an explicit VR little endian syntax. Throws PixelModuleError. */
export function readPixelModule(header: Uint8Array, transferSyntaxUid: string): PixelModule {
  const values = new Map<number, Uint8Array>();
  for (const s of topLevelElements(header, transferSyntaxUid)) if (!values.has(s.tag)) values.set(s.tag, header.subarray(s.valueStart, s.end));
  const text = (tag: number): string | undefined => {
    const v = values.get(tag);
    return v === undefined ? undefined : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1').replace(/[\0 ]+$/, '').trim();
  };
  const us = (tag: number, name: string, required: boolean): number | undefined => {
    const v = values.get(tag);
    if (v === undefined || v.length === 0) {
      if (required) throw new PixelModuleError(`${name} is missing; it is required to decode pixel data (PS3.3 C.7.6.3)`);
      return undefined;
    }
    if (v.length < 2) throw new PixelModuleError(`${name} has ${v.length} byte(s); US needs 2`);
    return v[0] | (v[1] << 8);
  };
  const rows = us(T.rows, 'Rows', true)!;
  const columns = us(T.columns, 'Columns', true)!;
  const samplesPerPixel = us(T.samplesPerPixel, 'Samples per Pixel', true)!;
  const bitsAllocated = us(T.bitsAllocated, 'Bits Allocated', true)!;
  const bitsStored = us(T.bitsStored, 'Bits Stored', false) ?? bitsAllocated;
  const pixelRepresentation = us(T.pixelRepresentation, 'Pixel Representation', false) ?? 0;
  const planarConfiguration = us(T.planar, 'Planar Configuration', false);
  const photometricInterpretation = text(T.photometric);
  if (photometricInterpretation === undefined || photometricInterpretation === '') {
    throw new PixelModuleError('Photometric Interpretation is missing; it is required to decode pixel data (PS3.3 C.7.6.3)');
  }
  const framesText = text(T.frames);
  const numberOfFrames = framesText === undefined || framesText === '' ? 1 : Number(framesText);
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1) throw new PixelModuleError(`Number of Frames ${JSON.stringify(framesText)} is not a positive integer`);
  if (rows === 0 || columns === 0) throw new PixelModuleError(`image of ${rows}x${columns} pixels has no pixels`);
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new PixelModuleError(`Samples per Pixel ${samplesPerPixel} is not 1 or 3`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new PixelModuleError(`Bits Allocated ${bitsAllocated} is not supported for decompression (8 or 16)`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw new PixelModuleError(`Bits Stored ${bitsStored} does not fit Bits Allocated ${bitsAllocated}`);
  const m: PixelModule = {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    photometricInterpretation,
    numberOfFrames,
    hasLossyMethod: values.has(T.lossyMethod),
    hasExtendedOffsetTableLengths: values.has(T.eotLengths),
  };
  if (planarConfiguration !== undefined) m.planarConfiguration = planarConfiguration;
  const lossy = text(T.lossy);
  if (lossy !== undefined) m.lossyImageCompression = lossy;
  const eot = values.get(T.eot);
  if (eot !== undefined) m.extendedOffsetTable = eot;
  return m;
}

/** Bytes of one native frame. */
export function nativeFrameLength(m: PixelModule): number {
  return m.rows * m.columns * m.samplesPerPixel * (m.bitsAllocated / 8);
}

export type DecodedImage = {
  /** Photometric Interpretation of the decoded samples. */
  photometricInterpretation: string;
  /** The method (PS3.3 C.7.6.1.1.5.1 Defined Terms) if the decoded stream was lossy. */
  lossyMethod?: 'ISO_10918_1' | 'ISO_14495_1' | 'ISO_15444_1';
};

/** Header changes for native pixel data (see the file comment). */
export function nativeHeaderChanges(m: PixelModule, decoded: DecodedImage): Change[] {
  const changes: Change[] = [];
  if (decoded.photometricInterpretation !== m.photometricInterpretation) {
    changes.push({ tag: '00280004', action: 'set', vr: 'CS', value: decoded.photometricInterpretation });
  }
  if (m.samplesPerPixel > 1 && m.planarConfiguration !== 0) changes.push({ tag: '00280006', action: 'set', vr: 'US', value: 0 });
  if (decoded.lossyMethod !== undefined && m.lossyImageCompression !== '01') {
    changes.push({ tag: '00282110', action: 'set', vr: 'CS', value: '01' });
    if (!m.hasLossyMethod) changes.push({ tag: '00282114', action: 'set', vr: 'CS', value: decoded.lossyMethod });
  }
  if (m.extendedOffsetTable !== undefined) changes.push({ tag: '7FE00001', action: 'remove' });
  if (m.hasExtendedOffsetTableLengths) changes.push({ tag: '7FE00002', action: 'remove' });
  return changes;
}
