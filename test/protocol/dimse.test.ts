import test from 'ava';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import {
  CommandField,
  DimseDecodeError,
  NO_DATASET,
  Priority,
  commandName,
  decodeCommand,
  encodeCommand,
  hasDataset,
  isResponse,
  responseFor,
} from '../../protocol/dimse.ts';
import type { Command, DimseDecodeErrorCode } from '../../protocol/dimse.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const STUDY_ROOT_MOVE = '1.2.840.10008.5.1.4.1.2.2.2';

/** One Implicit VR LE element of group 0000. */
function el(element: number, value: Uint8Array | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(v.length, 4);
  return Buffer.concat([h, v]);
}
const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
/** Prefix a correct CommandGroupLength to the given elements. */
function withGroupLength(...elements: Buffer[]): Buffer {
  const body = Buffer.concat(elements);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(body.length);
  return Buffer.concat([el(0x0000, gl), body]);
}
/** The elements (tag, value) of an encoded command, for structural assertions. */
function elements(bytes: Buffer): Array<{ element: number; value: Buffer }> {
  const out = [];
  for (let o = 0; o < bytes.length; ) {
    const element = bytes.readUInt16LE(o + 2);
    const len = bytes.readUInt32LE(o + 4);
    out.push({ element, value: bytes.subarray(o + 8, o + 8 + len) });
    o += 8 + len;
  }
  return out;
}

test('golden C-ECHO-RQ written by hand from PS3.7 E.1-1 / 9.3.5', (t) => {
  // (0000,0000) UL 4 = 56; (0000,0002) UI 18 "1.2.840.10008.1.1\0"; (0000,0100) US 0030H;
  // (0000,0110) US 1; (0000,0800) US 0101H.
  const hex =
    '0000 0000 04000000 38000000' +
    '0000 0200 12000000 312e322e3834302e31303030382e312e3100' +
    '0000 0001 02000000 3000' +
    '0000 1001 02000000 0100' +
    '0000 0008 02000000 0101';
  const golden = Buffer.from(hex.replace(/ /g, ''), 'hex');
  t.is(golden.length, 68);
  const cmd: Command = {
    CommandField: CommandField.C_ECHO_RQ,
    MessageID: 1,
    AffectedSOPClassUID: '1.2.840.10008.1.1',
    CommandDataSetType: NO_DATASET,
  };
  t.deepEqual(encodeCommand(cmd), golden);
  t.deepEqual(decodeCommand(golden), cmd);
});

test('C-ECHO-RSP round trip via responseFor', (t) => {
  const rq: Command = { CommandField: CommandField.C_ECHO_RQ, MessageID: 7, AffectedSOPClassUID: '1.2.840.10008.1.1', CommandDataSetType: NO_DATASET };
  const rsp = responseFor(rq, 0x0000);
  t.deepEqual(rsp, {
    CommandField: 0x8030,
    MessageIDBeingRespondedTo: 7,
    AffectedSOPClassUID: '1.2.840.10008.1.1',
    CommandDataSetType: NO_DATASET,
    Status: 0,
  });
  t.deepEqual(decodeCommand(encodeCommand(rsp)), rsp);
  t.false('MessageID' in rsp);
});

