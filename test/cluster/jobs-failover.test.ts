// Issue 17: a prefetch job and a completion group started on one node and finished by another after that
// node is SIGKILLed (real router processes on a private PostgreSQL, storage: shared). The kill lands at
// the right moment by waiting on observable state: the archive's requests and the PostgreSQL rows.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { encodeIdentifier } from '../../protocol/dataset-encode.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/processes.ts';
import { scriptedQrScp } from '../helpers/scripted-qr-scp.ts';
import { clusterApi, clusterWithDestination, filesAt, startNode, storedOrder, storescu, until } from './nodes.ts';

const ELE = '1.2.840.10008.1.2.1';
const C_FIND = 0x0020;
const match = (uid: string, date: string) => ({ status: 0xff00, identifier: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: uid, StudyDate: date, ModalitiesInStudy: 'CT' }, ELE) });

async function database(url: string) {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  return db;
}

test.serial('a prefetch job started on one node is resumed by another from its last recorded step after a SIGKILL; a study triggers once cluster-wide', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  // The archive: two priors; the first C-MOVE of 1.9.2 never answers (the node is killed while it waits).
  let movesOf192 = 0;
  const archive = await scriptedQrScp((rq, id) => {
    if (rq.CommandField === C_FIND) return [match('1.9.1', '20250101'), match('1.9.2', '20240101'), { status: 0 }];
    if (id.StudyInstanceUID === '1.9.2' && ++movesOf192 === 1) return 'silent';
    return [{ status: 0, counts: { completed: 1, failed: 0, warning: 0 } }];
  });
  t.teardown(() => archive.close());
  const moves = () => archive.requests.filter((r) => r.command.CommandField !== C_FIND).map((r) => String(r.identifier.StudyInstanceUID));
  const shared = tempDir('shared-');
  const rulesDir = tempDir('rules-');
  writeFileSync(join(rulesDir, 'priors.yaml'), 'rules:\n  - name: priors\n    then: { prefetch: { archive: ARCHIVE, destination: WS, max: 3 } }\n');
  const peers = [{ name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port: archive.port, timeouts: { dimseSeconds: 600 }, retry: { attempts: 3, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1 } }];
  const db = await database(pgServer.url);
  t.teardown(() => db.end());
  const job = async () => (await db.query(`SELECT id, state, lease_owner, record FROM prefetch_jobs`)).rows;

  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n1.stop);
  const studyUid = newUid();
  const study = writeDataset(join(tempDir(), 'study'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, patientId: 'P-PREFETCH', studyInstanceUid: studyUid });
  t.is((await storescu(n1, study)).code, 0);
  await until('n1 holds the job and has moved the first prior', async () => {
    const [row] = await job();
    return row?.lease_owner === 'n1' && row.record.priors?.[0]?.state === 'moved';
  }, 30_000, () => n1.output().slice(-3000));
  // n2 joins now (so that n1 is the one that claimed it), and receives an instance of the same study.
  const n2 = await startNode('n2', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n2.stop);
  const again = writeDataset(join(tempDir(), 'again'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, patientId: 'P-PREFETCH', studyInstanceUid: studyUid });
  t.is((await storescu(n2, again)).code, 0);
  await until('n2 sees the study already triggered elsewhere', () => n2.output().includes('this study already triggered prefetch on another node'), 20_000, () => n2.output().slice(-3000));
  await until('n1 is moving the second prior', () => moves().length === 2, 20_000, () => n1.output().slice(-3000));
  t.deepEqual(moves(), ['1.9.1', '1.9.2']);
  n1.child.kill('SIGKILL');

  await until('the job done', async () => (await job())[0]?.state === 'done', 60_000, () => n2.output().slice(-4000));
  const rows = await job();
  t.is(rows.length, 1, 'one job for the study, cluster-wide');
  const record = rows[0].record;
  t.is(rows[0].lease_owner, null, 'a finished job holds no lease');
  t.deepEqual(record.priors.map((p: { studyInstanceUid: string; state: string }) => [p.studyInstanceUid, p.state]), [['1.9.1', 'moved'], ['1.9.2', 'moved']]);
  t.true(record.history.some((h: { step: string }) => h.step === 'taken over by node n2 from node n1 (its lease expired)'), JSON.stringify(record.history));
  // Resumed from its record: no second C-FIND, the first prior not moved again, the second asked again.
  t.is(archive.requests.filter((r) => r.command.CommandField === C_FIND).length, 1);
  t.deepEqual(moves(), ['1.9.1', '1.9.2', '1.9.2']);
  const moved = (await db.query(`SELECT destination, study_uid FROM prefetch_moved ORDER BY study_uid`)).rows;
  t.deepEqual(moved.map((m) => [m.destination, m.study_uid]), [['WS', '1.9.1'], ['WS', '1.9.2']], 'moved priors recorded for the dedup window, cluster-wide');
  t.regex(n2.output(), /prefetch job taken over from a node whose lease expired/);
  t.deepEqual((await clusterApi(n2)).jobs.prefetch, { open: 0, done: 1, failed: 0, running: {} });
});

