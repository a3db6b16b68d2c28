// Decompression of one instance from an encapsulated transfer syntax to native pixel data, for a
// peer that accepted none of the compressed syntaxes (PS3.5 A.4, 8.2). The forwarder calls it
// only then: every other path streams files from disk, but a codec needs the whole frame, so
// this holds ONE instance in memory (input, decoded pixels and output), bounded by
// MAX_DECOMPRESS_BYTES; a larger one is refused with DecompressError 'too-large'.
//
// Output: the dataset in Explicit VR Little Endian, or Implicit VR Little Endian (converted here
// with protocol/ts-convert.ts), as asked. Everything before Pixel Data keeps its bytes except the
// Image Pixel attributes native data needs (protocol/pixel-module.ts); Pixel Data becomes OB
// (Bits Allocated 8) or OW (16), frames one after another, colour-by-pixel; what follows Pixel
// Data (padding, signatures) is kept. A (7FE0,0000) group length present is kept right.
//
// Syntaxes (the codec is chosen from the frame's SOF marker, so a stream filed under the wrong
// JPEG syntax still decodes):
//   .4.50 JPEG Baseline, .4.51 JPEG Extended 8-bit  libjpeg-turbo (WASM); colour out as RGB; lossy
//   .4.51 JPEG Extended 12-bit (process 4), grey     protocol/jpeg-extended.ts (IJG islow IDCT); lossy
//   .4.51 12-bit colour                              refused (dead letter): no decoder
//   .4.57, .4.70 JPEG Lossless                      jpeg-lossless-decoder-js; 1 component up to 16 bits, 3 up to 8
//   .4.80, .4.81 JPEG-LS                            CharLS (WASM); NEAR > 0 is lossy
//   .4.90, .4.91 JPEG 2000                          OpenJPEG (WASM); YBR_RCT/YBR_ICT out as RGB; 9/7 wavelet is lossy
//   .5 RLE Lossless                                 protocol/rle.ts
// Anything else (HTJ2K, MPEG, deflated, JPIP ...) is refused with 'unsupported-syntax'.
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { RewriteError, rewriteHeader, topLevelElements } from '../../protocol/dataset-rewrite.ts';
import { EncapsulatedError, framesOf, parseExtendedOffsetTable, readEncapsulatedPixelData, startsJ2k, startsJpeg } from '../../protocol/encapsulated.ts';
import { JpegHeaderError, j2kCodestream, libjpegAssumesYcbcr, readJpegHeader, withAdobeRgbMarker } from '../../protocol/jpeg-header.ts';
import { decodeJpegExtendedGrey } from '../../protocol/jpeg-extended.ts';
import { PixelModuleError, nativeFrameLength, nativeHeaderChanges, readPixelModule } from '../../protocol/pixel-module.ts';
import type { DecodedImage, PixelModule } from '../../protocol/pixel-module.ts';
import { RleError, decodeRleFrame } from '../../protocol/rle.ts';
import { TransferSyntaxConverter } from '../../protocol/ts-convert.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from '../../protocol/uids.ts';
import { PIXEL_DATA } from '../../protocol/data-elements.ts';
import { CodecError, decodeJ2k, decodeJpeg8, decodeJpegLossless, decodeJpegLs } from './codecs.ts';
import type { DecodedFrame } from './codecs.ts';

/** 1 GiB: the most input, or decoded pixel data, one decompression will hold. */
export const MAX_DECOMPRESS_BYTES = 1024 * 1024 * 1024;

export type DecompressErrorCode = 'unsupported-syntax' | 'unsupported-image' | 'too-large' | 'malformed' | 'codec-error';

/** Why an instance cannot be decompressed; the forwarder turns it into a dead letter with this message. */
export class DecompressError extends Error {
  readonly code: DecompressErrorCode;
  readonly transferSyntaxUid: string;
  constructor(code: DecompressErrorCode, transferSyntaxUid: string, message: string) {
    super(message);
    this.name = 'DecompressError';
    this.code = code;
    this.transferSyntaxUid = transferSyntaxUid;
  }
}

type Family = 'jpeg' | 'jpeg-ls' | 'j2k' | 'rle';