test('C-STORE-RQ round trip with odd-length UIDs, priority and move originator; padding per VR', (t) => {
  const rq: Command = {
    CommandField: CommandField.C_STORE_RQ,
    MessageID: 65535,
    AffectedSOPClassUID: CT,
    AffectedSOPInstanceUID: '1.2.3.456', // odd length: NUL padded
    Priority: Priority.HIGH,
    CommandDataSetType: 0x0000,
    MoveOriginatorApplicationEntityTitle: 'ARCHIVE', // odd length: space padded
    MoveOriginatorMessageID: 12,
  };
  const bytes = encodeCommand(rq);
  t.deepEqual(decodeCommand(bytes), rq);
  t.true(hasDataset(rq));
  const els = elements(bytes);
  const tags = els.map((e) => e.element);
  t.deepEqual(tags, [...tags].sort((a, b) => a - b), 'ascending tag order');
  t.is(els[0].element, 0x0000);
  t.is(els[0].value.readUInt32LE(0), bytes.length - 12, 'group length counts every following byte');
  for (const e of els) t.is(e.value.length % 2, 0, `element ${e.element.toString(16)} has even length`);
  t.deepEqual(els.find((e) => e.element === 0x1000)!.value, Buffer.from('1.2.3.456\0', 'latin1'));
  t.deepEqual(els.find((e) => e.element === 0x1030)!.value, Buffer.from('ARCHIVE ', 'latin1'));
  t.deepEqual(els.find((e) => e.element === 0x0002)!.value, Buffer.from(CT + '\0', 'latin1'));
});

test('C-STORE-RSP via responseFor carries the affected SOP instance', (t) => {
  const rq: Command = {
    CommandField: CommandField.C_STORE_RQ,
    MessageID: 3,
    AffectedSOPClassUID: CT,
    AffectedSOPInstanceUID: '1.2.3.4.5',
    Priority: Priority.MEDIUM,
    CommandDataSetType: 0x0102,
  };
  const rsp = responseFor(rq, 0xb000, { ErrorComment: 'coerced' });
  t.is(rsp.CommandField, CommandField.C_STORE_RSP);
  t.is(rsp.MessageIDBeingRespondedTo, 3);
  t.is(rsp.AffectedSOPInstanceUID, '1.2.3.4.5');
  t.is(rsp.CommandDataSetType, NO_DATASET);
  t.is(rsp.Priority, undefined);
  t.deepEqual(decodeCommand(encodeCommand(rsp)), rsp);
});

test('C-FIND-RQ and pending C-FIND-RSP with an identifier round trip', (t) => {
  const rq: Command = { CommandField: CommandField.C_FIND_RQ, MessageID: 9, AffectedSOPClassUID: STUDY_ROOT_FIND, Priority: Priority.LOW, CommandDataSetType: 0x0000 };
  t.deepEqual(decodeCommand(encodeCommand(rq)), rq);
  const pending = responseFor(rq, 0xff00, { CommandDataSetType: 0x0000 });
  t.is(pending.CommandField, CommandField.C_FIND_RSP);
  t.true(hasDataset(pending));
  t.deepEqual(decodeCommand(encodeCommand(pending)), pending);
  const done = responseFor(rq, 0x0000);
  t.false(hasDataset(done));
  t.deepEqual(decodeCommand(encodeCommand(done)), done);
});

test('C-MOVE-RQ and C-MOVE-RSP with sub-operation counts round trip', (t) => {
  const rq: Command = {
    CommandField: CommandField.C_MOVE_RQ,
    MessageID: 100,
    AffectedSOPClassUID: STUDY_ROOT_MOVE,
    Priority: Priority.MEDIUM,
    MoveDestination: 'WORKSTATION1', // even length
    CommandDataSetType: 0x0000,
  };
  t.deepEqual(decodeCommand(encodeCommand(rq)), rq);
  const rsp = responseFor(rq, 0xb000, {
    NumberOfRemainingSuboperations: 0,
    NumberOfCompletedSuboperations: 40,
    NumberOfFailedSuboperations: 2,
    NumberOfWarningSuboperations: 1,
    OffendingElement: [0x0020000d, 0x7fe00010],
    ErrorComment: 'two failed',
  });
  const back = decodeCommand(encodeCommand(rsp));
  t.deepEqual(back, rsp);
  t.is(back.NumberOfCompletedSuboperations, 40);
  t.deepEqual(back.OffendingElement, [0x0020000d, 0x7fe00010]);
});

