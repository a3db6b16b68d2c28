// Test and benchmark data: Part-10 instances in Implicit VR LE, Explicit VR LE, Explicit VR BE
// and encapsulated JPEG Baseline, built with a small element encoder of our own (dcmjs's writer
// has no real Explicit VR Big Endian support). Output is checked against DCMTK dcmdump in
// test/helpers/dicom-files.test.ts.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { part10Header, readPart10Header } from '../../protocol/part10.ts';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
} as const;

export const SOP = {
  ct: '1.2.840.10008.5.1.4.1.1.2',
  mr: '1.2.840.10008.5.1.4.1.1.4',
  pet: '1.2.840.10008.5.1.4.1.1.128',
  secondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
} as const;

export const TEST_IMPLEMENTATION_CLASS_UID = '2.25.225296870465284226546432126046434815427';
export const TEST_IMPLEMENTATION_VERSION = 'ROUTER_TEST_1';
export const PRIVATE_CREATOR = 'ROUTER TEST';
export const PHILIPS_PET_CREATOR = 'Philips PET Private Group';

/** (explicitVr, littleEndian) of a transfer syntax's dataset encoding; encapsulated ones are Explicit VR LE. */
export function encodingOf(transferSyntaxUid: string): { explicitVr: boolean; littleEndian: boolean } {
  if (transferSyntaxUid === TS.implicitLE) return { explicitVr: false, littleEndian: true };
  if (transferSyntaxUid === TS.explicitBE) return { explicitVr: true, littleEndian: false };
  return { explicitVr: true, littleEndian: true };
}

/** A fresh UID under the UUID-derived root 2.25 (PS3.5 B.2). */
export function newUid(): string {
  return '2.25.' + BigInt('0x' + randomBytes(16).toString('hex')).toString();
}

export type Item = { elements: Element[]; undefinedLength?: boolean };
export type Element = {
  tag: number;
  vr: string;
  /** Strings (multi-valued joined by \), numbers for binary numeric VRs, raw bytes, items for SQ, fragments for encapsulated pixel data. */
  value: string | string[] | number[] | Uint8Array | Item[] | { fragments: Uint8Array[] };
  undefinedLength?: boolean;
};
export type Encoding = { explicitVr: boolean; littleEndian: boolean };

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const NUMBER_SIZE: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8 };

function tagBytes(tag: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) {
    b.writeUInt16LE(tag >>> 16, 0);
    b.writeUInt16LE(tag & 0xffff, 2);
  } else {
    b.writeUInt16BE(tag >>> 16, 0);
    b.writeUInt16BE(tag & 0xffff, 2);
  }
  return b;
}

function u32(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(n >>> 0, 0);
  else b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** Item, item delimiter or sequence delimiter header: always tag + 32-bit length, no VR (PS3.5 7.5). */
export function itemHeader(tag: number, length: number, enc: Encoding): Buffer {
  return Buffer.concat([tagBytes(tag, enc.littleEndian), u32(length, enc.littleEndian)]);
}

function encodeNumbers(vr: string, values: number[], le: boolean): Buffer {
  const size = NUMBER_SIZE[vr];
  const b = Buffer.alloc(size * values.length);
  values.forEach((v, i) => {
    const o = i * size;
    if (vr === 'US') le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o);
    else if (vr === 'SS') le ? b.writeInt16LE(v, o) : b.writeInt16BE(v, o);
    else if (vr === 'UL') le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o);
    else if (vr === 'SL') le ? b.writeInt32LE(v, o) : b.writeInt32BE(v, o);
    else if (vr === 'FL') le ? b.writeFloatLE(v, o) : b.writeFloatBE(v, o);
    else le ? b.writeDoubleLE(v, o) : b.writeDoubleBE(v, o);
  });
  return b;
}

