// DICOM Upper Layer PDU codec: PS3.8 9.3 (PDU structure) and PS3.7 Annex D.3.3 (user information sub-items).
// Pure: no I/O. decodePdu validates every length and presence rule and only ever throws PduDecodeError, whose
// `reason` is the A-ABORT provider reason (PS3.8 Table 9-26) the association should answer with.
// Encoding lives in pdu-encode.ts and is re-exported here.
import { AbortReason, PduType } from './pdu.types.ts';
import type {
  AssociateAc, AssociateRq, Pdu, PDataTf, PresentationContextAc, PresentationContextRq, PresentationContextResult,
  UserInformation, Pdv,
} from './pdu.types.ts';
import { ItemType, PDU_HEADER_LENGTH } from './pdu-encode.ts';

export { encodePdu, encodePDataTfHeader, ItemType, pDataTfOverhead, PDU_HEADER_LENGTH, PDV_HEADER_LENGTH } from './pdu-encode.ts';

export class PduDecodeError extends Error {
  /** A-ABORT provider reason (AbortReason). */
  readonly reason: number;
  /** Short machine-readable code, e.g. 'PDU_LENGTH_MISMATCH'. */
  readonly code: string;
  constructor(reason: number, code: string, message: string) {
    super(message);
    this.name = 'PduDecodeError';
    this.reason = reason;
    this.code = code;
  }
}

const R = AbortReason;
function fail(reason: number, code: string, message: string): never {
  throw new PduDecodeError(reason, code, message);
}
const hex = (n: number, w = 2): string => `0x${n.toString(16).padStart(w, '0')}`;
const rd16 = (b: Uint8Array, p: number): number => (b[p] << 8) | b[p + 1];
const rd32 = (b: Uint8Array, p: number): number => ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
const latin1 = (b: Uint8Array, s: number, e: number): string =>
  Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1');
const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

const PDU_NAMES: Record<number, string> = {
  1: 'A-ASSOCIATE-RQ', 2: 'A-ASSOCIATE-AC', 3: 'A-ASSOCIATE-RJ', 4: 'P-DATA-TF', 5: 'A-RELEASE-RQ', 6: 'A-RELEASE-RP', 7: 'A-ABORT',
};
/** PDU-type name, or undefined for a type PS3.8 9.3 does not define. */
export const pduTypeName = (type: number): string | undefined => PDU_NAMES[type];

/** Decode exactly one complete PDU (header included). Throws PduDecodeError, and nothing else, on malformed input. */
export function decodePdu(bytes: Uint8Array): Pdu {
  try {
    return decodeChecked(bytes);
  } catch (e) {
    if (e instanceof PduDecodeError) throw e;
    // Defence in depth: every bound is checked explicitly, so reaching here is a codec bug; still answer per contract.
    throw new PduDecodeError(R.INVALID_PDU_PARAMETER_VALUE, 'DECODER_BUG', `internal decoder error: ${String(e)}`);
  }
}