test('AT values are encoded group then element, little endian', (t) => {
  const bytes = encodeCommand({ CommandField: 0x8120, CommandDataSetType: NO_DATASET, Status: 0x0106, AttributeIdentifierList: [0x00100020] });
  const at = elements(bytes).find((e) => e.element === 0x1005)!.value;
  t.deepEqual(at, Buffer.from([0x10, 0x00, 0x20, 0x00]));
});

test('DIMSE-N responses: requested UIDs become affected ones, event/action type copied', (t) => {
  const action: Command = {
    CommandField: CommandField.N_ACTION_RQ,
    MessageID: 5,
    RequestedSOPClassUID: '1.2.840.10008.1.20.1',
    RequestedSOPInstanceUID: '1.2.840.10008.1.20.1.1',
    ActionTypeID: 1,
    CommandDataSetType: 0x0000,
  };
  const rsp = responseFor(action, 0);
  t.is(rsp.CommandField, CommandField.N_ACTION_RSP);
  t.is(rsp.AffectedSOPClassUID, '1.2.840.10008.1.20.1');
  t.is(rsp.AffectedSOPInstanceUID, '1.2.840.10008.1.20.1.1');
  t.is(rsp.ActionTypeID, 1);
  const event: Command = { CommandField: CommandField.N_EVENT_REPORT_RQ, MessageID: 6, AffectedSOPClassUID: '1.2.840.10008.1.20.1', AffectedSOPInstanceUID: '1.2.840.10008.1.20.1.1', EventTypeID: 2, CommandDataSetType: 0 };
  const ersp = responseFor(event, 0);
  t.is(ersp.CommandField, CommandField.N_EVENT_REPORT_RSP);
  t.is(ersp.EventTypeID, 2);
  t.deepEqual(decodeCommand(encodeCommand(ersp)), ersp);
});

test('responseFor refuses responses and C-CANCEL-RQ', (t) => {
  t.throws(() => responseFor({ CommandField: 0x8001, CommandDataSetType: NO_DATASET }, 0), { instanceOf: RangeError });
  t.throws(() => responseFor({ CommandField: CommandField.C_CANCEL_RQ, MessageIDBeingRespondedTo: 1, CommandDataSetType: NO_DATASET }, 0), { instanceOf: RangeError });
});

test('C-CANCEL-RQ round trip', (t) => {
  const cancel: Command = { CommandField: CommandField.C_CANCEL_RQ, MessageIDBeingRespondedTo: 9, CommandDataSetType: NO_DATASET };
  t.deepEqual(decodeCommand(encodeCommand(cancel)), cancel);
});

test('commandName and isResponse', (t) => {
  t.is(commandName(0x0001), 'C-STORE-RQ');
  t.is(commandName(0x8021), 'C-MOVE-RSP');
  t.is(commandName(0x0fff), 'C-CANCEL-RQ');
  t.is(commandName(0x8100), 'N-EVENT-REPORT-RSP');
  t.is(commandName(0x1234), 'UNKNOWN-0x1234');
  t.true(isResponse(0x8030));
  t.false(isResponse(0x0030));
  t.false(isResponse(0x0fff));
});

test('encodeCommand rejects out-of-range numbers', (t) => {
  t.throws(() => encodeCommand({ CommandField: 1, MessageID: 70000, CommandDataSetType: NO_DATASET }), { instanceOf: RangeError });
  t.throws(() => encodeCommand({ CommandField: 1.5, CommandDataSetType: NO_DATASET }), { instanceOf: RangeError });
});

test('ErrorComment (LO) is cut to 64 characters', (t) => {
  const rsp: Command = { CommandField: 0x8001, CommandDataSetType: NO_DATASET, Status: 0xa700, ErrorComment: 'x'.repeat(100) };
  t.is(decodeCommand(encodeCommand(rsp)).ErrorComment, 'x'.repeat(64));
});

