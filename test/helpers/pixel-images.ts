// Test images for the decompression tests: small native Explicit VR LE instances of any
// geometry (8/16 bit, grey or RGB, signed, multi-frame) with smooth-plus-noise content that
// every codec compresses non-trivially; encapsulated instances built from given fragments
// (for JPEG 2000, which DCMTK cannot encode); and DCMTK runs in a temporary directory.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { part10Header, readPart10Header } from '../../protocol/part10.ts';
import { encodeDataset, itemHeader, newUid } from './dicom-files.ts';
import type { Element } from './dicom-files.ts';
import { run } from './processes.ts';

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
const LE = { explicitVr: true, littleEndian: true };

export type ImageSpec = {
  rows: number;
  columns: number;
  samplesPerPixel: 1 | 3;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  signed?: boolean;
  frames: number;
  photometric?: string;
};

/** Native pixel data for a spec: a diagonal gradient per sample plus a little deterministic noise. */
export function pixelsFor(spec: ImageSpec): Uint8Array {
  const { rows, columns, samplesPerPixel: spp, bitsAllocated, bitsStored, frames } = spec;
  const bytes = bitsAllocated / 8;
  const out = new Uint8Array(rows * columns * spp * bytes * frames);
  const dv = new DataView(out.buffer);
  const max = 2 ** bitsStored;
  let seed = 12345;
  let i = 0;
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < columns; x++) {
        for (let s = 0; s < spp; s++, i++) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          const ramp = (x * 3 + y * 5 + s * 40 + f * 17) / (columns * 3 + rows * 5 + 200);
          let v = Math.min(max - 1, Math.floor(ramp * max * 0.9) + (seed % 7));
          if (spec.signed) v -= max / 2;
          if (bytes === 1) out[i] = v & 0xff;
          else dv.setUint16(i * 2, v & 0xffff, true);
        }
      }
    }
  }
  return out;
}

/** The Image Pixel elements (and the identifying ones) of a spec, without Pixel Data. */
export function imageElements(spec: ImageSpec, extra: Element[] = []): Element[] {
  const els: Element[] = [
    { tag: 0x00080008, vr: 'CS', value: ['DERIVED', 'SECONDARY'] },
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
    { tag: 0x00080018, vr: 'UI', value: newUid() },
    { tag: 0x00080060, vr: 'CS', value: 'OT' },
    { tag: 0x00090010, vr: 'LO', value: 'ROUTER TEST' },
    { tag: 0x00091001, vr: 'LO', value: 'private text' },
    { tag: 0x00100010, vr: 'PN', value: 'TEST^PIXELS' },
    { tag: 0x0020000d, vr: 'UI', value: newUid() },
    { tag: 0x0020000e, vr: 'UI', value: newUid() },
    { tag: 0x00280002, vr: 'US', value: [spec.samplesPerPixel] },
    { tag: 0x00280004, vr: 'CS', value: spec.photometric ?? (spec.samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2') },
  ];
  if (spec.samplesPerPixel === 3) els.push({ tag: 0x00280006, vr: 'US', value: [0] });
  if (spec.frames > 1) els.push({ tag: 0x00280008, vr: 'IS', value: String(spec.frames) });
  els.push(
    { tag: 0x00280010, vr: 'US', value: [spec.rows] },
    { tag: 0x00280011, vr: 'US', value: [spec.columns] },
    { tag: 0x00280100, vr: 'US', value: [spec.bitsAllocated] },
    { tag: 0x00280101, vr: 'US', value: [spec.bitsStored] },
    { tag: 0x00280102, vr: 'US', value: [spec.bitsStored - 1] },
    { tag: 0x00280103, vr: 'US', value: [spec.signed ? 1 : 0] },
    ...extra,
  );
  return els.sort((a, b) => a.tag - b.tag);
}

function part10(dataset: Uint8Array, ts: string): Buffer {
  const header = part10Header({
    sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
    sopInstanceUid: '1.2.3.4.5.6',
    transferSyntaxUid: ts,
    implementationClassUid: '2.25.1',
    implementationVersionName: 'PIXELTEST',
  });
  return Buffer.concat([header, dataset]);
}

/** A native Explicit VR LE Part-10 instance and its pixel data. */
export function nativeInstance(spec: ImageSpec): { file: Buffer; pixels: Uint8Array } {
  const pixels = pixelsFor(spec);
  const padded = pixels.length % 2 === 1 ? Buffer.concat([pixels, Buffer.alloc(1)]) : Buffer.from(pixels);
  const els = [...imageElements(spec), { tag: 0x7fe00010, vr: spec.bitsAllocated === 8 ? 'OB' : 'OW', value: padded } as Element];
  return { file: part10(encodeDataset(els, LE), EXPLICIT_LE), pixels };
}

/** An encapsulated dataset (no meta): `elements` (ascending, below 7FE0,0010), then fragments with the given Basic Offset Table. */
export function encapsulatedDataset(elements: Element[], fragments: Uint8Array[], offsetTable: number[] = [], trailer: Element[] = []): Uint8Array {
  const even = (f: Uint8Array) => (f.length % 2 === 1 ? Buffer.concat([f, Buffer.alloc(1)]) : Buffer.from(f));
  const bot = Buffer.alloc(4 * offsetTable.length);
  offsetTable.forEach((o, i) => bot.writeUInt32LE(o, 4 * i));
  const parts: Buffer[] = [encodeDataset(elements, LE), Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff])];
  parts.push(itemHeader(0xfffee000, bot.length, LE), bot);
  for (const f of fragments) parts.push(itemHeader(0xfffee000, even(f).length, LE), even(f));
  parts.push(itemHeader(0xfffee0dd, 0, LE), encodeDataset(trailer, LE));
  return Buffer.concat(parts);
}

