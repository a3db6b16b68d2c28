// DICOM Upper Layer PDU encoder: PS3.8 9.3 and PS3.7 Annex D.3.3. Pure: no I/O.
// Encoding errors are programming errors (values that cannot be represented), thrown as RangeError.
import { PduType } from './pdu.types.ts';
import type { AssociateAc, AssociateRq, Pdu, PDataTf, Pdv, UserInformation } from './pdu.types.ts';

/** Item and sub-item types (PS3.8 9.3.2 / 9.3.3, PS3.7 D.3.3). */
export const ItemType = {
  APPLICATION_CONTEXT: 0x10, PRESENTATION_CONTEXT_RQ: 0x20, PRESENTATION_CONTEXT_AC: 0x21,
  ABSTRACT_SYNTAX: 0x30, TRANSFER_SYNTAX: 0x40, USER_INFORMATION: 0x50,
  MAX_LENGTH: 0x51, IMPLEMENTATION_CLASS_UID: 0x52, ASYNC_OPS_WINDOW: 0x53, ROLE_SELECTION: 0x54,
  IMPLEMENTATION_VERSION_NAME: 0x55, SOP_CLASS_EXTENDED: 0x56, SOP_CLASS_COMMON_EXTENDED: 0x57,
  USER_IDENTITY_RQ: 0x58, USER_IDENTITY_AC: 0x59,
} as const;

/** Size of the PDU header (type, reserved, 4-byte PDU-length). */
export const PDU_HEADER_LENGTH = 6;
/** Per-PDV overhead inside a P-DATA-TF: 4-byte item length, context ID, message control header (PS3.8 9.3.5.1). */
export const PDV_HEADER_LENGTH = 6;

/** Bytes a P-DATA-TF with `pdvCount` PDVs adds on top of the PDV data: the 6-byte PDU header plus 6 per PDV.
 *  Note the peer's maximum length (PS3.8 D.1) bounds the PDU-length field, which excludes the 6-byte PDU header:
 *  a single-PDV PDU may carry at most `peerMax - PDV_HEADER_LENGTH` data bytes (as DCMTK computes it). */
export function pDataTfOverhead(pdvCount: number): number {
  return PDU_HEADER_LENGTH + PDV_HEADER_LENGTH * pdvCount;
}

/** The 12 bytes preceding the data of a single-PDV P-DATA-TF, so a sender can write header and data (e.g. a
 *  file chunk) without copying the data into one buffer. */
export function encodePDataTfHeader(pdv: Omit<Pdv, 'data'>, dataLength: number): Buffer {
  checkPdvContextId(pdv.contextId);
  if (!Number.isInteger(dataLength) || dataLength < 0 || dataLength > 0xffffffff - PDV_HEADER_LENGTH) {
    throw new RangeError(`PDV data length ${dataLength} cannot be encoded`);
  }
  const h = Buffer.allocUnsafe(pDataTfOverhead(1));
  h[0] = PduType.P_DATA_TF;
  h[1] = 0;
  h.writeUInt32BE(dataLength + PDV_HEADER_LENGTH, 2);
  h.writeUInt32BE(dataLength + 2, 6);
  h[10] = pdv.contextId;
  h[11] = (pdv.isCommand ? 1 : 0) | (pdv.isLast ? 2 : 0);
  return h;
}


export function encodePdu(pdu: Pdu): Buffer {
  switch (pdu.type) {
    case 'A-ASSOCIATE-RQ': return encodeAssociate(PduType.ASSOCIATE_RQ, pdu);
    case 'A-ASSOCIATE-AC': return encodeAssociate(PduType.ASSOCIATE_AC, pdu);
    case 'A-ASSOCIATE-RJ': return fixedPdu(PduType.ASSOCIATE_RJ, [0, pdu.result, pdu.source, pdu.reason]);
    case 'P-DATA-TF': return encodePData(pdu);
    case 'A-RELEASE-RQ': return fixedPdu(PduType.RELEASE_RQ, [0, 0, 0, 0]);
    case 'A-RELEASE-RP': return fixedPdu(PduType.RELEASE_RP, [0, 0, 0, 0]);
    case 'A-ABORT': return fixedPdu(PduType.ABORT, [0, 0, pdu.source, pdu.reason]);
  }
}

function fixedPdu(type: number, body: number[]): Buffer {
  for (const v of body) if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`byte value ${v} out of range`);
  return Buffer.from([type, 0, 0, 0, 0, 4, ...body]);
}

function checkPdvContextId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 255 || id % 2 === 0) {
    throw new RangeError(`presentation context ID ${id} is not an odd integer 1..255`);
  }
}

function encodePData(pdu: PDataTf): Buffer {
  if (pdu.pdvs.length === 0) throw new RangeError('a P-DATA-TF needs at least one PDV (PS3.8 9.3.5)');
  let length = 0;
  for (const pdv of pdu.pdvs) {
    checkPdvContextId(pdv.contextId);
    length += PDV_HEADER_LENGTH + pdv.data.length;
  }
  if (length > 0xffffffff) throw new RangeError(`P-DATA-TF length ${length} exceeds 2^32-1`);
  const out = Buffer.allocUnsafe(PDU_HEADER_LENGTH + length);
  out[0] = PduType.P_DATA_TF;
  out[1] = 0;
  out.writeUInt32BE(length, 2);
  let pos = PDU_HEADER_LENGTH;
  for (const pdv of pdu.pdvs) {
    out.writeUInt32BE(pdv.data.length + 2, pos);
    out[pos + 4] = pdv.contextId;
    out[pos + 5] = (pdv.isCommand ? 1 : 0) | (pdv.isLast ? 2 : 0);
    out.set(pdv.data, pos + 6);
    pos += PDV_HEADER_LENGTH + pdv.data.length;
  }
  return out;
}