test('decode tolerates unknown/retired group-0000 elements and space-padded UIDs', (t) => {
  const bytes = withGroupLength(
    el(0x0001, Buffer.from([0, 0, 0, 0])), // retired CommandLengthToEnd
    el(0x0002, '1.2.840.10008.1.1 '), // space instead of NUL
    el(0x0100, us(0x0030)),
    el(0x0110, us(4)),
    el(0x0800, us(NO_DATASET)),
    el(0x4000, 'some dialog text'), // retired LT
  );
  t.deepEqual(decodeCommand(bytes), { CommandField: 0x30, MessageID: 4, AffectedSOPClassUID: '1.2.840.10008.1.1', CommandDataSetType: NO_DATASET });
});

test('decode reads from a view with a non-zero byteOffset', (t) => {
  const cmd: Command = { CommandField: 0x8001, MessageIDBeingRespondedTo: 2, Status: 0xa700, CommandDataSetType: NO_DATASET };
  const enc = encodeCommand(cmd);
  const big = new Uint8Array(enc.length + 13);
  big.set(enc, 7);
  t.deepEqual(decodeCommand(big.subarray(7, 7 + enc.length)), cmd);
});

const echoBody = [el(0x0100, us(0x0030)), el(0x0110, us(1)), el(0x0800, us(NO_DATASET))];
function decodeError(t: import('ava').ExecutionContext, bytes: Uint8Array, code: DimseDecodeErrorCode) {
  const err = t.throws(() => decodeCommand(bytes), { instanceOf: DimseDecodeError });
  t.is(err?.code, code, err?.message);
}

test('decode error: truncated element header', (t) => {
  decodeError(t, withGroupLength(...echoBody, Buffer.from([0, 0, 0x10, 0x01, 2])), 'TRUNCATED_ELEMENT');
  decodeError(t, Buffer.from([0, 0, 0, 0]), 'TRUNCATED_ELEMENT');
});

test('decode error: element length past the end', (t) => {
  const bad = Buffer.concat([Buffer.from([0, 0, 0x02, 0x00, 100, 0, 0, 0]), Buffer.from('1.2.3.4')]);
  decodeError(t, withGroupLength(...echoBody, bad), 'LENGTH_PAST_END');
  const undefinedLength = Buffer.from([0, 0, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff]);
  decodeError(t, withGroupLength(...echoBody, undefinedLength), 'LENGTH_PAST_END');
});

test('decode error: wrong CommandGroupLength', (t) => {
  const good = withGroupLength(...echoBody);
  const bad = Buffer.from(good);
  bad.writeUInt32LE(good.readUInt32LE(8) + 2, 8);
  decodeError(t, bad, 'BAD_GROUP_LENGTH');
  decodeError(t, Buffer.concat([good, el(0x0120, us(1))]), 'BAD_GROUP_LENGTH'); // trailing element not counted
  decodeError(t, Buffer.concat([el(0x0000, us(10)), ...echoBody]), 'BAD_VALUE_LENGTH'); // group length as 2 bytes
});

test('decode error: missing group length, command field, data set type', (t) => {
  decodeError(t, Buffer.concat(echoBody), 'MISSING_GROUP_LENGTH');
  decodeError(t, new Uint8Array(0), 'MISSING_GROUP_LENGTH');
  decodeError(t, withGroupLength(el(0x0110, us(1)), el(0x0800, us(NO_DATASET))), 'MISSING_COMMAND_FIELD');
  decodeError(t, withGroupLength(el(0x0100, us(0x30)), el(0x0110, us(1))), 'MISSING_DATASET_TYPE');
});

test('decode error: wrong value length for a US element', (t) => {
  decodeError(t, withGroupLength(el(0x0100, Buffer.from([0x30, 0, 0, 0])), el(0x0800, us(NO_DATASET))), 'BAD_VALUE_LENGTH');
  decodeError(t, withGroupLength(el(0x0100, us(0x30)), el(0x0800, Buffer.alloc(0))), 'BAD_VALUE_LENGTH');
  decodeError(t, withGroupLength(...echoBody, el(0x0901, Buffer.from([0x10, 0, 0x20]))), 'BAD_VALUE_LENGTH'); // AT not 4n
});

