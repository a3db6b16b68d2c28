// The Storage Commitment SCP against a scripted requester built from the router's own SCU code: the
// report on the requester's own association while it holds it open, malformed N-ACTIONs answered with
// the standard status and an Error Comment, a requester the router has no peer for, a reused
// Transaction UID (0131), and a requester that cannot be reached (retried, durably).
import test from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { acceptorPolicy } from '../../../actors/router.ts';
import { parseConfig } from '../../../config/config.ts';
import { negotiate } from '../../../protocol/negotiation.ts';
import { DICOM_APPLICATION_CONTEXT } from '../../../protocol/pdu.types.ts';
import type { AssociateRq } from '../../../protocol/pdu.types.ts';
import type { ExecutionContext } from 'ava';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import type { DatasetSink } from '../../../actors/net/association.ts';
import { collectingSink } from '../../../actors/net/collecting-sink.ts';
import { CommandField, DATASET_PRESENT, NO_DATASET, responseFor } from '../../../protocol/dimse.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { Status } from '../../../protocol/status.ts';
import { decodeCommitmentResult, encodeCommitmentRequest } from '../../../protocol/storage-commitment.ts';
import type { CommitmentResult } from '../../../protocol/storage-commitment.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE } from '../../../protocol/uids.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { SOP } from '../../helpers/dicom-files.ts';
import { freePort, REPO, run, tempDir, writeConfig } from '../../helpers/processes.ts';

/** The router stopped and its temp folder (spool, journal segments: tens of MB) removed. */
async function stopAndRemove(router: { stop(): Promise<void>; dir: string }): Promise<void> {
  await router.stop();
  rm(router.dir);
}
const rm = (dir: string) => rmSync(dir, { recursive: true, force: true });


type Requester = { scu: ScuAssociation; reports: { eventType: number; result: CommitmentResult }[]; nAction(dataset: Uint8Array | undefined, extra?: Partial<Command>): ReturnType<ScuAssociation['runTransaction']> };

