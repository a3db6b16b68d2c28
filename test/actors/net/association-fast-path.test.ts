// The fast path of actors/net/association.ts (issue 13): P-DATA-TF in a data-transfer state goes between
// the wire and the DIMSE assembler without becoming an XState event, and everywhere else the table
// answers it exactly as PS3.8 Table 9-10 says (A-ABORT for AA-1/AA-8, nothing for AA-6 or a blank
// cell). Checked for every state against the independent transcription in test/machines/dul-table.ts,
// over a real loopback socket pair, for a received P-DATA-TF (Evt10) and a P-DATA request (Evt9).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { createActor } from 'xstate';
import { Association } from '../../../actors/net/association.ts';
import { associationMachine, P_DATA_RECEIVE_STATES, P_DATA_SEND_STATES } from '../../../machines/association.machine.ts';
import type { DulEvent } from '../../../machines/association.machine.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { CommandField, encodeCommand, NO_DATASET } from '../../../protocol/dimse.ts';
import { decodePdu, encodePdu } from '../../../protocol/pdu.ts';
import { PduFramer } from '../../../protocol/pdu-framer.ts';
import type { AssociateAc, AssociateRq, Pdu } from '../../../protocol/pdu.types.ts';
import { DUL_TABLE, STATES } from '../../machines/dul-table.ts';
import type { StateId } from '../../machines/dul-table.ts';

const silent = pino({ level: 'silent' });
const VERIFICATION = '1.2.840.10008.1.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const userInformation = { maxPduLength: 16384, implementationClassUid: '1.2.3.4', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] };
const common = { protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'MODALITY', applicationContext: '1.2.840.10008.3.1.1.1', userInformation };
const rq: AssociateRq = { type: 'A-ASSOCIATE-RQ', ...common, presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }] };
const ac: AssociateAc = { type: 'A-ASSOCIATE-AC', ...common, presentationContexts: [{ id: 1, result: 0, transferSyntax: IMPLICIT_LE }] };

/** The events of PS3.8 (by number) that lead from Sta1 into each state, as the peers would cause them. */
const EVT: Record<number, DulEvent> = {
  1: { type: 'A_ASSOCIATE_REQUESTED', rq }, 2: { type: 'TRANSPORT_CONNECTED' }, 3: { type: 'ASSOCIATE_AC_RECEIVED', pdu: ac },
  5: { type: 'TRANSPORT_ACCEPTED' }, 6: { type: 'ASSOCIATE_RQ_RECEIVED', pdu: rq }, 7: { type: 'A_ASSOCIATE_ACCEPT_REQUESTED', ac },
  8: { type: 'A_ASSOCIATE_REJECT_REQUESTED', rj: { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 7 } },
  11: { type: 'A_RELEASE_REQUESTED' }, 12: { type: 'RELEASE_RQ_RECEIVED' }, 13: { type: 'RELEASE_RP_RECEIVED' }, 14: { type: 'A_RELEASE_RESPONSE_REQUESTED' },
};
const PATH: Record<StateId, number[]> = {
  Sta1: [], Sta2: [5], Sta3: [5, 6], Sta4: [1], Sta5: [1, 2], Sta6: [5, 6, 7], Sta7: [5, 6, 7, 11], Sta8: [5, 6, 7, 12],
  Sta9: [1, 2, 3, 11, 12], Sta10: [5, 6, 7, 11, 12], Sta11: [1, 2, 3, 11, 12, 14], Sta12: [5, 6, 7, 11, 12, 13], Sta13: [5, 6, 8],
};

const echoRq: Command = { CommandField: CommandField.C_ECHO_RQ, MessageID: 7, AffectedSOPClassUID: VERIFICATION, CommandDataSetType: NO_DATASET };
const echoRsp: Command = { CommandField: CommandField.C_ECHO_RSP, MessageIDBeingRespondedTo: 7, AffectedSOPClassUID: VERIFICATION, CommandDataSetType: NO_DATASET, Status: 0 };
const pData = (command: Command): Pdu => ({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: encodeCommand(command) }] });