const FAMILY: Readonly<Record<string, Family>> = {
  '1.2.840.10008.1.2.4.50': 'jpeg',
  '1.2.840.10008.1.2.4.51': 'jpeg',
  '1.2.840.10008.1.2.4.57': 'jpeg',
  '1.2.840.10008.1.2.4.70': 'jpeg',
  '1.2.840.10008.1.2.4.80': 'jpeg-ls',
  '1.2.840.10008.1.2.4.81': 'jpeg-ls',
  '1.2.840.10008.1.2.4.90': 'j2k',
  '1.2.840.10008.1.2.4.91': 'j2k',
  '1.2.840.10008.1.2.5': 'rle',
};

/**
 * True if decompressDataset handles this syntax at all. A given instance may still be refused
 * (JPEG Extended 12-bit, 16-bit colour lossless JPEG, > 1 GiB): that is a DecompressError.
 */
export function canDecompress(tsUid: string): boolean {
  return FAMILY[tsUid] !== undefined;
}

const PIXEL_GROUP_LENGTH = 0x7fe00000;
const YBR_J2K = new Set(['YBR_ICT', 'YBR_RCT']);

type FrameResult = { frame: DecodedFrame; image: DecodedImage };

/** PS3.5 8.2.1: DCT processes are lossy, process 14 (SOF3/7/11/15) is lossless. */
function isLosslessJpegSof(sof: number): boolean {
  return sof === 0xc3 || sof === 0xc7 || sof === 0xcb || sof === 0xcf;
}

async function decodeJpegFamily(bytes: Uint8Array, m: PixelModule, ts: string): Promise<FrameResult> {
  const h = readJpegHeader(bytes);
  if (h.sof === 0xf7) {
    const f = await decodeJpegLs(bytes);
    return jpegLsResult(f, m);
  }
  if (isLosslessJpegSof(h.sof)) {
    if (h.components.length > 1 && h.precision > 8) {
      throw new DecompressError('unsupported-image', ts, `JPEG lossless with ${h.components.length} components of ${h.precision} bits: jpeg-lossless-decoder-js decodes colour only up to 8 bits`);
    }
    return { frame: decodeJpegLossless(bytes), image: { photometricInterpretation: m.photometricInterpretation } };
  }
  if (h.precision > 8) {
    if ((h.sof !== 0xc0 && h.sof !== 0xc1) || h.components.length !== 1) {
      throw new DecompressError(
        'unsupported-image',
        ts,
        `JPEG with ${h.precision}-bit samples, ${h.components.length} component(s) and SOF FF${h.sof.toString(16).toUpperCase()} cannot be decompressed: ` +
          'libjpeg-turbo (WASM) decodes 8-bit only and the built-in 12-bit decoder takes sequential Huffman grey images only',
      );
    }
    const g = decodeJpegExtendedGrey(bytes);
    const frame: DecodedFrame = { samples: new Uint8Array(g.samples.buffer, g.samples.byteOffset, g.samples.byteLength), rows: g.rows, columns: g.columns, components: 1, bytesPerSample: 2 };
    return { frame, image: { photometricInterpretation: m.photometricInterpretation, lossyMethod: 'ISO_10918_1' } };
  }
  // libjpeg decides the colour space from markers (PS3.5 8.2.1 leaves it to the JPEG stream);
  // A JFIF or Adobe marker states the colour space; without one libjpeg guesses, and the guess is overruled.
  const guessing = !h.jfif && h.adobeTransform === undefined;
  const input = guessing && m.photometricInterpretation === 'RGB' && libjpegAssumesYcbcr(h) ? withAdobeRgbMarker(bytes) : bytes;
  const frame = await decodeJpeg8(input);
  const photometricInterpretation = frame.components === 3 ? 'RGB' : m.photometricInterpretation;
  return { frame, image: { photometricInterpretation, lossyMethod: 'ISO_10918_1' } };
}

function jpegLsResult(f: DecodedFrame & { nearLossless: number }, m: PixelModule): FrameResult {
  const image: DecodedImage = { photometricInterpretation: m.photometricInterpretation };
  if (f.nearLossless > 0) image.lossyMethod = 'ISO_14495_1';
  return { frame: f, image };
}

