// Prefetch jobs against a scripted Q/R SCP (the statuses Orthanc cannot be made to produce): A900 on
// C-FIND fails at once, A700 is retried per the peer's policy, B000 on C-MOVE is partial, a silent
// SCP times out and is retried; a job interrupted by a restart resumes from LMDB. The destination
// check against a scripted destination SCP (count, unreachable = moved), placeholders resolved at
// plan time and recorded, and jobs run as children of a root machine (JOB_STARTED / JOB_ENDED).
import test from 'ava';
import { join } from 'node:path';
import { createActor } from 'xstate';
import type { AnyActorLogic, AnyActorRef } from 'xstate';
import { stringify } from 'yaml';
import { routerMachine } from '../../../machines/router.machine.ts';
import { actorTree } from '../../../actors/observe/inspector-model.ts';
import { PrefetchService } from '../../../actors/jobs/prefetch.ts';
import type { JobHost, PrefetchJobRecord } from '../../../actors/jobs/prefetch.ts';
import { Spool } from '../../../actors/ingest/spool.ts';
import { parseConfig } from '../../../config/config.ts';
import { encodeIdentifier } from '../../../protocol/dataset-encode.ts';
import type { Command } from '../../../protocol/dimse.ts';
import { silent } from '../../helpers/in-process-router.ts';
import { freePort, tempDir } from '../../helpers/processes.ts';
import { scriptedQrScp } from '../../helpers/scripted-qr-scp.ts';
import type { ScriptedResponse } from '../../helpers/scripted-qr-scp.ts';

const ELE = '1.2.840.10008.1.2.1';
const match = (uid: string, date: string) => ({ status: 0xff00, identifier: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid, StudyDate: date, ModalitiesInStudy: 'CT' }, ELE) });
const action = { archive: 'ARCHIVE', destination: 'WS', queryModel: 'study-root' as const, excludeTriggeringStudy: true, max: 3, dedupHours: 24 };

async function service(port: number, dir = tempDir(), dimseSeconds = 5, extra: { checkPort?: number; host?: JobHost } = {}) {
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['X'], port: 11112 }],
    peers: [
      { name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port, retry: { attempts: 2, initialBackoffSeconds: 0.1, maxBackoffSeconds: 0.1 }, timeouts: { connectSeconds: 2, dimseSeconds } },
      ...(extra.checkPort ? [{ name: 'WSQR', aeTitle: 'WSQR', host: '127.0.0.1', port: extra.checkPort, timeouts: { connectSeconds: 2, dimseSeconds } }] : []),
    ],
  }), join(dir, 'router.yaml'));
  const spool = await Spool.open({ dir: join(dir, 'data'), fsync: false });
  return { spool, prefetch: new PrefetchService(spool, config.peers, { logger: silent, ...(extra.host ? { host: extra.host } : {}) }), dir };
}

async function runJob(s: Awaited<ReturnType<typeof service>>, study = `1.2.${Date.now()}`, over: Partial<typeof action> & { skipIfDestinationHas?: string; modalities?: string[] } = {}, dataset?: Record<string, unknown>): Promise<PrefetchJobRecord> {
  let ids: string[] = [];
  await s.spool.db.transaction(() => (ids = s.prefetch.plan([{ ...action, ...over, rule: 'r' }], { studyInstanceUid: study, patientId: 'P1', ...(dataset ? { dataset } : {}) })));
  s.prefetch.start(ids);
  await s.prefetch.idle();
  return s.prefetch.get(ids[0])!;
}

function scp(find: ScriptedResponse[] | 'silent', move: (rq: Command, id: Record<string, unknown>) => ScriptedResponse[] | 'silent' = () => [{ status: 0, counts: { completed: 1, failed: 0, warning: 0 } }]) {
  return scriptedQrScp((rq, id) => (rq.CommandField === 0x0020 ? find : move(rq, id)));
}

test('A900 on C-FIND: failed at once with the reason, no retry', async (t) => {
  const archive = await scp([{ status: 0xa900, errorComment: 'bad identifier' }]);
  const s = await service(archive.port);
  const job = await runJob(s);
  await s.spool.close();
  await archive.close();
  t.is(job.state, 'failed');
  t.is(job.attempts, 0);
  t.is(job.reason, 'C-FIND failed: 0xA900 Identifier Does Not Match SOP Class: bad identifier');
  t.is(archive.requests.length, 1);
});

