import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { decodePdu, encodePdu, encodePDataTfHeader, pDataTfOverhead, PduDecodeError } from '../../protocol/pdu.ts';
import type { AssociateAc, AssociateRq, Pdu, UserInformation } from '../../protocol/pdu.types.ts';
import { AbortReason, DICOM_APPLICATION_CONTEXT } from '../../protocol/pdu.types.ts';
import { norm, pduArb } from './pdu-arbitraries.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const VERIFICATION = '1.2.840.10008.1.1';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const IVRLE = '1.2.840.10008.1.2';
const EVRLE = '1.2.840.10008.1.2.1';
const R = AbortReason;

// ── hand-built bytes, following the tables of PS3.8 9.3 / PS3.7 D.3.3 ──
type Part = number[] | Uint8Array | string;
const bytes = (...parts: Part[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const item = (type: number, ...parts: Part[]): Buffer => { const b = bytes(...parts); return bytes([type, 0, ...u16(b.length)], b); };
const pduBytes = (type: number, ...parts: Part[]): Buffer => { const b = bytes(...parts); return bytes([type, 0, ...u32(b.length)], b); };
const ae16 = (s: string): string => s.padEnd(16, ' ');
const fixedPart = (called = 'ROUTER', calling = 'MODALITY'): Buffer => bytes([0, 1, 0, 0], ae16(called), ae16(calling), new Uint8Array(32));
const appCtx = item(0x10, DICOM_APPLICATION_CONTEXT);
const pcRq = (id: number, abs: string, ...ts: string[]): Buffer => item(0x20, [id, 0, 0, 0], item(0x30, abs), ...ts.map((t) => item(0x40, t)));
const pcAc = (id: number, result: number, ts?: string): Buffer => item(0x21, [id, 0, result, 0], ...(ts === undefined ? [] : [item(0x40, ts)]));
const maxLen = (n: number): Buffer => item(0x51, u32(n));
const implUid = item(0x52, '1.2.3.4');
const userInfo = (...subs: Part[]): Buffer => item(0x50, ...subs);
const rq = (...items: Part[]): Buffer => pduBytes(1, fixedPart(), ...items);
const ac = (...items: Part[]): Buffer => pduBytes(2, fixedPart(), ...items);
const goodUi = userInfo(maxLen(16384), implUid);
const goodPc = pcRq(1, VERIFICATION, IVRLE);

function rejects(t: ExecutionContext, input: Uint8Array, reason: number, code: string): void {
  const err = t.throws(() => decodePdu(input), { instanceOf: PduDecodeError }) as PduDecodeError;
  t.is(err.code, code, err.message);
  t.is(err.reason, reason, err.message);
  t.true(err.message.length > 10);
}

const ui = (extra: Partial<UserInformation> = {}): UserInformation => ({
  maxPduLength: 16384, implementationClassUid: '1.2.3.4', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [], ...extra,
});

function roundTrip(t: ExecutionContext, pdu: Pdu): Buffer {
  const encoded = encodePdu(pdu);
  t.deepEqual(norm(decodePdu(encoded)), norm(pdu));
  return encoded;
}

// ── round trips ──

const fullRq: AssociateRq = {
  type: 'A-ASSOCIATE-RQ', protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'CT SCANNER 1', applicationContext: DICOM_APPLICATION_CONTEXT,
  presentationContexts: [
    { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IVRLE] },
    { id: 3, abstractSyntax: CT, transferSyntaxes: [EVRLE, IVRLE, '1.2.840.10008.1.2.4.50'] },
    { id: 255, abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.2', transferSyntaxes: [EVRLE] },
  ],
  userInformation: ui({
    implementationVersionName: 'ROUTER_0.1',
    asyncOpsWindow: { invoked: 5, performed: 0 },
    roleSelections: [{ sopClassUid: CT, scuRole: false, scpRole: true }, { sopClassUid: '1.2.840.10008.5.1.4.1.1.4', scuRole: true, scpRole: true }],
    sopClassExtended: [{ sopClassUid: '1.2.840.10008.5.1.4.1.2.2.1', info: Uint8Array.of(1, 1, 0, 1) }],
    sopClassCommonExtended: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.88.22', serviceClassUid: '1.2.840.10008.4.2', relatedGeneralSopClassUids: ['1.2.840.10008.5.1.4.1.1.88.11', '1.2.840.10008.5.1.4.1.1.88.33'] }],
    userIdentityRq: { identityType: 1, positiveResponseRequested: true, primaryField: Buffer.from('alice'), secondaryField: new Uint8Array(0) },
  }),
};

test('A-ASSOCIATE-RQ with every sub-item round-trips', (t) => {
  roundTrip(t, fullRq);
  roundTrip(t, { ...fullRq, userInformation: ui({ userIdentityRq: { identityType: 2, positiveResponseRequested: false, primaryField: Buffer.from('bob'), secondaryField: Buffer.from('s3cret') } }) });
  roundTrip(t, { ...fullRq, userInformation: ui({ implementationClassUid: '', maxPduLength: 0 }) });
});

test('A-ASSOCIATE-AC with each presentation context result and user identity AC round-trips', (t) => {
  const acPdu: AssociateAc = {
    type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'CT SCANNER 1', applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [
      { id: 1, result: 0, transferSyntax: IVRLE }, { id: 3, result: 1, transferSyntax: EVRLE }, { id: 5, result: 2, transferSyntax: '' },
      { id: 7, result: 3, transferSyntax: IVRLE }, { id: 9, result: 4, transferSyntax: '' },
    ],
    userInformation: ui({ implementationVersionName: 'X', asyncOpsWindow: { invoked: 1, performed: 1 }, roleSelections: [{ sopClassUid: CT, scuRole: false, scpRole: true }], userIdentityAc: { serverResponse: Buffer.from('ticket') } }),
  };
  roundTrip(t, acPdu);
});

test('the other PDUs round-trip', (t) => {
  roundTrip(t, { type: 'A-ASSOCIATE-RJ', result: 2, source: 3, reason: 2 });
  roundTrip(t, { type: 'A-RELEASE-RQ' });
  roundTrip(t, { type: 'A-RELEASE-RP' });
  roundTrip(t, { type: 'A-ABORT', source: 2, reason: 6 });
  roundTrip(t, { type: 'P-DATA-TF', pdvs: [
    { contextId: 1, isCommand: true, isLast: true, data: Uint8Array.of(1, 2, 3) },
    { contextId: 3, isCommand: false, isLast: false, data: new Uint8Array(0) },
  ] });
});

// ── golden bytes ──

test('golden: A-ASSOCIATE-RJ, A-ABORT, A-RELEASE-RQ/RP (PS3.8 9.3.4, 9.3.6-9.3.8)', (t) => {
  const rj = Buffer.from('03000000000400010103', 'hex'); // rejected-permanent, service-user, calling AE not recognized
  t.deepEqual(decodePdu(rj), { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 3 });
  t.deepEqual(encodePdu({ type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 3 }), rj);
  const abort = Buffer.from('07000000000400000206', 'hex'); // provider, invalid PDU parameter value
  t.deepEqual(decodePdu(abort), { type: 'A-ABORT', source: 2, reason: 6 });
  t.deepEqual(encodePdu({ type: 'A-ABORT', source: 2, reason: 6 }), abort);
  t.deepEqual(encodePdu({ type: 'A-RELEASE-RQ' }), Buffer.from('05000000000400000000', 'hex'));
  t.deepEqual(encodePdu({ type: 'A-RELEASE-RP' }), Buffer.from('06000000000400000000', 'hex'));
  // Reserved bytes are not tested on receipt.
  t.deepEqual(decodePdu(Buffer.from('05ff00000004ffffffff', 'hex')), { type: 'A-RELEASE-RQ' });
});

test('golden: P-DATA-TF with one command PDV (PS3.8 9.3.5, E.2)', (t) => {
  // type 04, reserved, PDU-length 10; PDV: item length 6, context 1, control 0x03 (command, last), 4 data bytes
  const golden = Buffer.from('04000000000a' + '00000006' + '01' + '03' + 'deadbeef', 'hex');
  const pdu = decodePdu(golden);
  t.deepEqual(norm(pdu), norm({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: Buffer.from('deadbeef', 'hex') }] }));
  t.deepEqual(encodePdu(pdu), golden);
  t.deepEqual(encodePDataTfHeader({ contextId: 1, isCommand: true, isLast: true }, 4), golden.subarray(0, 12));
  t.is(pDataTfOverhead(1), 12);
  t.is(pDataTfOverhead(3), 24);
  // Data bit 1 only: dataset fragment, not last; reserved control bits ignored
  const ds = decodePdu(Buffer.from('04000000000800000004' + '05' + 'fc' + 'abcd', 'hex'));
  t.like(ds, { type: 'P-DATA-TF', pdvs: [{ contextId: 5, isCommand: false, isLast: false }] });
});

