// C-FIND / C-MOVE SCU over real sockets against a scripted Q/R SCP: the statuses an archive cannot
// be made to produce (A700, B000, silence), C-CANCEL, and the timeout abort (conformance 4.2.5).
import test from 'ava';
import { pino } from 'pino';
import { cFind, cMove, qrContexts } from '../../../actors/jobs/qr-scu.ts';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import { encodeIdentifier } from '../../../protocol/dataset-encode.ts';
import { scriptedQrScp } from '../../helpers/scripted-qr-scp.ts';

const silent = pino({ level: 'silent' });
const ELE = '1.2.840.10008.1.2.1';
const study = (uid: string, date: string) => encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid, StudyDate: date, PatientID: 'P1' }, ELE);

const open = (port: number, what: 'find' | 'move', dimseTimeoutMs = 5000) =>
  ScuAssociation.open({ host: '127.0.0.1', port, callingAeTitle: 'ROUTER', calledAeTitle: 'ARCHIVE', contexts: qrContexts('study-root', what), dimseTimeoutMs, logger: silent });

test('C-FIND: the identifier carries the keys; pending matches are decoded; A700 fails the query with its reason', async (t) => {
  const scp = await scriptedQrScp(() => [
    { status: 0xff00, identifier: study('1.2.3.1', '20240101') },
    { status: 0xa700, errorComment: 'no memory' },
  ]);
  const scu = await open(scp.port, 'find');
  const r = await cFind(scu, 'STUDY', { PatientID: 'P1', StudyDate: '20200101-', StudyInstanceUID: '' }).done;
  await scu.release();
  await scp.close();
  t.like(scp.requests[0].identifier, { QueryRetrieveLevel: 'STUDY', PatientID: 'P1' });
  t.is(String(scp.requests[0].identifier.StudyDate).trim(), '20200101-', 'a range, padded to even length');
  t.is(r.result, 'failed');
  t.is(r.status, 0xa700);
  t.is(r.reason, '0xA700 Out of Resources: no memory');
  t.is(r.matches.length, 1);
  t.is(r.matches[0].StudyInstanceUID, '1.2.3.1');
});

test('C-FIND: FF01 and FF00 matches then Success', async (t) => {
  const scp = await scriptedQrScp(() => [
    { status: 0xff01, identifier: study('1.2.3.1', '20240101') },
    { status: 0xff00, identifier: study('1.2.3.2', '20230101') },
    { status: 0x0000 },
  ]);
  const scu = await open(scp.port, 'find');
  const r = await cFind(scu, 'STUDY', { PatientID: 'P1' }).done;
  await scu.release();
  await scp.close();
  t.is(r.result, 'success');
  t.deepEqual(r.matches.map((m) => m.StudyInstanceUID), ['1.2.3.1', '1.2.3.2']);
});

test('C-FIND: no response within the DIMSE timeout fails it and aborts the association', async (t) => {
  const scp = await scriptedQrScp(() => 'silent');
  const scu = await open(scp.port, 'find', 300);
  const r = await cFind(scu, 'STUDY', { PatientID: 'P1' }).done;
  await scu.closed;
  await new Promise((res) => setTimeout(res, 50));
  await scp.close();
  t.is(r.result, 'failed');
  t.true(r.timedOut);
  t.regex(r.reason!, /no response within 300 ms/);
  t.is(scp.aborts, 1, 'the SCP received an A-ABORT');
});

test('C-FIND: cancel sends C-CANCEL-RQ and the query ends cancelled', async (t) => {
  const scp = await scriptedQrScp(() => [
    { status: 0xff00, identifier: study('1.2.3.1', '20240101') },
    { status: 0xff00, identifier: study('1.2.3.2', '20240101'), delayMs: 300 },
    { status: 0x0000 },
  ]);
  const scu = await open(scp.port, 'find');
  const run = cFind(scu, 'STUDY', { PatientID: 'P1' });
  setTimeout(() => run.cancel(), 100);
  const r = await run.done;
  await scu.release();
  await scp.close();
  t.is(scp.cancels.length, 1);
  t.is(scp.cancels[0].MessageIDBeingRespondedTo, scp.requests[0].command.MessageID);
  t.is(r.result, 'cancelled');
  t.is(r.status, 0xfe00);
  t.is(r.matches.length, 1);
});

test('C-MOVE: pending counts, then B000 is partial with the failed SOP instances listed', async (t) => {
  const scp = await scriptedQrScp(() => [
    { status: 0xff00, counts: { remaining: 2, completed: 1, failed: 0, warning: 0 } },
    { status: 0xb000, counts: { remaining: 0, completed: 2, failed: 1, warning: 0 }, identifier: encodeIdentifier({ FailedSOPInstanceUIDList: '1.2.3.4.5' }, ELE) },
  ]);
  const scu = await open(scp.port, 'move');
  const r = await cMove(scu, 'WS', 'STUDY', { StudyInstanceUID: '1.2.3' }).done;
  await scu.release();
  await scp.close();
  t.is(scp.requests[0].command.MoveDestination, 'WS');
  t.like(scp.requests[0].identifier, { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '1.2.3' });
  t.is(r.result, 'partial');
  t.like(r.suboperations, { completed: 2, failed: 1, warning: 0 });
  t.deepEqual(r.failedSopInstanceUids, ['1.2.3.4.5']);
  t.regex(r.reason!, /1 sub-operation\(s\) failed/);
});

test('C-MOVE: A801 (move destination unknown) and C000 fail it with the reason', async (t) => {
  for (const [status, name] of [[0xa801, 'Move Destination Unknown'], [0xc000, 'Unable to Process']] as const) {
    const scp = await scriptedQrScp(() => [{ status }]);
    const scu = await open(scp.port, 'move');
    const r = await cMove(scu, 'WS', 'STUDY', { StudyInstanceUID: '1.2.3' }).done;
    await scu.release();
    await scp.close();
    t.is(r.result, 'failed');
    t.regex(r.reason!, new RegExp(name));
  }
});
