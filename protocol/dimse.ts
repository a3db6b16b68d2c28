// DIMSE command sets (PS3.7 section 9.3 and Annex E): group 0000 elements, always encoded
// Implicit VR Little Endian whatever transfer syntax the presentation context negotiated
// (PS3.7 6.3.1). Pure code: bytes in, plain objects out.

/** A DIMSE command set. Keys are the PS3.7 Table E.1-1 keywords; CommandGroupLength is computed. */
export type Command = {
  CommandField: number;
  MessageID?: number;
  MessageIDBeingRespondedTo?: number;
  AffectedSOPClassUID?: string;
  RequestedSOPClassUID?: string;
  AffectedSOPInstanceUID?: string;
  RequestedSOPInstanceUID?: string;
  Priority?: number;
  CommandDataSetType: number;
  Status?: number;
  /** AT, 1-n: each tag as 0xGGGGEEEE. */
  OffendingElement?: number[];
  ErrorComment?: string;
  ErrorID?: number;
  MoveDestination?: string;
  MoveOriginatorApplicationEntityTitle?: string;
  MoveOriginatorMessageID?: number;
  NumberOfRemainingSuboperations?: number;
  NumberOfCompletedSuboperations?: number;
  NumberOfFailedSuboperations?: number;
  NumberOfWarningSuboperations?: number;
  EventTypeID?: number;
  ActionTypeID?: number;
  /** AT, 1-n: each tag as 0xGGGGEEEE. */
  AttributeIdentifierList?: number[];
};

/** PS3.7 Table E.1-1 Command Field values. A response is its request with bit 15 set. */
export const CommandField = {
  C_STORE_RQ: 0x0001,
  C_STORE_RSP: 0x8001,
  C_GET_RQ: 0x0010,
  C_GET_RSP: 0x8010,
  C_FIND_RQ: 0x0020,
  C_FIND_RSP: 0x8020,
  C_MOVE_RQ: 0x0021,
  C_MOVE_RSP: 0x8021,
  C_ECHO_RQ: 0x0030,
  C_ECHO_RSP: 0x8030,
  C_CANCEL_RQ: 0x0fff,
  N_EVENT_REPORT_RQ: 0x0100,
  N_EVENT_REPORT_RSP: 0x8100,
  N_GET_RQ: 0x0110,
  N_GET_RSP: 0x8110,
  N_SET_RQ: 0x0120,
  N_SET_RSP: 0x8120,
  N_ACTION_RQ: 0x0130,
  N_ACTION_RSP: 0x8130,
  N_CREATE_RQ: 0x0140,
  N_CREATE_RSP: 0x8140,
  N_DELETE_RQ: 0x0150,
  N_DELETE_RSP: 0x8150,
} as const;

/** CommandDataSetType value meaning "no data set follows" (PS3.7 E.1-1). Any other value means one does. */
export const NO_DATASET = 0x0101;
/** Conventional "data set present" value (DCMTK and most peers send 0x0000 or 0x0102). */
export const DATASET_PRESENT = 0x0000;

/** PS3.7 E.1-1 Priority (0000,0700). */
export const Priority = { MEDIUM: 0, HIGH: 1, LOW: 2 } as const;

export type DimseDecodeErrorCode =
  | 'TRUNCATED_ELEMENT'
  | 'LENGTH_PAST_END'
  | 'NOT_COMMAND_GROUP'
  | 'MISSING_GROUP_LENGTH'
  | 'BAD_GROUP_LENGTH'
  | 'BAD_VALUE_LENGTH'
  | 'MISSING_COMMAND_FIELD'
  | 'MISSING_DATASET_TYPE';

export class DimseDecodeError extends Error {
  readonly code: DimseDecodeErrorCode;
  constructor(code: DimseDecodeErrorCode, message: string) {
    super(message);
    this.name = 'DimseDecodeError';
    this.code = code;
  }
}

type Vr = 'US' | 'UI' | 'AE' | 'LO' | 'AT';
type Key = keyof Command;

