// DICOM Part 10 file framing (PS3.10 7.1): 128-byte preamble, "DICM", then the File Meta
// Information (group 0002), always Explicit VR Little Endian whatever the dataset's syntax.
// Pure: bytes in, bytes out.
import { LONG_VRS } from './data-elements.ts';

export type Part10Meta = {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  implementationClassUid: string;
  implementationVersionName: string;
  /** (0002,0016) AE that wrote this file's content. */
  sourceAeTitle?: string;
  /** (0002,0017) AE that sent the content over the network (the calling AE). */
  sendingAeTitle?: string;
  /** (0002,0018) AE that received it (the called AE). */
  receivingAeTitle?: string;
};

/** What readPart10Header found; fields other than the three UIDs are optional in files seen in the wild. */
export type Part10MetaRead = {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  fileMetaInformationVersion?: Uint8Array;
  implementationClassUid?: string;
  implementationVersionName?: string;
  sourceAeTitle?: string;
  sendingAeTitle?: string;
  receivingAeTitle?: string;
  /** (0002,0000) as written, if present. */
  groupLength?: number;
};

export type Part10ErrorCode =
  | 'too-short'
  | 'no-dicm-prefix'
  | 'truncated-meta'
  | 'bad-vr'
  | 'group-length-mismatch'
  | 'missing-element'
  | 'invalid-value';

export class Part10Error extends Error {
  readonly code: Part10ErrorCode;
  /** Byte offset in the file where the problem was found. */
  readonly offset: number;
  constructor(code: Part10ErrorCode, message: string, offset: number) {
    super(message);
    this.name = 'Part10Error';
    this.code = code;
    this.offset = offset;
  }
}

const PREAMBLE_LENGTH = 128;
const META_START = PREAMBLE_LENGTH + 4;
const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

function checkUid(name: string, uid: string): void {
  if (uid.length === 0 || uid.length > 64 || !UID_RE.test(uid)) {
    throw new Part10Error('invalid-value', `${name} is not a valid UID (PS3.5 9.1): ${JSON.stringify(uid)}`, 0);
  }
}

function checkShortString(name: string, value: string, max: number): void {
  // AE and SH: at most 16 printable ASCII characters, no backslash (PS3.5 6.2).
  if (value.length > max || !/^[\x20-\x5b\x5d-\x7e]*$/.test(value)) {
    throw new Part10Error('invalid-value', `${name} must be at most ${max} printable ASCII characters: ${JSON.stringify(value)}`, 0);
  }
}

