// Prefetch jobs against a scripted Q/R SCP (the statuses Orthanc cannot be made to produce): A900 on
// C-FIND fails at once, A700 is retried per the peer's policy, B000 on C-MOVE is partial, a silent
// SCP times out and is retried; a job interrupted by a restart resumes from LMDB.
import test from 'ava';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PrefetchService } from '../../actors/prefetch.ts';
import type { PrefetchJobRecord } from '../../actors/prefetch.ts';
import { Spool } from '../../actors/spool.ts';
import { parseConfig } from '../../config/config.ts';
import { encodeIdentifier } from '../../protocol/dataset-encode.ts';
import type { Command } from '../../protocol/dimse.ts';
import { silent } from '../helpers/in-process-router.ts';
import { tempDir } from '../helpers/processes.ts';
import { scriptedQrScp } from '../helpers/scripted-qr-scp.ts';
import type { ScriptedResponse } from '../helpers/scripted-qr-scp.ts';

const ELE = '1.2.840.10008.1.2.1';
const match = (uid: string, date: string) => ({ status: 0xff00, identifier: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid, StudyDate: date, ModalitiesInStudy: 'CT' }, ELE) });
const action = { archive: 'ARCHIVE', destination: 'WS', queryModel: 'study-root' as const, excludeTriggeringStudy: true, max: 3, dedupHours: 24 };

async function service(port: number, dir = tempDir(), dimseSeconds = 5) {
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['X'], port: 11112 }],
    peers: [{ name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port, retry: { attempts: 2, initialBackoffSeconds: 0.1, maxBackoffSeconds: 0.1 }, timeouts: { connectSeconds: 2, dimseSeconds } }],
  }), join(dir, 'router.yaml'));
  const spool = await Spool.open({ dir: join(dir, 'data'), fsync: false });
  return { spool, prefetch: new PrefetchService(spool, config.peers, { logger: silent }), dir };
}

async function runJob(s: Awaited<ReturnType<typeof service>>, study = `1.2.${Date.now()}`): Promise<PrefetchJobRecord> {
  let ids: string[] = [];
  await s.spool.db.transaction(() => (ids = s.prefetch.plan([{ ...action, rule: 'r' }], { studyInstanceUid: study, patientId: 'P1' })));
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