async function until(t: ExecutionContext, what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return void t.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** An Association on the server end of a loopback socket pair, its machine brought to `state`. */
async function associationIn(t: ExecutionContext, state: StateId) {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port });
  const serverSide = await accepted;
  const fromRouter: Pdu[] = [];
  const framer = new PduFramer({ maxPduLength: 0 });
  client.on('data', (chunk) => {
    for (const raw of framer.push(chunk)) fromRouter.push(decodePdu(raw));
  });
  // Every event the machine is sent, as its inspection stream shows it.
  const machineEvents: string[] = [];
  const machine = createActor(associationMachine, {
    input: { artimTimeoutMs: 30_000 },
    inspect: (e) => {
      if (e.type === '@xstate.event' && !(e.actorRef as { _parent?: unknown })._parent) machineEvents.push((e.event as { type: string }).type);
    },
  }).start();
  const requests: Command[] = [];
  const association = new Association({
    id: `fast-${state}`, machine, logger: silent, maxReceivePduLength: 16384, idleTimeoutMs: 60_000,
    handlers: { onRequest: (_contextId, command) => void requests.push(command), onClosed: () => {} },
  });
  association.contexts.set(1, { id: 1, abstractSyntax: VERIFICATION, transferSyntax: IMPLICIT_LE });
  association.attach(serverSide);
  for (const n of PATH[state]) machine.send(EVT[n]!);
  t.is(machine.getSnapshot().value, state, 'the path reaches the state');
  const traffic = machine.getSnapshot().context.traffic;
  // What the path itself sent (A-ASSOCIATE-AC, -RQ, -RJ, A-RELEASE-RQ, -RP) arrives before anything else.
  const sentByPath = traffic.pdusSent;
  await until(t, 'the PDUs the path sent', () => fromRouter.length === sentByPath);
  fromRouter.length = 0;
  machineEvents.length = 0;
  t.teardown(() => {
    client.destroy();
    serverSide.destroy();
    machine.stop();
    server.close();
  });
  return { machine, association, client, fromRouter, requests, machineEvents, traffic, sentAfterPath: sentByPath };
}

test('the fast-path states are those where the independent transcription of Table 9-10 says DT-1/AR-7 (Evt9) and DT-2/AR-6 (Evt10)', (t) => {
  const where = (evt: number, actions: string[]) => STATES.filter((s) => actions.includes(DUL_TABLE[s][evt]?.[0] ?? ''));
  t.deepEqual([...P_DATA_RECEIVE_STATES].sort(), where(10, ['DT-2', 'AR-6']).sort());
  t.deepEqual([...P_DATA_SEND_STATES].sort(), where(9, ['DT-1', 'AR-7']).sort());
});

for (const state of STATES) {
  const cell = DUL_TABLE[state][10];
  const expected = !cell ? 'blank: ignored' : ['DT-2', 'AR-6'].includes(cell[0]) ? `${cell[0]}: to the DIMSE layer, no event` : `${cell[0]} → ${cell[1]}`;
  test(`${state}: a received P-DATA-TF → ${expected}`, async (t) => {
    const a = await associationIn(t, state);
    a.client.write(encodePdu(pData(echoRq)));
    await until(t, 'the P-DATA-TF read', () => a.traffic.pdusReceived === 1);
    const action = cell?.[0];
    if (action === 'DT-2' || action === 'AR-6') {
      t.deepEqual(a.requests, [echoRq], 'the DIMSE layer got the request');
      t.deepEqual(a.machineEvents, [], 'no XState event on the way');
      t.is(a.machine.getSnapshot().value, state);
      t.is(a.traffic.pdusSent, a.sentAfterPath, 'nothing answered by the upper layer');
    } else if (action === 'AA-1' || action === 'AA-8') {
      t.deepEqual(a.requests, [], 'nothing reached the DIMSE layer');
      t.deepEqual(a.machineEvents, ['P_DATA_TF_RECEIVED'], 'the table decided (Evt10)');
      t.is(a.machine.getSnapshot().value, 'Sta13');
      await until(t, 'the A-ABORT', () => a.fromRouter.length === 1);
      // PS3.8 Table 9-26: source 2 (service-provider), reason 2 (unexpected PDU).
      t.deepEqual(a.fromRouter, [{ type: 'A-ABORT', source: 2, reason: 2 }]);
    } else {
      // AA-6 (Sta13: ignore the PDU) or a blank cell (Sta1, Sta4: the event cannot occur; nothing happens).
      t.true(action === 'AA-6' || action === undefined, `unexpected action ${action}`);
      t.deepEqual(a.requests, []);
      t.deepEqual(a.machineEvents, ['P_DATA_TF_RECEIVED']);
      t.is(a.machine.getSnapshot().value, state);
      t.is(a.traffic.pdusSent, a.sentAfterPath, 'nothing sent');
    }
    t.is(a.traffic.pDataBytesReceived, encodePdu(pData(echoRq)).length, 'counted on the association');
  });
}

for (const state of STATES) {
  const cell = DUL_TABLE[state][9];
  test(`${state}: a DIMSE message to send → ${cell ? `${cell[0]}: on the wire, no event` : 'blank: not sent'}`, async (t) => {
    const a = await associationIn(t, state);
    await a.association.sendDimse(1, echoRsp);
    if (cell) {
      t.deepEqual(a.machineEvents, [], 'no XState event on the way');
      await until(t, 'the P-DATA-TF at the peer', () => a.fromRouter.length === 1);
      t.deepEqual(a.fromRouter, [pData(echoRsp)]);
      t.is(a.traffic.pdusSent, a.sentAfterPath + 1);
      t.is(a.traffic.pDataBytesSent, encodePdu(pData(echoRsp)).length, 'counted on the association');
    } else {
      t.deepEqual(a.machineEvents, ['P_DATA_REQUESTED'], 'the table decided (Evt9)');
      t.is(a.traffic.pdusSent, a.sentAfterPath, 'nothing sent');
      t.is(a.traffic.pDataBytesSent, 0);
    }
    t.is(a.machine.getSnapshot().value, state);
  });
}