function element(tagElement: number, vr: string, value: Uint8Array): Buffer {
  const long = LONG_VRS.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(tagElement, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

function text(value: string, pad: string): Buffer {
  const padded = value.length % 2 === 1 ? value + pad : value;
  return Buffer.from(padded, 'latin1');
}

/** Preamble + "DICM" + group 0002 with a correct (0002,0000) group length. */
export function part10Header(meta: Part10Meta): Buffer {
  checkUid('sopClassUid', meta.sopClassUid);
  checkUid('sopInstanceUid', meta.sopInstanceUid);
  checkUid('transferSyntaxUid', meta.transferSyntaxUid);
  checkUid('implementationClassUid', meta.implementationClassUid);
  checkShortString('implementationVersionName', meta.implementationVersionName, 16);
  const elements: Buffer[] = [
    element(0x0001, 'OB', Uint8Array.of(0x00, 0x01)),
    element(0x0002, 'UI', text(meta.sopClassUid, '\0')),
    element(0x0003, 'UI', text(meta.sopInstanceUid, '\0')),
    element(0x0010, 'UI', text(meta.transferSyntaxUid, '\0')),
    element(0x0012, 'UI', text(meta.implementationClassUid, '\0')),
  ];
  if (meta.implementationVersionName !== '') {
    elements.push(element(0x0013, 'SH', text(meta.implementationVersionName, ' ')));
  }
  const aes: Array<[number, string, string | undefined]> = [
    [0x0016, 'sourceAeTitle', meta.sourceAeTitle],
    [0x0017, 'sendingAeTitle', meta.sendingAeTitle],
    [0x0018, 'receivingAeTitle', meta.receivingAeTitle],
  ];
  for (const [el, name, value] of aes) {
    if (value === undefined || value.trim() === '') continue;
    checkShortString(name, value, 16);
    elements.push(element(el, 'AE', text(value, ' ')));
  }
  const body = Buffer.concat(elements);
  const groupLength = element(0x0000, 'UL', Buffer.alloc(4));
  groupLength.writeUInt32LE(body.length, 8);
  const preamble = Buffer.alloc(META_START);
  preamble.write('DICM', PREAMBLE_LENGTH, 'latin1');
  return Buffer.concat([preamble, groupLength, body]);
}

function decodeText(bytes: Uint8Array): string {
  // UI is NUL-padded, AE/SH space-padded; leading spaces are insignificant in AE too (PS3.5 6.2).
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/**
 * Parses preamble, "DICM" and group 0002. datasetOffset is where the dataset (in the
 * transfer syntax named by (0002,0010)) starts. Tolerates a missing (0002,0000) by reading
 * while the group is 0002; a present group length must agree with the elements.
 */
export function readPart10Header(bytes: Uint8Array): { meta: Part10MetaRead; datasetOffset: number } {
  if (bytes.length < META_START) {
    throw new Part10Error('too-short', `file is ${bytes.length} bytes, shorter than preamble + "DICM" (132)`, bytes.length);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    throw new Part10Error('no-dicm-prefix', 'no "DICM" prefix at offset 128 (PS3.10 7.1)', PREAMBLE_LENGTH);
  }
  const values = new Map<number, Uint8Array>();
  let offset = META_START;
  let groupLength: number | undefined;
  let metaEnd: number | undefined;
  while (metaEnd === undefined ? offset + 2 <= bytes.length && view.getUint16(offset, true) === 0x0002 : offset < metaEnd) {
    if (offset + 8 > bytes.length) {
      throw new Part10Error('truncated-meta', `file meta information truncated in an element header at offset ${offset}`, offset);
    }
    const group = view.getUint16(offset, true);
    const el = view.getUint16(offset + 2, true);
    if (group !== 0x0002) {
      throw new Part10Error(
        'group-length-mismatch',
        `element (${hex4(group)},${hex4(el)}) at offset ${offset} lies inside the ${groupLength} bytes announced by (0002,0000)`,
        offset,
      );
    }
    const vr = String.fromCharCode(bytes[offset + 4], bytes[offset + 5]);
    if (!/^[A-Z]{2}$/.test(vr)) {
      throw new Part10Error('bad-vr', `invalid VR at offset ${offset + 4} in file meta information (must be Explicit VR LE)`, offset + 4);
    }
    let length: number;
    let headerLength: number;
    if (LONG_VRS.has(vr)) {
      if (offset + 12 > bytes.length) {
        throw new Part10Error('truncated-meta', `file meta information truncated in an element header at offset ${offset}`, offset);
      }
      length = view.getUint32(offset + 8, true);
      headerLength = 12;
    } else {
      length = view.getUint16(offset + 6, true);
      headerLength = 8;
    }
    const valueStart = offset + headerLength;
    if (length === 0xffffffff || valueStart + length > bytes.length) {
      throw new Part10Error('truncated-meta', `value of (0002,${hex4(el)}) at offset ${offset} runs past the end of the file`, offset);
    }
    const value = bytes.subarray(valueStart, valueStart + length);
    if (el === 0x0000) {
      if (vr !== 'UL' || length !== 4) {
        throw new Part10Error('invalid-value', `(0002,0000) must be UL of length 4`, offset);
      }
      groupLength = view.getUint32(valueStart, true);
      metaEnd = valueStart + 4 + groupLength;
      if (metaEnd > bytes.length) {
        throw new Part10Error('truncated-meta', `(0002,0000) announces ${groupLength} bytes but the file ends first`, offset);
      }
    } else {
      values.set(el, value);
    }
    offset = valueStart + length;
  }
  if (metaEnd !== undefined && offset !== metaEnd) {
    throw new Part10Error(
      'group-length-mismatch',
      `(0002,0000) says group 0002 ends at offset ${metaEnd} but its last element ends at ${offset}`,
      offset,
    );
  }
  const required = (el: number, name: string): string => {
    const v = values.get(el);
    if (v === undefined || decodeText(v) === '') {
      throw new Part10Error('missing-element', `file meta information lacks ${name} (0002,${hex4(el)})`, offset);
    }
    return decodeText(v);
  };
  const optional = (el: number): string | undefined => {
    const v = values.get(el);
    return v === undefined ? undefined : decodeText(v);
  };
  const meta: Part10MetaRead = {
    sopClassUid: required(0x0002, 'MediaStorageSOPClassUID'),
    sopInstanceUid: required(0x0003, 'MediaStorageSOPInstanceUID'),
    transferSyntaxUid: required(0x0010, 'TransferSyntaxUID'),
  };
  const version = values.get(0x0001);
  if (version !== undefined) meta.fileMetaInformationVersion = Uint8Array.from(version);
  const strings: Array<[number, 'implementationClassUid' | 'implementationVersionName' | 'sourceAeTitle' | 'sendingAeTitle' | 'receivingAeTitle']> = [
    [0x0012, 'implementationClassUid'],
    [0x0013, 'implementationVersionName'],
    [0x0016, 'sourceAeTitle'],
    [0x0017, 'sendingAeTitle'],
    [0x0018, 'receivingAeTitle'],
  ];
  for (const [el, key] of strings) {
    const v = optional(el);
    if (v !== undefined) meta[key] = v;
  }
  if (groupLength !== undefined) meta.groupLength = groupLength;
  return { meta, datasetOffset: offset };
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
