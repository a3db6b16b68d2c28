// C-FIND and C-MOVE SCU transactions as the association machine spawns them: pending responses
// collected (and restarting the DIMSE timeout), final statuses, sub-operation counts, C-CANCEL,
// timeout and a lost association (conformance 4.2.5.3.1.3-4).
import test from 'ava';
import { createActor, SimulatedClock } from 'xstate';
import { associationMachine } from '../../../machines/association.machine.ts';
import type { DulOutput } from '../../../machines/association.machine.ts';
import { countsOf } from '../../../machines/dimse/c-move-scu.machine.ts';
import type { DimseInput, DimseOutcome } from '../../../machines/dimse/dimse.events.ts';
import { CommandField, NO_DATASET } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';

const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const MOVE = '1.2.840.10008.5.1.4.1.2.2.2';

function association() {
  const clock = new SimulatedClock();
  const actor = createActor(associationMachine, { input: { artimTimeoutMs: 1000 }, clock });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e as DulOutput));
  actor.start();
  const of = <T extends DulOutput['type']>(type: T) => out.filter((e) => e.type === type) as Extract<DulOutput, { type: T }>[];
  const completed = (): DimseOutcome | undefined => of('DIMSE_COMPLETED')[0]?.outcome;
  return { actor, clock, of, completed };
}

const input = (command: Command): DimseInput => ({
  associationId: 'a1', messageId: command.MessageID!, contextId: 1, command, dimseTimeoutMs: 1000, dataset: { kind: 'bytes', data: new Uint8Array([8, 0, 0x52, 0, 6, 0, 0, 0, 83, 84, 85, 68, 89, 32]) },
});
const findRq: Command = { CommandField: CommandField.C_FIND_RQ, MessageID: 5, AffectedSOPClassUID: FIND, Priority: 0, CommandDataSetType: 0 };
const moveRq: Command = { CommandField: CommandField.C_MOVE_RQ, MessageID: 6, AffectedSOPClassUID: MOVE, Priority: 0, CommandDataSetType: 0, MoveDestination: 'WS' };
const rsp = (rq: Command, status: number, extra: Partial<Command> = {}): Command => ({
  CommandField: rq.CommandField | 0x8000, MessageIDBeingRespondedTo: rq.MessageID, AffectedSOPClassUID: rq.AffectedSOPClassUID, CommandDataSetType: NO_DATASET, Status: status, ...extra,
});

test('C-FIND: the request goes out once with its identifier; pending matches are collected; 0000 completes', (t) => {
  const { actor, of, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cFindScu', input: input(findRq) });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xff00, { CommandDataSetType: 0 }), dataset: new Uint8Array([1, 2]) });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xff01, { CommandDataSetType: 0 }), dataset: new Uint8Array([3, 4]) });
  t.is(completed(), undefined);
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0x0000) });
  t.is(of('DIMSE_SEND').length, 1, 'pending responses do not resend the request');
  t.like(of('DIMSE_SEND')[0], { command: findRq, dataset: { kind: 'bytes' } });
  t.like(completed(), { messageId: 5, status: 0 });
  t.deepEqual(completed()!.datasets, [new Uint8Array([1, 2]), new Uint8Array([3, 4])]);
  t.is(actor.getSnapshot().children['dimse-5'], undefined);
});

for (const status of [0xa700, 0xa900, 0xc001]) {
  test(`C-FIND: a final ${status.toString(16).toUpperCase()} ends the query with that status and the matches so far`, (t) => {
    const { actor, completed } = association();
    actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cFindScu', input: input(findRq) });
    actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xff00, { CommandDataSetType: 0 }), dataset: new Uint8Array([1, 2]) });
    actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, status, { ErrorComment: 'no' }) });
    t.like(completed(), { status, errorComment: 'no' });
    t.is(completed()!.datasets!.length, 1);
  });
}

test('C-FIND: the DIMSE timeout runs between responses; expiry fails it as timed out', (t) => {
  const { actor, clock, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cFindScu', input: input(findRq) });
  clock.increment(900);
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xff00, { CommandDataSetType: 0 }), dataset: new Uint8Array([1, 2]) });
  clock.increment(900);
  t.is(completed(), undefined, 'a pending response restarted the timer');
  clock.increment(101);
  t.like(completed(), { messageId: 5, timedOut: true, failure: 'no response within 1000 ms' });
  t.is(completed()!.status, undefined);
});