function encodeValue(el: Element, enc: Encoding): { bytes: Buffer; undefinedLength: boolean } {
  const v = el.value;
  if (el.vr === 'SQ') {
    const items = v as Item[];
    const parts: Buffer[] = [];
    for (const item of items) {
      const body = encodeDataset(item.elements, enc);
      if (item.undefinedLength) {
        parts.push(itemHeader(0xfffee000, 0xffffffff, enc), body, itemHeader(0xfffee00d, 0, enc));
      } else {
        parts.push(itemHeader(0xfffee000, body.length, enc), body);
      }
    }
    if (el.undefinedLength) parts.push(itemHeader(0xfffee0dd, 0, enc));
    return { bytes: Buffer.concat(parts), undefinedLength: el.undefinedLength ?? false };
  }
  if (typeof v === 'object' && v !== null && 'fragments' in v) {
    // PS3.5 A.4: empty Basic Offset Table item, one item per fragment (even length), sequence delimiter.
    const parts: Buffer[] = [itemHeader(0xfffee000, 0, enc)];
    for (const f of v.fragments) {
      const even = f.length % 2 === 1 ? Buffer.concat([f, Buffer.alloc(1)]) : Buffer.from(f);
      parts.push(itemHeader(0xfffee000, even.length, enc), even);
    }
    parts.push(itemHeader(0xfffee0dd, 0, enc));
    return { bytes: Buffer.concat(parts), undefinedLength: true };
  }
  if (v instanceof Uint8Array) {
    const b = Buffer.from(v);
    return { bytes: b.length % 2 === 1 ? Buffer.concat([b, Buffer.alloc(1)]) : b, undefinedLength: false };
  }
  if (el.vr in NUMBER_SIZE) return { bytes: encodeNumbers(el.vr, v as number[], enc.littleEndian), undefinedLength: false };
  const s = Array.isArray(v) ? v.join('\\') : (v as string);
  const padded = s.length % 2 === 1 ? s + (el.vr === 'UI' ? '\0' : ' ') : s;
  return { bytes: Buffer.from(padded, 'latin1'), undefinedLength: false };
}

/** Encodes elements in the order given (callers keep them in ascending tag order, PS3.5 7.1). */
export function encodeDataset(elements: Element[], enc: Encoding): Buffer {
  const parts: Buffer[] = [];
  for (const el of elements) {
    const { bytes, undefinedLength } = encodeValue(el, enc);
    const length = undefinedLength ? 0xffffffff : bytes.length;
    // UN of undefined length holds an Implicit VR LE sequence (PS3.5 6.2.2); the caller encodes it so.
    parts.push(tagBytes(el.tag, enc.littleEndian));
    if (!enc.explicitVr) parts.push(u32(length, enc.littleEndian));
    else if (LONG_VRS.has(el.vr)) parts.push(Buffer.from(el.vr + '\0\0', 'latin1'), u32(length, enc.littleEndian));
    else {
      const h = Buffer.alloc(4);
      h.write(el.vr, 0, 'latin1');
      if (enc.littleEndian) h.writeUInt16LE(length, 2);
      else h.writeUInt16BE(length, 2);
      parts.push(h);
    }
    parts.push(bytes);
  }
  return Buffer.concat(parts);
}

// An 8x8 8-bit grayscale JPEG Baseline (process 1) image: a diagonal gradient, encoded once by
// DCMTK `dcmcjpeg +eb` from an instance this module generated, then lifted out of its fragment.
export const TINY_JPEG_BASELINE = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/wAALCAAIAAgBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAABv/EABkQAAEFAAAAAAAAAAAAAAAAAAgAJDRCUf/aAAgBAQAAPwAoNo2xWuVX/9k=',
  'base64',
);

export type InstanceOptions = {
  sopClassUid: string;
  transferSyntaxUid: string;
  /** Native pixel data size in bytes (16-bit samples, so even); 0 omits the image pixel module. Default 8192 (64x64). */
  pixelBytes?: number;
  patientId?: string;
  patientName?: string;
  issuerOfPatientId?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  modality?: string;
  accessionNumber?: string;
  studyDate?: string;
  studyDescription?: string;
  bodyPartExamined?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  withPrivateTags?: boolean;
  /** Pixel data as the embedded 8x8 JPEG Baseline fragment; forces transferSyntaxUid to JPEG Baseline. */
  encapsulatedJpeg?: boolean;
};

