// The Storage Commitment N-ACTION SCP transaction as the association machine spawns it: it answers
// only once the Action Information is in, with the record's status, or refuses a wrong class,
// instance or action type with the N-ACTION status PS3.7 10.1.4.1.10 gives for it.
import test from 'ava';
import { createActor } from 'xstate';
import { associationMachine } from '../../../machines/association.machine.ts';
import type { DulOutput } from '../../../machines/association.machine.ts';
import type { DimseInput, StoreResult } from '../../../machines/dimse/dimse.events.ts';
import { CommandField } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { Status } from '../../../protocol/status.ts';

function association() {
  const actor = createActor(associationMachine, { input: { artimTimeoutMs: 1000 } });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e as DulOutput));
  actor.start();
  return { actor, of: (type: string) => out.filter((e) => e.type === type) as Extract<DulOutput, { type: 'DIMSE_SEND' }>[] };
}

const actionRq = (messageId: number, extra: Partial<Command> = {}): Command => ({
  CommandField: CommandField.N_ACTION_RQ, MessageID: messageId, RequestedSOPClassUID: '1.2.840.10008.1.20.1',
  RequestedSOPInstanceUID: '1.2.840.10008.1.20.1.1', ActionTypeID: 1, CommandDataSetType: 0, ...extra,
});

const input = (command: Command, record?: () => Promise<StoreResult>): DimseInput => ({ associationId: 'a1', messageId: command.MessageID!, contextId: 1, command, dimseTimeoutMs: 1000, ...(record ? { record } : {}) });

const settle = () => new Promise((r) => setTimeout(r, 0));

test('answers with the record\'s status once the Action Information is in, and echoes the Action Type', async (t) => {
  const { actor, of } = association();
  let recorded = 0;
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nActionScp', input: input(actionRq(3), async () => (recorded++, { status: Status.SUCCESS })) });
  await settle();
  t.is(of('DIMSE_SEND').length, 0, 'nothing is answered before the dataset is in');
  actor.getSnapshot().children['dimse-3']!.send({ type: 'DATASET_RECEIVED' });
  await settle();
  await settle();
  t.is(recorded, 1);
  const [rsp] = of('DIMSE_SEND');
  t.is(rsp.command.CommandField, CommandField.N_ACTION_RSP);
  t.is(rsp.command.Status, Status.SUCCESS);
  t.is(rsp.command.ActionTypeID, 1);
  t.is(rsp.command.AffectedSOPInstanceUID, '1.2.840.10008.1.20.1.1');
  t.is(actor.getSnapshot().children['dimse-3'], undefined, 'a finished transaction leaves the tree');
});

test('a failed record (duplicate request, malformed information) is answered with its status and Error Comment', async (t) => {
  const { actor, of } = association();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nActionScp', input: input(actionRq(4), async () => ({ status: Status.MISSING_ATTRIBUTE, errorComment: 'Transaction UID (0008,1195) is missing' })) });
  actor.getSnapshot().children['dimse-4']!.send({ type: 'DATASET_RECEIVED' });
  await settle();
  await settle();
  const [rsp] = of('DIMSE_SEND');
  t.is(rsp.command.Status, Status.MISSING_ATTRIBUTE);
  t.is(rsp.command.ErrorComment, 'Transaction UID (0008,1195) is missing');
});

for (const [name, extra, status] of [
  ['a wrong action type', { ActionTypeID: 2 }, Status.NO_SUCH_ACTION],
  ['another SOP class', { RequestedSOPClassUID: '1.2.840.10008.5.1.1.40' }, Status.NO_SUCH_SOP_CLASS],
  ['another SOP instance', { RequestedSOPInstanceUID: '1.2.3' }, Status.NO_SUCH_SOP_INSTANCE],
] as const) {
  test(`${name} is refused without being recorded`, async (t) => {
    const { actor, of } = association();
    let recorded = 0;
    actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nActionScp', input: input(actionRq(5, extra), async () => (recorded++, { status: Status.SUCCESS })) });
    actor.getSnapshot().children['dimse-5']!.send({ type: 'DATASET_RECEIVED' });
    await settle();
    t.is(recorded, 0);
    t.is(of('DIMSE_SEND')[0].command.Status, status);
    t.truthy(of('DIMSE_SEND')[0].command.ErrorComment);
  });
}

test('a request without Action Information gets the dataset failure the acceptor gives', async (t) => {
  const { actor, of } = association();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nActionScp', input: input(actionRq(6)) });
  actor.getSnapshot().children['dimse-6']!.send({ type: 'DATASET_FAILED', status: Status.MISSING_ATTRIBUTE, errorComment: 'no Action Information' });
  await settle();
  t.is(of('DIMSE_SEND')[0].command.Status, Status.MISSING_ATTRIBUTE);
});