/** A requester holding its association open and answering every N-EVENT-REPORT with Success. */
async function requester(port: number, callingAeTitle = 'REQ', answer: () => number = () => Status.SUCCESS): Promise<Requester> {
  const reports: Requester['reports'] = [];
  let scu: ScuAssociation | undefined;
  const onRequest = (contextId: number, command: Command): DatasetSink | undefined => collectingSink((eventInformation) => {
    reports.push({ eventType: command.EventTypeID!, result: decodeCommitmentResult(eventInformation, EXPLICIT_VR_LITTLE_ENDIAN) });
    void scu!.association.sendDimse(contextId, responseFor(command, answer()));
  });
  scu = await ScuAssociation.open({
    host: '127.0.0.1', port, callingAeTitle, calledAeTitle: 'DICOM_ROUTER', logger: silent, onRequest,
    contexts: [{ abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  });
  const s = scu;
  return {
    scu: s,
    reports,
    nAction(dataset, extra = {}) {
      const context = s.contextFor(STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS)!;
      const messageId = s.newMessageId();
      return s.runTransaction('scuRequest', context.id, {
        CommandField: CommandField.N_ACTION_RQ, MessageID: messageId, RequestedSOPClassUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS,
        RequestedSOPInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE, ActionTypeID: 1, CommandDataSetType: dataset ? DATASET_PRESENT : NO_DATASET, ...extra,
      }, dataset ? { kind: 'bytes', data: dataset } : undefined);
    },
  };
}

const request = (transactionUid: string, sops: string[]) =>
  encodeCommitmentRequest({ transactionUid, referenced: sops.map((s) => ({ sopClassUid: SOP.ct, sopInstanceUid: s })) }, EXPLICIT_VR_LITTLE_ENDIAN);

async function routerForRequester(t: ExecutionContext, requesterPort?: number) {
  const peer = { name: 'REQ', aeTitle: 'REQ', host: '127.0.0.1', port: requesterPort ?? (await freePort()), retry: { attempts: 3, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 5 } };
  const router = await routerWith([peer], 'rules: []\n', { listener: { storageCommitment: { enabled: true, commitWhen: 'stored' } } });
  t.teardown(() => stopAndRemove(router));
  return router;
}

test('a requester that holds its association open gets the report there', async (t) => {
  const router = await routerForRequester(t);
  const sops = await send(router.port, router.dir, [{}, {}], 'REQ');
  const req = await requester(router.port);
  const rsp = await req.nAction(request('1.2.826.0.1.1', sops));
  t.is(rsp.status, Status.SUCCESS);
  t.is(rsp.response?.ActionTypeID, 1);
  await eventually(t, 'the report on the same association', () => req.reports.length === 1, 20_000);
  t.is(req.reports[0].eventType, 1);
  t.deepEqual(req.reports[0].result, { transactionUid: '1.2.826.0.1.1', committed: sops.map((s) => ({ sopClassUid: SOP.ct, sopInstanceUid: s })), failed: [] });
  await eventually(t, 'the record says reported', () => router.commitment.store.get('1.2.826.0.1.1')?.state === 'reported', 5000);
  t.is(router.commitment.store.get('1.2.826.0.1.1')!.reportedVia, 'same-association');
  await req.scu.release();
});

test('a reused Transaction UID is accepted and its instances reported failed with 0131', async (t) => {
  const router = await routerForRequester(t);
  const sops = await send(router.port, router.dir, [{}], 'REQ');
  const req = await requester(router.port);
  t.is((await req.nAction(request('1.2.826.0.1.2', sops))).status, Status.SUCCESS);
  t.is((await req.nAction(request('1.2.826.0.1.2', sops))).status, Status.SUCCESS);
  await eventually(t, 'two reports', () => req.reports.length === 2, 20_000);
  const byType = new Map(req.reports.map((r) => [r.eventType, r.result]));
  t.deepEqual(byType.get(1)?.committed.map((c) => c.sopInstanceUid), sops);
  t.deepEqual(byType.get(2), { transactionUid: '1.2.826.0.1.2', committed: [], failed: [{ sopClassUid: SOP.ct, sopInstanceUid: sops[0], failureReason: 0x0131 }] });
  t.is(router.commitment.store.get('1.2.826.0.1.2#dup-1')?.why?.[sops[0]], 'duplicate Transaction UID');
  await req.scu.release();
});

test('malformed N-ACTIONs get the standard failure status with an Error Comment, and nothing is recorded', async (t) => {
  const router = await routerForRequester(t);
  const req = await requester(router.port);
  const noUid = request('1.2.3', ['1.2.3.4']).subarray(14); // the Transaction UID element (8 + '1.2.3\0') cut off
  const cases: [Uint8Array | undefined, Partial<Command>, number, RegExp][] = [
    [noUid, {}, Status.MISSING_ATTRIBUTE, /Transaction UID \(0008,1195\) is missing/],
    [undefined, { }, Status.MISSING_ATTRIBUTE, /without Action Information/],
    [request('1.2.3', ['1.2.3.x']), {}, Status.INVALID_ARGUMENT_VALUE, /item 1: Referenced SOP Instance UID/],
    [request('1.2.3', []), {}, Status.MISSING_ATTRIBUTE_VALUE, /Referenced SOP Sequence \(0008,1199\) is empty/],
    [request('1.2.3', ['1.2.3.4']), { ActionTypeID: 7 }, Status.NO_SUCH_ACTION, /Action Type ID must be 1/],
  ];
  for (const [dataset, extra, status, comment] of cases) {
    const rsp = await req.nAction(dataset, extra);
    t.is(rsp.status, status, comment.source);
    t.regex(rsp.errorComment ?? '', comment);
  }
  t.deepEqual(router.commitment.store.list(), []);
  await req.scu.release();
});

test('an Action Information past 8 MiB is drained, not held, and refused with 0213', async (t) => {
  const router = await routerForRequester(t);
  const req = await requester(router.port);
  const rsp = await req.nAction(new Uint8Array((8 << 20) + 1));
  t.is(rsp.status, Status.RESOURCE_LIMITATION);
  t.is(rsp.errorComment, `Action Information over ${8 << 20} bytes`);
  t.deepEqual(router.commitment.store.list(), []);
  t.is((await req.nAction(request('1.2.826.0.1.4', ['1.2.3.4']))).status, Status.SUCCESS, 'the association goes on');
  await req.scu.release();
});

test('a requester with no configured peer is refused, with an Error Comment naming its AE title', async (t) => {
  const router = await routerForRequester(t);
  const req = await requester(router.port, 'STRANGER');
  const rsp = await req.nAction(request('1.2.826.0.1.3', ['1.2.3.4']));
  t.is(rsp.status, Status.PROCESSING_FAILURE);
  t.is(rsp.errorComment, 'no peer has AE title STRANGER to report to');
  t.deepEqual(router.commitment.store.list(), []);
  await req.scu.release();
});

test('a requester that cannot be reached: the report is retried with its peer\'s backoff, recorded durably', async (t) => {
  const router = await routerForRequester(t);
  const sops = await send(router.port, router.dir, [{}], 'REQ');
  const req = await requester(router.port);
  t.is((await req.nAction(request('1.2.826.0.1.4', sops))).status, Status.SUCCESS);
  await req.scu.release(); // gone before the report: it must go on a new association, to a port nobody listens on
  await eventually(t, 'two failed report attempts', () => (router.commitment.store.get('1.2.826.0.1.4')?.reportAttempts ?? 0) >= 2, 30_000);
  const record = router.commitment.store.get('1.2.826.0.1.4')!;
  t.is(record.state, 'reporting');
  t.regex(record.lastReportError ?? '', /ECONNREFUSED|closed before the association/);
  t.truthy(record.nextReportAt);
  t.deepEqual(record.result?.committed.map((c) => c.sopInstanceUid), sops);
  t.true(router.commitment.holds(sops[0]), 'retention keeps it until the report is acknowledged');
  // Visible to the operator beside the queues.
  const cliDir = tempDir('stgcmt-cli-');
  t.teardown(() => rm(cliDir));
  const config = writeConfig(cliDir, { storage: { dir: join(router.dir, 'data'), fsync: false }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }], peers: [{ name: 'REQ', aeTitle: 'REQ', host: '127.0.0.1', port: 1 }] });
  const ls = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'queue', 'ls', '--config', config]);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /storage commitment reports not yet acknowledged: 1\n  1\.2\.826\.0\.1\.4  from REQ  report to REQ: \d+ attempts, next \S+, last: /);
});

