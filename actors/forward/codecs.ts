// Image codecs from the npm registry, loaded on first use. The cornerstone codecs are Emscripten
// WASM builds shipped inside their packages (CommonJS factories that read the .wasm next to
// them; nothing is fetched): libjpeg-turbo (8-bit JPEG, ISO 10918-1 DCT processes), CharLS
// (JPEG-LS, ISO 14495-1) and OpenJPEG (JPEG 2000, ISO 15444-1). jpeg-lossless-decoder-js is
// plain JavaScript for JPEG lossless (process 14, 2–16 bit). Decoding is synchronous once a
// module is loaded; only the loading is asynchronous.
//
// Each decode returns the samples interleaved (colour-by-pixel), little endian, 1 byte per
// sample up to 8 bits and 2 above, with the size and component count the codestream declares;
// the caller checks them against the dataset.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

export type DecodedFrame = {
  samples: Uint8Array;
  columns: number;
  rows: number;
  components: number;
  bytesPerSample: 1 | 2;
};

type FrameInfo = { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
// The Embind classes the packages export (see their README "API" sections).
type WasmDecoder = {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  delete(): void;
};
type JpegLsDecoder = WasmDecoder & { getInterleaveMode(): number; getNearLossless(): number };
type J2kDecoder = WasmDecoder & { getIsReversible(): boolean };
type LibJpegTurbo = { JPEGDecoder: new () => WasmDecoder };
type CharLs = { JpegLSDecoder: new () => JpegLsDecoder };
type OpenJpeg = { J2KDecoder: new () => J2kDecoder };
type LosslessDecoder = { decode(buffer: ArrayBuffer, offset: number, length: number): Uint8Array | Uint16Array; numComp: number; xDim: number; yDim: number };
type Lossless = { Decoder: new () => LosslessDecoder };
type EmscriptenFactory<T> = (module: { print: (s: string) => void; printErr: (s: string) => void }) => Promise<T>;

const modules = new Map<string, Promise<unknown>>();

function load<T>(specifier: string): Promise<T> {
  let p = modules.get(specifier);
  if (p === undefined) {
    const factory = require(specifier) as EmscriptenFactory<T>;
    // OpenJPEG logs "[INFO] ..." for every frame through print; keep stdout for our logger.
    p = factory({ print: () => {}, printErr: () => {} });
    p.catch(() => modules.delete(specifier));
    modules.set(specifier, p);
  }
  return p as Promise<T>;
}

export const loadLibJpegTurbo = (): Promise<LibJpegTurbo> => load('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs');
export const loadCharLs = (): Promise<CharLs> => load('@cornerstonejs/codec-charls/decodewasmjs');
export const loadOpenJpeg = (): Promise<OpenJpeg> => load('@cornerstonejs/codec-openjpeg/decodewasmjs');
function loadLossless(): Lossless {
  return require('jpeg-lossless-decoder-js') as Lossless;
}

/** Runs one Embind decoder; returns a copy of its output (the WASM heap is reused) and what it reports. */
function runWasm<D extends WasmDecoder, X>(decoder: D, frame: Uint8Array, name: string, extra: (d: D) => X): { frame: DecodedFrame; extra: X } {
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    try {
      decoder.decode();
    } catch (e) {
      // Embind rethrows C++ exceptions as heap pointers; there is no message to show.
      throw new CodecError(`${name} could not decode the frame${e instanceof Error ? `: ${e.message}` : ' (corrupt or unsupported codestream)'}`);
    }
    const info = decoder.getFrameInfo();
    const samples = decoder.getDecodedBuffer().slice();
    const bytesPerSample = info.bitsPerSample > 8 ? 2 : 1;
    return {
      frame: { samples, columns: info.width, rows: info.height, components: info.componentCount, bytesPerSample },
      extra: extra(decoder),
    };
  } finally {
    decoder.delete();
  }
}

/** 8-bit JPEG (baseline, extended 8-bit, progressive). Three components come out as RGB when libjpeg took them as YCbCr. */
export async function decodeJpeg8(frame: Uint8Array): Promise<DecodedFrame> {
  const m = await loadLibJpegTurbo();
  return runWasm(new m.JPEGDecoder(), frame, 'libjpeg-turbo', () => undefined).frame;
}

/** JPEG lossless (process 14, any selection value). */
export function decodeJpegLossless(frame: Uint8Array): DecodedFrame {
  const { Decoder } = loadLossless();
  const d = new Decoder();
  let out: Uint8Array | Uint16Array;
  try {
    out = d.decode(frame.buffer as ArrayBuffer, frame.byteOffset, frame.byteLength);
  } catch (e) {
    throw new CodecError(`jpeg-lossless-decoder-js could not decode the frame: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bytesPerSample = out.BYTES_PER_ELEMENT === 2 ? 2 : 1;
  // Uint16Array holds host-order samples; every platform Node runs on here is little endian.
  const samples = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  return { samples, columns: d.xDim, rows: d.yDim, components: d.numComp, bytesPerSample };
}

/** JPEG-LS; `nearLossless` > 0 means lossy (ISO 14495-1 NEAR). Uninterleaved colour is reordered to colour-by-pixel. */
export async function decodeJpegLs(frame: Uint8Array): Promise<DecodedFrame & { nearLossless: number }> {
  const m = await loadCharLs();
  const { frame: f, extra } = runWasm(new m.JpegLSDecoder(), frame, 'CharLS', (d) => ({ interleave: d.getInterleaveMode(), near: d.getNearLossless() }));
  // Interleave mode 0 (none): CharLS returns one plane per component.
  const samples = extra.interleave === 0 && f.components > 1 ? planarToInterleaved(f.samples, f.components, f.bytesPerSample) : f.samples;
  return { ...f, samples, nearLossless: extra.near };
}

/** JPEG 2000 codestream; OpenJPEG applies the inverse component transform (RCT/ICT) when the codestream says so. */
export async function decodeJ2k(frame: Uint8Array): Promise<DecodedFrame & { reversible: boolean; signed: boolean }> {
  const m = await loadOpenJpeg();
  const { frame: f, extra } = runWasm(new m.J2KDecoder(), frame, 'OpenJPEG', (d) => ({ reversible: d.getIsReversible(), signed: d.getFrameInfo().isSigned === true }));
  return { ...f, ...extra };
}

/** Colour-by-plane samples to colour-by-pixel. */
export function planarToInterleaved(planar: Uint8Array, components: number, bytesPerSample: number): Uint8Array {
  const out = new Uint8Array(planar.length);
  const plane = planar.length / components;
  const pixels = plane / bytesPerSample;
  for (let c = 0; c < components; c++) {
    for (let p = 0; p < pixels; p++) {
      for (let b = 0; b < bytesPerSample; b++) out[(p * components + c) * bytesPerSample + b] = planar[c * plane + p * bytesPerSample + b];
    }
  }
  return out;
}