test.serial('a completion group holding instances from two nodes is fired by the survivor after its lease holder is SIGKILLed', async (t) => {
  const { pgServer, out, dest, shared } = await clusterWithDestination(t);
  const rulesDir = tempDir('rules-');
  // Quiet time long enough that the kill lands before it ends (the kill waits on the PostgreSQL rows, not a clock).
  writeFileSync(join(rulesDir, 'study.yaml'), 'rules:\n  - name: study\n    trigger: { per: study, quietSeconds: 8, maxWaitSeconds: 600 }\n    then: { forward: [DEST] }\n');
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, retry: { attempts: 20, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const db = await database(pgServer.url);
  t.teardown(() => db.end());
  const group = async () => (await db.query(`SELECT id, state, lease_owner, instances, fired FROM completion_groups`)).rows;
  const heldCount = async () => (await db.query(`SELECT count(*)::int AS n FROM queue_items WHERE held_for IS NOT NULL`)).rows[0].n;

  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n1.stop);
  const n2 = await startNode('n2', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n2.stop);
  const studyUid = newUid();
  const part1 = writeDataset(join(tempDir(), 'a'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, studyInstanceUid: studyUid, modality: 'CT' });
  const part2 = writeDataset(join(tempDir(), 'b'), { count: 2, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, studyInstanceUid: studyUid, modality: 'MR' });
  t.is((await storescu(n1, part1)).code, 0);
  await until('the group in PostgreSQL, leased by n1', async () => (await group())[0]?.lease_owner === 'n1', 20_000, () => n1.output().slice(-3000));
  t.is((await storescu(n2, part2)).code, 0);
  await until('members from both nodes counted, every item held', async () => (await group())[0]?.instances === 5 && (await heldCount()) === 5, 20_000, () => `${n1.output().slice(-2000)}\n${n2.output().slice(-2000)}`);
  const [waiting] = await group();
  t.is(waiting.state, 'waiting');
  t.is(filesAt(out).size, 0, 'nothing forwarded while the group waits');
  const status = await clusterApi(n2);
  t.deepEqual(status.jobs.completion, { waiting: 1, fired: 0, held: 5, leases: { n1: 1 } }, '/api/cluster shows the shared group and who holds it');
  t.is(status.depths.reduce((s: number, d: { pending: number }) => s + d.pending, 0), 0, 'held items are not waiting to be sent');
  n1.child.kill('SIGKILL');

  const uids = await Promise.all([...part1, ...part2].map(async (f) => (await readPart10File(f)).sopInstanceUid));
  await until('every instance of the group at the destination', () => uids.every((u) => filesAt(out).has(u)), 60_000, () => `${n2.output().slice(-4000)}\n${dest.output().slice(-1000)}`);
  const [fired] = await group();
  t.is(fired.state, 'fired');
  t.is(fired.fired.node, 'n2', 'fired by the node that took the lease over');
  t.is(fired.fired.forwarded, 5);
  t.is(fired.fired.reason, 'quiet');
  t.is(await heldCount(), 0);
  t.regex(n2.output(), /completion group taken over from a node whose lease expired/);
  t.regex(n2.output(), /"msg":"study complete: forwarded as one batch"/);
  t.is(storedOrder(dest).length, 5, 'each instance once');
});