test('C-FIND: cancel sends C-CANCEL-RQ for the message; the FE00 final response ends it', (t) => {
  const { actor, of, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cFindScu', input: input(findRq) });
  actor.getSnapshot().children['dimse-5']!.send({ type: 'CANCEL_REQUESTED' });
  t.like(of('DIMSE_SEND')[1], { command: { CommandField: CommandField.C_CANCEL_RQ, MessageIDBeingRespondedTo: 5, CommandDataSetType: NO_DATASET } });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xff00, { CommandDataSetType: 0 }), dataset: new Uint8Array([9]) });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(findRq, 0xfe00) });
  t.like(completed(), { status: 0xfe00 });
  t.is(completed()!.datasets!.length, 1);
});

test('C-FIND: the association ending fails the query with the reason', (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cFindScu', input: input(findRq) });
  actor.getSnapshot().children['dimse-5']!.send({ type: 'ASSOCIATION_ENDED', reason: 'peer aborted' });
  t.like(completed(), { failure: 'peer aborted' });
});

test('C-MOVE: pending counts are tracked; 0000 completes with the final counts', (t) => {
  const { actor, of, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cMoveScu', input: input(moveRq) });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(moveRq, 0xff00, { NumberOfRemainingSuboperations: 2, NumberOfCompletedSuboperations: 1, NumberOfFailedSuboperations: 0, NumberOfWarningSuboperations: 0 }) });
  t.like(actor.getSnapshot().children['dimse-6']!.getSnapshot().context, { suboperations: { remaining: 2, completed: 1 } });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(moveRq, 0x0000, { NumberOfCompletedSuboperations: 3, NumberOfFailedSuboperations: 0, NumberOfWarningSuboperations: 0 }) });
  t.is(of('DIMSE_SEND').length, 1);
  t.like(of('DIMSE_SEND')[0], { command: { MoveDestination: 'WS' } });
  t.like(completed(), { status: 0, suboperations: { completed: 3, failed: 0, warning: 0 } });
  t.is(completed()!.suboperations!.remaining, undefined);
});

test('C-MOVE: B000 keeps the failed count and the final identifier (failed UIDs)', (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cMoveScu', input: input(moveRq) });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(moveRq, 0xb000, { CommandDataSetType: 0, NumberOfCompletedSuboperations: 2, NumberOfFailedSuboperations: 1, NumberOfWarningSuboperations: 0 }), dataset: new Uint8Array([7, 7]) });
  t.like(completed(), { status: 0xb000, suboperations: { completed: 2, failed: 1 } });
  t.deepEqual(completed()!.datasets, [new Uint8Array([7, 7])]);
});

test('C-MOVE: A801, A702 and C000 end it with the status; timeout and cancel behave as for C-FIND', (t) => {
  for (const status of [0xa801, 0xa702, 0xc000]) {
    const { actor, completed } = association();
    actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cMoveScu', input: input(moveRq) });
    actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(moveRq, status) });
    t.like(completed(), { status });
  }
  const a = association();
  a.actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cMoveScu', input: input(moveRq) });
  a.clock.increment(1001);
  t.like(a.completed(), { timedOut: true });
  const b = association();
  b.actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'cMoveScu', input: input(moveRq) });
  b.actor.getSnapshot().children['dimse-6']!.send({ type: 'CANCEL_REQUESTED' });
  t.like(b.of('DIMSE_SEND')[1], { command: { CommandField: CommandField.C_CANCEL_RQ, MessageIDBeingRespondedTo: 6 } });
  b.actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp(moveRq, 0xfe00, { NumberOfRemainingSuboperations: 4, NumberOfCompletedSuboperations: 1, NumberOfFailedSuboperations: 0, NumberOfWarningSuboperations: 0 }) });
  t.like(b.completed(), { status: 0xfe00, suboperations: { remaining: 4, completed: 1 } });
});

test('countsOf keeps counts a final response leaves out', (t) => {
  const prev = { remaining: 3, completed: 5, failed: 1, warning: 0 };
  t.deepEqual(countsOf({ CommandField: 0x8021, CommandDataSetType: NO_DATASET, Status: 0 }, prev), { remaining: undefined, completed: 5, failed: 1, warning: 0 });
  t.deepEqual(countsOf({ CommandField: 0x8021, CommandDataSetType: NO_DATASET, Status: 0xff00, NumberOfCompletedSuboperations: 6 }, prev), { remaining: 3, completed: 6, failed: 1, warning: 0 });
});
