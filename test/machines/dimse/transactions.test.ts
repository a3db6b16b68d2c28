// DIMSE transactions as spawned by the association machine: what each sends, when, and what it
// reports. The store is injected, as the actors layer does.
import test from 'ava';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { associationMachine } from '../../../machines/association.machine.ts';
import type { DulOutput } from '../../../machines/association.machine.ts';
import { cStoreScpMachine } from '../../../machines/dimse/c-store-scp.machine.ts';
import type { StoreResult } from '../../../machines/dimse/c-store-scp.machine.ts';
import type { DimseInput } from '../../../machines/dimse/dimse.events.ts';
import { CommandField, NO_DATASET } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { Status } from '../../../protocol/status.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';

function association(store?: () => Promise<StoreResult>, clock?: SimulatedClock) {
  const logic = associationMachine.provide({
    actors: store ? { cStoreScp: cStoreScpMachine.provide({ actors: { storeInstance: fromPromise(store) } }) } : {},
  });
  const actor = createActor(logic, { input: { artimTimeoutMs: 1000 }, ...(clock ? { clock } : {}) });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e as DulOutput));
  actor.start();
  return { actor, out, of: (type: string) => out.filter((e) => e.type === type) };
}

const storeRq = (messageId: number): Command => ({
  CommandField: CommandField.C_STORE_RQ,
  MessageID: messageId,
  AffectedSOPClassUID: CT,
  AffectedSOPInstanceUID: `1.2.3.${messageId}`,
  Priority: 0,
  CommandDataSetType: 0,
});

const input = (command: Command): DimseInput => ({ associationId: 'a1', messageId: command.MessageID!, contextId: 1, command, dimseTimeoutMs: 1000 });

test('C-ECHO SCP answers Success at once and reports it', (t) => {
  const { actor, of } = association();
  const rq = { CommandField: CommandField.C_ECHO_RQ, MessageID: 7, AffectedSOPClassUID: '1.2.840.10008.1.1', CommandDataSetType: NO_DATASET };
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cEchoScp', input: input(rq) });
  const [send] = of('DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[];
  t.like(send.command, { CommandField: CommandField.C_ECHO_RSP, MessageIDBeingRespondedTo: 7, Status: Status.SUCCESS, CommandDataSetType: NO_DATASET });
  t.like(of('DIMSE_COMPLETED')[0], { outcome: { messageId: 7, status: 0 } });
  t.is(actor.getSnapshot().children['dimse-7'], undefined, 'a finished transaction is gone from the tree');
});

test('C-STORE SCP answers only after the store resolves, with its status', async (t) => {
  let release!: (r: StoreResult) => void;
  const { actor, of } = association(() => new Promise((r) => (release = r)));
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: input(storeRq(3)) });
  const child = actor.getSnapshot().children['dimse-3']!;
  t.truthy(child);
  t.is(of('DIMSE_SEND').length, 0, 'nothing sent while the dataset arrives');
  child.send({ type: 'DATASET_RECEIVED' });
  await new Promise((r) => setImmediate(r));
  t.is(of('DIMSE_SEND').length, 0, 'nothing sent before the store is durable');
  release({ status: Status.SUCCESS });
  await new Promise((r) => setImmediate(r));
  const [send] = of('DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[];
  t.like(send.command, { CommandField: CommandField.C_STORE_RSP, MessageIDBeingRespondedTo: 3, Status: 0, AffectedSOPInstanceUID: '1.2.3.3' });
});

test('C-STORE SCP: a failed store answers its failure status with the error comment', async (t) => {
  const { actor, of } = association(async () => ({ status: Status.OUT_OF_RESOURCES, errorComment: 'Out of resources: spool disk full' }));
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: input(storeRq(4)) });
  actor.getSnapshot().children['dimse-4']!.send({ type: 'DATASET_RECEIVED' });
  await new Promise((r) => setImmediate(r));
  const [send] = of('DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[];
  t.like(send.command, { Status: 0xa700, ErrorComment: 'Out of resources: spool disk full' });
});