test('P-DATA-TF PDV data are views into the input, not copies', (t) => {
  const input = encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: false, isLast: true, data: new Uint8Array(1000).fill(7) }] });
  const pdu = decodePdu(input);
  if (pdu.type !== 'P-DATA-TF') return t.fail();
  t.is(pdu.pdvs[0].data.buffer, input.buffer);
  t.is(pdu.pdvs[0].data.byteOffset, input.byteOffset + 12);
});

test('golden: a hand-built A-ASSOCIATE-RQ and A-ASSOCIATE-AC decode and re-encode byte for byte', (t) => {
  const roles = item(0x54, u16(CT.length), CT, [0, 1]);
  const ident = item(0x58, [2, 1], u16(3), 'bob', u16(2), 'pw');
  const async = item(0x53, u16(3), u16(1));
  const version = item(0x55, 'V1');
  const related = bytes(u16(3), '1.2', u16(5), '1.2.3');
  const common = bytes([0x57, 0, ...u16(2 + 3 + 2 + 3 + 2 + related.length)], u16(3), '9.9', u16(3), '8.8', u16(related.length), related);
  const ext = item(0x56, u16(3), '7.7', [1, 0, 1]);
  const input = rq(appCtx, pcRq(1, VERIFICATION, IVRLE), pcRq(3, CT, EVRLE, IVRLE),
    userInfo(maxLen(32768), implUid, async, roles, version, ext, common, ident));
  const expected: AssociateRq = {
    type: 'A-ASSOCIATE-RQ', protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'MODALITY', applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IVRLE] }, { id: 3, abstractSyntax: CT, transferSyntaxes: [EVRLE, IVRLE] }],
    userInformation: ui({
      maxPduLength: 32768, asyncOpsWindow: { invoked: 3, performed: 1 }, roleSelections: [{ sopClassUid: CT, scuRole: false, scpRole: true }],
      implementationVersionName: 'V1', sopClassExtended: [{ sopClassUid: '7.7', info: Uint8Array.of(1, 0, 1) }],
      sopClassCommonExtended: [{ sopClassUid: '9.9', serviceClassUid: '8.8', relatedGeneralSopClassUids: ['1.2', '1.2.3'] }],
      userIdentityRq: { identityType: 2, positiveResponseRequested: true, primaryField: Buffer.from('bob'), secondaryField: Buffer.from('pw') },
    }),
  };
  t.deepEqual(norm(decodePdu(input)), norm(expected));
  t.deepEqual(encodePdu(expected), input);

  const acInput = ac(appCtx, pcAc(1, 0, IVRLE), pcAc(3, 3, IVRLE), userInfo(maxLen(0), implUid, item(0x59, u16(2), 'ok')));
  const acExpected: AssociateAc = {
    type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'MODALITY', applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [{ id: 1, result: 0, transferSyntax: IVRLE }, { id: 3, result: 3, transferSyntax: IVRLE }],
    userInformation: ui({ maxPduLength: 0, userIdentityAc: { serverResponse: Buffer.from('ok') } }),
  };
  t.deepEqual(norm(decodePdu(acInput)), norm(acExpected));
  t.deepEqual(encodePdu(acExpected), acInput);
});

