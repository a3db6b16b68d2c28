// The C-FIND and C-MOVE SCP transaction machines as the association spawns them: pending responses as
// the runner reports, the final status, C-CANCEL, and the DIMSE timeout (simulated clock).
import test from 'ava';
import { createActor, SimulatedClock } from 'xstate';
import { associationMachine } from '../../../machines/association.machine.ts';
import type { DulOutput } from '../../../machines/association.machine.ts';
import type { DimseInput, SubOperations } from '../../../machines/dimse/dimse.events.ts';
import type { FindMatch, QrFinal } from '../../../machines/dimse/qr-scp.events.ts';
import { CommandField, DATASET_PRESENT, NO_DATASET } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { Status } from '../../../protocol/status.ts';

const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
type Send = Extract<DulOutput, { type: 'DIMSE_SEND' }>;

function association(clock?: SimulatedClock) {
  const actor = createActor(associationMachine, { input: { artimTimeoutMs: 1000 }, ...(clock ? { clock } : {}) });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e as DulOutput));
  actor.start();
  return { actor, sends: () => out.filter((e): e is Send => e.type === 'DIMSE_SEND'), completed: () => out.filter((e) => e.type === 'DIMSE_COMPLETED') };
}

const rq = (field: number, sopClass: string, messageId: number): Command => ({ CommandField: field, MessageID: messageId, AffectedSOPClassUID: sopClass, Priority: 0, CommandDataSetType: DATASET_PRESENT });
const input = (command: Command, extra: Partial<DimseInput>): DimseInput => ({ associationId: 'a1', messageId: command.MessageID!, contextId: 1, command, dimseTimeoutMs: 1000, ...extra });
const tick = () => new Promise((r) => setImmediate(r));

/** A runner the test drives by hand. */
function controlled<T>() {
  let resolve!: (v: QrFinal) => void;
  let emit!: (v: T) => void;
  let cancelled = 0;
  const runner = (e: (v: T) => void) => {
    emit = e;
    return { done: new Promise<QrFinal>((r) => (resolve = r)), cancel: () => void cancelled++ };
  };
  return { runner, emit: (v: T) => emit(v), end: (f: QrFinal) => resolve(f), cancelled: () => cancelled };
}

test('C-FIND SCP: one pending response per match as it comes (FF01 when flagged), then the final status', async (t) => {
  const { actor, sends, completed } = association();
  const run = controlled<FindMatch>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cFindScp', input: input(rq(CommandField.C_FIND_RQ, FIND, 5), { find: run.runner }) });
  t.is(sends().length, 0);
  run.emit({ dataset: Uint8Array.of(1) });
  t.is(sends().length, 1, 'relayed at once');
  run.emit({ dataset: Uint8Array.of(2), warning: true });
  t.like(sends()[0].command, { CommandField: CommandField.C_FIND_RSP, MessageIDBeingRespondedTo: 5, Status: Status.PENDING, CommandDataSetType: DATASET_PRESENT });
  t.deepEqual(sends()[0].dataset, { kind: 'bytes', data: Uint8Array.of(1) });
  t.like(sends()[1].command, { Status: Status.PENDING_WARNING });
  run.end({ status: Status.SUCCESS });
  await tick();
  t.like(sends()[2].command, { Status: Status.SUCCESS, CommandDataSetType: NO_DATASET });
  t.like(completed()[0], { outcome: { messageId: 5, status: 0 } });
  t.is(run.cancelled(), 0, 'a search that ended is not cancelled');
});

test('C-FIND SCP: C-CANCEL ends it with FE00 at once and cancels the search', async (t) => {
  const { actor, sends } = association();
  const run = controlled<FindMatch>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cFindScp', input: input(rq(CommandField.C_FIND_RQ, FIND, 6), { find: run.runner }) });
  run.emit({ dataset: Uint8Array.of(1) });
  actor.getSnapshot().children['dimse-6']!.send({ type: 'CANCEL_REQUESTED' });
  t.like(sends()[1].command, { Status: Status.CANCEL });
  t.is(run.cancelled(), 1);
  run.emit({ dataset: Uint8Array.of(2) });
  t.is(sends().length, 2, 'nothing after the final response');
});

test('C-FIND SCP: sources silent for the DIMSE timeout: A700 with an Error Comment, search cancelled', (t) => {
  const clock = new SimulatedClock();
  const { actor, sends } = association(clock);
  const run = controlled<FindMatch>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cFindScp', input: input(rq(CommandField.C_FIND_RQ, FIND, 7), { find: run.runner }) });
  clock.increment(900);
  run.emit({ dataset: Uint8Array.of(1) });
  clock.increment(900);
  t.is(sends().length, 1, 'each match restarts the timeout');
  clock.increment(200);
  t.like(sends()[1].command, { Status: Status.OUT_OF_RESOURCES, ErrorComment: 'no answer from the query sources within 1000 ms' });
  t.is(run.cancelled(), 1);
});