async function decodeFrame(family: Family, bytes: Uint8Array, m: PixelModule, ts: string): Promise<FrameResult> {
  switch (family) {
    case 'rle': {
      const samples = decodeRleFrame(bytes, { rows: m.rows, columns: m.columns, samplesPerPixel: m.samplesPerPixel, bitsAllocated: m.bitsAllocated });
      const frame: DecodedFrame = { samples, rows: m.rows, columns: m.columns, components: m.samplesPerPixel, bytesPerSample: m.bitsAllocated > 8 ? 2 : 1 };
      return { frame, image: { photometricInterpretation: m.photometricInterpretation } };
    }
    case 'jpeg':
      return decodeJpegFamily(bytes, m, ts);
    case 'jpeg-ls':
      if (!startsJpeg(bytes)) throw new DecompressError('malformed', ts, 'JPEG-LS frame does not start with an SOI marker');
      return jpegLsResult(await decodeJpegLs(bytes), m);
    case 'j2k': {
      const f = await decodeJ2k(j2kCodestream(bytes));
      if (f.signed && f.bytesPerSample === 1) {
        // The OpenJPEG build clamps signed samples of 8 bits or fewer into 0..127: refuse rather than send wrong pixels.
        throw new DecompressError('unsupported-image', ts, 'JPEG 2000 with signed samples of 8 bits or fewer: the OpenJPEG WASM build decodes them wrongly');
      }
      const image: DecodedImage = {
        photometricInterpretation: f.components === 3 && YBR_J2K.has(m.photometricInterpretation) ? 'RGB' : m.photometricInterpretation,
      };
      if (!f.reversible) image.lossyMethod = 'ISO_15444_1';
      return { frame: f, image };
    }
  }
}

/** Copies one decoded frame into the native pixel data, checking it against the dataset's Image Pixel attributes. */
function placeFrame(f: DecodedFrame, m: PixelModule, out: Uint8Array, at: number, index: number, ts: string): void {
  if (f.rows !== m.rows || f.columns !== m.columns || f.components !== m.samplesPerPixel) {
    throw new DecompressError(
      'malformed',
      ts,
      `frame ${index + 1} decodes to ${f.columns}x${f.rows} with ${f.components} component(s); the dataset says ${m.columns}x${m.rows} with ${m.samplesPerPixel}`,
    );
  }
  const target = m.bitsAllocated / 8;
  const count = m.rows * m.columns * m.samplesPerPixel;
  if (f.samples.length < count * f.bytesPerSample) throw new DecompressError('codec-error', ts, `frame ${index + 1}: the codec returned too few samples`);
  if (f.bytesPerSample === target) {
    out.set(f.samples.subarray(0, count * target), at);
    return;
  }
  if (f.bytesPerSample === 1 && target === 2) {
    // 8-bit codestream in 16-bit storage: widen (PS3.5 8.2: the stream's precision may be below Bits Allocated).
    const signed = m.pixelRepresentation === 1 && m.bitsStored === 8;
    for (let i = 0; i < count; i++) {
      const v = f.samples[i];
      out[at + 2 * i] = v;
      out[at + 2 * i + 1] = signed && v & 0x80 ? 0xff : 0;
    }
    return;
  }
  throw new DecompressError('malformed', ts, `frame ${index + 1} has ${8 * f.bytesPerSample}-bit samples but Bits Allocated is ${m.bitsAllocated}`);
}

function explicitPixelDataHeader(vr: 'OB' | 'OW', length: number): Uint8Array {
  const h = new Uint8Array(12);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, 0x7fe0, true);
  dv.setUint16(2, 0x0010, true);
  h[4] = vr.charCodeAt(0);
  h[5] = vr.charCodeAt(1);
  dv.setUint32(8, length, true);
  return h;
}

/** Adjusts a (7FE0,0000) group length in the rewritten header by the size change of Pixel Data. */
function fixPixelGroupLength(header: Uint8Array, delta: number): Uint8Array {
  const span = topLevelElements(header, EXPLICIT_VR_LITTLE_ENDIAN).find((s) => s.tag === PIXEL_GROUP_LENGTH && s.length === 4);
  if (span === undefined || delta === 0) return header;
  const copy = new Uint8Array(header);
  const dv = new DataView(copy.buffer);
  dv.setUint32(span.valueStart, (dv.getUint32(span.valueStart, true) + delta) >>> 0, true);
  return copy;
}

/** The parts as one dataset in `toTsUid`; the converter passes large values through without copying them. */
function assemble(parts: Uint8Array[], toTsUid: string): Uint8Array {
  if (toTsUid === EXPLICIT_VR_LITTLE_ENDIAN) return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const c = new TransferSyntaxConverter(EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN);
  const out = parts.flatMap((p) => c.push(p));
  out.push(...c.end());
  return Buffer.concat(out);
}