function decodeChecked(b: Uint8Array): Pdu {
  if (b.length < PDU_HEADER_LENGTH) fail(R.INVALID_PDU_PARAMETER_VALUE, 'PDU_TRUNCATED', `PDU is ${b.length} bytes, shorter than its 6-byte header`);
  const type = b[0];
  const name = PDU_NAMES[type];
  if (name === undefined) fail(R.UNRECOGNIZED_PDU, 'UNRECOGNIZED_PDU_TYPE', `unrecognized PDU type ${hex(type)} at offset 0`);
  const length = rd32(b, 2);
  if (length !== b.length - PDU_HEADER_LENGTH) {
    fail(R.INVALID_PDU_PARAMETER_VALUE, 'PDU_LENGTH_MISMATCH',
      `${name} PDU-length field (offset 2) says ${length} bytes but ${b.length - PDU_HEADER_LENGTH} follow the header`);
  }
  switch (type) {
    case PduType.ASSOCIATE_RQ: return decodeAssociate(b, true);
    case PduType.ASSOCIATE_AC: return decodeAssociate(b, false);
    case PduType.P_DATA_TF: return decodePData(b);
  }
  // The remaining PDUs have a fixed 4-byte body (PS3.8 9.3.4, 9.3.6-9.3.8); reserved bytes are not tested.
  if (length !== 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PDU_LENGTH', `${name} PDU-length must be 4, got ${length}`);
  if (type === PduType.RELEASE_RQ) return { type: 'A-RELEASE-RQ' };
  if (type === PduType.RELEASE_RP) return { type: 'A-RELEASE-RP' };
  if (type === PduType.ASSOCIATE_RJ) {
    const result = b[7], source = b[8];
    if (result !== 1 && result !== 2) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE', `A-ASSOCIATE-RJ result (offset 7) must be 1 or 2, got ${result}`);
    if (source < 1 || source > 3) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE', `A-ASSOCIATE-RJ source (offset 8) must be 1..3, got ${source}`);
    return { type: 'A-ASSOCIATE-RJ', result: result as 1 | 2, source: source as 1 | 2 | 3, reason: b[9] };
  }
  const source = b[8]; // A-ABORT
  if (source > 2) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE', `A-ABORT source (offset 8) must be 0..2, got ${source}`);
  return { type: 'A-ABORT', source: source as 0 | 1 | 2, reason: b[9] };
}

function decodePData(b: Uint8Array): PDataTf {
  const pdvs: Pdv[] = [];
  const end = b.length;
  let pos = PDU_HEADER_LENGTH;
  while (pos < end) {
    if (end - pos < 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_HEADER_TRUNCATED', `PDV item at offset ${pos}: ${end - pos} bytes left, its 4-byte length needs 4`);
    const len = rd32(b, pos);
    if (len < 2) fail(R.INVALID_PDU_PARAMETER_VALUE, 'PDV_TOO_SHORT', `PDV item at offset ${pos}: item length ${len} is below the minimum 2`);
    if (len > end - pos - 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_OVERRUNS_PDU', `PDV item at offset ${pos}: item length ${len} but only ${end - pos - 4} bytes remain in the PDU`);
    const contextId = b[pos + 4], control = b[pos + 5];
    if ((contextId & 1) === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_ID', `PDV item at offset ${pos}: presentation context ID ${contextId} is not odd`);
    // Control header bits 2-7 are reserved (PS3.8 E.2) and not tested. Data is a view, never a copy.
    pdvs.push({ contextId, isCommand: (control & 1) !== 0, isLast: (control & 2) !== 0, data: b.subarray(pos + 6, pos + 4 + len) });
    pos += 4 + len;
  }
  if (pdvs.length === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'EMPTY_P_DATA', 'P-DATA-TF carries no PDV item (PS3.8 9.3.5 requires one or more)');
  return { type: 'P-DATA-TF', pdvs };
}

/** Walk the items (2-byte lengths) in [start, end), calling `each` with the body bounds of every item. */
function forEachItem(b: Uint8Array, start: number, end: number, parent: string, overrunCode: string,
  each: (type: number, s: number, e: number, at: number) => void): void {
  let pos = start;
  while (pos < end) {
    if (end - pos < 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_HEADER_TRUNCATED', `${parent}: item at offset ${pos} has only ${end - pos} of its 4 header bytes`);
    const len = rd16(b, pos + 2);
    if (len > end - pos - 4) {
      fail(R.INVALID_PDU_PARAMETER_VALUE, overrunCode, `${parent}: item ${hex(b[pos])} at offset ${pos} has length ${len} but only ${end - pos - 4} bytes remain`);
    }
    each(b[pos], pos + 4, pos + 4 + len, pos);
    pos += 4 + len;
  }
}

/** Bounded reader over one item body; every overrun names the item, field and offset. */
class Fields {
  readonly b: Uint8Array;
  pos: number;
  readonly end: number;
  readonly what: string;
  constructor(b: Uint8Array, pos: number, end: number, what: string) {
    this.b = b;
    this.pos = pos;
    this.end = end;
    this.what = what;
  }
  need(n: number, field: string): number {
    if (n > this.end - this.pos) {
      fail(R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM',
        `${this.what}: ${field} at offset ${this.pos} needs ${n} bytes but only ${this.end - this.pos} remain in the item`);
    }
    const p = this.pos;
    this.pos += n;
    return p;
  }
  u8(field: string): number { return this.b[this.need(1, field)]; }
  u16(field: string): number { return rd16(this.b, this.need(2, field)); }
  u32(field: string): number { return rd32(this.b, this.need(4, field)); }
  bytes(n: number, field: string): Uint8Array { const p = this.need(n, field); return new Uint8Array(this.b.subarray(p, p + n)); }
  uid(field: string): string { const n = this.u16(`${field} length`); const p = this.need(n, field); return decodeUid(this.b, p, p + n, `${this.what} ${field}`); }
  done(): void {
    if (this.pos !== this.end) fail(R.INVALID_PDU_PARAMETER_VALUE, 'TRAILING_BYTES', `${this.what}: ${this.end - this.pos} unexpected bytes at offset ${this.pos}`);
  }
}

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
/** PS3.8 Annex F: UIDs are not padded in PDUs; a trailing NUL or space (PS3.5 padding habit) is tolerated. */
function decodeUid(b: Uint8Array, s: number, e: number, what: string): string {
  let end = e;
  while (end > s && (b[end - 1] === 0 || b[end - 1] === 0x20)) end--;
  const uid = latin1(b, s, end);
  if (uid.length === 0 || uid.length > 64 || !UID_RE.test(uid)) {
    fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID', `${what} at offset ${s}: ${quote(uid)} is not a UID (1..64 digits and dots)`);
  }
  return uid;
}

/** Leading/trailing spaces are non-significant (PS3.8 9.3.2); trailing NULs from sloppy senders are tolerated. */
function trimAe(b: Uint8Array, s: number): string {
  return latin1(b, s, s + 16).replace(/\0+$/, '').trim();
}

function decodeAe(b: Uint8Array, s: number, what: string): string {
  const ae = trimAe(b, s);
  if (ae.length === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE', `${what} at offset ${s} is all spaces (PS3.8 9.3.2 forbids it)`);
  // AE VR (PS3.5 6.2): ISO 646 G0 graphic characters and space, no backslash or control characters.
  if (!/^[\x20-\x5b\x5d-\x7e]+$/.test(ae)) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE', `${what} at offset ${s}: ${quote(ae)} has a character not allowed in an AE title`);
  return ae;
}

function decodeAssociate(b: Uint8Array, isRq: boolean): AssociateRq | AssociateAc {
  const name = isRq ? 'A-ASSOCIATE-RQ' : 'A-ASSOCIATE-AC';
  const fixedEnd = PDU_HEADER_LENGTH + 68;
  if (b.length < fixedEnd) fail(R.INVALID_PDU_PARAMETER_VALUE, 'PDU_TOO_SHORT', `${name} is ${b.length} bytes, shorter than its ${fixedEnd}-byte fixed part`);
  const protocolVersion = rd16(b, 6); // bit 0 is tested by the association layer (A-ASSOCIATE-RJ 1/2/2), not here
  // In the AC the AE title fields are reserved and "shall not be tested" (PS3.8 9.3.3).
  const calledAeTitle = isRq ? decodeAe(b, 10, 'called AE title') : trimAe(b, 10);
  const callingAeTitle = isRq ? decodeAe(b, 26, 'calling AE title') : trimAe(b, 26);
  let applicationContext: string | undefined;
  let userInformation: UserInformation | undefined;
  const rqContexts: PresentationContextRq[] = [];
  const acContexts: PresentationContextAc[] = [];
  const ids = new Set<number>();
  const dup = (what: string, at: number): never => fail(R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_ITEM', `${name}: second ${what} item at offset ${at}`);
  forEachItem(b, fixedEnd, b.length, `${name} variable field`, 'ITEM_OVERRUNS_PDU', (type, s, e, at) => {
    if (type === ItemType.APPLICATION_CONTEXT) {
      if (applicationContext !== undefined) dup('application context', at);
      applicationContext = decodeUid(b, s, e, 'application context name');
    } else if (type === ItemType.PRESENTATION_CONTEXT_RQ || type === ItemType.PRESENTATION_CONTEXT_AC) {
      if ((type === ItemType.PRESENTATION_CONTEXT_RQ) !== isRq) {
        fail(R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_ITEM', `${name}: presentation context item type ${hex(type)} at offset ${at} belongs to the other PDU`);
      }
      if (e - s < 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_TOO_SHORT', `${name}: presentation context item at offset ${at} has length ${e - s}, below 4`);
      const id = b[s];
      if ((id & 1) === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_ID', `${name}: presentation context ID ${id} at offset ${s} is not odd 1..255`);
      if (ids.has(id)) fail(R.INVALID_PDU_PARAMETER_VALUE, 'DUPLICATE_PRESENTATION_CONTEXT_ID', `${name}: presentation context ID ${id} at offset ${s} is used twice`);
      ids.add(id);
      if (isRq) rqContexts.push(decodePcRq(b, s, e, id));
      else acContexts.push(decodePcAc(b, s, e, id));
    } else if (type === ItemType.USER_INFORMATION) {
      if (userInformation !== undefined) dup('user information', at);
      userInformation = decodeUserInformation(b, s, e);
    } else if (type === ItemType.ABSTRACT_SYNTAX || type === ItemType.TRANSFER_SYNTAX) {
      fail(R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_ITEM', `${name}: sub-item type ${hex(type)} at offset ${at} outside a presentation context`);
    }
    // PS3.8 9.3.1: items of unrecognized types shall be ignored and skipped.
  });
  if (applicationContext === undefined) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_APPLICATION_CONTEXT', `${name} has no application context item`);
  if (isRq && rqContexts.length === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_PRESENTATION_CONTEXT', `${name} has no presentation context item`);
  if (userInformation === undefined) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_USER_INFORMATION', `${name} has no user information item`);
  const common = { protocolVersion, calledAeTitle, callingAeTitle, applicationContext: applicationContext!, userInformation: userInformation! };
  return isRq
    ? { type: 'A-ASSOCIATE-RQ', ...common, presentationContexts: rqContexts }
    : { type: 'A-ASSOCIATE-AC', ...common, presentationContexts: acContexts };
}

function decodePcRq(b: Uint8Array, s: number, e: number, id: number): PresentationContextRq {
  const what = `presentation context ${id}`;
  let abstractSyntax: string | undefined;
  const transferSyntaxes: string[] = [];
  forEachItem(b, s + 4, e, what, 'SUB_ITEM_OVERRUNS_ITEM', (type, ss, se, at) => {
    if (type === ItemType.ABSTRACT_SYNTAX) {
      if (abstractSyntax !== undefined) fail(R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM', `${what}: second abstract syntax sub-item at offset ${at}`);
      abstractSyntax = decodeUid(b, ss, se, `${what} abstract syntax`);
    } else if (type === ItemType.TRANSFER_SYNTAX) {
      transferSyntaxes.push(decodeUid(b, ss, se, `${what} transfer syntax`));
    }
  });
  if (abstractSyntax === undefined) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_ABSTRACT_SYNTAX', `${what} (offset ${s - 4}) has no abstract syntax sub-item`);
  if (transferSyntaxes.length === 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_TRANSFER_SYNTAX', `${what} (offset ${s - 4}) has no transfer syntax sub-item`);
  return { id, abstractSyntax: abstractSyntax!, transferSyntaxes };
}

function decodePcAc(b: Uint8Array, s: number, e: number, id: number): PresentationContextAc {
  const what = `presentation context ${id}`;
  const result = b[s + 2];
  if (result > 4) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_RESULT', `${what}: result/reason ${result} at offset ${s + 2} is not 0..4`);
  let transferSyntax: string | undefined;
  forEachItem(b, s + 4, e, what, 'SUB_ITEM_OVERRUNS_ITEM', (type, ss, se, at) => {
    if (type === ItemType.TRANSFER_SYNTAX) {
      if (transferSyntax !== undefined) fail(R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM', `${what}: second transfer syntax sub-item at offset ${at}`);
      // When not accepted the transfer syntax "shall not be tested" (PS3.8 9.3.3.2): keep it verbatim.
      transferSyntax = result === 0 ? decodeUid(b, ss, se, `${what} transfer syntax`) : latin1(b, ss, se).replace(/[\0 ]+$/, '');
    } else if (type === ItemType.ABSTRACT_SYNTAX) {
      fail(R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_SUB_ITEM', `${what}: abstract syntax sub-item at offset ${at} is not allowed in an A-ASSOCIATE-AC`);
    }
  });
  if (result === 0 && transferSyntax === undefined) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_TRANSFER_SYNTAX', `${what} (offset ${s - 4}) is accepted but has no transfer syntax sub-item`);
  return { id, result: result as PresentationContextResult, transferSyntax: transferSyntax ?? '' };
}

function decodeUserInformation(b: Uint8Array, s: number, e: number): UserInformation {
  const ui: UserInformation = { maxPduLength: -1, implementationClassUid: '', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] };
  const seen = new Set<number>();
  forEachItem(b, s, e, 'user information', 'SUB_ITEM_OVERRUNS_ITEM', (type, ss, se, at) => {
    const f = new Fields(b, ss, se, `user information sub-item ${hex(type)} at offset ${at}`);
    const once = (): void => {
      if (seen.has(type)) fail(R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM', `${f.what} repeats a sub-item that may appear once`);
      seen.add(type);
    };
    switch (type) {
      case ItemType.MAX_LENGTH: once(); ui.maxPduLength = f.u32('maximum length'); break;
      case ItemType.IMPLEMENTATION_CLASS_UID: once(); ui.implementationClassUid = decodeUid(b, ss, se, f.what); f.pos = se; break;
      case ItemType.ASYNC_OPS_WINDOW: once(); ui.asyncOpsWindow = { invoked: f.u16('max operations invoked'), performed: f.u16('max operations performed') }; break;
      case ItemType.ROLE_SELECTION: {
        const sopClassUid = f.uid('SOP class UID');
        const scu = f.u8('SCU role'), scp = f.u8('SCP role');
        if (scu > 1 || scp > 1) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE', `${f.what}: SCU/SCP role values ${scu}/${scp} must be 0 or 1`);
        ui.roleSelections.push({ sopClassUid, scuRole: scu === 1, scpRole: scp === 1 });
        break;
      }
      case ItemType.IMPLEMENTATION_VERSION_NAME: {
        once();
        const name = latin1(b, ss, se).replace(/[\0 ]+$/, '');
        if (name.length > 16) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_IMPLEMENTATION_VERSION_NAME', `${f.what}: ${quote(name)} is longer than 16 characters`);
        if (name.length > 0) ui.implementationVersionName = name;
        f.pos = se;
        break;
      }
      case ItemType.SOP_CLASS_EXTENDED: {
        const sopClassUid = f.uid('SOP class UID');
        ui.sopClassExtended.push({ sopClassUid, info: f.bytes(se - f.pos, 'service class application information') });
        break;
      }
      case ItemType.SOP_CLASS_COMMON_EXTENDED: {
        const sopClassUid = f.uid('SOP class UID');
        const serviceClassUid = f.uid('service class UID');
        const relLen = f.u16('related general SOP class identification length');
        const relStart = f.need(relLen, 'related general SOP class identification');
        const rel = new Fields(b, relStart, relStart + relLen, `${f.what} related general SOP classes`);
        const relatedGeneralSopClassUids: string[] = [];
        while (rel.pos < rel.end) relatedGeneralSopClassUids.push(rel.uid('related general SOP class UID'));
        ui.sopClassCommonExtended.push({ sopClassUid, serviceClassUid, relatedGeneralSopClassUids });
        break;
      }
      case ItemType.USER_IDENTITY_RQ: {
        once();
        const identityType = f.u8('user identity type');
        if (identityType < 1 || identityType > 5) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_USER_IDENTITY_TYPE', `${f.what}: user identity type ${identityType} is not 1..5`);
        const positive = f.u8('positive response requested');
        if (positive > 1) fail(R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE', `${f.what}: positive-response-requested ${positive} must be 0 or 1`);
        const primaryField = f.bytes(f.u16('primary field length'), 'primary field');
        const secondaryField = f.bytes(f.u16('secondary field length'), 'secondary field');
        ui.userIdentityRq = { identityType: identityType as 1 | 2 | 3 | 4 | 5, positiveResponseRequested: positive === 1, primaryField, secondaryField };
        break;
      }
      case ItemType.USER_IDENTITY_AC: once(); ui.userIdentityAc = { serverResponse: f.bytes(f.u16('server response length'), 'server response') }; break;
      default: f.pos = se; // PS3.7 D.3.3: unrecognized user information sub-items are ignored
    }
    f.done();
  });
  if (ui.maxPduLength < 0) fail(R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_MAX_LENGTH', `user information item (offset ${s - 4}) has no maximum length sub-item`);
  return ui;
}