test('C-FIND SCP: the requester gone: no response, search cancelled', (t) => {
  const { actor, sends, completed } = association();
  const run = controlled<FindMatch>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cFindScp', input: input(rq(CommandField.C_FIND_RQ, FIND, 8), { find: run.runner }) });
  actor.getSnapshot().children['dimse-8']!.send({ type: 'ASSOCIATION_ENDED', reason: 'transport closed' });
  t.is(sends().length, 0);
  t.is(run.cancelled(), 1);
  t.like(completed()[0], { outcome: { failure: 'transport closed' } });
});

test('C-MOVE SCP: pending responses with counts, final with counts and the failed UID identifier', async (t) => {
  const { actor, sends, completed } = association();
  const run = controlled<SubOperations>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cMoveScp', input: input({ ...rq(CommandField.C_MOVE_RQ, MOVE, 9), MoveDestination: 'WS' }, { retrieve: run.runner }) });
  run.emit({ remaining: 2, completed: 1, failed: 0, warning: 0 });
  t.like(sends()[0].command, { CommandField: CommandField.C_MOVE_RSP, Status: Status.PENDING, NumberOfRemainingSuboperations: 2, NumberOfCompletedSuboperations: 1, NumberOfFailedSuboperations: 0, NumberOfWarningSuboperations: 0 });
  run.end({ status: Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES, suboperations: { completed: 2, failed: 1, warning: 0 }, dataset: Uint8Array.of(9) });
  await tick();
  const final = sends()[1];
  t.like(final.command, { Status: 0xb000, NumberOfCompletedSuboperations: 2, NumberOfFailedSuboperations: 1, CommandDataSetType: DATASET_PRESENT });
  t.is(final.command.NumberOfRemainingSuboperations, undefined, 'no Remaining in a final response');
  t.deepEqual(final.dataset, { kind: 'bytes', data: Uint8Array.of(9) });
  t.like(completed()[0], { outcome: { status: 0xb000, suboperations: { completed: 2, failed: 1 } } });
});

test('C-MOVE SCP: C-CANCEL goes to the retrieval, whose FE00 ends it', async (t) => {
  const { actor, sends } = association();
  const run = controlled<SubOperations>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cMoveScp', input: input(rq(CommandField.C_MOVE_RQ, MOVE, 10), { retrieve: run.runner }) });
  actor.getSnapshot().children['dimse-10']!.send({ type: 'CANCEL_REQUESTED' });
  t.is(run.cancelled(), 1);
  t.is(sends().length, 0, 'the final response waits for what was actually done');
  run.end({ status: Status.CANCEL, suboperations: { remaining: 3, completed: 1, failed: 0, warning: 0 } });
  await tick();
  t.like(sends()[0].command, { Status: Status.CANCEL, NumberOfCompletedSuboperations: 1 });
});

test('C-MOVE SCP: no progress within the DIMSE timeout: A702 with the counts so far, retrieval stopped', (t) => {
  const clock = new SimulatedClock();
  const { actor, sends } = association(clock);
  const run = controlled<SubOperations>();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cMoveScp', input: input(rq(CommandField.C_MOVE_RQ, MOVE, 11), { retrieve: run.runner }) });
  run.emit({ remaining: 1, completed: 4, failed: 0, warning: 0 });
  clock.increment(1000);
  t.like(sends()[1].command, { Status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS, NumberOfCompletedSuboperations: 4, ErrorComment: 'no progress within 1000 ms' });
  t.is(run.cancelled(), 1);
});

test('retrieve-through job: counts of both sides as reported, then ended with the status', async (t) => {
  const { retrieveThroughMachine } = await import('../../../machines/retrieve-through.machine.ts');
  const job = createActor(retrieveThroughMachine, { input: { level: 'STUDY', uid: '1.2.3', to: 'destination WS', sources: ['ARCH'] } }).start();
  job.send({ type: 'PROGRESS', upstream: { remaining: 3, completed: 2, failed: 0, warning: 0 }, delivered: { completed: 1, failed: 0, warning: 0 }, waiting: 1 });
  t.like(job.getSnapshot().context, { upstream: { remaining: 3, completed: 2 }, delivered: { completed: 1 }, waiting: 1 });
  job.send({ type: 'ENDED', status: 0 });
  t.is(job.getSnapshot().status, 'done');
  t.is(job.getSnapshot().context.status, 0);
});