function pixelGeometry(pixelBytes: number): { rows: number; columns: number } {
  if (pixelBytes % 2 !== 0) throw new RangeError(`pixelBytes must be even (16-bit samples), got ${pixelBytes}`);
  const pixels = pixelBytes / 2;
  let rows = Math.floor(Math.sqrt(pixels));
  while (rows > 1 && pixels % rows !== 0) rows--;
  const columns = pixels / rows;
  if (columns > 0xffff) throw new RangeError(`cannot lay out ${pixels} pixels as Rows x Columns within 65535`);
  return { rows, columns };
}

function gradient(length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

/** The elements of a test instance, in ascending tag order. */
export function instanceElements(opts: InstanceOptions & { sopInstanceUid: string; studyInstanceUid: string; seriesInstanceUid: string }): Element[] {
  const jpeg = opts.encapsulatedJpeg ?? false;
  const pixelBytes = jpeg ? 64 : (opts.pixelBytes ?? 8192);
  const code = (value: string, meaning: string): Element[] => [
    { tag: 0x00080100, vr: 'SH', value },
    { tag: 0x00080102, vr: 'SH', value: 'DCM' },
    { tag: 0x00080104, vr: 'LO', value: meaning },
  ];
  const els: Element[] = [
    { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' },
    { tag: 0x00080008, vr: 'CS', value: ['ORIGINAL', 'PRIMARY', 'AXIAL'] },
    { tag: 0x00080016, vr: 'UI', value: opts.sopClassUid },
    { tag: 0x00080018, vr: 'UI', value: opts.sopInstanceUid },
    { tag: 0x00080020, vr: 'DA', value: opts.studyDate ?? '20240115' },
    { tag: 0x00080030, vr: 'TM', value: '101530' },
    { tag: 0x00080050, vr: 'SH', value: opts.accessionNumber ?? 'ACC0001' },
    { tag: 0x00080060, vr: 'CS', value: opts.modality ?? 'CT' },
    { tag: 0x00080090, vr: 'PN', value: '' },
    { tag: 0x00081030, vr: 'LO', value: opts.studyDescription ?? 'ROUTER TEST STUDY' },
    // Defined-length sequence with a defined-length item.
    { tag: 0x00081032, vr: 'SQ', value: [{ elements: code('P1', 'Test procedure') }] },
    // Undefined-length sequence with an undefined-length item.
    {
      tag: 0x00081110,
      vr: 'SQ',
      undefinedLength: true,
      value: [
        {
          undefinedLength: true,
          elements: [
            { tag: 0x00081150, vr: 'UI', value: '1.2.840.10008.3.1.2.3.1' },
            { tag: 0x00081155, vr: 'UI', value: opts.studyInstanceUid },
          ],
        },
      ],
    },
  ];
  if (opts.withPrivateTags) {
    els.push(
      { tag: 0x00090010, vr: 'LO', value: PRIVATE_CREATOR },
      { tag: 0x00091001, vr: 'LO', value: 'private text' },
      { tag: 0x00091002, vr: 'DS', value: '42.5' },
    );
  }
  els.push(
    { tag: 0x00100010, vr: 'PN', value: opts.patientName ?? 'TEST^PATIENT' },
    { tag: 0x00100020, vr: 'LO', value: opts.patientId ?? 'PID0001' },
    { tag: 0x00100021, vr: 'LO', value: opts.issuerOfPatientId ?? 'HOSP' },
    { tag: 0x00100030, vr: 'DA', value: '19700101' },
    { tag: 0x00100040, vr: 'CS', value: 'O' },
    { tag: 0x00180015, vr: 'CS', value: opts.bodyPartExamined ?? 'CHEST' },
    { tag: 0x0020000d, vr: 'UI', value: opts.studyInstanceUid },
    { tag: 0x0020000e, vr: 'UI', value: opts.seriesInstanceUid },
    { tag: 0x00200010, vr: 'SH', value: 'S1' },
    { tag: 0x00200011, vr: 'IS', value: String(opts.seriesNumber ?? 1) },
    { tag: 0x00200013, vr: 'IS', value: String(opts.instanceNumber ?? 1) },
  );
  if (pixelBytes > 0) {
    const { rows, columns } = jpeg ? { rows: 8, columns: 8 } : pixelGeometry(pixelBytes);
    const bits = jpeg ? 8 : 16;
    els.push(
      { tag: 0x00280002, vr: 'US', value: [1] },
      { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
      { tag: 0x00280010, vr: 'US', value: [rows] },
      { tag: 0x00280011, vr: 'US', value: [columns] },
      { tag: 0x00280100, vr: 'US', value: [bits] },
      { tag: 0x00280101, vr: 'US', value: [bits === 8 ? 8 : 12] },
      { tag: 0x00280102, vr: 'US', value: [bits === 8 ? 7 : 11] },
      { tag: 0x00280103, vr: 'US', value: [0] },
    );
    if (jpeg) els.push({ tag: 0x00282110, vr: 'CS', value: '01' }, { tag: 0x00282114, vr: 'CS', value: 'ISO_10918_1' });
  }
  // Nested undefined-length sequences: RequestAttributesSequence > ScheduledProtocolCodeSequence.
  els.push({
    tag: 0x00400275,
    vr: 'SQ',
    undefinedLength: true,
    value: [
      {
        undefinedLength: true,
        elements: [
          { tag: 0x00400008, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: true, elements: code('PR1', 'Protocol') }] },
          { tag: 0x00401001, vr: 'SH', value: 'RP1' },
        ],
      },
    ],
  });
  if (opts.withPrivateTags) {
    // GEMINI TF conformance statement (003_5b4f07218f8a0fec.txt, 8.3, Table 104): SUV factors in group 7053.
    els.push(
      { tag: 0x70530010, vr: 'LO', value: PHILIPS_PET_CREATOR },
      { tag: 0x70531000, vr: 'DS', value: '0.000123' },
      { tag: 0x70531009, vr: 'DS', value: '1.5' },
    );
  }
  if (jpeg) els.push({ tag: 0x7fe00010, vr: 'OB', value: { fragments: [TINY_JPEG_BASELINE] } });
  else if (pixelBytes > 0) els.push({ tag: 0x7fe00010, vr: 'OW', value: gradient(pixelBytes) });
  return els;
}

/** A complete Part-10 file. */
export function makeInstance(opts: InstanceOptions): Buffer {
  const transferSyntaxUid = opts.encapsulatedJpeg ? TS.jpegBaseline : opts.transferSyntaxUid;
  if (transferSyntaxUid === TS.deflatedLE) throw new RangeError('makeInstance does not write Deflated Explicit VR LE');
  const full = {
    ...opts,
    transferSyntaxUid,
    sopInstanceUid: opts.sopInstanceUid ?? newUid(),
    studyInstanceUid: opts.studyInstanceUid ?? newUid(),
    seriesInstanceUid: opts.seriesInstanceUid ?? newUid(),
  };
  const header = part10Header({
    sopClassUid: full.sopClassUid,
    sopInstanceUid: full.sopInstanceUid,
    transferSyntaxUid,
    implementationClassUid: TEST_IMPLEMENTATION_CLASS_UID,
    implementationVersionName: TEST_IMPLEMENTATION_VERSION,
    sourceAeTitle: 'TESTGEN',
  });
  return Buffer.concat([header, encodeDataset(instanceElements(full), encodingOf(transferSyntaxUid))]);
}

export type DatasetSpec = Omit<InstanceOptions, 'sopInstanceUid' | 'instanceNumber'> & { count: number };

/** Writes `count` instances of one series (shared study/series UIDs) as dir/0001.dcm…; returns their paths. */
export function writeDataset(dir: string, spec: DatasetSpec): string[] {
  mkdirSync(dir, { recursive: true });
  const { count, ...opts } = spec;
  const studyInstanceUid = opts.studyInstanceUid ?? newUid();
  const seriesInstanceUid = opts.seriesInstanceUid ?? newUid();
  const paths: string[] = [];
  for (let i = 1; i <= count; i++) {
    const path = join(dir, `${String(i).padStart(4, '0')}.dcm`);
    writeFileSync(path, makeInstance({ ...opts, studyInstanceUid, seriesInstanceUid, instanceNumber: i }));
    paths.push(path);
  }
  return paths;
}

/** The dataset bytes after the File Meta Information. */
export function datasetOf(part10: Uint8Array): Uint8Array {
  return part10.subarray(readPart10Header(part10).datasetOffset);
}
