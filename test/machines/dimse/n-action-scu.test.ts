// The Storage Commitment N-ACTION SCU transaction as the association machine spawns it: it sends the
// request with its Action Information, and ends with the peer's status, or as a failure (no answer
// within the DIMSE timeout, the association gone, an answer that is not an N-ACTION-RSP for it).
import test from 'ava';
import { createActor } from 'xstate';
import { associationMachine } from '../../../machines/association.machine.ts';
import type { DulOutput } from '../../../machines/association.machine.ts';
import type { DimseInput, DimseOutcome } from '../../../machines/dimse/dimse.events.ts';
import { CommandField } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { Status } from '../../../protocol/status.ts';

function association() {
  const actor = createActor(associationMachine, { input: { artimTimeoutMs: 1000 } });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e as DulOutput));
  actor.start();
  const completed = new Promise<DimseOutcome>((resolve) => actor.on('DIMSE_COMPLETED', (e) => resolve(e.outcome)));
  return { actor, completed, sent: () => out.filter((e) => e.type === 'DIMSE_SEND') as Extract<DulOutput, { type: 'DIMSE_SEND' }>[] };
}

const actionRq: Command = {
  CommandField: CommandField.N_ACTION_RQ, MessageID: 7, RequestedSOPClassUID: '1.2.840.10008.1.20.1',
  RequestedSOPInstanceUID: '1.2.840.10008.1.20.1.1', ActionTypeID: 1, CommandDataSetType: 0,
};
const information = new Uint8Array([1, 2, 3, 4]);
const input = (dimseTimeoutMs = 5000): DimseInput => ({ associationId: 'a1', messageId: 7, contextId: 1, command: actionRq, dimseTimeoutMs, dataset: { kind: 'bytes', data: information } });
const rsp = (extra: Partial<Command>): Command => ({ CommandField: CommandField.N_ACTION_RSP, MessageIDBeingRespondedTo: 7, CommandDataSetType: 0x0101, AffectedSOPClassUID: '1.2.840.10008.1.20.1', ...extra });

test('sends the request with its Action Information, and ends with the peer\'s Success', async (t) => {
  const { actor, completed, sent } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'nActionScu', input: input() });
  const [rq] = sent();
  t.is(rq.command.CommandField, CommandField.N_ACTION_RQ);
  t.is(rq.command.ActionTypeID, 1);
  t.deepEqual(rq.dataset, { kind: 'bytes', data: information });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp({ Status: Status.SUCCESS, ActionTypeID: 1 }) });
  const outcome = await completed;
  t.is(outcome.status, Status.SUCCESS);
  t.is(outcome.failure, undefined);
  t.is(actor.getSnapshot().children['dimse-7'], undefined, 'a finished transaction leaves the tree');
});

test('a refusal ends it with the peer\'s status and Error Comment', async (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'nActionScu', input: input() });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp({ Status: Status.NO_SUCH_SOP_CLASS, ErrorComment: 'not here' }) });
  const outcome = await completed;
  t.is(outcome.status, Status.NO_SUCH_SOP_CLASS);
  t.is(outcome.errorComment, 'not here');
});

test('an answer that is not an N-ACTION-RSP for storage commitment is a failure, without a status', async (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'nActionScu', input: input() });
  actor.send({ type: 'DIMSE_RESPONSE_RECEIVED', command: rsp({ CommandField: CommandField.C_STORE_RSP, Status: Status.SUCCESS }) });
  const outcome = await completed;
  t.is(outcome.status, undefined);
  t.regex(outcome.failure!, /unexpected answer to the N-ACTION/);
});

test('no answer within the DIMSE timeout: a failure marked timed out (the caller aborts)', async (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'nActionScu', input: input(30) });
  const outcome = await completed;
  t.is(outcome.status, undefined);
  t.true(outcome.timedOut);
  t.regex(outcome.failure!, /no response within 30 ms/);
});

test('the association ending first: a failure with its reason', async (t) => {
  const { actor, completed } = association();
  actor.send({ type: 'DIMSE_REQUEST_STARTED', service: 'nActionScu', input: input() });
  actor.getSnapshot().children['dimse-7']!.send({ type: 'ASSOCIATION_ENDED', reason: 'peer aborted' });
  const outcome = await completed;
  t.is(outcome.failure, 'peer aborted');
});
