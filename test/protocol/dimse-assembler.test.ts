import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { DimseAssembler, DimseAssemblyError, MAX_COMMAND_SET_LENGTH, fragmentMessage } from '../../protocol/dimse-assembler.ts';
import type { AssemblerOutput, DimseAssemblyErrorCode } from '../../protocol/dimse-assembler.ts';
import { CommandField, DimseDecodeError, NO_DATASET, encodeCommand } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import type { Pdv } from '../../protocol/pdu.types.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const echoRq: Command = { CommandField: CommandField.C_ECHO_RQ, MessageID: 1, AffectedSOPClassUID: '1.2.840.10008.1.1', CommandDataSetType: NO_DATASET };
const storeRq = (id: number): Command => ({
  CommandField: CommandField.C_STORE_RQ,
  MessageID: id,
  AffectedSOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
  AffectedSOPInstanceUID: `1.2.3.${id}`,
  Priority: 0,
  CommandDataSetType: 0x0000,
});

const cmdPdv = (contextId: number, cmd: Command): Pdv => ({ contextId, isCommand: true, isLast: true, data: encodeCommand(cmd) });
const dsPdv = (contextId: number, data: Uint8Array, isLast: boolean): Pdv => ({ contextId, isCommand: false, isLast, data });

function pushAll(a: DimseAssembler, pdvs: Pdv[]): AssemblerOutput[] {
  return pdvs.flatMap((p) => a.push(p));
}
function assemblyError(t: ExecutionContext, fn: () => unknown, code: DimseAssemblyErrorCode): DimseAssemblyError | undefined {
  const err = t.throws(fn, { instanceOf: DimseAssemblyError });
  t.is(err?.code, code, err?.message);
  return err;
}

test('a single-PDV command without a data set', (t) => {
  const a = new DimseAssembler();
  t.false(a.inProgress);
  t.deepEqual(a.push(cmdPdv(1, echoRq)), [{ kind: 'command', contextId: 1, command: echoRq, expectsDataset: false }]);
  t.false(a.inProgress);
});

test('a command split into many fragments is output once, when its last fragment arrives', (t) => {
  const a = new DimseAssembler();
  const pdvs = fragmentMessage(3, encodeCommand(storeRq(42)), true, 7);
  t.true(pdvs.length > 10);
  for (const p of pdvs.slice(0, -1)) {
    t.deepEqual(a.push(p), []);
    t.true(a.inProgress);
  }
  const out = a.push(pdvs[pdvs.length - 1]);
  t.deepEqual(out, [{ kind: 'command', contextId: 3, command: storeRq(42), expectsDataset: true }]);
  t.true(a.inProgress, 'waiting for the data set');
});

test('data set fragments are streamed as they arrive, zero-copy', (t) => {
  const a = new DimseAssembler();
  const dataset = new Uint8Array(10_000).map((_, i) => i & 0xff);
  a.push(cmdPdv(5, storeRq(1)));
  const pdvs = fragmentMessage(5, dataset, false, 4096);
  t.is(pdvs.length, 3);
  const outs: AssemblerOutput[] = [];
  for (const p of pdvs) {
    const out = a.push(p);
    t.is(out.length, 1, 'each PDV is output immediately');
    const o = out[0];
    if (o.kind !== 'dataset-fragment') return t.fail('expected a fragment');
    t.is(o.data, p.data, 'the very same view');
    t.is(o.data.buffer, dataset.buffer, 'same underlying buffer');
    t.is(o.contextId, 5);
    outs.push(o);
  }
  t.deepEqual(
    outs.map((o) => (o.kind === 'dataset-fragment' ? o.isLast : null)),
    [false, false, true],
  );
  t.false(a.inProgress);
});

test('messages on different presentation contexts in sequence', (t) => {
  const a = new DimseAssembler();
  const ds = new Uint8Array([1, 2, 3, 4]);
  const out = pushAll(a, [
    cmdPdv(1, storeRq(1)),
    dsPdv(1, ds.subarray(0, 2), false),
    dsPdv(1, ds.subarray(2), true),
    cmdPdv(3, echoRq),
    ...fragmentMessage(5, encodeCommand(storeRq(2)), true, 16),
    dsPdv(5, ds, true),
    cmdPdv(1, storeRq(3)),
    dsPdv(1, ds, true),
  ]);
  t.deepEqual(
    out.map((o) => `${o.kind}@${o.contextId}`),
    ['command@1', 'dataset-fragment@1', 'dataset-fragment@1', 'command@3', 'command@5', 'dataset-fragment@5', 'command@1', 'dataset-fragment@1'],
  );
  t.false(a.inProgress);
});

test('an empty last data set PDV ends the data set', (t) => {
  const a = new DimseAssembler();
  a.push(cmdPdv(1, storeRq(1)));
  a.push(dsPdv(1, new Uint8Array(8), false));
  t.deepEqual(a.push(dsPdv(1, new Uint8Array(0), true)), [{ kind: 'dataset-fragment', contextId: 1, data: new Uint8Array(0), isLast: true }]);
  t.false(a.inProgress);
});