test('a commitment not reached within timeoutHours is reported failed (0110) and the record says why', async (t) => {
  const wsPort = await freePort(); // nobody listens: the forward cannot be delivered
  const peers = [
    { name: 'REQ', aeTitle: 'REQ', host: '127.0.0.1', port: await freePort() },
    { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: wsPort, retry: { attempts: 1000, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 1, dimseSeconds: 5 } },
  ];
  // 0.0005 h: 1.8 s.
  const router = await routerWith(peers, 'rules:\n  - name: all\n    then: { forward: [WS] }\n', { listener: { storageCommitment: { enabled: true, commitWhen: 'delivered', timeoutHours: 0.0005 } } });
  t.teardown(() => stopAndRemove(router));
  const sops = await send(router.port, router.dir, [{}], 'REQ');
  const req = await requester(router.port);
  t.is((await req.nAction(request('1.2.826.0.1.5', sops))).status, Status.SUCCESS);
  await eventually(t, 'the timeout report', () => req.reports.length === 1, 30_000);
  t.is(req.reports[0].eventType, 2);
  t.deepEqual(req.reports[0].result.failed, [{ sopClassUid: SOP.ct, sopInstanceUid: sops[0], failureReason: 0x0110 }]);
  t.regex(router.commitment.store.get('1.2.826.0.1.5')!.why![sops[0]], /^not committed within the timeout: not yet delivered to WS/);
  t.is(router.queue.outstanding(sops[0]), 1, 'the forward itself carries on');
  await req.scu.release();
});