// Captured from DCMTK 3.6.7 (storescu -R --user alice --password secret; storescp's answer to our RQ).
const DCMTK_RQ = '01000000013d00010000524f555445522020202020202020202053544f52455343552020202020202020000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e31200000380100ff0030000019312e322e3834302e31303030382e352e312e342e312e312e3740000013312e322e3834302e31303030382e312e322e312000004d0300ff0030000019312e322e3834302e31303030382e352e312e342e312e312e3740000013312e322e3834302e31303030382e312e322e3240000011312e322e3834302e31303030382e312e325000004f51000004000040005200001b312e322e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f3336375800001102000005616c6963650006736563726574';
const DCMTK_AC = '0200000000f40001000053544f52455343502020202020202020524f5554455220202020202020202020000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e312100001b0100000040000013312e322e3834302e31303030382e312e322e31210000190300040040000011312e322e3834302e31303030382e312e32210000190500030040000011312e322e3834302e31303030382e312e325000003a51000004000040005200001b312e322e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f333637';

test('real DCMTK A-ASSOCIATE-RQ (user identity type 2) and A-ASSOCIATE-AC decode', (t) => {
  const rqPdu = decodePdu(Buffer.from(DCMTK_RQ, 'hex'));
  t.deepEqual(norm(rqPdu), norm({
    type: 'A-ASSOCIATE-RQ', protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'STORESCU', applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [
      { id: 1, abstractSyntax: '1.2.840.10008.5.1.4.1.1.7', transferSyntaxes: [EVRLE] },
      { id: 3, abstractSyntax: '1.2.840.10008.5.1.4.1.1.7', transferSyntaxes: ['1.2.840.10008.1.2.2', IVRLE] },
    ],
    userInformation: ui({
      implementationClassUid: '1.2.276.0.7230010.3.0.3.6.7', implementationVersionName: 'OFFIS_DCMTK_367',
      userIdentityRq: { identityType: 2, positiveResponseRequested: false, primaryField: Buffer.from('alice'), secondaryField: Buffer.from('secret') },
    }),
  }));
  const acPdu = decodePdu(Buffer.from(DCMTK_AC, 'hex'));
  t.like(acPdu, { type: 'A-ASSOCIATE-AC', calledAeTitle: 'STORESCP', callingAeTitle: 'ROUTER', userInformation: { maxPduLength: 16384, implementationVersionName: 'OFFIS_DCMTK_367' } });
  t.deepEqual((acPdu as AssociateAc).presentationContexts.map((p) => [p.id, p.result]), [[1, 0], [3, 4], [5, 3]]);
  t.deepEqual(encodePdu(acPdu), Buffer.from(DCMTK_AC, 'hex')); // our layout matches DCMTK's exactly
});