function wrap(e: unknown, ts: string): unknown {
  if (e instanceof DecompressError) return e;
  if (e instanceof CodecError) return new DecompressError('codec-error', ts, e.message);
  const inputFault =
    e instanceof RleError || e instanceof EncapsulatedError || e instanceof JpegHeaderError || e instanceof PixelModuleError || e instanceof RewriteError;
  if (inputFault) return new DecompressError('malformed', ts, e.message);
  return e;
}

/**
 * The dataset (no File Meta Information) with native pixel data, in `toTsUid`. `dataset` is the
 * whole instance in `fromTsUid` (Explicit VR LE with encapsulated Pixel Data). Throws
 * DecompressError when the syntax or image cannot be decoded, or the instance is too large.
 */
export async function decompressDataset(
  dataset: Uint8Array,
  fromTsUid: string,
  toTsUid: typeof EXPLICIT_VR_LITTLE_ENDIAN | typeof IMPLICIT_VR_LITTLE_ENDIAN,
): Promise<Uint8Array> {
  const family = FAMILY[fromTsUid];
  if (family === undefined) throw new DecompressError('unsupported-syntax', fromTsUid, `no decompressor for transfer syntax ${fromTsUid}`);
  if (toTsUid !== EXPLICIT_VR_LITTLE_ENDIAN && toTsUid !== IMPLICIT_VR_LITTLE_ENDIAN) {
    throw new DecompressError('unsupported-syntax', fromTsUid, `decompression writes Explicit or Implicit VR Little Endian, not ${toTsUid}`);
  }
  if (dataset.length > MAX_DECOMPRESS_BYTES) {
    throw new DecompressError('too-large', fromTsUid, `instance of ${dataset.length} bytes exceeds the ${MAX_DECOMPRESS_BYTES}-byte decompression limit`);
  }
  try {
    const walker = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
    walker.push(dataset);
    const walked = walker.end();
    if (walked.problem !== undefined) throw new DecompressError('malformed', fromTsUid, walked.problem);
    const at = walked.pixelDataOffset;
    const pixelTag = at === undefined ? undefined : (((dataset[at] | (dataset[at + 1] << 8)) << 16) | dataset[at + 2] | (dataset[at + 3] << 8)) >>> 0;
    if (at === undefined || pixelTag !== PIXEL_DATA) {
      // No (integer) Pixel Data: nothing is compressed, so the bytes are already Explicit VR LE.
      return assemble([dataset], toTsUid);
    }
    const header = dataset.subarray(0, at);
    const m = readPixelModule(header, fromTsUid);
    const frameLength = nativeFrameLength(m);
    const total = frameLength * m.numberOfFrames;
    if (total > MAX_DECOMPRESS_BYTES) {
      throw new DecompressError('too-large', fromTsUid, `${m.numberOfFrames} frame(s) of ${frameLength} bytes exceed the ${MAX_DECOMPRESS_BYTES}-byte decompression limit`);
    }
    const encapsulated = readEncapsulatedPixelData(dataset, at);
    const opts: Parameters<typeof framesOf>[2] = { startsFrame: family === 'j2k' ? startsJ2k : family === 'rle' ? undefined : startsJpeg };
    if (m.extendedOffsetTable !== undefined) opts.extendedOffsetTable = parseExtendedOffsetTable(m.extendedOffsetTable);
    const frames = framesOf(encapsulated, m.numberOfFrames, opts);

    const pixels = new Uint8Array(total + (total % 2)); // PS3.5 7.1.1: even value length, padded with 0
    let image: DecodedImage | undefined;
    for (let i = 0; i < frames.length; i++) {
      const r = await decodeFrame(family, frames[i], m, fromTsUid);
      placeFrame(r.frame, m, pixels, i * frameLength, i, fromTsUid);
      if (image === undefined || (r.image.lossyMethod !== undefined && image.lossyMethod === undefined)) image = r.image;
      // Let other work run between frames of a large multi-frame instance.
      if (i + 1 < frames.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const changes = nativeHeaderChanges(m, image!);
    const elementHeader = explicitPixelDataHeader(m.bitsAllocated > 8 ? 'OW' : 'OB', pixels.length);
    const delta = elementHeader.length + pixels.length - (encapsulated.end - at);
    const newHeader = fixPixelGroupLength(rewriteHeader(header, fromTsUid, changes), delta);
    // Peak memory: the input, the decoded pixels and the output (about input + 2x decoded size).
    return assemble([newHeader, elementHeader, pixels, dataset.subarray(encapsulated.end)], toTsUid);
  } catch (e) {
    throw wrap(e, fromTsUid);
  }
}