test('decode error: bytes that are not group 0000', (t) => {
  const dataElement = Buffer.from([0x08, 0x00, 0x18, 0x00, 2, 0, 0, 0, 0x31, 0x00]); // (0008,0018)
  decodeError(t, withGroupLength(...echoBody, dataElement), 'NOT_COMMAND_GROUP');
  decodeError(t, dataElement, 'NOT_COMMAND_GROUP');
});

// ---- property tests ----

const uidArb = fc
  .array(fc.oneof(fc.constant('0'), fc.integer({ min: 1, max: 99999 }).map(String)), { minLength: 2, maxLength: 10 })
  .map((parts) => parts.join('.'));
const aeArb = fc.stringMatching(/^[A-Z0-9_]{1,16}$/);
const loArb = fc.stringMatching(/^[A-Za-z0-9 .,:-]{0,40}[A-Za-z0-9.]$/);
const usArb = fc.integer({ min: 0, max: 0xffff });
const tagArb = fc.integer({ min: 0, max: 0xffffffff });
const commandArb: fc.Arbitrary<Command> = fc.record(
  {
    CommandField: fc.constantFrom(...Object.values(CommandField)),
    MessageID: usArb,
    MessageIDBeingRespondedTo: usArb,
    AffectedSOPClassUID: uidArb,
    RequestedSOPClassUID: uidArb,
    AffectedSOPInstanceUID: uidArb,
    RequestedSOPInstanceUID: uidArb,
    Priority: fc.constantFrom(0, 1, 2),
    CommandDataSetType: fc.oneof(fc.constant(NO_DATASET), usArb),
    Status: usArb,
    OffendingElement: fc.array(tagArb, { minLength: 1, maxLength: 4 }),
    ErrorComment: loArb,
    ErrorID: usArb,
    MoveDestination: aeArb,
    MoveOriginatorApplicationEntityTitle: aeArb,
    MoveOriginatorMessageID: usArb,
    NumberOfRemainingSuboperations: usArb,
    NumberOfCompletedSuboperations: usArb,
    NumberOfFailedSuboperations: usArb,
    NumberOfWarningSuboperations: usArb,
    EventTypeID: usArb,
    ActionTypeID: usArb,
    AttributeIdentifierList: fc.array(tagArb, { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: ['CommandField', 'CommandDataSetType'] },
);

test('property: encode then decode is the identity', (t) => {
  fc.assert(
    // fc.record builds null-prototype objects; spread them into plain ones before comparing.
    fc.property(commandArb, (cmd) => isDeepStrictEqual(decodeCommand(encodeCommand(cmd)), { ...cmd })),
    { numRuns: fuzzRuns(500) },
  );
  t.pass();
});

function decodesOrDecodeError(bytes: Uint8Array): boolean {
  try {
    const cmd = decodeCommand(bytes);
    return typeof cmd.CommandField === 'number' && typeof cmd.CommandDataSetType === 'number';
  } catch (err) {
    return err instanceof DimseDecodeError && typeof err.code === 'string';
  }
}

test('property: random bytes decode to a Command or throw DimseDecodeError', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodesOrDecodeError), { numRuns: fuzzRuns(1000) });
  t.pass();
});

test('property: mutated valid commands decode to a Command or throw DimseDecodeError', (t) => {
  const mutated = fc
    .tuple(commandArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), fc.boolean())
    .map(([cmd, flips, cut, truncate]) => {
      const bytes = new Uint8Array(encodeCommand(cmd));
      for (const [at, v] of flips) bytes[at % bytes.length] = v;
      return truncate ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
    });
  fc.assert(fc.property(mutated, decodesOrDecodeError), { numRuns: fuzzRuns(1000) });
  t.pass();
});