/** PS3.7 Table E.1-1 minus CommandGroupLength (UL, computed), in ascending tag order. */
const ELEMENTS: ReadonlyArray<{ element: number; vr: Vr; key: Key }> = [
  { element: 0x0002, vr: 'UI', key: 'AffectedSOPClassUID' },
  { element: 0x0003, vr: 'UI', key: 'RequestedSOPClassUID' },
  { element: 0x0100, vr: 'US', key: 'CommandField' },
  { element: 0x0110, vr: 'US', key: 'MessageID' },
  { element: 0x0120, vr: 'US', key: 'MessageIDBeingRespondedTo' },
  { element: 0x0600, vr: 'AE', key: 'MoveDestination' },
  { element: 0x0700, vr: 'US', key: 'Priority' },
  { element: 0x0800, vr: 'US', key: 'CommandDataSetType' },
  { element: 0x0900, vr: 'US', key: 'Status' },
  { element: 0x0901, vr: 'AT', key: 'OffendingElement' },
  { element: 0x0902, vr: 'LO', key: 'ErrorComment' },
  { element: 0x0903, vr: 'US', key: 'ErrorID' },
  { element: 0x1000, vr: 'UI', key: 'AffectedSOPInstanceUID' },
  { element: 0x1001, vr: 'UI', key: 'RequestedSOPInstanceUID' },
  { element: 0x1002, vr: 'US', key: 'EventTypeID' },
  { element: 0x1005, vr: 'AT', key: 'AttributeIdentifierList' },
  { element: 0x1008, vr: 'US', key: 'ActionTypeID' },
  { element: 0x1020, vr: 'US', key: 'NumberOfRemainingSuboperations' },
  { element: 0x1021, vr: 'US', key: 'NumberOfCompletedSuboperations' },
  { element: 0x1022, vr: 'US', key: 'NumberOfFailedSuboperations' },
  { element: 0x1023, vr: 'US', key: 'NumberOfWarningSuboperations' },
  { element: 0x1030, vr: 'AE', key: 'MoveOriginatorApplicationEntityTitle' },
  { element: 0x1031, vr: 'US', key: 'MoveOriginatorMessageID' },
];
const BY_ELEMENT = new Map(ELEMENTS.map((e) => [e.element, e]));

function encodeValue(vr: Vr, key: string, value: unknown): Buffer {
  switch (vr) {
    case 'US': {
      if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffff) {
        throw new RangeError(`${key} must be an integer 0..65535, got ${String(value)}`);
      }
      const b = Buffer.alloc(2);
      b.writeUInt16LE(value as number);
      return b;
    }
    case 'AT': {
      const tags = value as number[];
      const b = Buffer.alloc(tags.length * 4);
      tags.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RangeError(`${key} has an invalid tag ${t}`);
        // PS3.5 6.2: AT is the group number then the element number, each 16-bit in the syntax's byte order.
        b.writeUInt16LE(Math.floor(t / 0x10000), i * 4);
        b.writeUInt16LE(t & 0xffff, i * 4 + 2);
      });
      return b;
    }
    default: {
      if (typeof value !== 'string') throw new TypeError(`${key} must be a string`);
      // PS3.5 6.2: UI pads with NUL, the other string VRs with a space, to an even length.
      const pad = vr === 'UI' ? '\0' : ' ';
      // LO holds at most 64 characters (PS3.5 6.2); ErrorComment is informational, so cut rather than fail.
      const v = vr === 'LO' ? value.slice(0, 64) : value;
      const text = v.length % 2 === 1 ? v + pad : v;
      return Buffer.from(text, 'latin1');
    }
  }
}

/** Encode a command set (Implicit VR Little Endian), with CommandGroupLength computed and tags ascending. */
export function encodeCommand(cmd: Command): Buffer {
  const parts: Buffer[] = [];
  let groupLength = 0;
  for (const { element, vr, key } of ELEMENTS) {
    const value = cmd[key];
    if (value === undefined) continue;
    const v = encodeValue(vr, key, value);
    const header = Buffer.alloc(8);
    header.writeUInt16LE(0x0000, 0);
    header.writeUInt16LE(element, 2);
    header.writeUInt32LE(v.length, 4);
    parts.push(header, v);
    groupLength += 8 + v.length;
  }
  const gl = Buffer.alloc(12);
  gl.writeUInt32LE(4, 4); // (0000,0000) UL, length 4
  gl.writeUInt32LE(groupLength, 8);
  return Buffer.concat([gl, ...parts], 12 + groupLength);
}

const latin1 = new TextDecoder('latin1');

function decodeString(vr: Vr, bytes: Uint8Array): string {
  const s = latin1.decode(bytes);
  // UI: trailing NUL padding (some peers pad with a space); AE: leading and trailing spaces
  // are insignificant; LO: trailing spaces are (PS3.5 6.2).
  if (vr === 'UI') return s.replace(/[\0 ]+$/, '');
  if (vr === 'AE') return s.replace(/^[ \0]+|[ \0]+$/g, '');
  return s.replace(/[ \0]+$/, '');
}