test('error: data set PDV when no data set is expected', (t) => {
  assemblyError(t, () => new DimseAssembler().push(dsPdv(1, new Uint8Array(4), true)), 'UNEXPECTED_DATASET');
  const a = new DimseAssembler();
  a.push(cmdPdv(1, echoRq));
  assemblyError(t, () => a.push(dsPdv(1, new Uint8Array(4), true)), 'UNEXPECTED_DATASET');
  const b = new DimseAssembler();
  b.push(cmdPdv(1, storeRq(1)));
  b.push(dsPdv(1, new Uint8Array(4), true));
  assemblyError(t, () => b.push(dsPdv(1, new Uint8Array(4), true)), 'UNEXPECTED_DATASET'); // after the last one
  const c = new DimseAssembler();
  c.push(fragmentMessage(1, encodeCommand(storeRq(1)), true, 10)[0]);
  assemblyError(t, () => c.push(dsPdv(1, new Uint8Array(4), true)), 'UNEXPECTED_DATASET'); // command incomplete
});

test('error: data set PDV on a different context from its command', (t) => {
  const a = new DimseAssembler();
  a.push(cmdPdv(1, storeRq(1)));
  a.push(dsPdv(1, new Uint8Array(4), false));
  assemblyError(t, () => a.push(dsPdv(3, new Uint8Array(4), true)), 'DATASET_CONTEXT_MISMATCH');
});

test('error: command PDV while a data set is in progress', (t) => {
  const a = new DimseAssembler();
  a.push(cmdPdv(1, storeRq(1)));
  assemblyError(t, () => a.push(cmdPdv(1, echoRq)), 'COMMAND_DURING_DATASET'); // before any data set PDV
  const b = new DimseAssembler();
  b.push(cmdPdv(1, storeRq(1)));
  b.push(dsPdv(1, new Uint8Array(4), false));
  assemblyError(t, () => b.push(cmdPdv(3, echoRq)), 'COMMAND_DURING_DATASET');
});

test('error: command fragment on a different context than the earlier fragments', (t) => {
  const a = new DimseAssembler();
  const [first, second] = fragmentMessage(1, encodeCommand(echoRq), true, 20);
  a.push(first);
  assemblyError(t, () => a.push({ ...second, contextId: 3 }), 'COMMAND_CONTEXT_MISMATCH');
});

test('error: undecodable command, with the decode error as cause', (t) => {
  const bytes = encodeCommand(echoRq);
  bytes.writeUInt32LE(99, 8); // wrong group length
  const err = assemblyError(t, () => new DimseAssembler().push({ contextId: 1, isCommand: true, isLast: true, data: bytes }), 'BAD_COMMAND');
  t.true(err?.cause instanceof DimseDecodeError);
});

test('error: a command set larger than 64 KiB', (t) => {
  const a = new DimseAssembler();
  const chunk = new Uint8Array(16 * 1024);
  for (let i = 0; i < 4; i++) t.deepEqual(a.push({ contextId: 1, isCommand: true, isLast: false, data: chunk }), []);
  t.is(4 * chunk.length, MAX_COMMAND_SET_LENGTH);
  assemblyError(t, () => a.push({ contextId: 1, isCommand: true, isLast: true, data: new Uint8Array(1) }), 'COMMAND_TOO_LARGE');
});

test('fragmentMessage splits into views of at most max bytes, the last flagged', (t) => {
  const bytes = new Uint8Array(25).map((_, i) => i);
  const pdvs = fragmentMessage(7, bytes, false, 10);
  t.deepEqual(
    pdvs.map((p) => [p.contextId, p.isCommand, p.isLast, p.data.length]),
    [
      [7, false, false, 10],
      [7, false, false, 10],
      [7, false, true, 5],
    ],
  );
  for (const p of pdvs) t.is(p.data.buffer, bytes.buffer);
  t.deepEqual(Buffer.concat(pdvs.map((p) => p.data)), Buffer.from(bytes));
  t.deepEqual(fragmentMessage(1, bytes, true, 25).map((p) => p.isLast), [true]);
  const empty = fragmentMessage(1, new Uint8Array(0), false, 10);
  t.is(empty.length, 1);
  t.true(empty[0].isLast);
  t.throws(() => fragmentMessage(1, bytes, true, 0), { instanceOf: RangeError });
  t.throws(() => fragmentMessage(1, bytes, true, 2.5), { instanceOf: RangeError });
});

test('property: any fragmentation of command + data set reassembles to the same message', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 255 }),
      fc.integer({ min: 1, max: 100 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.integer({ min: 1, max: 1000 }),
      (contextId, cmdMax, dataset, dsMax) => {
        const a = new DimseAssembler();
        const out = pushAll(a, [...fragmentMessage(contextId, encodeCommand(storeRq(9)), true, cmdMax), ...fragmentMessage(contextId, dataset, false, dsMax)]);
        const [first, ...rest] = out;
        if (first.kind !== 'command' || first.command.MessageID !== 9 || !first.expectsDataset) return false;
        const frags = rest.flatMap((o) => (o.kind === 'dataset-fragment' ? [o] : []));
        if (frags.length !== rest.length || !frags[frags.length - 1].isLast) return false;
        return !a.inProgress && Buffer.concat(frags.map((f) => f.data)).equals(Buffer.from(dataset));
      },
    ),
    { numRuns: fuzzRuns(200) },
  );
  t.pass();
});