test('A700 on C-FIND is retried per the peer policy, then the job fails with the reason', async (t) => {
  const archive = await scp([{ status: 0xa700 }]);
  const s = await service(archive.port);
  const job = await runJob(s);
  await s.spool.close();
  await archive.close();
  t.is(job.state, 'failed');
  t.is(job.attempts, 2);
  t.is(archive.requests.length, 2);
  t.regex(job.reason!, /0xA700 Out of Resources/);
  t.deepEqual(job.history.map((h) => h.step.split(' ')[0]), ['planned', 'querying', 'waitingToRetry', 'querying', 'failed:']);
});

test('B000 on C-MOVE: that prior is partial, the job partiallyFailed; the identifier and destination are right', async (t) => {
  const archive = await scp([match('1.9.1', '20250101'), match('1.9.2', '20240101'), { status: 0 }], (_rq, id) =>
    id.StudyInstanceUID === '1.9.2' ? [{ status: 0xb000, counts: { completed: 3, failed: 2, warning: 0 } }] : [{ status: 0xff00, counts: { remaining: 1, completed: 1, failed: 0, warning: 0 } }, { status: 0, counts: { completed: 2, failed: 0, warning: 0 } }]);
  const s = await service(archive.port);
  const job = await runJob(s);
  await s.spool.close();
  await archive.close();
  t.is(job.state, 'partiallyFailed');
  t.deepEqual(job.priors!.map((p) => [p.studyInstanceUid, p.state]), [['1.9.1', 'moved'], ['1.9.2', 'partial']]);
  t.like(job.priors![1], { status: 0xb000, suboperations: { completed: 3, failed: 2 } });
  t.regex(job.reason!, /1\.9\.2: 2 sub-operation\(s\) failed/);
  const moves = archive.requests.filter((r) => r.command.CommandField === 0x0021);
  t.deepEqual(moves.map((m) => [m.command.MoveDestination, m.identifier.QueryRetrieveLevel, m.identifier.StudyInstanceUID]), [['WS', 'STUDY', '1.9.1'], ['WS', 'STUDY', '1.9.2']]);
  t.like(archive.requests[0].identifier, { PatientID: 'P1', QueryRetrieveLevel: 'STUDY' });
});

test('a silent archive times out (association aborted) and is retried; then failed', async (t) => {
  const archive = await scp('silent');
  const s = await service(archive.port, tempDir(), 0.3);
  const job = await runJob(s);
  await s.spool.close();
  await archive.close();
  t.is(job.state, 'failed');
  t.is(job.attempts, 2);
  t.regex(job.reason!, /no response within 300 ms/);
  t.is(archive.aborts, 2);
});

test('a job interrupted by a restart resumes from LMDB with its recorded state', async (t) => {
  const archive = await scp([match('1.9.1', '20250101'), { status: 0 }]);
  const first = await service(archive.port);
  let ids: string[] = [];
  await first.spool.db.transaction(() => (ids = first.prefetch.plan([{ ...action, rule: 'r' }], { studyInstanceUid: '1.2.3', patientId: 'P1' })));
  await first.spool.close(); // "crash" before it ran
  const again = await service(archive.port, first.dir);
  t.is(again.prefetch.resume(), 1);
  await again.prefetch.idle();
  const job = again.prefetch.get(ids[0])!;
  t.is(again.prefetch.resume(), 0, 'finished jobs do not run again');
  await again.spool.close();
  await archive.close();
  t.is(job.state, 'done');
  t.deepEqual(job.priors!.map((p) => p.state), ['moved']);
});

const counted = (uid: string, date: string, n: number, modality = 'CT') => ({ status: 0xff00, identifier: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid, StudyDate: date, ModalitiesInStudy: modality, NumberOfStudyRelatedInstances: String(n) }, ELE) });

