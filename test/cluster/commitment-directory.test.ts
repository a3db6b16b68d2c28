// Issue 17: the instance directory. Orthanc sends instances to node n1 and asks node n2 for storage
// commitment (N-ACTION): n2 finds them in the shared directory, waits for their delivery in the shared
// queue (commitWhen: delivered), and reports them committed; an instance no node received is 0112.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import pg from 'pg';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { rest, requestCommitment, settledReport } from '../helpers/orthanc-commitment.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';
import { freePort, REPO, run, startStorescp, tempDir } from '../helpers/processes.ts';
import { filesAt, forwardAllRules, startNode, storescu, until } from './nodes.ts';

/** The peer entry of Orthanc, the modality that sends to n1 and asks n2 for storage commitment. */
function modalityPeer(port: number) {
  return { name: 'MODALITY', aeTitle: 'MODALITY', host: '127.0.0.1', port, retry: { attempts: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 2 }, timeouts: { connectSeconds: 5, dimseSeconds: 10 } };
}

/**
 * Nodes n1 and n2 (storage commitment, commitWhen delivered) and Orthanc on `orthancPort`, which sends
 * `count` new instances to n1 ('first') and will ask n2 ('router'); resolves once n1 has put them in the
 * directory.
 */
async function instancesOnN1(t: ExecutionContext, pgServer: PostgresServer, o: { peers: Record<string, unknown>[]; orthancPort: number; count: number; leaseSeconds?: number }) {
  const shared = tempDir('shared-');
  const rulesDir = forwardAllRules('DEST');
  const listener = { storageCommitment: { enabled: true, commitWhen: 'delivered' } };
  const lease = o.leaseSeconds !== undefined ? { leaseSeconds: o.leaseSeconds } : {};
  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers: o.peers, listener, ...lease });
  t.teardown(n1.stop);
  const n2 = await startNode('n2', { pg: pgServer, shared, rulesDir, peers: o.peers, listener, ...lease });
  t.teardown(n2.stop);
  const orthanc = await startOrthanc({ port: o.orthancPort, aeTitle: 'MODALITY', modalities: { router: ['DICOM_ROUTER', '127.0.0.1', n2.port], first: ['DICOM_ROUTER', '127.0.0.1', n1.port] } });
  t.teardown(orthanc.stop);
  const files = writeDataset(join(tempDir(), 'study'), { count: o.count, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, studyInstanceUid: newUid() });
  await orthanc.store(files);
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  await rest(orthanc, 'POST', '/modalities/first/store', { Resources: await rest<string[]>(orthanc, 'GET', '/instances'), Synchronous: true });
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  t.teardown(() => db.end());
  await until(`the ${o.count} instances in the directory, on n1`, async () => (await db.query(`SELECT count(*)::int AS n FROM instances WHERE node = 'n1'`)).rows[0].n === o.count, 20_000, () => n1.output().slice(-3000));
  return { n1, n2, orthanc, sops, db };
}

test('an N-ACTION to one node for instances stored on another is answered from the instance directory', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST' });
  t.teardown(dest.stop);
  const orthancPort = await freePort();
  const peers = [
    { aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, retry: { attempts: 20, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } },
    modalityPeer(orthancPort),
  ];
  const { n1, n2, orthanc, sops } = await instancesOnN1(t, pgServer, { peers, orthancPort, count: 3 });

  const missing = newUid();
  const uid = await requestCommitment(orthanc, [...sops, missing]);
  const report = await settledReport(t, orthanc, uid);
  t.is(report.Status, 'Failure', JSON.stringify(report));
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID).sort(), [...sops].sort(), 'committed by n2 from the directory');
  t.deepEqual((report.Failures ?? []).map((f) => [f.SOPInstanceUID, f.FailureReason]), [[missing, 0x0112]]);
  // commitWhen delivered: reported only once the destination had them.
  t.true(sops.every((s) => filesAt(out).has(s)));
  t.regex(n2.output(), /"msg":"storage commitment: some instances failed"/);
  t.regex(n2.output(), /not received by any node of the cluster/);
  t.notRegex(n1.output(), /storage commitment requested/, 'n1 was not asked');
});