// ── malformed input: every validation ──

test('PDU header: unknown type, truncation, length mismatch, fixed lengths', (t) => {
  rejects(t, Buffer.from('08000000000400000000', 'hex'), R.UNRECOGNIZED_PDU, 'UNRECOGNIZED_PDU_TYPE');
  rejects(t, Buffer.from('00000000000400000000', 'hex'), R.UNRECOGNIZED_PDU, 'UNRECOGNIZED_PDU_TYPE');
  rejects(t, Buffer.from('0500000000', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'PDU_TRUNCATED');
  rejects(t, Buffer.from('050000000004000000', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'PDU_LENGTH_MISMATCH');
  rejects(t, Buffer.from('05000000000400000000ff', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'PDU_LENGTH_MISMATCH');
  rejects(t, Buffer.from('0500ffffffff00000000', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'PDU_LENGTH_MISMATCH');
  for (const type of ['03', '05', '06', '07']) {
    rejects(t, Buffer.from(`${type}00000000050000000000`, 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PDU_LENGTH');
  }
  rejects(t, Buffer.from('03000000000400030101', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE'); // result 3
  rejects(t, Buffer.from('03000000000400010401', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE'); // source 4
  rejects(t, Buffer.from('07000000000400000300', 'hex'), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE'); // source 3
});

test('error messages say what, where, expected and got', (t) => {
  const err = t.throws(() => decodePdu(Buffer.from('050000000004000000', 'hex')), { instanceOf: PduDecodeError });
  t.regex(err.message, /A-RELEASE-RQ PDU-length field \(offset 2\) says 4 bytes but 3 follow/);
  const err2 = t.throws(() => decodePdu(rq(appCtx, pcRq(1, VERIFICATION, IVRLE), userInfo(maxLen(1), item(0x52, '1.2.x')))), { instanceOf: PduDecodeError });
  t.regex(err2.message, /user information sub-item 0x52 at offset \d+.*"1\.2\.x" is not a UID/);
});

test('A-ASSOCIATE-RQ: fixed part, overruns, truncated item headers', (t) => {
  t.like(decodePdu(rq(appCtx, goodPc, goodUi)), { type: 'A-ASSOCIATE-RQ' });
  rejects(t, pduBytes(1, fixedPart().subarray(0, 60)), R.INVALID_PDU_PARAMETER_VALUE, 'PDU_TOO_SHORT');
  const overrun = rq(appCtx, goodPc, goodUi);
  overrun.writeUInt16BE(0xffff, overrun.length - goodUi.length + 2);
  rejects(t, overrun, R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_OVERRUNS_PDU');
  rejects(t, rq(appCtx, goodPc, goodUi, [0x60, 0]), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_HEADER_TRUNCATED');
  const badTs = item(0x20, [1, 0, 0, 0], item(0x30, VERIFICATION), [0x40, 0, 0, 200], IVRLE);
  rejects(t, rq(appCtx, badTs, goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'SUB_ITEM_OVERRUNS_ITEM');
  rejects(t, rq(appCtx, goodPc, userInfo(maxLen(1), [0x52, 0, 0, 9], '1.2')), R.INVALID_PDU_PARAMETER_VALUE, 'SUB_ITEM_OVERRUNS_ITEM');
});

test('AE titles: 1..16 significant characters, not all spaces, AE repertoire; AC titles are not tested', (t) => {
  const withAe = (called: string, calling = 'SCU'): Buffer => pduBytes(1, [0, 1, 0, 0], called, calling.padEnd(16), new Uint8Array(32), appCtx, goodPc, goodUi);
  t.like(decodePdu(withAe('  ROUTER        ')), { calledAeTitle: 'ROUTER' });
  t.like(decodePdu(withAe('ROUTER\0\0\0\0\0\0\0\0\0\0')), { calledAeTitle: 'ROUTER' });
  t.like(decodePdu(withAe('ABCDEFGHIJKLMNOP')), { calledAeTitle: 'ABCDEFGHIJKLMNOP' });
  rejects(t, withAe(' '.repeat(16)), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE');
  rejects(t, withAe('ROUTER', ' '.repeat(16)), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE');
  rejects(t, withAe('ROU\nTER'.padEnd(16)), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE');
  rejects(t, withAe('ROU\\TER'.padEnd(16)), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE');
  rejects(t, withAe('ROUT\u00e9R'.padEnd(16)), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_AE_TITLE');
  const acBlank = pduBytes(2, [0, 1, 0, 0], ' '.repeat(32), new Uint8Array(32), appCtx, goodUi);
  t.like(decodePdu(acBlank), { type: 'A-ASSOCIATE-AC', calledAeTitle: '', callingAeTitle: '' });
  t.throws(() => encodePdu({ ...fullRq, calledAeTitle: 'SEVENTEEN_CHARS_X' }), { instanceOf: RangeError });
});

test('UIDs: digits and dots, at most 64 characters; a trailing NUL or space is tolerated', (t) => {
  const withAbs = (abs: string): Buffer => rq(appCtx, pcRq(1, abs, IVRLE), goodUi);
  t.like(decodePdu(withAbs(`${VERIFICATION}\0`)), { presentationContexts: [{ abstractSyntax: VERIFICATION }] });
  t.like(decodePdu(withAbs(`${VERIFICATION} `)), { presentationContexts: [{ abstractSyntax: VERIFICATION }] });
  t.like(decodePdu(withAbs(`1.${'2'.repeat(62)}`)), { type: 'A-ASSOCIATE-RQ' });
  for (const bad of [`1.${'2'.repeat(63)}`, '', '1.2.abc', '1..2', '.1.2', '1.2.', '1.2\0.3']) {
    rejects(t, withAbs(bad), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID');
  }
  rejects(t, rq(item(0x10, 'dicom'), goodPc, goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID');
  rejects(t, rq(appCtx, pcRq(1, VERIFICATION, 'x'), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID');
  rejects(t, rq(appCtx, goodPc, userInfo(maxLen(1), item(0x52, ''))), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID');
});

test('presence rules of A-ASSOCIATE-RQ/AC items', (t) => {
  rejects(t, rq(goodPc, goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_APPLICATION_CONTEXT');
  rejects(t, rq(appCtx, appCtx, goodPc, goodUi), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_ITEM');
  rejects(t, rq(appCtx, goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_PRESENTATION_CONTEXT');
  rejects(t, rq(appCtx, goodPc), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_USER_INFORMATION');
  rejects(t, rq(appCtx, goodPc, goodUi, goodUi), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_ITEM');
  rejects(t, rq(appCtx, goodPc, userInfo(implUid)), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_MAX_LENGTH');
  rejects(t, rq(appCtx, goodPc, userInfo(maxLen(1), maxLen(2))), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, rq(appCtx, goodPc, userInfo(maxLen(1), implUid, implUid)), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, ac(appCtx, pcAc(1, 0, IVRLE)), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_USER_INFORMATION');
  rejects(t, ac(pcAc(1, 0, IVRLE), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_APPLICATION_CONTEXT');
  t.like(decodePdu(ac(appCtx, goodUi)), { type: 'A-ASSOCIATE-AC', presentationContexts: [] });
  // Wrong-direction and misplaced items
  rejects(t, rq(appCtx, pcAc(1, 0, IVRLE), goodUi), R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_ITEM');
  rejects(t, ac(appCtx, goodPc, goodUi), R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_ITEM');
  rejects(t, rq(appCtx, goodPc, item(0x40, IVRLE), goodUi), R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_ITEM');
});

test('presentation contexts: odd IDs 1..255, unique, one abstract syntax and at least one transfer syntax', (t) => {
  t.like(decodePdu(rq(appCtx, pcRq(255, VERIFICATION, IVRLE), goodUi)), { presentationContexts: [{ id: 255 }] });
  for (const id of [0, 2, 254]) rejects(t, rq(appCtx, pcRq(id, VERIFICATION, IVRLE), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_ID');
  rejects(t, ac(appCtx, pcAc(4, 0, IVRLE), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_ID');
  rejects(t, rq(appCtx, goodPc, goodPc, goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'DUPLICATE_PRESENTATION_CONTEXT_ID');
  rejects(t, ac(appCtx, pcAc(1, 0, IVRLE), pcAc(1, 0, IVRLE), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'DUPLICATE_PRESENTATION_CONTEXT_ID');
  rejects(t, rq(appCtx, item(0x20, [1, 0, 0, 0], item(0x40, IVRLE)), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_ABSTRACT_SYNTAX');
  rejects(t, rq(appCtx, item(0x20, [1, 0, 0, 0], item(0x30, VERIFICATION)), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_TRANSFER_SYNTAX');
  rejects(t, rq(appCtx, item(0x20, [1, 0, 0, 0], item(0x30, VERIFICATION), item(0x30, CT), item(0x40, IVRLE)), goodUi), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, rq(appCtx, item(0x20, [1, 0]), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_TOO_SHORT');
  rejects(t, ac(appCtx, item(0x21, [1, 0]), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_TOO_SHORT');
  rejects(t, ac(appCtx, pcAc(1, 5, IVRLE), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_RESULT');
  rejects(t, ac(appCtx, pcAc(1, 0), goodUi), R.INVALID_PDU_PARAMETER_VALUE, 'MISSING_TRANSFER_SYNTAX');
  rejects(t, ac(appCtx, item(0x21, [1, 0, 0, 0], item(0x40, IVRLE), item(0x40, EVRLE)), goodUi), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, ac(appCtx, item(0x21, [1, 0, 0, 0], item(0x30, CT), item(0x40, IVRLE)), goodUi), R.UNEXPECTED_PDU_PARAMETER, 'UNEXPECTED_SUB_ITEM');
  // A rejected context's transfer syntax is not tested (may be absent or junk).
  t.like(decodePdu(ac(appCtx, pcAc(1, 3), pcAc(3, 4, 'junk'), goodUi)), { presentationContexts: [{ id: 1, result: 3, transferSyntax: '' }, { id: 3, result: 4, transferSyntax: 'junk' }] });
});

test('unknown items and sub-items are skipped (PS3.8 9.3.1, PS3.7 D.3.3)', (t) => {
  const input = rq(item(0x7f, 'future'), appCtx, pcRq(1, VERIFICATION, IVRLE).subarray(0), goodUi.subarray(0), item(0x60, [1, 2, 3]));
  t.like(decodePdu(input), { applicationContext: DICOM_APPLICATION_CONTEXT, presentationContexts: [{ id: 1 }] });
  const withUnknownSubs = rq(appCtx, item(0x20, [1, 0, 0, 0], item(0x30, VERIFICATION), item(0x99, 'x'), item(0x40, IVRLE)),
    userInfo(item(0x5f, [9, 9]), maxLen(4096), item(0x10, 'not here'), implUid, item(0x5a, '')));
  t.like(decodePdu(withUnknownSubs), { presentationContexts: [{ transferSyntaxes: [IVRLE] }], userInformation: { maxPduLength: 4096, implementationClassUid: '1.2.3.4' } });
});

test('user information sub-item field validation', (t) => {
  const withSubs = (...subs: Part[]): Buffer => rq(appCtx, goodPc, userInfo(maxLen(16384), ...subs));
  rejects(t, rq(appCtx, goodPc, userInfo(item(0x51, [0, 0, 1]))), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, rq(appCtx, goodPc, userInfo(item(0x51, [0, 0, 1, 0, 0]))), R.INVALID_PDU_PARAMETER_VALUE, 'TRAILING_BYTES');
  rejects(t, withSubs(item(0x53, [0, 1, 0])), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x53, [0, 1, 0, 1]), item(0x53, [0, 1, 0, 1])), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, withSubs(item(0x54, u16(CT.length), CT, [2, 0])), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE');
  rejects(t, withSubs(item(0x54, u16(CT.length + 5), CT, [0, 1])), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x54, u16(CT.length), CT, [0])), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x54, u16(CT.length), CT, [0, 1, 0])), R.INVALID_PDU_PARAMETER_VALUE, 'TRAILING_BYTES');
  rejects(t, withSubs(item(0x55, 'SEVENTEEN_CHARS_X')), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_IMPLEMENTATION_VERSION_NAME');
  rejects(t, withSubs(item(0x56, u16(9), '1.2')), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x57, u16(3), '1.2', u16(3), '1.3', u16(9), u16(3), '1.4')), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x57, u16(3), '1.2', u16(3), '1.3', u16(5), u16(4), '1.4')), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x57, u16(3), '1.2', u16(3), 'x.3', u16(0))), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_UID');
  rejects(t, withSubs(item(0x58, [6, 0], u16(1), 'a', u16(0))), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_USER_IDENTITY_TYPE');
  rejects(t, withSubs(item(0x58, [1, 2], u16(1), 'a', u16(0))), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_FIELD_VALUE');
  rejects(t, withSubs(item(0x58, [1, 0], u16(1), 'a')), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  rejects(t, withSubs(item(0x58, [1, 0], u16(1), 'a', u16(0)), item(0x58, [1, 0], u16(1), 'a', u16(0))), R.UNEXPECTED_PDU_PARAMETER, 'DUPLICATE_SUB_ITEM');
  rejects(t, withSubs(item(0x59, u16(10), 'abc')), R.INVALID_PDU_PARAMETER_VALUE, 'FIELD_OVERRUNS_ITEM');
  // An empty implementation version name is treated as absent.
  t.false('implementationVersionName' in (decodePdu(withSubs(item(0x55, ''))) as AssociateRq).userInformation);
});

test('P-DATA-TF: PDV lengths, context IDs, at least one PDV', (t) => {
  rejects(t, pduBytes(4), R.INVALID_PDU_PARAMETER_VALUE, 'EMPTY_P_DATA');
  rejects(t, pduBytes(4, u32(1), [1]), R.INVALID_PDU_PARAMETER_VALUE, 'PDV_TOO_SHORT');
  rejects(t, pduBytes(4, u32(0)), R.INVALID_PDU_PARAMETER_VALUE, 'PDV_TOO_SHORT');
  rejects(t, pduBytes(4, u32(7), [1, 3, 0xaa]), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_OVERRUNS_PDU');
  rejects(t, pduBytes(4, u32(0xffffffff), [1, 3]), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_OVERRUNS_PDU');
  rejects(t, pduBytes(4, u32(2), [1, 3], [0, 0, 0]), R.INVALID_PDU_PARAMETER_VALUE, 'ITEM_HEADER_TRUNCATED');
  rejects(t, pduBytes(4, u32(2), [2, 3]), R.INVALID_PDU_PARAMETER_VALUE, 'BAD_PRESENTATION_CONTEXT_ID');
  t.like(decodePdu(pduBytes(4, u32(2), [1, 3])), { pdvs: [{ contextId: 1, isCommand: true, isLast: true }] });
  t.throws(() => encodePdu({ type: 'P-DATA-TF', pdvs: [] }), { instanceOf: RangeError });
  t.throws(() => encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 2, isCommand: false, isLast: false, data: new Uint8Array(1) }] }), { instanceOf: RangeError });
});

// ── properties ──

test('property: encode/decode round trip of arbitrary valid PDUs', (t) => {
  fc.assert(fc.property(pduArb, (pdu) => {
    const encoded = encodePdu(pdu);
    const decoded = decodePdu(encoded);
    t.deepEqual(norm(decoded), norm(pdu));
    return encodePdu(decoded).equals(encoded);
  }), { numRuns: fuzzRuns(400) });
});

/** Decoding either yields a PDU or a PduDecodeError with a valid reason, never any other throw. */
function decodesOrRejectsCleanly(input: Uint8Array): boolean {
  try {
    decodePdu(input);
    return true;
  } catch (e) {
    return e instanceof PduDecodeError && e.code !== 'DECODER_BUG' && [1, 2, 4, 5, 6].includes(e.reason);
  }
}

const withLength = (b: Buffer): Buffer => { if (b.length >= 6) b.writeUInt32BE(b.length - 6, 2); return b; };

test('property: random bytes yield a PDU or a PduDecodeError, nothing else', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodesOrRejectsCleanly), { numRuns: fuzzRuns(1000) });
  // Valid header in front of random bodies, to reach the item parsers.
  fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.uint8Array({ maxLength: 300 }),
    (type, body) => decodesOrRejectsCleanly(withLength(Buffer.concat([Buffer.from([type, 0, 0, 0, 0, 0]), body])))), { numRuns: fuzzRuns(1000) });
  t.pass();
});

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), fix: fc.boolean() }),
  fc.record({ kind: fc.constant('len16' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 0xffff }), fix: fc.boolean() }),
  fc.record({ kind: fc.constant('len32' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 0xffffffff }), fix: fc.boolean() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0), fix: fc.boolean() }),
  fc.record({ kind: fc.constant('extend' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), fix: fc.boolean() }),
);

test('property: mutated valid PDUs yield a PDU or a PduDecodeError, nothing else', (t) => {
  fc.assert(fc.property(pduArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (pdu, mutations) => {
    let b: Buffer = Buffer.from(encodePdu(pdu));
    for (const m of mutations) {
      const at = m.at % Math.max(1, b.length);
      if (m.kind === 'flip' && b.length > 0) b[at] = m.value;
      else if (m.kind === 'len16' && at + 2 <= b.length) b.writeUInt16BE(m.value, at);
      else if (m.kind === 'len32' && at + 4 <= b.length) b.writeUInt32BE(m.value, at);
      else if (m.kind === 'truncate') b = b.subarray(0, at);
      else if (m.kind === 'extend') b = Buffer.concat([b, Buffer.alloc(1 + (m.at % 16), m.value)]);
      // Half the time keep the PDU-length consistent so the damage is found deeper inside.
      if (m.fix) b = withLength(Buffer.from(b));
    }
    return decodesOrRejectsCleanly(b);
  }), { numRuns: fuzzRuns(1500) });
  t.pass();
});

test('decoding a large P-DATA-TF is fast and copies nothing', (t) => {
  const data = new Uint8Array(16 * 1024 * 1024);
  const pdus = encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: false, isLast: true, data }] });
  const start = performance.now();
  for (let i = 0; i < 1000; i++) decodePdu(pdus);
  t.true(performance.now() - start < 500, 'decoding a 16 MiB P-DATA-TF 1000 times must take well under 0.5 ms each');
});