test('destination check: the archive is asked for counts, the destination per prior; held in full skipped, else moved', async (t) => {
  const archive = await scp([counted('1.9.1', '20250101', 4), counted('1.9.2', '20240101', 4), { status: 0 }]);
  const destination = await scriptedQrScp((_rq, id) => [
    ...(id.StudyInstanceUID === '1.9.1' ? [{ status: 0xff00, identifier: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '1.9.1', NumberOfStudyRelatedInstances: '4' }, ELE) }] : []),
    { status: 0 },
  ]);
  const s = await service(archive.port, tempDir(), 5, { checkPort: destination.port });
  const job = await runJob(s, undefined, { skipIfDestinationHas: 'WSQR' });
  await s.spool.close();
  await archive.close();
  await destination.close();
  t.is(job.state, 'done', job.reason);
  t.true('NumberOfStudyRelatedInstances' in archive.requests[0].identifier, 'asked of the archive as a return key');
  t.deepEqual(destination.requests.map((r) => [r.identifier.QueryRetrieveLevel, r.identifier.StudyInstanceUID, r.identifier.NumberOfStudyRelatedInstances]), [['STUDY', '1.9.1', null], ['STUDY', '1.9.2', null]]);
  t.deepEqual(job.priors!.map((p) => [p.studyInstanceUid, p.state, p.reason]), [['1.9.1', 'skipped', 'destination holds 4 of 4 instances'], ['1.9.2', 'moved', undefined]]);
  t.deepEqual(archive.requests.filter((r) => r.command.CommandField === 0x0021).map((r) => r.identifier.StudyInstanceUID), ['1.9.2']);
  t.true(job.history.some((h) => h.step === 'prior 1.9.2: destination holds 0 of 4 instances, moving'));
  t.true(job.history.some((h) => h.step === 'destination check peer \'WSQR\' has AE title WSQR, not the Move Destination WS'));
});

test('destination check: the destination unreachable is "not known": the prior is moved, the job done', async (t) => {
  const archive = await scp([counted('1.9.1', '20250101', 4), { status: 0 }]);
  const s = await service(archive.port, tempDir(), 5, { checkPort: await freePort() });
  const job = await runJob(s, undefined, { skipIfDestinationHas: 'WSQR' });
  await s.spool.close();
  await archive.close();
  t.is(job.state, 'done', job.reason);
  t.is(job.attempts, 0);
  t.deepEqual(job.priors!.map((p) => p.state), ['moved']);
  t.regex(job.history.map((h) => h.step).join('\n'), /prior 1\.9\.1: destination count not known \(.*ECONNREFUSED.*\), moving/);
});

test('placeholders are resolved from the triggering dataset at plan time and recorded', async (t) => {
  const archive = await scp([counted('1.9.1', '20250101', 1, 'MR'), counted('1.9.2', '20240101', 1, 'CT'), { status: 0 }]);
  const s = await service(archive.port);
  const job = await runJob(s, undefined, { modalities: ['{{Modality}}'] }, { Modality: 'MR' });
  await s.spool.close();
  await archive.close();
  t.deepEqual(job.action.modalities, ['MR']);
  t.deepEqual(job.templates, { modalities: ['{{Modality}}'] });
  t.deepEqual(job.priors!.map((p) => p.studyInstanceUid), ['1.9.1']);
  t.is(job.history[1].step, 'modalities {{Modality}} resolved to MR');
});

test('with a host, each job is a child of the root while it runs and leaves it at the end; its history is whole', async (t) => {
  const archive = await scp([match('1.9.1', '20250101'), { status: 0 }]);
  const root = createActor(routerMachine, { input: { peers: [], listeners: [] } }).start();
  const seen: string[] = [];
  const host: JobHost = {
    send: (event) => {
      seen.push(`${event.type} ${event.id}`);
      root.send(event as { type: 'JOB_STARTED'; id: string; logic: AnyActorLogic });
    },
    child: (id) => root.getSnapshot().children[id] as AnyActorRef | undefined,
  };
  const s = await service(archive.port, tempDir(), 5, { host });
  let ids: string[] = [];
  await s.spool.db.transaction(() => (ids = s.prefetch.plan([{ ...action, rule: 'r' }], { studyInstanceUid: '1.2.9', patientId: 'P1' })));
  s.prefetch.start(ids);
  const child = root.getSnapshot().children[`prefetch-${ids[0]}`];
  t.truthy(child, 'adopted by the root');
  // What the inspector's tree (and its /api/prefetch, which filters on the machine) shows.
  const node = actorTree(root as unknown as AnyActorRef).children.find((c) => c.id === `prefetch-${ids[0]}`);
  t.like(node, { machine: 'prefetch', state: ['querying'] });
  await s.prefetch.idle();
  await new Promise((r) => setTimeout(r, 20));
  const job = s.prefetch.get(ids[0])!;
  await s.spool.close();
  await archive.close();
  root.stop();
  t.is(job.state, 'done');
  t.deepEqual(job.history.map((h) => h.step.split(' ')[0]), ['planned', 'querying', 'found', 'moving', 'prior', 'done']);
  t.deepEqual(seen, [`JOB_STARTED prefetch-${ids[0]}`, `JOB_ENDED prefetch-${ids[0]}`]);
  t.false(Object.keys(root.getSnapshot().children).some((id) => id.startsWith('prefetch-')), 'gone from the tree');
});