const u8 = (v: number): Buffer => Buffer.from([v]);
const u16 = (v: number): Buffer => { const b = Buffer.allocUnsafe(2); b.writeUInt16BE(v); return b; };
const u32 = (v: number): Buffer => { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(v); return b; };

function ascii(s: string, what: string): Buffer {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new RangeError(`${what} ${JSON.stringify(s)} has a non-printable or non-ASCII character`);
  }
  return Buffer.from(s, 'latin1');
}

/** An item or sub-item with a 2-byte length: type, reserved (or sub-item version), length, body. */
function item(type: number, parts: Uint8Array[], byte1 = 0): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > 0xffff) throw new RangeError(`item 0x${type.toString(16)} body of ${length} bytes exceeds 65535`);
  return Buffer.concat([Buffer.from([type, byte1, length >> 8, length & 0xff]), ...parts], 4 + length);
}

/** A UID preceded by its 2-byte length (role selection, extended negotiation sub-items). */
const prefixedUid = (uid: string): Buffer[] => [u16(uid.length), ascii(uid, 'UID')];

function aeField(ae: string, what: string): Buffer {
  if (ae.length > 16) throw new RangeError(`${what} ${JSON.stringify(ae)} is longer than 16 characters`);
  return ascii(ae.padEnd(16, ' '), what); // PS3.8 9.3.2: 16 characters, trailing spaces non-significant
}

function encodeAssociate(type: number, pdu: AssociateRq | AssociateAc): Buffer {
  const items: Buffer[] = [item(ItemType.APPLICATION_CONTEXT, [ascii(pdu.applicationContext, 'application context')])];
  if (pdu.type === 'A-ASSOCIATE-RQ') {
    for (const pc of pdu.presentationContexts) {
      checkPdvContextId(pc.id);
      items.push(item(ItemType.PRESENTATION_CONTEXT_RQ, [
        Buffer.from([pc.id, 0, 0, 0]),
        item(ItemType.ABSTRACT_SYNTAX, [ascii(pc.abstractSyntax, 'abstract syntax')]),
        ...pc.transferSyntaxes.map((ts) => item(ItemType.TRANSFER_SYNTAX, [ascii(ts, 'transfer syntax')])),
      ]));
    }
  } else {
    for (const pc of pdu.presentationContexts) {
      checkPdvContextId(pc.id);
      items.push(item(ItemType.PRESENTATION_CONTEXT_AC, [
        Buffer.from([pc.id, 0, pc.result, 0]),
        item(ItemType.TRANSFER_SYNTAX, [ascii(pc.transferSyntax, 'transfer syntax')]),
      ]));
    }
  }
  items.push(encodeUserInformation(pdu.userInformation));
  const fixed = Buffer.concat([
    u16(pdu.protocolVersion), u16(0),
    aeField(pdu.calledAeTitle, 'called AE title'), aeField(pdu.callingAeTitle, 'calling AE title'),
    Buffer.alloc(32),
  ]);
  const body = Buffer.concat([fixed, ...items]);
  return Buffer.concat([Buffer.from([type, 0]), u32(body.length), body]);
}

function encodeUserInformation(ui: UserInformation): Buffer {
  const subs: Buffer[] = [item(ItemType.MAX_LENGTH, [u32(ui.maxPduLength)])];
  if (ui.implementationClassUid !== '') {
    subs.push(item(ItemType.IMPLEMENTATION_CLASS_UID, [ascii(ui.implementationClassUid, 'implementation class UID')]));
  }
  if (ui.asyncOpsWindow) {
    subs.push(item(ItemType.ASYNC_OPS_WINDOW, [u16(ui.asyncOpsWindow.invoked), u16(ui.asyncOpsWindow.performed)]));
  }
  for (const r of ui.roleSelections) {
    subs.push(item(ItemType.ROLE_SELECTION, [...prefixedUid(r.sopClassUid), u8(r.scuRole ? 1 : 0), u8(r.scpRole ? 1 : 0)]));
  }
  if (ui.implementationVersionName !== undefined) {
    subs.push(item(ItemType.IMPLEMENTATION_VERSION_NAME, [ascii(ui.implementationVersionName, 'implementation version name')]));
  }
  for (const e of ui.sopClassExtended) subs.push(item(ItemType.SOP_CLASS_EXTENDED, [...prefixedUid(e.sopClassUid), e.info]));
  for (const c of ui.sopClassCommonExtended) {
    const related = Buffer.concat(c.relatedGeneralSopClassUids.flatMap(prefixedUid));
    subs.push(item(ItemType.SOP_CLASS_COMMON_EXTENDED,
      [...prefixedUid(c.sopClassUid), ...prefixedUid(c.serviceClassUid), u16(related.length), related]));
  }
  const id = ui.userIdentityRq;
  if (id) {
    subs.push(item(ItemType.USER_IDENTITY_RQ, [Buffer.from([id.identityType, id.positiveResponseRequested ? 1 : 0]),
      u16(id.primaryField.length), id.primaryField, u16(id.secondaryField.length), id.secondaryField]));
  }
  if (ui.userIdentityAc) {
    subs.push(item(ItemType.USER_IDENTITY_AC, [u16(ui.userIdentityAc.serverResponse.length), ui.userIdentityAc.serverResponse]));
  }
  return item(ItemType.USER_INFORMATION, subs);
}