test('a report the requester refuses for good (0211: transaction not recognized) is not sent again; 0110 is retried', async (t) => {
  const router = await routerForRequester(t);
  const sops = await send(router.port, router.dir, [{}], 'REQ');
  const answers = [0x0110, 0x0211];
  const req = await requester(router.port, 'REQ', () => answers.shift() ?? Status.SUCCESS);
  t.is((await req.nAction(request('1.2.826.0.1.6', sops))).status, Status.SUCCESS);
  await eventually(t, 'the refusal recorded', () => router.commitment.store.get('1.2.826.0.1.6')?.state === 'reported', 20_000);
  const record = router.commitment.store.get('1.2.826.0.1.6')!;
  t.regex(record.reportRefused ?? '', /status 0211/);
  t.is(record.reportAttempts, 2, 'the 0110 was retried once, the 0211 ended it');
  t.is(req.reports.length, 2);
  t.false(router.commitment.holds(sops[0]));
  await req.scu.release();
});

test('negotiation: a listener with storage commitment accepts the Push Model class and answers role selection for it; one without does not', (t) => {
  const listener = (storageCommitment: Record<string, unknown>) =>
    parseConfig(stringify({ listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112, storageCommitment }] }), 'router.yaml').listeners[0];
  const associateRq: AssociateRq = {
    type: 'A-ASSOCIATE-RQ', protocolVersion: 1, calledAeTitle: 'DICOM_ROUTER', callingAeTitle: 'PETCT', applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [{ id: 1, abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
    userInformation: {
      maxPduLength: 16384, implementationClassUid: '1.2.3', sopClassExtended: [], sopClassCommonExtended: [],
      roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, scuRole: true, scpRole: true }],
    },
  };
  const on = negotiate(associateRq, acceptorPolicy(listener({ enabled: true })));
  if (!on.accepted) return void t.fail(on.why);
  t.deepEqual(on.ac.presentationContexts, [{ id: 1, result: 0, transferSyntax: EXPLICIT_VR_LITTLE_ENDIAN }]);
  // The requester may be the SCU; the router does not take the SCU's part on the requester's association.
  t.deepEqual(on.ac.userInformation.roleSelections, [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, scuRole: true, scpRole: false }]);
  const off = negotiate(associateRq, acceptorPolicy(listener({ enabled: false })));
  if (!off.accepted) return void t.fail(off.why);
  t.is(off.ac.presentationContexts[0].result, 3, 'abstract syntax not supported');
  t.deepEqual(off.ac.userInformation.roleSelections, []);
});

test('a rule\'s commitWhen tightens the listener\'s: what it forwards waits for delivery, the rest is committed when stored', async (t) => {
  const peer = { name: 'REQ', aeTitle: 'REQ', host: '127.0.0.1', port: await freePort(), retry: { attempts: 3, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 5 } };
  const ws = { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: await freePort(), retry: { attempts: 1000, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 5 } };
  const rules = 'rules:\n  - name: from-other-to-ws\n    commitWhen: delivered\n    when: { callingAe: OTHER }\n    then: { forward: [WS] }\n';
  const router = await routerWith([peer, ws], rules, { listener: { storageCommitment: { enabled: true, commitWhen: 'stored' } } });
  t.teardown(() => stopAndRemove(router));
  const [forwarded] = await send(router.port, router.dir, [{}], 'OTHER');
  const [kept] = await send(router.port, router.dir, [{}], 'REQ');
  const req = await requester(router.port);
  t.teardown(() => req.scu.release());
  t.is((await req.nAction(request('1.2.826.0.1.7', [forwarded, kept]))).status, Status.SUCCESS);
  // WS never answers: the forwarded instance waits (the rule says delivered), the other one does not (the listener says stored).
  await eventually(t, 'the forwarded instance waits for WS', () => /not yet delivered to WS/.test(router.commitment.store.get('1.2.826.0.1.7')?.waitingFor?.[forwarded] ?? ''), 20_000);
  const record = router.commitment.store.get('1.2.826.0.1.7')!;
  t.is(record.state, 'waiting');
  t.deepEqual(Object.keys(record.waitingFor!), [forwarded]);
  t.is(req.reports.length, 0);
});