test('C-STORE SCP: a store that throws answers A700, never Success', async (t) => {
  const { actor, of } = association(async () => {
    throw new Error('EIO');
  });
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: input(storeRq(5)) });
  actor.getSnapshot().children['dimse-5']!.send({ type: 'DATASET_RECEIVED' });
  await new Promise((r) => setImmediate(r));
  const [send] = of('DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[];
  t.is(send.command.Status, Status.OUT_OF_RESOURCES);
});

test('C-STORE SCP: a dataset that failed validation is answered with the given status, the store never runs', async (t) => {
  let stored = false;
  const { actor, of } = association(async () => {
    stored = true;
    return { status: 0 };
  });
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: input(storeRq(6)) });
  actor.getSnapshot().children['dimse-6']!.send({ type: 'DATASET_FAILED', status: Status.CANNOT_UNDERSTAND, errorComment: 'dataset incomplete' });
  await new Promise((r) => setImmediate(r));
  t.false(stored);
  t.like((of('DIMSE_SEND')[0] as Extract<DulOutput, { type: 'DIMSE_SEND' }>).command, { Status: 0xc000, ErrorComment: 'dataset incomplete' });
});

test('C-STORE SCP: the association ending first means no answer is sent', async (t) => {
  const { actor, of } = association(async () => ({ status: 0 }));
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: input(storeRq(8)) });
  actor.getSnapshot().children['dimse-8']!.send({ type: 'ASSOCIATION_ENDED', reason: 'transport closed' });
  await new Promise((r) => setImmediate(r));
  t.is(of('DIMSE_SEND').length, 0);
  t.like(of('DIMSE_COMPLETED')[0], { outcome: { messageId: 8, failure: 'transport closed' } });
});

test('a request this AE does not perform is answered 0211', (t) => {
  const { actor, of } = association();
  const rq = { CommandField: CommandField.C_FIND_RQ, MessageID: 9, AffectedSOPClassUID: '1.2.840.10008.5.1.4.1.2.2.1', CommandDataSetType: 0 };
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'refusedRequest', input: input(rq) });
  t.like((of('DIMSE_SEND')[0] as Extract<DulOutput, { type: 'DIMSE_SEND' }>).command, { CommandField: CommandField.C_FIND_RSP, Status: 0x0211 });
});

test('SCU request: sends, then completes with the response routed to it by Message ID', (t) => {
  const { actor, of } = association();
  const rq = storeRq(11);
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'scuRequest', input: { ...input(rq), dataset: { kind: 'file', path: '/x.dcm', offset: 132, length: 10 } } });
  t.like(of('DIMSE_SEND')[0], { command: rq, dataset: { path: '/x.dcm' } });
  // A response for another message is not this transaction's.
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: { CommandField: CommandField.C_STORE_RSP, MessageIDBeingRespondedTo: 99, Status: 0, CommandDataSetType: NO_DATASET } });
  t.is(of('DIMSE_COMPLETED').length, 0);
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: { CommandField: CommandField.C_STORE_RSP, MessageIDBeingRespondedTo: 11, Status: 0xb007, CommandDataSetType: NO_DATASET } });
  t.like(of('DIMSE_COMPLETED')[0], { outcome: { messageId: 11, status: 0xb007 } });
});

test('SCU request: no response within the DIMSE timeout fails the transaction', (t) => {
  const clock = new SimulatedClock();
  const { actor, of } = association(undefined, clock);
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'scuRequest', input: input(storeRq(12)) });
  clock.increment(999);
  t.is(of('DIMSE_COMPLETED').length, 0);
  clock.increment(2);
  t.like(of('DIMSE_COMPLETED')[0], { outcome: { messageId: 12, failure: 'no response within 1000 ms' } });
});