test('a storage commitment request whose node is SIGKILLed is adopted, decided and reported by another node', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const out = tempDir('dest-');
  // The destination is down at first: commitWhen delivered keeps the request waiting on n2 until n2 is killed.
  const destPort = await freePort();
  const orthancPort = await freePort();
  const peers = [
    { aeTitle: 'DEST', host: '127.0.0.1', port: destPort, retry: { attempts: 1000, initialBackoffSeconds: 0.2, maxBackoffSeconds: 0.5, jitter: 0 }, timeouts: { connectSeconds: 2 } },
    modalityPeer(orthancPort),
  ];
  const { n1, n2, orthanc, sops, db } = await instancesOnN1(t, pgServer, { peers, orthancPort, count: 2, leaseSeconds: 3 });
  const uid = await requestCommitment(orthanc, sops);
  const request = async () => (await db.query(`SELECT state, lease_owner, reported_by, record FROM commitment_requests WHERE transaction_uid = $1`, [uid])).rows;
  await until('the request published, held by n2, waiting for the delivery', async () => {
    const [r] = await request();
    return r?.lease_owner === 'n2' && r.state === 'waiting' && Object.keys(r.record.waitingFor ?? {}).length === 2;
  }, 20_000, () => n2.output().slice(-3000));
  n2.child.kill('SIGKILL');
  const dest = await startStorescp(out, { aeTitle: 'DEST', port: destPort });
  t.teardown(dest.stop);
  // On a loaded machine DEST may have refused five times by now, and its circuit is open for a minute:
  // the operator's `queue retry` on n1 tries at once (it wakes the running node).
  const retried = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'queue', 'retry', 'DEST', '--config', n1.configFile]);
  t.is(retried.code, 0, retried.stderr);

  const report = await settledReport(t, orthanc, uid, 60_000, () => n1.output().split('\n').filter((l) => /commitment|adopt|delivered|DEST|error|warn/i.test(l)).slice(-60).join('\n'));
  t.is(report.Status, 'Success', JSON.stringify(report));
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID).sort(), [...sops].sort());
  t.true(sops.every((s) => filesAt(out).has(s)), 'reported once delivered');
  await until('the request reported by n1', async () => (await request())[0]?.state === 'reported', 10_000, () => n1.output().slice(-3000));
  t.is((await request())[0].reported_by, 'n1');
  t.regex(n1.output(), /storage commitment request adopted from a node whose lease expired/);
  t.regex(n1.output(), /"msg":"storage commitment reported"/);
});

test('a directory that does not count the node\'s spool is rewritten from it when the node starts', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const shared = tempDir('shared-');
  const rulesDir = tempDir('rules-');
  const first = await startNode('n1', { pg: pgServer, shared, rulesDir, peers: [] });
  const files = writeDataset(join(tempDir(), 'study'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, studyInstanceUid: newUid() });
  t.is((await storescu(first, files)).code, 0);
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  t.teardown(() => db.end());
  const listed = async () => (await db.query(`SELECT sop_uid FROM instances WHERE node = 'n1' ORDER BY sop_uid`)).rows.map((r) => r.sop_uid);
  const sops = (await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid))).sort();
  await until('the instances in the directory', async () => (await listed()).length === 3, 20_000, () => first.output().slice(-3000));
  await first.stop();
  // Lost entries (as if the node had died between a commit and its publish), and a stale one.
  await db.query(`DELETE FROM instances WHERE sop_uid = $1`, [sops[0]]);
  await db.query(`INSERT INTO instances VALUES ('1.2.3.gone', 'n1', $1, '1.2', '1.2.1', 'x.dcm', now())`, [SOP.ct]);
  await db.query(`DELETE FROM instances WHERE sop_uid = $1`, [sops[1]]);
  const again = await startNode('n1', { pg: pgServer, shared, rulesDir, peers: [] });
  t.teardown(again.stop);
  t.deepEqual(await listed(), sops, 'rewritten from the spool before the node joined');
  t.regex(again.output(), /"before":2,"instances":3,"msg":"instance directory rewritten from this node's spool"/);
});