/** Decode a command set. Unknown (e.g. retired) group-0000 elements are skipped. */
export function decodeCommand(bytes: Uint8Array): Command {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, unknown> = {};
  let groupLengthSeen = false;
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 8) {
      throw new DimseDecodeError('TRUNCATED_ELEMENT', `element header truncated at offset ${offset}`);
    }
    const group = view.getUint16(offset, true);
    const element = view.getUint16(offset + 2, true);
    const length = view.getUint32(offset + 4, true);
    const tag = `(${hex4(group)},${hex4(element)})`;
    if (group !== 0x0000) {
      throw new DimseDecodeError('NOT_COMMAND_GROUP', `element ${tag} at offset ${offset} is not in group 0000`);
    }
    const start = offset + 8;
    if (length > bytes.length - start) {
      throw new DimseDecodeError(
        'LENGTH_PAST_END',
        `element ${tag} length ${length} runs past the end of the command (${bytes.length - start} bytes left)`,
      );
    }
    const value = bytes.subarray(start, start + length);
    offset = start + length;

    if (element === 0x0000) {
      if (length !== 4) throw new DimseDecodeError('BAD_VALUE_LENGTH', `CommandGroupLength has length ${length}, not 4`);
      const declared = view.getUint32(start, true);
      const actual = bytes.length - offset;
      if (declared !== actual) {
        throw new DimseDecodeError('BAD_GROUP_LENGTH', `CommandGroupLength says ${declared} but ${actual} bytes follow it`);
      }
      groupLengthSeen = true;
      continue;
    }
    const def = BY_ELEMENT.get(element);
    if (!def) continue; // retired or unknown command element: tolerated (PS3.7 E.2)
    switch (def.vr) {
      case 'US':
        if (length !== 2) throw new DimseDecodeError('BAD_VALUE_LENGTH', `${def.key} ${tag} (US) has length ${length}`);
        out[def.key] = view.getUint16(start, true);
        break;
      case 'AT': {
        if (length % 4 !== 0) {
          throw new DimseDecodeError('BAD_VALUE_LENGTH', `${def.key} ${tag} (AT) has length ${length}, not a multiple of 4`);
        }
        const tags: number[] = [];
        for (let p = start; p < start + length; p += 4) {
          tags.push(view.getUint16(p, true) * 0x10000 + view.getUint16(p + 2, true));
        }
        out[def.key] = tags;
        break;
      }
      default:
        out[def.key] = decodeString(def.vr, value);
    }
  }
  if (!groupLengthSeen) throw new DimseDecodeError('MISSING_GROUP_LENGTH', 'command has no CommandGroupLength (0000,0000)');
  if (out.CommandField === undefined) throw new DimseDecodeError('MISSING_COMMAND_FIELD', 'command has no CommandField (0000,0100)');
  if (out.CommandDataSetType === undefined) {
    throw new DimseDecodeError('MISSING_DATASET_TYPE', 'command has no CommandDataSetType (0000,0800)');
  }
  return out as Command;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

const NAMES = new Map<number, string>(
  Object.entries(CommandField).map(([k, v]) => [v as number, k.replace(/_/g, '-')]),
);

/** 'C-STORE-RQ', 'N-EVENT-REPORT-RSP', or 'UNKNOWN-0x1234'. */
export function commandName(field: number): string {
  return NAMES.get(field) ?? `UNKNOWN-0x${hex4(field)}`;
}

export function isResponse(field: number): boolean {
  return (field & 0x8000) !== 0;
}

/** True when a data set follows this command (PS3.7 E.1-1: anything but 0101H). */
export function hasDataset(cmd: Command): boolean {
  return cmd.CommandDataSetType !== NO_DATASET;
}

/**
 * The response to a request: RSP command field, MessageIDBeingRespondedTo, the affected SOP
 * class/instance (for DIMSE-N the request's Requested UIDs become the response's Affected ones,
 * PS3.7 10.3), no data set unless `extra` says so. `extra` overrides anything set here.
 */
export function responseFor(rq: Command, status: number, extra?: Partial<Command>): Command {
  if (isResponse(rq.CommandField) || rq.CommandField === CommandField.C_CANCEL_RQ || !NAMES.has(rq.CommandField)) {
    throw new RangeError(`${commandName(rq.CommandField)} has no response`);
  }
  const rsp: Command = { CommandField: rq.CommandField | 0x8000, CommandDataSetType: NO_DATASET, Status: status };
  if (rq.MessageID !== undefined) rsp.MessageIDBeingRespondedTo = rq.MessageID;
  const sopClass = rq.AffectedSOPClassUID ?? rq.RequestedSOPClassUID;
  if (sopClass !== undefined) rsp.AffectedSOPClassUID = sopClass;
  const sopInstance = rq.AffectedSOPInstanceUID ?? rq.RequestedSOPInstanceUID;
  if (sopInstance !== undefined) rsp.AffectedSOPInstanceUID = sopInstance;
  // C(=) in N-EVENT-REPORT-RSP and N-ACTION-RSP (PS3.7 10.3.1, 10.3.4).
  if (rq.CommandField === CommandField.N_EVENT_REPORT_RQ && rq.EventTypeID !== undefined) rsp.EventTypeID = rq.EventTypeID;
  if (rq.CommandField === CommandField.N_ACTION_RQ && rq.ActionTypeID !== undefined) rsp.ActionTypeID = rq.ActionTypeID;
  if (extra) {
    for (const [k, v] of Object.entries(extra)) {
      if (v !== undefined) (rsp as Record<string, unknown>)[k] = v;
    }
  }
  return rsp;
}