/** Offsets of fragments (each padded to even length) from the first fragment item: a Basic Offset Table for one fragment per frame. */
export function offsetsOf(fragments: Uint8Array[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const f of fragments) {
    out.push(at);
    at += 8 + f.length + (f.length % 2);
  }
  return out;
}

export function withMeta(dataset: Uint8Array, ts: string): Buffer {
  return part10(dataset, ts);
}

/** The dataset of a Part-10 file and its transfer syntax. */
export function datasetAndSyntax(file: Uint8Array): { dataset: Uint8Array; ts: string } {
  const { meta, datasetOffset } = readPart10Header(file);
  return { dataset: file.subarray(datasetOffset), ts: meta.transferSyntaxUid };
}

/** The value of top-level native Pixel Data in an Explicit (or Implicit) VR LE dataset. */
export function nativePixelData(dataset: Uint8Array, explicitVr = true): { vr: string; value: Uint8Array } {
  const w = new DatasetWalker({ explicitVr, littleEndian: true, stopAtPixelData: true });
  w.push(dataset);
  const at = w.end().pixelDataOffset;
  if (at === undefined) throw new Error('no Pixel Data');
  const dv = new DataView(dataset.buffer, dataset.byteOffset, dataset.byteLength);
  if (!explicitVr) return { vr: '', value: dataset.subarray(at + 8, at + 8 + dv.getUint32(at + 4, true)) };
  const vr = String.fromCharCode(dataset[at + 4], dataset[at + 5]);
  return { vr, value: dataset.subarray(at + 12, at + 12 + dv.getUint32(at + 8, true)) };
}

/** Runs a DCMTK tool on dir/input, writing dir/output; returns the output file's bytes. */
export async function dcmtk(tool: string, args: string[], dir: string, input: string, output: string): Promise<Buffer> {
  const r = await run(tool, [...args, join(dir, input), join(dir, output)]);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return readFileSync(join(dir, output));
}

export function write(dir: string, name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}
