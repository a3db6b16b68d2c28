// The Storage Commitment N-EVENT-REPORT SCP transaction (the router asked a peer, the peer reports):
// it answers only once the Event Information is in and recorded, with the record's status, or refuses
// a wrong class, instance or event type with the status PS3.7 10.1.1.1.8 gives for it.
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
  return { actor, sent: () => out.filter((e) => e.type === 'DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[] };
}

const reportRq = (messageId: number, extra: Partial<Command> = {}): Command => ({
  CommandField: CommandField.N_EVENT_REPORT_RQ, MessageID: messageId, AffectedSOPClassUID: '1.2.840.10008.1.20.1',
  AffectedSOPInstanceUID: '1.2.840.10008.1.20.1.1', EventTypeID: 2, CommandDataSetType: 0, ...extra,
});
const input = (command: Command, record?: () => Promise<StoreResult>): DimseInput => ({ associationId: 'a1', messageId: command.MessageID!, contextId: 1, command, dimseTimeoutMs: 1000, ...(record ? { record } : {}) });

/** Resolves once the association has sent something (the response). */
async function response(sent: () => { command: Command }[]): Promise<Command> {
  for (let i = 0; i < 100 && sent().length === 0; i++) await new Promise((r) => setImmediate(r));
  return sent()[0].command;
}

test('answers Success only after the report is recorded, echoing the Event Type', async (t) => {
  const { actor, sent } = association();
  let recorded = 0;
  let finish: (r: StoreResult) => void = () => {};
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nEventReportScp', input: input(reportRq(9), () => (recorded++, new Promise((r) => (finish = r)))) });
  t.is(sent().length, 0, 'nothing is answered before the dataset is in');
  actor.getSnapshot().children['dimse-9']!.send({ type: 'DATASET_RECEIVED' });
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  t.is(recorded, 1);
  t.is(sent().length, 0, 'nor before it is recorded');
  finish({ status: Status.SUCCESS });
  const rsp = await response(sent);
  t.is(rsp.CommandField, CommandField.N_EVENT_REPORT_RSP);
  t.is(rsp.Status, Status.SUCCESS);
  t.is(rsp.EventTypeID, 2);
});

test('a report the router cannot take (unknown transaction) is answered with the record\'s status and Error Comment', async (t) => {
  const { actor, sent } = association();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nEventReportScp', input: input(reportRq(10), async () => ({ status: Status.PROCESSING_FAILURE, errorComment: 'not asked here' })) });
  actor.getSnapshot().children['dimse-10']!.send({ type: 'DATASET_RECEIVED' });
  const rsp = await response(sent);
  t.is(rsp.Status, Status.PROCESSING_FAILURE);
  t.is(rsp.ErrorComment, 'not asked here');
});

for (const [name, extra, status] of [
  ['another event type', { EventTypeID: 3 }, Status.NO_SUCH_EVENT_TYPE],
  ['another SOP class', { AffectedSOPClassUID: '1.2.840.10008.5.1.1.40' }, Status.NO_SUCH_SOP_CLASS],
  ['another SOP instance', { AffectedSOPInstanceUID: '1.2.3' }, Status.NO_SUCH_SOP_INSTANCE],
] as const) {
  test(`${name} is refused without being recorded`, async (t) => {
    const { actor, sent } = association();
    let recorded = 0;
    actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nEventReportScp', input: input(reportRq(11, extra), async () => (recorded++, { status: Status.SUCCESS })) });
    actor.getSnapshot().children['dimse-11']!.send({ type: 'DATASET_RECEIVED' });
    const rsp = await response(sent);
    t.is(recorded, 0);
    t.is(rsp.Status, status);
    t.truthy(rsp.ErrorComment);
  });
}

test('the peer going away before the answer: nothing is sent', async (t) => {
  const { actor, sent } = association();
  actor.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nEventReportScp', input: input(reportRq(12), async () => ({ status: Status.SUCCESS })) });
  actor.getSnapshot().children['dimse-12']!.send({ type: 'ASSOCIATION_ENDED', reason: 'peer aborted' });
  t.is(sent().length, 0);
  t.is(actor.getSnapshot().children['dimse-12'], undefined);
});
